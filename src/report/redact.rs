//! `--redact`: the report with user names, host names and addresses
//! replaced, the same value by the same stand-in everywhere in a run (so
//! the report still reads: "host-2" is the same server in every row), for
//! reports that leave the company.
//!
//! What is replaced, in every text of attempts and findings (summaries,
//! filters, timelines, certificate subjects):
//! - IPv4 addresses by `198.18.x.y` in order of appearance, IPv6 addresses
//!   by `2001:db8::N` (ports are kept);
//! - `user@REALM` and `DOMAIN\user` by `user-N@REALM-N` and
//!   `DOMAIN-N\user-N`, the host of a service principal (`TERMSRV/vm`) by
//!   `host-N`;
//! - DNS names (two labels or more, the last alphabetic) by
//!   `host-N.example`, outside the Wireshark field names of filters;
//! - the certificate subject's values, the attempt's user, target and
//!   client computer names, wherever they appear again as whole words.
//!
//! The capture's own file name is kept (it is the user's path), as are
//! finding codes, frame numbers, ports and times.

use super::model::{Attempt, CaptureReport, Finding};
use regex::{Captures, Regex};
use std::collections::HashMap;
use std::sync::LazyLock;

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b",
    )
    .expect("regex")
});
/// Candidate IPv6 text: hex groups and colons (at least two), checked by
/// parsing.
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}").expect("regex"));
static PRINCIPAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Za-z0-9._$-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)").expect("regex")
});
static DOMAIN_USER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Za-z0-9._-]+)\\([A-Za-z0-9._$-]+)").expect("regex"));
static SERVICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(krbtgt|TERMSRV|HOST|HTTP|cifs|ldap|RPCSS|WSMAN)/([A-Za-z0-9._-]*[A-Za-z][A-Za-z0-9._-]*)")
        .expect("regex")
});
static DNS_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z][A-Za-z0-9-]*[A-Za-z]\b")
        .expect("regex")
});
static CN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(CN|O|OU|DC)=([^,\x22]+)").expect("regex"));
/// An RDP routing cookie's load-balancing token: the server's address
/// and port encoded as numbers.
static MSTS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"msts=[0-9.]+").expect("regex"));
/// A filter's quoted values (names compared as strings).
static QUOTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""([^"]*)""#).expect("regex"));

/// First labels of dotted words that are not host names: Wireshark's
/// protocol fields, file names and the like that texts cite.
const NOT_HOSTS: &[&str] = &[
    "ip",
    "ipv6",
    "tcp",
    "udp",
    "frame",
    "tls",
    "ssl",
    "dns",
    "http",
    "kerberos",
    "icmp",
    "icmpv6",
    "rdp",
    "rdpudp",
    "t125",
    "x224",
    "cotp",
    "tpkt",
    "data",
    "eth",
    "websocket",
    "dtls",
    "ntlmssp",
    "gss-api",
    "spnego",
    "credssp",
    "errinfo",
    "error",
    "mcs",
    "nla",
    "gateway",
    "capture",
    "path",
    "tsg",
    "learn",
    "www",
    "netsh",
    "pktmon",
    "rdpsift",
];

/// Last labels of dotted words that are file names, not hosts.
const NOT_NAMES: &[&str] = &[
    "exe", "msc", "dll", "sys", "cpl", "ps1", "conf", "cfg", "log", "txt", "json", "xml", "pcap",
    "pcapng", "etl", "md", "html", "rs", "py", "ini", "reg", "rdp", "msi",
];

/// The stand-ins of one run.
#[derive(Debug, Default)]
pub struct Redactor {
    map: HashMap<(u8, String), String>,
    counts: [u32; 6],
    /// Whole words to replace wherever they appear (user, target and
    /// computer names met in structured fields), longest first.
    words: Vec<(String, String)>,
}

const V4: u8 = 0;
const V6: u8 = 1;
const USER: u8 = 2;
const DOMAIN: u8 = 3;
const HOST: u8 = 4;

impl Redactor {
    fn stand_in(&mut self, kind: u8, value: &str) -> String {
        let key = (kind, value.to_ascii_lowercase());
        if let Some(s) = self.map.get(&key) {
            return s.clone();
        }
        self.counts[kind as usize] += 1;
        let n = self.counts[kind as usize];
        let s = match kind {
            V4 => format!(
                "198.{}.{}.{}",
                18 + (n >> 16) % 2,
                (n >> 8) & 0xFF,
                n & 0xFF
            ),
            V6 => format!("2001:db8::{n:x}"),
            USER => format!("user-{n}"),
            DOMAIN => format!("DOMAIN-{n}"),
            _ => format!("host-{n}"),
        };
        self.map.insert(key, s.clone());
        s
    }

    fn host(&mut self, name: &str) -> String {
        let short = !name.contains('.');
        let s = self.stand_in(HOST, name.trim_end_matches('.'));
        if short {
            s
        } else {
            format!("{s}.example")
        }
    }

    fn addresses(&mut self, s: &str) -> String {
        let s = IPV4.replace_all(s, |c: &Captures| self.stand_in(V4, &c[0]));
        IPV6.replace_all(&s, |c: &Captures| {
            let t = &c[0];
            if t.parse::<std::net::Ipv6Addr>().is_ok() && t.matches(':').count() >= 2 {
                self.stand_in(V6, t)
            } else {
                t.to_string()
            }
        })
        .into_owned()
    }

    fn names(&mut self, s: &str) -> String {
        let s = PRINCIPAL.replace_all(s, |c: &Captures| {
            format!(
                "{}@{}",
                self.stand_in(USER, &c[1]),
                self.stand_in(DOMAIN, &c[2])
            )
        });
        let hay = s.clone().into_owned();
        let s = DOMAIN_USER.replace_all(&hay, |c: &Captures| {
            let m = c.get(0).map_or(0..0, |m| m.range());
            // A registry or file path (HKLM\SYSTEM\…, a\b\c) and the
            // placeholder DOMAIN\user of a remedy are not a user.
            let path = hay[..m.start].ends_with('\\')
                || hay[m.end..].starts_with('\\')
                || c[1].to_ascii_uppercase().starts_with("HK")
                || (&c[1] == "DOMAIN" && &c[2] == "user");
            if path {
                c[0].to_string()
            } else {
                format!(
                    "{}\\{}",
                    self.stand_in(DOMAIN, &c[1]),
                    self.stand_in(USER, &c[2])
                )
            }
        });
        let s = SERVICE.replace_all(&s, |c: &Captures| format!("{}/{}", &c[1], self.host(&c[2])));
        let s = CN.replace_all(&s, |c: &Captures| {
            let v = c[2].trim();
            let r = if v.contains('.') || c[1].eq_ignore_ascii_case("CN") {
                self.host(v)
            } else {
                self.stand_in(DOMAIN, v)
            };
            format!("{}={r}", &c[1])
        });
        let s = DNS_NAME.replace_all(&s, |c: &Captures| {
            let t = &c[0];
            let first = t.split('.').next().unwrap_or("").to_ascii_lowercase();
            let last = t.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
            let lower = t.to_ascii_lowercase();
            if t.starts_with("host-")
                || t.starts_with("user-")
                || NOT_HOSTS.contains(&first.as_str())
                || NOT_NAMES.contains(&last.as_str())
                || lower.ends_with("microsoft.com")
            {
                t.to_string()
            } else {
                self.host(t)
            }
        });
        let mut s = s.into_owned();
        for (w, r) in &self.words {
            s = replace_word(&s, w, r);
        }
        s
    }

    /// Free text: addresses, then names.
    pub fn text(&mut self, s: &str) -> String {
        let s = MSTS.replace_all(s, |c: &Captures| {
            format!("msts={}", self.stand_in(HOST, &c[0]))
        });
        let s = self.addresses(&s);
        self.names(&s)
    }

    /// A Wireshark filter: addresses, and names only inside its quoted
    /// values (its field names stay).
    pub fn filter(&mut self, s: &str) -> String {
        let s = self.addresses(s);
        QUOTED
            .replace_all(&s, |c: &Captures| format!("\"{}\"", self.names(&c[1])))
            .into_owned()
    }

    /// Remembers a structured field's value as a word to replace
    /// everywhere after (a single-label name, a user).
    fn learn(&mut self, kind: u8, value: &str) {
        let v = value.trim();
        if v.len() < 2 || self.words.iter().any(|(w, _)| w.eq_ignore_ascii_case(v)) {
            return;
        }
        let r = if kind == HOST {
            self.host(v)
        } else {
            self.stand_in(kind, v)
        };
        self.words.push((v.to_string(), r));
        self.words.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
    }

    pub fn attempt(&mut self, a: &mut Attempt) {
        // Users and names the attempt knows, learnt before the texts.
        let user = a.user.clone();
        match user.split_once('\\') {
            Some((d, u)) => {
                self.learn(DOMAIN, d);
                self.learn(USER, u);
            }
            None if !user.contains('@') => self.learn(USER, &user),
            None => {}
        }
        for h in [a.target.clone(), a.client_name.clone()] {
            if !h.contains('.') && h.parse::<std::net::IpAddr>().is_err() {
                self.learn(HOST, &h);
            }
        }
        for f in [
            &mut a.client,
            &mut a.server,
            &mut a.gateway,
            &mut a.target,
            &mut a.user,
            &mut a.cert_subject,
            &mut a.client_name,
            &mut a.timeline,
        ] {
            *f = self.text(f);
        }
    }

    pub fn finding(&mut self, f: &mut Finding) {
        f.client = self.addresses(&f.client);
        f.server = self.addresses(&f.server);
        f.draft.summary = self.text(&f.draft.summary);
        f.draft.filter = self.filter(&f.draft.filter);
        // A cause or remedy that is the tool's own fixed text holds no
        // user data (and its placeholders, DOMAIN\user or TERMSRV/NAME,
        // stay as written); one made for this finding is redacted.
        for t in [&mut f.draft.cause, &mut f.draft.remedy] {
            if let std::borrow::Cow::Owned(o) = t {
                *o = self.text(o);
            }
        }
    }

    /// A report (or a part of one), in place: attempts first, so the
    /// names they hold are known when the findings' texts are read.
    pub fn report(&mut self, r: &mut CaptureReport) {
        for a in &mut r.attempts {
            self.attempt(a);
        }
        for f in &mut r.findings {
            self.finding(f);
        }
        if let Some(e) = &r.error {
            r.error = Some(self.text(e));
        }
    }
}

/// `s` with every whole-word, case-insensitive occurrence of `w` replaced.
fn replace_word(s: &str, w: &str, r: &str) -> String {
    let re = match Regex::new(&format!(r"(?i)\b{}\b", regex::escape(w))) {
        Ok(re) => re,
        Err(_) => return s.to_string(),
    };
    re.replace_all(s, regex::NoExpand(r)).into_owned()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_same_value_gets_the_same_stand_in_everywhere() {
        let mut r = Redactor::default();
        let s = r.text(
            "The KDC 10.1.2.88 answered KDC_ERR_PREAUTH_FAILED (24) to 10.1.2.10 \
             (alice@CORP.EXAMPLE.COM) for krbtgt/CORP.EXAMPLE.COM in frame 19",
        );
        assert_eq!(
            s,
            "The KDC 198.18.0.1 answered KDC_ERR_PREAUTH_FAILED (24) to 198.18.0.2 \
             (user-1@DOMAIN-1) for krbtgt/host-1.example in frame 19"
        );
        let t = r.text("NTLM, user CORP\\alice; certificate \"CN=rdp01.corp.example.com\"");
        assert_eq!(
            t,
            "NTLM, user DOMAIN-2\\user-1; certificate \"CN=host-2.example\""
        );
        assert_eq!(
            r.text("10.1.2.10:50112 → [2001:db8:aa::1]:3389"),
            "198.18.0.2:50112 → [2001:db8::1]:3389"
        );
    }

    #[test]
    fn filters_keep_their_field_names() {
        let mut r = Redactor::default();
        let f = r.filter(
            "ip.addr==10.0.0.1 && tcp.port==3389 && dns.qry.name==\"rdp-host.corp.example\" && (frame.number==3)",
        );
        assert_eq!(
            f,
            "ip.addr==198.18.0.1 && tcp.port==3389 && dns.qry.name==\"host-1.example\" && (frame.number==3)"
        );
    }

    #[test]
    fn names_an_attempt_holds_are_replaced_wherever_they_appear() {
        let mut r = Redactor::default();
        let mut a = Attempt {
            client: "10.0.0.5:50000".into(),
            server: "10.0.0.9:3389".into(),
            user: "alice".into(),
            target: "vm".into(),
            cert_subject: "CN=vm".into(),
            ..Default::default()
        };
        r.attempt(&mut a);
        assert_eq!((a.user.as_str(), a.target.as_str()), ("user-1", "host-1"));
        assert_eq!(a.cert_subject, "CN=host-1");
        assert_eq!(
            r.text("the KDC has no TERMSRV/vm for alice"),
            "the KDC has no TERMSRV/host-1 for user-1"
        );
        // Codes, times, versions, registry paths, placeholders and
        // protocol versions are not names.
        for keep in [
            "tcp.refused in frame 3 at 2024-05-01T10:00:00.000000Z, TLS 1.2",
            "SecurityLayer under HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server",
            "the same account as the RD CAP expects, DOMAIN\\user",
            "A front end (CDN, HTTP/2 load balancer) with gpedit.msc",
        ] {
            assert_eq!(r.text(keep), keep);
        }
    }
}
