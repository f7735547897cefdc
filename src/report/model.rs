//! The report's public contract: findings and attempts (see docs/findings.md).

pub use crate::finding::{
    rfc3339, ClientError, Code, Confidence, Draft, Level, Outcome, Phase, Severity,
};

/// One finding, as the reports print it: a detector's draft placed in a
/// capture, an attempt and a pair of endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub capture: String,
    /// `#N`, or empty when the finding belongs to no attempt.
    pub attempt: String,
    pub client: String,
    pub server: String,
    pub draft: Draft,
}

/// A finding reads as its draft (`f.code`, `f.severity`, …).
impl std::ops::Deref for Finding {
    type Target = Draft;
    fn deref(&self) -> &Draft {
        &self.draft
    }
}

/// One connection attempt, as the attempts report prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attempt {
    pub capture: String,
    pub attempt: String,
    pub client: String,
    pub server: String,
    pub transport: String,
    pub start: i64,
    pub end: i64,
    pub packets: u64,
    pub bytes: u64,
    pub outcome: Outcome,
    pub failed_phase: Option<Phase>,
    /// The finding that names what happened (empty: nothing to say).
    pub verdict: String,
    /// How the application was recognised (`rdp`, `rdp via socks5`, …).
    pub app: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// TCP connections / UDP conversations grouped into this attempt.
    pub connections: u32,
    /// `direct`, or the RD Gateway transport: `gateway-http`,
    /// `gateway-ws`, `gateway-rpc`, `gateway-wst` (`gateway` when the
    /// legs could not be read).
    pub via: String,
    /// The gateway's address and port (empty for a direct connection).
    pub gateway: String,
    /// Connections to the gateway (IN and OUT channels, KDC proxy calls).
    pub legs: u32,
    /// What the client asked for: SNI, routing token or `--target`.
    pub target: String,
    /// The `Cookie: mstshash=` user name.
    pub user: String,
    /// RDP protocols requested and selected (`SSL|HYBRID`, `HYBRID`), or
    /// the failure the server answered with.
    pub requested: String,
    pub selected: String,
    pub tls_version: String,
    pub tls_cipher: String,
    pub cert_subject: String,
    /// Certificate notAfter, RFC 3339, empty when not seen.
    pub cert_not_after: String,
    /// Does the evidence fit the client's 0x904 / 0x7: yes | no | unknown.
    /// Deprecated by `client_error`.
    pub fits_0x904: &'static str,
    /// The error dialog the client shows for this attempt, when known.
    pub client_error: Option<ClientError>,
    /// From a plaintext MCS Connect Initial (Standard RDP Security): the
    /// client's computer name, build number and static channels (`;`).
    pub client_name: String,
    pub client_build: String,
    pub channels: String,
    /// Standard RDP Security encryption: `128bit, client compatible`.
    pub rdp_encryption: String,
    /// Per connection (` | ` between them): the phases with their frames
    /// and who ended it (docs/findings.md).
    pub timeline: String,
}

/// Everything found in one capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureReport {
    pub capture: String,
    pub frames: u64,
    pub attempts: Vec<Attempt>,
    pub findings: Vec<Finding>,
    /// Set when the file could not be read (fully).
    pub error: Option<String>,
    /// Rows of a file still being judged, handed out early (in order): more
    /// follow, then the file's own report with the rest (its frames,
    /// error and capture findings). Counts and totals add up across them.
    pub partial: bool,
    /// Members of an archive that are not captures (the archive's own
    /// report, `partial` when its captures had theirs).
    pub skipped: usize,
}

impl CaptureReport {
    /// Each attempt with its findings (in report order), then the findings
    /// that belong to no attempt here (the capture's own): how the JSON
    /// `all` view and the terminal report walk a report.
    pub fn grouped(&self) -> (Vec<(&Attempt, Vec<&Finding>)>, Vec<&Finding>) {
        let mut of: std::collections::HashMap<&str, Vec<&Finding>> =
            std::collections::HashMap::new();
        let ids: std::collections::HashSet<&str> =
            self.attempts.iter().map(|a| a.attempt.as_str()).collect();
        let mut rest = Vec::new();
        for f in &self.findings {
            if ids.contains(f.attempt.as_str()) {
                of.entry(f.attempt.as_str()).or_default().push(f);
            } else {
                rest.push(f);
            }
        }
        let attempts = self
            .attempts
            .iter()
            .map(|a| (a, of.remove(a.attempt.as_str()).unwrap_or_default()))
            .collect();
        (attempts, rest)
    }
}
