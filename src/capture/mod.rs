//! capture: turns capture files (pcap, pcapng; mapped or streamed, plain or
//! compressed) into numbered frames with timestamps and link types.

pub mod archive;
mod mmap;
pub mod reader;
pub mod source;

pub use reader::Reader;
pub use source::Source;

use std::fmt;

/// A moment of the capture: a frame (1-based, Wireshark's numbering) and
/// its time (nanoseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub frame: u64,
    pub ts: i64,
}

/// Where a byte came from: the frame that carried it (or completed the unit
/// it belongs to) and its offset in the byte stream of its direction. Kept
/// through reassembly (and, later, decryption and gateway tunnels), so a
/// finding about an inner PDU still cites the outer frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub at: Mark,
    /// Offset of the byte in its direction's stream (0 = the first byte
    /// after the handshake, or the first byte captured mid-stream).
    pub offset: u64,
}

impl Pos {
    pub fn new(at: Mark, offset: u64) -> Pos {
        Pos { at, offset }
    }
}

/// One packet record, pointing into the reader's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// 1-based, in file order across sections, as Wireshark numbers frames.
    pub number: u64,
    /// Nanoseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// LINKTYPE_* value; `u32::MAX` when the interface is undefined.
    pub link: u32,
    /// Offset of the packet bytes in the window.
    pub off: usize,
    /// Captured length.
    pub len: u32,
    /// Length on the wire.
    pub orig_len: u32,
    pub iface: u32,
}

impl FrameMeta {
    pub fn data<'w>(&self, window: &'w [u8]) -> &'w [u8] {
        &window[self.off..self.off + self.len as usize]
    }
}

/// Things noticed while reading that are not fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEvent {
    /// The file ends in the middle of a record.
    Truncated { frame: u64, missing: u64 },
    /// A pcapng Decryption Secrets Block (kept for TLS decryption).
    /// `after`: the frames read before it (a stream's flows that began
    /// by then cannot use it).
    Secrets {
        kind: u32,
        data: Vec<u8>,
        after: u64,
    },
    /// Secrets over the bound were dropped.
    SecretsDropped { bytes: u64, blocks: u64 },
}

/// Why a capture could not be read (or stopped being readable).
#[derive(Debug)]
pub enum CaptureError {
    Io(std::io::Error),
    Empty,
    /// Not a capture; what it looks like instead, when its bytes say.
    NotCapture(Option<&'static str>),
    /// The file ends inside its header.
    Truncated,
    /// Invalid data at this frame (frame 0: in the file header).
    Corrupt {
        frame: u64,
        what: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "{e}"),
            CaptureError::Empty => write!(f, "empty file, not a capture"),
            CaptureError::NotCapture(None) => {
                write!(f, "not a pcap or pcapng capture (unknown magic number)")
            }
            CaptureError::NotCapture(Some(hint)) => {
                write!(f, "not a pcap or pcapng capture: {hint}")
            }
            CaptureError::Truncated => write!(f, "file ends inside the capture header"),
            CaptureError::Corrupt { frame: 0, what } => write!(f, "{what}"),
            CaptureError::Corrupt { frame, what } => write!(f, "frame {frame}: {what}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// What a file that is not a capture looks like, when its first bytes
/// say: an archive to unpack, or a Windows trace to convert.
pub fn not_capture_hint(head: &[u8], name: &str) -> Option<&'static str> {
    if head.starts_with(b"PK\x03\x04") {
        return Some(
            "a zip archive: archives are read from a file named on the command line or in a \
             folder, not from a pipe",
        );
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Some(
            "a tar archive: archives are read from a file named on the command line or in a \
             folder, not from a pipe",
        );
    }
    if name.to_ascii_lowercase().ends_with(".etl") {
        return Some(
            "an Event Trace Log (.etl, from pktmon or netsh trace); convert it first with \
             `pktmon etl2pcap FILE.etl --out FILE.pcapng` (Windows 10 2004 and later) or \
             Microsoft's etl2pcapng",
        );
    }
    None
}

/// pcap (both byte orders, µs/ns, modified) or pcapng magic.
pub fn is_capture_magic(head: &[u8]) -> bool {
    if head.len() < 4 {
        return false;
    }
    let m = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    matches!(
        m,
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0xa1b2_cd34 | 0x0A0D_0D0A
    )
}

/// File extensions that name captures when found in a directory.
pub fn has_capture_extension(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n
        .strip_suffix(".gz")
        .or_else(|| n.strip_suffix(".zst"))
        .unwrap_or(&n);
    [".pcap", ".pcapng", ".cap", ".dmp"]
        .iter()
        .any(|e| n.ends_with(e))
}
