//! Where capture bytes come from: a memory map (regular files) or a bounded
//! streaming window (standard input, pipes, `.gz` and `.zst` files).
//!
//! Either way the reader sees a *window*: a contiguous slice of the capture
//! starting at the first unconsumed byte. A map's window is the rest of the
//! file; a stream's window holds at most `max_window` bytes.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Magic numbers of the compressed formats we read as streams.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How much a stream reads at once, and the largest window it may grow to
/// (one record must fit; pcapng blocks over this are reported as too large).
pub const STREAM_CHUNK: usize = 4 << 20;
pub const MAX_WINDOW: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

pub enum Source {
    Map {
        map: memmap2::Mmap,
        pos: usize,
    },
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        eof: bool,
    },
}

impl Source {
    /// Opens a path; `-` is standard input. Compressed data is detected by
    /// content, not by extension.
    pub fn open(path: &Path) -> io::Result<Source> {
        if path.as_os_str() == "-" {
            return Source::from_reader(Box::new(io::stdin()));
        }
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::other("is a directory"));
        }
        let mut head = [0u8; 4];
        let n = read_full(&mut file, &mut head)?;
        let compression = Compression::sniff(&head[..n]);
        if compression == Compression::None && meta.is_file() {
            if let Ok(map) = super::mmap::map(&file) {
                return Ok(Source::Map { map, pos: 0 });
            }
        }
        // A stream goes on from the bytes sniffed: a pipe, a FIFO or
        // `/dev/stdin` cannot be opened again from the top.
        let head = io::Cursor::new(head[..n].to_vec());
        Source::from_reader(Box::new(head.chain(file)))
    }

    /// Wraps any reader, decompressing gzip or zstd when its first bytes say so.
    pub fn from_reader(reader: Box<dyn Read + Send>) -> io::Result<Source> {
        Ok(Source::Stream {
            reader: decompressed(reader)?,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        })
    }

    /// Bytes not yet consumed that are available now.
    pub fn window(&self) -> &[u8] {
        match self {
            Source::Map { map, pos } => &map[*pos..],
            Source::Stream {
                buf, start, end, ..
            } => &buf[*start..*end],
        }
    }

    pub fn consume(&mut self, n: usize) {
        match self {
            Source::Map { map, pos } => *pos = (*pos + n).min(map.len()),
            Source::Stream { start, end, .. } => *start = (*start + n).min(*end),
        }
    }

    /// A mapped file from its first byte again (a stream cannot be).
    pub fn rewound(self) -> Option<Source> {
        match self {
            Source::Map { map, .. } => Some(Source::Map { map, pos: 0 }),
            Source::Stream { .. } => None,
        }
    }

    /// True when no more bytes will ever arrive beyond the window.
    pub fn at_eof(&self) -> bool {
        match self {
            Source::Map { .. } => true,
            Source::Stream { eof, .. } => *eof,
        }
    }

    /// Reads more so that the window holds at least `want` bytes (or the
    /// stream ends). Returns `Err` with `InvalidData` when `want` exceeds
    /// [`MAX_WINDOW`]: a record that large is not a real packet.
    pub fn fill(&mut self, want: usize) -> io::Result<()> {
        let Source::Stream {
            reader,
            buf,
            start,
            end,
            eof,
        } = self
        else {
            return Ok(());
        };
        if want > MAX_WINDOW {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record of {want} bytes exceeds the {MAX_WINDOW}-byte limit"),
            ));
        }
        // Compact, then grow to at least `want` (and one chunk of read-ahead).
        if *start > 0 {
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
        }
        let target = want.clamp(STREAM_CHUNK, MAX_WINDOW);
        if buf.len() < target {
            buf.resize(target, 0);
        }
        let goal = want.max(STREAM_CHUNK.min(buf.len()));
        while *end < goal && !*eof {
            match reader.read(&mut buf[*end..]) {
                Ok(0) => *eof = true,
                Ok(n) => *end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `reader`, decompressed when its first bytes say gzip or zstd.
pub(crate) fn decompressed(reader: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    let head = io::BufRead::fill_buf(&mut reader)?.to_vec();
    Ok(match Compression::sniff(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        Compression::None => Box::new(reader),
    })
}

/// Reads until `buf` is full or the stream ends; the bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the first bytes of a file (decompressed if it is gzip/zstd) to decide
/// whether it holds a capture. Used when walking directories.
pub fn sniff_capture(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_full(&mut file, &mut head)?;
    match Compression::sniff(&head[..n]) {
        Compression::None => Ok(super::is_capture_magic(&head[..n])),
        _ => {
            let mut src = Source::from_reader(Box::new(File::open(path)?))?;
            if src.fill(4).is_err() {
                return Ok(false);
            }
            Ok(super::is_capture_magic(src.window()))
        }
    }
}
