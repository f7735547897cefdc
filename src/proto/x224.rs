//! TPKT (RFC 1006, T.123) and X.224 (ISO 8073 class 0) as RDP uses them,
//! with the RDP negotiation structures (MS-RDPBCGR 2.2.1.1 – 2.2.1.2.2).
//!
//! Written here rather than taken from `ironrdp-pdu`: that crate decodes a
//! whole Connection Request or Confirm or fails as a whole, so a capture
//! with a bad negotiation length loses the cookie and the request with it,
//! and it has no notion of "need more bytes" for a partial TPKT. A capture
//! analyser needs each field it can still read, and the exact reason when
//! it cannot (see docs/ARCHITECTURE.md).

use std::fmt;

/// TPKT header length (RFC 1006 §6).
pub const TPKT_LEN: usize = 4;

/// X.224 TPDU codes (ISO 8073 13.1, MS-RDPBCGR 2.2.1.1).
pub const CR: u8 = 0xE0;
pub const CC: u8 = 0xD0;
pub const DR: u8 = 0x80;
pub const DT: u8 = 0xF0;
pub const ER: u8 = 0x70;

/// RDP_NEG_REQ flags (MS-RDPBCGR 2.2.1.1.1).
pub const NEG_REQ_RESTRICTED_ADMIN: u8 = 0x01;
pub const NEG_REQ_REMOTE_GUARD: u8 = 0x02;
pub const NEG_REQ_CORRELATION_INFO: u8 = 0x08;
/// RDP_NEG_RSP flags (MS-RDPBCGR 2.2.1.2.1).
pub const NEG_RSP_RESTRICTED_ADMIN: u8 = 0x08;
pub const NEG_RSP_REMOTE_GUARD: u8 = 0x10;

/// `requestedProtocols` / `selectedProtocol` bits (MS-RDPBCGR 2.2.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Protocols(pub u32);

impl Protocols {
    pub const RDP: u32 = 0;
    pub const SSL: u32 = 0x1;
    pub const HYBRID: u32 = 0x2;
    pub const RDSTLS: u32 = 0x4;
    pub const HYBRID_EX: u32 = 0x8;
    pub const RDSAAD: u32 = 0x10;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    /// Any protocol that starts TLS right after the confirm.
    pub fn tls(self) -> bool {
        self.0 != 0
    }
    /// CredSSP (NLA) runs inside TLS.
    pub fn nla(self) -> bool {
        self.has(Self::HYBRID) || self.has(Self::HYBRID_EX)
    }
}

impl fmt::Display for Protocols {
    /// `RDP` for none, else the set bits joined by `|` (`SSL|HYBRID`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("RDP");
        }
        let names = [
            (Self::SSL, "SSL"),
            (Self::HYBRID, "HYBRID"),
            (Self::RDSTLS, "RDSTLS"),
            (Self::HYBRID_EX, "HYBRID_EX"),
            (Self::RDSAAD, "RDSAAD"),
        ];
        let mut first = true;
        let mut rest = self.0;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "0x{rest:x}")?;
        }
        Ok(())
    }
}

/// RDP_NEG_REQ (2.2.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegReq {
    pub flags: u8,
    pub protocols: Protocols,
}

/// Connection Request (2.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnReq {
    /// `Cookie: mstshash=` value: the user name (possibly truncated).
    pub cookie: Option<String>,
    /// A routing token (`Cookie: msts=…`, `tsv://…`, `mth://…`), as sent.
    pub routing_token: Option<String>,
    pub neg: Option<NegReq>,
    /// RDP_NEG_CORRELATION_INFO correlationId (2.2.1.1.2).
    pub correlation_id: Option<[u8; 16]>,
}

/// What the server answered in the Connection Confirm (2.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegResult {
    /// No negotiation data: legacy Standard RDP Security.
    None,
    /// RDP_NEG_RSP (2.2.1.2.1).
    Rsp { flags: u8, selected: Protocols },
    /// RDP_NEG_FAILURE (2.2.1.2.2).
    Failure { code: u32 },
}

/// One TPDU inside a TPKT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tpdu {
    ConnReq(ConnReq),
    ConnConfirm(NegResult),
    Disconnect,
    /// Data TPDU: user data starts at this offset of the TPKT.
    Data {
        offset: usize,
    },
    Error,
}

/// Byte layouts (the smoltcp `mod field` habit): offsets from the start of
/// the TPKT, and within the negotiation structures.
pub mod field {
    use std::ops::Range;
    /// TPKT (RFC 1006 §6): version 3, reserved, big-endian length.
    pub const TPKT_VERSION: usize = 0;
    pub const TPKT_LENGTH: Range<usize> = 2..4;
    /// X.224 length indicator (the TPDU header's length, less itself).
    pub const LI: usize = 4;
    /// X.224 TPDU code (high nibble) and credit.
    pub const CODE: usize = 5;
    /// CR/CC: DST-REF (2), SRC-REF (2), class option (1), then the
    /// variable part (cookie / routing token, negotiation structure).
    pub const CR_CC_VARIABLE: usize = 11;
    /// DT: the EOT byte, then user data.
    pub const DT_USER_DATA: usize = 7;
    /// RDP_NEG_REQ / RSP / FAILURE (2.2.1.1.1, 2.2.1.2.1, 2.2.1.2.2).
    pub const NEG_TYPE: usize = 0;
    pub const NEG_FLAGS: usize = 1;
    pub const NEG_LENGTH: Range<usize> = 2..4;
    pub const NEG_VALUE: Range<usize> = 4..8;
    pub const NEG_LEN: usize = 8;
    /// RDP_NEG_CORRELATION_INFO (2.2.1.1.2): type 6, flags, length 36, id.
    pub const CORR_ID: Range<usize> = 4..20;
    pub const CORR_LEN: usize = 36;
    /// The smallest TPKT FreeRDP accepts: header, LI and code (and one more).
    pub const TPKT_MIN: usize = 7;
}

use super::error::{bad, Error, Layer};

fn be16(b: &[u8], r: std::ops::Range<usize>) -> usize {
    u16::from_be_bytes([b[r.start], b[r.start + 1]]) as usize
}

fn le16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_le_bytes([b[r.start], b[r.start + 1]])
}

/// The length of the TPKT at the start of `b`; a need-more error when
/// fewer than 4 bytes are there, malformed when it is not a TPKT header.
pub fn tpkt_len(b: &[u8]) -> Result<usize, Error> {
    if b.len() < TPKT_LEN {
        return Err(Error::need_more(Layer::Tpkt, TPKT_LEN));
    }
    if b[field::TPKT_VERSION] != 3 {
        return bad(
            Layer::Tpkt,
            field::TPKT_VERSION,
            format!("TPKT version {} (expected 3)", b[0]),
        );
    }
    let len = be16(b, field::TPKT_LENGTH);
    if len < field::TPKT_MIN {
        return bad(
            Layer::Tpkt,
            field::TPKT_LENGTH.start,
            format!("TPKT length {len} is below the 7-byte minimum"),
        );
    }
    Ok(len)
}

/// Where a TPKT holding an X.224 Connection Confirm starts in `b` (a
/// server's stream after a tunnel reply: SOCKS, HTTP CONNECT).
pub fn find_confirm(b: &[u8]) -> Option<usize> {
    b.windows(6).position(|w| {
        w[field::TPKT_VERSION] == 3
            && w[1] == 0
            && w[field::CODE] & 0xF0 == CC
            && w[field::LI] as usize + 5 == be16(w, field::TPKT_LENGTH)
    })
}

/// Decodes one whole TPKT (`b.len()` = its length).
pub fn parse(b: &[u8]) -> Result<Tpdu, Error> {
    let len = match tpkt_len(b) {
        Ok(l) if l == b.len() => l,
        Ok(l) => {
            return bad(
                Layer::Tpkt,
                field::TPKT_LENGTH.start,
                format!("TPKT length {l}, {} bytes given", b.len()),
            )
        }
        Err(e) if e.is_need_more() => return bad(Layer::Tpkt, 0, "shorter than a TPKT header"),
        Err(e) => return Err(e),
    };
    let li = b[field::LI] as usize;
    let code = b[field::CODE] & 0xF0;
    if li + 5 > len {
        return bad(
            Layer::X224,
            field::LI,
            format!("X.224 length indicator {li} runs past the TPKT length {len}"),
        );
    }
    match code {
        CR | CC => {
            if li + 5 != len {
                return bad(
                    Layer::X224,
                    field::LI,
                    format!(
                        "X.224 {} length indicator {li} does not match TPKT length {len} (expected {})",
                        if code == CR { "CR" } else { "CC" },
                        len - 5
                    ),
                );
            }
            if li < 6 {
                return bad(
                    Layer::X224,
                    field::LI,
                    format!("X.224 length indicator {li} below the fixed part (6)"),
                );
            }
            let var = &b[field::CR_CC_VARIABLE..len];
            let at = |e: Error| Error {
                offset: e.offset + field::CR_CC_VARIABLE,
                ..e
            };
            if code == CR {
                conn_req(var).map(Tpdu::ConnReq).map_err(at)
            } else {
                conn_confirm(var).map(Tpdu::ConnConfirm).map_err(at)
            }
        }
        DR => Ok(Tpdu::Disconnect),
        DT => {
            if li != 2 {
                return bad(
                    Layer::X224,
                    field::LI,
                    format!("X.224 Data length indicator {li} (expected 2)"),
                );
            }
            Ok(Tpdu::Data {
                offset: field::DT_USER_DATA,
            })
        }
        ER => Ok(Tpdu::Error),
        _ => bad(
            Layer::X224,
            field::CODE,
            format!("unknown X.224 TPDU code 0x{:02x}", b[field::CODE]),
        ),
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The variable part of a Connection Request (offsets in errors are from
/// its start).
fn conn_req(v: &[u8]) -> Result<ConnReq, Error> {
    let mut r = ConnReq::default();
    let mut off = 0;
    // Cookie or routing token: text up to CR LF, present when the part
    // does not start with a negotiation structure (type 1).
    if !v.is_empty() && v[0] != 0x01 {
        let Some(end) = v.windows(2).position(|w| w == b"\r\n") else {
            return bad(
                Layer::X224,
                0,
                "cookie or routing token without its CR LF terminator",
            );
        };
        let text = String::from_utf8_lossy(&v[..end]).into_owned();
        if let Some(user) = text.strip_prefix("Cookie: mstshash=") {
            r.cookie = Some(user.to_string());
        } else {
            r.routing_token = Some(text);
        }
        off = end + 2;
    }
    let n = &v[off..];
    if n.is_empty() {
        return Ok(r);
    }
    if n.len() < field::NEG_LEN {
        return bad(
            Layer::RdpNeg,
            off,
            format!("{} bytes after the cookie, RDP_NEG_REQ needs 8", n.len()),
        );
    }
    if n[field::NEG_TYPE] != 0x01 {
        return bad(
            Layer::RdpNeg,
            off + field::NEG_TYPE,
            format!("RDP_NEG_REQ type 0x{:02x} (expected 0x01)", n[0]),
        );
    }
    let nlen = le16(n, field::NEG_LENGTH);
    if nlen as usize != field::NEG_LEN {
        return bad(
            Layer::RdpNeg,
            off + field::NEG_LENGTH.start,
            format!("RDP_NEG_REQ length {nlen} (expected 8)"),
        );
    }
    let neg = NegReq {
        flags: n[field::NEG_FLAGS],
        protocols: Protocols(le32(&n[field::NEG_VALUE])),
    };
    r.neg = Some(neg);
    let c = &n[field::NEG_LEN..];
    if neg.flags & NEG_REQ_CORRELATION_INFO != 0 {
        // RDP_NEG_CORRELATION_INFO (2.2.1.1.2): type 6, flags 0, length 36.
        if c.len() < field::CORR_LEN
            || c[field::NEG_TYPE] != 0x06
            || le16(c, field::NEG_LENGTH) as usize != field::CORR_LEN
        {
            return bad(
                Layer::RdpNeg,
                off + field::NEG_LEN,
                "CORRELATION_INFO_PRESENT set but no valid RDP_NEG_CORRELATION_INFO",
            );
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&c[field::CORR_ID]);
        r.correlation_id = Some(id);
    }
    Ok(r)
}

/// The variable part of a Connection Confirm.
fn conn_confirm(v: &[u8]) -> Result<NegResult, Error> {
    if v.is_empty() {
        return Ok(NegResult::None);
    }
    if v.len() < field::NEG_LEN {
        return bad(
            Layer::RdpNeg,
            0,
            format!("{} bytes of negotiation data, 8 expected", v.len()),
        );
    }
    let nlen = le16(v, field::NEG_LENGTH);
    if nlen as usize != field::NEG_LEN {
        return bad(
            Layer::RdpNeg,
            field::NEG_LENGTH.start,
            format!("negotiation response length {nlen} (expected 8)"),
        );
    }
    let val = le32(&v[field::NEG_VALUE]);
    match v[field::NEG_TYPE] {
        0x02 => Ok(NegResult::Rsp {
            flags: v[field::NEG_FLAGS],
            selected: Protocols(val),
        }),
        0x03 => Ok(NegResult::Failure { code: val }),
        t => bad(
            Layer::RdpNeg,
            field::NEG_TYPE,
            format!("negotiation response type 0x{t:02x} (expected 2 or 3)"),
        ),
    }
}

/// failureCode values (2.2.1.2.2): the spec's name and the finding-code
/// member for each.
pub const FAILURES: &[(u32, &str, &str)] = &[
    (1, "SSL_REQUIRED_BY_SERVER", "ssl_required"),
    (2, "SSL_NOT_ALLOWED_BY_SERVER", "ssl_not_allowed"),
    (3, "SSL_CERT_NOT_ON_SERVER", "ssl_cert_not_on_server"),
    (4, "INCONSISTENT_FLAGS", "inconsistent_flags"),
    (5, "HYBRID_REQUIRED_BY_SERVER", "hybrid_required"),
    (
        6,
        "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
        "ssl_with_user_auth_required",
    ),
];

/// failureCode names (2.2.1.2.2) and the finding-code member for each.
pub fn failure_name(code: u32) -> Option<(&'static str, &'static str)> {
    FAILURES
        .iter()
        .find(|f| f.0 == code)
        .map(|&(_, name, member)| (name, member))
}

/// Fast-path PDU length at the start of `b` (MS-RDPBCGR 2.2.8.1.2 /
/// 2.2.9.1.2): fpOutputHeader (action in the low 2 bits), then a 1- or
/// 2-byte length (high bit of the first set: 15 bits). Need-more when the
/// length bytes are not all there.
pub fn fastpath_len(b: &[u8]) -> Result<usize, Error> {
    if b.len() < 2 {
        return Err(Error::need_more(Layer::FastPath, 2));
    }
    if b[0] & 0x03 != 0 {
        return bad(
            Layer::FastPath,
            0,
            format!("fast-path action bits {} (expected 0)", b[0] & 3),
        );
    }
    let len = if b[1] & 0x80 != 0 {
        if b.len() < 3 {
            return Err(Error::need_more(Layer::FastPath, 3));
        }
        (((b[1] & 0x7F) as usize) << 8) | b[2] as usize
    } else {
        b[1] as usize
    };
    if len < 3 {
        return bad(
            Layer::FastPath,
            1,
            format!("fast-path length {len} below 3"),
        );
    }
    Ok(len)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn cr_with_cookie_and_neg_req() {
        // PROTOCOLS.md §2 example: cookie rzhou, SSL|HYBRID.
        let mut b = vec![0x03, 0x00, 0x00, 0x2b, 0x26, 0xe0, 0, 0, 0, 0, 0];
        b.extend_from_slice(b"Cookie: mstshash=rzhou\r\n");
        b.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
        assert_eq!(b.len(), 0x2b);
        let Tpdu::ConnReq(r) = parse(&b).unwrap() else {
            panic!()
        };
        assert_eq!(r.cookie.as_deref(), Some("rzhou"));
        assert_eq!(r.neg.unwrap().protocols.to_string(), "SSL|HYBRID");
        assert_eq!(r.correlation_id, None);
    }

    #[test]
    fn cc_variants() {
        // Selects HYBRID (PROTOCOLS.md §2 example).
        let b = [
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x01, 0x08,
            0x00, 0x02, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            parse(&b).unwrap(),
            Tpdu::ConnConfirm(NegResult::Rsp {
                flags: 1,
                selected: Protocols(2)
            })
        );
        // Legacy: LI 6, no negotiation data.
        let b = [0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&b).unwrap(), Tpdu::ConnConfirm(NegResult::None));
        // Failure code 5.
        let mut b = b.to_vec();
        b[3] = 0x13;
        b[4] = 0x0e;
        b.extend_from_slice(&[0x03, 0x00, 0x08, 0x00, 0x05, 0, 0, 0]);
        assert_eq!(
            parse(&b).unwrap(),
            Tpdu::ConnConfirm(NegResult::Failure { code: 5 })
        );
        assert_eq!(failure_name(5).unwrap().1, "hybrid_required");
    }

    #[test]
    fn malformed_lengths() {
        // Negotiation response length 9 (zeek rdp-invalid-length).
        let b = [
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x09, 0x00, 0x02, 0, 0,
            0,
        ];
        let e = parse(&b).unwrap_err();
        assert!(e.to_string().contains("length 9"));
        assert_eq!((e.layer, e.offset), (Layer::RdpNeg, 13));
        // LI disagrees with TPKT.
        let b = [0x03, 0x00, 0x00, 0x0b, 0x07, 0xd0, 0, 0, 0, 0, 0];
        assert!(parse(&b).is_err());
        assert!(tpkt_len(&[3, 0, 0, 5]).is_err());
        assert!(tpkt_len(&[4, 0, 0, 50]).is_err());
        assert!(tpkt_len(&[3, 0, 0]).unwrap_err().is_need_more());
        // Cookie without terminator.
        let mut b = vec![0x03, 0x00, 0x00, 0x00, 0x00, 0xe0, 0, 0, 0, 0, 0];
        b.extend_from_slice(b"Cookie: mstshash=x");
        b[3] = b.len() as u8;
        b[4] = (b.len() - 5) as u8;
        assert!(parse(&b).unwrap_err().to_string().contains("CR LF"));
    }

    #[test]
    fn routing_token_and_correlation() {
        let mut v = b"Cookie: msts=3640205228.15629.0000\r\n".to_vec();
        v.extend_from_slice(&[0x01, 0x08, 0x08, 0x00, 0x0b, 0, 0, 0]);
        v.extend_from_slice(&[0x06, 0x00, 0x24, 0x00]);
        v.extend((1..=16).map(|i| i as u8));
        v.extend([0u8; 16]);
        let r = conn_req(&v).unwrap();
        assert_eq!(r.cookie, None);
        assert!(r.routing_token.unwrap().starts_with("Cookie: msts="));
        assert_eq!(r.neg.unwrap().protocols.to_string(), "SSL|HYBRID|HYBRID_EX");
        assert_eq!(r.correlation_id.unwrap()[0], 1);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocols(0).to_string(), "RDP");
        assert_eq!(Protocols(0x8).to_string(), "HYBRID_EX");
        assert_eq!(Protocols(0x41).to_string(), "SSL|0x40");
    }

    #[test]
    fn fastpath() {
        assert_eq!(fastpath_len(&[0x00, 0x05]).unwrap(), 5);
        assert_eq!(fastpath_len(&[0x80, 0x81, 0x00]).unwrap(), 256);
        assert!(fastpath_len(&[0x80, 0x81]).unwrap_err().is_need_more());
        assert!(fastpath_len(&[0x03, 0x05]).is_err());
    }
    /// The PROTOCOLS.md §2 Connection Confirm selecting HYBRID, annotated.
    const CC_HYBRID: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, // TPKT: version 3, length 19
        0x0e, 0xd0, // LI 14, CC
        0x00, 0x00, 0x12, 0x34, 0x00, // DST-REF, SRC-REF, class 0
        0x02, 0x01, 0x08, 0x00, // RDP_NEG_RSP, flags 1, length 8
        0x02, 0x00, 0x00, 0x00, // selectedProtocol HYBRID
    ];

    #[test]
    fn one_byte_short_is_need_more_or_malformed_never_a_panic() {
        // A whole TPKT one byte short: the header says 19, 18 are given.
        let e = parse(&CC_HYBRID[..18]).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Tpkt, 2));
        // The header itself one byte short: need more.
        assert!(tpkt_len(&CC_HYBRID[..3]).unwrap_err().is_need_more());
        assert_eq!(tpkt_len(&CC_HYBRID[..4]).unwrap(), 19);
        // Every prefix parses to an error without panicking.
        for n in 0..CC_HYBRID.len() {
            assert!(parse(&CC_HYBRID[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn one_byte_changed_names_the_field() {
        let cases: [(usize, u8, Layer, usize); 5] = [
            (0, 0x04, Layer::Tpkt, field::TPKT_VERSION),
            (4, 0x0f, Layer::X224, field::LI),
            (5, 0xa0, Layer::X224, field::CODE),
            (11, 0x05, Layer::RdpNeg, 11 + field::NEG_TYPE),
            (13, 0x09, Layer::RdpNeg, 11 + field::NEG_LENGTH.start),
        ];
        for (at, v, layer, off) in cases {
            let mut b = CC_HYBRID;
            b[at] = v;
            let e = parse(&b).unwrap_err();
            assert_eq!((e.layer, e.offset), (layer, off), "byte {at} = {v:#x}: {e}");
            assert!(!e.is_need_more());
        }
        // A changed value that is still valid: another selected protocol.
        let mut b = CC_HYBRID;
        b[15] = 0x01;
        assert_eq!(
            parse(&b).unwrap(),
            Tpdu::ConnConfirm(NegResult::Rsp {
                flags: 1,
                selected: Protocols(1)
            })
        );
    }

    #[test]
    fn confirm_found_after_a_tunnel_reply() {
        let mut b = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
        let at = b.len();
        b.extend_from_slice(&CC_HYBRID);
        assert_eq!(find_confirm(&b), Some(at));
        b[at + 4] = 0x0d; // LI no longer matches the TPKT length
        assert_eq!(find_confirm(&b), None);
    }
}
