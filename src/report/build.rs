//! Turns judged attempts into the report's rows: one [`Attempt`] per
//! attempt (its facts, counters and verdict), its findings with their
//! endpoints, then the capture's own findings.

use super::model::{Attempt, Finding};
use crate::detect::{Judged, Placed};
use crate::finding::Draft;
use crate::flow::Transport;
use crate::session::{self, Conn};

/// `addr:port`, IPv6 as `[addr]:port` (what `SocketAddr` prints).
fn ep(a: std::net::SocketAddr) -> String {
    a.to_string()
}

/// A finding of an attempt (`attempt` empty: of the capture).
pub fn finding(capture: &str, attempt: &str, p: Placed) -> Finding {
    let (client, server) = p
        .ends
        .map_or((String::new(), String::new()), |(c, s)| (ep(c), ep(s)));
    Finding {
        capture: capture.to_string(),
        attempt: attempt.to_string(),
        client,
        server,
        draft: p.draft,
    }
}

/// The attempt row and its findings.
pub fn attempt(
    capture: &str,
    a: &session::Attempt,
    conns: &[Conn],
    j: Judged,
) -> (Attempt, Vec<Finding>) {
    let id = format!("#{}", a.number);
    let v = &j.verdict;
    let verdict = v.code.map(|c| c.to_string()).unwrap_or_default();
    let row = match (&a.lookup, a.conns.first()) {
        (_, Some(&first)) => {
            let first = &conns[first];
            let last = &conns[a.last().unwrap_or(0)];
            let all = || a.conns.iter().chain(&a.side).map(|&i| &conns[i]);
            let fx = a.facts.clone();
            Attempt {
                capture: capture.to_string(),
                attempt: id.clone(),
                client: ep(first.client),
                server: ep(first.server),
                transport: if a.side.iter().all(|&i| conns[i].transport != Transport::Udp) {
                    first.transport.name().to_string()
                } else {
                    format!("{}+udp", first.transport.name())
                },
                start: first.first.ts,
                end: all().map(|c| c.last.ts).max().unwrap_or(first.last.ts),
                packets: all().map(|c| c.packets).sum(),
                bytes: all().map(|c| c.bytes).sum(),
                outcome: v.outcome,
                failed_phase: v.failed_phase,
                verdict,
                app: last.app.clone(),
                first_frame: first.first.frame,
                last_frame: all().map(|c| c.last.frame).max().unwrap_or(0),
                connections: (a.conns.len() + a.side.len()) as u32,
                via: via(a, conns),
                gateway: a
                    .conns
                    .iter()
                    .chain(&a.side)
                    .find(|&&i| conns[i].gateway().is_some())
                    .map_or(String::new(), |&i| ep(conns[i].server)),
                legs: a.legs(conns) as u32,
                target: fx.target,
                user: fx.user,
                requested: fx.requested,
                selected: fx.selected,
                tls_version: fx.tls_version,
                tls_cipher: fx.tls_cipher,
                cert_subject: fx.cert_subject,
                cert_not_after: fx.cert_not_after,
                fits_0x904: v.fits_0x904,
                client_error: v.client_error,
                client_name: fx.client_name,
                client_build: fx.client_build,
                channels: fx.channels,
                rdp_encryption: fx.rdp_encryption,
                timeline: all()
                    .map(|c| c.timeline.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
            }
        }
        (Some(l), None) => {
            let d: Option<&Draft> = j.findings.first().map(|p| &p.draft);
            Attempt {
                capture: capture.to_string(),
                attempt: id.clone(),
                client: ep(l.client),
                server: ep(l.server),
                transport: "udp".into(),
                start: d.map_or(0, |d| d.ts),
                end: d.map_or(0, |d| d.ts),
                outcome: v.outcome,
                failed_phase: v.failed_phase,
                verdict,
                app: "dns".into(),
                first_frame: d.map_or(0, |d| d.first_frame),
                last_frame: d.map_or(0, |d| d.last_frame),
                target: l.name.clone(),
                fits_0x904: v.fits_0x904,
                client_error: v.client_error,
                ..Default::default()
            }
        }
        (None, None) => Attempt {
            capture: capture.to_string(),
            attempt: id.clone(),
            ..Default::default()
        },
    };
    let findings = j
        .findings
        .into_iter()
        .map(|p| finding(capture, &id, p))
        .collect();
    (row, findings)
}

/// The attempt's `via`: the transport of the tunnel that decided it (the
/// tunnelled connection's, else the last tunnel leg's), `direct` without
/// a gateway.
fn via(a: &session::Attempt, conns: &[Conn]) -> String {
    let mut kinds = a
        .conns
        .iter()
        .rev()
        .chain(&a.side)
        .filter_map(|&i| conns[i].gateway());
    match kinds.next() {
        None => "direct".into(),
        Some(g) => g
            .kind
            .or_else(|| kinds.find_map(|g| g.kind))
            .map_or("gateway".into(), |k| k.via().to_string()),
    }
}
