//! WebSocket frames (RFC 6455 §5.2), as the RD Gateway's WebSocket
//! transport carries MS-TSGU HTTP_PACKETs after `RDG_OUT_DATA` + `101
//! Switching Protocols` (PROTOCOLS.md §4): binary frames, client frames
//! masked, ping/pong, close with a status code and reason. The header is
//! read on its own ([`header`]) so a stream can follow frames whose
//! payloads it does not keep; a 2^63 payload length is a length to report,
//! never an allocation.

/// Byte layout of the fixed part (RFC 6455 §5.2).
pub mod field {
    /// FIN (0x80), RSV1-3 (0x70), opcode (0x0F).
    pub const FLAGS: usize = 0;
    /// MASK (0x80), payload length 0–125, 126 (u16 follows), 127 (u64).
    pub const LEN: usize = 1;
    pub const EXT: usize = 2;
    pub const MASK_KEY_LEN: usize = 4;
    /// Close frames: status code (u16 BE), then a UTF-8 reason.
    pub const CLOSE_CODE_LEN: usize = 2;
}

use super::error::{Error, Layer};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// Header bytes (2 to 14).
    pub header_len: usize,
    /// Payload bytes as the frame declares them (up to 2^63 - 1).
    pub payload_len: u64,
}

impl Header {
    /// The whole frame's length, when it fits in memory's numbers.
    pub fn frame_len(&self) -> Option<usize> {
        usize::try_from(self.payload_len)
            .ok()?
            .checked_add(self.header_len)
    }

    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

pub fn opcode_name(op: u8) -> &'static str {
    match op {
        CONTINUATION => "continuation",
        TEXT => "text",
        BINARY => "binary",
        CLOSE => "close",
        PING => "ping",
        PONG => "pong",
        _ => "reserved",
    }
}

/// The frame header at the start of `b`.
pub fn header(b: &[u8]) -> Result<Header, Error> {
    let need = |n| Err(Error::need_more(Layer::WebSocket, n));
    if b.len() < 2 {
        return need(2);
    }
    let flags = b[field::FLAGS];
    let opcode = flags & 0x0F;
    if flags & 0x70 != 0 {
        return Err(Error::malformed(
            Layer::WebSocket,
            field::FLAGS,
            format!(
                "reserved bits 0x{:02x} set (no extension was negotiated)",
                flags & 0x70
            ),
        ));
    }
    if matches!(opcode, 0x3..=0x7 | 0xB..=0xF) {
        return Err(Error::malformed(
            Layer::WebSocket,
            field::FLAGS,
            format!("reserved opcode 0x{opcode:x}"),
        ));
    }
    let masked = b[field::LEN] & 0x80 != 0;
    let (payload_len, ext) = match b[field::LEN] & 0x7F {
        126 => {
            let Some(x) = b.get(field::EXT..field::EXT + 2) else {
                return need(field::EXT + 2);
            };
            (u16::from_be_bytes([x[0], x[1]]) as u64, 2)
        }
        127 => {
            let Some(x) = b.get(field::EXT..field::EXT + 8) else {
                return need(field::EXT + 8);
            };
            let v = u64::from_be_bytes(x.try_into().unwrap_or([0; 8]));
            if v >> 63 != 0 {
                return Err(Error::malformed(
                    Layer::WebSocket,
                    field::EXT,
                    "a 64-bit payload length with its most significant bit set",
                ));
            }
            (v, 8)
        }
        n => (n as u64, 0),
    };
    let header_len = field::EXT + ext + if masked { field::MASK_KEY_LEN } else { 0 };
    if b.len() < header_len {
        return need(header_len);
    }
    let mask = masked.then(|| {
        let o = field::EXT + ext;
        [b[o], b[o + 1], b[o + 2], b[o + 3]]
    });
    let h = Header {
        fin: flags & 0x80 != 0,
        opcode,
        mask,
        header_len,
        payload_len,
    };
    if h.is_control() && (!h.fin || payload_len > 125) {
        return Err(Error::malformed(
            Layer::WebSocket,
            field::LEN,
            format!(
                "a {} frame {} (control frames are whole and at most 125 bytes)",
                opcode_name(opcode),
                if h.fin {
                    format!("of {payload_len} bytes")
                } else {
                    "fragmented".to_string()
                }
            ),
        ));
    }
    Ok(h)
}

/// Unmasks `payload` in place (RFC 6455 §5.3), `offset` bytes into it.
pub fn unmask(payload: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// A close frame's status code and reason (unmasked payload).
pub fn close_reason(payload: &[u8]) -> (Option<u16>, String) {
    let code = payload
        .get(..field::CLOSE_CODE_LEN)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    let reason = payload
        .get(field::CLOSE_CODE_LEN..)
        .map(|r| String::from_utf8_lossy(&r[..r.len().min(123)]).into_owned())
        .unwrap_or_default();
    (code, reason.replace(|c: char| c.is_control(), " "))
}

/// The name of a close status code (RFC 6455 §7.4.1).
pub fn close_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1015 => "TLS handshake",
        _ => return None,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    /// A masked client binary frame of 5 bytes (RFC 6455 §5.7's "Hello",
    /// masked with 37 fa 21 3d, as a binary frame).
    const MASKED: [u8; 11] = [
        0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    #[test]
    fn a_masked_binary_frame() {
        let h = header(&MASKED).unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.header_len, h.payload_len),
            (true, BINARY, 6, 5)
        );
        assert_eq!(h.frame_len(), Some(11));
        let mut p = MASKED[6..].to_vec();
        unmask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(&p, b"Hello");
        // One byte short of the masking key: more is needed.
        assert!(header(&MASKED[..5]).unwrap_err().is_need_more());
        // A reserved bit changed: malformed at the first byte.
        let mut q = MASKED;
        q[0] |= 0x40;
        let e = header(&q).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::WebSocket, 0));
    }

    #[test]
    fn extended_lengths_are_lengths_not_allocations() {
        let h = header(&[0x82, 126, 0x01, 0x00]).unwrap();
        assert_eq!((h.payload_len, h.header_len), (256, 4));
        let mut big = vec![0x82, 127];
        big.extend((1u64 << 62).to_be_bytes());
        let h = header(&big).unwrap();
        assert_eq!(h.payload_len, 1 << 62);
        big[2] = 0x80;
        assert!(!header(&big).unwrap_err().is_need_more());
        assert!(header(&[0x82, 127, 0, 0]).unwrap_err().is_need_more());
    }

    #[test]
    fn control_frames_are_whole_and_small() {
        // A close with 1000 and a reason.
        let mut f = vec![0x88, 7, 0x03, 0xe8];
        f.extend(b"bye!!");
        let h = header(&f).unwrap();
        assert_eq!(h.opcode, CLOSE);
        let (code, reason) = close_reason(&f[h.header_len..]);
        assert_eq!((code, reason.as_str()), (Some(1000), "bye!!"));
        assert_eq!(close_name(1000), Some("normal closure"));
        // A fragmented ping, and a 126-byte one: malformed.
        assert!(header(&[0x09, 0]).is_err());
        assert!(header(&[0x89, 126, 0, 126]).is_err());
        // A reserved opcode.
        assert!(header(&[0x83, 0]).is_err());
    }
}
