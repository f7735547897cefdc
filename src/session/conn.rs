//! A finished connection, as the attempt stage needs it: endpoints, times,
//! counters, the protocol facts of the attempts report, its timeline, and
//! what the per-flow detectors found (handed in: the session stage judges
//! nothing). Made as soon as a flow ends, so the flow itself (reassembly
//! state, per-segment evidence) can be dropped while the capture goes on.

use super::moment::{ending, rdp_moment};
use crate::capture::Mark;
use crate::finding::{rfc3339, Dir, Draft, Outcome, Phase};
use crate::flow::{Flow, Transport};
use crate::proto::tls::{cipher_name, version_name};
use crate::proto::x224::{failure_name, NegResult};
use crate::proto::{AppClass, Step, Via};
use std::net::SocketAddr;

/// The protocol facts an attempt row shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// SNI, routing token (or `--target`, filled in by the attempt).
    pub target: String,
    pub user: String,
    pub requested: String,
    pub selected: String,
    pub tls_version: String,
    pub tls_cipher: String,
    pub cert_subject: String,
    pub cert_not_after: String,
    pub client_name: String,
    pub client_build: String,
    pub channels: String,
    pub rdp_encryption: String,
}

/// One finished TCP connection or UDP conversation.
#[derive(Debug, Clone)]
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
    pub first: Mark,
    pub last: Mark,
    pub packets: u64,
    pub bytes: u64,
    /// A UDP side channel (an RDPEUDP SYN or the gateway's DTLS): it joins
    /// the TCP connection it belongs to.
    pub udp_side: bool,
    /// RDP_NEG_CORRELATION_INFO of the X.224 request (TCP) or the
    /// correlation id of the RDPEUDP SYN (UDP).
    pub correlation_id: Option<[u8; 16]>,
    /// The side that ended the connection first (FIN or RST).
    pub ended_by: Option<Dir>,
    /// NLA (HYBRID/HYBRID_EX) selected and TLS done: the length and frame
    /// of the client's first encrypted record, CredSSP's first message
    /// (NTLM's NEGOTIATE is about 81 bytes, a Kerberos AP-REQ about 1.9 KB,
    /// PROTOCOLS.md §8).
    pub credssp_first: Option<(u16, Mark)>,
    /// The session reached the active phase (`moment::active`).
    pub active: bool,
    /// How the application was recognised (`rdp`, `rdp via socks5`, …).
    pub app: String,
    pub facts: Facts,
    /// Names of the server in its certificate (SAN, then CN).
    pub cert_names: Vec<String>,
    pub timeline: String,
    /// What the per-flow detectors found, and the outcome that follows.
    pub drafts: Vec<Draft>,
    pub outcome: Outcome,
    pub failed_phase: Option<Phase>,
    /// What the decrypted (or Standard RDP Security plaintext) PDUs leave
    /// for the attempt and the capture: boxed, so a connection without
    /// them costs one pointer.
    pub inside: Option<Box<InsideUse>>,
}

/// What a connection's decrypted PDUs leave once the flow is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsideUse {
    /// What the run's TLS keys did for it.
    pub key_use: Option<KeyUse>,
    /// The server's Server Redirection PDU (a connection broker): where it
    /// sent the client.
    pub redirect: Option<Redirected>,
}

/// Where a Server Redirection PDU sent the client (MS-RDPBCGR 2.2.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirected {
    /// The target's address or name (LB_TARGET_NET_ADDRESS, else the FQDN
    /// or NetBIOS name).
    pub target: String,
    /// The routing token the client presents to it (LB_LOAD_BALANCE_INFO).
    pub lb_info: Option<String>,
    pub at: Mark,
}

impl Redirected {
    /// Is `c` the connection the client made where it was sent: to the
    /// target's address, or presenting the routing token, or to a server
    /// whose name (SNI, certificate) is the target's?
    pub fn leads_to(&self, c: &Conn) -> bool {
        if let Ok(ip) = self.target.parse::<std::net::IpAddr>() {
            if c.server.ip() == ip {
                return true;
            }
        }
        let token = |t: &str| t.trim().trim_end_matches("\r\n").to_string();
        if let Some(lb) = &self.lb_info {
            if !lb.is_empty() && token(&c.facts.target) == token(lb) {
                return true;
            }
        }
        c.targeted(&self.target)
    }
}

/// What the run's TLS keys did for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Its records were opened with keys from this source (or failed to).
    Used(u16),
    /// No key for its client random (the random's first 8 bytes, to tell
    /// keys that came too late on a stream).
    Missed([u8; 8]),
    /// Its handshake is not in the capture: it cannot be decrypted (the
    /// frame of its first record).
    NoHandshake(u64),
}

impl Conn {
    /// Summarises a finished flow with its judgement.
    pub fn new(f: &Flow, drafts: Vec<Draft>, outcome: (Outcome, Option<Phase>)) -> Conn {
        let x = f.app.facts();
        let udp_side =
            f.key.transport == Transport::Udp && (x.udp.syn.is_some() || x.udp.dtls.is_some());
        let correlation_id = match f.key.transport {
            Transport::Tcp => x.cr.as_ref().and_then(|(r, _)| r.correlation_id),
            Transport::Udp => x.udp.syn.and_then(|(s, _)| s.correlation_id),
        };
        let cert = x.server_cert().map(|c| c.0);
        let facts = facts(f, cert.as_ref());
        let mut cert_names = Vec::new();
        if let Some(c) = cert {
            cert_names.extend(c.san);
            cert_names.extend(c.cn);
        }
        Conn {
            client: f.client,
            server: f.server,
            transport: f.key.transport,
            first: f.first,
            last: f.last,
            packets: f.dirs[Dir::Client].packets + f.dirs[Dir::Server].packets,
            bytes: f.dirs[Dir::Client].bytes + f.dirs[Dir::Server].bytes,
            udp_side,
            correlation_id,
            ended_by: ending(f).map(|e| e.0),
            credssp_first: x
                .selected()
                .filter(|p| p.nla())
                .and_then(|_| x.tls.records.iter().find(|r| r.dir == Dir::Client))
                .map(|r| (r.len, r.at)),
            active: super::moment::active(f).is_some(),
            app: app_name(f),
            facts,
            cert_names,
            timeline: timeline(f),
            drafts,
            outcome: outcome.0,
            failed_phase: outcome.1,
            inside: x.inside.as_deref().map(|i| {
                Box::new(InsideUse {
                    key_use: key_use(x),
                    redirect: i.redirect.as_ref().and_then(|(r, at)| {
                        Some(Redirected {
                            target: r.target.clone()?,
                            lb_info: r.lb_info.clone(),
                            at: *at,
                        })
                    }),
                })
            }),
        }
    }

    /// A connection made by hand for unit tests: `client` to `server`, from
    /// frame `first` to `last` (the time is the frame number in seconds).
    #[cfg(test)]
    pub(crate) fn test(
        client: &str,
        server: &str,
        transport: Transport,
        first: u64,
        last: u64,
        outcome: Outcome,
    ) -> Conn {
        let m = |f: u64| Mark {
            frame: f,
            ts: f as i64 * 1_000_000_000,
        };
        Conn {
            client: client.parse().expect("addr"),
            server: server.parse().expect("addr"),
            transport,
            first: m(first),
            last: m(last),
            packets: 0,
            bytes: 0,
            udp_side: transport == Transport::Udp,
            correlation_id: None,
            ended_by: None,
            credssp_first: None,
            active: false,
            app: String::new(),
            facts: Facts::default(),
            cert_names: vec![],
            timeline: String::new(),
            drafts: vec![],
            outcome,
            failed_phase: (outcome == Outcome::Failed).then_some(Phase::X224),
            inside: None,
        }
    }

    /// What the run's keys did for it.
    pub fn key_use(&self) -> Option<KeyUse> {
        self.inside.as_ref().and_then(|i| i.key_use)
    }

    /// Where a Server Redirection PDU sent the client.
    pub fn redirect(&self) -> Option<&Redirected> {
        self.inside.as_ref().and_then(|i| i.redirect.as_ref())
    }

    /// Frees what the report rows were made from (the attempt is built);
    /// endpoints, times and counters stay.
    pub fn release(&mut self) {
        self.drafts = Vec::new();
        self.facts = Facts::default();
        self.cert_names = Vec::new();
        self.timeline = String::new();
        self.app = String::new();
    }

    /// Does `--target` name this connection's server (its address, or a
    /// name it was reached by or its certificate carries)?
    pub fn targeted(&self, target: &str) -> bool {
        if let Ok(ip) = target.parse::<std::net::IpAddr>() {
            return self.server.ip() == ip;
        }
        std::iter::once(&self.facts.target)
            .chain(&self.cert_names)
            .any(|n| crate::proto::tls::name_matches(n, target) || n.eq_ignore_ascii_case(target))
    }
}

/// The first 8 bytes of a client random: enough to tell sessions apart in
/// one capture, and a connection stays small.
pub fn prefix(random: &[u8; 32]) -> [u8; 8] {
    let mut p = [0; 8];
    p.copy_from_slice(&random[..8]);
    p
}

fn key_use(x: &crate::proto::Facts) -> Option<KeyUse> {
    use crate::proto::inside::KeyState;
    match &x.inside.as_deref()?.keys {
        KeyState::Decrypting { source } | KeyState::Failed { source, .. } => {
            Some(KeyUse::Used(*source))
        }
        KeyState::NoSecret => x.tls.client_random.map(|r| KeyUse::Missed(prefix(&r))),
        KeyState::NoHandshake => x
            .tls
            .records
            .first()
            .map(|r| KeyUse::NoHandshake(r.at.frame)),
        _ => None,
    }
}

fn app_name(f: &Flow) -> String {
    match f.app.class {
        AppClass::Rdp { via, .. } => match via {
            Via::Direct => "rdp".into(),
            Via::Socks4 => "rdp via socks4".into(),
            Via::Socks5 => "rdp via socks5".into(),
            Via::HttpConnect => "rdp via http connect".into(),
            Via::Preconnection => "rdp with preconnection pdu".into(),
        },
        AppClass::Tls => "tls".into(),
        AppClass::Http => "http".into(),
        AppClass::Other => "other".into(),
        AppClass::Unknown => {
            let u = &f.app.facts().udp;
            match (u.version(), u.syn.is_some(), u.dtls.is_some()) {
                (Some(2), _, _) => "rdpeudp2".into(),
                (Some(_), _, _) => "rdpeudp v1".into(),
                (None, true, _) => "rdpeudp".into(),
                (None, false, true) => "gateway dtls".into(),
                _ => String::new(),
            }
        }
    }
}

/// The connection's timeline in frames: `tcp 1-3; x224 4-6 SSL|HYBRID→HYBRID;
/// tls 8-16 TLS 1.2; nla 3c/2s records; data c18 s20; server FIN 60`.
pub fn timeline(f: &Flow) -> String {
    let x = &f.app.facts();
    let tcp = f.tcp();
    let mut v: Vec<String> = Vec::new();
    let syn = tcp.dirs[Dir::Client].syn;
    if syn.count > 0 {
        match tcp.established {
            Some(e) => v.push(format!("tcp {}-{}", syn.first.frame, e.frame)),
            None if tcp.syn_ack.count > 0 => v.push(format!(
                "tcp {}-{}",
                syn.first.frame, tcp.syn_ack.first.frame
            )),
            None => v.push(format!("tcp syn {}x from {}", syn.count, syn.first.frame)),
        }
    } else if tcp.mid_stream {
        v.push("tcp mid-stream".into());
    }
    if let Some((cr, at)) = &x.cr {
        let req = cr
            .neg
            .map_or("none".to_string(), |n| n.protocols.to_string());
        match &x.cc {
            Some((cc, cat)) => {
                let ans = match cc {
                    NegResult::None => "RDP".to_string(),
                    NegResult::Rsp { selected, .. } => selected.to_string(),
                    NegResult::Failure { code } => {
                        failure_name(*code).map_or(format!("failure {code}"), |n| n.0.to_string())
                    }
                };
                v.push(format!("x224 {}-{} {req}→{ans}", at.frame, cat.frame));
            }
            None => v.push(format!("x224 {} {req}→(none)", at.frame)),
        }
    }
    if let Some(m) = x.when(Step::McsConnectInitial) {
        let r = x
            .when(Step::McsConnectResponse)
            .map_or(String::new(), |r| format!("-{}", r.frame));
        v.push(format!("mcs {}{r}", m.frame));
    }
    if let Some((_, ch)) = &x.tls.client_hello {
        let end = x
            .tls
            .done
            .or(x.tls.server_hello.map(|s| s.1))
            .map_or(String::new(), |m| format!("-{}", m.frame));
        let ver = x.tls.server_hello.map_or(String::new(), |(h, _)| {
            format!(" {}", version_name(h.version))
        });
        let state = if x.tls.done.is_some() {
            ""
        } else {
            " (incomplete)"
        };
        v.push(format!("tls {}{end}{ver}{state}", ch.frame));
    }
    let t = &x.tls;
    if t.done.is_some() {
        v.push(format!(
            "encrypted {}c/{}s records, {}/{} bytes",
            t.app[Dir::Client].records,
            t.app[Dir::Server].records,
            t.app[Dir::Client].bytes,
            t.app[Dir::Server].bytes
        ));
    }
    let u = &x.udp;
    if let Some((_, first)) = u.syn {
        let mut t = format!("rdpeudp syn {}x from {}", u.syns, first.frame);
        if let Some((_, sa)) = u.syn_ack {
            t.push_str(&format!(
                ", syn+ack {} v{}",
                sa.frame,
                u.version().unwrap_or(1)
            ));
        }
        v.push(t);
    }
    if let Some(d) = u.dtls {
        v.push(format!("dtls {}x from {}", u.dtls_count, d.frame));
    }
    if let (Some(c), Some(s)) = (
        f.dirs[Dir::Client].first_data,
        f.dirs[Dir::Server].first_data,
    ) {
        v.push(format!("data c{} s{}", c.frame, s.frame));
    }
    if let Some((d, m, how)) = ending(f) {
        let phase = rdp_moment(f, m.frame).map_or("tcp", |p| p.0.name());
        let how = if how == "reset" { "RST" } else { "FIN" };
        v.push(format!("{d} {how} {} ({phase})", m.frame));
    }
    v.join("; ")
}

/// The protocol facts of one flow (`cert`: its server certificate).
pub fn facts(f: &Flow, cert: Option<&crate::proto::tls::CertInfo>) -> Facts {
    let x = &f.app.facts();
    let mut r = Facts::default();
    if let Some((cr, _)) = &x.cr {
        r.user = cr.cookie.clone().unwrap_or_default();
        r.target = cr.routing_token.clone().unwrap_or_default();
        r.requested = cr
            .neg
            .map_or("none".to_string(), |n| n.protocols.to_string());
    }
    if let Some(u) = x.inside.as_deref().and_then(|i| i.user()) {
        // Decrypted (or in the clear): the logon's own user, not the cookie.
        r.user = u;
    }
    if let Some((h, _)) = &x.tls.client_hello {
        if let Some(sni) = &h.sni {
            r.target = sni.clone();
        }
    }
    if let Some((cc, _)) = &x.cc {
        r.selected = match cc {
            NegResult::None => "RDP (no negotiation)".into(),
            NegResult::Rsp { selected, .. } => selected.to_string(),
            NegResult::Failure { code } => format!(
                "failure {}",
                failure_name(*code).map_or(code.to_string(), |n| n.0.to_string())
            ),
        };
    }
    if let Some((h, _)) = &x.tls.server_hello {
        r.tls_version = version_name(h.version);
        r.tls_cipher = cipher_name(h.cipher);
    }
    if let Some(c) = cert {
        r.cert_subject = c.subject.clone();
        r.cert_not_after = rfc3339(c.not_after.saturating_mul(1_000_000_000));
    }
    if let Some((c, _)) = &x.client_data {
        r.client_name = c.name.trim_end().to_string();
        r.client_build = c.build.to_string();
        r.channels = c.channels.join(";");
    }
    if let Some((sd, _)) = &x.server_data {
        if let (Some(m), Some(l)) = (sd.encryption_method, sd.encryption_level) {
            r.rdp_encryption = format!(
                "{}, {}",
                crate::proto::mcs::method_name(m),
                crate::proto::mcs::level_name(l)
            );
        }
    }
    r
}
