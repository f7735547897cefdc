//! Segments in flight, per direction: what was sent and not yet
//! acknowledged (a window of [`MAX_INFLIGHT`]; older ones fall off). The
//! cumulative ACK takes a prefix, a SACK block any of the rest; what the
//! peer got sets the largest size known to cross the path, and a segment
//! resent and never acknowledged is the black-hole evidence (path MTU).

use crate::capture::Mark;
use std::collections::VecDeque;

/// A data segment waiting for its ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Sequence number just past its last byte.
    pub end: u32,
    pub len: u32,
    pub ip_len: u32,
    pub sends: u32,
    pub first: Mark,
    pub last: Mark,
    pub df: bool,
}

/// Unacknowledged segments remembered per direction.
pub const MAX_INFLIGHT: usize = 64;

/// One direction's window of unacknowledged segments, in send order.
#[derive(Debug, Default, Clone)]
pub struct Window {
    segs: VecDeque<InFlight>,
}

impl Window {
    /// The peer acknowledged up to `ack` (and the SACK block `sack`, when
    /// present): every segment it now has is passed to `got` and dropped.
    pub fn acked(&mut self, ack: u32, sack: Option<(u32, u32)>, mut got: impl FnMut(&InFlight)) {
        let k = self
            .segs
            .iter()
            .position(|s| (ack.wrapping_sub(s.end) as i32) < 0)
            .unwrap_or(self.segs.len());
        if k > 0 {
            self.segs.drain(..k).for_each(|s| got(&s));
        }
        if let Some((l, r)) = sack {
            self.segs.retain(|s| {
                let start = s.end.wrapping_sub(s.len);
                let sacked =
                    (start.wrapping_sub(l) as i32) >= 0 && (r.wrapping_sub(s.end) as i32) >= 0;
                if sacked {
                    got(s);
                }
                !sacked
            });
        }
    }

    /// A data segment was sent: a resend of one in the window counts
    /// there; a new one is added (the oldest falls off a full window).
    pub fn sent(&mut self, seg: InFlight, resend: bool) {
        if resend {
            if let Some(s) = self.segs.iter_mut().rev().find(|s| s.end == seg.end) {
                s.sends += 1;
                s.last = seg.last;
                return;
            }
        }
        if self.segs.len() == MAX_INFLIGHT {
            self.segs.pop_front();
        }
        self.segs.push_back(seg);
    }

    /// The largest segment sent 2+ times and still unacknowledged (the
    /// earliest of equal sizes).
    pub fn stuck(&self) -> Option<InFlight> {
        self.segs
            .iter()
            .filter(|x| x.sends >= 2)
            .max_by_key(|x| (x.len, std::cmp::Reverse(x.first.frame)))
            .copied()
    }

    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn seg(end: u32, len: u32, frame: u64) -> InFlight {
        let at = Mark {
            frame,
            ts: frame as i64,
        };
        InFlight {
            end,
            len,
            ip_len: len + 40,
            sends: 1,
            first: at,
            last: at,
            df: true,
        }
    }

    #[test]
    fn cumulative_ack_takes_a_prefix_and_sack_the_rest() {
        let mut w = Window::default();
        w.sent(seg(1100, 100, 1), false);
        w.sent(seg(2548, 1448, 2), false);
        w.sent(seg(2648, 100, 3), false);
        // The big one is resent twice; the ACK stops before it, the SACK
        // block covers the small one after it.
        w.sent(seg(2548, 1448, 4), true);
        w.sent(seg(2548, 1448, 5), true);
        let mut got = vec![];
        w.acked(1100, Some((2548, 2648)), |s| got.push(s.len));
        assert_eq!(got, vec![100, 100]);
        let stuck = w.stuck().unwrap();
        assert_eq!((stuck.len, stuck.sends, stuck.last.frame), (1448, 3, 5));
        // Sequence wrap: an ACK just past zero takes a segment ending there.
        let mut w = Window::default();
        w.sent(seg(10, 20, 1), false);
        w.acked(10, None, |_| {});
        assert!(w.is_empty());
    }

    #[test]
    fn window_is_bounded() {
        let mut w = Window::default();
        for i in 0..(MAX_INFLIGHT as u32 + 10) {
            w.sent(seg(100 * (i + 1), 100, i as u64), false);
        }
        assert_eq!(w.len(), MAX_INFLIGHT);
    }
}
