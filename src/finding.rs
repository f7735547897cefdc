//! The finding vocabulary: what every stage says about a connection, and
//! nothing else. It depends on no other module of the crate, so the parsers,
//! the detectors, the session stage and the report all speak it without
//! importing one another: severity, phase, confidence, outcome, the side of
//! a connection ([`Dir`]), the typed finding [`Code`]s with their
//! [`Family`]s, and the [`Draft`] a detector emits.

use serde::Serialize;
use std::borrow::Cow;
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

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }
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
        if self.reason.is_empty() {
            self.level.name().to_string()
        } else {
            format!("{}: {}", self.level.name(), self.reason)
        }
    }
}

impl Default for Confidence {
    fn default() -> Self {
        Confidence::high()
    }
}

/// How an attempt ended.
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

/// A side of a connection: who sent a segment, a record, an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Dir {
    #[default]
    Client,
    Server,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::Client, Dir::Server];

    /// The other side.
    pub fn other(self) -> Dir {
        match self {
            Dir::Client => Dir::Server,
            Dir::Server => Dir::Client,
        }
    }

    /// 0 for the client, 1 for the server (the index of per-side arrays).
    pub fn idx(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Dir::Client => "client",
            Dir::Server => "server",
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<T> std::ops::Index<Dir> for [T; 2] {
    type Output = T;
    fn index(&self, d: Dir) -> &T {
        &self[d.idx()]
    }
}

impl<T> std::ops::IndexMut<Dir> for [T; 2] {
    fn index_mut(&mut self, d: Dir) -> &mut T {
        &mut self[d.idx()]
    }
}

/// A family of codes: one member per value of a protocol field
/// (`tls.alert.<description>`, `x224.neg_failure.<failureCode>`). A value
/// the family has no name for is the member `unknown`, with the number in
/// the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// TLS alert descriptions (RFC 8446 §6, the IANA registry).
    TlsAlert,
    /// RDP_NEG_FAILURE failureCode (MS-RDPBCGR 2.2.1.2.2).
    X224NegFailure,
    /// KRB-ERROR error-code on port 88 (RFC 4120 §7.5.9).
    Kerberos,
    /// `nla.error.*`: the server's CredSSP TSRequest.errorCode (decrypted).
    NlaError,
    /// `rdp.error_info.*`: the server's Set Error Info PDU.
    RdpErrorInfo,
    /// `rdp.license.*`: the server's License Error PDU.
    RdpLicense,
    /// `rdp.logon_error.*`: a Save Session Info logon error notification.
    RdpLogonError,
    /// `gateway.http.status.*`: the HTTP status an RD Gateway (or a proxy
    /// in front of it) answered a leg's request with.
    GatewayHttpStatus,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::TlsAlert,
        Family::X224NegFailure,
        Family::Kerberos,
        Family::NlaError,
        Family::RdpErrorInfo,
        Family::RdpLicense,
        Family::RdpLogonError,
        Family::GatewayHttpStatus,
    ];

    /// The code prefix, without the final dot.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::TlsAlert => "tls.alert",
            Family::X224NegFailure => "x224.neg_failure",
            Family::Kerberos => "kerberos",
            Family::NlaError => "nla.error",
            Family::RdpErrorInfo => "rdp.error_info",
            Family::RdpLicense => "rdp.license",
            Family::RdpLogonError => "rdp.logon_error",
            Family::GatewayHttpStatus => "gateway.http.status",
        }
    }
}

/// The member of every family that stands for a value without a name.
pub const UNKNOWN_MEMBER: &str = "unknown";

macro_rules! codes {
    ( $( $(#[$m:meta])* $v:ident = $s:literal, )* ) => {
        /// A finding code: the public interface of the reports
        /// (docs/findings.md). Fixed codes are variants; a family member
        /// carries its family and its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$m])* $v, )*
            /// `<family>.<member>`; the member is a name from the
            /// protocol's table, or [`UNKNOWN_MEMBER`].
            Member(Family, &'static str),
        }

        impl Code {
            /// Every fixed (non-family) code.
            pub const FIXED: &'static [Code] = &[ $( Code::$v, )* ];

            /// The fixed code's name; `None` for a family member.
            pub fn fixed_name(self) -> Option<&'static str> {
                match self {
                    $( Code::$v => Some($s), )*
                    Code::Member(..) => None,
                }
            }
        }
    };
}

codes! {
    TcpSynUnanswered = "tcp.syn_unanswered",
    TcpRefused = "tcp.refused",
    TcpScan = "tcp.scan",
    TcpIcmpUnreachable = "tcp.icmp_unreachable",
    TcpResetByServer = "tcp.reset_by_server",
    TcpResetByClient = "tcp.reset_by_client",
    TcpResetByMiddlebox = "tcp.reset_by_middlebox",
    TcpClosedByServer = "tcp.closed_by_server",
    TcpStalled = "tcp.stalled",
    TcpRetransmissions = "tcp.retransmissions",
    TcpZeroWindow = "tcp.zero_window",
    PathFragmented = "path.fragmented",
    PathFragIncomplete = "path.frag_incomplete",
    PathFragOverlap = "path.frag_overlap",
    PathIcmpFragNeeded = "path.icmp_frag_needed",
    PathBlackhole = "path.blackhole",
    PathMssMismatch = "path.mss_mismatch",
    CaptureLoss = "capture.loss",
    CaptureTruncated = "capture.truncated",
    CaptureCorrupt = "capture.corrupt",
    CaptureUnsupportedLink = "capture.unsupported_link",
    CaptureUndecoded = "capture.undecoded",
    CaptureBound = "capture.bound",
    CaptureOffload = "capture.offload",
    DnsNxdomain = "dns.nxdomain",
    DnsNoResponse = "dns.no_response",
    X224NoConfirm = "x224.no_confirm",
    X224LegacyRejected = "x224.legacy_rejected",
    X224ClientAborted = "x224.client_aborted",
    X224UnrequestedProtocol = "x224.unrequested_protocol",
    X224Malformed = "x224.malformed",
    X224RestrictedAdminUnsupported = "x224.restricted_admin_unsupported",
    X224RemoteGuardUnsupported = "x224.remote_guard_unsupported",
    TlsMalformed = "tls.malformed",
    TlsNoServerHello = "tls.no_server_hello",
    TlsVersionMismatch = "tls.version_mismatch",
    TlsCertExpired = "tls.cert.expired",
    TlsCertNotYetValid = "tls.cert.not_yet_valid",
    TlsCertSelfSigned = "tls.cert.self_signed",
    TlsCertNameMismatch = "tls.cert.name_mismatch",
    TlsCertUnobservable = "tls.cert.unobservable",
    TlsCertMalformed = "tls.cert.malformed",
    NlaStalled = "nla.stalled",
    NlaNtlmFallback = "nla.ntlm_fallback",
    NlaClientAborted = "nla.client_aborted",
    NlaAccessDenied = "nla.access_denied",
    NlaCredsspVersionMismatch = "nla.credssp_version_mismatch",
    TlsDecryptFailed = "tls.decrypt_failed",
    TlsKeysUnused = "tls.keys_unused",
    RdpServerDenied = "rdp.server_denied",
    RdpFallback = "rdp.fallback",
    RdpSessionEnded = "rdp.session_ended",
    RdpRedirected = "rdp.redirected",
    UdpSynUnanswered = "udp.syn_unanswered",
    UdpIcmpUnreachable = "udp.icmp_unreachable",
    UdpFallbackTcp = "udp.fallback_tcp",
    GatewayHttpAuthFailed = "gateway.http.auth_failed",
    GatewayHttpAuthLoop = "gateway.http.auth_loop",
    GatewayHttpProxyAuth = "gateway.http.proxy_auth",
    GatewayHttpNoResponse = "gateway.http.no_response",
    GatewayHttpBadFraming = "gateway.http.bad_framing",
    GatewayHttpProxyInterference = "gateway.http.proxy_interference",
    GatewayWsUpgradeRefused = "gateway.ws.upgrade_refused",
    GatewayTsgHandshakeFailed = "gateway.tsg.handshake_failed",
    GatewayTsgTunnelFailed = "gateway.tsg.tunnel_failed",
    GatewayTsgTunnelAuthFailed = "gateway.tsg.tunnel_auth_failed",
    GatewayTsgChannelFailed = "gateway.tsg.channel_failed",
    GatewayTsgClosed = "gateway.tsg.closed",
    GatewayRpcNoConnA3 = "gateway.rpc.no_conn_a3",
    GatewayRpcBindRefused = "gateway.rpc.bind_refused",
    GatewayRpcFault = "gateway.rpc.fault",
    GatewayKdcproxyFailed = "gateway.kdcproxy.failed",
    GatewayIdleCut = "gateway.idle_cut",
    GatewayFallback = "gateway.fallback",
    GatewayEncrypted = "gateway.encrypted",
}

impl Code {
    /// A family member; `None` names the value without a name (`unknown`).
    pub fn member(family: Family, name: Option<&'static str>) -> Code {
        Code::Member(family, name.unwrap_or(UNKNOWN_MEMBER))
    }

    pub fn family(self) -> Option<Family> {
        match self {
            Code::Member(f, _) => Some(f),
            _ => None,
        }
    }

    /// The protocol layer the code belongs to: its first dotted part
    /// (`tcp`, `x224`, `tls`, `nla`, …).
    pub fn layer(self) -> &'static str {
        let full = match self {
            Code::Member(f, _) => f.prefix(),
            c => c.fixed_name().unwrap_or(""),
        };
        full.split('.').next().unwrap_or(full)
    }

    /// Does this code print as `s`?
    pub fn is(self, s: &str) -> bool {
        match self {
            Code::Member(f, m) => s
                .strip_prefix(f.prefix())
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| r == m),
            c => c.fixed_name() == Some(s),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Member(fam, m) => write!(f, "{}.{m}", fam.prefix()),
            c => f.write_str(c.fixed_name().unwrap_or("")),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.is(other)
    }
}

/// A finding as a detector states it, before it is placed in a capture and
/// an attempt: code, severity, phase, the frames that prove it (first, last,
/// and the time of the first), what it means and what to do, the Wireshark
/// filter that shows it, and how far to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub code: Code,
    pub severity: Severity,
    pub phase: Phase,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Nanoseconds since the epoch of the first frame.
    pub ts: i64,
    pub summary: String,
    /// What it means and what to do: mostly fixed text, so not copied.
    pub cause: Cow<'static, str>,
    pub remedy: Cow<'static, str>,
    pub filter: String,
    pub confidence: Confidence,
    /// The error dialog this finding makes the client show, when the
    /// detector knows it from the evidence (a CredSSP status, an E_PROXY
    /// code, an ERRINFO value); otherwise the verdict maps the code.
    pub client_error: Option<ClientError>,
}

/// What the client shows (PROTOCOLS.md §9): the disconnect reason mstsc
/// prints as "Error code", the extended code when one is known, and
/// whether the mapping is documented or only inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientError {
    pub code: u32,
    pub ext: Option<u32>,
    pub inferred: bool,
}

impl ClientError {
    pub const fn documented(code: u32) -> ClientError {
        ClientError {
            code,
            ext: None,
            inferred: false,
        }
    }

    pub const fn inferred(code: u32) -> ClientError {
        ClientError {
            code,
            ext: None,
            inferred: true,
        }
    }

    pub const fn with_ext(mut self, ext: u32) -> ClientError {
        self.ext = Some(ext);
        self
    }

    fn hex_one(v: u32) -> String {
        if v > 0xFFFF {
            format!("0x{v:08X}")
        } else {
            format!("0x{v:X}")
        }
    }

    /// `0x904/0x7`, `0x204`, `0x0300001B`: as mstsc prints it.
    pub fn hex(&self) -> String {
        match self.ext {
            Some(e) => format!("{}/{}", Self::hex_one(self.code), Self::hex_one(e)),
            None => Self::hex_one(self.code),
        }
    }

    /// `2308/7`: as Event 1026 and some tools print it.
    pub fn decimal(&self) -> String {
        match self.ext {
            Some(e) => format!("{}/{e}", self.code),
            None => self.code.to_string(),
        }
    }

    /// `documented` or `inferred`.
    pub fn basis(&self) -> &'static str {
        if self.inferred {
            "inferred"
        } else {
            "documented"
        }
    }

    /// Reads what a user typed: `0x904`, `0x904/0x7`, `2308`, `2308/7`,
    /// `0x0300001B` (hex with 0x, else decimal; `/` or a space between).
    pub fn parse(s: &str) -> Result<ClientError, String> {
        let one = |t: &str| -> Result<u32, String> {
            let t = t.trim();
            let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u32::from_str_radix(h, 16),
                None => t.parse(),
            };
            r.map_err(|_| format!("{t:?} is not an error code (0x904 or 2308)"))
        };
        let mut parts = s.trim().splitn(2, ['/', ' ', ',']);
        let code = one(parts.next().unwrap_or(""))?;
        let ext = parts.next().map(one).transpose()?;
        Ok(ClientError {
            code,
            ext,
            inferred: false,
        })
    }
}

impl Draft {
    /// A draft citing one frame (`frame`, at `ts`); the builder methods
    /// below add the rest. Confidence starts high.
    pub fn new(code: Code, severity: Severity, phase: Phase, frame: u64, ts: i64) -> Draft {
        Draft {
            code,
            severity,
            phase,
            first_frame: frame,
            last_frame: frame,
            ts,
            summary: String::new(),
            cause: Cow::Borrowed(""),
            remedy: Cow::Borrowed(""),
            filter: String::new(),
            confidence: Confidence::high(),
            client_error: None,
        }
    }

    /// The last frame of the evidence (never before the first).
    pub fn until(mut self, last_frame: u64) -> Draft {
        self.last_frame = last_frame.max(self.first_frame);
        self
    }

    pub fn summary(mut self, s: impl Into<String>) -> Draft {
        self.summary = s.into();
        self
    }

    pub fn cause(mut self, s: impl Into<Cow<'static, str>>) -> Draft {
        self.cause = s.into();
        self
    }

    pub fn remedy(mut self, s: impl Into<Cow<'static, str>>) -> Draft {
        self.remedy = s.into();
        self
    }

    pub fn filter(mut self, s: impl Into<String>) -> Draft {
        self.filter = s.into();
        self
    }

    pub fn confidence(mut self, c: Confidence) -> Draft {
        self.confidence = c;
        self
    }

    pub fn client_error(mut self, e: ClientError) -> Draft {
        self.client_error = Some(e);
        self
    }
}

/// The order findings are judged in: most severe, then earliest phase,
/// then earliest frame.
pub fn precedence(a: &Draft, b: &Draft) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then(a.phase.cmp(&b.phase))
        .then(a.first_frame.cmp(&b.first_frame))
}

/// Seconds with millisecond precision for summaries.
pub fn secs(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// "s" unless exactly one.
pub fn plural(n: impl TryInto<u64>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2024-05-01T10:00:00.123456Z`
/// (formatted by the `time` crate; every i64 of nanoseconds is in its range).
pub fn rfc3339(ns: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
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

    #[test]
    fn codes_print_and_compare() {
        assert_eq!(Code::TcpRefused.to_string(), "tcp.refused");
        let m = Code::member(Family::TlsAlert, Some("handshake_failure"));
        assert_eq!(m.to_string(), "tls.alert.handshake_failure");
        assert!(m.is("tls.alert.handshake_failure"));
        assert!(!m.is("tls.alert.handshake"));
        assert!(!m.is("tls.alerthandshake_failure"));
        assert_eq!(m.layer(), "tls");
        assert_eq!(
            Code::member(Family::X224NegFailure, None).to_string(),
            "x224.neg_failure.unknown"
        );
        assert_eq!(Code::TlsCertExpired.layer(), "tls");
        let mut names: Vec<&str> = Code::FIXED.iter().filter_map(|c| c.fixed_name()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a fixed code is listed twice");
    }

    #[test]
    fn dirs_index_pairs() {
        let mut a = [1, 2];
        a[Dir::Server] += 1;
        assert_eq!(a[Dir::Client], 1);
        assert_eq!(a[Dir::Server.other()], 1);
        assert_eq!(a[Dir::Server], 3);
    }

    #[test]
    fn draft_builder_keeps_last_after_first() {
        let d = Draft::new(Code::TcpStalled, Severity::Warning, Phase::Tcp, 10, 5).until(3);
        assert_eq!((d.first_frame, d.last_frame, d.ts), (10, 10, 5));
    }
}
