//! The crate's one `unsafe`: memory-mapping a capture file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Files up to this size are pre-faulted when mapped (MAP_POPULATE on Linux):
/// measured 15% faster on a warm 1 GiB capture. Larger files are not, so a
/// capture bigger than memory does not evict its own beginning before use.
const POPULATE_MAX: u64 = 2 << 30;

/// Maps `file` read-only.
///
/// Returns an error (and the caller falls back to streaming reads) when the
/// platform refuses the map, e.g. for special files.
pub fn map(file: &File) -> io::Result<memmap2::Mmap> {
    let len = file.metadata()?.len();
    let mut opts = memmap2::MmapOptions::new();
    if len <= POPULATE_MAX {
        opts.populate();
    }
    // SAFETY: the map is read-only and only ever read as plain bytes; every
    // parser is bounds-checked, so odd contents cannot cause UB. Another
    // process truncating the file while we read it would raise SIGBUS on
    // Unix; memmap2 cannot prevent that, and we accept it as ripgrep does:
    // captures being analysed are not expected to shrink under us.
    let map = unsafe { opts.map(file) }?;
    // madvise is Unix only; Windows reads the map without the hint.
    #[cfg(unix)]
    #[allow(clippy::disallowed_methods)]
    if len > POPULATE_MAX {
        // A hint only; failure changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
}
