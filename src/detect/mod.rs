//! detect: one detector per file, each naming the failure it diagnoses and
//! the evidence it needs; all of them listed in [`REGISTRY`].

mod capture_loss;
mod path_frag;
mod tcp_close;
mod tcp_icmp;
mod tcp_reset;
mod tcp_retrans;
mod tcp_stall;
mod tcp_syn;
mod tcp_zero_window;

use crate::config::Config;
use crate::flow::{Flow, Mark, Transport};
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
    &tcp_syn::SynDetector,
    &tcp_icmp::IcmpUnreachable,
    &tcp_reset::ResetDetector,
    &tcp_close::ServerClose,
    &tcp_stall::Stalled,
    &tcp_retrans::Retransmissions,
    &tcp_zero_window::ZeroWindow,
    &path_frag::Fragments,
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
    v
}

pub fn run(cx: &Context<'_>) -> Vec<Draft> {
    let mut out = Vec::new();
    for d in REGISTRY {
        d.check(cx, &mut out);
    }
    let conf = flow_confidence(cx.flow);
    for d in &mut out {
        if d.confidence.level == Level::High && conf.level != Level::High {
            d.confidence = conf.clone();
        }
    }
    out
}

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

/// Conversation plus an extra condition.
pub fn filter_with(f: &Flow, extra: &str) -> String {
    format!("{} && {extra}", conversation_filter(f))
}

/// Names of the two directions, indexed by `CLIENT` / `SERVER`.
pub const SIDE: [&str; 2] = ["client", "server"];

/// Seconds with millisecond precision for summaries.
pub fn secs(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// Human phrase for where in the connection something happened, from what
/// TCP alone can see.
pub fn tcp_moment(f: &Flow, bytes: [u64; 2]) -> String {
    if f.established.is_none() && !f.mid_stream {
        return "during the TCP handshake".to_string();
    }
    match bytes {
        [0, 0] => "after the TCP handshake, before any data".to_string(),
        [c, s] => format!("after {c} bytes from the client and {s} bytes from the server"),
    }
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
