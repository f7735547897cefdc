//! `tcp.stalled`: during the handshake region (before the first
//! `handshake_bytes` of data), nothing moved for longer than the stall
//! threshold. Evidence: the last progress and what came after the wait.

use super::{filter_with, secs, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};
use crate::flow::Transport;

pub struct Stalled;

impl Detector for Stalled {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpStalled]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let s = f.tcp().stall;
        if f.key.transport != Transport::Tcp || s.gap_ns < cx.cfg.stall_ns {
            return;
        }
        if f.tcp().established.is_none() && !f.tcp().mid_stream {
            return; // SYN retries are tcp.syn_unanswered's.
        }
        let bytes = f.payload();
        let (ended, last) = match s.after {
            Some(a) if f.tcp().rst.is_some_and(|r| r.at.frame == a.frame) => {
                let who = if f.tcp().rst.is_some_and(|r| r.dir == Dir::Client) {
                    "client"
                } else {
                    "server"
                };
                (
                    format!("then the {who} reset the connection in frame {}", a.frame),
                    a.frame,
                )
            }
            Some(a) => (format!("until frame {}", a.frame), a.frame),
            None => ("until the end of the capture".to_string(), s.before.frame),
        };
        let range = if last > s.before.frame {
            format!("frame.number>={} && frame.number<={}", s.before.frame, last)
        } else {
            format!("frame.number>={}", s.before.frame)
        };
        let phase = super::rdp_moment(f, s.before.frame).map_or(Phase::Tcp, |m| m.0);
        let during = super::rdp_moment(f, s.before.frame)
            .map(|m| format!(", {},", m.1))
            .unwrap_or_default();
        out.push(
            Draft::new(Code::TcpStalled, Severity::Warning, phase, s.before.frame, s.before.ts)
            .until(last)
            .summary(format!(
                "No progress for {} after frame {}{during} ({ended}); {} bytes from the client and {} from the server so far",
                secs(s.gap_ns),
                s.before.frame,
                bytes[0],
                bytes[1]
            ))
            .cause(
                "One side waited for an answer that did not come: a hung service, a peer \
                 waiting for user input (credentials, certificate prompt), or packets lost on \
                 the path.",
            )
            .remedy(
                "See which side sent last: if the client, check the server's responsiveness \
                 (TermService, CPU, disk); if the server, check the client for a pending \
                 prompt; look for path loss (path.* findings).",
            )
            .filter(filter_with(f, &format!("({range})"))),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, rdp_over_tls, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{tls_app, C, CERT_HOST, S};

    #[test]
    fn no_progress_for_the_stall_timeout() {
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, CERT_HOST);
        c.send(&mut out, C, &tls_app(90, 1), 2 * MS);
        // The client's record (the ACK after it is no progress).
        let before = out.len() as u64 - 1;
        c.wait(25_000 * MS);
        c.send(&mut out, S, &tls_app(90, 2), 2 * MS);
        let d = check(&Stalled, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::TcpStalled);
        assert_eq!(d[0].phase, Phase::Nla);
        assert_eq!(d[0].first_frame, before);
        assert!(
            d[0].summary.starts_with("No progress for 25.00"),
            "{}",
            d[0].summary
        );
        // Below the timeout: nothing.
        let cfg = Config {
            stall_ns: 30_000 * MS,
            ..Config::default()
        };
        assert!(check(&Stalled, &out, &cfg).is_empty());
    }
}
