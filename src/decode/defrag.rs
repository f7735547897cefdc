//! Bounded IPv4/IPv6 reassembly on top of etherparse's `IpDefragBuf`.
//!
//! etherparse 0.21's `IpDefragPool` is not hardened against memory
//! exhaustion (its own docs say so) and lets later fragments overwrite
//! earlier ones silently; this pool bounds the number of datagrams under
//! reassembly and their bytes, expires them, and detects overlaps (first
//! data wins, as in our TCP reassembly; disagreeing overlaps are flagged).

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber};
use rustc_hash::FxHashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub id: u32,
}

/// What is known about one datagram's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragMeta {
    pub key: FragKey,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub fragments: u32,
    /// Overlapping fragments were seen…
    pub overlap: bool,
    /// …and some carried different bytes for the same offsets.
    pub overlap_conflict: bool,
    /// Ports from the first fragment, when it arrived.
    pub ports: Option<(u16, u16)>,
    /// Largest fragment's IP length.
    pub largest: u32,
}

pub enum Outcome {
    /// The datagram is complete: its transport payload and its history.
    Complete(Vec<u8>, FragMeta),
    Pending,
    /// The fragment was malformed (bad length or alignment, conflicting end).
    Invalid(FragMeta, String),
}

struct Entry {
    buf: IpDefragBuf,
    meta: FragMeta,
    bytes: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Datagrams under reassembly at once.
    pub max_datagrams: usize,
    /// Bytes held by all of them.
    pub max_bytes: usize,
    /// A datagram not completed within this many nanoseconds is dropped.
    pub timeout_ns: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_datagrams: 1024,
            max_bytes: 8 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

pub struct Defrag {
    limits: Limits,
    active: FxHashMap<FragKey, Entry>,
    bytes: usize,
    /// Datagrams dropped because a bound was hit (reported).
    pub evicted: u64,
}

impl Defrag {
    pub fn new(limits: Limits) -> Defrag {
        Defrag {
            limits,
            active: FxHashMap::default(),
            bytes: 0,
            evicted: 0,
        }
    }

    /// Adds a fragment. Datagrams that expired or were evicted to make room
    /// are pushed to `dropped` (they never completed).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        key: FragKey,
        offset: u16,
        more: bool,
        payload: &[u8],
        ip_len: u32,
        frame: u64,
        ts: i64,
        dropped: &mut Vec<FragMeta>,
    ) -> Outcome {
        if !self.active.contains_key(&key) {
            while self.active.len() >= self.limits.max_datagrams
                || self.bytes + payload.len() > self.limits.max_bytes
            {
                if !self.evict_oldest(dropped) {
                    break;
                }
                self.evicted += 1;
            }
            self.active.insert(
                key,
                Entry {
                    buf: IpDefragBuf::new(IpNumber(key.proto), Vec::new(), Vec::new()),
                    meta: FragMeta {
                        key,
                        first_frame: frame,
                        last_frame: frame,
                        first_ts: ts,
                        last_ts: ts,
                        fragments: 0,
                        overlap: false,
                        overlap_conflict: false,
                        ports: None,
                        largest: 0,
                    },
                    bytes: 0,
                },
            );
        }
        let Some(e) = self.active.get_mut(&key) else {
            return Outcome::Pending;
        };
        let m = &mut e.meta;
        m.last_frame = frame;
        m.last_ts = ts;
        m.fragments += 1;
        m.largest = m.largest.max(ip_len);
        if offset == 0 && payload.len() >= 4 {
            m.ports = Some((
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            ));
        }
        // Overlap check against what is already there (first data wins).
        let start = offset as usize;
        let end = start + payload.len();
        let mut patched: Option<Vec<u8>> = None;
        for r in e.buf.sections() {
            let (rs, re) = (r.start as usize, r.end as usize);
            let (s, t) = (start.max(rs), end.min(re));
            if s < t {
                m.overlap = true;
                let old = &e.buf.data()[s..t];
                let new = &payload[s - start..t - start];
                if old != new {
                    m.overlap_conflict = true;
                    patched.get_or_insert_with(|| payload.to_vec())[s - start..t - start]
                        .copy_from_slice(old);
                }
            }
        }
        let data = patched.as_deref().unwrap_or(payload);
        let Ok(off) = IpFragOffset::try_new(offset / 8) else {
            let meta = *m;
            self.remove(&key);
            return Outcome::Invalid(meta, format!("fragment offset {offset} out of range"));
        };
        if let Err(err) = e.buf.add(off, more, data) {
            let meta = *m;
            self.remove(&key);
            return Outcome::Invalid(meta, err.to_string());
        }
        let grown = e.buf.data().len().saturating_sub(e.bytes);
        e.bytes += grown;
        self.bytes += grown;
        if e.buf.is_complete() {
            let e = self.remove(&key).expect("present");
            let (data, _) = e.buf.take_bufs();
            return Outcome::Complete(data, e.meta);
        }
        Outcome::Pending
    }

    fn remove(&mut self, key: &FragKey) -> Option<Entry> {
        let e = self.active.remove(key)?;
        self.bytes -= e.bytes;
        Some(e)
    }

    fn evict_oldest(&mut self, dropped: &mut Vec<FragMeta>) -> bool {
        let Some(key) = self
            .active
            .iter()
            .min_by_key(|(_, e)| (e.meta.last_ts, e.meta.first_frame))
            .map(|(k, _)| *k)
        else {
            return false;
        };
        if let Some(e) = self.remove(&key) {
            dropped.push(e.meta);
        }
        true
    }

    /// Drops datagrams idle for longer than the timeout at time `now`.
    pub fn expire(&mut self, now: i64, dropped: &mut Vec<FragMeta>) {
        let limit = self.limits.timeout_ns;
        let mut old: Vec<FragKey> = self
            .active
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.meta.last_ts) > limit)
            .map(|(k, _)| *k)
            .collect();
        old.sort_by_key(|k| self.active[k].meta.first_frame);
        for k in old {
            if let Some(e) = self.remove(&k) {
                dropped.push(e.meta);
            }
        }
    }

    /// Everything still incomplete at the end of the capture.
    pub fn drain(&mut self, dropped: &mut Vec<FragMeta>) {
        let mut all: Vec<FragMeta> = self.active.drain().map(|(_, e)| e.meta).collect();
        all.sort_by_key(|m| m.first_frame);
        self.bytes = 0;
        dropped.extend(all);
    }

    /// The first fragment (frame and time) of the oldest pending train.
    pub fn floor(&self) -> Option<crate::capture::Mark> {
        self.active
            .values()
            .map(|e| crate::capture::Mark {
                frame: e.meta.first_frame,
                ts: e.meta.first_ts,
            })
            .min_by_key(|m| m.frame)
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FragKey {
        FragKey {
            src: Ipv4Addr::new(198, 18, 0, 1).into(),
            dst: Ipv4Addr::new(198, 18, 0, 2).into(),
            proto: 17,
            id: 7,
        }
    }

    #[test]
    fn two_fragments_out_of_order() {
        let mut d = Defrag::new(Limits::default());
        let mut dropped = vec![];
        assert!(matches!(
            d.add(key(), 8, false, b"tail", 24, 2, 2, &mut dropped),
            Outcome::Pending
        ));
        match d.add(
            key(),
            0,
            true,
            b"\x0d\x3d\x0d\x3dhead",
            28,
            1,
            1,
            &mut dropped,
        ) {
            Outcome::Complete(data, m) => {
                assert_eq!(data, b"\x0d\x3d\x0d\x3dheadtail");
                assert_eq!(m.ports, Some((3389, 3389)));
                assert_eq!(m.fragments, 2);
                assert!(!m.overlap);
            }
            _ => panic!("not complete"),
        }
        assert!(d.is_empty());
    }

    #[test]
    fn conflicting_overlap_first_wins() {
        let mut d = Defrag::new(Limits::default());
        let mut dropped = vec![];
        d.add(key(), 0, true, b"AAAAAAAA", 28, 1, 1, &mut dropped);
        // Same offset, other bytes, and the last fragment.
        d.add(key(), 0, true, b"BBBBBBBB", 28, 2, 2, &mut dropped);
        match d.add(key(), 8, false, b"CC", 22, 3, 3, &mut dropped) {
            Outcome::Complete(data, m) => {
                assert_eq!(data, b"AAAAAAAACC");
                assert!(m.overlap && m.overlap_conflict);
            }
            _ => panic!("not complete"),
        }
    }

    #[test]
    fn bounded_and_expiring() {
        let mut d = Defrag::new(Limits {
            max_datagrams: 2,
            max_bytes: 1 << 20,
            timeout_ns: 10,
        });
        let mut dropped = vec![];
        for id in 0..5 {
            let k = FragKey { id, ..key() };
            d.add(
                k,
                0,
                true,
                &[0; 8],
                28,
                id as u64 + 1,
                id as i64,
                &mut dropped,
            );
        }
        assert_eq!(d.evicted, 3);
        assert_eq!(dropped.len(), 3);
        d.expire(100, &mut dropped);
        assert_eq!(dropped.len(), 5);
        assert!(d.is_empty());
    }

    #[test]
    fn misaligned_middle_fragment_is_invalid() {
        let mut d = Defrag::new(Limits::default());
        let mut dropped = vec![];
        assert!(matches!(
            d.add(key(), 0, true, &[0; 5], 25, 1, 1, &mut dropped),
            Outcome::Invalid(..)
        ));
    }
}
