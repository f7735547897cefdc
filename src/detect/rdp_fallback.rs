//! `rdp.fallback`: a failed connection followed, within the attempt
//! window, by a connected retry from the same client host to the same
//! server (e.g. a new offer after RDP_NEG_FAILURE). The first failure is
//! not the root cause. Evidence: each connection's first frame and the
//! failures of the earlier ones.

use super::{frame_set, hosts_filter, plural, AttemptContext, AttemptDetector, Placed};
use crate::finding::{precedence, Code, Draft, Outcome, Phase, Severity};

pub struct Fallback;

impl AttemptDetector for Fallback {
    fn codes(&self) -> Vec<Code> {
        vec![Code::RdpFallback]
    }

    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>) {
        let a = cx.attempt;
        let Some(last) = cx.last() else {
            return;
        };
        if !a.retried() || cx.outcome() != Outcome::Connected || last.gateway().is_some() {
            // Through a gateway: gateway.fallback.
            return;
        }
        let first = &cx.conns[a.conns[0]];
        let failed = &a.conns[..a.conns.len() - 1];
        let why: Vec<String> = failed
            .iter()
            .filter_map(|&i| {
                cx.conns[i]
                    .drafts
                    .iter()
                    .min_by(|x, y| precedence(x, y))
                    .map(|d| d.code.to_string())
            })
            .collect();
        let mut frames: Vec<u64> = failed.iter().map(|&i| cx.conns[i].first.frame).collect();
        frames.push(last.first.frame);
        let fx = &last.facts;
        let draft = Draft::new(
            Code::RdpFallback,
            Severity::Info,
            Phase::Rdp,
            first.first.frame,
            last.first.ts,
        )
        .until(last.first.frame)
        .summary(format!(
            "{} failed connection{} ({}), then the retry from port {} in frame {} connected{}",
            failed.len(),
            plural(failed.len()),
            if why.is_empty() {
                "no finding".to_string()
            } else {
                why.join(", ")
            },
            last.client.port(),
            last.first.frame,
            if fx.requested.is_empty() {
                String::new()
            } else {
                format!(" requesting {} (selected {})", fx.requested, fx.selected)
            }
        ))
        .cause(
            "The client retried with other security protocols after the server refused the \
             first offer; the first failure is not the root cause.",
        )
        .remedy(
            "Nothing is broken; to save the round trip, align the client's offer with the \
             server's security layer.",
        )
        .filter(format!(
            "{} && ({})",
            hosts_filter(first.client.ip(), first.server),
            frame_set(&frames)
        ));
        out.push(Placed {
            ends: Some((last.client, last.server)),
            draft,
        });
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{attempt_of, conn};
    use super::*;
    use crate::flow::Transport;

    #[test]
    fn a_connected_retry_after_a_negotiation_failure() {
        let mut first = conn(Transport::Tcp, 50000, 1, 6);
        first.outcome = Outcome::Failed;
        first.drafts.push(Draft::new(
            Code::member(
                crate::finding::Family::X224NegFailure,
                Some("hybrid_required"),
            ),
            Severity::Error,
            Phase::X224,
            4,
            4,
        ));
        let mut retry = conn(Transport::Tcp, 50001, 7, 90);
        retry.outcome = Outcome::Connected;
        retry.facts.requested = "SSL".into();
        retry.facts.selected = "SSL".into();
        let (out, verdict) = attempt_of(vec![first.clone(), retry], &Fallback);
        assert_eq!(out.len(), 1);
        let d = &out[0].draft;
        assert_eq!((d.first_frame, d.last_frame), (1, 7));
        assert_eq!(
            d.summary,
            "1 failed connection (x224.neg_failure.hybrid_required), then the retry from port \
             50001 in frame 7 connected requesting SSL (selected SSL)"
        );
        assert_eq!(verdict.code, Some(Code::RdpFallback));
        // A single connection is no fallback.
        let (out, _) = attempt_of(vec![first], &Fallback);
        assert!(out.is_empty());
    }
}
