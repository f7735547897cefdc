//! Record-level reading of pcap and pcapng, on top of pcap-parser's block and
//! record parsers, in batches of frames that borrow from the source window.
//!
//! pcap-parser 0.17 pitfalls handled here (each has a test in this module):
//! - its slice APIs (`LegacyPcapSlice`, `parse_pcap`) read records as
//!   little-endian whatever the header says: we pick `parse_pcap_frame_be`
//!   ourselves for big-endian files;
//! - `PcapNGCapture::iter()` panics on files with several sections: we walk
//!   blocks ourselves and switch byte order at every Section Header Block;
//! - `PcapCapture::from_file` silently drops a truncated tail: we report it;
//! - an EPB's `data` includes padding: we use `packet_data()`;
//! - nanosecond pcaps keep nanoseconds in `ts_usec`: we scale by the magic;
//! - `build_ts_resolution` rejects every power-of-two `if_tsresol`: we
//!   compute the resolution ourselves;
//! - the streaming readers' fixed buffer overflows on large blocks (their
//!   issue #29): our window grows to the record's size, up to a bound.

use super::source::Source;
use super::{CaptureError, FrameMeta, ReadEvent};
use pcap_parser::nom;
use pcap_parser::pcapng::{Block, SectionHeaderBlock};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{PcapError, PcapHeader};

const SHB_MAGIC: u32 = 0x0A0D_0D0A;
/// Obsolete Packet Block (pcapng draft), block type 2.
const OPB_TYPE: u32 = 0x0000_0002;
/// Enhanced Packet Block (pcapng 4.3).
const EPB_TYPE: u32 = 0x0000_0006;
/// Largest packet record we accept in a pcap (Wireshark's standard maximum is
/// 256 KiB; we allow more when the header's snaplen says so).
const MAX_PCAP_RECORD: u32 = 256 << 10;
/// Largest pcapng block accepted (a bound against hostile length fields).
const MAX_BLOCK: u32 = super::source::MAX_WINDOW as u32;
/// Upper bound on decryption secrets kept per file.
const MAX_SECRETS: usize = 16 << 20;
/// Decryption Secrets Blocks kept per file (empty ones are not counted);
/// more are dropped like secrets over [`MAX_SECRETS`].
const MAX_SECRET_BLOCKS: usize = 1024;
/// At most this many interfaces per section.
const MAX_IFACES: usize = 4096;

#[derive(Debug, Clone)]
struct Iface {
    link: u32,
    /// Timestamp units per second.
    units: u64,
    offset_s: i64,
    snaplen: u32,
}

enum Fmt {
    Pcap {
        be: bool,
        nanos: bool,
        modified: bool,
        link: u32,
        max_record: u32,
    },
    PcapNg {
        be: bool,
        ifaces: Vec<Iface>,
    },
}

/// Reads frames from one capture in batches.
pub struct Reader {
    src: Source,
    fmt: Fmt,
    pending: usize,
    next_number: u64,
    secrets_bytes: usize,
    secret_blocks: usize,
    done: bool,
    /// Non-fatal things noticed while reading (truncation, secrets, …).
    pub events: Vec<ReadEvent>,
}

enum Step {
    /// Parsed a record of `n` bytes; maybe a frame.
    Record(usize, Option<FrameMeta>),
    /// Need at least this many bytes in the window.
    Need(usize),
    /// Corrupt data at this point.
    Corrupt(String),
}

impl Reader {
    /// Reads the file header. Fails when the bytes are not a capture.
    pub fn new(src: Source) -> Result<Reader, CaptureError> {
        Reader::named(src, "")
    }

    /// [`Reader::new`] for a file of this name (what it is instead of a
    /// capture may show in its name: a `.etl` trace).
    pub fn named(mut src: Source, name: &str) -> Result<Reader, CaptureError> {
        src.fill(512).map_err(CaptureError::Io)?;
        let head = src.window();
        if head.is_empty() {
            return Err(CaptureError::Empty);
        }
        if head.len() < 4 || !super::is_capture_magic(head) {
            return Err(CaptureError::NotCapture(super::not_capture_hint(
                head, name,
            )));
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (fmt, used) = if magic == SHB_MAGIC {
            // Peek at the SHB's length (byte order from its BOM) and make sure it is all here.
            if head.len() < 12 {
                return Err(CaptureError::Truncated);
            }
            let be = head[8..12] == [0x1A, 0x2B, 0x3C, 0x4D];
            let len = rd32(&head[4..8], be) as usize;
            src.fill(len).map_err(CaptureError::Io)?;
            let head = src.window();
            match pcap_parser::pcapng::parse_sectionheaderblock(head) {
                Ok((rest, shb)) => (
                    Fmt::PcapNg {
                        be: shb.big_endian(),
                        ifaces: Vec::new(),
                    },
                    head.len() - rest.len(),
                ),
                Err(nom::Err::Incomplete(_)) => return Err(CaptureError::Truncated),
                Err(e) => {
                    return Err(CaptureError::Corrupt {
                        frame: 0,
                        what: format!("bad section header block: {e:?}"),
                    })
                }
            }
        } else {
            match pcap_parser::parse_pcap_header(head) {
                Ok((rest, h)) => (pcap_fmt(&h), head.len() - rest.len()),
                Err(nom::Err::Incomplete(_)) => return Err(CaptureError::Truncated),
                Err(e) => {
                    return Err(CaptureError::Corrupt {
                        frame: 0,
                        what: format!("bad pcap header: {e:?}"),
                    })
                }
            }
        };
        src.consume(used);
        Ok(Reader {
            src,
            fmt,
            pending: 0,
            next_number: 1,
            secrets_bytes: 0,
            secret_blocks: 0,
            done: false,
            events: Vec::new(),
        })
    }

    /// The window the frames of the last batch point into.
    pub fn window(&self) -> &[u8] {
        self.src.window()
    }

    /// Fills `out` with the next frames (offsets into [`Reader::window`]).
    /// Returns `Ok(false)` when the capture has ended (`out` may still hold
    /// the last frames). A corrupt record ends the file with `Err` after the
    /// frames before it were returned by earlier calls.
    /// The source, from its first byte again when it is a mapped file
    /// (another pass over the same map).
    pub fn rewound(self) -> Option<Source> {
        self.src.rewound()
    }

    /// Whether a Decryption Secrets Block was read so far (kept or dropped).
    pub fn saw_secrets(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                ReadEvent::Secrets { .. } | ReadEvent::SecretsDropped { .. }
            )
        })
    }

    pub fn next_batch(
        &mut self,
        out: &mut Vec<FrameMeta>,
        max_frames: usize,
        max_bytes: usize,
    ) -> Result<bool, CaptureError> {
        out.clear();
        self.src.consume(self.pending);
        self.pending = 0;
        if self.done {
            return Ok(false);
        }
        let mut off = 0usize;
        loop {
            if out.len() >= max_frames || off >= max_bytes {
                self.pending = off;
                return Ok(true);
            }
            let step = self.step(off);
            match step {
                Step::Record(n, frame) => {
                    off += n;
                    if let Some(f) = frame {
                        out.push(f);
                    }
                }
                Step::Need(want) => {
                    let have = self.src.window().len() - off;
                    if self.src.at_eof() {
                        self.pending = off;
                        self.done = true;
                        if have > 0 {
                            self.events.push(ReadEvent::Truncated {
                                frame: self.next_number,
                                missing: want.saturating_sub(have) as u64,
                            });
                        }
                        return Ok(false);
                    }
                    if off > 0 {
                        // Hand over what we have; the next call compacts and reads on.
                        self.pending = off;
                        return Ok(true);
                    }
                    if let Err(e) = self.src.fill(want) {
                        self.done = true;
                        return Err(if e.kind() == std::io::ErrorKind::InvalidData {
                            CaptureError::Corrupt {
                                frame: self.next_number,
                                what: e.to_string(),
                            }
                        } else {
                            CaptureError::Io(e)
                        });
                    }
                }
                Step::Corrupt(what) => {
                    self.pending = off;
                    self.done = true;
                    return Err(CaptureError::Corrupt {
                        frame: self.next_number,
                        what,
                    });
                }
            }
        }
    }

    fn step(&mut self, off: usize) -> Step {
        let win = &self.src.window()[off..];
        match &mut self.fmt {
            Fmt::Pcap {
                be,
                nanos,
                modified,
                link,
                max_record,
            } => {
                let hdr = if *modified { 24 } else { 16 };
                if win.len() < hdr {
                    return Step::Need(hdr);
                }
                let caplen = rd32(&win[8..12], *be);
                if caplen > *max_record {
                    return Step::Corrupt(format!(
                        "record length {caplen} exceeds the limit of {max_record} bytes"
                    ));
                }
                let need = hdr + caplen as usize;
                if win.len() < need {
                    return Step::Need(need);
                }
                let parsed = if *modified {
                    pcap_parser::parse_pcap_frame_modified(win)
                } else if *be {
                    pcap_parser::parse_pcap_frame_be(win)
                } else {
                    pcap_parser::parse_pcap_frame(win)
                };
                match parsed {
                    Ok((_, rec)) => {
                        let frac = if *nanos {
                            rec.ts_usec as i64
                        } else {
                            rec.ts_usec as i64 * 1000
                        };
                        let number = self.next_number;
                        self.next_number += 1;
                        Step::Record(
                            need,
                            Some(FrameMeta {
                                number,
                                ts: rec.ts_sec as i64 * 1_000_000_000 + frac,
                                link: *link,
                                off: off + hdr,
                                len: caplen,
                                orig_len: rec.origlen,
                                iface: 0,
                            }),
                        )
                    }
                    Err(nom::Err::Incomplete(_)) => Step::Need(need),
                    Err(e) => Step::Corrupt(format!("bad record: {e:?}")),
                }
            }
            Fmt::PcapNg { be, ifaces } => {
                if win.len() < 12 {
                    return Step::Need(12);
                }
                let is_shb = rd32(&win[0..4], false) == SHB_MAGIC;
                // A new section may switch byte order: its BOM decides.
                let len_be = if is_shb {
                    win[8..12] == [0x1A, 0x2B, 0x3C, 0x4D]
                } else {
                    *be
                };
                let block_len = rd32(&win[4..8], len_be);
                if block_len < 12 || block_len % 4 != 0 || block_len > MAX_BLOCK {
                    return Step::Corrupt(format!("invalid block length {block_len}"));
                }
                let need = block_len as usize;
                if win.len() < need {
                    return Step::Need(need);
                }
                let win = &win[..need];
                if is_shb {
                    return match pcap_parser::pcapng::parse_sectionheaderblock(win) {
                        Ok((_, shb)) => {
                            *be = SectionHeaderBlock::big_endian(&shb);
                            ifaces.clear();
                            Step::Record(need, None)
                        }
                        Err(e) => Step::Corrupt(format!("bad section header block: {e:?}")),
                    };
                }
                let number = self.next_number;
                let mut frame = |if_id: u32,
                                 ts_high: u32,
                                 ts_low: u32,
                                 data_off: usize,
                                 len: usize,
                                 orig: u32| {
                    self.next_number += 1;
                    let (link, ts) = match ifaces.get(if_id as usize) {
                        Some(i) => (i.link, ts_ns(ts_high, ts_low, i.units, i.offset_s)),
                        None => (u32::MAX, ts_ns(ts_high, ts_low, 1_000_000, 0)),
                    };
                    Some(FrameMeta {
                        number,
                        ts,
                        link,
                        off: off + data_off,
                        len: len as u32,
                        orig_len: orig,
                        iface: if_id,
                    })
                };
                // An Enhanced Packet Block without options (nearly every block
                // of a capture) is read by hand: pcap-parser's generic block
                // parser was 8% of reading a pcapng (the pcap path reads its
                // record headers by hand too). The checks are its own for this
                // layout (pcapng 4.3: 28 bytes of header, the data padded to
                // 32 bits, the length again), so it accepts what it would;
                // anything else (options, a length that disagrees) goes to
                // pcap-parser, which says what is wrong.
                let be_now = *be;
                if let Some([if_id, ts_high, ts_low, caplen, orig]) = plain_epb(win, be_now) {
                    let f = frame(if_id, ts_high, ts_low, 28, caplen as usize, orig);
                    return Step::Record(need, f);
                }
                let parsed = if be_now {
                    pcap_parser::pcapng::parse_block_be(win)
                } else {
                    pcap_parser::pcapng::parse_block_le(win)
                };
                let block = match parsed {
                    Ok((_, b)) => b,
                    Err(nom::Err::Incomplete(_)) => {
                        return Step::Corrupt("block shorter than its contents".into())
                    }
                    Err(e) => return Step::Corrupt(format!("bad block: {}", short_err(&e))),
                };
                let base = win.as_ptr() as usize;
                match block {
                    Block::InterfaceDescription(idb) => {
                        if ifaces.len() >= MAX_IFACES {
                            return Step::Corrupt(format!("more than {MAX_IFACES} interfaces"));
                        }
                        let units = resolution(idb.if_tsresol).unwrap_or(1_000_000);
                        ifaces.push(Iface {
                            link: idb.linktype.0 as u32,
                            units,
                            offset_s: idb.if_tsoffset,
                            snaplen: idb.snaplen,
                        });
                        Step::Record(need, None)
                    }
                    Block::EnhancedPacket(epb) => {
                        let data = epb.packet_data();
                        let f = frame(
                            epb.if_id,
                            epb.ts_high,
                            epb.ts_low,
                            data.as_ptr() as usize - base,
                            data.len(),
                            epb.origlen,
                        );
                        Step::Record(need, f)
                    }
                    Block::SimplePacket(spb) => {
                        let mut len = spb.data.len().min(spb.origlen as usize);
                        if let Some(i) = ifaces.first() {
                            if i.snaplen > 0 {
                                len = len.min(i.snaplen as usize);
                            }
                        }
                        let off_in = spb.data.as_ptr() as usize - base;
                        let orig = spb.origlen;
                        // SPBs carry no timestamp; they belong to interface 0.
                        let mut f = frame(0, 0, 0, off_in, len, orig);
                        if let Some(f) = f.as_mut() {
                            f.ts = 0;
                        }
                        Step::Record(need, f)
                    }
                    Block::Unknown(ub)
                        if ub.block_type == OPB_TYPE || ub.block_type.swap_bytes() == OPB_TYPE =>
                    {
                        // Obsolete Packet Block: if_id u16, drops u16, ts_high, ts_low, caplen, origlen, data.
                        let d = ub.data;
                        if d.len() < 20 {
                            return Step::Corrupt("obsolete packet block too short".into());
                        }
                        let if_id = rd16(&d[0..2], *be) as u32;
                        let caplen = (rd32(&d[12..16], *be) as usize).min(d.len() - 20);
                        let orig = rd32(&d[16..20], *be);
                        let f = frame(
                            if_id,
                            rd32(&d[4..8], *be),
                            rd32(&d[8..12], *be),
                            d.as_ptr() as usize - base + 20,
                            caplen,
                            orig,
                        );
                        Step::Record(need, f)
                    }
                    Block::DecryptionSecrets(dsb) => {
                        let len = (dsb.secrets_len as usize).min(dsb.data.len());
                        if len == 0 {
                            // Nothing to keep.
                        } else if self.secrets_bytes + len <= MAX_SECRETS
                            && self.secret_blocks < MAX_SECRET_BLOCKS
                        {
                            self.secret_blocks += 1;
                            self.secrets_bytes += len;
                            self.events.push(ReadEvent::Secrets {
                                kind: dsb.secrets_type.0,
                                data: dsb.data[..len].to_vec(),
                                after: self.next_number - 1,
                            });
                        } else if let Some(ReadEvent::SecretsDropped { bytes, blocks }) = self
                            .events
                            .iter_mut()
                            .rev()
                            .find(|e| matches!(e, ReadEvent::SecretsDropped { .. }))
                        {
                            // One event for all the blocks dropped: a flood
                            // of blocks must not grow the event list.
                            *bytes += len as u64;
                            *blocks += 1;
                        } else {
                            self.events.push(ReadEvent::SecretsDropped {
                                bytes: len as u64,
                                blocks: 1,
                            });
                        }
                        Step::Record(need, None)
                    }
                    _ => Step::Record(need, None),
                }
            }
        }
    }
}

fn pcap_fmt(h: &PcapHeader) -> Fmt {
    Fmt::Pcap {
        be: h.is_bigendian(),
        nanos: h.is_nanosecond_precision(),
        modified: h.is_modified_format(),
        link: h.network.0 as u32,
        max_record: MAX_PCAP_RECORD.max(h.snaplen.min(MAX_BLOCK)),
    }
}

fn short_err(e: &nom::Err<PcapError<&[u8]>>) -> String {
    match e {
        nom::Err::Error(p) | nom::Err::Failure(p) => format!("{p}"),
        nom::Err::Incomplete(_) => "incomplete".into(),
    }
}

fn rd32(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd16(b: &[u8], be: bool) -> u16 {
    let a = [b[0], b[1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// `if_tsresol`: bit 7 clear = 10^-v seconds, set = 2^-(v & 0x7f) seconds.
/// (pcap-parser 0.17's `build_ts_resolution` refuses every power-of-two value.)
pub fn resolution(tsresol: u8) -> Option<u64> {
    let v = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(v)
    } else {
        1u64.checked_shl(v).filter(|_| v < 64)
    }
}

/// Nanoseconds since the epoch from a pcapng 64-bit timestamp.
pub fn ts_ns(high: u32, low: u32, units: u64, offset_s: i64) -> i64 {
    let t = ((high as u64) << 32) | low as u64;
    let units = units.max(1) as u128;
    let secs = (t as u128 / units) as i128;
    let frac = ((t as u128 % units) * 1_000_000_000 / units) as i128;
    let ns = (secs + offset_s as i128) * 1_000_000_000 + frac;
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// pcapng secrets type of a TLS key log (`TLSK`).
pub const SECRETS_TLS: u32 = 0x544C_534B;

/// A whole block (`win`, its length as its header says) that is an
/// Enhanced Packet Block without options: interface, timestamp high and
/// low, captured and original lengths (the data starts at byte 28). The
/// checks are pcap-parser's for this layout (pcapng 4.3: 28 bytes of
/// header, the data padded to 32 bits, the length again); `None` for
/// anything else, which pcap-parser then reads or rejects.
fn plain_epb(win: &[u8], be: bool) -> Option<[u32; 5]> {
    let need = win.len();
    if need < 32 || rd32(&win[0..4], be) != EPB_TYPE || rd32(&win[4..8], be) as usize != need {
        return None;
    }
    let caplen = rd32(&win[20..24], be);
    let fits = caplen < u32::MAX - 4
        && 32 + (caplen as usize).next_multiple_of(4) == need
        && rd32(&win[need - 4..], be) as usize == need;
    fits.then(|| {
        [
            rd32(&win[8..12], be),
            rd32(&win[12..16], be),
            rd32(&win[16..20], be),
            caplen,
            rd32(&win[24..28], be),
        ]
    })
}

/// The TLS key logs of every Decryption Secrets Block of a whole pcapng
/// file, wherever they sit (a DSB written after the packets it decrypts
/// still counts for a mapped file), at most `MAX_SECRETS` bytes; with the
/// bytes left out. Only block headers are read: a jump per block. Not a
/// pcapng file, or a damaged one: what was found before the damage (the
/// main pass reports the damage).
pub fn pcapng_secrets(b: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let (mut out, mut kept, mut dropped) = (Vec::new(), 0usize, 0u64);
    let mut off = 0usize;
    let mut le = true;
    let word = |b: &[u8], o: usize, le: bool| -> Option<u32> {
        let w: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    while off + 12 <= b.len() {
        let Some(raw_type) = word(b, off, true) else {
            break;
        };
        if raw_type == 0x0A0D_0D0A {
            match b.get(off + 8..off + 12) {
                Some([0x4D, 0x3C, 0x2B, 0x1A]) => le = true,
                Some([0x1A, 0x2B, 0x3C, 0x4D]) => le = false,
                _ => break,
            }
        } else if off == 0 {
            break;
        }
        let (Some(typ), Some(len)) = (word(b, off, le), word(b, off + 4, le)) else {
            break;
        };
        let len = len as usize;
        if len < 12 || len % 4 != 0 || off + len > b.len() {
            break;
        }
        if typ == 0x0000_000A && len >= 20 {
            let kind = word(b, off + 8, le).unwrap_or(0);
            let n = word(b, off + 12, le).unwrap_or(0) as usize;
            if kind == SECRETS_TLS && n > 0 && n <= len - 20 {
                if kept + n <= MAX_SECRETS && out.len() < MAX_SECRET_BLOCKS {
                    kept += n;
                    out.push(b[off + 16..off + 16 + n].to_vec());
                } else {
                    dropped += n as u64;
                }
            }
        }
        off += len;
    }
    (out, dropped)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::synth::{self, Format, Pkt};

    fn pkts(n: usize) -> Vec<Pkt> {
        (0..n)
            .map(|i| Pkt {
                ts: 1_700_000_000_123_456_789 + i as i64 * 1000,
                data: vec![i as u8; 61 + i], // odd lengths: pcapng pads
                orig_len: 61 + i as u32,
            })
            .collect()
    }

    /// (frame number, timestamp, bytes)
    type Read = (u64, i64, Vec<u8>);

    /// Reads through the streaming window in batches of 3 (maps share the
    /// window logic and are exercised by the end-to-end tests).
    fn read_all(bytes: Vec<u8>) -> (Vec<Read>, Vec<ReadEvent>, Option<CaptureError>) {
        let src = Source::from_reader(Box::new(std::io::Cursor::new(bytes))).unwrap();
        let mut r = Reader::new(src).unwrap();
        let mut out = vec![];
        let mut batch = vec![];
        let mut err = None;
        loop {
            let more = match r.next_batch(&mut batch, 3, 1 << 20) {
                Ok(m) => m,
                Err(e) => {
                    err = Some(e);
                    false
                }
            };
            for f in &batch {
                out.push((f.number, f.ts, f.data(r.window()).to_vec()));
            }
            if !more {
                break;
            }
        }
        (out, r.events.clone(), err)
    }

    #[test]
    fn every_pcap_flavour_reads_the_same() {
        let want = pkts(7);
        for fmt in [
            Format::Pcap,
            Format::PcapNanos,
            Format::PcapBigEndian,
            Format::PcapNg,
        ] {
            let (got, ev, err) = read_all(synth::to_bytes(&want, fmt));
            assert!(err.is_none() && ev.is_empty(), "{fmt:?}");
            assert_eq!(got.len(), 7, "{fmt:?}");
            for (i, (n, ts, data)) in got.iter().enumerate() {
                assert_eq!(*n, i as u64 + 1);
                // Big-endian records read as little-endian would give absurd lengths.
                assert_eq!(
                    data, &want[i].data,
                    "{fmt:?}: EPB padding must not leak into data"
                );
                let exact = matches!(fmt, Format::PcapNanos | Format::PcapNg);
                let expect = if exact {
                    want[i].ts
                } else {
                    want[i].ts / 1000 * 1000
                };
                assert_eq!(*ts, expect, "{fmt:?}: nanosecond magic keeps ns in ts_usec");
            }
        }
    }

    #[test]
    fn truncated_tail_is_reported_not_dropped() {
        let mut b = synth::to_bytes(&pkts(4), Format::Pcap);
        b.truncate(b.len() - 10);
        let (got, ev, err) = read_all(b);
        assert!(err.is_none());
        assert_eq!(got.len(), 3);
        assert_eq!(
            ev,
            vec![ReadEvent::Truncated {
                frame: 4,
                missing: 10
            }]
        );
    }

    /// Two sections, the second big-endian: pcap-parser's `PcapNGCapture::iter()`
    /// panics on this; frame numbers continue across sections.
    #[test]
    fn pcapng_sections_switch_byte_order() {
        let mut b = synth::to_bytes(&pkts(2), Format::PcapNg);
        b.extend(be_section(&[0xAB; 13], 5, 0x86)); // if_tsresol 2^-6 s
        let (got, _, err) = read_all(b);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0, 3);
        assert_eq!(got[2].2, vec![0xAB; 13]);
        // 5 units of 1/64 s.
        assert_eq!(got[2].1, 5 * 1_000_000_000 / 64);
    }

    fn be_section(data: &[u8], ts: u64, tsresol: u8) -> Vec<u8> {
        let mut v = vec![];
        let be = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
        be(&mut v, 0x0A0D0D0A);
        be(&mut v, 28);
        be(&mut v, 0x1A2B3C4D);
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&(-1i64).to_be_bytes());
        be(&mut v, 28);
        // IDB with if_tsresol.
        be(&mut v, 1);
        be(&mut v, 32);
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        be(&mut v, 0);
        v.extend_from_slice(&9u16.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&[tsresol, 0, 0, 0]);
        be(&mut v, 0);
        be(&mut v, 32);
        // EPB.
        let pad = (4 - data.len() % 4) % 4;
        let len = 32 + data.len() + pad;
        be(&mut v, 6);
        be(&mut v, len as u32);
        be(&mut v, 0);
        be(&mut v, (ts >> 32) as u32);
        be(&mut v, ts as u32);
        be(&mut v, data.len() as u32);
        be(&mut v, data.len() as u32);
        v.extend_from_slice(data);
        v.extend(std::iter::repeat_n(0, pad));
        be(&mut v, len as u32);
        v
    }

    /// An option-less EPB read by hand is what pcap-parser reads: every
    /// field, the data; with each byte of its header and trailer changed
    /// (and one byte short), the hand reader either agrees with
    /// pcap-parser or leaves the block to it.
    #[test]
    fn plain_epbs_read_by_hand_as_pcap_parser_reads_them() {
        let epb = |data: &[u8], be: bool| {
            let w = |v: &mut Vec<u8>, x: u32| {
                v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
            };
            let pad = (4 - data.len() % 4) % 4;
            let len = (32 + data.len() + pad) as u32;
            let mut v = vec![];
            w(&mut v, 6); // block type
            w(&mut v, len); // block length
            w(&mut v, 1); // interface
            w(&mut v, 0x0006_1234); // timestamp high
            w(&mut v, 0x89AB_CDEF); // timestamp low
            w(&mut v, data.len() as u32); // captured length
            w(&mut v, 1500); // original length
            v.extend_from_slice(data);
            v.extend(std::iter::repeat_n(0, pad));
            w(&mut v, len); // block length again
            v
        };
        let theirs = |b: &[u8], be: bool| {
            let r = if be {
                pcap_parser::pcapng::parse_block_be(b)
            } else {
                pcap_parser::pcapng::parse_block_le(b)
            };
            match r {
                Ok((_, Block::EnhancedPacket(e))) => Some((
                    [e.if_id, e.ts_high, e.ts_low, e.caplen, e.origlen],
                    e.packet_data().to_vec(),
                )),
                _ => None,
            }
        };
        for be in [false, true] {
            for n in [0usize, 1, 13, 16, 61] {
                let data: Vec<u8> = (0..n as u8).collect();
                let b = epb(&data, be);
                let ours = plain_epb(&b, be).expect("a plain EPB");
                assert_eq!(ours[3] as usize, n);
                assert_eq!(
                    Some((ours, b[28..28 + n].to_vec())),
                    theirs(&b, be),
                    "n {n} be {be}"
                );
                // Every byte of the header and the trailer changed.
                for at in (0..28).chain(b.len() - 4..b.len()) {
                    let mut m = b.clone();
                    m[at] ^= 0x41;
                    if let Some(f) = plain_epb(&m, be) {
                        let caplen = f[3] as usize;
                        assert_eq!(
                            Some((f, m[28..28 + caplen].to_vec())),
                            theirs(&m, be),
                            "byte {at} changed, n {n} be {be}"
                        );
                    }
                }
                // One byte short: never read by hand.
                assert!(plain_epb(&b[..b.len() - 1], be).is_none());
            }
        }
        // With an option (a comment), pcap-parser reads it.
        let mut b = epb(&[7; 5], false);
        let len = b.len() as u32 + 12;
        b.truncate(b.len() - 4);
        b.extend_from_slice(&[1, 0, 3, 0, b'h', b'i', b'!', 0, 0, 0, 0, 0]);
        b.extend_from_slice(&len.to_le_bytes());
        b[4..8].copy_from_slice(&len.to_le_bytes());
        assert!(plain_epb(&b, false).is_none());
        assert_eq!(theirs(&b, false).map(|t| t.1), Some(vec![7; 5]));
    }

    #[test]
    fn absurd_lengths_are_corrupt_with_the_frame_number() {
        let mut b = synth::to_bytes(&pkts(2), Format::Pcap);
        // Second record's caplen (header at 24 + 16 + 61) set to 0x7fffffff.
        let at = 24 + 16 + 61 + 8;
        b[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let (got, _, err) = read_all(b);
        assert_eq!(got.len(), 1);
        match err {
            Some(CaptureError::Corrupt { frame: 2, .. }) => {}
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn not_a_capture_and_empty() {
        let src =
            |b: &[u8]| Source::from_reader(Box::new(std::io::Cursor::new(b.to_vec()))).unwrap();
        assert!(matches!(
            Reader::new(src(b"hello world")),
            Err(CaptureError::NotCapture(None))
        ));
        assert!(matches!(Reader::new(src(b"")), Err(CaptureError::Empty)));
        assert!(matches!(
            Reader::new(src(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0])),
            Err(CaptureError::Truncated)
        ));
    }

    #[test]
    fn gzip_and_zstd_streams() {
        use std::io::Write;
        let raw = synth::to_bytes(&pkts(5), Format::PcapNg);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let zs = zstd::encode_all(&raw[..], 1).unwrap();
        for b in [gz.finish().unwrap(), zs] {
            let (got, _, err) = read_all(b);
            assert!(err.is_none());
            assert_eq!(got.len(), 5);
        }
    }

    #[test]
    fn power_of_two_resolution() {
        assert_eq!(resolution(6), Some(1_000_000));
        assert_eq!(resolution(0x80 | 10), Some(1024));
        assert_eq!(resolution(20), None);
        assert_eq!(ts_ns(0, 1536, 1024, 0), 1_500_000_000);
    }
}

#[cfg(test)]
mod dsb_flood_test {
    use super::*;
    use crate::synth::{Format, Pkt};

    /// A Decryption Secrets Block (pcapng 4.7): TLS key log, `n` bytes.
    fn dsb(n: usize) -> Vec<u8> {
        let pad = (4 - n % 4) % 4;
        let total = 20 + n + pad;
        let mut b = Vec::new();
        b.extend(0x0000_000Au32.to_le_bytes());
        b.extend((total as u32).to_le_bytes());
        b.extend(0x544c_534bu32.to_le_bytes());
        b.extend((n as u32).to_le_bytes());
        b.extend(std::iter::repeat_n(b'x', n));
        b.extend(std::iter::repeat_n(0u8, pad));
        b.extend((total as u32).to_le_bytes());
        b
    }

    #[test]
    fn dropped_secrets_blocks_are_one_event() {
        let mut bytes = crate::synth::to_bytes(
            &[Pkt {
                ts: 1,
                data: vec![0; 60],
                orig_len: 60,
            }],
            Format::PcapNg,
        );
        // 3000 blocks of 10 bytes and 1000 empty ones: 1024 kept, the
        // rest said once, the empty ones not at all.
        for _ in 0..3000 {
            bytes.extend(dsb(10));
        }
        for _ in 0..1000 {
            bytes.extend(dsb(0));
        }
        let src = Source::from_reader(Box::new(std::io::Cursor::new(bytes))).unwrap();
        let mut r = Reader::new(src).unwrap();
        let mut batch = vec![];
        while r.next_batch(&mut batch, 64, 1 << 20).unwrap() {}
        let kept = r
            .events
            .iter()
            .filter(|e| matches!(e, ReadEvent::Secrets { .. }))
            .count();
        let dropped: Vec<&ReadEvent> = r
            .events
            .iter()
            .filter(|e| matches!(e, ReadEvent::SecretsDropped { .. }))
            .collect();
        assert_eq!(kept, MAX_SECRET_BLOCKS);
        assert_eq!(dropped.len(), 1);
        assert!(matches!(
            dropped[0],
            ReadEvent::SecretsDropped {
                bytes: 19760,
                blocks: 1976
            }
        ));
    }
}
