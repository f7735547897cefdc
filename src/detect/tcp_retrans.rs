//! `tcp.retransmissions`: the flow lost segments often enough to matter
//! (more than `retrans_rate` of data segments and at least `retrans_min`), or
//! one handshake segment was sent `handshake_resends` times. Linux tail-loss
//! probes (1–3 resends in a healthy session) stay below both thresholds.

use super::{filter_with, Context, Detector, Draft, SIDE};
use crate::flow::Transport;
use crate::report::model::{Confidence, Phase, Severity};

pub struct Retransmissions;

impl Detector for Retransmissions {
    fn codes(&self) -> &'static [&'static str] {
        &["tcp.retransmissions"]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Tcp {
            return;
        }
        for (dir, d) in f.dirs.iter().enumerate() {
            let rate = if d.data_segments > 0 {
                d.retransmissions as f64 / d.data_segments as f64
            } else {
                0.0
            };
            let by_rate = d.retransmissions >= cx.cfg.retrans_min && rate > cx.cfg.retrans_rate;
            let by_resend = d.max_resend >= cx.cfg.handshake_resends;
            if !by_rate && !by_resend {
                continue;
            }
            // The retransmitted segments themselves (Wireshark flags the same).
            let first = d.retrans.first.frame;
            let at = d.retrans.last;
            let mut summary = format!(
                "The {} retransmitted {} of {} data segments ({:.1}%)",
                SIDE[dir],
                d.retransmissions,
                d.data_segments,
                rate * 100.0
            );
            if by_resend {
                summary.push_str(&format!(
                    "; one handshake segment was sent {} times (last at frame {})",
                    d.max_resend, d.max_resend_at.frame
                ));
            }
            out.push(Draft {
                code: "tcp.retransmissions".into(),
                severity: Severity::Warning,
                phase: Phase::Tcp,
                first_frame: first,
                last_frame: at.frame.max(first),
                ts: at.ts,
                summary,
                cause: "Packets are lost between the client and the server: congestion, a faulty \
                        link, or a path that drops large packets."
                    .to_string(),
                remedy: "Check interface error counters and link utilisation on the path; if only \
                         full-size segments are lost, suspect the path MTU (path.* findings)."
                    .to_string(),
                filter: filter_with(f, "tcp.analysis.retransmission"),
                confidence: Confidence::high(),
            });
        }
    }
}
