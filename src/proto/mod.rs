//! proto: what the reassembled byte streams say. For now, recognising RDP
//! (and TLS/HTTP) by content; protocol parsers plug in here.

pub mod probe;

pub use probe::{AppClass, Via};

use crate::flow::reasm::Chunk;

/// Per-flow application state fed with the ordered client and server
/// streams. Holds at most [`probe::MAX_PROBE`] bytes while deciding.
#[derive(Debug, Default, Clone)]
pub struct App {
    pub class: AppClass,
    prefix: Vec<u8>,
    /// Bytes seen per direction (client, server) by the parsers.
    pub seen: [u64; 2],
}

impl App {
    /// True once nothing more is needed from the stream.
    pub fn done(&self) -> bool {
        self.class != AppClass::Unknown
    }

    pub fn feed(&mut self, dir: usize, chunk: Chunk<'_>) {
        match chunk {
            Chunk::Data(b) => {
                self.seen[dir] += b.len() as u64;
                if dir == 0 && self.class == AppClass::Unknown {
                    let room = probe::MAX_PROBE - self.prefix.len();
                    self.prefix.extend_from_slice(&b[..b.len().min(room)]);
                    self.class = probe::classify(&self.prefix);
                    if self.class == AppClass::Unknown && self.prefix.len() >= probe::MAX_PROBE {
                        self.class = AppClass::Other;
                    }
                    if self.done() {
                        self.prefix = Vec::new();
                    }
                }
            }
            Chunk::Gap(n) => {
                self.seen[dir] += n;
                if dir == 0 && self.class == AppClass::Unknown {
                    // Content after a hole cannot be matched from its start.
                    self.class = AppClass::Other;
                    self.prefix = Vec::new();
                }
            }
        }
    }
}
