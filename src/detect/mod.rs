//! detect: one detector per file, each naming the failure it diagnoses and
//! the evidence it needs; all of them listed in [`REGISTRY`].

mod capture_loss;
pub mod cert;
mod nla;
mod path_frag;
mod path_mtu;
mod rdp;
mod tcp_close;
mod tcp_icmp;
mod tcp_reset;
mod tcp_retrans;
mod tcp_stall;
mod tcp_syn;
mod tcp_zero_window;
mod tls;
mod udp;
mod x224;

use crate::config::Config;
use crate::flow::{Flow, Mark, Transport, CLIENT, SERVER};
use crate::proto::{AppClass, Step};
use crate::report::model::{Confidence, Level, Phase, Severity};
use std::net::{IpAddr, SocketAddr};

/// A finding before it is placed in a capture and an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub code: String,
    pub severity: Severity,
    pub phase: Phase,
    pub first_frame: u64,
    pub last_frame: u64,
    pub ts: i64,
    pub summary: String,
    pub cause: String,
    pub remedy: String,
    pub filter: String,
    pub confidence: Confidence,
}

/// What a detector looks at.
pub struct Context<'a> {
    pub flow: &'a Flow,
    pub cfg: &'a Config,
    /// The last frame of the capture.
    pub capture_end: Mark,
}

pub trait Detector: Sync {
    /// The codes this detector may emit (checked against docs/findings.md).
    fn codes(&self) -> &'static [&'static str];
    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>);
}

/// Every detector, in the order their findings are listed.
pub static REGISTRY: &[&dyn Detector] = &[
    &x224::Negotiation,
    &tls::Handshake,
    &cert::Certificates,
    &nla::NlaStalled,
    &rdp::ServerDenied,
    &udp::UdpTransport,
    &tcp_syn::SynDetector,
    &tcp_icmp::IcmpUnreachable,
    &tcp_reset::ResetDetector,
    &tcp_close::ServerClose,
    &tcp_stall::Stalled,
    &tcp_retrans::Retransmissions,
    &tcp_zero_window::ZeroWindow,
    &path_frag::Fragments,
    &path_mtu::PathMtu,
    &capture_loss::CaptureLoss,
];

/// Findings about a capture as a whole, made by the engine.
pub const CAPTURE_CODES: &[&str] = &[
    "capture.truncated",
    "capture.corrupt",
    "capture.unsupported_link",
    "capture.bound",
];

/// Every code this build can emit.
pub fn all_codes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = REGISTRY
        .iter()
        .flat_map(|d| d.codes().iter().copied())
        .collect();
    v.extend_from_slice(CAPTURE_CODES);
    v.extend_from_slice(crate::session::SESSION_CODES);
    v
}

pub fn run(cx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for d in REGISTRY {
        d.check(cx, &mut out);
    }
    // A protocol finding that explains how the connection ended makes the
    // bare TCP ending (the client's RST after a negotiation failure, the
    // server's FIN after an alert) part of its evidence, not a finding.
    if out.iter().any(|d| d.code == "tcp.reset_by_middlebox") {
        // The ending was forged: what it seemed to say about the server's
        // answer (no confirm, no ServerHello, a close during NLA) is void.
        out.retain(|d| !FORGED_ENDING.contains(&d.code.as_str()));
    } else if out
        .iter()
        .any(|d| EXPLAINS_END.iter().any(|p| d.code.starts_with(p)))
    {
        out.retain(|d| !ENDINGS.contains(&d.code.as_str()));
    }
    // Resends that the path MTU explains are part of that finding.
    if out
        .iter()
        .any(|d| d.code == "path.blackhole" || d.code == "path.icmp_frag_needed")
    {
        out.retain(|d| d.code != "tcp.retransmissions");
    }
    let conf = flow_confidence(cx.flow);
    for d in &mut out {
        if d.confidence.level == Level::High && conf.level != Level::High {
            d.confidence = conf.clone();
        }
    }
    out
}

/// Codes (prefixes) whose evidence includes how the connection ended.
const EXPLAINS_END: &[&str] = &[
    "x224.",
    "tls.alert.",
    "tls.no_server_hello",
    "tls.version_mismatch",
    "nla.",
    "rdp.server_denied",
];
/// Findings that rest on how the server ended the connection.
const FORGED_ENDING: &[&str] = &[
    "x224.no_confirm",
    "tls.no_server_hello",
    "nla.stalled",
    "rdp.server_denied",
    "x224.legacy_rejected",
];
/// Bare TCP endings that such a finding absorbs.
const ENDINGS: &[&str] = &[
    "tcp.reset_by_server",
    "tcp.reset_by_client",
    "tcp.closed_by_server",
    "tcp.stalled",
];

/// How far a flow's evidence can be trusted.
pub fn flow_confidence(f: &Flow) -> Confidence {
    let lost = f.dirs[0].capture_lost + f.dirs[1].capture_lost;
    let mut why = Vec::new();
    if f.mid_stream {
        why.push("the capture started after the connection did".to_string());
    }
    if lost > 0 {
        why.push(format!("{lost} bytes were acknowledged but not captured"));
    }
    if let Some(b) = f.app.facts().bounded {
        why.push(b.to_string());
    }
    let gaps = f.app.facts().gap;
    if gaps[0] || gaps[1] {
        why.push("a capture hole stopped the protocol decoding".to_string());
    }
    if why.is_empty() {
        Confidence::high()
    } else {
        Confidence::lowered(Level::Medium, why.join("; "))
    }
}

fn addr_field(ip: &IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "ipv6.addr"
    } else {
        "ip.addr"
    }
}

/// Wireshark display filter selecting the flow's packets (valid in 4.0+).
pub fn conversation_filter(f: &Flow) -> String {
    endpoints_filter(f.client, f.server, f.key.transport)
}

pub fn endpoints_filter(a: SocketAddr, b: SocketAddr, t: Transport) -> String {
    let af = addr_field(&a.ip());
    let pf = match t {
        Transport::Tcp => "tcp.port",
        Transport::Udp => "udp.port",
    };
    let addrs = if a.ip() == b.ip() {
        format!("{af}=={}", a.ip())
    } else {
        format!("{af}=={} && {af}=={}", a.ip(), b.ip())
    };
    let ports = if a.port() == b.port() {
        format!("{pf}=={}", a.port())
    } else {
        format!("{pf}=={} && {pf}=={}", a.port(), b.port())
    };
    format!("{addrs} && {ports}")
}

/// Everything between a client host and a server port (all the client's
/// connections there).
pub fn hosts_filter(client: IpAddr, server: SocketAddr) -> String {
    let af = addr_field(&client);
    format!(
        "{af}=={client} && {af}=={} && tcp.port=={}",
        server.ip(),
        server.port()
    )
}

/// Conversation plus an extra condition.
pub fn filter_with(f: &Flow, extra: &str) -> String {
    format!("{} && {extra}", conversation_filter(f))
}

/// Who sent an ICMP error about the flow, in words, and the Wireshark
/// condition for a destination-unreachable of its family.
pub fn icmp_sender(f: &Flow, ev: &crate::flow::IcmpEvent) -> (String, &'static str) {
    let who = if ev.from == f.server.ip() {
        format!("the server {} itself", ev.from)
    } else {
        format!("router {}", ev.from)
    };
    let cond = if ev.err.v6 {
        "icmpv6.type==1"
    } else {
        "icmp.type==3"
    };
    (who, cond)
}

/// Names of the two directions, indexed by `CLIENT` / `SERVER`.
pub const SIDE: [&str; 2] = ["client", "server"];

/// Seconds with millisecond precision for summaries.
pub fn secs(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// Human phrase for where in the connection something happened, and the
/// phase it interrupted: the RDP connection sequence when it was decoded,
/// else what TCP alone can see.
pub fn tcp_moment(f: &Flow, bytes: [u64; 2], frame: u64) -> (Phase, String) {
    if f.established.is_none() && !f.mid_stream {
        return (Phase::Tcp, "during the TCP handshake".to_string());
    }
    let counts = match bytes {
        [0, 0] => "before any data".to_string(),
        [c, s] => format!("after {c} bytes from the client and {s} bytes from the server"),
    };
    match rdp_moment(f, frame) {
        Some((p, what)) => (p, format!("{what} ({counts})")),
        None if bytes == [0, 0] => (
            Phase::Tcp,
            "after the TCP handshake, before any data".into(),
        ),
        None => (Phase::Tcp, counts),
    }
}

/// Encrypted records each way sent before `frame`.
pub fn records_before(f: &Flow, frame: u64) -> [u64; 2] {
    let t = &f.app.facts().tls;
    let full = t.records.len() >= crate::proto::tls::MAX_RECORDS;
    if full && t.records.last().is_some_and(|r| r.at.frame < frame) {
        // Past the remembered records: the totals.
        return [t.app[0].records, t.app[1].records];
    }
    let mut n = [0u64; 2];
    for r in t.records.iter().filter(|r| r.at.frame <= frame) {
        n[r.dir] += 1;
    }
    n
}

/// Where the RDP connection sequence stood at `frame` (inclusive).
pub fn rdp_moment(f: &Flow, frame: u64) -> Option<(Phase, String)> {
    let x = &f.app.facts();
    if !matches!(f.app.class, AppClass::Rdp { .. } | AppClass::Tls) || x.steps.is_empty() {
        return None;
    }
    let reached = |s: Step| x.when(s).is_some_and(|m| m.frame <= frame);
    let nla = x.selected().is_some_and(|p| p.nla());
    Some(if reached(Step::TlsDone) {
        let [c, s] = records_before(f, frame);
        if nla && c <= NLA_CLIENT_RECORDS {
            (
                Phase::Nla,
                format!(
                    "during NLA (CredSSP) after the TLS handshake, {c} encrypted record{} from the client and {s} from the server",
                    plural(c)
                ),
            )
        } else {
            (
                Phase::Rdp,
                format!(
                    "after the TLS handshake{}, {c} encrypted record{} from the client and {s} from the server",
                    if nla { " and NLA" } else { "" },
                    plural(c)
                ),
            )
        }
    } else if reached(Step::ServerHello) {
        (
            Phase::Tls,
            "during the TLS handshake, after the server's ServerHello".into(),
        )
    } else if reached(Step::ClientHello) {
        (
            Phase::Tls,
            "after the TLS ClientHello, before any ServerHello".into(),
        )
    } else if reached(Step::McsConnectResponse) {
        (
            Phase::Rdp,
            "after the MCS Connect Response (Standard RDP Security)".into(),
        )
    } else if reached(Step::McsConnectInitial) {
        (
            Phase::Rdp,
            "after the client's MCS Connect Initial, before the server's Connect Response".into(),
        )
    } else if reached(Step::ConnectionConfirm) {
        let sel = x
            .selected()
            .map(|p| format!(" selecting {p}"))
            .unwrap_or_default();
        (
            Phase::X224,
            format!("after the X.224 Connection Confirm{sel}, before TLS or MCS"),
        )
    } else if reached(Step::ConnectionRequest) {
        (
            Phase::X224,
            "after the X.224 Connection Request, before any Connection Confirm".into(),
        )
    } else {
        return None;
    })
}

/// CredSSP takes at most this many client messages (negotiate,
/// authenticate + pubKeyAuth, credentials); more means NLA is over.
pub const NLA_CLIENT_RECORDS: u64 = 3;

/// "s" unless exactly one.
pub fn plural(n: impl TryInto<u64>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

/// `frame.number==A || frame.number==B` for the given frames (0 skipped,
/// sorted, deduplicated).
pub fn frame_set(frames: &[u64]) -> String {
    let mut v: Vec<u64> = frames.iter().copied().filter(|&n| n > 0).collect();
    v.sort_unstable();
    v.dedup();
    v.iter()
        .map(|n| format!("frame.number=={n}"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The conversation, narrowed to the given frames.
pub fn frames_filter(f: &Flow, frames: &[u64]) -> String {
    filter_with(f, &format!("({})", frame_set(frames)))
}

/// How the connection ended: the first of the server's FIN or a RST, with
/// the side that did it.
pub fn ending(f: &Flow) -> Option<(usize, Mark, &'static str)> {
    let fin = [f.dirs[CLIENT].fin, f.dirs[SERVER].fin];
    let mut ends: Vec<(usize, Mark, &'static str)> = Vec::new();
    for (d, m) in fin.iter().enumerate() {
        if let Some(m) = m {
            ends.push((d, *m, "closed (FIN)"));
        }
    }
    if let Some(r) = f.rst {
        ends.push((r.dir, r.at, "reset"));
    }
    ends.into_iter().min_by_key(|e| e.1.frame)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut c = all_codes();
        let n = c.len();
        c.sort();
        c.dedup();
        assert_eq!(c.len(), n);
    }

    #[test]
    fn filters_for_v4_and_v6() {
        let a: SocketAddr = "198.18.0.1:50000".parse().unwrap();
        let b: SocketAddr = "198.18.0.2:3389".parse().unwrap();
        assert_eq!(
            endpoints_filter(a, b, Transport::Tcp),
            "ip.addr==198.18.0.1 && ip.addr==198.18.0.2 && tcp.port==50000 && tcp.port==3389"
        );
        let a: SocketAddr = "[::1]:50000".parse().unwrap();
        let b: SocketAddr = "[::1]:3389".parse().unwrap();
        assert_eq!(
            endpoints_filter(a, b, Transport::Udp),
            "ipv6.addr==::1 && udp.port==50000 && udp.port==3389"
        );
    }
}
