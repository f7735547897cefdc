//! `tcp.syn_unanswered` and `tcp.refused`: the TCP handshake to the service
//! never completed. Evidence: the client's SYNs, and either nothing (no
//! SYN-ACK, no RST) or a RST answering them.

use super::{filter_with, secs, Context, Detector, Draft};
use crate::flow::{Transport, CLIENT, SERVER};
use crate::report::model::{Confidence, Phase, Severity};

pub struct SynDetector;

impl Detector for SynDetector {
    fn codes(&self) -> &'static [&'static str] {
        &["tcp.syn_unanswered", "tcp.refused"]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let syn = f.dirs[CLIENT].syn;
        if f.key.transport != Transport::Tcp || syn.count == 0 || f.syn_ack.count > 0 {
            return;
        }
        let port = f.server.port();
        let forged = super::tcp_reset::middlebox(f).is_some();
        if let Some(r) = f.rst.filter(|r| r.dir == SERVER && !forged) {
            out.push(Draft {
                code: "tcp.refused".into(),
                severity: Severity::Error,
                phase: Phase::Tcp,
                first_frame: syn.first.frame,
                last_frame: r.at.frame,
                ts: syn.first.ts,
                summary: format!(
                    "{} answered the SYN to port {port} with a reset (TTL {}) after {}",
                    f.server.ip(),
                    r.ttl,
                    secs(r.at.ts - syn.first.ts)
                ),
                cause: format!(
                    "Nothing listens on TCP port {port} on {}, or a firewall rejects the connection.",
                    f.server.ip()
                ),
                remedy: format!(
                    "Check that the Remote Desktop Services service (TermService) runs and listens on \
                     port {port} (netstat -an | findstr {port}); check the port in \
                     HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\PortNumber \
                     and any firewall on the way."
                ),
                filter: filter_with(f, "(tcp.flags.syn==1 || tcp.flags.reset==1)"),
                confidence: Confidence::high(),
            });
            return;
        }
        if f.rst.is_some() || !f.icmp.iter().all(|e| e.err.is_too_big()) {
            // A client reset or an ICMP error tells another story (tcp.icmp_unreachable).
            return;
        }
        let waited = cx.capture_end.ts - syn.last.ts;
        if syn.count < 2 && waited < cx.cfg.syn_timeout_ns {
            return; // The capture ended first: incomplete, not failed.
        }
        out.push(Draft {
            code: "tcp.syn_unanswered".into(),
            severity: Severity::Error,
            phase: Phase::Tcp,
            first_frame: syn.first.frame,
            last_frame: syn.last.frame,
            ts: syn.first.ts,
            summary: format!(
                "{} SYN{} to {} over {}, no SYN-ACK and no reset{}",
                syn.count,
                super::plural(syn.count),
                f.server,
                secs(syn.last.ts - syn.first.ts),
                if waited > 0 {
                    format!(" ({} of capture after the last)", secs(waited))
                } else {
                    String::new()
                }
            ),
            cause: format!(
                "{} is down, asleep or unreachable, or a firewall silently drops TCP port {port}.",
                f.server.ip()
            ),
            remedy: format!(
                "Check that the host is up (ping, ARP), that the Windows Defender Firewall rule \
                 \"Remote Desktop - User Mode (TCP-In)\" allows port {port}, and that network \
                 firewalls and NSGs on the path permit TCP {port} from {}.",
                f.client.ip()
            ),
            filter: filter_with(f, "tcp.flags.syn==1"),
            confidence: Confidence::high(),
        });
    }
}
