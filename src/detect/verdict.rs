//! Outcomes and verdicts, decided in one place: whether a connection and
//! an attempt connected, which phase failed, which finding is the verdict,
//! and whether the evidence fits the client's 0x904 / 0x7 dialog.

use super::{AttemptContext, Placed};
use crate::finding::{precedence, ClientError, Code, Dir, Draft, Family, Outcome, Phase, Severity};
use crate::flow::{Flow, Transport};

/// A connection's outcome and the phase it failed in. A connection failed
/// when it has an error, a stall, or (UDP) a transport warning; a stall in a
/// session that then exchanged data both ways and is still open is not a
/// failure by itself. It connected when data went both ways after the
/// handshake (RDPEUDP: the SYN exchange completed).
pub fn flow_outcome(f: &Flow, drafts: &[Draft]) -> (Outcome, Option<Phase>) {
    let failing = drafts
        .iter()
        .filter(|d| !about_keys(d.code))
        .filter(|d| {
            d.severity >= Severity::Error
                || d.code == Code::TcpStalled
                || (f.key.transport == Transport::Udp
                    && d.phase == Phase::Udp
                    && d.severity >= Severity::Warning)
        })
        .min_by(|a, b| precedence(a, b));
    let both_ways = f.dirs[Dir::Client].payload > 0 && f.dirs[Dir::Server].payload > 0;
    if let Some(d) = failing {
        if d.severity >= Severity::Error || !both_ways || f.closed() {
            return (Outcome::Failed, Some(d.phase));
        }
    }
    let connected = match f.key.transport {
        Transport::Tcp => (f.tcp().established.is_some() || f.tcp().mid_stream) && both_ways,
        Transport::Udp => {
            let u = &f.rdpeudp();
            if u.syn.is_some() {
                u.established()
            } else {
                both_ways
            }
        }
    };
    if connected {
        (Outcome::Connected, None)
    } else {
        (Outcome::Incomplete, None)
    }
}

/// A finding about the analysis's keys, not the connection: never its
/// outcome, never a verdict.
fn about_keys(c: Code) -> bool {
    c == Code::TlsDecryptFailed
}

/// A finding of a failed connection that a connected retry superseded:
/// kept, at info, and marked.
pub fn supersede(d: &mut Draft, retry_port: u16) {
    supersede_with(d, &format!("the retry from port {retry_port} connected"));
}

/// Lowers a finding that a later step made moot to info, saying why.
pub fn supersede_with(d: &mut Draft, why: &str) {
    if d.severity >= Severity::Warning {
        d.severity = Severity::Info;
        d.summary.push_str(&format!(" (superseded: {why})"));
    }
}

/// The attempt's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub failed_phase: Option<Phase>,
    /// The finding that names what happened (`None`: nothing to say).
    pub code: Option<Code>,
    /// Does the evidence fit the client's 0x904 / 0x7: yes | no | unknown.
    /// Deprecated by `client_error` (schema 2), kept for one version.
    pub fits_0x904: &'static str,
    /// The error dialog the client shows for this attempt, when the
    /// evidence names one.
    pub client_error: Option<ClientError>,
}

/// The verdict of an attempt from its findings: the most severe (then
/// earliest phase, then earliest frame) of its connections' findings — for
/// a connected attempt only a warning or worse; `rdp.fallback` when a retry
/// connected. DNS findings of an attempt that reached an address are
/// context, not its verdict; an attempt that is only a failed lookup has
/// the lookup's finding.
pub fn attempt(cx: &AttemptContext<'_>, findings: &[Placed]) -> Verdict {
    let a = cx.attempt;
    let Some(last) = cx.last() else {
        let first = findings.first().map(|p| &p.draft);
        return Verdict {
            outcome: Outcome::Failed,
            failed_phase: Some(Phase::Dns),
            code: first.map(|d| d.code),
            fits_0x904: "no",
            client_error: first.and_then(|d| client_error(Outcome::Failed, d, false)),
        };
    };
    let outcome = cx.outcome();
    let mut code = findings
        .iter()
        .map(|p| &p.draft)
        .filter(|d| {
            !matches!(d.code, Code::DnsNxdomain | Code::DnsNoResponse) && !about_keys(d.code)
        })
        .filter(|d| outcome != Outcome::Connected || d.severity >= Severity::Warning)
        .min_by(|x, y| precedence(x, y))
        .map(|d| d.code);
    let mut failed_phase = last.failed_phase;
    let mut outcome = outcome;
    // A KDC's refusal that explains the failure is the verdict; what the
    // connection showed (nla.stalled, the close) is its evidence.
    if let Some(k) = findings
        .iter()
        .map(|p| &p.draft)
        .filter(|d| d.code.family() == Some(Family::Kerberos) && d.severity >= Severity::Error)
        .min_by(|x, y| precedence(x, y))
    {
        code = Some(k.code);
        outcome = Outcome::Failed;
        failed_phase = Some(k.phase);
    }
    if a.retried() && outcome == Outcome::Connected {
        code = Some(if last.gateway().is_some() {
            Code::GatewayFallback
        } else {
            Code::RdpFallback
        });
        failed_phase = None;
    }
    let server_ended = last.ended_by == Some(crate::finding::Dir::Server);
    let said = code.and_then(|c| {
        findings
            .iter()
            .map(|p| &p.draft)
            .filter(|d| d.code == c)
            .min_by(|x, y| precedence(x, y))
    });
    Verdict {
        outcome,
        failed_phase,
        code,
        fits_0x904: fits_0x904(outcome, code, server_ended),
        client_error: said.and_then(|d| client_error(outcome, d, server_ended)),
    }
}

/// The error dialog the client shows for an attempt whose verdict is
/// `d` (PROTOCOLS.md §9; docs/findings.md, "The client's dialog code"):
/// what the detector read from the evidence (an E_PROXY code), else the
/// dialog the verdict's code maps to. None for a connected attempt, and
/// where the capture does not tell (a stall, a certificate the user may
/// accept, a Kerberos error the client may fall back from).
pub fn client_error(outcome: Outcome, d: &Draft, server_ended: bool) -> Option<ClientError> {
    if outcome == Outcome::Connected {
        return None;
    }
    if d.client_error.is_some() {
        return d.client_error;
    }
    let doc = ClientError::documented;
    let inf = ClientError::inferred;
    Some(match d.code {
        // Winsock connect failed: refused or unreachable.
        Code::TcpRefused | Code::TcpIcmpUnreachable => doc(0x204),
        // The connect timed out: the same Winsock failure, by inference.
        Code::TcpSynUnanswered => inf(0x204),
        // FD_CLOSE: the other end (or a device in its name) ended it.
        Code::TcpClosedByServer | Code::TcpResetByServer | Code::TcpResetByMiddlebox => doc(0x904),
        Code::X224NoConfirm | Code::TlsNoServerHello | Code::X224LegacyRejected if server_ended => {
            doc(0x904)
        }
        Code::NlaStalled => inf(0x904),
        // ExtendedDisconnectReasonCode 7 = ERRINFO 7.
        Code::RdpServerDenied => doc(0x904).with_ext(0x7),
        Code::Member(Family::RdpErrorInfo, name) => {
            let v = crate::proto::rdp::ERRINFO
                .iter()
                .find(|e| e.1 == name)
                .map(|e| e.0);
            match v {
                // The extended codes equal ERRINFO 1–12 (no 8) and the
                // licensing range 0x100–0x10A (enum 256–266).
                Some(v) if (1..=0xC).contains(&v) && v != 8 || (0x100..=0x10A).contains(&v) => {
                    doc(0x904).with_ext(v)
                }
                _ => doc(0x904),
            }
        }
        Code::Member(Family::NlaError, name) => return nla_dialog(name),
        Code::Member(Family::RdpLicense, _) => inf(0x808),
        Code::DnsNxdomain => inf(0x208),
        Code::DnsNoResponse => inf(0x104),
        Code::GatewayHttpProxyAuth => inf(0x0300_0020),
        Code::GatewayTsgClosed => inf(0x0300_0018),
        _ => return None,
    })
}

/// The SSL/NLA-class dialog for a CredSSP error, by the NTSTATUS name
/// (§9 names the dialog codes after the same statuses; a status §9 does
/// not name is mapped by inference).
pub fn nla_dialog(name: &str) -> Option<ClientError> {
    let doc = ClientError::documented;
    Some(match name {
        "logon_failure" => doc(0x807),
        "wrong_password" => ClientError::inferred(0x807),
        "no_such_user" => doc(0xA07),
        "account_disabled" => doc(0xB07),
        "account_restriction" => doc(0xC07),
        "account_locked_out" => doc(0xD07),
        "account_expired" => doc(0xE07),
        "password_expired" => doc(0xF07),
        "password_must_change" => doc(0x1207),
        "no_authenticating_authority" => doc(0x1807),
        _ => return None,
    })
}

/// Does the evidence fit the client's 0x904 ("socket closed") / 0x7
/// ("server denied"): the server side (or a device in its name) ended the
/// connection without a protocol message that the client would name.
pub fn fits_0x904(outcome: Outcome, verdict: Option<Code>, server_ended: bool) -> &'static str {
    if outcome == Outcome::Connected {
        return "no";
    }
    let Some(v) = verdict else {
        return "unknown";
    };
    match v {
        Code::TcpClosedByServer
        | Code::TcpResetByServer
        | Code::TcpResetByMiddlebox
        | Code::RdpServerDenied
        | Code::NlaStalled
        | Code::Member(Family::RdpErrorInfo, _) => "yes",
        Code::X224NoConfirm | Code::TlsNoServerHello | Code::X224LegacyRejected if server_ended => {
            "yes"
        }
        Code::Member(
            Family::X224NegFailure
            | Family::TlsAlert
            | Family::Kerberos
            | Family::NlaError
            | Family::RdpLicense,
            _,
        )
        | Code::NlaCredsspVersionMismatch
        | Code::TlsCertExpired
        | Code::TlsCertNotYetValid
        | Code::TlsCertSelfSigned
        | Code::TlsCertNameMismatch
        | Code::TlsCertUnobservable
        | Code::TcpSynUnanswered
        | Code::TcpRefused
        | Code::TcpIcmpUnreachable
        | Code::TcpResetByClient
        | Code::X224ClientAborted
        | Code::NlaClientAborted
        | Code::X224UnrequestedProtocol
        | Code::TlsVersionMismatch => "no",
        _ => "unknown",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fits_0x904_follows_who_ended_it() {
        use Outcome::*;
        assert_eq!(
            fits_0x904(Connected, Some(Code::TcpResetByServer), true),
            "no"
        );
        assert_eq!(
            fits_0x904(Failed, Some(Code::TcpResetByServer), false),
            "yes"
        );
        assert_eq!(fits_0x904(Failed, Some(Code::X224NoConfirm), true), "yes");
        assert_eq!(
            fits_0x904(Failed, Some(Code::X224NoConfirm), false),
            "unknown"
        );
        assert_eq!(
            fits_0x904(
                Failed,
                Some(Code::member(Family::TlsAlert, Some("handshake_failure"))),
                true
            ),
            "no"
        );
        assert_eq!(fits_0x904(Failed, None, true), "unknown");
        assert_eq!(
            fits_0x904(Incomplete, Some(Code::TcpStalled), true),
            "unknown"
        );
    }

    #[test]
    fn superseded_findings_drop_to_info_once_marked() {
        let mut d = Draft::new(Code::TcpRefused, Severity::Error, Phase::Tcp, 1, 0);
        supersede(&mut d, 50001);
        assert_eq!(d.severity, Severity::Info);
        assert!(d
            .summary
            .ends_with("(superseded: the retry from port 50001 connected)"));
        let mut i = Draft::new(Code::TlsCertSelfSigned, Severity::Info, Phase::Tls, 1, 0);
        supersede(&mut i, 1);
        assert!(i.summary.is_empty());
    }
}
