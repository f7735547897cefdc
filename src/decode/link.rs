//! Link layers: from a frame to the IP packet it carries.
//!
//! Written by hand rather than with etherparse's `LaxSlicedPacket` because
//! etherparse 0.21 knows neither SLL2 nor BSD NULL/LOOP, and because the
//! sharding pass calls this for every frame on every worker: it must only
//! find the IP header, not slice the whole packet.

/// LINKTYPE_* values we decode.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSD: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

pub fn supported(link: u32) -> bool {
    use linktype::*;
    matches!(
        link,
        NULL | ETHERNET | RAW_OPENBSD | RAW_BSD | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2
    )
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// At most this many stacked VLAN tags (QinQ and a little more).
const MAX_VLAN_TAGS: usize = 4;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The IP packet inside a frame, or `None` when the frame carries no IP
/// (ARP, other protocols) or is too short to tell. It is always the frame
/// from an offset to its end (run::file keeps the offset, not the slice).
pub fn ip_bytes(link: u32, data: &[u8]) -> Option<&[u8]> {
    use linktype::*;
    let (ethertype, rest) = match link {
        ETHERNET => {
            let mut t = be16(data, 12)?;
            let mut at = 14;
            let mut tags = 0;
            while ETH_VLAN.contains(&t) && tags < MAX_VLAN_TAGS {
                t = be16(data, at + 2)?;
                at += 4;
                tags += 1;
            }
            (t, data.get(at..)?)
        }
        LINUX_SLL => (be16(data, 14)?, data.get(16..)?),
        LINUX_SLL2 => (be16(data, 0)?, data.get(20..)?),
        NULL | LOOP => {
            let f = data.get(0..4)?;
            // NULL: host byte order of the capturing machine; LOOP: network order.
            let family = if link == LOOP || (f[0] == 0 && f[1] == 0) {
                u32::from_be_bytes([f[0], f[1], f[2], f[3]])
            } else {
                u32::from_le_bytes([f[0], f[1], f[2], f[3]])
            };
            let t = match family {
                2 => ETH_IPV4,
                10 | 23 | 24 | 28 | 30 => ETH_IPV6,
                _ => return None,
            };
            (t, data.get(4..)?)
        }
        RAW | RAW_OPENBSD | RAW_BSD | IPV4 | IPV6 => {
            let v = data.first()? >> 4;
            (if v == 6 { ETH_IPV6 } else { ETH_IPV4 }, data)
        }
        _ => return None,
    };
    let version = rest.first()? >> 4;
    match (ethertype, version) {
        (ETH_IPV4, 4) | (ETH_IPV6, 6) => Some(rest),
        _ => None,
    }
}

/// Why a frame of a decoded link type gave no IP when the decoder gave up
/// on it (rather than it carrying no IP: ARP and the like): `None` for
/// those. Called only for frames [`ip_bytes`] returned nothing for.
pub fn give_up(link: u32, data: &[u8]) -> Option<&'static str> {
    if link != linktype::ETHERNET {
        return None;
    }
    let mut t = be16(data, 12)?;
    let mut at = 14;
    let mut tags = 0;
    while ETH_VLAN.contains(&t) {
        if tags == MAX_VLAN_TAGS {
            return Some("more than 4 stacked VLAN tags");
        }
        t = be16(data, at + 2)?;
        at += 4;
        tags += 1;
    }
    None
}

#[cfg(test)]
mod test {
    use super::*;

    const IP4: [u8; 4] = [0x45, 0, 0, 20];

    #[test]
    fn ethernet_with_qinq() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xA8, 0x00, 0x0A, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
        f.extend_from_slice(&IP4);
        assert_eq!(ip_bytes(linktype::ETHERNET, &f), Some(&IP4[..]));
        // Cut inside the second tag: no IP.
        assert_eq!(ip_bytes(linktype::ETHERNET, &f[..17]), None);
        assert_eq!(give_up(linktype::ETHERNET, &f), None);
        // Five tags: the decoder gives up, and says so.
        let mut five = vec![0u8; 12];
        for _ in 0..5 {
            five.extend_from_slice(&[0x81, 0x00, 0x00, 0x0A]);
        }
        five.extend_from_slice(&[0x08, 0x00]);
        five.extend_from_slice(&IP4);
        assert_eq!(ip_bytes(linktype::ETHERNET, &five), None);
        assert_eq!(
            give_up(linktype::ETHERNET, &five),
            Some("more than 4 stacked VLAN tags")
        );
        // Four: decoded.
        let four = [&five[..12], &five[16..]].concat();
        assert_eq!(ip_bytes(linktype::ETHERNET, &four), Some(&IP4[..]));
        // ARP is no IP, and nothing was given up.
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(give_up(linktype::ETHERNET, &arp), None);
    }

    #[test]
    fn null_both_byte_orders_and_loop() {
        let le = [2, 0, 0, 0, 0x45, 0];
        let be = [0, 0, 0, 2, 0x45, 0];
        assert!(ip_bytes(linktype::NULL, &le).is_some());
        assert!(ip_bytes(linktype::NULL, &be).is_some());
        assert!(ip_bytes(linktype::LOOP, &be).is_some());
        // BSD AF_INET6 = 30 (macOS) with an IPv6 header.
        assert!(ip_bytes(linktype::NULL, &[30, 0, 0, 0, 0x60, 0]).is_some());
        // Family says IPv4, header says IPv6: refused.
        assert_eq!(ip_bytes(linktype::NULL, &[2, 0, 0, 0, 0x60, 0]), None);
    }

    #[test]
    fn sll_and_sll2() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x86, 0xDD, 0x60, 0]);
        assert_eq!(ip_bytes(linktype::LINUX_SLL, &sll), Some(&[0x60u8, 0][..]));
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&IP4);
        assert_eq!(ip_bytes(linktype::LINUX_SLL2, &sll2), Some(&IP4[..]));
    }

    #[test]
    fn unsupported_and_empty() {
        assert_eq!(ip_bytes(147, &IP4), None);
        assert_eq!(ip_bytes(linktype::RAW, &[]), None);
        assert!(!supported(147));
    }
}
