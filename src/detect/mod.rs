//! detect: the judging stage. Three kinds of detector, one registry each,
//! every detector in a file of its own naming the failure it diagnoses and
//! the evidence it needs:
//!
//! - [`FLOW`]: a finished flow ([`Context`]) → drafts; then [`judge_flow`]
//!   folds the bare TCP endings a protocol finding explains.
//! - [`ATTEMPT`]: an attempt (its connections, already judged, grouped by
//!   `session`) → findings that span connections: the fallback to a retry,
//!   the UDP transport falling back to TCP, DNS for the attempt's names.
//! - [`CAPTURE`]: the capture as a whole (truncation, damage, link types,
//!   bounds, ICMP quoting no attempt).
//!
//! [`verdict`] is the one place that decides outcomes and verdicts. The
//! order a capture is judged in: flows as they finish → session groups
//! them → attempts → capture → report.

mod capture;
mod capture_loss;
pub mod cert;
mod dns;
pub mod filter;
pub mod gateway;
pub mod gateway_fallback;
pub mod inside;
mod kerberos;
mod nla;
mod path_frag;
mod path_mtu;
mod rdp;
mod rdp_end;
mod rdp_fallback;
mod tcp_close;
mod tcp_icmp;
mod tcp_reset;
mod tcp_retrans;
mod tcp_stall;
mod tcp_syn;
mod tcp_zero_window;
mod tls;
mod udp;
mod udp_fallback;
pub mod verdict;
mod x224;

pub use crate::finding::{plural, secs};
pub use crate::session::moment::{
    ending, rdp_moment, records_before, tcp_moment, NLA_CLIENT_RECORDS,
};
pub use capture::CaptureFacts;
pub use filter::{
    conversation_filter, endpoints_filter, filter_with, frame_set, frames_filter, hosts_filter,
};

use crate::capture::Mark;
use crate::config::Config;
use crate::finding::{Code, Confidence, Dir, Draft, Level, Outcome, Phase, Severity};
use crate::flow::table::{DnsLookup, KdcMessage};
use crate::flow::Flow;
use crate::session::{Attempt, Conn};
use std::net::SocketAddr;

/// What a flow detector looks at.
pub struct Context<'a> {
    pub flow: &'a Flow,
    pub cfg: &'a Config,
    /// The capture time the flow is judged at: the end of the capture, or
    /// when a flow that finished earlier had timed out.
    pub capture_end: Mark,
}

/// A detector of one finished flow.
pub trait Detector: Sync {
    /// The codes this detector may emit (checked against docs/findings.md).
    fn codes(&self) -> Vec<Code>;
    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>);
}

/// What an attempt detector looks at.
pub struct AttemptContext<'a> {
    pub attempt: &'a Attempt,
    /// Every connection of the capture (the attempt holds indexes).
    pub conns: &'a [Conn],
    pub dns: &'a [DnsLookup],
    /// Kerberos messages of the capture (port 88), in time order (then
    /// frame).
    pub krb: &'a [KdcMessage],
    pub cfg: &'a Config,
    /// The last frame of the capture.
    pub end: Mark,
}

impl<'a> AttemptContext<'a> {
    pub fn new(
        attempt: &'a Attempt,
        conns: &'a [Conn],
        dns: &'a [DnsLookup],
        krb: &'a [KdcMessage],
        cfg: &'a Config,
        end: Mark,
    ) -> AttemptContext<'a> {
        AttemptContext {
            attempt,
            conns,
            dns,
            krb,
            cfg,
            end,
        }
    }

    /// The connection that decided the attempt.
    pub fn last(&self) -> Option<&Conn> {
        self.attempt.last().map(|i| &self.conns[i])
    }

    /// The attempt's outcome: its deciding connection's (an attempt that
    /// is only a failed lookup failed).
    pub fn outcome(&self) -> Outcome {
        self.last().map_or(Outcome::Failed, |c| c.outcome)
    }
}

/// A finding and the endpoints it is about (`None`: the capture's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub ends: Option<(SocketAddr, SocketAddr)>,
    pub draft: Draft,
}

/// A detector of one attempt (findings that span its connections).
pub trait AttemptDetector: Sync {
    fn codes(&self) -> Vec<Code>;
    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>);
}

/// A detector of the capture as a whole.
pub trait CaptureDetector: Sync {
    fn codes(&self) -> Vec<Code>;
    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>);
}

/// Every flow detector, in the order their findings are listed.
pub static FLOW: &[&dyn Detector] = &[
    &x224::Negotiation,
    &tls::Handshake,
    &cert::Certificates,
    &inside::ServerReasons,
    &gateway::Gateway,
    &nla::NlaStalled,
    &rdp::ServerDenied,
    &rdp_end::SessionEnded,
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

/// Every attempt detector, in order.
pub static ATTEMPT: &[&dyn AttemptDetector] = &[
    &udp_fallback::UdpFallback,
    &rdp_fallback::Fallback,
    &gateway_fallback::GatewayFallback,
    &dns::Lookups,
    &kerberos::Kerberos,
];

/// Every capture detector, in order.
pub static CAPTURE: &[&dyn CaptureDetector] = &[
    &capture::File,
    &capture::Links,
    &capture::Orphans,
    &capture::Keys,
    &capture::Bounds,
    &capture::Scans,
];

/// Every code this build can emit.
pub fn all_codes() -> Vec<Code> {
    let mut v: Vec<Code> = FLOW.iter().flat_map(|d| d.codes()).collect();
    v.extend(ATTEMPT.iter().flat_map(|d| d.codes()));
    v.extend(CAPTURE.iter().flat_map(|d| d.codes()));
    v.sort();
    v.dedup();
    v
}

/// Judges one finished flow: every flow detector, then the rules that make
/// one finding part of another's evidence, then the flow's confidence.
pub fn judge_flow(flow: &Flow, cfg: &Config, capture_end: Mark) -> Vec<Draft> {
    let cx = Context {
        flow,
        cfg,
        capture_end,
    };
    let mut out = Vec::new();
    for d in FLOW {
        d.check(&cx, &mut out);
    }
    absorb(&mut out);
    let conf = flow_confidence(flow);
    for d in &mut out {
        if d.confidence.level == Level::High && conf.level != Level::High {
            d.confidence = conf.clone();
        }
    }
    out
}

/// A protocol finding that explains how the connection ended makes the
/// bare TCP ending (the client's RST after a negotiation failure, the
/// server's FIN after an alert) part of its evidence, not a finding; a
/// forged ending voids what it seemed to say; resends the path MTU
/// explains are part of that finding.
fn absorb(out: &mut Vec<Draft>) {
    if out.iter().any(|d| d.code == Code::TcpResetByMiddlebox) {
        // The ending was forged: what it seemed to say about the server's
        // answer (no confirm, no ServerHello, a close during NLA) is void.
        out.retain(|d| !FORGED_ENDING.contains(&d.code));
    } else if out.iter().any(|d| explains_end(d.code)) {
        out.retain(|d| !ENDINGS.contains(&d.code));
    }
    if out.iter().any(|d| server_said(d.code)) {
        // The server's own reason, read inside TLS: the shapes that stood
        // in for it are its evidence.
        out.retain(|d| !SHAPES.contains(&d.code));
    }
    if out
        .iter()
        .any(|d| matches!(d.code, Code::PathBlackhole | Code::PathIcmpFragNeeded))
    {
        out.retain(|d| d.code != Code::TcpRetransmissions);
    }
}

/// Codes whose evidence includes how the connection ended.
fn explains_end(c: Code) -> bool {
    // nla.client_aborted is a warning that may be a prompt: the bare
    // ending (a client reset) keeps its own finding and the outcome.
    (matches!(c.layer(), "x224" | "nla") && c != Code::NlaClientAborted)
        || server_said(c)
        || gateway_said(c)
        || c.family() == Some(crate::finding::Family::TlsAlert)
        || matches!(
            c,
            Code::TlsNoServerHello | Code::TlsVersionMismatch | Code::RdpServerDenied
        )
}

/// A gateway's (or its proxy's) refusal: it explains how the leg ended.
fn gateway_said(c: Code) -> bool {
    c.layer() == "gateway"
        && !matches!(
            c,
            Code::GatewayIdleCut
                | Code::GatewayFallback
                | Code::GatewayEncrypted
                | Code::GatewayHttpProxyInterference
                | Code::GatewayTsgClosed
        )
}

/// Codes that are the server's own reason, read from a decrypted PDU.
fn server_said(c: Code) -> bool {
    matches!(
        c.family(),
        Some(
            crate::finding::Family::NlaError
                | crate::finding::Family::RdpErrorInfo
                | crate::finding::Family::RdpLicense
                | crate::finding::Family::RdpLogonError
        )
    ) || matches!(
        c,
        Code::NlaAccessDenied | Code::NlaCredsspVersionMismatch | Code::RdpRedirected
    )
}

/// Findings from shapes that a decrypted reason replaces.
const SHAPES: &[Code] = &[
    Code::NlaStalled,
    Code::NlaClientAborted,
    Code::RdpServerDenied,
];

/// Findings that rest on how the server ended the connection.
const FORGED_ENDING: &[Code] = &[
    Code::X224NoConfirm,
    Code::TlsNoServerHello,
    Code::NlaStalled,
    Code::RdpServerDenied,
    Code::X224LegacyRejected,
];
/// Bare TCP endings that such a finding absorbs.
const ENDINGS: &[Code] = &[
    Code::TcpResetByServer,
    Code::TcpResetByClient,
    Code::TcpClosedByServer,
    Code::TcpStalled,
];

/// How far a flow's evidence can be trusted.
pub fn flow_confidence(f: &Flow) -> Confidence {
    let t = f.tcp();
    let lost = t.dirs[Dir::Client].capture_lost + t.dirs[Dir::Server].capture_lost;
    let mut why = Vec::new();
    if t.mid_stream {
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

/// An attempt judged: its findings in report order, and its verdict.
#[derive(Debug, Clone)]
pub struct Judged {
    pub findings: Vec<Placed>,
    pub verdict: verdict::Verdict,
}

/// Judges one attempt: its connections' findings (those of a failed
/// connection that a retry superseded lowered to info), the attempt
/// detectors, then the verdict.
pub fn judge_attempt(
    attempt: &Attempt,
    conns: &[Conn],
    dns: &[DnsLookup],
    krb: &[KdcMessage],
    cfg: &Config,
    end: Mark,
) -> Judged {
    let cx = AttemptContext::new(attempt, conns, dns, krb, cfg, end);
    // The earlier connections of a retry that connected are superseded.
    let retry = cx
        .last()
        .filter(|_| attempt.retried() && cx.outcome() == Outcome::Connected);
    // A gateway transport refused, then the client's fallback to another
    // (the HTTP transport's 404, then RPC over HTTP: FreeRDP rdg.c) that
    // failed on its own: the fallback's failure is the cause.
    let fell_back = cx
        .last()
        .filter(|_| cx.outcome() != Outcome::Connected)
        .and_then(|l| {
            let k = l.gateway()?.kind?;
            let earlier = |c: &Conn| {
                c.gateway()
                    .and_then(|g| g.kind)
                    .is_some_and(|e| e != k && e.tunnel() && g_falls_back(e, k))
            };
            attempt.conns[..attempt.conns.len() - 1]
                .iter()
                .any(|&i| earlier(&conns[i]))
                .then(|| {
                    format!(
                        "the client went on with {} from port {}",
                        k.via(),
                        l.client.port()
                    )
                })
        });
    let mut findings: Vec<Placed> = Vec::new();
    for (k, &i) in attempt.conns.iter().chain(&attempt.side).enumerate() {
        let c = &conns[i];
        let superseded = retry.is_some() && k + 1 < attempt.conns.len();
        let moot = fell_back.as_ref().filter(|_| {
            k + 1 < attempt.conns.len()
                && c.gateway().and_then(|g| g.kind) != cx.last().and_then(|l| l.gateway()?.kind)
        });
        for d in &c.drafts {
            let mut d = d.clone();
            if superseded {
                verdict::supersede(&mut d, retry.map_or(0, |r| r.client.port()));
            } else if let Some(why) = moot {
                verdict::supersede_with(&mut d, why);
            }
            if d.code == Code::GatewayKdcproxyFailed
                && d.severity >= Severity::Error
                && cx.outcome() == Outcome::Connected
                && cx
                    .last()
                    .is_some_and(|l| l.gateway().is_some_and(|g| g.channel_open))
            {
                // The tunnel worked: the client went on without Kerberos.
                d.severity = Severity::Warning;
                d.summary
                    .push_str(" (the tunnel connected: the client fell back to NTLM)");
            }
            findings.push(Placed {
                ends: Some((c.client, c.server)),
                draft: d,
            });
        }
    }
    for d in ATTEMPT {
        d.check(&cx, &mut findings);
    }
    let verdict = verdict::attempt(&cx, &findings);
    Judged { findings, verdict }
}

/// The gateway transports clients fall back from and to: the WebSocket
/// upgrade to the two-channel HTTP transport, either to RPC over HTTP.
fn g_falls_back(from: crate::proto::gateway::Kind, to: crate::proto::gateway::Kind) -> bool {
    use crate::proto::gateway::Kind::*;
    matches!((from, to), (WebSocket, Http) | (WebSocket | Http, Rpc))
}

/// A draft about the capture itself: info, phase capture, one frame.
fn capture_draft(code: Code, frame: u64, ts: i64) -> Draft {
    Draft::new(code, Severity::Info, Phase::Capture, frame, ts)
}

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn codes_are_unique_and_named() {
        // Each detector's list as written, before all_codes() merges them:
        // a code is emitted by one detector, except the ICMP "too big" that
        // both the flow (its own traffic) and the capture (orphans) report.
        let mut raw: Vec<String> = FLOW
            .iter()
            .flat_map(|d| d.codes())
            .chain(ATTEMPT.iter().flat_map(|d| d.codes()))
            .chain(CAPTURE.iter().flat_map(|d| d.codes()))
            .map(|c| c.to_string())
            .collect();
        raw.sort();
        let twice: Vec<&String> = raw
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| &w[0])
            .collect();
        assert_eq!(twice, vec!["path.icmp_frag_needed"]);
        let names: Vec<String> = all_codes().iter().map(|c| c.to_string()).collect();
        assert_eq!(names.len(), raw.len() - 1);
        assert!(names.iter().all(|n| n.contains('.')));
    }

    #[test]
    fn a_protocol_finding_absorbs_the_bare_ending() {
        let d = |c: Code| Draft::new(c, Severity::Error, Phase::Tcp, 1, 0);
        let mut v = vec![d(Code::X224NoConfirm), d(Code::TcpResetByClient)];
        absorb(&mut v);
        assert_eq!(v.len(), 1);
        let mut v = vec![
            d(Code::X224NoConfirm),
            d(Code::TcpResetByMiddlebox),
            d(Code::TcpResetByServer),
        ];
        absorb(&mut v);
        assert_eq!(
            v.iter().map(|d| d.code).collect::<Vec<_>>(),
            vec![Code::TcpResetByMiddlebox, Code::TcpResetByServer]
        );
        let mut v = vec![d(Code::PathBlackhole), d(Code::TcpRetransmissions)];
        absorb(&mut v);
        assert_eq!(v.len(), 1);
    }
}
