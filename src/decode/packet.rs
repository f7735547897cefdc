//! IP and transport decoding with etherparse's lax slicers: we keep what
//! parsed and never panic on what did not.

use etherparse::{IpNumber, LaxIpSlice, TcpOptionElement, TcpSlice};
use std::net::IpAddr;

/// The IP header facts the analysis uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 identification (IPv6: from the fragment header, else 0).
    pub id: u32,
    /// IPv4 "don't fragment"; always true for IPv6 (routers never fragment).
    pub df: bool,
    /// Length of the IP packet as the header declares it.
    pub len: u32,
    pub v6: bool,
}

/// TCP flag bits as on the wire (byte 13).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// MSS option, parsed on SYN segments only.
    pub mss: Option<u16>,
    /// The highest-ending SACK block (RFC 2018), parsed on pure ACKs only.
    pub sack: Option<(u32, u32)>,
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload length on the wire (larger than `payload.len()` when the
    /// capture's snap length cut the frame).
    pub wire_len: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
    pub wire_len: u32,
}

/// The packet an ICMP error quotes, as far as the quote goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// TCP sequence number, when the quote reaches it.
    pub seq: Option<u32>,
    /// Total length of the quoted packet as its header declares it.
    pub len: u32,
    pub df: bool,
}

/// ICMPv4 destination unreachable / time exceeded / parameter problem, or
/// the ICMPv6 equivalents (including Packet Too Big).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    pub v6: bool,
    pub typ: u8,
    pub code: u8,
    /// Next-hop MTU (ICMPv4 3/4) or MTU (ICMPv6 PTB).
    pub mtu: Option<u32>,
    pub quoted: Quoted,
}

impl IcmpError {
    /// "Fragmentation needed" (v4 3/4) or "packet too big" (v6 2).
    pub fn is_too_big(&self) -> bool {
        (!self.v6 && self.typ == 3 && self.code == 4) || (self.v6 && self.typ == 2)
    }
    /// Destination unreachable of any kind but "fragmentation needed".
    pub fn is_unreachable(&self) -> bool {
        (!self.v6 && self.typ == 3 && self.code != 4) || (self.v6 && self.typ == 1)
    }
    /// Words for the code, as Wireshark names them.
    pub fn describe(&self) -> String {
        let s = match (self.v6, self.typ, self.code) {
            (false, 3, 0) => "network unreachable",
            (false, 3, 1) => "host unreachable",
            (false, 3, 2) => "protocol unreachable",
            (false, 3, 3) => "port unreachable",
            (false, 3, 4) => "fragmentation needed",
            (false, 3, 9) | (false, 3, 10) | (false, 3, 13) => "administratively prohibited",
            (false, 3, _) => "destination unreachable",
            (false, 11, _) => "time exceeded",
            (false, 12, _) => "parameter problem",
            (true, 1, 0) => "no route to destination",
            (true, 1, 1) => "administratively prohibited",
            (true, 1, 3) => "address unreachable",
            (true, 1, 4) => "port unreachable",
            (true, 1, 5) | (true, 1, 6) => "rejected by policy",
            (true, 1, _) => "destination unreachable",
            (true, 2, _) => "packet too big",
            (true, 3, _) => "time exceeded",
            _ => "parameter problem",
        };
        format!("{s} (type {} code {})", self.typ, self.code)
    }
}

/// One IP fragment that still needs reassembly.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub id: u32,
    /// Offset in bytes.
    pub offset: u16,
    pub more: bool,
    pub proto: u8,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
pub enum L4<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    IcmpError(IcmpError),
    Fragment(Fragment<'a>),
    /// Anything else, including transport headers cut short.
    Other(u8),
}

#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub ip: Ip,
    pub l4: L4<'a>,
}

/// Decodes an IP packet. `None` when even the IP header is unusable.
pub fn decode(ip_bytes: &[u8]) -> Option<Packet<'_>> {
    let (ip, _) = LaxIpSlice::from_slice(ip_bytes).ok()?;
    let (info, frag) = ip_info(&ip);
    let pl = ip.payload();
    let proto = pl.ip_number.0;
    if pl.fragmented {
        let (id, offset, more) = frag.unwrap_or((info.id, 0, false));
        return Some(Packet {
            ip: info,
            l4: L4::Fragment(Fragment {
                id,
                offset,
                more,
                proto,
                payload: pl.payload,
            }),
        });
    }
    let declared = declared_payload_len(&ip).unwrap_or(pl.payload.len() as u32);
    let l4 = transport(proto, pl.payload, declared, info.v6);
    Some(Packet { ip: info, l4 })
}

/// Why the decoder gave up on a packet it decoded the IP header of: an
/// IPv6 extension header chain it could not walk to the end (a repeated
/// hop-by-hop header, a type etherparse does not follow, a chain past its
/// limit) leaves the packet's transport unknown.
pub fn given_up(p: &Packet<'_>) -> Option<&'static str> {
    match p.l4 {
        L4::Other(0 | 43 | 51 | 60 | 135 | 139 | 140) if p.ip.v6 => {
            Some("an IPv6 extension header chain the decoder could not follow to its end")
        }
        _ => None,
    }
}

/// Decodes the transport layer of an unfragmented (or reassembled) payload.
pub fn transport(proto: u8, payload: &[u8], declared: u32, v6: bool) -> L4<'_> {
    match IpNumber(proto) {
        IpNumber::TCP => match TcpSlice::from_slice(payload) {
            Ok(t) => {
                let hl = t.header_slice().len() as u32;
                let mut mss = None;
                let mut sack = None;
                if t.syn() {
                    for o in t.options_iterator().flatten() {
                        if let TcpOptionElement::MaximumSegmentSize(v) = o {
                            mss = Some(v);
                        }
                    }
                } else if hl >= 32 && t.payload().is_empty() {
                    for o in t.options_iterator().flatten() {
                        if let TcpOptionElement::SelectiveAcknowledgement(first, rest) = o {
                            sack = std::iter::once(Some(first))
                                .chain(rest)
                                .flatten()
                                .max_by_key(|b| b.1.wrapping_sub(t.acknowledgment_number()));
                        }
                    }
                }
                let hdr = t.header_slice();
                L4::Tcp(Tcp {
                    sport: t.source_port(),
                    dport: t.destination_port(),
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    flags: hdr[13],
                    window: t.window_size(),
                    mss,
                    sack,
                    payload: t.payload(),
                    wire_len: declared.saturating_sub(hl).max(t.payload().len() as u32),
                })
            }
            Err(_) => L4::Other(proto),
        },
        IpNumber::UDP => match etherparse::UdpSlice::from_slice_lax(payload) {
            Ok(u) => L4::Udp(Udp {
                sport: u.source_port(),
                dport: u.destination_port(),
                payload: u.payload(),
                wire_len: (u.length() as u32).saturating_sub(8),
            }),
            Err(_) => L4::Other(proto),
        },
        IpNumber::ICMP if !v6 => icmp(payload, false).map_or(L4::Other(proto), L4::IcmpError),
        IpNumber::IPV6_ICMP if v6 => icmp(payload, true).map_or(L4::Other(proto), L4::IcmpError),
        _ => L4::Other(proto),
    }
}

fn ip_info(ip: &LaxIpSlice<'_>) -> (Ip, Option<(u32, u16, bool)>) {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                Ip {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    ttl: h.ttl(),
                    id: h.identification() as u32,
                    df: h.dont_fragment(),
                    len: h.total_len() as u32,
                    v6: false,
                },
                Some((
                    h.identification() as u32,
                    h.fragments_offset().byte_offset(),
                    h.more_fragments(),
                )),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            // Not etherparse's extension iterator: on a lax slice cut short
            // it reads out of bounds (etherparse 0.21, found by fuzz/packet).
            let frag = v6_fragment(h.next_header().0, v6.extensions().slice());
            (
                Ip {
                    src: IpAddr::V6(h.source_addr()),
                    dst: IpAddr::V6(h.destination_addr()),
                    ttl: h.hop_limit(),
                    id: frag.map_or(0, |f| f.0),
                    df: true,
                    len: h.payload_length() as u32 + 40,
                    v6: true,
                },
                frag,
            )
        }
    }
}

/// The IPv6 Fragment header (RFC 8200 4.5) among the extension headers in
/// `b`, walked with bounds checks: (identification, byte offset, more).
fn v6_fragment(first: u8, mut b: &[u8]) -> Option<(u32, u16, bool)> {
    let mut next = first;
    for _ in 0..16 {
        let len = match next {
            44 => {
                let f = b.get(..8)?;
                let off = u16::from_be_bytes([f[2], f[3]]);
                let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                return Some((id, off & 0xFFF8, off & 1 != 0));
            }
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => (*b.get(1)? as usize + 1) * 8,
            // Authentication header (RFC 4302): length in 4-byte units − 2.
            51 => (*b.get(1)? as usize + 2) * 4,
            _ => return None,
        };
        next = *b.first()?;
        b = b.get(len..)?;
    }
    None
}

/// Payload length the IP header declares (ignores what the capture cut).
fn declared_payload_len(ip: &LaxIpSlice<'_>) -> Option<u32> {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (h.total_len() as u32).checked_sub(h.ihl() as u32 * 4)
        }
        LaxIpSlice::Ipv6(v6) => {
            (v6.header().payload_length() as u32).checked_sub(v6.extensions().slice().len() as u32)
        }
    }
}

/// ICMP error messages with their quoted packet (RFC 792, RFC 4443 §3).
/// Informational messages (echo and the like) are not errors: `None`.
fn icmp(b: &[u8], v6: bool) -> Option<IcmpError> {
    if b.len() < 8 {
        return None;
    }
    let (typ, code) = (b[0], b[1]);
    let is_error = if v6 {
        (1..=4).contains(&typ)
    } else {
        matches!(typ, 3 | 11 | 12)
    };
    if !is_error {
        return None;
    }
    let mtu = match (v6, typ, code) {
        (false, 3, 4) => Some(u16::from_be_bytes([b[6], b[7]]) as u32),
        (true, 2, _) => Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
        _ => None,
    };
    let quoted = quoted(&b[8..])?;
    Some(IcmpError {
        v6,
        typ,
        code,
        mtu,
        quoted,
    })
}

fn quoted(b: &[u8]) -> Option<Quoted> {
    let (ip, _) = LaxIpSlice::from_slice(b).ok()?;
    let (info, _) = ip_info(&ip);
    let pl = ip.payload();
    let t = pl.payload;
    let first = !pl.fragmented || matches!(ip_info(&ip).1, Some((_, 0, _)));
    let (sport, dport) = if first && t.len() >= 4 {
        (
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        )
    } else {
        (0, 0)
    };
    let seq = (first && pl.ip_number == IpNumber::TCP && t.len() >= 8)
        .then(|| u32::from_be_bytes([t[4], t[5], t[6], t[7]]));
    Some(Quoted {
        src: info.src,
        dst: info.dst,
        proto: pl.ip_number.0,
        sport,
        dport,
        seq,
        len: info.len,
        df: info.df,
    })
}

/// The unordered address pair that decides which worker sees a packet:
/// ICMP errors go with the packet they quote, so that they meet its flow.
pub fn shard_pair(ip_bytes: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let v = ip_bytes.first()? >> 4;
    let (src, dst, proto, l4) = match v {
        4 => {
            let ihl = (ip_bytes[0] & 0x0f) as usize * 4;
            let b = ip_bytes.get(..20)?;
            let src = IpAddr::from(<[u8; 4]>::try_from(&b[12..16]).ok()?);
            let dst = IpAddr::from(<[u8; 4]>::try_from(&b[16..20]).ok()?);
            let frag_off = u16::from_be_bytes([b[6], b[7]]) & 0x1fff;
            let l4 = if frag_off == 0 {
                ip_bytes.get(ihl..)
            } else {
                None
            };
            (src, dst, b[9], l4)
        }
        6 => {
            let b = ip_bytes.get(..40)?;
            let src = IpAddr::from(<[u8; 16]>::try_from(&b[8..24]).ok()?);
            let dst = IpAddr::from(<[u8; 16]>::try_from(&b[24..40]).ok()?);
            (src, dst, b[6], ip_bytes.get(40..))
        }
        _ => return None,
    };
    let icmp_err = match (v, proto, l4) {
        (4, 1, Some(l)) => matches!(l.first(), Some(3 | 11 | 12)),
        (6, 58, Some(l)) => matches!(l.first(), Some(1..=4)),
        _ => false,
    };
    if icmp_err {
        if let Some(inner) = l4.and_then(|l| l.get(8..)).and_then(shard_pair_plain) {
            return Some(inner);
        }
    }
    Some((src, dst))
}

fn shard_pair_plain(ip: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match ip.first()? >> 4 {
        4 => {
            let b = ip.get(..20)?;
            Some((
                IpAddr::from(<[u8; 4]>::try_from(&b[12..16]).ok()?),
                IpAddr::from(<[u8; 4]>::try_from(&b[16..20]).ok()?),
            ))
        }
        6 => {
            let b = ip.get(..40)?;
            Some((
                IpAddr::from(<[u8; 16]>::try_from(&b[8..24]).ok()?),
                IpAddr::from(<[u8; 16]>::try_from(&b[24..40]).ok()?),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::v6_fragment;

    #[test]
    fn v6_fragment_walk_is_bounded() {
        // Hop-by-hop (8 bytes, next = fragment), then a fragment header:
        // offset 1448, more fragments, id 0x01020304.
        let mut b = vec![44, 0, 0, 0, 0, 0, 0, 0];
        b.extend([17, 0, 0x05, 0xA9, 1, 2, 3, 4]);
        assert_eq!(v6_fragment(0, &b), Some((0x01020304, 1448, true)));
        // A header claiming more bytes than there are: no answer, no panic.
        assert_eq!(v6_fragment(0, &[44, 200, 0, 0]), None);
        assert_eq!(v6_fragment(44, &[17, 0, 0]), None);
        assert_eq!(v6_fragment(6, &b), None);
    }
}
