//! The TLS handshake: `tls.alert.<name>` (plaintext alerts, with the side
//! that sent it and the handshake step), `tls.no_server_hello` and
//! `tls.version_mismatch`. Evidence: the hellos, the alert record and how
//! the connection ended.

use super::{ending, frames_filter, Context, Detector, Draft};
use crate::finding::{Code, Dir, Family, Phase, Severity};
use crate::flow::{Flow, Mark};
use crate::proto::tls::{alert_known, alert_name, version_name, Alert, ALERTS};
use crate::proto::Step;

pub struct Handshake;

/// Alerts that end a connection without a failure.
const NOT_FAILURES: &[u8] = &[0, 90, 100];

/// The last handshake step before `at`, in words.
fn step_before(f: &Flow, at: Mark) -> &'static str {
    let last = f
        .app
        .facts()
        .steps
        .iter()
        .filter(|(s, m)| m.frame <= at.frame && !matches!(s, Step::Alert(_)))
        .map(|(s, _)| *s)
        .next_back();
    match last {
        Some(Step::TlsDone) => "after the handshake completed",
        Some(Step::ServerCertificate) => "after the server's certificate",
        Some(Step::ServerHello) => "after the ServerHello",
        Some(Step::ClientHello) => "after the ClientHello, before any ServerHello",
        _ => "before the TLS handshake",
    }
}

/// "TLS 1.0–TLS 1.2, 17 cipher suites, SNI host".
fn offer(f: &Flow) -> String {
    let Some((h, _)) = &f.app.facts().tls.client_hello else {
        return "no ClientHello seen".into();
    };
    let lo = h.versions.iter().min().copied().unwrap_or(0);
    let hi = h.versions.iter().max().copied().unwrap_or(0);
    let v = if lo == hi {
        version_name(lo)
    } else {
        format!("{}–{}", version_name(lo), version_name(hi))
    };
    let sni = h
        .sni
        .as_ref()
        .map(|s| format!(", SNI {s}"))
        .unwrap_or_default();
    format!("client offered {v}, {} cipher suites{sni}", h.ciphers)
}

fn alert_text(a: &Alert, f: &Flow) -> (String, String) {
    let by_client = a.dir == Dir::Client;
    match a.desc {
        40 | 71 | 70 | 80 if !by_client => (
            format!(
                "The server found no acceptable TLS version or cipher suite in the ClientHello ({}); \
                 servers restricted to old TLS versions answer some offers with internal_error too.",
                offer(f)
            ),
            "Enable TLS 1.2 with current cipher suites on both sides (server: Schannel protocol and \
             cipher suite policy, KB3080079 on Windows 7/2008 R2; FreeRDP: /tls-seclevel, \
             /tls-ciphers); compare the server's allowed versions with the client's offer."
                .into(),
        ),
        42..=46 | 48 if by_client => (
            "The client rejected the server's certificate (untrusted issuer, expired, revoked or \
             wrong name)."
                .into(),
            "Install a certificate from a CA the clients trust on the server (Remote Desktop \
             certificate, SSLCertificateSHA1Hash), or deploy the issuing CA to the clients; see \
             the tls.cert.* findings for the certificate's facts."
                .into(),
        ),
        41 | 42 | 116 if !by_client => (
            "The server requires a client certificate and got none it accepts.".into(),
            "Configure the client certificate (smart card or certificate logon) or remove the \
             requirement on the server."
                .into(),
        ),
        112 => (
            "The server does not know the host name the client sent in SNI.".into(),
            "Connect with the name the server's certificate and configuration use, or add the \
             name on the server."
                .into(),
        ),
        20 | 21 | 51 => (
            "Record protection failed: keys disagree, or a device on the path altered the bytes \
             (TLS inspection, broken NIC offload)."
                .into(),
            "Look for TLS inspection or a proxy between client and server; exempt RDP from it.".into(),
        ),
        _ => (
            format!(
                "The {} aborted the TLS handshake with {}.",
                a.dir.name(),
                alert_name(a.desc)
            ),
            "Compare the TLS settings of both sides (versions, cipher suites, certificates) and \
             read the Schannel events in the System log of the side that sent the alert."
                .into(),
        ),
    }
}

impl Detector for Handshake {
    fn codes(&self) -> Vec<Code> {
        let mut v = vec![
            Code::TlsMalformed,
            Code::TlsNoServerHello,
            Code::TlsVersionMismatch,
        ];
        v.extend(
            ALERTS
                .iter()
                .filter(|(d, _)| !NOT_FAILURES.contains(d))
                .map(|(_, n)| Code::member(Family::TlsAlert, Some(n))),
        );
        v.push(Code::member(Family::TlsAlert, None));
        v
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let t = &f.app.facts().tls;
        let end = ending(f);
        // Invalid TLS (after a ClientHello, or on a flow that is TLS).
        if let Some((dir, pos, what)) = &f.app.facts().malformed {
            let at = &pos.at;
            let tls_flow = f.app.class == crate::proto::AppClass::Tls;
            if tls_flow
                || f.app
                    .facts()
                    .when(Step::ClientHello)
                    .is_some_and(|m| m.frame <= at.frame)
            {
                out.push(
                    Draft::new(
                        Code::TlsMalformed,
                        Severity::Warning,
                        Phase::Tls,
                        at.frame,
                        at.ts,
                    )
                    .summary(format!("Invalid TLS data from the {}: {what}", dir.name()))
                    .cause(
                        "A broken TLS stack, or a device on the path that altered or injected \
                            bytes (TLS inspection, a proxy, a broken middlebox).",
                    )
                    .remedy(
                        "Capture on both sides of any proxy or firewall to find where the bytes \
                             change; exempt RDP from TLS inspection.",
                    )
                    .filter(frames_filter(f, &[at.frame])),
                );
            }
        }
        let mut alerted = false;
        for a in t.alerts.iter().filter(|a| !a.encrypted) {
            // close_notify, user_canceled and no_renegotiation are not failures.
            if NOT_FAILURES.contains(&a.desc) {
                continue;
            }
            // A warning-level alert after which the handshake completed
            // did not stop anything: info.
            let went_on = a.level == 1 && t.done.is_some_and(|d| d.frame > a.at.frame);
            alerted |= !went_on;
            let name = alert_name(a.desc);

            let (cause, remedy) = alert_text(a, f);
            let then = match end {
                Some((d, m, how)) if m.frame >= a.at.frame => {
                    format!("; the {} then {how} in frame {}", d.name(), m.frame)
                }
                _ => String::new(),
            };
            out.push(
                Draft::new(
                    Code::member(Family::TlsAlert, alert_known(a.desc)),
                    match (a.level, went_on) {
                        (2, _) => Severity::Error,
                        (_, false) => Severity::Warning,
                        (_, true) => Severity::Info,
                    },
                    Phase::Tls,
                    a.at.frame,
                    a.at.ts,
                )
                .until(end.map_or(a.at.frame, |e| e.1.frame.max(a.at.frame)))
                .summary(format!(
                    "The {} sent a {} TLS alert {} ({}) {} ({}){then}",
                    a.dir.name(),
                    if a.level == 2 { "fatal" } else { "warning" },
                    name,
                    a.desc,
                    step_before(f, a.at),
                    offer(f)
                ))
                .cause(cause)
                .remedy(remedy)
                .filter(frames_filter(
                    f,
                    &[a.at.frame, end.map_or(0, |e| e.1.frame.max(a.at.frame))],
                )),
            );
            if !went_on {
                break; // the first failure alert is the one that matters
            }
        }
        let Some((ch, ch_at)) = &t.client_hello else {
            return;
        };
        if let Some((sh, sh_at)) = t.server_hello {
            if !ch.versions.contains(&sh.version) && !alerted {
                out.push(
                    Draft::new(
                        Code::TlsVersionMismatch,
                        Severity::Error,
                        Phase::Tls,
                        ch_at.frame,
                        sh_at.ts,
                    )
                    .until(sh_at.frame)
                    .summary(format!(
                        "The server chose {} in frame {}, which the client did not offer ({})",
                        version_name(sh.version),
                        sh_at.frame,
                        offer(f)
                    ))
                    .cause(
                        "Client and server have no TLS version in common; the client will abort.",
                    )
                    .remedy("Enable a common TLS version (TLS 1.2) on both sides.")
                    .filter(frames_filter(f, &[ch_at.frame, sh_at.frame])),
                );
            }
            return;
        }
        if alerted {
            return;
        }
        let ended = end.filter(|e| e.1.frame > ch_at.frame);
        if ended.is_none() && cx.capture_end.ts - ch_at.ts < cx.cfg.stall_ns {
            return;
        }
        let then = match ended {
            Some((d, m, how)) => format!(
                "the {} {how} in frame {} without a ServerHello",
                d.name(),
                m.frame
            ),
            None => format!(
                "no ServerHello in the {} that followed",
                super::secs(cx.capture_end.ts - ch_at.ts)
            ),
        };
        out.push(
            Draft::new(
                Code::TlsNoServerHello,
                Severity::Error,
                Phase::Tls,
                ch_at.frame,
                ch_at.ts,
            )
            .until(ended.map_or(ch_at.frame, |e| e.1.frame))
            .summary(format!(
                "TLS ClientHello in frame {} ({}); {then}",
                ch_at.frame,
                offer(f)
            ))
            .cause(
                "The server refused the TLS offer without an alert (version or cipher policy, \
                    a broken certificate binding), or a device dropped the handshake.",
            )
            .remedy(
                "Check the server's System log for Schannel errors (36871, 36874, 36888) at \
                     this time; compare enabled TLS versions and cipher suites with the client's \
                     offer; check the RDP certificate's private key.",
            )
            .filter(frames_filter(
                f,
                &[ch_at.frame, ended.map_or(0, |e| e.1.frame)],
            )),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{tls_alert, tls_client_hello, x224_cc, x224_cr, TcpConv, C, S};

    #[test]
    fn a_fatal_server_alert_is_its_family_member() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, 1_000_000);
        c.send(&mut out, C, &x224_cr("alice", 0x3), 1_000_000);
        c.send(&mut out, S, &x224_cc(0x1), 1_000_000);
        c.send(
            &mut out,
            C,
            &tls_client_hello(Some("rdp.example.test"), &[]),
            1_000_000,
        );
        c.send(&mut out, S, &tls_alert(2, 40), 1_000_000);
        c.close(&mut out, S, 1_000_000);
        let d = check(&Handshake, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code.to_string(), "tls.alert.handshake_failure");
        assert_eq!(d[0].code.family(), Some(Family::TlsAlert));
        assert_eq!(d[0].severity, Severity::Error);
        assert!(
            d[0].summary
                .starts_with("The server sent a fatal TLS alert"),
            "{}",
            d[0].summary
        );
        assert!(
            d[0].summary.contains("SNI rdp.example.test"),
            "{}",
            d[0].summary
        );
    }
}
