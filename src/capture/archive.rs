//! Captures inside archives: `.tar` (also gzip- or zstd-compressed: `.tar.gz`,
//! `.tgz`, `.tar.zst`) and `.zip`, read in place: nothing is extracted to
//! disk. A thread reads the archive in order and hands out its members one
//! at a time, each as a stream ([`Source::from_reader`] decompresses a
//! `.pcap.gz` member too); the reader of a member may stop early, and the
//! archive goes on with the next.
//!
//! The tar and zip formats are read by the `tar` and `zip` crates.

use super::source::{decompressed, read_full, Compression, Source};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// How an archive is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tar stream, possibly gzip- or zstd-compressed.
    Tar,
    Zip,
}

/// Bytes handed to a member's reader at a time.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the archive's thread and a member's reader.
const IN_FLIGHT: usize = 4;
/// Longest member name kept (a hostile archive's names are bounded).
const MAX_NAME: usize = 4096;

/// Archive file names, by extension.
pub fn has_archive_extension(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.zst",
        ".tzst",
        ".tar.zstd",
        ".zip",
    ]
    .iter()
    .any(|e| n.ends_with(e))
}

/// Whether `head` (the first bytes, decompressed) starts an archive.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Kind::Zip);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Some(Kind::Tar);
    }
    None
}

/// What an archive file is, by its content: zip by its first bytes, tar by
/// the `ustar` mark of its first header (after gzip or zstd). `None` for
/// anything else (a capture, a compressed capture).
pub fn kind_of(path: &Path) -> io::Result<Option<Kind>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_full(&mut f, &mut head)?;
    if let Some(k) = sniff(&head[..n]) {
        return Ok(Some(k));
    }
    if super::is_capture_magic(&head[..n]) {
        return Ok(None);
    }
    let mut src = match Compression::sniff(&head[..n]) {
        Compression::None => Source::open(path)?,
        _ => Source::from_reader(Box::new(File::open(path)?))?,
    };
    // A damaged compressed file is not an archive here; it fails later as
    // whatever it turns out to be.
    if src.fill(512).is_err() {
        return Ok(None);
    }
    Ok(sniff(src.window()))
}

/// One thing found in an archive, in the archive's order.
pub enum Item {
    /// A capture (by extension or content): its path inside the archive
    /// and its bytes as a stream.
    Member { name: String, reader: MemberReader },
    /// A member that is not a capture (or not a file), by name.
    Skipped { name: String },
    /// The archive cannot be read further.
    Error(String),
}

/// A member's bytes, as the archive's thread reads them.
pub struct MemberReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The member ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The members of an archive, read on a thread of their own. Dropping it
/// stops the thread at its next member.
pub struct Members {
    rx: Receiver<Item>,
}

impl Iterator for Members {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        self.rx.recv().ok()
    }
}

/// Opens an archive and starts reading its members.
pub fn members(path: &Path, kind: Kind) -> io::Result<Members> {
    let file = File::open(path)?;
    // One item at a time: a member is handed out only when the previous
    // one was read (tar is read in order).
    let (tx, rx) = sync_channel::<Item>(0);
    std::thread::Builder::new()
        .name("rdpsift-archive".into())
        .spawn(move || {
            let r = match kind {
                Kind::Tar => tar_members(file, &tx),
                Kind::Zip => zip_members(file, &tx),
            };
            if let Err(e) = r {
                let what = match kind {
                    Kind::Tar => "tar archive",
                    Kind::Zip => "zip archive",
                };
                let _ = tx.send(Item::Error(format!("cannot read this {what} further: {e}")));
            }
        })?;
    Ok(Members { rx })
}

/// A name as the report shows it (bounded, `/` separators).
fn clean(name: &str) -> String {
    let name = name.trim_start_matches("./");
    let mut n: String = name.chars().take(MAX_NAME).collect();
    if n.len() < name.len() {
        n.push('\u{2026}');
    }
    n.replace('\\', "/")
}

/// Hands out one member: a capture by extension or by its first bytes
/// (plain or compressed), else skipped. Returns false when the reader of
/// the items is gone.
fn hand_out(name: &str, mut r: impl Read, tx: &SyncSender<Item>) -> bool {
    let name = clean(name);
    let mut head = [0u8; 4];
    let n = match read_full(&mut r, &mut head) {
        Ok(n) => n,
        Err(e) => return tx.send(Item::Error(format!("member {name}: {e}"))).is_ok(),
    };
    let head = &head[..n];
    let capture = super::has_capture_extension(&name)
        || super::is_capture_magic(head)
        || Compression::sniff(head) != Compression::None && !has_archive_extension(&name);
    if !capture {
        return tx.send(Item::Skipped { name }).is_ok();
    }
    let (ctx, crx) = sync_channel(IN_FLIGHT);
    let reader = MemberReader {
        rx: crx,
        chunk: head.to_vec(),
        at: 0,
    };
    if tx.send(Item::Member { name, reader }).is_err() {
        return false;
    }
    // Pumped until the member ends or its reader stops reading.
    loop {
        let mut buf = vec![0u8; CHUNK];
        match read_full(&mut r, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                buf.truncate(n);
                if ctx.send(Ok(buf)).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = ctx.send(Err(e));
                break;
            }
        }
    }
    true
}

/// A member that is not a directory: a file is handed out, anything else
/// (a link, a device) is skipped. False when the reader of the items is
/// gone.
fn member(name: &str, file: bool, r: impl Read, tx: &SyncSender<Item>) -> bool {
    if file {
        hand_out(name, r, tx)
    } else {
        tx.send(Item::Skipped { name: clean(name) }).is_ok()
    }
}

fn tar_members(file: File, tx: &SyncSender<Item>) -> io::Result<()> {
    let inner = decompressed(Box::new(file))?;
    let mut a = tar::Archive::new(inner);
    for e in a.entries()? {
        let e = e?;
        let name = String::from_utf8_lossy(&e.path_bytes()).to_string();
        let kind = e.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !member(&name, kind.is_file(), e, tx) {
            break;
        }
    }
    Ok(())
}

fn zip_members(file: File, tx: &SyncSender<Item>) -> io::Result<()> {
    let mut z = zip::ZipArchive::new(BufReader::new(file)).map_err(io::Error::other)?;
    for i in 0..z.len() {
        let name = z.name_for_index(i).unwrap_or("?").to_string();
        let e = match z.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                // One unreadable member (encrypted, an unsupported method)
                // does not end the archive.
                if tx
                    .send(Item::Error(format!("member {}: {e}", clean(&name))))
                    .is_err()
                {
                    break;
                }
                continue;
            }
        };
        if e.is_dir() {
            continue;
        }
        let file = e.is_file();
        if !member(&name, file, e, tx) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn archives_are_known_by_extension_and_content() {
        assert!(has_archive_extension("site3/Edge.TGZ"));
        assert!(has_archive_extension("a.tar.zst"));
        assert!(!has_archive_extension("a.pcap.gz"));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Kind::Zip));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Kind::Tar));
        // One byte short of the mark, or one byte changed: not a tar.
        assert_eq!(sniff(&tar[..261]), None);
        tar[258] = b'X';
        assert_eq!(sniff(&tar), None);
    }

    #[test]
    fn long_member_names_are_bounded() {
        let n = clean(&"a".repeat(10_000));
        assert_eq!(n.chars().count(), MAX_NAME + 1);
        assert_eq!(clean("dir\\x.pcap"), "dir/x.pcap");
        assert_eq!(clean("./site3/edge.pcap"), "site3/edge.pcap");
    }
}
