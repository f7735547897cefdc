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

#[cfg(test)]
mod test {
    use super::super::fixture::{check, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{flag, x224_cr, TcpConv, C};

    #[test]
    fn a_handshake_segment_sent_three_times() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, MS);
        let cr = x224_cr("alice", 3);
        let s = c.seq[C];
        for _ in 0..3 {
            c.raw(&mut out, C, s, flag::PSH, true, None, &cr);
            c.wait(200 * MS);
        }
        let d = check(&Retransmissions, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].first_frame, d[0].last_frame), (5, 6));
        assert!(
            d[0].summary
                .contains("one handshake segment was sent 3 times"),
            "{}",
            d[0].summary
        );
        // Sent twice: a tail-loss probe, nothing to report.
        let two = &out[..5];
        assert!(check(&Retransmissions, two, &Config::default()).is_empty());
    }
}
