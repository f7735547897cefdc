//! Recognising RDP by content at the start of a client stream: directly,
//! after a SOCKS4/4a/5 or HTTP CONNECT handshake, or after an MS-RDPEPS
//! preconnection PDU. Also tells TLS and HTTP apart for later stages.

/// How the RDP connection request was reached in the client stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Direct,
    Socks4,
    Socks5,
    HttpConnect,
    Preconnection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppClass {
    /// Not decided yet (too few bytes).
    #[default]
    Unknown,
    /// An X.224 Connection Request starts at `offset` in the client stream.
    Rdp {
        via: Via,
        offset: usize,
    },
    Tls,
    Http,
    Other,
}

/// Bytes of client stream held at most while deciding.
pub const MAX_PROBE: usize = 2048;

/// Classifies a client stream prefix. `Unknown` means "need more bytes";
/// the caller stops asking at [`MAX_PROBE`] bytes.
pub fn classify(b: &[u8]) -> AppClass {
    if b.is_empty() {
        return AppClass::Unknown;
    }
    match rdp_at(b, 0, Via::Direct) {
        AppClass::Other => {}
        c => return c,
    }
    let inner = match b[0] {
        0x04 => socks4(b),
        0x05 => socks5(b),
        b'C' => http_connect(b),
        0x16 => {
            return if b.len() < 3 {
                AppClass::Unknown
            } else if b[1] == 0x03 {
                AppClass::Tls
            } else {
                AppClass::Other
            }
        }
        _ => None,
    };
    if let Some(r) = inner {
        return r;
    }
    if let Some(r) = preconnection(b) {
        return r;
    }
    http_method(b)
}

/// TPKT + X.224 Connection Request (MS-RDPBCGR 2.2.1.1) at `at`.
fn rdp_at(b: &[u8], at: usize, via: Via) -> AppClass {
    let s = &b[at.min(b.len())..];
    let need = |n: usize| s.len() < n;
    if s.is_empty() {
        return AppClass::Unknown;
    }
    if s[0] != 0x03 {
        return AppClass::Other;
    }
    if need(2) {
        return AppClass::Unknown;
    }
    if s[1] != 0x00 {
        return AppClass::Other;
    }
    if need(6) {
        return AppClass::Unknown;
    }
    let tpkt_len = u16::from_be_bytes([s[2], s[3]]) as usize;
    let li = s[4] as usize;
    if tpkt_len >= 11 && li + 5 == tpkt_len && s[5] & 0xF0 == 0xE0 {
        AppClass::Rdp { via, offset: at }
    } else {
        AppClass::Other
    }
}

/// SOCKS4 / 4a request: VN=4 CD=1 DSTPORT DSTIP USERID\0 [HOST\0].
fn socks4(b: &[u8]) -> Option<AppClass> {
    if b.len() < 9 {
        return Some(AppClass::Unknown);
    }
    if b[1] != 1 {
        return None;
    }
    let user_end = b[8..].iter().position(|&c| c == 0)? + 8;
    let mut end = user_end + 1;
    // SOCKS4a: DSTIP 0.0.0.x with x != 0, host name follows.
    if b[4..7] == [0, 0, 0] && b[7] != 0 {
        end = b.get(end..)?.iter().position(|&c| c == 0)? + end + 1;
    }
    Some(rdp_at(b, end, Via::Socks4))
}

/// SOCKS5 (RFC 1928): greeting, optional username/password (RFC 1929), request.
fn socks5(b: &[u8]) -> Option<AppClass> {
    let unknown = Some(AppClass::Unknown);
    if b.len() < 2 {
        return unknown;
    }
    let n = b[1] as usize;
    if n == 0 {
        return None;
    }
    let mut at = 2 + n;
    if b.len() <= at {
        return unknown;
    }
    if b[at] == 0x01 {
        // Username/password sub-negotiation.
        let ul = *b.get(at + 1)? as usize;
        let pl = *b.get(at + 2 + ul)? as usize;
        at += 3 + ul + pl;
    }
    let r = b.get(at..).filter(|r| r.len() >= 5);
    let Some(r) = r else {
        return unknown;
    };
    if r[0] != 5 || r[1] != 1 {
        return None;
    }
    let addr_len = match r[3] {
        1 => 4,
        4 => 16,
        3 => 1 + r[4] as usize,
        _ => return None,
    };
    at += 4 + addr_len + 2;
    Some(rdp_at(b, at, Via::Socks5))
}

/// `CONNECT host:port HTTP/1.x` … blank line.
fn http_connect(b: &[u8]) -> Option<AppClass> {
    const M: &[u8] = b"CONNECT ";
    let n = b.len().min(M.len());
    if b[..n] != M[..n] {
        return None;
    }
    if b.len() < M.len() {
        return Some(AppClass::Unknown);
    }
    match find(b, b"\r\n\r\n") {
        // A tunnel to port 443 carries TLS (perhaps to an RD Gateway): the
        // CONNECT and the proxy's answer are HTTP to read (a gateway leg
        // when the user names its host).
        Some(end) if end + 4 == b.len() && connect_port(b) == Some(443) => Some(AppClass::Http),
        Some(end) => Some(rdp_at(b, end + 4, Via::HttpConnect)),
        None => Some(AppClass::Unknown),
    }
}

/// The port of `CONNECT host:port HTTP/1.x`.
fn connect_port(b: &[u8]) -> Option<u16> {
    let line = &b[..find(b, b"\r\n")?];
    let target = line.split(|&c| c == b' ').nth(1)?;
    let port = target.rsplit(|&c| c == b':').next()?;
    std::str::from_utf8(port).ok()?.parse().ok()
}

/// MS-RDPEPS 2.2.1.1 RDP_PRECONNECTION_PDU_V1/V2: cbSize, Flags (0),
/// Version (1 or 2), Id, [cchPCB, wszPCB].
fn preconnection(b: &[u8]) -> Option<AppClass> {
    if b.len() < 16 {
        return (b.len() >= 4 && (16..=MAX_PROBE as u32).contains(&le32(b, 0)))
            .then_some(AppClass::Unknown);
    }
    let size = le32(b, 0) as usize;
    let (flags, version) = (le32(b, 4), le32(b, 8));
    if !(16..=MAX_PROBE).contains(&size) || flags != 0 || !(1..=2).contains(&version) {
        return None;
    }
    if version == 2 && size < 18 {
        return None;
    }
    Some(rdp_at(b, size, Via::Preconnection))
}

fn http_method(b: &[u8]) -> AppClass {
    const METHODS: [&[u8]; 6] = [
        b"RDG_OUT_DATA ",
        b"RDG_IN_DATA ",
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"OPTIONS ",
    ];
    for m in METHODS {
        let n = b.len().min(m.len());
        if b[..n] == m[..n] {
            return if n == m.len() {
                AppClass::Http
            } else {
                AppClass::Unknown
            };
        }
    }
    AppClass::Other
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod test {
    use super::*;

    /// MS-RDPBCGR 4.1.1: CR with cookie "mstshash=eltons", neg req SSL|HYBRID.
    const CR: &[u8] = b"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=eltons\r\n\x01\x00\x08\x00\x03\x00\x00\x00";

    #[test]
    fn direct_and_truncated() {
        assert_eq!(
            classify(CR),
            AppClass::Rdp {
                via: Via::Direct,
                offset: 0
            }
        );
        assert_eq!(classify(&CR[..3]), AppClass::Unknown);
        // LI that disagrees with the TPKT length (byte 4 mutated).
        let mut bad = CR.to_vec();
        bad[4] = 0x10;
        assert_eq!(classify(&bad), AppClass::Other);
    }

    #[test]
    fn socks5_then_rdp() {
        let mut s = vec![5, 1, 0];
        s.extend_from_slice(&[5, 1, 0, 1, 198, 18, 0, 2, 0x0d, 0x3d]);
        s.extend_from_slice(CR);
        assert_eq!(
            classify(&s),
            AppClass::Rdp {
                via: Via::Socks5,
                offset: 13
            }
        );
        assert_eq!(classify(&s[..8]), AppClass::Unknown);
    }

    #[test]
    fn socks4a_then_rdp() {
        let mut s = vec![4, 1, 0x0d, 0x3d, 0, 0, 0, 1];
        s.extend_from_slice(b"bob\0host.example\0");
        let off = s.len();
        s.extend_from_slice(CR);
        assert_eq!(
            classify(&s),
            AppClass::Rdp {
                via: Via::Socks4,
                offset: off
            }
        );
    }

    #[test]
    fn http_connect_then_rdp() {
        let mut s = b"CONNECT rdp.example:3389 HTTP/1.1\r\nHost: rdp.example\r\n\r\n".to_vec();
        let off = s.len();
        s.extend_from_slice(CR);
        assert_eq!(
            classify(&s),
            AppClass::Rdp {
                via: Via::HttpConnect,
                offset: off
            }
        );
    }

    #[test]
    fn preconnection_v1_then_rdp() {
        let mut s = vec![16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 42, 0, 0, 0];
        s.extend_from_slice(CR);
        assert_eq!(
            classify(&s),
            AppClass::Rdp {
                via: Via::Preconnection,
                offset: 16
            }
        );
    }

    #[test]
    fn tls_http_other() {
        assert_eq!(classify(b"\x16\x03\x01\x02\x00"), AppClass::Tls);
        assert_eq!(
            classify(b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n"),
            AppClass::Http
        );
        assert_eq!(classify(b"EHLO mail\r\n"), AppClass::Other);
        assert_eq!(classify(b"RDG_"), AppClass::Unknown);
    }
}
