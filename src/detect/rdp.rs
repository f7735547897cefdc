//! `rdp.server_denied`: the server ended the connection during the RDP
//! connection sequence, after the security layer (and NLA) were done — the
//! extended error 0x7 case. Without keys the reason is encrypted, so the
//! finding reports what is visible: the records, their sizes and timing.

use super::{
    ending, frames_filter, records_before, secs, Context, Detector, Draft, NLA_CLIENT_RECORDS,
};
use crate::finding::{Code, Confidence, Dir, Level, Phase, Severity};
use crate::proto::Step;
use crate::session::moment::{active, shown_rdp};

pub struct ServerDenied;

/// What to do about a denial, with or without its code.
const REMEDY: &str = "Read the server's TerminalServices-RemoteConnectionManager/Operational \
     and TerminalServices-LocalSessionManager logs at this time (licensing mode and server, \
     \"Limit number of connections\", Remote Desktop Users membership, RD Connection Broker \
     redirection).";

impl Detector for ServerDenied {
    fn codes(&self) -> Vec<Code> {
        vec![Code::RdpServerDenied]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let x = &f.app.facts();
        if let Some(i) = super::inside::inside(f) {
            if let Some((super::inside::ERRINFO_DENIED, at)) = i.errinfo() {
                out.push(said(f, i, at));
                return;
            }
            if super::inside::explained(f).is_some() {
                // The server said something else: its own finding.
                return;
            }
        }
        let Some((Dir::Server, end, how)) = ending(f) else {
            return;
        };
        let server_bytes = f.dirs[Dir::Server].payload;
        if server_bytes >= cx.cfg.handshake_bytes || !shown_rdp(f) || active(f).is_some() {
            // The session got going (its end is rdp.session_ended or a
            // reset or close mid-session), or this is not RDP at all.
            return;
        }
        let nla = x.selected().is_some_and(|p| p.nla());
        let t = &x.tls;
        let (start, evidence, frames, tail_fits) = if let Some(done) = x.when(Step::TlsDone) {
            let [c, s] = records_before(f, end.frame);
            if c == 0 || (nla && c <= NLA_CLIENT_RECORDS) || done.frame > end.frame {
                return;
            }
            let tail: Vec<_> = t.tail[Dir::Server]
                .iter()
                .filter(|r| r.at.frame <= end.frame)
                .collect();
            let sizes = tail
                .iter()
                .map(|r| r.len.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let fits = tail
                .iter()
                .rev()
                .take(2)
                .any(|r| super::rdp_end::errinfo_sized(f, r.len));
            let last_client = t.app[Dir::Client].last.filter(|l| l.frame <= end.frame);
            let since = last_client
                .map(|l| format!(", {} after the client's last record", secs(end.ts - l.ts)))
                .unwrap_or_default();
            let mut frames: Vec<u64> = tail.iter().map(|r| r.at.frame).collect();
            frames.push(end.frame);
            frames.push(done.frame);
            (
                done,
                format!(
                    "TLS{} completed in frame {}; then the client sent {c} encrypted record{} and the server {s} ({} bytes in all from the server); the server {how} in frame {}{since}; its last record lengths were {sizes} bytes",
                    if nla { " and NLA" } else { "" },
                    done.frame,
                    super::plural(c),
                    server_bytes,
                    end.frame
                ),
                frames,
                fits,
            )
        } else if let Some(resp) = x.when(Step::McsConnectResponse) {
            if resp.frame > end.frame {
                return;
            }
            (
                resp,
                format!(
                    "Standard RDP Security: MCS Connect Response in frame {}; the server {how} in frame {} after {} bytes of data",
                    resp.frame, end.frame, server_bytes
                ),
                vec![resp.frame, end.frame],
                false,
            )
        } else {
            return;
        };
        let fit = if tail_fits {
            "; the size of a last record fits a Set Error Info PDU (about 36 bytes of plaintext)"
        } else {
            ""
        };
        out.push(
            Draft::new(
                Code::RdpServerDenied,
                Severity::Critical,
                Phase::Rdp,
                start.frame,
                end.ts,
            )
            .until(end.frame)
            .summary(format!("{evidence}{fit}"))
            .cause(
                "The server accepted the security handshake, then ended the connection during \
                    the RDP connection sequence: the client shows 0x904 with extended error 0x7 \
                    \"the server denied the connection\" (licensing, connection limits, a user not \
                    allowed, a policy denying the client).",
            )
            .remedy(REMEDY)
            .filter(frames_filter(f, &frames))
            .confidence(Confidence::lowered(
                Level::Medium,
                "the server's reason is encrypted; inferred from record sizes and the close",
            )),
        );
    }
}

/// The denial as the server said it: Set Error Info 0x7, read inside TLS
/// (or in the clear): certain.
fn said(
    f: &crate::flow::Flow,
    i: &crate::proto::inside::Inside,
    at: crate::capture::Mark,
) -> Draft {
    let end = ending(f).filter(|e| e.1.frame >= at.frame);
    let mut frames = vec![at.frame];
    frames.extend(i.ultimatum[Dir::Server].map(|u| u.1.frame));
    frames.extend(end.map(|e| e.1.frame));
    let when = match (i.active(), i.client_info.as_ref(), i.license) {
        (Some(_), _, _) => " in the active phase".to_string(),
        (None, _, Some((_, _, l))) => format!(" after licensing (frame {})", l.frame),
        (None, Some((_, _, c)), None) => format!(" after the Client Info PDU (frame {})", c.frame),
        _ => String::new(),
    };
    let user = super::inside::user_of(i);
    let close = end
        .map(|(d, m, how)| format!("; the {} {how} in frame {}", d.name(), m.frame))
        .unwrap_or_default();
    Draft::new(
        Code::RdpServerDenied,
        Severity::Critical,
        Phase::Rdp,
        at.frame,
        at.ts,
    )
    .until(frames.iter().copied().max().unwrap_or(at.frame))
    .summary(format!(
        "the server's Set Error Info PDU in frame {}{when} carries {}{user}{close}",
        at.frame,
        super::inside::errinfo_words(super::inside::ERRINFO_DENIED),
    ))
    .cause(
        "The server denied the connection and said so (ERRINFO_SERVER_DENIED_CONNECTION): \
             the client shows 0x904 with extended error 0x7. Licensing, connection limits, a \
             user not allowed, or a policy denying the client.",
    )
    .remedy(REMEDY)
    .filter(frames_filter(f, &frames))
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, rdp_over_tls, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{tls_app, C, CERT_HOST, S};

    #[test]
    fn a_close_right_after_nla_and_client_info_is_a_denial() {
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
        for i in 0..5 {
            c.send(&mut out, C, &tls_app(120, i), 2 * MS);
            c.send(&mut out, S, &tls_app(100, 10 + i), 2 * MS);
        }
        c.send(&mut out, S, &tls_app(60, 30), 2 * MS);
        c.fin(&mut out, S);
        let d = check(&ServerDenied, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::RdpServerDenied);
        assert_eq!(d[0].severity, Severity::Critical);
        // A client that closes is no denial.
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
        for i in 0..5 {
            c.send(&mut out, C, &tls_app(120, i), 2 * MS);
            c.send(&mut out, S, &tls_app(100, 10 + i), 2 * MS);
        }
        c.close(&mut out, C, MS);
        assert!(check(&ServerDenied, &out, &Config::default()).is_empty());
    }
}
