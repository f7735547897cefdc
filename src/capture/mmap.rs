//! The crate's one `unsafe`: memory-mapping a capture file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Maps `file` read-only.
///
/// Returns an error (and the caller falls back to streaming reads) when the
/// platform refuses the map, e.g. for special files.
pub fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and only ever read as plain bytes; every
    // parser is bounds-checked, so odd contents cannot cause UB. Another
    // process truncating the file while we read it would raise SIGBUS on
    // Unix; memmap2 cannot prevent that, and we accept it as ripgrep does:
    // captures being analysed are not expected to shrink under us.
    unsafe { memmap2::MmapOptions::new().map(file) }
}
