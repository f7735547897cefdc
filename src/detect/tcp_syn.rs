//! `tcp.syn_unanswered` and `tcp.refused`: the TCP handshake to the service
//! never completed. Evidence: the client's SYNs, and either nothing (no
//! SYN-ACK, no RST) or a RST answering them.

use super::{filter_with, secs, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};
use crate::flow::Transport;

pub struct SynDetector;

impl Detector for SynDetector {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpSynUnanswered, Code::TcpRefused]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let syn = f.tcp().dirs[Dir::Client].syn;
        if f.key.transport != Transport::Tcp || syn.count == 0 || f.tcp().syn_ack.count > 0 {
            return;
        }
        let port = f.server.port();
        let forged = super::tcp_reset::middlebox(f).is_some();
        if let Some(r) = f.tcp().rst.filter(|r| r.dir == Dir::Server && !forged) {
            out.push(Draft::new(Code::TcpRefused, Severity::Error, Phase::Tcp, syn.first.frame, syn.first.ts)
                .until(r.at.frame)
                .summary(format!(
                    "{} answered the SYN to port {port} with a reset (TTL {}) after {}",
                    f.server.ip(),
                    r.ttl,
                    secs(r.at.ts - syn.first.ts)
                ))
                .cause(format!(
                    "Nothing listens on TCP port {port} on {}, or a firewall rejects the connection.",
                    f.server.ip()
                ))
                .remedy(format!(
                    "Check that the Remote Desktop Services service (TermService) runs and listens on \
                     port {port} (netstat -an | findstr {port}); check the port in \
                     HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\PortNumber \
                     and any firewall on the way."
                ))
                .filter(filter_with(f, "(tcp.flags.syn==1 || tcp.flags.reset==1)")));
            return;
        }
        if f.tcp().rst.is_some() || !f.icmp.iter().all(|e| e.err.is_too_big()) {
            // A client reset or an ICMP error tells another story (tcp.icmp_unreachable).
            return;
        }
        let waited = cx.capture_end.ts - syn.last.ts;
        if syn.count < 2 && waited < cx.cfg.syn_timeout_ns {
            return; // The capture ended first: incomplete, not failed.
        }
        out.push(
            Draft::new(
                Code::TcpSynUnanswered,
                Severity::Error,
                Phase::Tcp,
                syn.first.frame,
                syn.first.ts,
            )
            .until(syn.last.frame)
            .summary(format!(
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
            ))
            .cause(format!(
                "{} is down, asleep or unreachable, or a firewall silently drops TCP port {port}.",
                f.server.ip()
            ))
            .remedy(format!(
                "Check that the host is up (ping, ARP), that the Windows Defender Firewall rule \
                 \"Remote Desktop - User Mode (TCP-In)\" allows port {port}, and that network \
                 firewalls and NSGs on the path permit TCP {port} from {}.",
                f.client.ip()
            ))
            .filter(filter_with(f, "tcp.flags.syn==1")),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{TcpConv, S};

    #[test]
    fn a_reset_answering_the_syn_is_refused() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.syn(&mut out).wait(2_000_000).rst(&mut out, S);
        let d = check(&SynDetector, &out, &Config::default());
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].code, d[0].first_frame, d[0].last_frame),
            (Code::TcpRefused, 1, 2)
        );
        assert!(
            d[0].summary.contains("port 3389 with a reset"),
            "{}",
            d[0].summary
        );
    }

    #[test]
    fn syns_unanswered_for_the_timeout() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.syn(&mut out)
            .syn_again(&mut out, 1_000_000_000)
            .syn_again(&mut out, 2_000_000_000);
        let d = check(&SynDetector, &out, &Config::default());
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].code, d[0].first_frame, d[0].last_frame),
            (Code::TcpSynUnanswered, 1, 3)
        );
        // One SYN at the very end of the capture: incomplete, not failed.
        let one = &out[..1];
        assert!(check(&SynDetector, one, &Config::default()).is_empty());
    }

    #[test]
    fn a_client_whose_source_port_is_3389_is_no_rdp_attempt() {
        // A client that happens to use source port 3389 dials a web server
        // that never answers: the SYN names port 80 the service (probed by
        // content), so no RDP finding; the same to port 3389 is one.
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:3389", "198.18.0.2:80", 1_000_000_000);
        c.syn(&mut out)
            .syn_again(&mut out, 1_000_000_000)
            .syn_again(&mut out, 2_000_000_000);
        let (flows, _) = super::super::fixture::flows_with_keys(&out, &Config::default(), None);
        assert!(
            flows.is_empty(),
            "a probed flow without content is not reported"
        );
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:3389", "198.18.0.2:3389", 1_000_000_000);
        c.syn(&mut out)
            .syn_again(&mut out, 1_000_000_000)
            .syn_again(&mut out, 2_000_000_000);
        assert_eq!(check(&SynDetector, &out, &Config::default()).len(), 1);
    }
}
