//! session: connection attempts and their verdicts. For now every reported
//! TCP connection or UDP conversation is its own attempt; grouping retries
//! and side channels builds on this.

use crate::detect::Draft;
use crate::flow::{Flow, Transport};
use crate::proto::{AppClass, Via};
use crate::report::model::{Attempt, Finding, Outcome, Phase, Severity};

/// A finished flow with what the detectors found on it.
pub struct Judged {
    pub flow: Flow,
    pub drafts: Vec<Draft>,
}

/// The primary finding: most severe, then earliest phase, then earliest frame.
pub fn primary(drafts: &[Draft]) -> Option<&Draft> {
    drafts.iter().min_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.phase.cmp(&b.phase))
            .then(a.first_frame.cmp(&b.first_frame))
    })
}

fn outcome(f: &Flow, drafts: &[Draft]) -> (Outcome, Option<Phase>) {
    let failing = drafts
        .iter()
        .filter(|d| d.severity >= Severity::Error || d.code == "tcp.stalled")
        .min_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.phase.cmp(&b.phase))
                .then(a.first_frame.cmp(&b.first_frame))
        });
    let both_ways = f.dirs[0].payload > 0 && f.dirs[1].payload > 0;
    if let Some(d) = failing {
        // A stall in a session that then exchanged data both ways and ended
        // cleanly is not a failure by itself.
        if d.severity >= Severity::Error || !both_ways || f.closed() {
            return (Outcome::Failed, Some(d.phase));
        }
    }
    let connected = match f.key.transport {
        Transport::Tcp => (f.established.is_some() || f.mid_stream) && both_ways,
        Transport::Udp => both_ways,
    };
    if connected {
        (Outcome::Connected, None)
    } else {
        (Outcome::Incomplete, None)
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
        AppClass::Unknown => String::new(),
    }
}

/// Numbers attempts by first frame and turns drafts into findings.
pub fn build(capture: &str, mut judged: Vec<Judged>) -> (Vec<Attempt>, Vec<Finding>) {
    judged.sort_by(|a, b| {
        (a.flow.first.frame, a.flow.client, a.flow.server).cmp(&(
            b.flow.first.frame,
            b.flow.client,
            b.flow.server,
        ))
    });
    let mut attempts = Vec::with_capacity(judged.len());
    let mut findings = Vec::new();
    for (i, j) in judged.iter().enumerate() {
        let f = &j.flow;
        let id = format!("#{}", i + 1);
        let (outcome, failed_phase) = outcome(f, &j.drafts);
        attempts.push(Attempt {
            capture: capture.to_string(),
            attempt: id.clone(),
            client: fmt_ep(f.client),
            server: fmt_ep(f.server),
            transport: f.key.transport.name().to_string(),
            start: f.first.ts,
            end: f.last.ts,
            packets: f.dirs[0].packets + f.dirs[1].packets,
            bytes: f.dirs[0].bytes + f.dirs[1].bytes,
            outcome,
            failed_phase,
            verdict: primary(&j.drafts)
                .map(|d| d.code.clone())
                .unwrap_or_default(),
            app: app_name(f),
            first_frame: f.first.frame,
            last_frame: f.last.frame,
        });
        for d in &j.drafts {
            findings.push(finding(
                capture,
                &id,
                &fmt_ep(f.client),
                &fmt_ep(f.server),
                d.clone(),
            ));
        }
    }
    (attempts, findings)
}

pub fn finding(capture: &str, attempt: &str, client: &str, server: &str, d: Draft) -> Finding {
    Finding {
        capture: capture.to_string(),
        attempt: attempt.to_string(),
        code: d.code,
        severity: d.severity,
        phase: d.phase,
        client: client.to_string(),
        server: server.to_string(),
        first_frame: d.first_frame,
        last_frame: d.last_frame,
        ts: d.ts,
        summary: d.summary,
        cause: d.cause,
        remedy: d.remedy,
        filter: d.filter,
        confidence: d.confidence,
    }
}

/// `addr:port`, IPv6 as `[addr]:port` (what `SocketAddr` prints).
pub fn fmt_ep(a: std::net::SocketAddr) -> String {
    a.to_string()
}
