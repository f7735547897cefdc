//! The X.224 negotiation (MS-RDPBCGR 2.2.1.1 – 2.2.1.2 and 3.3.5.3.1):
//! `x224.neg_failure.*`, `x224.no_confirm`, `x224.client_aborted`,
//! `x224.unrequested_protocol`, `x224.legacy_rejected`, `x224.malformed`.
//! Evidence: the request and confirm with their frames, and how the
//! connection ended after them.

use super::{ending, frames_filter, Context, Detector, Draft};
use crate::finding::{Code, Confidence, Dir, Family, Level, Phase, Severity};
use crate::flow::{Flow, Mark};
use crate::proto::x224::{self, failure_name, NegResult, Protocols, FAILURES};
use crate::proto::Step;

pub struct Negotiation;

fn draft(code: Code, sev: Severity, first: Mark, last: u64, f: &Flow, frames: &[u64]) -> Draft {
    Draft::new(code, sev, Phase::X224, first.frame, first.ts)
        .until(last)
        .filter(frames_filter(f, frames))
}

/// "client requested SSL|HYBRID" or "client sent no negotiation request".
fn requested(f: &Flow) -> String {
    match f.app.facts().cr.as_ref().and_then(|(r, _)| r.neg) {
        Some(n) => format!("client requested {}", n.protocols),
        None => "client sent no negotiation request (Standard RDP Security only)".into(),
    }
}

/// Cause and remedy for each failureCode (MS-RDPBCGR 2.2.1.2.2).
fn failure_text(code: u32, req: Option<Protocols>) -> (&'static str, &'static str) {
    let nla_only = req.is_some_and(|p| p.nla() && !p.has(Protocols::SSL));
    match code {
        1 if nla_only => (
            "The server does not offer NLA (CredSSP), only TLS; the client insists on NLA.",
            "On the server enable \"Require user authentication for remote connections by using \
             Network Level Authentication\" (System Properties > Remote, or the Group Policy under \
             Remote Desktop Session Host > Security), or allow the client to connect without NLA.",
        ),
        1 => (
            "The server requires TLS or NLA; the client offered only Standard RDP Security.",
            "Use a client that negotiates TLS/NLA (mstsc 6.0 or later, FreeRDP without /sec:rdp), \
             or set the server's security layer to \"Negotiate\" (Group Policy \"Require use of \
             specific security layer for remote (RDP) connections\").",
        ),
        2 => (
            "The server allows only Standard RDP Security; the client asked for TLS/NLA.",
            "Set the server's security layer to \"Negotiate\" or \"SSL\" (Group Policy \"Require \
             use of specific security layer\", or SecurityLayer under HKLM\\SYSTEM\\\
             CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp), or allow the \
             client to use RDP security.",
        ),
        3 => (
            "The server has no usable TLS certificate for RDP.",
            "Check the certificate bound to RDP-Tcp (SSLCertificateSHA1Hash): it must exist in \
             LocalMachine\\Remote Desktop or \\My with its private key readable by NETWORK \
             SERVICE; delete a broken one so that TermService creates a self-signed one, then \
             restart the Remote Desktop Services service.",
        ),
        4 => (
            "The server found the client's requested-protocol flags inconsistent.",
            "Update the client; check client settings that force a security protocol \
             (FreeRDP /sec:, .rdp file \"enablecredsspsupport\", \"authentication level\").",
        ),
        5 => (
            "The server requires NLA (CredSSP); the client did not offer it.",
            "Enable CredSSP on the client (.rdp \"enablecredsspsupport:i:1\", FreeRDP /sec:nla), \
             or, if policy allows, turn off \"Require user authentication ... by using Network \
             Level Authentication\" on the server.",
        ),
        6 => (
            "The server requires TLS with client-certificate user authentication.",
            "Use a client that supports TLS client certificates (smart card / certificate logon) \
             or change the server's authentication requirement.",
        ),
        _ => (
            "The server refused the negotiation with an unknown failure code.",
            "Compare client and server security-layer settings; update both.",
        ),
    }
}

impl Detector for Negotiation {
    fn codes(&self) -> Vec<Code> {
        let mut v: Vec<Code> = FAILURES
            .iter()
            .map(|f| Code::member(Family::X224NegFailure, Some(f.2)))
            .collect();
        v.push(Code::member(Family::X224NegFailure, None));
        v.extend([
            Code::X224LegacyRejected,
            Code::X224NoConfirm,
            Code::X224ClientAborted,
            Code::X224UnrequestedProtocol,
            Code::X224RestrictedAdminUnsupported,
            Code::X224RemoteGuardUnsupported,
            Code::X224Malformed,
        ]);
        v
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let x = f.app.facts();
        let end = ending(f);
        let n = Neg {
            cx,
            f,
            x,
            end,
            end_frame: end.map_or(0, |e| e.1.frame),
            cr_at: x.cr.as_ref().map_or(Mark::default(), |c| c.1),
            req: x.cr.as_ref().and_then(|(r, _)| r.neg.map(|n| n.protocols)),
        };
        n.malformed(out);
        if x.cr.is_none() {
            return;
        }
        match x.cc {
            None => n.no_confirm(out),
            Some((NegResult::Failure { code }, cc_at)) => n.failure(code, cc_at, out),
            Some((NegResult::Rsp { selected, flags }, cc_at)) => {
                n.response(selected, cc_at, out);
                n.modes(flags, cc_at, out);
            }
            Some((NegResult::None, cc_at)) => n.legacy(cc_at, out),
        }
    }
}

/// What every x224 finding of one connection draws on.
struct Neg<'a> {
    cx: &'a Context<'a>,
    f: &'a Flow,
    x: &'a crate::proto::Facts,
    end: Option<(Dir, Mark, &'static str)>,
    end_frame: u64,
    cr_at: Mark,
    /// What the client requested (none: no negotiation data).
    req: Option<Protocols>,
}

impl Neg<'_> {
    /// "; then the server reset in frame 9", when the end came after `after`.
    fn end_text(&self, after: u64) -> String {
        match self.end {
            Some((d, m, how)) if m.frame >= after => {
                format!("; then the {} {how} in frame {}", d.name(), m.frame)
            }
            _ => String::new(),
        }
    }

    /// `x224.malformed`: the first invalid unit, unless it is a foreign
    /// server's answer (that is `x224.no_confirm`) or came after TLS began.
    fn malformed(&self, out: &mut Vec<Draft>) {
        let (f, x) = (self.f, self.x);
        if let Some((dir, pos, what)) = &x.malformed {
            let at = &pos.at;
            // A foreign server on the port is x224.no_confirm's.
            let foreign =
                *dir == Dir::Server && x.cc.is_none() && x.when(Step::ConnectionConfirm).is_none();
            if !foreign
                && x.when(Step::ClientHello)
                    .is_none_or(|m| m.frame >= at.frame)
            {
                let mut d = draft(
                    Code::X224Malformed,
                    Severity::Warning,
                    *at,
                    at.frame,
                    f,
                    &[at.frame],
                );
                d.summary = format!("Invalid RDP data from the {}: {what}", dir.name());
                d.cause = "A broken or non-RDP peer, or a middlebox rewriting the connection \
                           sequence."
                    .into();
                d.remedy = format!(
                    "Check what listens on {} (it may not be an RDP server) and any proxy or IPS \
                     between client and server.",
                    f.server
                )
                .into();
                out.push(d);
            }
        }
    }

    /// `x224.no_confirm`: a request and no confirm, when the server had its
    /// chance (it ended the connection, answered otherwise, or the stall
    /// timeout passed).
    fn no_confirm(&self, out: &mut Vec<Draft>) {
        let (cx, f, x, end, cr_at) = (self.cx, self.f, self.x, self.end, &self.cr_at);
        // No confirm: only when the server had its chance.
        let answered_otherwise = x.malformed.as_ref().filter(|m| m.0 == Dir::Server);
        let ended = end.filter(|e| e.1.frame > cr_at.frame);
        let waited = cx.capture_end.ts - cr_at.ts >= cx.cfg.stall_ns;
        if ended.is_none() && !waited && answered_otherwise.is_none() {
            return;
        }
        if x.when(Step::ConnectionConfirm).is_some() {
            return; // a confirm came but was malformed
        }
        let mut d = draft(
            Code::X224NoConfirm,
            Severity::Error,
            *cr_at,
            ended.map_or(cr_at.frame, |e| e.1.frame),
            f,
            &[cr_at.frame, ended.map_or(0, |e| e.1.frame)],
        );
        let then = match (answered_otherwise, ended) {
            (Some((_, m, what)), _) => {
                format!(
                    "the server answered with something else in frame {} ({what})",
                    m.at.frame
                )
            }
            (None, Some((dside, m, how))) => {
                format!(
                    "the {} {how} in frame {} without a Connection Confirm",
                    dside.name(),
                    m.frame
                )
            }
            (None, None) => format!(
                "no Connection Confirm in the {} that followed",
                super::secs(cx.capture_end.ts - cr_at.ts)
            ),
        };
        d.summary = format!(
            "X.224 Connection Request in frame {} ({}); {then}",
            cr_at.frame,
            requested(f)
        );
        d.cause = "What listens on the port is not an RDP server, or the Remote Desktop \
                   service accepted the TCP connection but is hung."
            .into();
        d.remedy = format!(
            "Check that TermService (Remote Desktop Services) runs and owns TCP {} on the server \
             (netstat -abno), restart it if hung; check port forwards and proxies that may point \
             to another service.",
            f.server.port()
        )
        .into();
        out.push(d);
    }

    /// `x224.neg_failure.*` (or `x224.legacy_rejected` for a request
    /// without negotiation data): RDP_NEG_FAILURE.
    fn failure(&self, code: u32, cc_at: Mark, out: &mut Vec<Draft>) {
        let (f, req, end_frame, cr_at) = (self.f, self.req, self.end_frame, &self.cr_at);
        let (name, suffix) =
            failure_name(code).map_or(("unknown failure code", None), |n| (n.0, Some(n.1)));
        let legacy = req.is_none();
        let code_s = if legacy {
            Code::X224LegacyRejected
        } else {
            Code::member(Family::X224NegFailure, suffix)
        };
        let mut d = draft(
            code_s,
            Severity::Error,
            cc_at,
            end_frame.max(cc_at.frame),
            f,
            &[cr_at.frame, cc_at.frame, end_frame],
        );
        d.ts = cc_at.ts;
        d.summary = format!(
            "{}, server answered {name} ({code}) in frame {}{}",
            capitalize(&requested(f)),
            cc_at.frame,
            self.end_text(cc_at.frame)
        );
        let (cause, remedy) = failure_text(code, req);
        d.cause = cause.into();
        d.remedy = remedy.into();
        out.push(d);
    }

    /// `x224.unrequested_protocol`, `x224.client_aborted`: RDP_NEG_RSP.
    fn response(&self, selected: Protocols, cc_at: Mark, out: &mut Vec<Draft>) {
        let (f, x, end, req, end_frame, cr_at) = (
            self.f,
            self.x,
            self.end,
            self.req,
            self.end_frame,
            &self.cr_at,
        );
        let unrequested = match req {
            Some(r) => (selected.0 != 0 && selected.0 & r.0 == 0) || (selected.0 == 0 && r.0 != 0),
            None => selected.0 != 0,
        } || selected.0.count_ones() > 1;
        // What the client does next: TLS for any protocol, MCS for RDP.
        let next = if selected.tls() {
            x.when(Step::ClientHello)
        } else {
            x.when(Step::McsConnectInitial)
        };
        let client_quit = end.filter(|e| {
            e.0 == Dir::Client
                && e.1.frame > cc_at.frame
                && next.is_none_or(|n| n.frame > e.1.frame)
        });
        if unrequested {
            let mut d = draft(
                Code::X224UnrequestedProtocol,
                Severity::Error,
                cc_at,
                end_frame.max(cc_at.frame),
                f,
                &[cr_at.frame, cc_at.frame, end_frame],
            );
            d.summary = format!(
                "{}, server selected {selected} in frame {}{}",
                capitalize(&requested(f)),
                cc_at.frame,
                self.end_text(cc_at.frame)
            );
            d.cause = "The server chose a security protocol the client did not offer (xrdp \
                       does this instead of sending RDP_NEG_FAILURE); the client then gives up."
                .into();
            d.remedy = "Align the security layer on both sides: on xrdp set security_layer \
                        (rdp|tls|negotiate) in xrdp.ini to one the client offers; on the client \
                        allow that protocol (FreeRDP /sec:, mstsc's authentication level)."
                .into();
            out.push(d);
        } else if let Some((_, m, how)) = client_quit.filter(|_| !self.mode_missing()) {
            let mut d = draft(
                Code::X224ClientAborted,
                Severity::Error,
                cc_at,
                m.frame,
                f,
                &[cc_at.frame, m.frame],
            );
            d.summary = format!(
                "{}, server selected {selected} in frame {}; the client {how} in frame {} without starting {}",
                capitalize(&requested(f)),
                cc_at.frame,
                m.frame,
                if selected.tls() { "TLS" } else { "the MCS connection" }
            );
            d.cause = "The client's own policy refused what the server selected (for example \
                       the client requires NLA or server authentication and the server offered \
                       less), or the user cancelled."
                .into();
            d.remedy = "Read the client's error dialog and event log; enable NLA on the server \
                        or relax the client's authentication level (.rdp \"authentication \
                        level\", \"enablecredsspsupport\")."
                .into();
            out.push(d);
        }
    }

    /// Did the client require a mode the server's response does not announce?
    fn mode_missing(&self) -> bool {
        let req = self
            .x
            .cr
            .as_ref()
            .and_then(|(r, _)| r.neg)
            .map_or(0, |n| n.flags);
        let rsp = match self.x.cc {
            Some((NegResult::Rsp { flags, .. }, _)) => flags,
            _ => return false,
        };
        (req & x224::NEG_REQ_RESTRICTED_ADMIN != 0 && rsp & x224::NEG_RSP_RESTRICTED_ADMIN == 0)
            || (req & x224::NEG_REQ_REMOTE_GUARD != 0 && rsp & x224::NEG_RSP_REMOTE_GUARD == 0)
    }

    /// `x224.restricted_admin_unsupported` / `x224.remote_guard_unsupported`:
    /// the client's RDP_NEG_REQ requires Restricted Admin mode
    /// (RESTRICTED_ADMIN_MODE_REQUIRED 0x01) or Remote Credential Guard
    /// (REDIRECTED_AUTHENTICATION_MODE_REQUIRED 0x02), the server's
    /// RDP_NEG_RSP does not announce it (…_SUPPORTED 0x08 / 0x10,
    /// MS-RDPBCGR 2.2.1.1.1, 2.2.1.2.1), and the client ends the connection
    /// before the session is active. It stands in for `x224.client_aborted`.
    fn modes(&self, flags: u8, cc_at: Mark, out: &mut Vec<Draft>) {
        let (f, x, end) = (self.f, self.x, self.end);
        let Some(req) = x.cr.as_ref().and_then(|(r, _)| r.neg) else {
            return;
        };
        let Some((Dir::Client, m, how)) = end.filter(|e| e.1.frame > cc_at.frame) else {
            return;
        };
        if crate::session::moment::active(f).is_some() {
            return;
        }
        let modes = [
            (
                x224::NEG_REQ_RESTRICTED_ADMIN,
                x224::NEG_RSP_RESTRICTED_ADMIN,
                Code::X224RestrictedAdminUnsupported,
                "Restricted Admin mode",
                "RESTRICTED_ADMIN_MODE_REQUIRED",
                "RESTRICTED_ADMIN_MODE_SUPPORTED",
                "Enable Restricted Admin on the server (registry HKLM\\System\\CurrentControlSet\\Control\\Lsa, DisableRestrictedAdmin = 0; Windows 8.1 / Server 2012 R2 or later), or connect without /restrictedAdmin.",
            ),
            (
                x224::NEG_REQ_REMOTE_GUARD,
                x224::NEG_RSP_REMOTE_GUARD,
                Code::X224RemoteGuardUnsupported,
                "Remote Credential Guard",
                "REDIRECTED_AUTHENTICATION_MODE_REQUIRED",
                "REDIRECTED_AUTHENTICATION_MODE_SUPPORTED",
                "Remote Credential Guard needs a Windows 10 1607 / Server 2016 or later host in the same or a trusted domain, reached by name with Kerberos: enable it on the host (Lsa\\DisableRestrictedAdmin = 0) or connect without /remoteGuard.",
            ),
        ];
        for (want, has, code, name, req_flag, rsp_flag, remedy) in modes {
            if req.flags & want == 0 || flags & has != 0 {
                continue;
            }
            let mut d = draft(
                code,
                Severity::Error,
                cc_at,
                m.frame,
                f,
                &[
                    x.cr.as_ref().map_or(cc_at.frame, |c| c.1.frame),
                    cc_at.frame,
                    m.frame,
                ],
            );
            d.summary = format!(
                "The client's Connection Request requires {name} ({req_flag}, flags 0x{:02x}); the server's response in frame {} does not announce {rsp_flag} (flags 0x{flags:02x}); the client {how} in frame {}",
                req.flags, cc_at.frame, m.frame
            );
            d.cause = format!(
                "The client insists on {name} and the server does not offer it, so the client                  gives up before the session starts (mstsc says the remote computer does not support {name})."
            )
            .into();
            d.remedy = remedy.into();
            out.push(d);
            return;
        }
    }

    /// `x224.legacy_rejected`: a confirm without negotiation data, then the
    /// server's close before its MCS Connect Response.
    fn legacy(&self, cc_at: Mark, out: &mut Vec<Draft>) {
        let (f, x, end, req, cr_at) = (self.f, self.x, self.end, self.req, &self.cr_at);
        // Legacy server answer: the MCS exchange must follow.
        let server_quit = end.filter(|e| {
            e.0 == Dir::Server
                && e.1.frame > cc_at.frame
                && x.when(Step::McsConnectResponse)
                    .is_none_or(|m| m.frame > e.1.frame)
        });
        if let Some((_, m, how)) = server_quit {
            let mut d = draft(
                Code::X224LegacyRejected,
                Severity::Error,
                cc_at,
                m.frame,
                f,
                &[cr_at.frame, cc_at.frame, m.frame],
            );
            d.summary = format!(
                "{}; the server confirmed without negotiation data in frame {}, then {how} in frame {} before the MCS Connect Response",
                capitalize(&requested(f)),
                cc_at.frame,
                m.frame
            );
            d.cause = "The server does not accept Standard RDP Security and the client \
                       cannot negotiate TLS or NLA."
                .into();
            d.remedy = "Use a current client (mstsc, FreeRDP 2+) that negotiates TLS/NLA, or \
                        allow the RDP security layer on the server (not recommended)."
                .into();
            if req.is_some() {
                d.confidence = Confidence::lowered(
                    Level::Medium,
                    "the client did offer negotiation; the server answered as a legacy server",
                );
            }
            out.push(d);
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{x224_cc, x224_cc_failure, x224_cr, TcpConv, C, S};

    /// A client requiring `req` flags, a server answering `rsp` flags, and
    /// the client's reset right after (mstsc refusing to go on).
    fn modes(req: u8, rsp: u8) -> Vec<Draft> {
        use crate::synth::{x224_cc_flags, x224_cr_flags};
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, 1_000_000);
        c.send(&mut out, C, &x224_cr_flags("alice", req, 0xb), 1_000_000);
        c.send(&mut out, S, &x224_cc_flags(0x2, rsp), 1_000_000);
        c.rst(&mut out, C);
        check(&Negotiation, &out, &Config::default())
    }

    #[test]
    fn a_required_mode_the_server_does_not_announce() {
        // Restricted Admin required (0x01); the server announces only
        // EXTENDED_CLIENT_DATA | GFX (0x03).
        let d = modes(0x01, 0x03);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::X224RestrictedAdminUnsupported);
        assert!(d[0].summary.contains("flags 0x03"), "{}", d[0].summary);
        // Remote Credential Guard (0x02) against a server with Restricted
        // Admin only (0x08).
        let d = modes(0x02, 0x0b);
        assert_eq!(d[0].code, Code::X224RemoteGuardUnsupported);
        // Announced: the client's abort is just that.
        let d = modes(0x01, 0x0b);
        assert_eq!(d[0].code, Code::X224ClientAborted);
        let d = modes(0x02, 0x13);
        assert_eq!(d[0].code, Code::X224ClientAborted);
        // Not required: the flags do not matter.
        assert_eq!(modes(0x00, 0x00)[0].code, Code::X224ClientAborted);
    }

    fn negotiation(cc: &[u8]) -> Vec<Draft> {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, 1_000_000);
        c.send(&mut out, C, &x224_cr("alice", 0x1), 1_000_000);
        c.send(&mut out, S, cc, 1_000_000);
        c.close(&mut out, S, 1_000_000);
        check(&Negotiation, &out, &Config::default())
    }

    #[test]
    fn a_failure_code_names_its_family_member() {
        let d = negotiation(&x224_cc_failure(5));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code.to_string(), "x224.neg_failure.hybrid_required");
        assert!(
            d[0].summary.contains("HYBRID_REQUIRED_BY_SERVER (5)"),
            "{}",
            d[0].summary
        );
        // A code without a name is the family's unknown member.
        let d = negotiation(&x224_cc_failure(77));
        assert_eq!(d[0].code.to_string(), "x224.neg_failure.unknown");
        assert!(d[0].summary.contains("(77)"), "{}", d[0].summary);
    }

    #[test]
    fn a_selected_protocol_not_requested() {
        // The client asked for SSL only; the server picked HYBRID.
        let d = negotiation(&x224_cc(0x2));
        assert!(
            d.iter().any(|d| d.code == Code::X224UnrequestedProtocol),
            "{d:?}"
        );
    }
}
