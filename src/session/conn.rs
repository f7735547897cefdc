//! A finished connection, as the attempt stage needs it: endpoints, times,
//! counters, the protocol facts of the attempts report, its timeline, and
//! what the per-flow detectors found (handed in: the session stage judges
//! nothing). Made as soon as a flow ends, so the flow itself (reassembly
//! state, per-segment evidence) can be dropped while the capture goes on.

use super::moment::{ending, rdp_moment};
use crate::capture::Mark;
use crate::finding::{rfc3339, Dir, Draft, Outcome, Phase};
use crate::flow::{Flow, Transport};
use crate::proto::gateway::{Channel, Kind};
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
    /// An RD Gateway leg, or the RDP connection tunnelled through one.
    pub gateway: Option<Box<GatewayUse>>,
}

/// What a connection has to do with an RD Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUse {
    /// The transport (`None`: a leg known only by the gateway's name, its
    /// content unread).
    pub kind: Option<Kind>,
    pub channel: Option<Channel>,
    /// `RDG-Connection-Id`: the same on a tunnel's IN and OUT channels.
    pub connection_id: Option<String>,
    /// A tunnelled connection: the leg that carried it (client, gateway).
    pub carried_by: Option<(SocketAddr, SocketAddr)>,
    /// The tunnel reached the target (CHANNEL_RESPONSE succeeded), or
    /// this is the tunnelled connection.
    pub channel_open: bool,
    /// The WebSocket upgrade this leg asked for was answered 200 (the
    /// legacy OUT channel): its frame.
    pub upgrade_declined: Option<Mark>,
}

impl GatewayUse {
    /// A leg that may carry the tunnel (not a KDC proxy call, not a
    /// companion IN channel).
    pub fn opens_tunnel(&self) -> bool {
        self.carried_by.is_none()
            && self.channel != Some(Channel::In)
            && self.kind.is_none_or(|k| k.tunnel())
    }
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
    pub fn new(f: &Flow, mut drafts: Vec<Draft>, outcome: (Outcome, Option<Phase>)) -> Conn {
        // Held until the file's attempts are judged: a vector that grew to
        // four drafts for one keeps 550 bytes of nothing per connection.
        drafts.shrink_to_fit();
        let x = f.app.facts();
        let udp_side = f.key.transport == Transport::Udp
            && (f.rdpeudp().syn.is_some() || f.rdpeudp().dtls.is_some());
        let correlation_id = match f.key.transport {
            Transport::Tcp => x.cr.as_ref().and_then(|(r, _)| r.correlation_id),
            Transport::Udp => f.rdpeudp().syn.and_then(|(s, _)| s.correlation_id),
        };
        let cert = x.server_cert().map(|c| c.0);
        let mut facts = facts(f, cert.as_ref());
        let gateway = gateway_use(f);
        if let Some(t) = f.tunnel_of.as_deref().and_then(|t| t.target.as_ref()) {
            // The target the gateway was asked for, not the gateway.
            facts.target = t.0.clone();
        } else if let Some(g) = f.app.gateway_leg() {
            if let Some((t, _, _)) = &g.tsg.target {
                facts.target = t.clone();
            }
        }
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
            gateway,
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
            gateway: None,
        }
    }

    /// The RD Gateway leg or tunnel this connection is.
    pub fn gateway(&self) -> Option<&GatewayUse> {
        self.gateway.as_deref()
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

/// A gateway leg's HTTP and MS-TSGU steps: `http RDG_OUT_DATA 401,401,101
/// 12-20; tsg handshake 22 tunnel 24 auth 26 channel 28 → host:3389`.
fn gateway_timeline(g: &crate::proto::gateway::Leg) -> String {
    use crate::proto::tsgu::{failed, result_name};
    let mut s = String::new();
    if let Some(first) = g.exchanges.first() {
        let codes: Vec<String> = g
            .exchanges
            .iter()
            .map(|e| {
                e.response
                    .as_ref()
                    .map_or("-".into(), |r| r.status.to_string())
            })
            .collect();
        let last = g
            .exchanges
            .iter()
            .rev()
            .find_map(|e| e.response.as_ref().map(|r| r.at))
            .unwrap_or(first.at);
        s = format!(
            "http {} {} {}-{}",
            first.method,
            codes.join(","),
            first.at.frame,
            last.frame
        );
    }
    let t = &g.tsg;
    let mut steps = Vec::new();
    for (name, v) in [
        ("handshake", t.handshake),
        ("tunnel", t.tunnel),
        ("auth", t.tunnel_auth),
        ("channel", t.channel),
    ] {
        if let Some((code, at)) = v {
            if failed(code) {
                let n = result_name(code).map_or(format!("0x{code:08X}"), str::to_string);
                steps.push(format!("{name} {} {n}", at.frame));
            } else {
                steps.push(format!("{name} {}", at.frame));
            }
        }
    }
    if !steps.is_empty() {
        let target = t
            .target
            .as_ref()
            .map_or(String::new(), |(n, p, _)| format!(" → {n}:{p}"));
        s.push_str(&format!("; tsg {}{target}", steps.join(" ")));
    }
    if let Some((dir, code, at)) = t.close {
        s.push_str(&format!("; tsg close by {dir} {} (0x{code:X})", at.frame));
    }
    // RPC over HTTP: the RTS steps, the bind, the calls, a fault.
    let r = &g.rpc;
    let mut steps: Vec<String> = r
        .rts
        .iter()
        .filter(|x| x.1.starts_with("CONN/"))
        .map(|x| format!("{} {}", x.1, x.2.frame))
        .collect();
    if let Some(b) = r.bind {
        steps.push(format!("bind {}", b.frame));
    }
    if let Some((res, at)) = r.bind_ack {
        steps.push(match res {
            Some(0) | None => format!("bind_ack {}", at.frame),
            Some(n) => format!("bind_ack {} rejected ({n})", at.frame),
        });
    }
    if let Some((_, at)) = r.bind_nak {
        steps.push(format!("bind_nak {}", at.frame));
    }
    if r.requests + r.responses > 0 {
        steps.push(format!("calls {}/{}", r.requests, r.responses));
    }
    if let Some((status, _, at)) = r.fault {
        let n = status.map_or("?".to_string(), |v| {
            crate::proto::rts::fault_name(v).map_or(format!("0x{v:08X}"), str::to_string)
        });
        steps.push(format!("fault {} {n}", at.frame));
    }
    if !steps.is_empty() {
        s.push_str(&format!("; rpc {}", steps.join(" ")));
    }
    s
}

/// Whether the flow is a gateway leg or a tunnelled connection.
fn gateway_use(f: &Flow) -> Option<Box<GatewayUse>> {
    if let Some(t) = f.tunnel_of.as_deref() {
        return Some(Box::new(GatewayUse {
            kind: Some(t.kind),
            channel: None,
            connection_id: None,
            carried_by: Some(t.leg),
            channel_open: true,
            upgrade_declined: None,
        }));
    }
    if let Some(g) = f.app.gateway_leg() {
        return Some(Box::new(GatewayUse {
            kind: g.kind,
            channel: g.channel,
            connection_id: g.connection_id.clone(),
            carried_by: None,
            channel_open: g
                .tsg
                .channel
                .is_some_and(|(e, _)| !crate::proto::tsgu::failed(e)),
            upgrade_declined: g.answered().find_map(|(e, r)| {
                (r.status == 200
                    && e.upgrade
                        .as_deref()
                        .is_some_and(|u| u.to_ascii_lowercase().contains("websocket")))
                .then_some(r.at)
            }),
        }));
    }
    f.named_gateway.then(|| {
        Box::new(GatewayUse {
            kind: None,
            channel: None,
            connection_id: None,
            carried_by: None,
            channel_open: false,
            upgrade_declined: None,
        })
    })
}

fn app_name(f: &Flow) -> String {
    if let Some(t) = f.tunnel_of.as_deref() {
        return format!("rdp via {}", t.kind.via());
    }
    if let Some(k) = f.app.gateway_leg().and_then(|g| g.kind) {
        return k.via().to_string();
    }
    if f.named_gateway {
        return "gateway (tls)".into();
    }
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
            let u = &f.rdpeudp();
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
    if let Some(t) = f.tunnel_of.as_deref() {
        v.insert(
            0,
            format!(
                "tunnel via {} (leg from port {})",
                t.kind.via(),
                t.leg.0.port()
            ),
        );
    }
    if let Some(g) = x.gateway.as_deref().filter(|g| g.is_leg()) {
        v.push(gateway_timeline(g));
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
    let u = f.rdpeudp();
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
        if c.malformed.is_none() {
            r.cert_not_after = rfc3339(c.not_after.saturating_mul(1_000_000_000));
        }
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
