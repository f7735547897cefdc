//! `rdp.session_ended`: a session that reached the active phase and then
//! ended the way healthy sessions end (PROTOCOLS.md §8, 11 real Windows
//! captures): the server's MCS Disconnect Provider Ultimatum (a 33-byte
//! record under TLS 1.2 AES-GCM) answered by the client's RST within a
//! millisecond (mstsc closes abortively) or FIN (FreeRDP); the server
//! closing after its ultimatum (logoff, idle or logon timeout); the client
//! closing with FIN, or resetting after its own ultimatum. An info, and the
//! connection connected. [`session_end`] is what the reset and close
//! detectors ask before they call an ending a failure; a reset or a server
//! close without an ultimatum in the middle of the active phase stays
//! theirs, worded so.

use super::{frames_filter, secs, Context, Detector, Draft};
use crate::capture::Mark;
use crate::finding::{Code, Confidence, Dir, Level, Phase, Severity};
use crate::flow::{Flow, Transport};
use crate::proto::tls::Rec;
use crate::session::moment::{active, ending, Active};

/// Plaintext of the Disconnect Provider Ultimatum and of a Set Error Info
/// PDU (TPKT + X.224 + MCS Send Data Indication + security and share
/// headers + the 4-byte code: 36 bytes, PROTOCOLS.md §1, §8).
const ULTIMATUM_PLAIN: usize = 9;
const ERRINFO_PLAIN: usize = 36;
/// Record lengths that fit them under a suite this build does not know:
/// from TLS 1.3 CCM_8 (18) to CBC-SHA384 with an IV (64); and the Set
/// Error Info's (see `rdp.rs`).
const ULTIMATUM_ANY: std::ops::RangeInclusive<u16> = 18..=64;
const ERRINFO_ANY: std::ops::RangeInclusive<u16> = 50..=100;
/// A TLS 1.3 alert (2 bytes of plaintext) under a suite this build does
/// not know: from CCM_8 (11) to a 16-byte tag (19).
const ALERT_ANY: std::ops::RangeInclusive<u16> = 11..=19;
/// What an ordinary ERRINFO code means, in words.
fn errinfo_meaning(code: u32) -> &'static str {
    match code {
        0x0 => "no error: the session ended normally",
        0x1 => "an administrator disconnected the session",
        0x2 => "an administrator logged the session off",
        0x3 => "the idle time limit ended the session",
        0x4 => "the logon time limit ended the session",
        0x5 => "another connection took the session over",
        0xB => "the user disconnected",
        0xC => "the user logged off",
        _ => "",
    }
}

/// The T.125 ultimatum reason, named.
fn ultimatum_reason(r: u8) -> &'static str {
    match r {
        0 => "rn-domain-disconnected",
        1 => "rn-provider-initiated",
        2 => "rn-token-purged",
        3 => "rn-user-requested",
        4 => "rn-channel-purged",
        _ => "unknown",
    }
}

/// The close follows the ultimatum within this (mstsc: about 1 ms).
const ULTIMATUM_GAP_NS: i64 = 5_000_000_000;

/// Does the Set Error Info's record size fit `len` (for the denial too)?
pub fn errinfo_sized(f: &Flow, len: u16) -> bool {
    f.app
        .facts()
        .tls
        .sealed_fits(ERRINFO_PLAIN..=ERRINFO_PLAIN, &ERRINFO_ANY, len)
}

/// Who sent the ultimatum, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ultimatum {
    pub dir: Dir,
    pub at: Mark,
    /// The record's length; `None` when read in plaintext.
    pub len: Option<u16>,
}

/// How a session that reached the active phase ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub active: Active,
    /// The first FIN or RST: its side, frame and "closed (FIN)" / "reset".
    pub by: Dir,
    pub at: Mark,
    pub how: &'static str,
    pub ultimatum: Option<Ultimatum>,
    /// A Set-Error-Info-sized server record among the last before the end.
    pub errinfo: Option<Rec>,
    /// An ordinary ending (see the module's text).
    pub ordinary: bool,
    /// A capture hole stopped the record chain on this side: the ending
    /// could not be read.
    pub unreadable: Option<Dir>,
    /// The client's TLS close_notify before its close: an encrypted alert
    /// record (TLS 1.2), or under TLS 1.3 a last record of an alert's
    /// sealed size (2 bytes of plaintext: 19 with AES-GCM).
    pub notify: Option<Mark>,
}

/// The last record of `dir` at or before `frame`.
fn last_record(f: &Flow, dir: Dir, frame: u64) -> Option<Rec> {
    f.app.facts().tls.tail[dir]
        .iter()
        .rev()
        .find(|r| r.at.frame <= frame)
        .copied()
}

fn ultimatum_of(f: &Flow, dir: Dir, end: Mark) -> Option<Ultimatum> {
    let x = f.app.facts();
    let recent = |m: Mark| m.frame <= end.frame && end.ts - m.ts <= ULTIMATUM_GAP_NS;
    if x.tls.done.is_none() {
        // Standard RDP Security: the ultimatum is read in plaintext, and
        // must be the side's last PDU.
        let u = x.ultimatum[dir].filter(|&m| recent(m))?;
        let last = x.last_pdu[dir].filter(|m| m.frame <= end.frame);
        return (last == Some(u)).then_some(Ultimatum {
            dir,
            at: u,
            len: None,
        });
    }
    let r = last_record(f, dir, end.frame)?;
    (recent(r.at)
        && x.tls
            .sealed_fits(ULTIMATUM_PLAIN..=ULTIMATUM_PLAIN, &ULTIMATUM_ANY, r.len))
    .then_some(Ultimatum {
        dir,
        at: r.at,
        len: Some(r.len),
    })
}

/// The client's close_notify-like record before `end` (see [`End::notify`]).
fn close_notify(f: &Flow, end: Mark) -> Option<Mark> {
    let t = &f.app.facts().tls;
    let recent = |m: Mark| m.frame <= end.frame && end.ts - m.ts <= ULTIMATUM_GAP_NS;
    let last_app = last_record(f, Dir::Client, end.frame);
    if let Some(a) = t
        .alerts
        .iter()
        .rev()
        .find(|a| a.dir == Dir::Client && a.encrypted && recent(a.at))
    {
        if last_app.is_none_or(|r| r.at.frame <= a.at.frame) {
            return Some(a.at);
        }
    }
    // TLS 1.3 hides the alert's type: its size must say it.
    let r = last_app?;
    (t.tls13() && recent(r.at) && t.sealed_fits(2..=2, &ALERT_ANY, r.len)).then_some(r.at)
}

/// How the session ended, when it reached the active phase and a FIN or
/// RST ended it.
pub fn session_end(f: &Flow) -> Option<End> {
    if f.key.transport != Transport::Tcp {
        return None;
    }
    let active = active(f)?;
    let (by, at, how) = ending(f)?;
    if at.frame < active.since.frame {
        return None;
    }
    let x = f.app.facts();
    let unreadable = Dir::BOTH.into_iter().find(|&d| x.gap[d]);
    let ultimatum = ultimatum_of(f, Dir::Server, at).or_else(|| ultimatum_of(f, Dir::Client, at));
    let errinfo = f.app.facts().tls.tail[Dir::Server]
        .iter()
        .rev()
        .filter(|r| r.at.frame <= at.frame)
        .find(|r| ultimatum.is_none_or(|u| r.at.frame <= u.at.frame) && errinfo_sized(f, r.len))
        .copied();
    // A reset forged by a device on the path is never an ordinary end.
    let forged = f
        .tcp()
        .rst
        .is_some_and(|r| r.at == at && f.dirs[r.dir].first_ttl.is_some_and(|t| t != r.ttl));
    let rst = how == "reset";
    let notify = close_notify(f, at);
    // With keys, the server's own reason: an ERRINFO other than the
    // ordinary endings (and 0x5, said as a warning) is no ordinary end.
    let said = super::inside::inside(f).and_then(|i| i.errinfo());
    let reason_ok = said.is_none_or(|(c, _)| {
        crate::proto::rdp::errinfo_ordinary(c) || c == super::inside::ERRINFO_OTHER_CONNECTION
    });
    let ordinary = unreadable.is_none()
        && reason_ok
        && !forged
        && match (by, ultimatum.map(|u| u.dir)) {
            // The server's ultimatum, then any close from either side.
            (_, Some(Dir::Server)) => true,
            // The client's own ultimatum, then its close.
            (Dir::Client, Some(Dir::Client)) => true,
            // The client closing with FIN, or with a RST after its TLS
            // close_notify (FreeRDP shuts down TLS; an abortive close
            // then resets).
            (Dir::Client, _) => !rst || notify.is_some(),
            // The server closing in answer to the client's close_notify.
            (Dir::Server, _) => notify.is_some(),
        };
    Some(End {
        active,
        by,
        at,
        how,
        ultimatum,
        errinfo,
        ordinary,
        unreadable,
        notify,
    })
}

impl End {
    /// "12.3 s into the active phase, after 812 records from the client and
    /// 1904 from the server".
    pub fn time_in(&self) -> String {
        format!(
            "{} into the active phase, after {} records from the client and {} from the server",
            secs(self.at.ts - self.active.since.ts),
            self.active.records[0],
            self.active.records[1]
        )
    }

    /// The wording a reset or close finding adds when the ending was not an
    /// ordinary one.
    pub fn cut(&self) -> String {
        match self.unreadable {
            Some(d) => format!(
                " in the active phase ({} into it); a capture hole in the {} stream broke the record chain, so the ending could not be read",
                secs(self.at.ts - self.active.since.ts),
                d.name()
            ),
            None => format!(
                " in the middle of the active phase ({} into it), with no Disconnect Provider Ultimatum before it",
                secs(self.at.ts - self.active.since.ts),
            ),
        }
    }

    /// The confidence an unreadable ending leaves.
    pub fn confidence(&self) -> Option<Confidence> {
        self.unreadable.map(|_| {
            Confidence::lowered(
                Level::Low,
                "the ending could not be read (a capture hole broke the record chain); a healthy session's ordinary close looks the same",
            )
        })
    }
}

pub struct SessionEnded;

impl Detector for SessionEnded {
    fn codes(&self) -> Vec<Code> {
        vec![Code::RdpSessionEnded]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let Some(e) = session_end(f).filter(|e| e.ordinary) else {
            return;
        };
        let active = if e.active.by_shape {
            format!(
                "The session reached the active phase (a Confirm Active-sized client record in frame {})",
                e.active.since.frame
            )
        } else {
            "The session reached the active phase".to_string()
        };
        let closer = e.by.name();
        let mut frames = vec![e.active.since.frame, e.at.frame];
        let mut what = String::new();
        if let Some(r) = e.errinfo {
            what.push_str(&format!(
                "; the server sent a Set Error Info-sized record ({} bytes, frame {})",
                r.len, r.at.frame
            ));
            frames.push(r.at.frame);
        }
        let who = match e.ultimatum {
            Some(u) => {
                frames.push(u.at.frame);
                let size = u
                    .len
                    .map(|l| format!("-sized record ({l} bytes"))
                    .unwrap_or_else(|| " (in plaintext".to_string());
                what.push_str(&format!(
                    "; the {} sent the MCS Disconnect Provider Ultimatum{size}, frame {})",
                    u.dir.name(),
                    u.at.frame
                ));
                let after = secs(e.at.ts - u.at.ts);
                what.push_str(&format!(
                    " and the {closer} {} {after} later (frame {})",
                    e.how, e.at.frame
                ));
                match (u.dir, e.by, e.how) {
                    (Dir::Server, Dir::Client, "reset") => {
                        "the server ended the session and the client reset the connection, as mstsc closes a finished session"
                    }
                    (Dir::Server, Dir::Client, _) => {
                        "the server ended the session and the client closed the connection"
                    }
                    (Dir::Server, _, _) => {
                        "the server ended the session and closed the connection (a logoff, an idle or logon timeout, or another connection taking the session over)"
                    }
                    _ => "the client disconnected",
                }
            }
            None => {
                if let Some(n) = e.notify {
                    frames.push(n.frame);
                    let who = if e.by == Dir::Client {
                        ""
                    } else {
                        "the server "
                    };
                    let named = f
                        .app
                        .facts()
                        .tls
                        .alerts
                        .iter()
                        .any(|a| a.at == n && a.named && a.desc == 0);
                    let rec = if named {
                        "a TLS close_notify (decrypted)"
                    } else {
                        "a TLS close_notify-sized record"
                    };
                    what.push_str(&format!(
                        "; the client sent {rec} (frame {}) and {who}{} {} later (frame {})",
                        n.frame,
                        e.how,
                        secs(e.at.ts - n.ts),
                        e.at.frame
                    ));
                } else {
                    what.push_str(&format!("; the client {} in frame {}", e.how, e.at.frame));
                }
                "the client closed the connection"
            }
        };
        let mut keyed = false;
        if let Some(i) = super::inside::inside(f) {
            // The records of both sides opened: the ending was read, not
            // guessed from sizes.
            let decrypting = matches!(i.keys, crate::proto::inside::KeyState::Decrypting { .. });
            keyed = decrypting && i.opened.iter().all(|&n| n > 0);
            // Standard RDP Security shows these PDUs in the clear.
            let read = if decrypting {
                "decrypted"
            } else {
                "in the clear"
            };
            if let Some((code, at)) = i.errinfo() {
                what.push_str(&format!(
                    "; {read}: Set Error Info {} in frame {} ({})",
                    super::inside::errinfo_words(code),
                    at.frame,
                    errinfo_meaning(code)
                ));
                frames.push(at.frame);
                keyed = true;
            }
            if let Some((r, at)) = i.ultimatum[Dir::Server].or(i.ultimatum[Dir::Client]) {
                what.push_str(&format!(
                    "; {read}: the ultimatum in frame {} gives reason {r} ({})",
                    at.frame,
                    ultimatum_reason(r)
                ));
                frames.push(at.frame);
                keyed = true;
            }
            if let Some(at) = i.shutdown {
                what.push_str(&format!(
                    "; {read}: the client's Shutdown Request in frame {} (the user closed the window)",
                    at.frame
                ));
                frames.push(at.frame);
                keyed = true;
            }
        }
        let conf = if keyed || (e.ultimatum.is_some_and(|u| u.len.is_none()) && e.errinfo.is_none())
        {
            Confidence::high()
        } else {
            Confidence::lowered(
                Level::Medium,
                "inferred from record sizes and the close; the ERRINFO reason is encrypted",
            )
        };
        out.push(
            Draft::new(
                Code::RdpSessionEnded,
                Severity::Info,
                Phase::Rdp,
                e.active.since.frame,
                e.at.ts,
            )
            .until(e.at.frame)
            .summary(format!("{active}, then {who}{what}, {}", e.time_in()))
            .cause(
                "An ordinary end of a session: the user disconnected or logged off, or the \
                 server ended it (idle or logon timeout, another connection). Not a failure.",
            )
            .remedy(if keyed {
                "Nothing to fix: the PDUs read above say how it ended."
            } else {
                "Nothing to fix. The server's reason (Set Error Info: 0xB disconnect by user, \
                 0xC logoff by user, 0x3 idle timeout, 0x4 logon timeout, 0x5 another \
                 connection) is inside TLS: give a key log to read it, or see the server's \
                 TerminalServices-LocalSessionManager log at this time."
            })
            .filter(frames_filter(f, &frames))
            .confidence(conf),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, rdp_over_tls, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{tls_sealed as tls_app, TcpConv, C, CERT_HOST, S};

    /// An RDP-over-TLS session (TLS 1.2 AES-256-GCM) through the
    /// connection sequence with the record sizes of PROTOCOLS.md §8, then
    /// `n` graphics/input records each way.
    fn active_session(out: &mut Vec<crate::synth::Pkt>, n: usize) -> TcpConv {
        let mut c = rdp_over_tls(out, 0x1, CERT_HOST);
        let mut seq = 0u8;
        let mut rec = |c: &mut TcpConv, out: &mut Vec<_>, d: usize, len: usize| {
            seq = seq.wrapping_add(1);
            c.send(out, d, &tls_app(len, seq as u64), MS);
        };
        for (d, len) in [
            (C, 486),
            (S, 150),
            (C, 36),
            (C, 32),
            (S, 35),
            (C, 36),
            (S, 39),
            (C, 36),
            (S, 39),
            (C, 457),
            (S, 58),
            (S, 496),
            (C, 635),
        ] {
            rec(&mut c, out, d, len);
        }
        for i in 0..n {
            rec(&mut c, out, S, 200 + i % 1000);
            rec(&mut c, out, C, 44);
        }
        c
    }

    #[test]
    fn the_servers_ultimatum_then_the_clients_reset_is_an_ordinary_end() {
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        c.send(&mut out, S, &tls_app(60, 1), MS);
        c.send(&mut out, S, &tls_app(900, 2), MS);
        c.send(&mut out, S, &tls_app(33, 3), MS);
        c.rst(&mut out, C);
        let d = check(&SessionEnded, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].severity, Severity::Info);
        assert!(d[0].summary.contains("as mstsc closes"), "{}", d[0].summary);
        assert!(
            d[0].summary
                .contains("Set Error Info-sized record (60 bytes"),
            "{}",
            d[0].summary
        );
        assert!(d[0].summary.contains("(33 bytes"), "{}", d[0].summary);
        // The reset detector keeps quiet about it.
        assert!(check(
            &super::super::tcp_reset::ResetDetector,
            &out,
            &Config::default()
        )
        .is_empty());
    }

    #[test]
    fn a_reset_without_the_ultimatum_mid_session_stays_a_failure() {
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        c.send(&mut out, S, &tls_app(700, 3), MS);
        c.rst(&mut out, S);
        assert!(check(&SessionEnded, &out, &Config::default()).is_empty());
        let d = check(
            &super::super::tcp_reset::ResetDetector,
            &out,
            &Config::default(),
        );
        assert_eq!(d.len(), 1);
        assert!(
            d[0].summary.contains("in the middle of the active phase"),
            "{}",
            d[0].summary
        );
        // One byte off the ultimatum's size (34): not an ultimatum.
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        c.send(&mut out, S, &tls_app(34, 3), MS);
        c.rst(&mut out, C);
        assert!(check(&SessionEnded, &out, &Config::default()).is_empty());
    }

    #[test]
    fn the_clients_close_notify_then_a_close_is_ordinary() {
        use crate::synth::{filler, tls_record};
        // TLS 1.2: an encrypted alert record (type 21) from the client.
        let notify = |out: &mut Vec<_>, c: &mut TcpConv| {
            c.send(out, C, &tls_record(21, &filler(26, 9)), MS);
        };
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        notify(&mut out, &mut c);
        c.rst(&mut out, C);
        let d = check(&SessionEnded, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].summary
                .contains("the client sent a TLS close_notify-sized record"),
            "{}",
            d[0].summary
        );
        // The server closing in answer (FreeRDP's shadow server does).
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        notify(&mut out, &mut c);
        c.fin(&mut out, S);
        assert_eq!(check(&SessionEnded, &out, &Config::default()).len(), 1);
        // An application record after the alert: the alert was not the end.
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        notify(&mut out, &mut c);
        c.send(&mut out, C, &tls_app(60, 4), MS);
        c.rst(&mut out, C);
        assert!(check(&SessionEnded, &out, &Config::default()).is_empty());
    }

    #[test]
    fn before_the_active_phase_nothing_is_ordinary() {
        // Seven records each way after the Confirm Active: one short.
        let mut out = vec![];
        let mut c = active_session(&mut out, 7);
        c.send(&mut out, S, &tls_app(33, 3), MS);
        c.rst(&mut out, C);
        assert!(check(&SessionEnded, &out, &Config::default()).is_empty());
        let mut out = vec![];
        let mut c = active_session(&mut out, 8);
        c.send(&mut out, S, &tls_app(33, 3), MS);
        c.rst(&mut out, C);
        assert_eq!(check(&SessionEnded, &out, &Config::default()).len(), 1);
    }

    #[test]
    fn a_client_fin_and_a_server_logoff_are_ordinary() {
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        c.close(&mut out, C, MS);
        let d = check(&SessionEnded, &out, &Config::default());
        assert!(
            d[0].summary.contains("the client closed"),
            "{}",
            d[0].summary
        );
        let mut out = vec![];
        let mut c = active_session(&mut out, 20);
        c.send(&mut out, S, &tls_app(60, 1), MS);
        c.send(&mut out, S, &tls_app(33, 3), MS);
        c.fin(&mut out, S);
        let d = check(&SessionEnded, &out, &Config::default());
        assert!(
            d[0].summary
                .contains("the server ended the session and closed"),
            "{}",
            d[0].summary
        );
        assert!(check(
            &super::super::tcp_close::ServerClose,
            &out,
            &Config::default()
        )
        .is_empty());
    }
}
