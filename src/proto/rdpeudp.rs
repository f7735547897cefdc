//! RDP over UDP (MS-RDPEUDP 2.2.2; RDPEUDP2 recognised by its handshake
//! only, PROTOCOLS.md §3) and the RD Gateway's DTLS on UDP 3391. Fields are
//! big-endian. Only the handshake is parsed: the v1 FEC header and the SYN
//! payloads; later datagrams are counted per direction.

use crate::capture::Mark;
use crate::finding::Dir;

pub const SYN: u16 = 0x0001;
pub const FIN: u16 = 0x0002;
pub const ACK: u16 = 0x0004;
pub const DATA: u16 = 0x0008;
pub const SYNLOSSY: u16 = 0x0200;
pub const CORRELATION_ID: u16 = 0x0800;
pub const SYNEX: u16 = 0x1000;

/// Byte layouts (big-endian), from the start of the UDP payload.
pub mod field {
    use std::ops::Range;
    /// RDPUDP_FEC_HEADER (2.2.2.1).
    pub const SN_SOURCE_ACK: Range<usize> = 0..4;
    pub const RECEIVE_WINDOW: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const HEADER_LEN: usize = 8;
    /// RDPUDP_SYNDATA_PAYLOAD (2.2.2.5) right after the header.
    pub const SN_INITIAL: Range<usize> = 8..12;
    pub const UP_MTU: Range<usize> = 12..14;
    pub const DOWN_MTU: Range<usize> = 14..16;
    pub const SYNDATA_END: usize = 16;
    /// RDPUDP_CORRELATION_ID_PAYLOAD (2.2.2.8): the id, then 16 reserved.
    pub const CORRELATION_ID_LEN: usize = 16;
    pub const CORRELATION_LEN: usize = 32;
    /// RDPUDP_SYNDATAEX_PAYLOAD (2.2.2.9): uSynExFlags, uUdpVer.
    pub const SYNEX_LEN: usize = 4;
}

use super::error::{bad, Error, Layer};

fn be16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn be32(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

/// RDPUDP_FEC_HEADER (2.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub sn_source_ack: u32,
    pub receive_window: u16,
    pub flags: u16,
}

/// The FEC header; need-more under 8 bytes.
pub fn header(b: &[u8]) -> Result<Header, Error> {
    if b.len() < field::HEADER_LEN {
        return Err(Error::need_more(Layer::Rdpeudp, field::HEADER_LEN));
    }
    Ok(Header {
        sn_source_ack: be32(b, field::SN_SOURCE_ACK),
        receive_window: be16(b, field::RECEIVE_WINDOW),
        flags: be16(b, field::FLAGS),
    })
}

/// A SYN or SYN+ACK with its payloads (2.2.2.5, 2.2.2.8, 2.2.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    pub flags: u16,
    pub isn: u32,
    pub up_mtu: u16,
    pub down_mtu: u16,
    pub correlation_id: Option<[u8; 16]>,
    /// uUdpVer of RDPUDP_SYNDATAEX_PAYLOAD: 1, 2, or 0x101 (RDPEUDP2).
    pub version: Option<u16>,
    /// UDP payload length (1232 when padded as the spec asks).
    pub len: usize,
}

/// Parses a datagram with the SYN flag. The correlation id only comes in
/// the client's SYN; SYNEX follows it when present. Need-more when a
/// payload the flags announce is cut short; malformed without SYN.
pub fn syn(b: &[u8]) -> Result<Syn, Error> {
    let h = header(b)?;
    if h.flags & SYN == 0 {
        return bad(
            Layer::Rdpeudp,
            field::FLAGS.start,
            format!("RDPEUDP flags 0x{:04x} without SYN", h.flags),
        );
    }
    if b.len() < field::SYNDATA_END {
        return Err(Error::need_more(Layer::Rdpeudp, field::SYNDATA_END));
    }
    let mut s = Syn {
        flags: h.flags,
        isn: be32(b, field::SN_INITIAL),
        up_mtu: be16(b, field::UP_MTU),
        down_mtu: be16(b, field::DOWN_MTU),
        correlation_id: None,
        version: None,
        len: b.len(),
    };
    let mut at = field::SYNDATA_END;
    if h.flags & CORRELATION_ID != 0 {
        let Some(id) = b.get(at..at + field::CORRELATION_ID_LEN) else {
            return Err(Error::need_more(
                Layer::Rdpeudp,
                at + field::CORRELATION_ID_LEN,
            ));
        };
        let mut v = [0u8; 16];
        v.copy_from_slice(id);
        s.correlation_id = Some(v);
        at += field::CORRELATION_LEN;
    }
    if h.flags & SYNEX != 0 {
        let Some(ex) = b.get(at..at + field::SYNEX_LEN) else {
            return Err(Error::need_more(Layer::Rdpeudp, at + field::SYNEX_LEN));
        };
        if be16(ex, 0..2) & 1 != 0 {
            s.version = Some(be16(ex, 2..4));
        }
    }
    Ok(s)
}

/// A client SYN as Zeek's signature sees it: snSourceAck = −1, flags with
/// SYN and not ACK, and a payload of 1132–1232 bytes (padded SYNs).
pub fn is_client_syn(b: &[u8]) -> bool {
    header(b).is_ok_and(|h| {
        h.sn_source_ack == u32::MAX
            && h.flags & (SYN | ACK) == SYN
            && (1132..=1232).contains(&b.len())
    })
}

/// A DTLS record (RFC 6347 4.1): content type 20–23, version FEFF/FEFD.
pub fn is_dtls(b: &[u8]) -> bool {
    b.len() >= 13 && (20..=23).contains(&b[0]) && b[1] == 0xFE && matches!(b[2], 0xFF | 0xFD)
}

/// What one UDP flow on an RDP port showed.
#[derive(Debug, Clone, Default)]
pub struct Udp {
    /// Client SYNs: count, the first one parsed, when each came (first 8).
    pub syns: u32,
    pub syn: Option<(Syn, Mark)>,
    pub syn_times: Vec<Mark>,
    pub syn_ack: Option<(Syn, Mark)>,
    /// Datagrams per direction after the SYN+ACK.
    pub after: [u64; 2],
    /// Client DTLS records (gateway UDP): first one and how many.
    pub dtls: Option<Mark>,
    pub dtls_count: u32,
    /// Datagrams from each side.
    pub datagrams: [u64; 2],
    pub first_server: Option<Mark>,
}

impl Udp {
    pub fn datagram(&mut self, dir: Dir, b: &[u8], at: Mark) {
        self.datagrams[dir] += 1;
        if dir == Dir::Server && self.first_server.is_none() {
            self.first_server = Some(at);
        }
        if dir == Dir::Client && is_dtls(b) && self.syns == 0 {
            self.dtls.get_or_insert(at);
            self.dtls_count += 1;
            return;
        }
        if self.syn_ack.is_some() {
            self.after[dir] += 1;
            return;
        }
        let Ok(h) = header(b) else {
            return;
        };
        if dir == Dir::Client && h.sn_source_ack == u32::MAX && h.flags & (SYN | ACK) == SYN {
            self.syns += 1;
            if self.syn_times.len() < 8 {
                self.syn_times.push(at);
            }
            if self.syn.is_none() {
                self.syn = syn(b).ok().map(|s| (s, at));
            }
        } else if dir == Dir::Server && h.flags & (SYN | ACK) == SYN | ACK {
            self.syn_ack = syn(b).ok().map(|s| (s, at));
        }
    }

    /// The version both sides agreed on: 2 for RDPEUDP2 (0x101 on both
    /// sides), else 1.
    pub fn version(&self) -> Option<u8> {
        let (sa, _) = self.syn_ack?;
        let c = self.syn.and_then(|(s, _)| s.version);
        Some(if c == Some(0x101) && sa.version == Some(0x101) {
            2
        } else {
            1
        })
    }

    /// Handshake done and datagrams both ways after it.
    pub fn established(&self) -> bool {
        self.syn_ack.is_some() && self.after[0] > 0 && self.after[1] > 0
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// A client SYN as zeek's rdpeudp-handshake-fail trace has it:
    /// CORRELATION_ID|SYNEX|SYN, MTUs 1232, version 2, padded to 1232.
    fn client_syn() -> Vec<u8> {
        let mut b = vec![0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x18, 0x01];
        b.extend(0x1234_5678u32.to_be_bytes());
        b.extend(1232u16.to_be_bytes());
        b.extend(1232u16.to_be_bytes());
        b.extend((1..=16).collect::<Vec<u8>>());
        b.extend([0u8; 16]);
        b.extend([0x00, 0x01, 0x00, 0x02]);
        b.resize(1232, 0);
        b
    }

    #[test]
    fn syn_fields() {
        let b = client_syn();
        assert!(is_client_syn(&b));
        let s = syn(&b).unwrap();
        assert_eq!((s.isn, s.up_mtu, s.down_mtu), (0x1234_5678, 1232, 1232));
        assert_eq!(s.correlation_id.unwrap()[0], 1);
        assert_eq!(s.version, Some(2));
        assert_eq!(s.len, 1232);
        assert!(!is_client_syn(&b[..100]));
    }

    #[test]
    fn handshake_then_data_and_version() {
        let m = |f| Mark { frame: f, ts: 0 };
        let mut u = Udp::default();
        let mut c = client_syn();
        c[16 + 32 + 3] = 0x01;
        c[16 + 32 + 2] = 0x01; // 0x101
        u.datagram(Dir::Client, &c, m(1));
        u.datagram(Dir::Client, &c, m(2));
        let mut sa = c.clone();
        sa[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        sa[6..8].copy_from_slice(&(SYN | ACK | SYNEX).to_be_bytes());
        // No correlation id in the SYN+ACK: SYNEX right after the MTUs.
        sa[16..20].copy_from_slice(&[0x00, 0x01, 0x01, 0x01]);
        u.datagram(Dir::Server, &sa, m(3));
        assert_eq!(u.syns, 2);
        assert_eq!(u.version(), Some(2));
        assert!(!u.established());
        u.datagram(Dir::Client, &[0; 40], m(4));
        u.datagram(Dir::Server, &[0; 40], m(5));
        assert!(u.established());
    }

    #[test]
    fn dtls_and_garbage() {
        let mut u = Udp::default();
        let mut d = vec![0x16, 0xfe, 0xfd];
        d.resize(60, 0);
        u.datagram(Dir::Client, &d, Mark::default());
        assert_eq!(u.dtls_count, 1);
        u.datagram(Dir::Client, &[1, 2, 3], Mark::default());
        assert!(syn(&[0xff; 10]).unwrap_err().is_need_more());
    }
    #[test]
    fn one_byte_short_and_one_byte_changed() {
        let b = client_syn();
        // Cut inside the SYNDATA payload, then inside the correlation id.
        assert!(syn(&b[..15]).unwrap_err().is_need_more());
        let flags = be16(&b, field::FLAGS);
        if flags & CORRELATION_ID != 0 {
            let e = syn(&b[..field::SYNDATA_END + 15]).unwrap_err();
            assert!(e.is_need_more(), "{e}");
        }
        assert!(header(&b[..7]).unwrap_err().is_need_more());
        // The SYN flag cleared: malformed at the flags.
        let mut c = b.clone();
        c[7] &= !(SYN as u8);
        let e = syn(&c).unwrap_err();
        assert_eq!(
            (e.layer, e.offset, e.is_need_more()),
            (Layer::Rdpeudp, 6, false)
        );
        // Another upstream MTU byte is read as such.
        let mut c = b.clone();
        c[12] ^= 0x01;
        assert_eq!(syn(&c).unwrap().up_mtu, syn(&b).unwrap().up_mtu ^ 0x0100);
    }
}
