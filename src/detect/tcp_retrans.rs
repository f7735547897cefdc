//! `tcp.retransmissions`: the flow lost segments often enough to matter
//! (more than `retrans_rate` of data segments and at least `retrans_min`), or
//! one handshake segment was sent `handshake_resends` times. Linux tail-loss
//! probes (1–3 resends in a healthy session) stay below both thresholds.

use super::{filter_with, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};
use crate::flow::Transport;

pub struct Retransmissions;

impl Detector for Retransmissions {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpRetransmissions]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Tcp {
            return;
        }
        for dir in Dir::BOTH {
            let (d, t) = (&f.dirs[dir], &f.tcp().dirs[dir]);
            let rate = if d.data_segments > 0 {
                t.retransmissions as f64 / d.data_segments as f64
            } else {
                0.0
            };
            let by_rate = t.retransmissions >= cx.cfg.retrans_min && rate > cx.cfg.retrans_rate;
            let by_resend = t.max_resend >= cx.cfg.handshake_resends;
            if !by_rate && !by_resend {
                continue;
            }
            // The retransmitted segments themselves (Wireshark flags the same).
            let first = t.retrans.first.frame;
            let at = t.retrans.last;
            let mut summary = format!(
                "The {} retransmitted {} of {} data segments ({:.1}%)",
                dir.name(),
                t.retransmissions,
                d.data_segments,
                rate * 100.0
            );
            if by_resend {
                summary.push_str(&format!(
                    "; one handshake segment was sent {} times (last at frame {})",
                    t.max_resend, t.max_resend_at.frame
                ));
            }
            out.push(
                Draft::new(
                    Code::TcpRetransmissions,
                    Severity::Warning,
                    Phase::Tcp,
                    first,
                    at.ts,
                )
                .until(at.frame)
                .summary(summary)
                .cause(
                    "Packets are lost between the client and the server: congestion, a \
                         faulty link, or a path that drops large packets.",
                )
                .remedy(
                    "Check interface error counters and link utilisation on the path; if \
                         only full-size segments are lost, suspect the path MTU (path.* findings).",
                )
                .filter(filter_with(f, "tcp.analysis.retransmission")),
            );
        }
    }
}
