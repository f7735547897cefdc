//! MCS Connect Initial / Connect Response with their GCC user data blocks
//! (MS-RDPBCGR 2.2.1.3 and 2.2.1.4), visible in plaintext only under
//! Standard RDP Security. The BER/PER wrapping (T.125, T.124) is not walked
//! field by field: the blocks follow the H.221 keys "Duca" (client) and
//! "McDn" (server) and a PER length, as Zeek and Wireshark locate them too.

use super::x224::Protocols;

/// Client data from the Connect Initial (2.2.1.3.2 – 2.2.1.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientData {
    /// TS_UD_CS_CORE version (0x00080004 = RDP 5.0 and later).
    pub version: u32,
    pub width: u16,
    pub height: u16,
    pub keyboard_layout: u32,
    pub build: u32,
    pub name: String,
    /// earlyCapabilityFlags, when present.
    pub early_flags: Option<u16>,
    /// clientDigProductId, when present and not empty.
    pub dig_product_id: Option<String>,
    /// serverSelectedProtocol echoed by the client, when present.
    pub selected: Option<Protocols>,
    /// TS_UD_CS_SEC encryptionMethods.
    pub encryption_methods: Option<u32>,
    /// Static virtual channels requested (TS_UD_CS_NET).
    pub channels: Vec<String>,
}

/// Server data from the Connect Response (2.2.1.4.2 – 2.2.1.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerData {
    pub version: u32,
    pub requested: Option<Protocols>,
    pub encryption_method: Option<u32>,
    pub encryption_level: Option<u32>,
    /// The server certificate of Standard RDP Security (2.2.1.4.3.1).
    pub cert: Option<ServerCert>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCert {
    /// Proprietary certificate (2.2.1.4.3.1.1).
    Proprietary,
    /// X.509 chain, DER blobs in wire order (the last is the server's).
    X509 {
        chain: Vec<Vec<u8>>,
        temporary: bool,
    },
}

/// Byte layouts of the user data blocks, from the start of a block (its
/// 4-byte header included). Fields past a block's end are absent (lax: a
/// short block keeps the fields it has).
pub mod field {
    use std::ops::Range;
    /// TS_UD_HEADER (2.2.1.3.1): type, length (both little-endian).
    pub const BLOCK_TYPE: usize = 0;
    pub const BLOCK_LENGTH: usize = 2;
    pub const BLOCK_HEADER: usize = 4;
    /// TS_UD_CS_CORE (2.2.1.3.2).
    pub const CS_VERSION: usize = 4;
    pub const CS_WIDTH: usize = 8;
    pub const CS_HEIGHT: usize = 10;
    pub const CS_KEYBOARD_LAYOUT: usize = 16;
    pub const CS_BUILD: usize = 20;
    pub const CS_NAME: Range<usize> = 24..56;
    pub const CS_EARLY_FLAGS: usize = 144;
    pub const CS_DIG_PRODUCT_ID: Range<usize> = 146..210;
    pub const CS_SELECTED_PROTOCOL: usize = 212;
    /// TS_UD_CS_SEC (2.2.1.3.3).
    pub const CS_ENCRYPTION_METHODS: usize = 4;
    /// TS_UD_CS_NET (2.2.1.3.4): channelCount, then 12-byte CHANNEL_DEFs
    /// (an 8-byte name, options).
    pub const CS_CHANNEL_COUNT: usize = 4;
    pub const CS_CHANNELS: usize = 8;
    pub const CHANNEL_DEF_LEN: usize = 12;
    pub const CHANNEL_NAME_LEN: usize = 8;
    /// TS_UD_SC_CORE (2.2.1.4.2).
    pub const SC_VERSION: usize = 4;
    pub const SC_REQUESTED_PROTOCOLS: usize = 8;
    /// TS_UD_SC_SEC1 (2.2.1.4.3).
    pub const SC_ENCRYPTION_METHOD: usize = 4;
    pub const SC_ENCRYPTION_LEVEL: usize = 8;
    pub const SC_RANDOM_LEN: usize = 12;
    pub const SC_CERT_LEN: usize = 16;
    pub const SC_RANDOM: usize = 20;
}

/// Block types (2.2.1.3.1).
pub const CS_CORE: u16 = 0xC001;
pub const CS_SECURITY: u16 = 0xC002;
pub const CS_NET: u16 = 0xC003;
pub const SC_CORE: u16 = 0x0C01;
pub const SC_SECURITY: u16 = 0x0C02;

/// `RNS_UD_CS_SUPPORT_ERRINFO_PDU` in earlyCapabilityFlags (2.2.1.3.2).
pub const SUPPORT_ERRINFO_PDU: u16 = 0x0001;

/// Finds `key` followed by a PER length; returns the bytes after it.
fn after_key<'a>(b: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = b.windows(key.len()).position(|w| w == key)? + key.len();
    let r = b.get(at..)?;
    let (n, skip) = match *r.first()? {
        l if l & 0x80 != 0 => ((((l & 0x7F) as usize) << 8) | *r.get(1)? as usize, 2),
        l => (l as usize, 1),
    };
    let body = r.get(skip..)?;
    Some(&body[..n.min(body.len())])
}

/// User data blocks: (type, block including its 4-byte header).
fn blocks(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let typ = u16le(b, field::BLOCK_TYPE)?;
        let len = u16le(b, field::BLOCK_LENGTH)? as usize;
        if len < field::BLOCK_HEADER || len > b.len() {
            return None;
        }
        let (blk, rest) = b.split_at(len);
        b = rest;
        Some((typ, blk))
    })
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn utf16z(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Client data from an MCS Connect Initial's user data (the TPKT payload
/// after the X.224 Data header). `None` when "Duca" is not there.
pub fn client_data(b: &[u8]) -> Option<ClientData> {
    let ud = after_key(b, b"Duca")?;
    let mut c = ClientData::default();
    for (typ, blk) in blocks(ud) {
        match typ {
            CS_CORE => {
                c.version = u32le(blk, field::CS_VERSION).unwrap_or(0);
                c.width = u16le(blk, field::CS_WIDTH).unwrap_or(0);
                c.height = u16le(blk, field::CS_HEIGHT).unwrap_or(0);
                c.keyboard_layout = u32le(blk, field::CS_KEYBOARD_LAYOUT).unwrap_or(0);
                c.build = u32le(blk, field::CS_BUILD).unwrap_or(0);
                c.name = blk.get(field::CS_NAME).map(utf16z).unwrap_or_default();
                c.early_flags = u16le(blk, field::CS_EARLY_FLAGS);
                c.dig_product_id = blk
                    .get(field::CS_DIG_PRODUCT_ID)
                    .map(utf16z)
                    .filter(|s| !s.is_empty());
                c.selected = u32le(blk, field::CS_SELECTED_PROTOCOL).map(Protocols);
            }
            CS_SECURITY => c.encryption_methods = u32le(blk, field::CS_ENCRYPTION_METHODS),
            CS_NET => {
                let n = u32le(blk, field::CS_CHANNEL_COUNT).unwrap_or(0) as usize;
                c.channels = blk
                    .get(field::CS_CHANNELS..)
                    .unwrap_or_default()
                    .chunks_exact(field::CHANNEL_DEF_LEN)
                    .take(n.min(31))
                    .map(|d| {
                        let name = &d[..field::CHANNEL_NAME_LEN];
                        let end = name.iter().position(|&x| x == 0).unwrap_or(name.len());
                        String::from_utf8_lossy(&name[..end]).into_owned()
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Some(c)
}

/// Server data from an MCS Connect Response. `None` without "McDn".
pub fn server_data(b: &[u8]) -> Option<ServerData> {
    let ud = after_key(b, b"McDn")?;
    let mut s = ServerData::default();
    for (typ, blk) in blocks(ud) {
        match typ {
            SC_CORE => {
                s.version = u32le(blk, field::SC_VERSION).unwrap_or(0);
                s.requested = u32le(blk, field::SC_REQUESTED_PROTOCOLS).map(Protocols);
            }
            SC_SECURITY => {
                s.encryption_method = u32le(blk, field::SC_ENCRYPTION_METHOD);
                s.encryption_level = u32le(blk, field::SC_ENCRYPTION_LEVEL);
                s.cert = server_cert(blk);
            }
            _ => {}
        }
    }
    Some(s)
}

/// serverRandom and serverCertificate of TS_UD_SC_SEC1 (2.2.1.4.3).
fn server_cert(blk: &[u8]) -> Option<ServerCert> {
    let rand_len = u32le(blk, field::SC_RANDOM_LEN)? as usize;
    let cert_len = u32le(blk, field::SC_CERT_LEN)? as usize;
    let cert = blk.get(field::SC_RANDOM.checked_add(rand_len)?..)?;
    let cert = cert.get(..cert_len.min(cert.len()))?;
    let ver = u32le(cert, 0)?;
    match ver & 0x7FFF_FFFF {
        1 => Some(ServerCert::Proprietary),
        2 => {
            let n = u32le(cert, 4)? as usize;
            let mut at = 8;
            let mut chain = Vec::new();
            for _ in 0..n.min(16) {
                let len = u32le(cert, at)? as usize;
                let der = cert.get(at + 4..at + 4 + len)?;
                chain.push(der.to_vec());
                at += 4 + len;
            }
            Some(ServerCert::X509 {
                chain,
                temporary: ver & 0x8000_0000 != 0,
            })
        }
        _ => None,
    }
}

/// Encryption method name (2.2.1.4.3 encryptionMethod).
pub fn method_name(m: u32) -> &'static str {
    match m {
        0 => "none",
        0x1 => "40bit",
        0x2 => "128bit",
        0x8 => "56bit",
        0x10 => "FIPS",
        _ => "unknown",
    }
}

/// Encryption level name (2.2.1.4.3 encryptionLevel).
pub fn level_name(l: u32) -> &'static str {
    match l {
        0 => "none",
        1 => "low",
        2 => "client compatible",
        3 => "high",
        4 => "FIPS",
        _ => "unknown",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn block(typ: u16, body: &[u8]) -> Vec<u8> {
        let mut v = typ.to_le_bytes().to_vec();
        v.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn client_blocks() {
        let mut core = vec![0u8; 212];
        core[0..4].copy_from_slice(&0x0008_0004u32.to_le_bytes());
        core[4..6].copy_from_slice(&1920u16.to_le_bytes());
        core[6..8].copy_from_slice(&1080u16.to_le_bytes());
        core[12..16].copy_from_slice(&0x409u32.to_le_bytes());
        core[16..20].copy_from_slice(&9600u32.to_le_bytes());
        for (i, ch) in "JOHN-PC".encode_utf16().enumerate() {
            core[20 + 2 * i..22 + 2 * i].copy_from_slice(&ch.to_le_bytes());
        }
        core[140..142].copy_from_slice(&1u16.to_le_bytes());
        let mut net = 2u32.to_le_bytes().to_vec();
        net.extend_from_slice(b"rdpdr\0\0\0\0\0\0\0cliprdr\0\0\0\0\0");
        let mut ud = block(0xC001, &core);
        ud.extend(block(0xC002, &3u32.to_le_bytes()));
        ud.extend(block(0xC003, &net));
        let mut pdu = b"\x7f\x65junkDuca".to_vec();
        pdu.push(0x81);
        pdu.push(ud.len() as u8);
        // A one-byte PER length when below 128; use the long form here.
        pdu.pop();
        pdu.pop();
        pdu.push(0x80 | (ud.len() >> 8) as u8);
        pdu.push(ud.len() as u8);
        pdu.extend(&ud);
        let c = client_data(&pdu).unwrap();
        assert_eq!((c.width, c.height, c.build), (1920, 1080, 9600));
        assert_eq!(c.name, "JOHN-PC");
        assert_eq!(c.keyboard_layout, 0x409);
        assert_eq!(c.early_flags, Some(1));
        assert_eq!(c.encryption_methods, Some(3));
        assert_eq!(c.channels, vec!["rdpdr", "cliprdr"]);
        assert!(client_data(b"no key here").is_none());
    }

    #[test]
    fn server_blocks_and_bad_lengths() {
        let mut sec = 2u32.to_le_bytes().to_vec(); // 128-bit
        sec.extend(2u32.to_le_bytes()); // client compatible
        sec.extend(0u32.to_le_bytes()); // no random
        sec.extend(16u32.to_le_bytes());
        sec.extend(0x8000_0002u32.to_le_bytes());
        sec.extend(1u32.to_le_bytes());
        sec.extend(4u32.to_le_bytes());
        sec.extend(b"cert");
        let mut ud = block(0x0C01, &[4, 0, 8, 0]);
        ud.extend(block(0x0C02, &sec));
        let mut pdu = b"\x7f\x66McDn".to_vec();
        pdu.push(ud.len() as u8);
        pdu.extend(&ud);
        let s = server_data(&pdu).unwrap();
        assert_eq!(s.encryption_method, Some(2));
        assert_eq!(level_name(s.encryption_level.unwrap()), "client compatible");
        assert_eq!(
            s.cert,
            Some(ServerCert::X509 {
                chain: vec![b"cert".to_vec()],
                temporary: true
            })
        );
        // A block claiming more than there is ends the walk quietly.
        let pdu = b"McDn\x08\x01\x0c\xff\x00abcd";
        assert_eq!(server_data(pdu).unwrap().version, 0);
    }
    #[test]
    fn a_short_core_block_keeps_the_fields_it_has() {
        // TS_UD_CS_CORE cut right after clientName (56 bytes in all): the
        // build and name stay, earlyCapabilityFlags is absent.
        let mut core = vec![0u8; field::CS_NAME.end - field::BLOCK_HEADER];
        core[field::CS_BUILD - 4..field::CS_BUILD].copy_from_slice(&2600u32.to_le_bytes());
        for (i, ch) in "PC".encode_utf16().enumerate() {
            let at = field::CS_NAME.start - 4 + 2 * i;
            core[at..at + 2].copy_from_slice(&ch.to_le_bytes());
        }
        let ud = block(CS_CORE, &core);
        let mut pdu = b"Duca".to_vec();
        pdu.push(ud.len() as u8);
        pdu.extend(&ud);
        let c = client_data(&pdu).unwrap();
        assert_eq!(
            (c.build, c.name.as_str(), c.early_flags),
            (2600, "PC", None)
        );
        // One byte short of the block's own length: the block is dropped,
        // nothing is read past the bytes given.
        let c = client_data(&pdu[..pdu.len() - 1]).unwrap();
        assert_eq!(c, ClientData::default());
        // The block type changed to an unknown one: ignored.
        let mut other = pdu.clone();
        other[5] = 0x99;
        assert_eq!(client_data(&other).unwrap().build, 0);
    }
}
