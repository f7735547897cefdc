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

/// What is wrong with a PDU, for `x224.malformed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(s: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(s.into()))
}

/// The length of the TPKT at the start of `b`: `Ok(None)` when fewer than
/// 4 bytes are there, an error when it is not a valid TPKT header.
pub fn tpkt_len(b: &[u8]) -> Result<Option<usize>, Malformed> {
    if b.len() < TPKT_LEN {
        return Ok(None);
    }
    if b[0] != 3 {
        return bad(format!("TPKT version {} (expected 3)", b[0]));
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    // 4 header + at least LI and code (FreeRDP requires 7).
    if len < 7 {
        return bad(format!("TPKT length {len} is below the 7-byte minimum"));
    }
    Ok(Some(len))
}

/// Decodes one whole TPKT (`b.len()` = its length).
pub fn parse(b: &[u8]) -> Result<Tpdu, Malformed> {
    let len = match tpkt_len(b)? {
        Some(l) if l == b.len() => l,
        Some(l) => return bad(format!("TPKT length {l}, {} bytes given", b.len())),
        None => return bad("shorter than a TPKT header"),
    };
    let li = b[4] as usize;
    let code = b[5] & 0xF0;
    if li + 5 > len {
        return bad(format!(
            "X.224 length indicator {li} runs past the TPKT length {len}"
        ));
    }
    match code {
        CR | CC => {
            if li + 5 != len {
                return bad(format!(
                    "X.224 {} length indicator {li} does not match TPKT length {len} (expected {})",
                    if code == CR { "CR" } else { "CC" },
                    len - 5
                ));
            }
            if li < 6 {
                return bad(format!(
                    "X.224 length indicator {li} below the fixed part (6)"
                ));
            }
            let var = &b[11..len];
            if code == CR {
                conn_req(var).map(Tpdu::ConnReq)
            } else {
                conn_confirm(var).map(Tpdu::ConnConfirm)
            }
        }
        DR => Ok(Tpdu::Disconnect),
        DT => {
            if li != 2 {
                return bad(format!("X.224 Data length indicator {li} (expected 2)"));
            }
            Ok(Tpdu::Data { offset: 7 })
        }
        ER => Ok(Tpdu::Error),
        _ => bad(format!("unknown X.224 TPDU code 0x{:02x}", b[5])),
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The variable part of a Connection Request.
fn conn_req(mut v: &[u8]) -> Result<ConnReq, Malformed> {
    let mut r = ConnReq::default();
    // Cookie or routing token: text up to CR LF, present when the part
    // does not start with a negotiation structure (type 1).
    if !v.is_empty() && v[0] != 0x01 {
        let Some(end) = v.windows(2).position(|w| w == b"\r\n") else {
            return bad("cookie or routing token without its CR LF terminator");
        };
        let text = String::from_utf8_lossy(&v[..end]).into_owned();
        if let Some(user) = text.strip_prefix("Cookie: mstshash=") {
            r.cookie = Some(user.to_string());
        } else {
            r.routing_token = Some(text);
        }
        v = &v[end + 2..];
    }
    if v.is_empty() {
        return Ok(r);
    }
    if v.len() < 8 {
        return bad(format!(
            "{} bytes after the cookie, RDP_NEG_REQ needs 8",
            v.len()
        ));
    }
    if v[0] != 0x01 {
        return bad(format!("RDP_NEG_REQ type 0x{:02x} (expected 0x01)", v[0]));
    }
    let nlen = u16::from_le_bytes([v[2], v[3]]);
    if nlen != 8 {
        return bad(format!("RDP_NEG_REQ length {nlen} (expected 8)"));
    }
    let neg = NegReq {
        flags: v[1],
        protocols: Protocols(le32(&v[4..8])),
    };
    r.neg = Some(neg);
    v = &v[8..];
    if neg.flags & 0x08 != 0 {
        // RDP_NEG_CORRELATION_INFO (2.2.1.1.2): type 6, flags 0, length 36.
        if v.len() < 36 || v[0] != 0x06 || u16::from_le_bytes([v[2], v[3]]) != 36 {
            return bad("CORRELATION_INFO_PRESENT set but no valid RDP_NEG_CORRELATION_INFO");
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&v[4..20]);
        r.correlation_id = Some(id);
    }
    Ok(r)
}

/// The variable part of a Connection Confirm.
fn conn_confirm(v: &[u8]) -> Result<NegResult, Malformed> {
    if v.is_empty() {
        return Ok(NegResult::None);
    }
    if v.len() < 8 {
        return bad(format!("{} bytes of negotiation data, 8 expected", v.len()));
    }
    let nlen = u16::from_le_bytes([v[2], v[3]]);
    if nlen != 8 {
        return bad(format!("negotiation response length {nlen} (expected 8)"));
    }
    let val = le32(&v[4..8]);
    match v[0] {
        0x02 => Ok(NegResult::Rsp {
            flags: v[1],
            selected: Protocols(val),
        }),
        0x03 => Ok(NegResult::Failure { code: val }),
        t => bad(format!(
            "negotiation response type 0x{t:02x} (expected 2 or 3)"
        )),
    }
}

/// failureCode names (2.2.1.2.2) and the finding-code suffix for each.
pub fn failure_name(code: u32) -> Option<(&'static str, &'static str)> {
    Some(match code {
        1 => ("SSL_REQUIRED_BY_SERVER", "ssl_required"),
        2 => ("SSL_NOT_ALLOWED_BY_SERVER", "ssl_not_allowed"),
        3 => ("SSL_CERT_NOT_ON_SERVER", "ssl_cert_not_on_server"),
        4 => ("INCONSISTENT_FLAGS", "inconsistent_flags"),
        5 => ("HYBRID_REQUIRED_BY_SERVER", "hybrid_required"),
        6 => (
            "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
            "ssl_with_user_auth_required",
        ),
        _ => return None,
    })
}

/// Fast-path PDU length at the start of `b` (MS-RDPBCGR 2.2.8.1.2 /
/// 2.2.9.1.2): `Ok(None)` when more bytes are needed.
pub fn fastpath_len(b: &[u8]) -> Result<Option<usize>, Malformed> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x03 != 0 {
        return bad(format!("fast-path action bits {} (expected 0)", b[0] & 3));
    }
    let len = if b[1] & 0x80 != 0 {
        if b.len() < 3 {
            return Ok(None);
        }
        (((b[1] & 0x7F) as usize) << 8) | b[2] as usize
    } else {
        b[1] as usize
    };
    if len < 3 {
        return bad(format!("fast-path length {len} below 3"));
    }
    Ok(Some(len))
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
        assert!(parse(&b).unwrap_err().0.contains("length 9"));
        // LI disagrees with TPKT.
        let b = [0x03, 0x00, 0x00, 0x0b, 0x07, 0xd0, 0, 0, 0, 0, 0];
        assert!(parse(&b).is_err());
        assert!(tpkt_len(&[3, 0, 0, 5]).is_err());
        assert!(tpkt_len(&[4, 0, 0, 50]).is_err());
        assert_eq!(tpkt_len(&[3, 0, 0]).unwrap(), None);
        // Cookie without terminator.
        let mut b = vec![0x03, 0x00, 0x00, 0x00, 0x00, 0xe0, 0, 0, 0, 0, 0];
        b.extend_from_slice(b"Cookie: mstshash=x");
        b[3] = b.len() as u8;
        b[4] = (b.len() - 5) as u8;
        assert!(parse(&b).unwrap_err().0.contains("CR LF"));
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
        assert_eq!(fastpath_len(&[0x00, 0x05]).unwrap(), Some(5));
        assert_eq!(fastpath_len(&[0x80, 0x81, 0x00]).unwrap(), Some(256));
        assert_eq!(fastpath_len(&[0x80, 0x81]).unwrap(), None);
        assert!(fastpath_len(&[0x03, 0x05]).is_err());
    }
}
