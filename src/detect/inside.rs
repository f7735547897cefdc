//! What the server itself said, read inside TLS with the run's keys (or in
//! the clear under Standard RDP Security at encryption level NONE):
//!
//! - `tls.decrypt_failed`: keys were found for the session but a record
//!   did not open (the first bad frame).
//! - `nla.error.<name>`: the server's CredSSP TSRequest.errorCode
//!   (MS-CSSP 2.2.1; names from PROTOCOLS.md §8).
//! - `nla.credssp_version_mismatch`: a client at TSRequest version 6 or
//!   later that stops after a server answering an older version.
//! - `nla.access_denied`: the HYBRID_EX Early User Authorization Result
//!   AUTHZ_ACCESS_DENIED (MS-RDPBCGR 2.2.10.2).
//! - `rdp.license.<name>`: a License Error PDU other than the normal
//!   STATUS_VALID_CLIENT (MS-RDPELE 2.2.2.7.1).
//! - `rdp.error_info.<name>`: Set Error Info (MS-RDPBCGR 2.2.5.1.1) other
//!   than the ordinary endings (`rdp.session_ended` says those) and 0x7
//!   (`rdp.server_denied`, certain); 0x5 (another connection took the
//!   session over) is a warning.
//! - `rdp.logon_error.<name>`: a Save Session Info logon error
//!   notification (2.2.10.1.1.4.1.1) that ends the logon.
//!
//! - `rdp.redirected` (info): a Server Redirection PDU (2.2.13): a
//!   connection broker sent the client to another host; the connection
//!   the client makes there joins the same attempt (`session::group`).
//!
//! Every finding cites the frame that carried the decrypted PDU.

use super::{frames_filter, Context, Detector, Draft};
use crate::capture::Mark;
use crate::finding::{Code, Dir, Family, Phase, Severity};
use crate::flow::Flow;
use crate::proto::credssp::{self, Mech};
use crate::proto::inside::{Inside, KeyState};
use crate::proto::rdp;

pub struct ServerReasons;

/// The CredSSP version that added clientNonce (the CVE-2018-0886 fix).
const CREDSSP_PATCHED: u32 = 6;
/// HYBRID_EX AUTHZ_ACCESS_DENIED.
const AUTHZ_ACCESS_DENIED: u32 = 5;
/// ERRINFO_DISCONNECTED_BY_OTHERCONNECTION: an ending, said as a warning.
pub const ERRINFO_OTHER_CONNECTION: u32 = 0x5;
/// ERRINFO_SERVER_DENIED_CONNECTION: `rdp.server_denied`.
pub const ERRINFO_DENIED: u32 = 0x7;

/// The decrypted facts of a flow, when there are any.
pub fn inside(f: &Flow) -> Option<&Inside> {
    f.app.facts().inside.as_deref()
}

/// "keys.txt" for a key source index.
pub fn source_name(f: &Flow, source: u16) -> String {
    f.app
        .keys
        .as_ref()
        .and_then(|k| k.source_at(source))
        .map_or_else(|| format!("key source {source}"), |s| s.name.clone())
}

/// What a CredSSP error means and what to do, by name.
fn nla_advice(name: Option<&str>) -> (&'static str, &'static str) {
    match name {
        Some("logon_failure" | "wrong_password" | "logon_denied") => (
            "The server refused the credentials: a wrong user name or password (or a user \
             unknown to the domain the server asked).",
            "Check the user name (DOMAIN\\user or user@domain) and the password; the server's \
             Security log has event 4625 with the sub-status at this time.",
        ),
        Some("no_such_user") => (
            "The server does not know the user.",
            "Check the user name and the domain it belongs to.",
        ),
        Some("account_disabled" | "account_locked_out" | "account_expired") => (
            "The account exists but may not log on now: disabled, locked out or expired.",
            "Enable, unlock or extend the account in Active Directory (or the server's local \
             users).",
        ),
        Some("password_expired" | "password_must_change") => (
            "The password has expired or must be changed at the next logon; NLA cannot change \
             it.",
            "Change the password (Ctrl+Alt+End on another session, or the domain's password \
             page), or allow the change through RD Web / an RD Gateway.",
        ),
        Some("account_restriction" | "logon_type_not_granted") => (
            "An account restriction refused the logon: logon hours, allowed workstations, \
             Protected Users falling back to NTLM, or the right to log on through Remote \
             Desktop Services not granted.",
            "Dial the server's FQDN so Kerberos is used; check the account's restrictions and \
             the \"Allow log on through Remote Desktop Services\" right.",
        ),
        Some("unsupported_function") => (
            "The server refused the authentication package: typically NTLM refused (\"Restrict \
             NTLM\", Protected Users) when the client could not get a Kerberos ticket.",
            "Dial the server by its FQDN with a TERMSRV SPN so Kerberos works, or allow NTLM \
             for this server.",
        ),
        Some("channel_binding_failed") => (
            "The TLS channel binding did not match: a TLS-terminating device between client and \
             server.",
            "Take the TLS offloader out of the RDP path (or out of the RD Gateway's).",
        ),
        Some("time_difference_at_dc") => (
            "The clocks of the client, server or domain controller differ too much for Kerberos.",
            "Synchronise the clocks (w32tm /resync) with the domain's time source.",
        ),
        Some("smartcard_logon_required") => (
            "The account must log on with a smart card.",
            "Use the smart card (or Windows Hello for Business) in the client.",
        ),
        _ => (
            "The server ended Network Level Authentication with this error.",
            "Look the status up (NTSTATUS / SEC_E) and check the server's Security log (event \
             4625) at this time.",
        ),
    }
}

fn nla_error(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((code, at)) = i.credssp.error else {
        return;
    };
    let name = credssp::error_name(code);
    let (cause, remedy) = nla_advice(name);
    let who = match (&i.credssp.user, i.credssp.mech) {
        (Some(u), _) if !u.user.is_empty() => {
            let dom = if u.domain.is_empty() {
                String::new()
            } else {
                format!("{}\\", u.domain)
            };
            format!("; NTLM, user {dom}{}", u.user)
        }
        (_, Some(Mech::Ntlm(_))) => "; NTLM".to_string(),
        (_, Some(Mech::Kerberos)) => "; Kerberos".to_string(),
        _ => String::new(),
    };
    let label = name.map_or_else(
        || "not a status this build names".to_string(),
        |n| n.to_uppercase(),
    );
    let dialog = name
        .and_then(super::verdict::nla_dialog)
        .map(|d| format!("; the client shows error code {}", d.hex()))
        .unwrap_or_default();
    let versions = versions(i);
    let mut frames = vec![at.frame];
    frames.extend(i.credssp.last[Dir::Client].map(|m| m.frame));
    out.push(
        Draft::new(
            Code::member(Family::NlaError, name),
            Severity::Error,
            Phase::Nla,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "the server's CredSSP TSRequest in frame {} carries errorCode 0x{code:08X} ({label}){who}{versions}{dialog}",
            at.frame
        ))
        .cause(cause)
        .remedy(remedy)
        .filter(frames_filter(f, &frames)),
    );
}

/// "; TSRequest versions: client 6, server 6".
fn versions(i: &Inside) -> String {
    match i.credssp.version {
        [Some(c), Some(s)] => format!("; TSRequest versions: client {c}, server {s}"),
        _ => String::new(),
    }
}

fn version_mismatch(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let c = &i.credssp;
    let ([Some(cv), Some(sv)], None) = (c.version, c.error) else {
        return;
    };
    if cv < CREDSSP_PATCHED || sv >= CREDSSP_PATCHED || c.client_auth_info.is_some() {
        return;
    }
    // The client stopped: no credentials sent, and it ended the connection.
    let end = super::ending(f).filter(|e| e.0 == Dir::Client);
    let (Some(last_srv), Some((_, end, how))) = (c.last[Dir::Server], end) else {
        return;
    };
    out.push(
        Draft::new(
            Code::NlaCredsspVersionMismatch,
            Severity::Error,
            Phase::Nla,
            last_srv.frame,
            last_srv.ts,
        )
        .until(end.frame)
        .summary(format!(
            "the client's TSRequests carry CredSSP version {cv}, the server's {sv} (frame {}); the client sent no credentials and {how} in frame {}",
            last_srv.frame, end.frame
        ))
        .cause(
            "The client requires the CredSSP version of the CVE-2018-0886 update (\"encryption \
             oracle remediation\": Force Updated Clients) and the server answered with an older \
             one: the server lacks the update.",
        )
        .remedy(
            "Install the CredSSP update (May 2018 or later) on the server; as a stopgap only, \
             set the client's \"Encryption Oracle Remediation\" policy to Mitigated.",
        )
        .filter(frames_filter(f, &[last_srv.frame, end.frame])),
    );
}

fn access_denied(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((AUTHZ_ACCESS_DENIED, at)) = i.euar else {
        return;
    };
    out.push(
        Draft::new(
            Code::NlaAccessDenied,
            Severity::Error,
            Phase::Nla,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "HYBRID_EX: the server's Early User Authorization Result in frame {} is 0x00000005 AUTHZ_ACCESS_DENIED{}",
            at.frame,
            user_of(i)
        ))
        .cause(
            "The credentials were right but the user may not log on remotely to this server: \
             not a member of Remote Desktop Users (or Administrators), or denied \"log on \
             through Remote Desktop Services\".",
        )
        .remedy(
            "Add the user (or a group of theirs) to the server's Remote Desktop Users group, and \
             check the \"Allow/Deny log on through Remote Desktop Services\" user rights.",
        )
        .filter(frames_filter(f, &[at.frame])),
    );
}

/// "; user DOMAIN\\alice" from NTLM's AUTHENTICATE or the Client Info PDU.
pub fn user_of(i: &Inside) -> String {
    i.user().map(|u| format!("; user {u}")).unwrap_or_default()
}

fn license(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((code, st, at)) = i.license else {
        return;
    };
    if code == rdp::STATUS_VALID_CLIENT {
        return;
    }
    let name = rdp::license_name(code);
    out.push(
        Draft::new(
            Code::member(Family::RdpLicense, name),
            Severity::Error,
            Phase::Rdp,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "the server's License Error PDU in frame {} carries dwErrorCode 0x{code:08X} ({}), state transition {st}{}",
            at.frame,
            name.map_or_else(|| "unnamed".to_string(), |n| format!("ERR_{}", n.to_uppercase())),
            user_of(i)
        ))
        .cause(
            "Licensing failed: the RD Session Host found no licence server, no licence for the \
             client (per-device or per-user CALs, the grace period over), or the client's \
             licence is invalid.",
        )
        .remedy(
            "Check the server's RD Licensing configuration (licensing mode and licence server, \
             RD Licensing Diagnoser) and the installed CALs; delete the client's stored licence \
             (HKLM\\SOFTWARE\\Microsoft\\MSLicensing) if it is invalid.",
        )
        .filter(frames_filter(f, &[at.frame])),
    );
}

/// The words an ERRINFO code gets: name in upper case and its number.
pub fn errinfo_words(code: u32) -> String {
    match rdp::errinfo_name(code) {
        Some(n) => format!("0x{code:X} ERRINFO_{}", n.to_uppercase()),
        None => format!("0x{code:X}"),
    }
}

fn error_info(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((code, at)) = i.errinfo() else {
        return;
    };
    if rdp::errinfo_ordinary(code) || code == ERRINFO_DENIED {
        return;
    }
    let other = code == ERRINFO_OTHER_CONNECTION;
    let (cause, remedy) = errinfo_advice(code);
    let mut frames = vec![at.frame];
    frames.extend(i.ultimatum[Dir::Server].map(|u| u.1.frame));
    out.push(
        Draft::new(
            Code::member(Family::RdpErrorInfo, rdp::errinfo_name(code)),
            if other {
                Severity::Warning
            } else {
                Severity::Error
            },
            Phase::Rdp,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "the server's Set Error Info PDU in frame {} carries {}{}{}",
            at.frame,
            errinfo_words(code),
            if i.active().is_some() {
                " (in the active phase)"
            } else {
                " (before the session was active)"
            },
            user_of(i)
        ))
        .cause(cause)
        .remedy(remedy)
        .filter(frames_filter(f, &frames)),
    );
}

fn errinfo_advice(code: u32) -> (&'static str, &'static str) {
    match code {
        0x5 => (
            "Another connection took this session over (the same user logged on from \
             elsewhere, or reconnected).",
            "Nothing is broken; if it was unexpected, find the other connection in the server's \
             LocalSessionManager log (event 40 with reason 5).",
        ),
        0x100..=0x10A => (
            "The server ended the connection over licensing (the extended error is this \
             ERRINFO code).",
            "Check the RD Licensing configuration and CALs (RD Licensing Diagnoser).",
        ),
        0x400..=0x412 => (
            "The RD Connection Broker could not place the session (the target host is missing, \
             loading, or the pool is full).",
            "Check the broker's collection and the session hosts' state.",
        ),
        0x10C9..=0x1195 => (
            "The server ended the connection on a protocol error in the client's data \
             (capabilities, graphics mode, channels, encryption).",
            "Update the client, or try without the feature named (graphics mode, RemoteFX, \
             channels).",
        ),
        0x10 | 0x17 | 0x18 | 0x19 | 0x1A | 0x6 | 0xF | 0x11 | 0x12 => (
            "The server ended the session on a problem of its own (a crash, a shutdown or \
             reboot, out of memory, the display driver stack).",
            "Read the server's System and TerminalServices logs at this time.",
        ),
        0x9 | 0xA => (
            "The server requires other credentials: insufficient privileges, or fresh \
             credentials (not saved ones).",
            "Log on with an account allowed on this server, typing the password.",
        ),
        _ => (
            "The server ended the connection and said why in Set Error Info.",
            "Look the ERRINFO code up (MS-RDPBCGR 2.2.5.1.1) and read the server's \
             TerminalServices logs at this time.",
        ),
    }
}

/// Logon notifications that end the logon (the others are prompts or
/// continuations).
fn logon_fails(typ: u32) -> bool {
    !matches!(typ, 0xFFFF_FFFB..=0xFFFF_FFFE)
}

fn logon_error(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((typ, data, at)) = i.logon_error else {
        return;
    };
    if !logon_fails(typ) {
        return;
    }
    let name = rdp::logon_error_name(typ);
    out.push(
        Draft::new(
            Code::member(Family::RdpLogonError, name),
            Severity::Error,
            Phase::Rdp,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "the server's Save Session Info PDU in frame {} carries a logon error notification: type 0x{typ:08X} ({}), data 0x{data:08X}{}",
            at.frame,
            name.unwrap_or("unnamed"),
            user_of(i)
        ))
        .cause(
            "The connection was set up but the logon on the server failed (Winlogon refused \
             the credentials or the session).",
        )
        .remedy(
            "Read the server's Security log (event 4625) and the Winlogon / \
             TerminalServices logs at this time.",
        )
        .filter(frames_filter(f, &[at.frame])),
    );
}

fn redirected(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    let Some((r, at)) = &i.redirect else {
        return;
    };
    let to = r.target.as_deref().unwrap_or("an unnamed target");
    let token = r
        .lb_info
        .as_deref()
        .map(|t| format!(" with the routing token \"{t}\""))
        .unwrap_or_default();
    out.push(
        Draft::new(
            Code::RdpRedirected,
            Severity::Info,
            Phase::Rdp,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "the server's Server Redirection PDU in frame {} sends the client to {to}{token} (session {}){}; the client's connection there belongs to this attempt",
            at.frame,
            r.session_id,
            user_of(i)
        ))
        .cause(
            "A connection broker (RD Connection Broker, or a load balancer speaking RDP) \
             redirected the client to the session host that holds or will hold its session. \
             Not a failure: the connection to the broker ends here by design.",
        )
        .remedy(
            "Nothing to fix here; if the redirected connection fails, check that the client can \
             reach the target it was given (name resolution, routing, firewall).",
        )
        .filter(frames_filter(f, &[at.frame])),
    );
}

fn decrypt_failed(f: &Flow, i: &Inside, out: &mut Vec<Draft>) {
    if let KeyState::Unsupported { version, cipher } = i.keys {
        let Some((_, at)) = f.app.facts().tls.server_hello else {
            return;
        };
        out.push(
            Draft::new(
                Code::TlsDecryptFailed,
                Severity::Error,
                Phase::Tls,
                at.frame,
                at.ts,
            )
            .summary(format!(
                "keys were given for this TLS session, but its {} suite {} (0x{cipher:04X}) is not one this build decrypts; nothing inside it was read",
                crate::proto::tls::version_name(version),
                crate::proto::tls::cipher_name(cipher),
            ))
            .cause(
                "rdpsift decrypts AES-GCM, ChaCha20-Poly1305 and AES-CBC suites (TLS 1.0 to 1.3); \
                 this session negotiated another (3DES, CCM, RC4 …). This is about the keys, not \
                 the connection: it never decides the attempt's outcome.",
            )
            .remedy("Open the capture in Wireshark with the same key log to read this session.")
            .filter(frames_filter(f, &[at.frame])),
        );
        return;
    }
    let KeyState::Failed {
        source,
        dir,
        at,
        why,
    } = &i.keys
    else {
        return;
    };
    let opened = i.opened[Dir::Client] + i.opened[Dir::Server];
    out.push(
        Draft::new(
            Code::TlsDecryptFailed,
            Severity::Error,
            Phase::Tls,
            at.frame,
            at.ts,
        )
        .summary(format!(
            "keys for this TLS session came from {}, but the {dir}'s record in frame {} did not open ({why}); {opened} record{} had opened before it; nothing after it on that side was read",
            source_name(f, *source),
            at.frame,
            super::plural(opened)
        ))
        .cause(
            "The key log does not belong to this session (another capture, a resumed or \
             renegotiated session), or the capture lost or changed bytes of the stream. This \
             is about the keys, not the connection: it never decides the attempt's outcome.",
        )
        .remedy(
            "Give the key log written for this capture (or capture again with the key log \
             running), and make sure the capture has no loss on this connection.",
        )
        .filter(frames_filter(f, &[at.frame])),
    );
}

/// The frame of a decrypted PDU that says why the connection ended, for
/// other detectors: the server's CredSSP error, an access denial, a
/// licence error, a logon error or a Set Error Info other than the
/// ordinary ones.
pub fn explained(f: &Flow) -> Option<Mark> {
    let i = inside(f)?;
    i.credssp
        .error
        .map(|e| e.1)
        .or(i.euar.filter(|e| e.0 == AUTHZ_ACCESS_DENIED).map(|e| e.1))
        .or(i
            .license
            .filter(|l| l.0 != rdp::STATUS_VALID_CLIENT)
            .map(|l| l.2))
        .or(i.logon_error.filter(|l| logon_fails(l.0)).map(|l| l.2))
        .or(i
            .errinfo()
            .filter(|e| !rdp::errinfo_ordinary(e.0))
            .map(|e| e.1))
        .or(i.redirect.as_ref().map(|r| r.1))
}

impl Detector for ServerReasons {
    fn codes(&self) -> Vec<Code> {
        let mut v = vec![
            Code::RdpRedirected,
            Code::TlsDecryptFailed,
            Code::NlaCredsspVersionMismatch,
            Code::NlaAccessDenied,
        ];
        for (fam, names) in [
            (
                Family::NlaError,
                credssp::ERRORS.iter().map(|e| e.1).collect::<Vec<_>>(),
            ),
            (
                Family::RdpLicense,
                rdp::LICENSE_ERRORS
                    .iter()
                    .filter(|e| e.0 != rdp::STATUS_VALID_CLIENT)
                    .map(|e| e.1)
                    .collect(),
            ),
            (
                Family::RdpErrorInfo,
                rdp::ERRINFO
                    .iter()
                    .filter(|e| !rdp::errinfo_ordinary(e.0) && e.0 != ERRINFO_DENIED)
                    .map(|e| e.1)
                    .collect(),
            ),
            (
                Family::RdpLogonError,
                rdp::LOGON_MSGS
                    .iter()
                    .filter(|e| logon_fails(e.0))
                    .map(|e| e.1)
                    .chain(credssp::ERRORS.iter().map(|e| e.1))
                    .collect(),
            ),
        ] {
            v.extend(names.into_iter().map(|n| Code::member(fam, Some(n))));
            v.push(Code::member(fam, None));
        }
        v.sort();
        v.dedup();
        v
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let Some(i) = inside(f) else {
            return;
        };
        decrypt_failed(f, i, out);
        nla_error(f, i, out);
        version_mismatch(f, i, out);
        access_denied(f, i, out);
        license(f, i, out);
        logon_error(f, i, out);
        error_info(f, i, out);
        redirected(f, i, out);
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check_with_keys;
    use super::*;
    use crate::config::Config;
    use crate::proto::keylog::KeyLog;
    use crate::synth::{self, Pkt, TcpConv, C, S};

    const MS: i64 = 1_000_000;

    fn keys() -> KeyLog {
        let mut k = KeyLog::default();
        k.add("win-keys.keys", synth::keyed_keylog().as_bytes());
        k
    }

    /// A keyed session (HYBRID_EX, TLS 1.2 AES-256-GCM with the
    /// generator's keys) whose application records carry `steps`, then
    /// the server's FIN; what this detector says with `keys`.
    fn said_with(steps: &[(usize, Vec<u8>)], keys: KeyLog) -> Vec<Draft> {
        let mut out: Vec<Pkt> = vec![];
        let mut c = TcpConv::new(
            "198.18.0.10:50112",
            "198.19.0.20:3389",
            1_714_557_600 * 1_000_000_000,
        );
        let mut seal = synth::keyed_seals();
        c.handshake(&mut out, MS);
        c.send(&mut out, C, &synth::x224_cr("alice", 0xB), MS);
        c.send(&mut out, S, &synth::x224_cc(0x8), MS);
        c.send(&mut out, C, &synth::tls_client_hello(None, &[]), MS);
        c.send(
            &mut out,
            S,
            &synth::tls_server_flight(0xc030, synth::CERT_HOST),
            MS,
        );
        c.send(&mut out, C, &synth::keyed_finish(&mut seal[C], true), MS);
        c.send(&mut out, S, &synth::keyed_finish(&mut seal[S], false), MS);
        for (d, p) in steps {
            let r = seal[*d].app(p);
            c.send(&mut out, *d, &r, MS);
        }
        c.fin(&mut out, S);
        check_with_keys(&ServerReasons, &out, &Config::default(), Some(keys))
    }

    fn said(steps: &[(usize, Vec<u8>)]) -> Vec<Draft> {
        said_with(steps, keys())
    }

    fn credssp(server: Vec<u8>) -> Vec<(usize, Vec<u8>)> {
        let neg = synth::ntlm(1, "", "", "");
        let chal = synth::ntlm(2, "", "", "");
        let auth = synth::ntlm(3, "alice", "CONTOSO", "WS");
        vec![
            (C, synth::ts_request(6, Some(&neg), false, false, None)),
            (S, synth::ts_request(6, Some(&chal), false, false, None)),
            (C, synth::ts_request(6, Some(&auth), false, true, None)),
            (S, server),
        ]
    }

    fn ok_then(more: &[(usize, Vec<u8>)]) -> Vec<(usize, Vec<u8>)> {
        let mut v = credssp(synth::ts_request(6, None, false, true, None));
        v.push((C, synth::ts_request(6, None, true, false, None)));
        v.extend_from_slice(more);
        v
    }

    #[test]
    fn the_credssp_error_is_named_with_the_user_and_dialog() {
        let d = said(&credssp(synth::ts_request(
            6,
            None,
            false,
            false,
            Some(0xC000006D),
        )));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].code.is("nla.error.logon_failure"));
        assert!(d[0].summary.contains("0xC000006D"), "{}", d[0].summary);
        assert!(d[0].summary.contains("CONTOSO\\alice"), "{}", d[0].summary);
        assert!(d[0].summary.contains("0x807"), "{}", d[0].summary);
        // A value without a name: the unknown member, with the number.
        let d = said(&credssp(synth::ts_request(
            6,
            None,
            false,
            false,
            Some(0x1234_5678),
        )));
        assert!(d[0].code.is("nla.error.unknown"));
        assert!(d[0].summary.contains("0x12345678"), "{}", d[0].summary);
    }

    #[test]
    fn authorization_licence_and_error_info() {
        let d = said(&ok_then(&[(S, 5u32.to_le_bytes().to_vec())]));
        assert_eq!(
            d.iter().map(|d| d.code.to_string()).collect::<Vec<_>>(),
            ["nla.access_denied"]
        );
        // AUTHZ_SUCCESS, the normal licence answer and the ordinary
        // endings say nothing here.
        let d = said(&ok_then(&[
            (S, 0u32.to_le_bytes().to_vec()),
            (S, synth::license_error(7, 2)),
            (S, synth::set_error_info(0xC)),
            (S, synth::set_error_info(0x7)),
        ]));
        assert!(d.is_empty(), "{d:?}");
        let d = said(&ok_then(&[
            (S, 0u32.to_le_bytes().to_vec()),
            (S, synth::license_error(6, 2)),
            (S, synth::set_error_info(0x5)),
        ]));
        let codes: Vec<String> = d.iter().map(|d| d.code.to_string()).collect();
        assert_eq!(
            codes,
            [
                "rdp.license.no_license_server",
                "rdp.error_info.disconnected_by_otherconnection"
            ]
        );
        assert_eq!(d[1].severity, Severity::Warning);
    }

    #[test]
    fn records_that_do_not_open_are_said_once() {
        // A key log with the right random but another master secret.
        let mut k = KeyLog::default();
        let bad: String = synth::keyed_keylog()
            .lines()
            .filter(|l| l.starts_with("CLIENT_RANDOM"))
            .map(|l| {
                let mut f: Vec<&str> = l.split(' ').collect();
                let zero = "00".repeat(48);
                f[2] = &zero;
                f.join(" ")
            })
            .collect();
        k.add("other.keys", bad.as_bytes());
        let d = said_with(
            &credssp(synth::ts_request(6, None, false, false, Some(0xC000006D))),
            k,
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::TlsDecryptFailed);
        assert!(d[0].summary.contains("other.keys"), "{}", d[0].summary);
    }
}
