//! `capture.loss`: bytes the receiver acknowledged that the capture never
//! saw. Not a network fault: it tells how far to trust the verdict. Only
//! what TCP can justify counts: a segment further ahead than any window
//! (1 GiB) is no data, and an acknowledgment that skips more than a
//! 100 Gbit/s link carries since the previous one (plus 256 KiB) skips
//! nothing; such sequence numbers are said instead (chaotic or forged).

use super::{conversation_filter, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};

pub struct CaptureLoss;

impl Detector for CaptureLoss {
    fn codes(&self) -> Vec<Code> {
        vec![Code::CaptureLoss]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let lost = [
            f.tcp().dirs[Dir::Client].capture_lost,
            f.tcp().dirs[Dir::Server].capture_lost,
        ];
        let t = f.tcp();
        let odd: u64 = Dir::BOTH
            .iter()
            .map(|&d| t.dirs[d].implausible_acks + u64::from(t.dirs[d].out_of_window > 0))
            .sum();
        if lost == [0, 0] && odd == 0 {
            return;
        }
        // The ACKs that revealed the loss (Wireshark: "ACKed segment that wasn't captured").
        let marks = [
            f.tcp().dirs[Dir::Client].loss_seen,
            f.tcp().dirs[Dir::Server].loss_seen,
        ];
        let seen = marks.iter().filter(|m| m.count > 0);
        let first = seen
            .clone()
            .map(|m| m.first)
            .min_by_key(|m| m.frame)
            .unwrap_or(f.first);
        let last = seen
            .map(|m| m.last)
            .max_by_key(|m| m.frame)
            .unwrap_or(f.last);
        out.push(
            Draft::new(Code::CaptureLoss, Severity::Info, Phase::Capture, first.frame, first.ts)
                .until(last.frame)
                .summary(format!(
                    "{} bytes from the client and {} from the server were acknowledged but are not in the capture{}",
                    lost[0], lost[1],
                    if odd > 0 {
                        format!(
                            "; {} bytes of segments beyond any TCP window and {} acknowledgments skipping more than the link could carry were not counted (inconsistent sequence numbers)",
                            t.dirs[Dir::Client].out_of_window + t.dirs[Dir::Server].out_of_window,
                            t.dirs[Dir::Client].implausible_acks + t.dirs[Dir::Server].implausible_acks
                        )
                    } else {
                        String::new()
                    }
                ))
                .cause("The capture dropped packets (a busy capture host, a SPAN port over capacity, or a snap filter).")
                .remedy("Capture closer to an endpoint, with a larger buffer (dumpcap -B), or filter to the RDP host only.")
                .filter(format!("{} && tcp.analysis.ack_lost_segment", conversation_filter(f))),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{flag, x224_cr, TcpConv, C, S};

    #[test]
    fn bytes_acknowledged_but_never_captured() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, MS);
        // 100 bytes the capture missed, then 43 it saw; the server acks all.
        let s = c.seq[C];
        c.seq[C] = s.wrapping_add(100);
        let cr = x224_cr("alice", 3);
        let s2 = c.seq[C];
        c.raw(&mut out, C, s2, flag::PSH, true, None, &cr);
        c.seq[C] = s2.wrapping_add(cr.len() as u32);
        c.ack(&mut out, S);
        let d = check(&CaptureLoss, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].summary
                .starts_with("100 bytes from the client and 0 from the server"),
            "{}",
            d[0].summary
        );
        assert_eq!(
            d[0].first_frame,
            out.len() as u64,
            "the ACK that revealed it"
        );
    }
}
