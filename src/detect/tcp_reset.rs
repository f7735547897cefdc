//! `tcp.reset_by_server` / `tcp.reset_by_client`: the connection was torn
//! down with a RST after it was established. Evidence: the first RST, its
//! sender, and how far the connection had come.

use super::{filter_with, tcp_moment, Context, Detector, Draft};
use crate::finding::{Code, Confidence, Dir, Severity};
use crate::flow::Transport;

pub struct ResetDetector;

impl Detector for ResetDetector {
    fn codes(&self) -> Vec<Code> {
        vec![
            Code::TcpResetByServer,
            Code::TcpResetByClient,
            Code::TcpResetByMiddlebox,
        ]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let Some(r) = f.tcp().rst else {
            return;
        };
        if f.key.transport != Transport::Tcp {
            return;
        }
        if let Some(d) = middlebox(f) {
            out.push(d);
            return;
        }
        // A RST answering the SYN is tcp.refused; one after a FIN from the
        // same side is an ordinary abortive close after a clean end.
        if !r.established && (r.dir == Dir::Server || f.tcp().syn_ack.count == 0) {
            return;
        }
        let by_server = r.dir == Dir::Server;
        // A client that gives up after a stall: the stall is the finding.
        let stalled = f.tcp().stall.gap_ns >= cx.cfg.stall_ns
            && f.tcp().stall.after.is_some_and(|a| a.frame == r.at.frame);
        if stalled && !by_server {
            return;
        }
        let closed_first = f.tcp().dirs[Dir::Client]
            .fin
            .or(f.tcp().dirs[Dir::Server].fin)
            .is_some_and(|m| m.frame < r.at.frame);
        if closed_first {
            return;
        }
        // A session that reached the active phase and ended as healthy
        // ones do is rdp.session_ended; one cut without an ultimatum says so.
        let end = super::rdp_end::session_end(f);
        if end.as_ref().is_some_and(|e| e.ordinary) {
            return;
        }
        let cut = end.as_ref().map(|e| e.cut()).unwrap_or_default();
        let (code, who, other) = if by_server {
            (Code::TcpResetByServer, "server", "client")
        } else {
            (Code::TcpResetByClient, "client", "server")
        };
        let ep = f.endpoint(r.dir);
        let (phase, moment) = tcp_moment(f, r.bytes, r.at.frame);
        out.push(Draft::new(code, Severity::Error, phase, r.at.frame, r.at.ts)
            .summary(format!(
                "The {who} {ep} reset the connection {}{cut} (TTL {}, {} reset{} in all)",
                moment,
                r.ttl,
                f.tcp().rst_count,
                super::plural(f.tcp().rst_count)
            ))
            .cause(if by_server {
                "The server (or a device in front of it) aborted the connection; the client sees \
                 0x904 \"socket closed\"."
                    .to_string()
            } else {
                format!(
                    "The client gave up or refused what the {other} offered (a policy, a certificate \
                     or a timeout on the client side)."
                )
            })
            .remedy(if by_server {
                "Look at the server's System and TerminalServices-RemoteConnectionManager event logs \
                 at this time; check security-layer and NLA settings and any IPS or load balancer \
                 in front of the server."
                    .to_string()
            } else {
                "Look at the client's error message and event log (Microsoft-Windows-TerminalServices-\
                 ClientActiveXCore) at this time; compare client and server security settings."
                    .to_string()
            })
            .filter(filter_with(f, "tcp.flags.reset==1"))
            .confidence(end.and_then(|e| e.confidence()).unwrap_or_else(Confidence::high)));
    }
}

/// A RST whose TTL differs from every other packet of the side it claims
/// to come from: a firewall, IPS or load balancer forged it (PROTOCOLS.md
/// §7: iptables REJECT answers with its own initial TTL and IP ID 0).
pub fn middlebox(f: &crate::flow::Flow) -> Option<Draft> {
    let r = f.tcp().rst?;
    let own = f.dirs[r.dir].first_ttl?;
    if own == r.ttl {
        return None;
    }
    let who = r.dir.name();
    let ep = f.endpoint(r.dir);
    let delta = (own as i32 - r.ttl as i32).unsigned_abs();
    let (phase, moment) = tcp_moment(f, r.bytes, r.at.frame);
    let id = if r.ip_id == 0 && !f.server.is_ipv6() {
        ", IP ID 0"
    } else {
        ""
    };
    Some(Draft::new(Code::TcpResetByMiddlebox, Severity::Error, phase, r.at.frame, r.at.ts)
        .summary(format!(
            "A reset claiming to come from the {who} {ep} arrived {moment} with TTL {}{id}, while the {who}'s own packets arrive with TTL {own}",
            r.ttl
        ))
        .cause("A device on the path (firewall, IPS, load balancer, proxy) tore the connection \
                down in the endpoint's name; the client sees 0x904 \"socket closed\".")
        .remedy(format!(
            "Find the device {} hop{} from the capture point that rejects this traffic (firewall or \
             IPS rules for TCP {}, idle timeouts, TLS inspection) and allow the RDP connection.",
            delta,
            super::plural(delta),
            f.server.port()
        ))
        .filter(filter_with(f, "tcp.flags.reset==1"))
        .confidence(if delta == 1 {
            Confidence::lowered(
                crate::finding::Level::Medium,
                "the TTL differs by one hop only; a route change can do that too",
            )
        } else {
            Confidence::high()
        }))
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::finding::Level;
    use crate::synth::{x224_cr, TcpConv, C, S};

    fn session_reset_with_ttl(ttl: u8) -> Vec<Draft> {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.ttl = [64, 128];
        c.handshake(&mut out, 1_000_000);
        c.send(&mut out, C, &x224_cr("alice", 3), 1_000_000);
        c.ttl[S] = ttl;
        c.rst(&mut out, S);
        check(&ResetDetector, &out, &Config::default())
    }

    #[test]
    fn a_reset_in_the_servers_name_with_another_ttl_is_a_middlebox() {
        let d = session_reset_with_ttl(60);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::TcpResetByMiddlebox);
        assert!(d[0].summary.contains("TTL 60"), "{}", d[0].summary);
        assert!(
            d[0].summary.contains("own packets arrive with TTL 128"),
            "{}",
            d[0].summary
        );
        assert_eq!(d[0].confidence.level, Level::High);
        // One hop off: a route change can do that; medium.
        let d = session_reset_with_ttl(127);
        assert_eq!(d[0].confidence.level, Level::Medium);
        // The server's own TTL: the server reset it.
        let d = session_reset_with_ttl(128);
        assert_eq!(d[0].code, Code::TcpResetByServer);
        assert!(
            d[0].summary.contains("after the X.224 Connection Request"),
            "{}",
            d[0].summary
        );
    }
}
