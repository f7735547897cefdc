//! CredSSP `TSRequest` (MS-CSSP 2.2.1), read from a decrypted stream:
//!
//! ```text
//! TSRequest ::= SEQUENCE {
//!   version    [0] INTEGER,
//!   negoTokens [1] SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING } OPTIONAL,
//!   authInfo   [2] OCTET STRING OPTIONAL,
//!   pubKeyAuth [3] OCTET STRING OPTIONAL,
//!   errorCode  [4] INTEGER OPTIONAL,   -- NTSTATUS / HRESULT, signed (version ≥ 3)
//!   clientNonce [5] OCTET STRING OPTIONAL }
//! ```
//!
//! The fields are read one by one with a lax TLV walk (as the X.224
//! parser does): a request with one odd field still gives its version and
//! errorCode. The token says NTLM (an `NTLMSSP` message, raw as FreeRDP
//! sends it or inside SPNEGO as Windows does; MS-NLMP 2.2.1) or Kerberos
//! (the Kerberos OIDs or an AP-REQ/AP-REP, RFC 4121). From NTLM's
//! AUTHENTICATE the user, domain and workstation are read.

use super::error::{Error, Layer};

/// Largest TSRequest read (a Kerberos AP-REQ with a PAC runs to tens of
/// KiB); larger ones are reported as bounded.
pub const MAX_TSREQUEST: usize = 256 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    /// NTLM message 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE.
    Ntlm(u32),
    Kerberos,
    /// A token that names neither.
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NtlmUser {
    pub user: String,
    pub domain: String,
    pub workstation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsRequest {
    pub version: u32,
    pub mech: Option<Mech>,
    pub user: Option<NtlmUser>,
    pub auth_info: bool,
    pub pub_key_auth: bool,
    /// errorCode as the unsigned 32-bit value (0xC000006D).
    pub error_code: Option<u32>,
    pub client_nonce: bool,
}

/// A DER element: (tag byte, header length, content length).
pub fn tlv(b: &[u8]) -> Result<(u8, usize, usize), Error> {
    let need = |n: usize| Error::need_more(Layer::Credssp, n);
    if b.len() < 2 {
        return Err(need(2));
    }
    let first = b[1];
    if first < 0x80 {
        return Ok((b[0], 2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return Err(Error::malformed(
            Layer::Credssp,
            1,
            format!("DER length of {n} bytes"),
        ));
    }
    if b.len() < 2 + n {
        return Err(need(2 + n));
    }
    let len = b[2..2 + n]
        .iter()
        .fold(0usize, |a, &x| (a << 8) | x as usize);
    Ok((b[0], 2 + n, len))
}

/// The length of the TSRequest at the start of `b` (header + content).
pub fn len(b: &[u8]) -> Result<usize, Error> {
    let (tag, h, l) = tlv(b)?;
    if tag != 0x30 {
        return Err(Error::malformed(
            Layer::Credssp,
            0,
            format!("TSRequest starts with 0x{tag:02x}, not a SEQUENCE"),
        ));
    }
    Ok(h + l)
}

/// The elements of a constructed value's content.
fn elements(mut b: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while !b.is_empty() && out.len() < 16 {
        let Ok((tag, h, l)) = tlv(b) else { break };
        let Some(c) = b.get(h..h + l) else { break };
        out.push((tag, c));
        b = &b[h + l..];
    }
    out
}

fn integer(b: &[u8]) -> Option<u32> {
    let (tag, h, l) = tlv(b).ok()?;
    let c = b.get(h..h + l)?;
    if tag != 0x02 || c.is_empty() || c.len() > 5 {
        return None;
    }
    // Sign-extend, then keep the low 32 bits (errorCode is signed).
    let neg = c[0] & 0x80 != 0;
    let v = c
        .iter()
        .fold(if neg { -1i64 } else { 0 }, |a, &x| (a << 8) | x as i64);
    Some(v as u32)
}

/// Reads one whole TSRequest (as [`len`] framed it).
pub fn ts_request(b: &[u8]) -> Result<TsRequest, Error> {
    let (_, h, l) = tlv(b)?;
    let content = b
        .get(h..h + l)
        .ok_or(Error::need_more(Layer::Credssp, h + l))?;
    let mut r = TsRequest::default();
    let mut version = false;
    for (tag, c) in elements(content) {
        match tag {
            0xa0 => {
                r.version = integer(c).ok_or_else(|| {
                    Error::malformed(Layer::Credssp, h, "TSRequest version is not an INTEGER")
                })?;
                version = true;
            }
            0xa1 => {
                if let Some(tok) = first_token(c) {
                    r.mech = Some(mech(tok));
                    if r.mech == Some(Mech::Ntlm(3)) {
                        r.user = ntlm_user(tok);
                    }
                }
            }
            0xa2 => r.auth_info = true,
            0xa3 => r.pub_key_auth = true,
            0xa4 => r.error_code = integer(c),
            0xa5 => r.client_nonce = true,
            _ => {}
        }
    }
    if !version {
        return Err(Error::malformed(
            Layer::Credssp,
            0,
            "TSRequest without a version",
        ));
    }
    Ok(r)
}

/// negoTokens: SEQUENCE OF SEQUENCE { [0] OCTET STRING }: the first token.
fn first_token(c: &[u8]) -> Option<&[u8]> {
    let (_, seq_of) = *elements(c).first()?;
    let (_, item) = *elements(seq_of).first()?;
    let (_, tagged) = *elements(item).first()?;
    let (tag, oct) = *elements(tagged).first()?;
    (tag == 0x04).then_some(oct)
}

const NTLMSSP: &[u8] = b"NTLMSSP\0";
/// 1.2.840.113554.1.2.2 (Kerberos 5) and 1.2.840.48018.1.2.2 (MS KRB5).
const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn mech(tok: &[u8]) -> Mech {
    if let Some(p) = find(tok, NTLMSSP) {
        if let Some(t) = tok.get(p + 8..p + 12) {
            return Mech::Ntlm(u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
        }
    }
    // AP-REQ [APPLICATION 14] / AP-REP [APPLICATION 15], or the OIDs.
    if find(tok, KRB5_OID).is_some()
        || find(tok, MS_KRB5_OID).is_some()
        || matches!(tok.first(), Some(0x6e | 0x6f))
    {
        return Mech::Kerberos;
    }
    Mech::Other
}

/// MS-NLMP 2.2.1.3: the domain (offset 28), user (36) and workstation
/// (44) fields, each Len u16, MaxLen u16, Offset u32 from the message
/// start; UTF-16LE when NTLMSSP_NEGOTIATE_UNICODE (flags at 60).
fn ntlm_user(tok: &[u8]) -> Option<NtlmUser> {
    let m = &tok[find(tok, NTLMSSP)?..];
    let u16_at = |o: usize| {
        m.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        m.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let unicode = u32_at(60).unwrap_or(1) & 1 != 0;
    let field = |o: usize| -> String {
        let (Some(len), Some(off)) = (u16_at(o), u32_at(o + 4)) else {
            return String::new();
        };
        let Some(b) = m.get(off as usize..off as usize + len) else {
            return String::new();
        };
        text(b, unicode, 256)
    };
    Some(NtlmUser {
        domain: field(28),
        user: field(36),
        workstation: field(44),
    })
}

/// UTF-16LE (or 8-bit) text, control characters replaced, at most `max`
/// characters.
pub fn text(b: &[u8], unicode: bool, max: usize) -> String {
    let s: String = if unicode {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        char::decode_utf16(units)
            .map(|c| c.unwrap_or('\u{fffd}'))
            .take(max)
            .collect()
    } else {
        b.iter()
            .take_while(|&&c| c != 0)
            .take(max)
            .map(|&c| c as char)
            .collect()
    };
    s.replace(|c: char| c.is_control(), " ")
}

/// CredSSP errorCode names (PROTOCOLS.md §8; NTSTATUS and SEC_E values).
pub const ERRORS: &[(u32, &str)] = &[
    (0xC000006D, "logon_failure"),
    (0xC000006A, "wrong_password"),
    (0xC0000064, "no_such_user"),
    (0xC0000072, "account_disabled"),
    (0xC000006E, "account_restriction"),
    (0xC0000234, "account_locked_out"),
    (0xC0000193, "account_expired"),
    (0xC0000071, "password_expired"),
    (0xC0000224, "password_must_change"),
    (0xC0000133, "time_difference_at_dc"),
    (0xC000015B, "logon_type_not_granted"),
    (0xC00002FA, "smartcard_logon_required"),
    (0xC000035B, "channel_binding_failed"),
    (0x80090302, "unsupported_function"),
    (0x8009030C, "logon_denied"),
    (0x8009030E, "no_credentials"),
    (0x80090311, "no_authenticating_authority"),
    (0x80090322, "wrong_principal"),
];

pub fn error_name(code: u32) -> Option<&'static str> {
    ERRORS.iter().find(|e| e.0 == code).map(|e| e.1)
}

#[cfg(test)]
mod test {
    use super::*;

    /// FreeRDP's server answer to a wrong password (CredSSP 6): version 6,
    /// errorCode 0xC000006D as a negative INTEGER.
    const ERROR_TSREQ: [u8; 15] = [
        0x30, 0x0d, 0xa0, 0x03, 0x02, 0x01, 0x06, 0xa4, 0x06, 0x02, 0x04, 0xc0, 0x00, 0x00, 0x6d,
    ];

    #[test]
    fn error_code_is_read_signed() {
        assert_eq!(len(&ERROR_TSREQ).unwrap(), 15);
        let r = ts_request(&ERROR_TSREQ).unwrap();
        assert_eq!(r.version, 6);
        assert_eq!(r.error_code, Some(0xC000006D));
        assert_eq!(error_name(0xC000006D), Some("logon_failure"));
        // One byte short: need more; the tag changed: malformed.
        assert!(len(&ERROR_TSREQ[..1]).unwrap_err().is_need_more());
        let mut b = ERROR_TSREQ;
        b[0] = 0x31;
        assert!(!len(&b).unwrap_err().is_need_more());
        // A 5-byte INTEGER with a leading 00 (0x00c000006d) is the same.
        let long = [
            0x30, 0x0e, 0xa0, 0x03, 0x02, 0x01, 0x06, 0xa4, 0x07, 0x02, 0x05, 0x00, 0xc0, 0x00,
            0x00, 0x6d,
        ];
        assert_eq!(ts_request(&long).unwrap().error_code, Some(0xC000006D));
    }

    #[test]
    fn ntlm_authenticate_user_and_domain() {
        let mut m = NTLMSSP.to_vec();
        m.extend(3u32.to_le_bytes());
        m.resize(64, 0);
        m[60] = 1; // unicode
        let dom: Vec<u8> = "LAB".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let user: Vec<u8> = "alice"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let put = |m: &mut Vec<u8>, at: usize, b: &[u8]| {
            let off = m.len() as u32;
            m[at..at + 2].copy_from_slice(&(b.len() as u16).to_le_bytes());
            m[at + 4..at + 8].copy_from_slice(&off.to_le_bytes());
            m.extend_from_slice(b);
        };
        put(&mut m, 28, &dom);
        put(&mut m, 36, &user);
        // TSRequest { version 6, negoTokens { { [0] OCTET STRING m } } }
        let oct = [&[0x04, m.len() as u8][..], &m].concat();
        let t0 = [&[0xa0, oct.len() as u8][..], &oct].concat();
        let item = [&[0x30, t0.len() as u8][..], &t0].concat();
        let seq = [&[0x30, item.len() as u8][..], &item].concat();
        let a1 = [&[0xa1, seq.len() as u8][..], &seq].concat();
        let body = [&[0xa0, 3, 2, 1, 6][..], &a1].concat();
        let req = [&[0x30, body.len() as u8][..], &body].concat();
        let r = ts_request(&req).unwrap();
        assert_eq!(r.mech, Some(Mech::Ntlm(3)));
        let u = r.user.unwrap();
        assert_eq!((u.user.as_str(), u.domain.as_str()), ("alice", "LAB"));
    }

    #[test]
    fn absurd_lengths_do_not_panic() {
        for b in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x03, 0xa0, 0x7f, 0x02],
            &[0x30, 0x80],
        ] {
            let _ = len(b);
            let _ = ts_request(b);
        }
    }
}
