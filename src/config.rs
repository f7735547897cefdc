//! Thresholds and bounds, with their defaults (documented in docs/THRESHOLDS.md).

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Config {
    /// Extra TCP/UDP ports whose flows are relevant and reported (`--port`).
    pub ports: BTreeSet<u16>,
    /// Handshake phase without progress for this long: `tcp.stalled`.
    pub stall_ns: i64,
    /// SYN unanswered this long (or retried): `tcp.syn_unanswered`.
    pub syn_timeout_ns: i64,
    /// Retransmission rate above which `tcp.retransmissions` is reported…
    pub retrans_rate: f64,
    /// …when at least this many data segments were retransmitted.
    pub retrans_min: u64,
    /// A handshake segment sent this many times is reported regardless.
    pub handshake_resends: u32,
    /// Bytes per direction counted as "handshake" before bulk data.
    pub handshake_bytes: u64,
    /// Reassembly depth per direction (bytes handed to parsers).
    pub depth: u64,
    /// Flows tracked at once per file (bound; hitting it is reported).
    pub max_flows: usize,
    /// Relevant flow records kept per file for the report.
    pub max_records: usize,
    /// An open TCP flow idle this long is finished (and a closed one after
    /// `closed_linger_ns`).
    pub idle_ns: i64,
    pub closed_linger_ns: i64,
    /// `--target NAME|ADDR`: the server the user tried to reach.
    pub target: Option<String>,
    /// `--gateway HOST`: RD Gateways by name or address (lower case).
    pub gateways: Vec<String>,
    /// A client's connections to one server this close together (end of
    /// one to start of the next) form one attempt when the earlier failed.
    pub attempt_window_ns: i64,
    /// Attempts (or their connections) judged at a time once a file is
    /// read; their rows are written before the next chunk is judged. Does
    /// not change the output (tests set it to 1).
    pub attempt_chunk: usize,
    /// Frames between two checkpoints, where the attempts nothing later
    /// can join are judged and written (a multiple of 4,096, or less; there
    /// is one at every sweep of all parts, each 64 Ki frames, too; 0: none,
    /// attempts are decided once the file is read). Does not change the
    /// output when no bound is hit (tests set it to 8 and 0).
    pub checkpoint_frames: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ports: BTreeSet::new(),
            target: None,
            gateways: Vec::new(),
            attempt_window_ns: 30_000_000_000,
            stall_ns: 20_000_000_000,
            syn_timeout_ns: 3_000_000_000,
            retrans_rate: 0.03,
            retrans_min: 4,
            handshake_resends: 3,
            handshake_bytes: 64 << 10,
            depth: 1 << 20,
            max_flows: 1_000_000,
            max_records: 1_000_000,
            idle_ns: 600_000_000_000,
            closed_linger_ns: 5_000_000_000,
            attempt_chunk: 4096,
            checkpoint_frames: 65536,
        }
    }
}

/// Ports that make a flow relevant by themselves.
pub mod port {
    pub const RDP: u16 = 3389;
    pub const GATEWAY_UDP: u16 = 3391;
    pub const HTTPS: u16 = 443;
    pub const DNS: u16 = 53;
    pub const KERBEROS: u16 = 88;
}
