//! MS-TSGU HTTP_PACKETs (the RD Gateway HTTP and WebSocket transports,
//! MS-TSGU 2.2.10): the 8-byte header (packetType, reserved, packetLength
//! with the header included, little-endian) and the bodies that say how
//! the tunnel went — the handshake, tunnel, tunnel-auth and channel
//! responses with their HRESULTs, the target named in CHANNEL_CREATE, the
//! idle timeout the gateway announces, DATA (the inner RDP byte stream),
//! keep-alives and the close. No crate decodes captured HTTP_PACKETs
//! (IronRDP's `ironrdp-mstsgu` keeps its codecs private), so this is ours;
//! byte layouts from PROTOCOLS.md §4.
//!
//! Lax like the other parsers: a body shorter than its fixed part keeps
//! what it has (`None` fields); only the header is strict.

/// Byte layouts (offsets from the packet's start).
pub mod field {
    use std::ops::Range;
    /// HTTP_PACKET_HEADER (2.2.10.9).
    pub const PACKET_TYPE: Range<usize> = 0..2;
    pub const RESERVED: Range<usize> = 2..4;
    pub const PACKET_LENGTH: Range<usize> = 4..8;
    pub const HEADER_LEN: usize = 8;
    /// HANDSHAKE_RESPONSE (2.2.10.11): errorCode, verMajor, verMinor,
    /// serverVersion, extendedAuth.
    pub const HS_ERROR: Range<usize> = 8..12;
    pub const HS_EXT_AUTH: Range<usize> = 16..18;
    /// HANDSHAKE_REQUEST (2.2.10.10): verMajor, verMinor, clientVersion,
    /// extendedAuth.
    pub const HQ_EXT_AUTH: Range<usize> = 12..14;
    /// TUNNEL_CREATE (2.2.10.18): capabilityFlags.
    pub const TC_CAPS: Range<usize> = 8..12;
    /// TUNNEL_RESPONSE (2.2.10.20): serverVersion, statusCode,
    /// fieldsPresent, reserved, then tunnelId / caps when present.
    pub const TR_STATUS: Range<usize> = 10..14;
    pub const TR_FIELDS: Range<usize> = 14..16;
    pub const TR_OPTIONAL: usize = 18;
    /// TUNNEL_AUTH_RESPONSE (2.2.10.16): errorCode, fieldsPresent,
    /// reserved, then redirFlags / idleTimeout when present.
    pub const TA_ERROR: Range<usize> = 8..12;
    pub const TA_FIELDS: Range<usize> = 12..14;
    pub const TA_OPTIONAL: usize = 16;
    /// CHANNEL_CREATE (2.2.10.2): numResources, numAltResources, port,
    /// protocol, then the names (cbName u16 + UTF-16 each).
    pub const CC_NUM_RESOURCES: usize = 8;
    pub const CC_PORT: Range<usize> = 10..12;
    pub const CC_NAMES: usize = 14;
    /// CHANNEL_RESPONSE (2.2.10.4): errorCode, fieldsPresent, reserved,
    /// then channelId when present.
    pub const CR_ERROR: Range<usize> = 8..12;
    /// DATA (2.2.10.6): cbDataLen, data.
    pub const DATA_LEN: Range<usize> = 8..10;
    pub const DATA: usize = 10;
    /// CLOSE_CHANNEL (2.2.10.5) and its response: statusCode.
    pub const CLOSE_STATUS: Range<usize> = 8..12;
}

use super::error::{Error, Layer};

/// Largest HTTP_PACKET read whole (a DATA packet carries at most 64 KiB
/// of inner stream; a SoH blob or a consent message a few KiB).
pub const MAX_PACKET: usize = 72 << 10;

pub const HANDSHAKE_REQUEST: u16 = 0x1;
pub const HANDSHAKE_RESPONSE: u16 = 0x2;
pub const EXTENDED_AUTH_MSG: u16 = 0x3;
pub const TUNNEL_CREATE: u16 = 0x4;
pub const TUNNEL_RESPONSE: u16 = 0x5;
pub const TUNNEL_AUTH: u16 = 0x6;
pub const TUNNEL_AUTH_RESPONSE: u16 = 0x7;
pub const CHANNEL_CREATE: u16 = 0x8;
pub const CHANNEL_RESPONSE: u16 = 0x9;
pub const DATA: u16 = 0xA;
pub const SERVICE_MESSAGE: u16 = 0xB;
pub const REAUTH_MESSAGE: u16 = 0xC;
pub const KEEPALIVE: u16 = 0xD;
pub const CLOSE_CHANNEL: u16 = 0x10;
pub const CLOSE_CHANNEL_RESPONSE: u16 = 0x11;

/// The packet types, named (MS-TSGU 2.2.5.3.3).
pub const TYPES: &[(u16, &str)] = &[
    (HANDSHAKE_REQUEST, "handshake_request"),
    (HANDSHAKE_RESPONSE, "handshake_response"),
    (EXTENDED_AUTH_MSG, "extended_auth"),
    (TUNNEL_CREATE, "tunnel_create"),
    (TUNNEL_RESPONSE, "tunnel_response"),
    (TUNNEL_AUTH, "tunnel_auth"),
    (TUNNEL_AUTH_RESPONSE, "tunnel_auth_response"),
    (CHANNEL_CREATE, "channel_create"),
    (CHANNEL_RESPONSE, "channel_response"),
    (DATA, "data"),
    (SERVICE_MESSAGE, "service_message"),
    (REAUTH_MESSAGE, "reauth"),
    (KEEPALIVE, "keepalive"),
    (CLOSE_CHANNEL, "close_channel"),
    (CLOSE_CHANNEL_RESPONSE, "close_channel_response"),
];

pub fn type_name(t: u16) -> Option<&'static str> {
    TYPES.iter().find(|x| x.0 == t).map(|x| x.1)
}

/// The gateway's result codes (FreeRDP tsg.h, rdpgw errors.go): the full
/// HRESULT; [`result_name`] also matches the low 16 bits, the
/// HRESULT_CODE form some messages carry.
pub const RESULTS: &[(u32, &str)] = &[
    (0x8007_59D8, "internal_error"),
    (0x8007_59DA, "rap_access_denied"),
    (0x8007_59DB, "nap_access_denied"),
    (0x8007_59DD, "ts_connect_failed"),
    (0x8007_59DF, "already_disconnected"),
    (0x8007_59E6, "max_connections_reached"),
    (0x8007_59E8, "not_supported"),
    (0x8007_59E9, "capability_mismatch"),
    (0x8007_59ED, "quarantine_access_denied"),
    (0x8007_59EE, "no_cert_available"),
    (0x8007_59F6, "session_timeout"),
    (0x8007_59F7, "cookie_bad_packet"),
    (0x8007_59F8, "cookie_authentication_access_denied"),
    (0x8007_59F9, "unsupported_authentication_method"),
    (0x8007_59FA, "reauth_authn_failed"),
    (0x8007_59FB, "reauth_cap_failed"),
    (0x8007_59FC, "reauth_rap_failed"),
    (0x8007_59FD, "sdr_not_supported_by_ts"),
    (0x8007_5A00, "reauth_nap_failed"),
    (0x8007_04CA, "graceful_disconnect"),
    (0x8007_04D4, "connection_aborted"),
];

/// The constant's name as FreeRDP's tsg.h and the Windows SDK spell it.
pub fn result_constant(code: u32) -> Option<&'static str> {
    Some(match result_name(code)? {
        "internal_error" => "E_PROXY_INTERNALERROR",
        "rap_access_denied" => "E_PROXY_RAP_ACCESSDENIED",
        "nap_access_denied" => "E_PROXY_NAP_ACCESSDENIED",
        "ts_connect_failed" => "E_PROXY_TS_CONNECTFAILED",
        "already_disconnected" => "E_PROXY_ALREADYDISCONNECTED",
        "max_connections_reached" => "E_PROXY_MAXCONNECTIONSREACHED",
        "not_supported" => "E_PROXY_NOTSUPPORTED",
        "capability_mismatch" => "E_PROXY_CAPABILITYMISMATCH",
        "quarantine_access_denied" => "E_PROXY_QUARANTINE_ACCESSDENIED",
        "no_cert_available" => "E_PROXY_NOCERTAVAILABLE",
        "session_timeout" => "E_PROXY_SESSIONTIMEOUT",
        "cookie_bad_packet" => "E_PROXY_COOKIE_BADPACKET",
        "cookie_authentication_access_denied" => "E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED",
        "unsupported_authentication_method" => "E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD",
        "reauth_authn_failed" => "E_PROXY_REAUTH_AUTHN_FAILED",
        "reauth_cap_failed" => "E_PROXY_REAUTH_CAP_FAILED",
        "reauth_rap_failed" => "E_PROXY_REAUTH_RAP_FAILED",
        "sdr_not_supported_by_ts" => "E_PROXY_SDR_NOT_SUPPORTED_BY_TS",
        "reauth_nap_failed" => "E_PROXY_REAUTH_NAP_FAILED",
        "graceful_disconnect" => "ERROR_GRACEFUL_DISCONNECT",
        "connection_aborted" => "ERROR_CONNECTION_ABORTED",
        _ => return None,
    })
}

/// The name of a result, in either form (full HRESULT or its low 16 bits);
/// `None` for S_OK and for values without a name.
pub fn result_name(code: u32) -> Option<&'static str> {
    if code == 0 {
        return None;
    }
    RESULTS
        .iter()
        .find(|r| r.0 == code || (code >> 16 == 0 && r.0 & 0xFFFF == code))
        .map(|r| r.1)
}

/// Does the code say the step failed? A full HRESULT with the severity bit
/// set, or an HRESULT_CODE form that names a failure.
pub fn failed(code: u32) -> bool {
    code & 0x8000_0000 != 0 || (code != 0 && code >> 16 == 0 && result_name(code).is_some())
}

/// What one HTTP_PACKET says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    HandshakeRequest {
        ext_auth: Option<u16>,
    },
    HandshakeResponse {
        error: Option<u32>,
        ext_auth: Option<u16>,
    },
    ExtendedAuth,
    TunnelCreate {
        caps: Option<u32>,
    },
    TunnelResponse {
        status: Option<u32>,
        tunnel_id: Option<u32>,
        caps: Option<u32>,
    },
    TunnelAuth,
    TunnelAuthResponse {
        error: Option<u32>,
        /// The idle timeout the gateway announced, the number as sent
        /// (minutes per MS-TSGU 2.2.10.16; not checked on a Windows
        /// gateway here), 0 for none.
        idle_timeout: Option<u32>,
    },
    ChannelCreate {
        /// The first resource: the target RDP server's name.
        target: Option<String>,
        port: Option<u16>,
    },
    ChannelResponse {
        error: Option<u32>,
    },
    /// The inner RDP byte stream (`data` is a range of the packet).
    Data {
        data: std::ops::Range<usize>,
    },
    ServiceMessage,
    Reauth,
    Keepalive,
    Close {
        status: Option<u32>,
    },
    CloseResponse {
        status: Option<u32>,
    },
    Unknown(u16),
}

fn le16(b: &[u8], r: std::ops::Range<usize>) -> Option<u16> {
    b.get(r).map(|x| u16::from_le_bytes([x[0], x[1]]))
}

fn le32(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    b.get(r)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// The header at the start of `b`: (type, packet length). The length
/// includes the header and is at least 8 and at most [`MAX_PACKET`].
pub fn header(b: &[u8]) -> Result<(u16, usize), Error> {
    if b.len() < field::HEADER_LEN {
        return Err(Error::need_more(Layer::Tsgu, field::HEADER_LEN));
    }
    let typ = le16(b, field::PACKET_TYPE).unwrap_or(0);
    let len = le32(b, field::PACKET_LENGTH).unwrap_or(0) as usize;
    if len < field::HEADER_LEN {
        return Err(Error::malformed(
            Layer::Tsgu,
            field::PACKET_LENGTH.start,
            format!("packetLength {len} is shorter than the 8-byte header"),
        ));
    }
    if len > MAX_PACKET {
        return Err(Error::malformed(
            Layer::Tsgu,
            field::PACKET_LENGTH.start,
            format!("packetLength {len} is over {MAX_PACKET} bytes"),
        ));
    }
    Ok((typ, len))
}

/// UTF-16LE up to a NUL or the end, at most `max` characters.
fn utf16(b: &[u8], max: usize) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .take(max)
        .collect();
    String::from_utf16_lossy(&units).replace(|c: char| c.is_control(), " ")
}

/// One whole HTTP_PACKET (exactly `header`'s length of bytes, or more:
/// the rest is ignored).
pub fn parse(b: &[u8]) -> Result<Packet, Error> {
    let (typ, len) = header(b)?;
    if b.len() < len {
        return Err(Error::need_more(Layer::Tsgu, len));
    }
    let p = &b[..len];
    Ok(match typ {
        HANDSHAKE_REQUEST => Packet::HandshakeRequest {
            ext_auth: le16(p, field::HQ_EXT_AUTH),
        },
        HANDSHAKE_RESPONSE => Packet::HandshakeResponse {
            error: le32(p, field::HS_ERROR),
            ext_auth: le16(p, field::HS_EXT_AUTH),
        },
        EXTENDED_AUTH_MSG => Packet::ExtendedAuth,
        TUNNEL_CREATE => Packet::TunnelCreate {
            caps: le32(p, field::TC_CAPS),
        },
        TUNNEL_RESPONSE => {
            let fields = le16(p, field::TR_FIELDS).unwrap_or(0);
            let mut o = field::TR_OPTIONAL;
            let mut take = |bit: u16| {
                (fields & bit != 0).then(|| {
                    let v = le32(p, o..o + 4);
                    o += 4;
                    v
                })?
            };
            let tunnel_id = take(0x1);
            let caps = take(0x2);
            Packet::TunnelResponse {
                status: le32(p, field::TR_STATUS),
                tunnel_id,
                caps,
            }
        }
        TUNNEL_AUTH => Packet::TunnelAuth,
        TUNNEL_AUTH_RESPONSE => {
            let fields = le16(p, field::TA_FIELDS).unwrap_or(0);
            let o = field::TA_OPTIONAL + if fields & 0x1 != 0 { 4 } else { 0 };
            Packet::TunnelAuthResponse {
                error: le32(p, field::TA_ERROR),
                idle_timeout: (fields & 0x2 != 0).then(|| le32(p, o..o + 4)).flatten(),
            }
        }
        CHANNEL_CREATE => {
            let has = p.get(field::CC_NUM_RESOURCES).is_some_and(|&n| n > 0);
            let target = has
                .then(|| {
                    let n = le16(p, field::CC_NAMES..field::CC_NAMES + 2)? as usize;
                    let s = field::CC_NAMES + 2;
                    Some(utf16(p.get(s..s.checked_add(n)?)?, 256))
                })
                .flatten();
            Packet::ChannelCreate {
                target,
                port: le16(p, field::CC_PORT),
            }
        }
        CHANNEL_RESPONSE => Packet::ChannelResponse {
            error: le32(p, field::CR_ERROR),
        },
        DATA => {
            let n = le16(p, field::DATA_LEN).ok_or_else(|| {
                Error::malformed(
                    Layer::Tsgu,
                    field::DATA_LEN.start,
                    "a DATA packet without cbDataLen",
                )
            })? as usize;
            if field::DATA + n > len {
                return Err(Error::malformed(
                    Layer::Tsgu,
                    field::DATA_LEN.start,
                    format!(
                        "cbDataLen {n} overruns the packet ({} bytes after the header)",
                        len - field::HEADER_LEN
                    ),
                ));
            }
            Packet::Data {
                data: field::DATA..field::DATA + n,
            }
        }
        SERVICE_MESSAGE => Packet::ServiceMessage,
        REAUTH_MESSAGE => Packet::Reauth,
        KEEPALIVE => Packet::Keepalive,
        CLOSE_CHANNEL => Packet::Close {
            status: le32(p, field::CLOSE_STATUS),
        },
        CLOSE_CHANNEL_RESPONSE => Packet::CloseResponse {
            status: le32(p, field::CLOSE_STATUS),
        },
        t => Packet::Unknown(t),
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn packet(typ: u16, body: &[u8]) -> Vec<u8> {
        let mut v = typ.to_le_bytes().to_vec();
        v.extend([0, 0]);
        v.extend(((8 + body.len()) as u32).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// TUNNEL_AUTH_RESPONSE: errorCode, fieldsPresent REDIR_FLAGS |
    /// IDLE_TIMEOUT, reserved, redirFlags, idleTimeout 30 (as rdpgw writes
    /// it).
    fn tunnel_auth_response(error: u32) -> Vec<u8> {
        let mut b = error.to_le_bytes().to_vec();
        b.extend(3u16.to_le_bytes());
        b.extend([0, 0]);
        b.extend(0x8000_0000u32.to_le_bytes());
        b.extend(30u32.to_le_bytes());
        packet(TUNNEL_AUTH_RESPONSE, &b)
    }

    #[test]
    fn tunnel_auth_response_names_its_error_and_idle_timeout() {
        let p = tunnel_auth_response(0x8007_59DA);
        assert_eq!(
            parse(&p).unwrap(),
            Packet::TunnelAuthResponse {
                error: Some(0x8007_59DA),
                idle_timeout: Some(30)
            }
        );
        assert_eq!(result_name(0x8007_59DA), Some("rap_access_denied"));
        // One byte short of the packet: more is needed, nothing is guessed.
        let e = parse(&p[..p.len() - 1]).unwrap_err();
        assert!(e.is_need_more());
        // One byte short of the header.
        assert!(header(&p[..7]).unwrap_err().is_need_more());
        // Without the IDLE_TIMEOUT bit the value is not read.
        let mut q = p.clone();
        q[12] = 1;
        assert!(matches!(
            parse(&q).unwrap(),
            Packet::TunnelAuthResponse {
                idle_timeout: None,
                ..
            }
        ));
    }

    #[test]
    fn results_match_in_both_forms() {
        assert_eq!(result_name(0x59DD), Some("ts_connect_failed"));
        assert_eq!(result_name(0x8007_59DD), Some("ts_connect_failed"));
        assert!(failed(0x8007_59DD) && failed(0x59DD));
        assert!(!failed(0));
        assert_eq!(result_name(0), None);
        assert_eq!(result_name(0x8007_0005), None);
        assert!(failed(0x8007_0005));
        assert_eq!(result_name(0x4CA), Some("graceful_disconnect"));
    }

    #[test]
    fn channel_create_names_the_target() {
        let name: Vec<u8> = "rdp-host.example.test\0"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let mut b = vec![1, 0];
        b.extend(3389u16.to_le_bytes());
        b.extend(3u16.to_le_bytes());
        b.extend((name.len() as u16).to_le_bytes());
        b.extend(&name);
        let p = packet(CHANNEL_CREATE, &b);
        assert_eq!(
            parse(&p).unwrap(),
            Packet::ChannelCreate {
                target: Some("rdp-host.example.test".into()),
                port: Some(3389)
            }
        );
        // A name length one past the packet: the name is dropped, no panic.
        let mut q = p.clone();
        q[14] += 1;
        assert_eq!(
            parse(&q).unwrap(),
            Packet::ChannelCreate {
                target: None,
                port: Some(3389)
            }
        );
    }

    #[test]
    fn data_carries_the_inner_stream_and_its_length_is_checked() {
        let inner = [0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0];
        let mut b = (inner.len() as u16).to_le_bytes().to_vec();
        b.extend(inner);
        let p = packet(DATA, &b);
        let Packet::Data { data } = parse(&p).unwrap() else {
            panic!()
        };
        assert_eq!(&p[data], &inner);
        // cbDataLen one past the packet: malformed, at the length field.
        let mut q = p.clone();
        q[8] += 1;
        let e = parse(&q).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Tsgu, 8));
        assert!(!e.is_need_more());
    }

    #[test]
    fn lengths_are_bounded() {
        let mut p = packet(KEEPALIVE, &[]);
        assert_eq!(parse(&p).unwrap(), Packet::Keepalive);
        p[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(header(&p).unwrap_err().offset, 4);
        p[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!header(&p).unwrap_err().is_need_more());
        assert_eq!(type_name(KEEPALIVE), Some("keepalive"));
    }

    #[test]
    fn tunnel_response_optional_fields_in_order() {
        let mut b = 1u16.to_le_bytes().to_vec();
        b.extend(0u32.to_le_bytes());
        b.extend(3u16.to_le_bytes());
        b.extend([0, 0]);
        b.extend(7u32.to_le_bytes());
        b.extend(0x3fu32.to_le_bytes());
        let p = packet(TUNNEL_RESPONSE, &b);
        assert_eq!(
            parse(&p).unwrap(),
            Packet::TunnelResponse {
                status: Some(0),
                tunnel_id: Some(7),
                caps: Some(0x3f)
            }
        );
        // Cut inside the caps field: the tunnel id is kept.
        let mut q = p[..p.len() - 2].to_vec();
        let n = q.len() as u32;
        q[4..8].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            parse(&q).unwrap(),
            Packet::TunnelResponse {
                status: Some(0),
                tunnel_id: Some(7),
                caps: None
            }
        );
    }
}
