//! `udp.fallback_tcp`: the UDP transport (RDPEUDP, or the gateway's DTLS)
//! failed while the session carried on over TCP. Evidence: the UDP side
//! channel's own warning (unanswered SYNs, ICMP unreachable) and the
//! attempt's connected TCP connection, with the correlation id when both
//! carry the same one.

use super::{endpoints_filter, AttemptContext, AttemptDetector, Placed};
use crate::finding::{Code, Draft, Outcome, Phase, Severity};

pub struct UdpFallback;

impl AttemptDetector for UdpFallback {
    fn codes(&self) -> Vec<Code> {
        vec![Code::UdpFallbackTcp]
    }

    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>) {
        let Some(last) = cx.last() else {
            return;
        };
        if cx.outcome() != Outcome::Connected {
            return;
        }
        for &u in &cx.attempt.side {
            let uc = &cx.conns[u];
            let Some(fd) = uc
                .drafts
                .iter()
                .find(|d| d.phase == Phase::Udp && d.severity >= Severity::Warning)
            else {
                continue;
            };
            let same_id = uc.correlation_id.is_some() && uc.correlation_id == last.correlation_id;
            let draft = Draft::new(
                Code::UdpFallbackTcp,
                Severity::Info,
                Phase::Udp,
                fd.first_frame,
                fd.ts,
            )
            .until(fd.last_frame)
            .summary(format!(
                "The UDP transport to {} failed ({}); the session carried on over TCP from port {}{}",
                uc.server,
                fd.code,
                last.client.port(),
                if same_id { " (same correlation id)" } else { "" }
            ))
            .cause("RDP uses UDP for better interactivity when it can, and TCP otherwise.")
            .remedy(
                "Performance, not connectivity: allow UDP 3389 end to end to get the UDP \
                 transport.",
            )
            .filter(endpoints_filter(uc.client, uc.server, uc.transport));
            out.push(Placed {
                ends: Some((uc.client, uc.server)),
                draft,
            });
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{attempt_of, conn};
    use super::*;
    use crate::flow::Transport;

    #[test]
    fn unanswered_udp_beside_a_connected_tcp_session() {
        let mut tcp = conn(Transport::Tcp, 50000, 1, 40);
        tcp.outcome = Outcome::Connected;
        let mut udp = conn(Transport::Udp, 50001, 5, 9);
        udp.udp_side = true;
        udp.drafts
            .push(Draft::new(Code::UdpSynUnanswered, Severity::Warning, Phase::Udp, 5, 5).until(9));
        let (out, _) = attempt_of(vec![tcp.clone(), udp.clone()], &UdpFallback);
        assert_eq!(out.len(), 1);
        let d = &out[0].draft;
        assert_eq!(
            (d.code, d.first_frame, d.last_frame),
            (Code::UdpFallbackTcp, 5, 9)
        );
        assert!(d.summary.contains("(udp.syn_unanswered)"), "{}", d.summary);
        // The same with the TCP session failed: no fallback to speak of.
        tcp.outcome = Outcome::Failed;
        let (out, _) = attempt_of(vec![tcp, udp], &UdpFallback);
        assert!(out.is_empty());
    }
}
