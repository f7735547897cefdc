//! `gateway.fallback`: an RD Gateway attempt that worked after a transport
//! was refused: the WebSocket upgrade answered 200 (the client went on
//! with the two-channel transport), or a failed leg (a 404 to
//! `RDG_OUT_DATA`, then RPC over HTTP) followed by a connected one. The
//! first refusal is not the root cause (the failed leg's findings are
//! lowered to info as a retry's are). Evidence: the refusal's frame and
//! the first frame of the connection that worked.

use super::{frame_set, hosts_filter, AttemptContext, AttemptDetector, Placed};
use crate::finding::{precedence, Code, Draft, Outcome, Phase, Severity};

pub struct GatewayFallback;

impl AttemptDetector for GatewayFallback {
    fn codes(&self) -> Vec<Code> {
        vec![Code::GatewayFallback]
    }

    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>) {
        let a = cx.attempt;
        let Some(last) = cx.last() else {
            return;
        };
        if cx.outcome() != Outcome::Connected || last.gateway().is_none() {
            return;
        }
        let legs: Vec<&crate::session::Conn> = a
            .conns
            .iter()
            .chain(&a.side)
            .map(|&i| &cx.conns[i])
            .filter(|c| c.gateway().is_some_and(|g| g.carried_by.is_none()))
            .collect();
        let mut why = Vec::new();
        let mut frames = Vec::new();
        for c in &legs {
            if let Some(at) = c.gateway().and_then(|g| g.upgrade_declined) {
                why.push(format!(
                    "the WebSocket upgrade was answered 200 in frame {} (the two-channel transport followed)",
                    at.frame
                ));
                frames.push(at.frame);
            }
        }
        if a.retried() {
            let n = a.conns.len() - 1 - a.tunnelled;
            for &i in &a.conns[..n.min(a.conns.len())] {
                let c = &cx.conns[i];
                if c.outcome == Outcome::Connected {
                    continue;
                }
                let code = c
                    .drafts
                    .iter()
                    .min_by(|x, y| precedence(x, y))
                    .map_or("no finding".to_string(), |d| d.code.to_string());
                why.push(format!(
                    "the {} leg from port {} failed ({code})",
                    c.app,
                    c.client.port()
                ));
                frames.push(c.first.frame);
            }
        }
        if why.is_empty() {
            return;
        }
        let first = frames.iter().copied().min().unwrap_or(last.first.frame);
        frames.push(last.first.frame);
        let first_conn = legs.first().copied().unwrap_or(last);
        let draft = Draft::new(
            Code::GatewayFallback,
            Severity::Info,
            Phase::GatewayHttp,
            first,
            last.first.ts,
        )
        .until(last.first.frame)
        .summary(format!(
            "{}; then the tunnel reached the target ({}, frame {})",
            why.join("; "),
            last.app,
            last.first.frame
        ))
        .cause(
            "The client tried a gateway transport that was refused and went on with another \
             that worked; the refusal is not the root cause.",
        )
        .remedy(
            "Nothing is broken. To save the round trips, let the preferred transport through \
             (the WebSocket upgrade, or the HTTP transport before RPC over HTTP).",
        )
        .filter(format!(
            "{} && ({})",
            hosts_filter(first_conn.client.ip(), first_conn.server),
            frame_set(&frames)
        ));
        out.push(Placed {
            ends: Some((last.client, last.server)),
            draft,
        });
    }
}
