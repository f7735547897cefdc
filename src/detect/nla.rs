//! `nla.stalled`: NLA (CredSSP, MS-CSSP) runs inside TLS, so without keys
//! only its shape is visible. Evidence: the negotiated HYBRID/HYBRID_EX, a
//! completed TLS handshake, at most a CredSSP exchange's worth of client
//! records, then the server closing or resetting, or nothing moving.

use super::{
    ending, frames_filter, records_before, secs, Context, Detector, Draft, NLA_CLIENT_RECORDS,
};
use crate::finding::{Code, Confidence, Dir, Level, Phase, Severity};
use crate::proto::Step;

pub struct NlaStalled;

/// Plaintext of a TSRequest with only version and errorCode (MS-CSSP
/// 2.2.1): SEQUENCE { [0] INTEGER v, [4] INTEGER code } is 12 bytes with a
/// 1-byte code to 16 with a 5-byte one (0x80090302 and 0xC000006D are 4:
/// 15 bytes, a 39-byte record under TLS 1.2 GCM, PROTOCOLS.md §8).
const CREDSSP_ERROR_PLAIN: std::ops::RangeInclusive<usize> = 12..=16;
/// The same under a suite this build does not know (TLS 1.3 CCM_8 to CBC
/// with SHA-384 and an IV).
const CREDSSP_ERROR_ANY: std::ops::RangeInclusive<u16> = 21..=96;

/// The server's last record before `frame`, when it is the last record of
/// the connection before the close and has the size of a CredSSP error
/// TSRequest under the connection's suite.
fn credssp_error(f: &crate::flow::Flow, frame: u64) -> Option<crate::proto::tls::Rec> {
    let t = &f.app.facts().tls;
    let last = t.records.iter().rev().find(|r| r.at.frame <= frame)?;
    (last.dir == Dir::Server && t.sealed_fits(CREDSSP_ERROR_PLAIN, &CREDSSP_ERROR_ANY, last.len))
        .then_some(*last)
}

/// The frames an NLA finding cites: the handshake's end, the close (or the
/// last frame looked at) and every encrypted record up to it.
fn cited(
    f: &crate::flow::Flow,
    done: crate::capture::Mark,
    last: crate::capture::Mark,
) -> Vec<u64> {
    let mut frames = vec![done.frame, last.frame];
    frames.extend(
        f.app
            .facts()
            .tls
            .records
            .iter()
            .filter(|r| r.at.frame <= last.frame)
            .map(|r| r.at.frame),
    );
    frames
}

impl Detector for NlaStalled {
    fn codes(&self) -> Vec<Code> {
        vec![Code::NlaStalled, Code::NlaClientAborted]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let x = &f.app.facts();
        let Some(sel) = x.selected().filter(|p| p.nla()) else {
            return;
        };
        let Some(done) = x.when(Step::TlsDone) else {
            return;
        };
        let t = &x.tls;
        let end = ending(f).filter(|e| e.1.frame >= done.frame);
        let (how, last) = match end {
            // The server gave up, or the client did after the server went quiet.
            Some((d, m, how)) if records_before(f, m.frame)[Dir::Client] <= NLA_CLIENT_RECORDS => {
                let refusal = (d == Dir::Client)
                    .then(|| credssp_error(f, m.frame))
                    .flatten();
                if d == Dir::Client
                    && refusal.is_none()
                    && t.app[Dir::Server]
                        .last
                        .is_none_or(|l| m.ts - l.ts < cx.cfg.stall_ns)
                {
                    // The client left on its own: not the server's NLA.
                    aborted(f, sel, done, m, how, out);
                    return;
                }
                let after = refusal
                    .map(|r| {
                        format!(
                            " after the server's {}-byte record in frame {}, the size of a CredSSP TSRequest carrying only an errorCode",
                            r.len, r.at.frame
                        )
                    })
                    .unwrap_or_default();
                (
                    format!("the {} {how} in frame {}{after}", d.name(), m.frame),
                    m,
                )
            }
            Some(_) => return,
            None => {
                let last = [t.app[Dir::Client].last, t.app[Dir::Server].last, Some(done)]
                    .into_iter()
                    .flatten()
                    .max_by_key(|m| m.frame)
                    .unwrap_or(done);
                if t.app[Dir::Client].records > NLA_CLIENT_RECORDS
                    || cx.capture_end.ts - last.ts < cx.cfg.stall_ns
                {
                    return;
                }
                (
                    format!(
                        "nothing more for {} until the end of the capture",
                        secs(cx.capture_end.ts - last.ts)
                    ),
                    last,
                )
            }
        };
        let [c, s] = records_before(f, last.frame);
        let bytes = |d: Dir| {
            t.records
                .iter()
                .filter(|r| r.dir == d && r.at.frame <= last.frame)
                .map(|r| r.len as u64)
                .sum::<u64>()
        };
        let since = t.app[Dir::Client]
            .last
            .filter(|l| l.frame <= last.frame)
            .map(|l| format!(", {} after the client's last record", secs(last.ts - l.ts)))
            .unwrap_or_default();
        let frames = cited(f, done, last);
        let ex = if sel.has(crate::proto::x224::Protocols::HYBRID_EX) && s >= 3 {
            " With HYBRID_EX, a server record after the CredSSP exchange followed by the close fits an Early User Authorization Result of ACCESS_DENIED."
        } else {
            ""
        };
        let (decrypted, conf) = match decrypted(f) {
            Some(d) => (d, Confidence::high()),
            None => (
                String::new(),
                Confidence::lowered(
                    Level::Medium,
                    "CredSSP is encrypted; inferred from record counts and the close without keys",
                ),
            ),
        };
        out.push(Draft::new(Code::NlaStalled, Severity::Error, Phase::Nla, done.frame, done.ts)
            .until(last.frame)
            .summary(format!(
                "{sel} selected; TLS completed in frame {}, then the client sent {c} encrypted record{} ({} bytes) and the server {s} ({} bytes); {how}{since}{decrypted}",
                done.frame,
                super::plural(c),
                bytes(Dir::Client),
                bytes(Dir::Server),
            ))
            .cause(format!(
                "Network Level Authentication (CredSSP) failed or hung: wrong or expired \
                 credentials, an account not allowed to log on remotely, a CredSSP patch level \
                 mismatch (\"encryption oracle remediation\"), NTLM blocked, or a domain controller \
                 the server cannot reach.{ex}"
            ))
            .remedy("Look at the server's Security log (4625 with its status and sub-status) and \
                     the client's error text; check the account's \"Allow log on through Remote \
                     Desktop Services\" right, CredSSP updates on both sides, NTLM policy, and the \
                     server's reach to a domain controller.")
            .filter(frames_filter(f, &frames))
            .confidence(conf));
    }
}

/// What the decrypted CredSSP exchange showed, when the keys opened it and
/// the server gave no errorCode: the versions, the mechanism and user, and
/// that the server answered the credentials with neither its pubKeyAuth
/// nor an error (FreeRDP's servers close this way on a wrong password).
fn decrypted(f: &crate::flow::Flow) -> Option<String> {
    let i = super::inside::inside(f)?;
    if i.opened[Dir::Client] == 0 || i.credssp.requests[Dir::Client] == 0 {
        return None;
    }
    let c = &i.credssp;
    let mut s = String::from("; decrypted:");
    if let [Some(cv), Some(sv)] = c.version {
        s.push_str(&format!(" CredSSP versions client {cv}, server {sv};"));
    }
    s.push_str(&format!(
        " {} TSRequest{} from the client, {} from the server",
        c.requests[Dir::Client],
        super::plural(c.requests[Dir::Client]),
        c.requests[Dir::Server]
    ));
    match (&c.user, c.mech) {
        (Some(u), _) if !u.user.is_empty() => {
            let dom = if u.domain.is_empty() {
                String::new()
            } else {
                format!("{}\\", u.domain)
            };
            s.push_str(&format!(
                "; NTLM AUTHENTICATE for {dom}{} from workstation {}",
                u.user, u.workstation
            ));
        }
        (_, Some(crate::proto::credssp::Mech::Kerberos)) => s.push_str("; Kerberos"),
        _ => {}
    }
    if c.server_pub_key.is_none() && c.error.is_none() {
        s.push_str("; the server sent neither its pubKeyAuth (success) nor an errorCode");
    }
    if let Some(a) = f
        .app
        .facts()
        .tls
        .alerts
        .iter()
        .find(|a| a.dir == Dir::Server && a.encrypted)
    {
        s.push_str(&format!(
            ", and ended TLS with alert {} in frame {}",
            crate::proto::tls::alert_name(a.desc),
            a.at.frame
        ));
    }
    Some(s)
}

/// `nla.client_aborted`: the client closed or reset during NLA on its own
/// (no CredSSP error-sized answer before it, the server not gone quiet),
/// before the session got anywhere. A warning: mstsc leaves this way to
/// show an identity prompt and connects again (seen in zeek's
/// rdp-to-ssl.pcap: a 34 s pause, then a session).
fn aborted(
    f: &crate::flow::Flow,
    sel: crate::proto::x224::Protocols,
    done: crate::capture::Mark,
    m: crate::capture::Mark,
    how: &str,
    out: &mut Vec<Draft>,
) {
    let t = &f.app.facts().tls;
    let [c, s] = records_before(f, m.frame);
    let after = t.app[Dir::Server]
        .last
        .filter(|l| l.frame <= m.frame)
        .map(|l| format!(", {} after the server's last record", secs(m.ts - l.ts)))
        .unwrap_or_default();
    let frames = cited(f, done, m);
    out.push(
        Draft::new(Code::NlaClientAborted, Severity::Warning, Phase::Nla, done.frame, done.ts)
            .until(m.frame)
            .summary(format!(
                "{sel} selected; TLS completed in frame {}, then the client sent {c} encrypted record{} and the server {s}, and the client {how} in frame {}{after}, before NLA completed",
                done.frame,
                super::plural(c),
                m.frame,
            ))
            .cause(
                "The client stopped during Network Level Authentication on its own. mstsc does \
                 this when it shows a prompt (the server's identity or certificate cannot be \
                 verified, e.g. an address the certificate does not name) and connects again once \
                 the user accepts; otherwise the user cancelled, the client's policy refused the \
                 server (an untrusted certificate, CredSSP \"Force Updated Clients\"), or the client \
                 could not get credentials (a Kerberos error, a missing smart card).",
            )
            .remedy(
                "If a later connection from the client connected, this was the prompt; otherwise \
                 ask what the client showed, and check the client's \
                 Microsoft-Windows-TerminalServices-ClientActiveXCore event log, the server \
                 certificate's trust on the client, and Kerberos on port 88 in the capture.",
            )
            .filter(frames_filter(f, &frames))
            .confidence(Confidence::lowered(
                Level::Medium,
                "CredSSP is encrypted; inferred from record counts and the close without keys",
            )),
    );
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, rdp_over_tls, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{tls_app, C, CERT_HOST, S};

    #[test]
    fn the_server_hangs_up_during_credssp() {
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
        c.send(&mut out, C, &tls_app(90, 1), 2 * MS);
        c.send(&mut out, S, &tls_app(320, 2), 2 * MS);
        c.send(&mut out, C, &tls_app(650, 3), 2 * MS);
        c.fin(&mut out, S);
        let d = check(&NlaStalled, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::NlaStalled);
        assert_eq!(d[0].last_frame, out.len() as u64);
        assert!(
            d[0].summary.contains("the client sent 2 encrypted records"),
            "{}",
            d[0].summary
        );
    }

    #[test]
    fn the_client_leaves_after_a_credssp_error_sized_record() {
        use crate::synth::tls_sealed;
        let session = |last: usize| {
            let mut out = vec![];
            let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
            c.send(&mut out, C, &tls_sealed(81, 1), 2 * MS);
            c.send(&mut out, S, &tls_sealed(319, 2), 2 * MS);
            c.send(&mut out, C, &tls_sealed(740, 3), 2 * MS);
            c.send(&mut out, S, &tls_sealed(last, 4), 2 * MS);
            c.rst(&mut out, C);
            check(&NlaStalled, &out, &Config::default())
        };
        // 15 bytes of TSRequest (version, a 4-byte errorCode) + 24 (GCM).
        let d = session(39);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].summary
                .contains("after the server's 39-byte record in frame"),
            "{}",
            d[0].summary
        );
        assert_eq!(d[0].code, Code::NlaStalled);
        // One byte more than a 5-byte errorCode's: the client left on its
        // own, during NLA.
        let d = session(41);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::NlaClientAborted);
        assert!(
            d[0].summary.ends_with("before NLA completed"),
            "{}",
            d[0].summary
        );
        assert_eq!(session(40)[0].code, Code::NlaStalled);
    }

    #[test]
    fn past_three_client_records_nla_is_over() {
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
        for i in 0..4 {
            c.send(&mut out, C, &tls_app(90, i), 2 * MS);
            c.send(&mut out, S, &tls_app(90, 10 + i), 2 * MS);
        }
        c.fin(&mut out, S);
        assert!(check(&NlaStalled, &out, &Config::default()).is_empty());
    }
}
