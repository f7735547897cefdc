//! `kerberos.*` and `nla.ntlm_fallback`: what the plaintext Kerberos on
//! port 88 says of an attempt (RFC 4120, PROTOCOLS.md §8).
//!
//! The messages considered are the attempt's client host's, from
//! [`WINDOW_BEFORE_NS`] before its first connection to the end of its last:
//! KRB-ERRORs for `TERMSRV/<host>` (CredSSP's service ticket, phase `nla`),
//! `HTTP/<host>` (an RD Gateway's, phase `gateway-http`) and `krbtgt/…`
//! (the user's own logon to the domain, phase `nla`). The normal errors
//! (25, 52, 68) are never findings. A host part must name the attempt
//! (its target, SNI, certificate names, `--target`, or their first
//! label) when the attempt has names; with none known, any is taken.
//!
//! An error is the attempt's verdict (severity error) when the attempt
//! failed after TLS (or never failed at the TCP level) and it is not 7
//! (no SPN: the client then uses NTLM, a warning); beside a session that
//! connected it is an info. An `nla.stalled` it explains stays as
//! evidence and says so.
//!
//! `nla.ntlm_fallback`: the first CredSSP record is NTLM-sized (below
//! [`NTLM_FIRST_MAX`]) while the client host talks Kerberos: a KRB-ERROR 7
//! for the TERMSRV name, or KDC traffic with no TGS-REQ for any TERMSRV
//! service before CredSSP started (an IP address or an alias was dialled).

use super::{AttemptContext, AttemptDetector, Placed};
use crate::finding::{Code, Confidence, Draft, Family, Level, Outcome, Phase, Severity};
use crate::flow::table::KdcMessage;
use crate::proto::krb::{error_name, Kind, NORMAL_ERRORS};
use crate::session::Conn;
use std::net::IpAddr;

/// How long before the attempt's first SYN its Kerberos is looked at
/// (a TGT is usually fetched at logon, a service ticket within 0.1 s).
pub const WINDOW_BEFORE_NS: i64 = 30_000_000_000;
/// First client CredSSP records below this are NTLM NEGOTIATEs (81 bytes
/// under TLS 1.2 GCM); a Kerberos AP-REQ is about 1.9 KB (PROTOCOLS §8).
pub const NTLM_FIRST_MAX: u16 = 512;

pub struct Kerberos;

/// The service a KRB-ERROR or request is about, as far as an attempt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Termsrv,
    Http,
    Tgt,
}

impl Service {
    fn of(m: &crate::proto::krb::Message) -> Option<(Service, &str)> {
        let (kind, host) = m.service()?;
        let s = match kind.to_ascii_uppercase().as_str() {
            "TERMSRV" => Service::Termsrv,
            "HTTP" => Service::Http,
            "KRBTGT" => Service::Tgt,
            _ => return None,
        };
        Some((s, host))
    }

    fn phase(self) -> Phase {
        match self {
            Service::Http => Phase::GatewayHttp,
            Service::Termsrv | Service::Tgt => Phase::Nla,
        }
    }
}

/// Does the service's host part name the attempt (the whole name, or its
/// first label, case-insensitively; a `:port` suffix of an HTTP SPN
/// ignored)? Any does when the attempt has no name.
fn names_match(host: &str, names: &[String]) -> bool {
    if names.is_empty() {
        return true;
    }
    let host = host.split(':').next().unwrap_or("").trim_end_matches('.');
    fn first(n: &str) -> &str {
        n.split('.').next().unwrap_or("")
    }
    let by_label = host.parse::<IpAddr>().is_err();
    names.iter().any(|n| {
        let n = n.trim_end_matches('.');
        n.eq_ignore_ascii_case(host) || (by_label && first(n).eq_ignore_ascii_case(first(host)))
    })
}

/// The attempt's connections, its client host and its Kerberos window.
struct Scope<'a> {
    conns: Vec<&'a Conn>,
    host: IpAddr,
    from: i64,
    to: i64,
    names: Vec<String>,
}

impl<'a> Scope<'a> {
    fn new(cx: &AttemptContext<'a>) -> Option<Scope<'a>> {
        let conns: Vec<&Conn> = cx.attempt.conns.iter().map(|&i| &cx.conns[i]).collect();
        let first = conns.first()?;
        let mut names = cx.attempt.names(cx.conns, cx.cfg);
        names.retain(|n| n.parse::<IpAddr>().is_err());
        Some(Scope {
            host: first.client.ip(),
            from: first.first.ts - WINDOW_BEFORE_NS,
            to: conns
                .iter()
                .map(|c| c.last.ts)
                .max()
                .unwrap_or(first.last.ts),
            conns,
            names,
        })
    }

    fn messages<'k>(&self, krb: &'k [KdcMessage]) -> impl Iterator<Item = &'k KdcMessage> + 'k {
        let host = self.host;
        // The messages are in time order: the window is found by binary
        // search, so an attempt costs its window, not the capture's KDC
        // traffic.
        let start = krb.partition_point(|k| k.msg.at.ts < self.from);
        let end = krb.partition_point(|k| k.msg.at.ts <= self.to);
        krb[start..end.max(start)]
            .iter()
            .filter(move |k| k.client.ip() == host)
    }
}

/// KRB-ERRORs of one code, service and client name.
struct Errors<'a> {
    code: i32,
    service: Service,
    sname: String,
    cname: Option<String>,
    msgs: Vec<&'a KdcMessage>,
}

fn explanation(code: i32, sname: &str) -> (String, &'static str) {
    match code {
        6 => (
            "the KDC does not know the user's account (a typo in the user name, the wrong domain, or an account that was deleted)".into(),
            "Check the user name and domain as typed (DOMAIN\\user or user@domain.fqdn) and that the account exists in that domain.",
        ),
        7 => (
            format!("no account holds the service principal name {sname}: the client cannot get a Kerberos ticket for it and falls back to NTLM"),
            "Connect by the server's name as registered in the domain, or register the SPN (setspn -S TERMSRV/NAME HOST); where NTLM is restricted, NTLM cannot stand in.",
        ),
        12 => (
            "the KDC refused by policy (logon hours or workstation restrictions, a Protected Users member, or an authentication policy silo)".into(),
            "Check the account's logon hours and \"Log On To\" workstations, Protected Users membership and authentication policies; the DC's Security log (4768/4769/4771) gives the detail.",
        ),
        14 => (
            "the client and KDC share no encryption type (RC4 or DES disabled on one side, an account without AES keys)".into(),
            "Align msDS-SupportedEncryptionTypes and the \"Network security: Configure encryption types allowed for Kerberos\" policy; reset the account password to create AES keys.",
        ),
        18 => (
            "the account is disabled, locked out or expired".into(),
            "Unlock or enable the account (Active Directory Users and Computers), or wait for the lockout to expire; find the source of bad passwords (4740 on the PDC emulator).",
        ),
        23 => (
            "the user's password has expired".into(),
            "Change the password (Ctrl+Alt+End in a session, or another machine); with NLA the user cannot change it at the RDP logon screen.",
        ),
        24 => (
            "pre-authentication failed: a wrong password".into(),
            "Retype the password; check saved credentials (Credential Manager) and the keyboard layout; repeated failures lock the account.",
        ),
        37 => (
            "the client's clock differs from the KDC's by more than the allowed skew (5 minutes by default)".into(),
            "Fix the client's time (w32tm /resync, its time zone) or the DC's time source.",
        ),
        _ => (
            "the KDC refused the request".into(),
            "Look up the error code (RFC 4120 §7.5.9, MS-KILE) and the DC's Security log (4768/4769/4771).",
        ),
    }
}

/// The attempt failed where Kerberos could be the reason: after TLS, or
/// not at all at the TCP level.
fn explains(c: &Conn, service: Service) -> bool {
    match (service, c.failed_phase) {
        (_, None) => true,
        (Service::Http, Some(p)) => matches!(p, Phase::GatewayHttp | Phase::GatewayTunnel),
        (_, Some(p)) => matches!(p, Phase::Nla | Phase::Rdp),
    }
}

impl Kerberos {
    fn errors(&self, cx: &AttemptContext<'_>, s: &Scope<'_>, out: &mut Vec<Placed>) {
        let mut groups: Vec<Errors<'_>> = Vec::new();
        for k in s.messages(cx.krb) {
            let Kind::Error(code) = k.msg.kind else {
                continue;
            };
            if NORMAL_ERRORS.contains(&code) {
                continue;
            }
            let Some((service, host)) = Service::of(&k.msg) else {
                continue;
            };
            if service != Service::Tgt && !names_match(host, &s.names) {
                continue;
            }
            let sname = k.msg.sname.clone().unwrap_or_default();
            match groups
                .iter_mut()
                .find(|g| g.code == code && g.sname == sname && g.cname == k.msg.cname)
            {
                Some(g) => g.msgs.push(k),
                None => groups.push(Errors {
                    code,
                    service,
                    sname,
                    cname: k.msg.cname.clone(),
                    msgs: vec![k],
                }),
            }
        }
        let Some(last) = s.conns.last() else {
            return;
        };
        // Connected: the session reached the active phase, or is still
        // open at the end of the capture; a connection that closed before
        // the active phase did not get past the logon.
        let connected =
            cx.outcome() == Outcome::Connected && (last.active || last.ended_by.is_none());
        for g in groups {
            let (member, rfc) = match error_name(g.code) {
                Some((m, r)) => (Some(m), r.to_string()),
                None => (None, format!("error {}", g.code)),
            };
            let code = Code::member(Family::Kerberos, member);
            let first = g.msgs[0];
            let lastm = g.msgs[g.msgs.len() - 1];
            let severity = if connected {
                Severity::Info
            } else if g.code == 7 || !explains(last, g.service) {
                Severity::Warning
            } else {
                Severity::Error
            };
            let who = g
                .cname
                .as_deref()
                .map(|c| {
                    if first.msg.realm.is_empty() {
                        format!(" ({c})")
                    } else {
                        format!(" ({c}@{})", first.msg.realm)
                    }
                })
                .unwrap_or_default();
            let n = g.msgs.len();
            let times = if n > 1 {
                format!(" ({n} times, the last in frame {})", lastm.msg.at.frame)
            } else {
                String::new()
            };
            let skew = match (g.code, first.msg.stime, first.msg.ctime) {
                (37, Some(st), Some(ct)) => {
                    format!("; the KDC's clock is {} s from the client's", st - ct)
                }
                _ => String::new(),
            };
            let etext = first
                .msg
                .etext
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| format!(" (\"{t}\")"))
                .unwrap_or_default();
            let mut summary =
                format!(
                "The KDC {} answered {rfc} ({}){etext} to {}{who} for {} in frame {}{times}{skew}",
                first.server.ip(),
                g.code,
                first.client.ip(),
                if g.sname.is_empty() { "a request" } else { &g.sname },
                first.msg.at.frame,
            );
            if connected {
                summary.push_str("; the session connected nevertheless");
            }
            let (why, remedy) = explanation(g.code, &g.sname);
            let cause = match g.service {
                Service::Termsrv => {
                    format!("Kerberos for the RDP server's service ticket failed: {why}.")
                }
                Service::Http => {
                    format!("Kerberos for the RD Gateway's service ticket failed: {why}.")
                }
                Service::Tgt => format!("The user's Kerberos logon to the domain failed: {why}."),
            };
            let f = super::filter::addr_field(&first.client.ip());
            let num = if member.is_some() {
                String::new()
            } else {
                format!(" (error-code {})", g.code)
            };
            let mut d = Draft::new(
                code,
                severity,
                g.service.phase(),
                first.msg.at.frame,
                first.msg.at.ts,
            )
            .until(lastm.msg.at.frame)
            .summary(format!("{summary}{num}"))
            .cause(cause)
            .remedy(remedy)
            .filter(format!(
                "{f}=={} && {f}=={} && kerberos.error_code=={}",
                first.client.ip(),
                first.server.ip(),
                g.code
            ));
            d.confidence = Confidence::lowered(
                Level::Medium,
                "tied to the attempt by client address and time; Kerberos does not name the RDP connection",
            );
            if severity == Severity::Error {
                // An nla.stalled of the attempt is this error's evidence.
                for p in out.iter_mut() {
                    if matches!(p.draft.code, Code::NlaStalled | Code::NlaClientAborted)
                        && s.conns.iter().any(|c| p.ends == Some((c.client, c.server)))
                    {
                        p.draft.cause = format!(
                            "{} Here the KDC's {rfc} in frame {} ({code}) explains it.",
                            p.draft.cause, first.msg.at.frame
                        )
                        .into();
                    }
                }
            }
            out.push(Placed {
                ends: Some((first.client, first.server)),
                draft: d,
            });
        }
    }

    fn ntlm(&self, cx: &AttemptContext<'_>, s: &Scope<'_>, out: &mut Vec<Placed>) {
        let Some(c) = s.conns.last() else {
            return;
        };
        let Some((len, at)) = c.credssp_first.filter(|f| f.0 < NTLM_FIRST_MAX) else {
            return;
        };
        let msgs: Vec<&KdcMessage> = s.messages(cx.krb).collect();
        if msgs.is_empty() {
            return; // no Kerberos from the host: nothing says it fell back
        }
        let no_spn = msgs.iter().find(|k| {
            k.msg.kind == Kind::Error(7)
                && Service::of(&k.msg)
                    .is_some_and(|(sv, h)| sv == Service::Termsrv && names_match(h, &s.names))
        });
        let asked = msgs.iter().any(|k| {
            k.msg.kind == Kind::TgsReq
                && k.msg.at.ts <= at.ts
                && Service::of(&k.msg).is_some_and(|(sv, _)| sv == Service::Termsrv)
        });
        let (why, frames) = match no_spn {
            Some(k) => (
                format!(
                    "the KDC has no {} (KRB-ERROR 7 in frame {})",
                    k.msg.sname.as_deref().unwrap_or("TERMSRV SPN"),
                    k.msg.at.frame
                ),
                vec![k.msg.at.frame, at.frame],
            ),
            None if !asked => (
                format!(
                    "the client host talks to a KDC ({} Kerberos message{} in the window, from frame {}) but asked for no TERMSRV ticket before CredSSP: it dialled an IP address or a name that is no SPN (an alias)",
                    msgs.len(),
                    super::plural(msgs.len()),
                    msgs[0].msg.at.frame
                ),
                vec![msgs[0].msg.at.frame, at.frame],
            ),
            None => return,
        };
        let stalled = out
            .iter_mut()
            .find(|p| p.draft.code == Code::NlaStalled && p.ends == Some((c.client, c.server)));
        let refused = stalled.is_some();
        if let Some(p) = stalled {
            p.draft.cause = format!(
                "{} The client used NTLM ({why}); a server or domain that refuses NTLM (\"Restrict NTLM\" policy, Protected Users) is the likely reason; a key log would name the exact status (0x80090302 SEC_E_UNSUPPORTED_FUNCTION when NTLM is refused, 0xC000006E for a Protected Users member).",
                p.draft.cause
            )
            .into();
        }
        let f = super::filter::addr_field(&c.client.ip());
        let d = Draft::new(Code::NlaNtlmFallback, Severity::Info, Phase::Nla, frames[0].min(frames[1]), at.ts)
            .until(frames[0].max(frames[1]))
            .summary(format!(
                "The client's first CredSSP record in frame {} is {len} bytes, an NTLM NEGOTIATE (a Kerberos AP-REQ is about 1.9 KB): {why}",
                at.frame
            ))
            .cause(if refused {
                "NLA fell back from Kerberos to NTLM, and the server then refused the logon."
            } else {
                "NLA fell back from Kerberos to NTLM; this works until NTLM is restricted (\"Restrict NTLM\" policies, Protected Users members), and NTLM gives no mutual authentication of the server."
            })
            .remedy("Connect by the server's DNS name (the one in its TERMSRV SPN) so that Kerberos is used; for an alias, register TERMSRV/ALIAS on the server's account (setspn -S).")
            .filter(format!(
                "{f}=={} && ({})",
                c.client.ip(),
                super::frame_set(&frames)
            ))
            .confidence(Confidence::lowered(
                Level::Medium,
                "NTLM inferred from the size of an encrypted record",
            ));
        out.push(Placed {
            ends: Some((c.client, c.server)),
            draft: d,
        });
    }
}

impl AttemptDetector for Kerberos {
    fn codes(&self) -> Vec<Code> {
        let mut v: Vec<Code> = crate::proto::krb::ERRORS
            .iter()
            .map(|e| Code::member(Family::Kerberos, Some(e.1)))
            .collect();
        v.push(Code::member(Family::Kerberos, None));
        v.push(Code::NlaNtlmFallback);
        v
    }

    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>) {
        if cx.krb.is_empty() {
            return;
        }
        let Some(s) = Scope::new(cx) else {
            return;
        };
        self.errors(cx, &s, out);
        self.ntlm(cx, &s, out);
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::conn;
    use super::*;
    use crate::capture::Mark;
    use crate::config::Config;
    use crate::finding::Dir;
    use crate::flow::Transport;
    use crate::proto::krb::parse;
    use crate::session;
    use crate::synth::{krb_error, krb_tgs_req};

    const S: i64 = 1_000_000_000;

    fn kdc(frame: u64, from: &str, bytes: &[u8]) -> KdcMessage {
        let at = Mark {
            frame,
            ts: frame as i64 * S,
        };
        let dir = if bytes[0] == 0x6c {
            Dir::Client
        } else {
            Dir::Server
        };
        KdcMessage {
            client: format!("{from}:51000").parse().unwrap(),
            server: "198.18.0.88:88".parse().unwrap(),
            msg: parse(bytes, dir, at).expect("parses"),
        }
    }

    fn error(frame: u64, code: u8, sname: &[&str]) -> KdcMessage {
        kdc(
            frame,
            "198.18.0.1",
            &krb_error(code, "alice", sname, 1_796_203_800),
        )
    }

    fn judge(
        conns: Vec<Conn>,
        krb: &[KdcMessage],
    ) -> (Vec<Placed>, super::super::verdict::Verdict) {
        let cfg = Config::default();
        let end = Mark {
            frame: 999,
            ts: 999 * S,
        };
        let attempts = session::group(&conns, &[], end, &cfg);
        let j = super::super::judge_attempt(&attempts[0], &conns, &[], krb, &cfg, end);
        let mine = j
            .findings
            .into_iter()
            .filter(|p| {
                p.draft.code.family() == Some(Family::Kerberos)
                    || p.draft.code == Code::NlaNtlmFallback
                    || p.draft.code == Code::NlaStalled
            })
            .collect();
        (mine, j.verdict)
    }

    fn stalled(first: u64, last: u64) -> Conn {
        let mut c = conn(Transport::Tcp, 50000, first, last);
        c.outcome = Outcome::Failed;
        c.failed_phase = Some(Phase::Nla);
        c.drafts.push(
            Draft::new(
                Code::NlaStalled,
                Severity::Error,
                Phase::Nla,
                first + 5,
                (first + 5) as i64 * S,
            )
            .cause("NLA failed."),
        );
        c
    }

    #[test]
    fn a_wrong_password_is_the_verdict_and_nla_stalled_its_evidence() {
        let (f, v) = judge(
            vec![stalled(50, 60)],
            &[error(40, 24, &["krbtgt", "RDPSIFT.TEST"])],
        );
        assert_eq!(
            v.code.map(|c| c.to_string()).as_deref(),
            Some("kerberos.preauth_failed")
        );
        assert_eq!(
            (v.outcome, v.failed_phase, v.fits_0x904),
            (Outcome::Failed, Some(Phase::Nla), "no")
        );
        let k = f
            .iter()
            .find(|p| p.draft.code.family() == Some(Family::Kerberos))
            .unwrap();
        assert_eq!(
            (k.draft.severity, k.draft.first_frame),
            (Severity::Error, 40)
        );
        assert_eq!(
            k.draft.filter,
            "ip.addr==198.18.0.1 && ip.addr==198.18.0.88 && kerberos.error_code==24"
        );
        assert!(k.draft.summary.starts_with("The KDC 198.18.0.88 answered KDC_ERR_PREAUTH_FAILED (24) to 198.18.0.1 (alice@RDPSIFT.TEST) for krbtgt/RDPSIFT.TEST in frame 40"), "{}", k.draft.summary);
        let n = f.iter().find(|p| p.draft.code == Code::NlaStalled).unwrap();
        assert!(n.draft.cause.ends_with("explains it."), "{}", n.draft.cause);
    }

    #[test]
    fn the_window_the_host_and_the_normal_errors_bound_what_counts() {
        let quiet = |krb: &[KdcMessage]| judge(vec![stalled(50, 60)], krb).0.len() == 1;
        // 31 s before the first SYN, 25 PREAUTH_REQUIRED, another host.
        assert!(quiet(&[error(19, 24, &["krbtgt", "RDPSIFT.TEST"])]));
        assert!(!quiet(&[error(20, 24, &["krbtgt", "RDPSIFT.TEST"])]));
        assert!(quiet(&[error(45, 25, &["krbtgt", "RDPSIFT.TEST"])]));
        assert!(quiet(&[kdc(
            45,
            "198.18.0.9",
            &krb_error(24, "bob", &["krbtgt", "RDPSIFT.TEST"], 0)
        )]));
        assert!(quiet(&[error(61, 24, &["krbtgt", "RDPSIFT.TEST"])]));
        // Another service (a file share) is not about the attempt.
        assert!(quiet(&[error(45, 7, &["cifs", "files.rdpsift.test"])]));
    }

    #[test]
    fn a_termsrv_error_must_name_the_attempt() {
        let mut c = stalled(50, 60);
        c.facts.target = "rdp-host.rdpsift.test".into();
        let (f, _) = judge(vec![c.clone()], &[error(45, 7, &["TERMSRV", "other"])]);
        assert_eq!(f.len(), 1);
        let (f, v) = judge(vec![c.clone()], &[error(45, 7, &["TERMSRV", "RDP-HOST"])]);
        let k = &f
            .iter()
            .find(|p| p.draft.code.family().is_some())
            .unwrap()
            .draft;
        assert_eq!(
            (k.code.to_string().as_str(), k.severity),
            ("kerberos.service_unknown", Severity::Warning)
        );
        assert_eq!(v.code, Some(Code::NlaStalled));
        // An error without a name of its own keeps its number.
        let (f, v) = judge(
            vec![c],
            &[error(45, 41, &["TERMSRV", "rdp-host.rdpsift.test"])],
        );
        let k = &f
            .iter()
            .find(|p| p.draft.code.family().is_some())
            .unwrap()
            .draft;
        assert_eq!(k.code.to_string(), "kerberos.unknown");
        assert!(k.summary.contains("(error-code 41)"), "{}", k.summary);
        assert_eq!(v.code, Some(k.code));
    }

    #[test]
    fn beside_a_connected_session_an_error_is_an_info() {
        let mut c = conn(Transport::Tcp, 50000, 50, 60);
        c.outcome = Outcome::Connected;
        let (f, v) = judge(vec![c], &[error(45, 24, &["krbtgt", "RDPSIFT.TEST"])]);
        assert_eq!(f[0].draft.severity, Severity::Info);
        assert!(f[0]
            .draft
            .summary
            .ends_with("the session connected nevertheless"));
        assert_eq!((v.outcome, v.code), (Outcome::Connected, None));
    }

    #[test]
    fn ntlm_when_the_host_talks_kerberos_but_asked_no_termsrv_ticket() {
        let mut c = stalled(50, 60);
        c.credssp_first = Some((
            81,
            Mark {
                frame: 55,
                ts: 55 * S,
            },
        ));
        let tgt = error(40, 25, &["krbtgt", "RDPSIFT.TEST"]);
        let (f, _) = judge(vec![c.clone()], std::slice::from_ref(&tgt));
        let n = f
            .iter()
            .find(|p| p.draft.code == Code::NlaNtlmFallback)
            .expect("fallback");
        assert_eq!(
            (n.draft.first_frame, n.draft.last_frame, n.draft.severity),
            (40, 55, Severity::Info)
        );
        assert!(
            n.draft.summary.contains("asked for no TERMSRV ticket"),
            "{}",
            n.draft.summary
        );
        let s = f.iter().find(|p| p.draft.code == Code::NlaStalled).unwrap();
        assert!(s.draft.cause.contains("Restrict NTLM"), "{}", s.draft.cause);
        // A TGS-REQ for the server: Kerberos was tried, no fallback said.
        let tgs = kdc(54, "198.18.0.1", &krb_tgs_req(&["TERMSRV", "rdp-host"], 0));
        let (f, _) = judge(vec![c.clone()], &[tgt.clone(), tgs]);
        assert!(f.iter().all(|p| p.draft.code != Code::NlaNtlmFallback));
        // ... unless the KDC knew no such SPN.
        let (f, _) = judge(vec![c.clone()], &[error(54, 7, &["TERMSRV", "rdp-host"])]);
        let n = f
            .iter()
            .find(|p| p.draft.code == Code::NlaNtlmFallback)
            .expect("fallback");
        assert!(
            n.draft
                .summary
                .contains("the KDC has no TERMSRV/rdp-host (KRB-ERROR 7 in frame 54)"),
            "{}",
            n.draft.summary
        );
        // A Kerberos-sized first record, or no Kerberos at all: nothing.
        c.credssp_first = Some((
            1900,
            Mark {
                frame: 55,
                ts: 55 * S,
            },
        ));
        assert!(judge(vec![c], &[tgt])
            .0
            .iter()
            .all(|p| p.draft.code != Code::NlaNtlmFallback));
    }
}
