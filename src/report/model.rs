//! The report's public contract: findings and attempts (see docs/findings.md).

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    Medium,
    High,
}

/// Phases, in connection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Phase {
    #[serde(rename = "dns")]
    Dns,
    #[serde(rename = "tcp")]
    Tcp,
    #[serde(rename = "x224")]
    X224,
    #[serde(rename = "tls")]
    Tls,
    #[serde(rename = "nla")]
    Nla,
    #[serde(rename = "rdp")]
    Rdp,
    #[serde(rename = "gateway-http")]
    GatewayHttp,
    #[serde(rename = "gateway-tunnel")]
    GatewayTunnel,
    #[serde(rename = "udp")]
    Udp,
    #[serde(rename = "path")]
    Path,
    #[serde(rename = "capture")]
    Capture,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Tcp => "tcp",
            Phase::X224 => "x224",
            Phase::Tls => "tls",
            Phase::Nla => "nla",
            Phase::Rdp => "rdp",
            Phase::GatewayHttp => "gateway-http",
            Phase::GatewayTunnel => "gateway-tunnel",
            Phase::Udp => "udp",
            Phase::Path => "path",
            Phase::Capture => "capture",
        }
    }
}

/// How far to trust a finding, with the reason when not high.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confidence {
    pub level: Level,
    pub reason: String,
}

impl Confidence {
    pub fn high() -> Confidence {
        Confidence {
            level: Level::High,
            reason: String::new(),
        }
    }
    pub fn lowered(level: Level, reason: impl Into<String>) -> Confidence {
        Confidence {
            level,
            reason: reason.into(),
        }
    }
    /// "high", or "medium: reason".
    pub fn render(&self) -> String {
        let l = match self.level {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        };
        if self.reason.is_empty() {
            l.to_string()
        } else {
            format!("{l}: {}", self.reason)
        }
    }
}

/// One finding, as the reports print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub capture: String,
    /// `#N`, or empty when the finding belongs to no attempt.
    pub attempt: String,
    pub code: String,
    pub severity: Severity,
    pub phase: Phase,
    pub client: String,
    pub server: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Nanoseconds since the epoch (rendered RFC 3339 with microseconds).
    pub ts: i64,
    pub summary: String,
    pub cause: String,
    pub remedy: String,
    pub filter: String,
    pub confidence: Confidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Connected,
    Failed,
    #[default]
    Incomplete,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Failed => "failed",
            Outcome::Incomplete => "incomplete",
        }
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
    pub verdict: String,
    /// How the application was recognised (`rdp`, `rdp via socks5`, …).
    pub app: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// TCP connections / UDP conversations grouped into this attempt.
    pub connections: u32,
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
    pub fits_0x904: &'static str,
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
}

/// RFC 3339 UTC with microseconds, e.g. `2024-05-01T10:00:00.123456Z`.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_709_251_200_123_456_789),
            "2024-03-01T00:00:00.123456Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339(-1_000), "1969-12-31T23:59:59.999999Z");
    }
}
