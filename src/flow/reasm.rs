//! Per-direction TCP reassembly into an ordered byte stream.
//!
//! Handles retransmissions, out-of-order segments (held, bounded), overlaps
//! (first data wins; disagreeing overlaps are counted), sequence wrap,
//! mid-stream starts, and holes: a hole the peer acknowledges but the capture
//! never saw is capture loss, skipped and reported as such.
//! Bytes are delivered to the caller's sink, with their stream offset, as
//! soon as they are in order; nothing is kept once delivered. The first
//! `depth` bytes per direction are `Chunk::Data`; the rest is
//! `Chunk::Beyond`, for the parsers to follow record and PDU headers only
//! (so the end of a long session is seen). Out-of-order data is held under
//! the same bounds before and past the depth.

use std::collections::BTreeMap;

/// What one segment turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegKind {
    /// New data at the expected place (or a zero-length segment).
    InOrder,
    /// All its bytes were seen before.
    Retransmission,
    /// Some old bytes, some new.
    Partial,
    /// Ahead of the expected place: a hole before it.
    OutOfOrder,
    /// Filled (part of) a hole.
    HoleFill,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: u64,
    pub max_ooo_segments: usize,
    pub max_ooo_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 1 << 20,
            max_ooo_segments: 256,
            max_ooo_bytes: 256 << 10,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Reasm {
    init: bool,
    /// Sequence number of relative offset 0.
    base: u32,
    /// Next in-order offset (everything below was delivered or skipped).
    next: u64,
    /// Highest segment end seen.
    pub highest: u64,
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Bytes acknowledged by the peer but never captured.
    pub capture_lost: u64,
    /// Overlapping bytes that disagreed with what was there first.
    pub overlap_conflicts: u64,
    /// Out-of-order data dropped because the hold bound was hit.
    pub ooo_dropped: u64,
    /// Bytes delivered to the sink.
    pub delivered: u64,
    /// Bytes of segments starting more than [`MAX_AHEAD`] past the next
    /// expected byte: no TCP window allows them, so they neither count as
    /// data nor let an acknowledgment skip a hole up to them.
    pub out_of_window: u64,
    /// Acknowledgments that would skip more than the link could have
    /// carried since the previous one ([`ACK_RATE_BYTES_PER_S`]): not
    /// counted as capture loss (chaotic or forged sequence numbers).
    pub implausible_acks: u64,
    /// When the previous acknowledgment of this stream was seen (ns).
    last_ack_ts: Option<i64>,
}

/// The fastest link an acknowledged hole is believed on: 100 Gbit/s.
pub const ACK_RATE_BYTES_PER_S: u64 = 12_500_000_000;
/// What an acknowledgment may skip beyond that rate (data in flight
/// before the previous acknowledgment).
pub const ACK_SLACK: u64 = 256 << 10;

/// The largest TCP window (65535 << 14, RFC 7323): a sender cannot be
/// further ahead of what its peer acknowledged.
pub const MAX_AHEAD: i64 = 1 << 30;

pub use crate::proto::Chunk;

impl Reasm {
    /// Starts the stream: `isn_next` is the sequence number of the first data
    /// byte (ISN + 1 after a SYN, or the first seen segment's seq mid-stream).
    pub fn start(&mut self, isn_next: u32) {
        if !self.init {
            self.init = true;
            self.base = isn_next;
        }
    }

    pub fn started(&self) -> bool {
        self.init
    }

    /// Relative offset of `seq`, unwrapped around the current position.
    pub fn rel(&self, seq: u32) -> i64 {
        let here = self.base.wrapping_add(self.next as u32);
        self.next as i64 + seq.wrapping_sub(here) as i32 as i64
    }

    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Feeds one segment. `wire_len` is its length on the wire (≥ captured).
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        wire_len: u32,
        lim: &Limits,
        sink: &mut impl FnMut(u64, Chunk<'_>),
    ) -> SegKind {
        if !self.init {
            self.start(seq);
        }
        let len = wire_len as u64;
        if len == 0 {
            return SegKind::InOrder;
        }
        let rel = self.rel(seq);
        if rel - self.next as i64 > MAX_AHEAD {
            self.out_of_window += len;
            return SegKind::OutOfOrder;
        }
        let end = rel + len as i64;
        let was_highest = self.highest;
        if end > self.highest as i64 {
            self.highest = end as u64;
        }
        if end <= self.next as i64 {
            return SegKind::Retransmission;
        }
        if rel > self.next as i64 {
            // A hole before this segment: hold it (bounded).
            let rel = rel as u64;
            if !data.is_empty() {
                let fits = self.ooo.len() < lim.max_ooo_segments
                    && self.ooo_bytes + data.len() <= lim.max_ooo_bytes;
                if fits {
                    self.hold(rel, data);
                } else {
                    self.ooo_dropped += data.len() as u64;
                }
            }
            return if (end as u64) <= was_highest {
                SegKind::HoleFill
            } else {
                SegKind::OutOfOrder
            };
        }
        // rel <= next < end: deliver the new part.
        let skip = (self.next as i64 - rel) as usize;
        let kind = if skip > 0 {
            SegKind::Partial
        } else if (end as u64) <= was_highest {
            SegKind::HoleFill
        } else {
            SegKind::InOrder
        };
        self.deliver_at(skip, data, len - skip as u64, lim, sink);
        self.drain(lim, sink);
        kind
    }

    /// The peer acknowledged up to `ack` at `now` (ns): a hole below it was
    /// received by the peer but not captured. Skip it as capture loss, when
    /// the link could have carried it since the previous acknowledgment.
    pub fn acked(
        &mut self,
        ack: u32,
        now: i64,
        lim: &Limits,
        sink: &mut impl FnMut(u64, Chunk<'_>),
    ) {
        if !self.init {
            return;
        }
        let since = self.last_ack_ts.map_or(0, |t| now.saturating_sub(t).max(0)) as u64;
        self.last_ack_ts = Some(now);
        let a = self.rel(ack);
        // Only holes we know data exists beyond, or up to the ack itself.
        if a <= self.next as i64 || a > self.highest as i64 + 1 {
            return;
        }
        let a = (a as u64).min(self.highest);
        let budget = (since as u128 * ACK_RATE_BYTES_PER_S as u128 / 1_000_000_000) as u64;
        if a - self.next > budget.saturating_add(ACK_SLACK) {
            self.implausible_acks += 1;
            return;
        }
        while self.next < a {
            let hole_end = match self.ooo.first_key_value() {
                Some((&k, _)) if k < a => k,
                _ => a,
            };
            if hole_end > self.next {
                let n = hole_end - self.next;
                self.capture_lost += n;
                sink(self.next, Chunk::Gap(n));
                self.next = hole_end;
            }
            self.drain(lim, sink);
            if self.ooo.is_empty() || self.next >= a {
                break;
            }
        }
    }

    fn hold(&mut self, rel: u64, data: &[u8]) {
        if let Some(old) = self.ooo.get(&rel) {
            let n = old.len().min(data.len());
            if old[..n] != data[..n] {
                self.overlap_conflicts += n as u64;
            }
            if old.len() >= data.len() {
                return;
            }
            self.ooo_bytes -= old.len();
        }
        self.ooo_bytes += data.len();
        self.ooo.insert(rel, data.to_vec());
    }

    fn deliver_at(
        &mut self,
        skip: usize,
        data: &[u8],
        new_len: u64,
        lim: &Limits,
        sink: &mut impl FnMut(u64, Chunk<'_>),
    ) {
        let avail = data.get(skip..).unwrap_or(&[]);
        let room = lim.depth.saturating_sub(self.delivered) as usize;
        let (part, beyond) = avail.split_at(avail.len().min(room));
        if !part.is_empty() {
            sink(self.next, Chunk::Data(part));
            self.delivered += part.len() as u64;
        }
        if !beyond.is_empty() {
            sink(self.next + part.len() as u64, Chunk::Beyond(beyond));
        }
        // Snap length cut the segment: the rest is a gap for the parsers.
        let cut = new_len.saturating_sub(avail.len() as u64);
        if cut > 0 {
            sink(self.next + avail.len() as u64, Chunk::Gap(cut));
        }
        self.next += new_len;
    }

    /// Delivers held segments that are now in order; drops ones made stale.
    fn drain(&mut self, lim: &Limits, sink: &mut impl FnMut(u64, Chunk<'_>)) {
        while let Some((&k, _)) = self.ooo.first_key_value() {
            if k > self.next {
                break;
            }
            let (k, v) = self.ooo.pop_first().expect("non-empty");
            self.ooo_bytes -= v.len();
            let end = k + v.len() as u64;
            if end <= self.next {
                continue;
            }
            let skip = (self.next - k) as usize;
            let n = v.len() - skip;
            self.deliver_at(skip, &v, n as u64, lim, sink);
        }
    }

    /// Bytes held out of order right now.
    /// A hole that data after it is waiting on: (hole bytes, bytes held
    /// after it, the largest held segment).
    pub fn pending_hole(&self) -> Option<(u64, usize, usize)> {
        let (&first, _) = self.ooo.iter().next()?;
        let largest = self.ooo.values().map(Vec::len).max().unwrap_or(0);
        Some((first.saturating_sub(self.next), self.ooo_bytes, largest))
    }

    pub fn held_bytes(&self) -> usize {
        self.ooo_bytes
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn collect(r: &mut Reasm, seq: u32, d: &[u8], out: &mut Vec<u8>) -> SegKind {
        r.segment(
            seq,
            d,
            d.len() as u32,
            &Limits::default(),
            &mut |_, c| match c {
                Chunk::Data(b) | Chunk::Beyond(b) => out.extend_from_slice(b),
                Chunk::Gap(n) => out.extend(std::iter::repeat_n(b'?', n as usize)),
            },
        )
    }

    #[test]
    fn in_order_retransmission_and_reordering() {
        let mut r = Reasm::default();
        r.start(1000);
        let mut out = vec![];
        assert_eq!(collect(&mut r, 1000, b"abc", &mut out), SegKind::InOrder);
        assert_eq!(collect(&mut r, 1006, b"ghi", &mut out), SegKind::OutOfOrder);
        assert_eq!(
            collect(&mut r, 1000, b"abc", &mut out),
            SegKind::Retransmission
        );
        assert_eq!(collect(&mut r, 1003, b"def", &mut out), SegKind::HoleFill);
        assert_eq!(out, b"abcdefghi");
        assert_eq!(collect(&mut r, 1007, b"hijk", &mut out), SegKind::Partial);
        assert_eq!(out, b"abcdefghijk");
    }

    #[test]
    fn sequence_wraps() {
        let mut r = Reasm::default();
        r.start(u32::MAX - 1);
        let mut out = vec![];
        collect(&mut r, u32::MAX - 1, b"ab", &mut out);
        collect(&mut r, 0, b"cd", &mut out);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn overlap_first_data_wins_and_is_counted() {
        let mut r = Reasm::default();
        r.start(0);
        let mut out = vec![];
        collect(&mut r, 4, b"XXXX", &mut out);
        collect(&mut r, 4, b"YYYY", &mut out);
        collect(&mut r, 0, b"0123", &mut out);
        assert_eq!(out, b"0123XXXX");
        assert_eq!(r.overlap_conflicts, 4);
    }

    #[test]
    fn a_segment_beyond_any_window_is_no_data_and_no_hole() {
        let mut r = Reasm::default();
        r.start(0);
        let mut out = vec![];
        collect(&mut r, 0, b"ab", &mut out);
        // 1 GiB + 3 ahead: no window allows it.
        collect(&mut r, (1 << 30) + 5, b"zz", &mut out);
        assert_eq!(r.out_of_window, 2);
        r.acked((1 << 30) + 7, 0, &Limits::default(), &mut |_, _| {});
        assert_eq!(r.capture_lost, 0);
        // Within the window it is held, and an ACK past it is loss.
        collect(&mut r, 1000, b"yy", &mut out);
        r.acked(1002, 1_000_000, &Limits::default(), &mut |_, _| {});
        assert_eq!(r.capture_lost, 998);
    }

    #[test]
    fn chaotic_sequence_numbers_lose_no_more_than_the_link_carries() {
        // Random seq and ack numbers (an LCG): the loss stays bounded by
        // the windows the acknowledgments could cover.
        let mut r = Reasm::default();
        r.start(0);
        let mut x: u64 = 42;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 32) as u32
        };
        let mut acks = 0u64;
        // One packet each way every 10 µs: 100 ms in all.
        for i in 0..10_000i64 {
            let seq = next();
            r.segment(seq, &[0; 8], 8, &Limits::default(), &mut |_, _| {});
            let before = r.capture_lost;
            r.acked(next(), i * 10_000, &Limits::default(), &mut |_, _| {});
            if r.capture_lost > before {
                acks += 1;
            }
        }
        // At most the slack plus 100 Gbit/s × 10 µs per acknowledgment.
        assert!(
            r.capture_lost <= acks * (ACK_SLACK + 125_000),
            "{} over {acks}",
            r.capture_lost
        );
        assert!(r.implausible_acks > 1000, "{}", r.implausible_acks);
    }

    #[test]
    fn acked_hole_is_capture_loss() {
        let mut r = Reasm::default();
        r.start(0);
        let mut out = vec![];
        collect(&mut r, 0, b"ab", &mut out);
        collect(&mut r, 5, b"fg", &mut out);
        r.acked(7, 0, &Limits::default(), &mut |_, c| match c {
            Chunk::Data(b) | Chunk::Beyond(b) => out.extend_from_slice(b),
            Chunk::Gap(n) => out.extend(std::iter::repeat_n(b'?', n as usize)),
        });
        assert_eq!(out, b"ab???fg");
        assert_eq!(r.capture_lost, 3);
    }

    #[test]
    fn depth_bounds_delivery() {
        let mut r = Reasm::default();
        r.start(0);
        let lim = Limits {
            depth: 4,
            ..Limits::default()
        };
        let mut got = vec![];
        let mut sink = |o: u64, c: Chunk<'_>| match c {
            Chunk::Data(b) => got.push(("data", o, b.to_vec())),
            Chunk::Beyond(b) => got.push(("beyond", o, b.to_vec())),
            Chunk::Gap(n) => got.push(("gap", o, vec![0; n as usize])),
        };
        r.segment(0, b"abcdef", 6, &lim, &mut sink);
        // Past the depth, reordered: held, then delivered as beyond.
        r.segment(9, b"jk", 2, &lim, &mut sink);
        r.segment(6, b"ghi", 3, &lim, &mut sink);
        assert_eq!(
            got,
            vec![
                ("data", 0, b"abcd".to_vec()),
                ("beyond", 4, b"ef".to_vec()),
                ("beyond", 6, b"ghi".to_vec()),
                ("beyond", 9, b"jk".to_vec()),
            ]
        );
        assert_eq!(r.next_offset(), 11);
        // Nothing was counted as capture loss.
        assert_eq!(r.capture_lost, 0);
    }
    #[test]
    fn chunks_carry_their_stream_offset() {
        let mut r = Reasm::default();
        r.start(1000);
        let lim = Limits::default();
        let mut seen = vec![];
        // Out of order: bytes 3..6 first, then 0..3 fills the hole.
        r.segment(1003, b"def", 3, &lim, &mut |o, c| {
            if let Chunk::Data(b) = c {
                seen.push((o, b.to_vec()))
            }
        });
        r.segment(1000, b"abc", 3, &lim, &mut |o, c| {
            if let Chunk::Data(b) = c {
                seen.push((o, b.to_vec()))
            }
        });
        assert_eq!(seen, vec![(0, b"abc".to_vec()), (3, b"def".to_vec())]);
    }
}
