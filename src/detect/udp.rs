//! RDP over UDP (MS-RDPEUDP) and the gateway's DTLS on UDP 3391:
//! `udp.syn_unanswered` (SYNs retried, or one SYN and 3 s of capture,
//! without a SYN+ACK; or DTLS hellos never answered) and
//! `udp.icmp_unreachable`. Evidence: the SYNs with their size, intervals and
//! fragmentation, the ICMP errors quoting the flow.

use super::{conversation_filter, secs, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};
use crate::flow::Transport;

pub struct UdpTransport;

/// One SYN and this much capture after it without an answer: unanswered.
const SYN_WAIT_NS: i64 = 3_000_000_000;

impl Detector for UdpTransport {
    fn codes(&self) -> Vec<Code> {
        vec![Code::UdpSynUnanswered, Code::UdpIcmpUnreachable]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Udp {
            return;
        }
        let u = &f.rdpeudp();
        let unreachable: Vec<_> = f.icmp.iter().filter(|e| e.err.is_unreachable()).collect();
        if let (Some(first), Some(last)) = (unreachable.first(), unreachable.last()) {
            let (who, icmp) = super::icmp_sender(f, first);
            out.push(Draft::new(Code::UdpIcmpUnreachable, Severity::Warning, Phase::Udp, first.at.frame, first.at.ts)
                .until(last.at.frame)
                .summary(format!(
                    "{} answered the UDP datagrams to {} with ICMP {} ({} time{})",
                    who,
                    f.server,
                    first.err.describe(),
                    f.icmp_unreachable,
                    super::plural(f.icmp_unreachable)
                ))
                .cause("UDP to the RDP port is closed on the server (Windows firewall rule \"Remote \
                        Desktop - User Mode (UDP-In)\", or UDP transport turned off) or refused by a \
                        firewall; RDP falls back to TCP.")
                .remedy(format!(
                    "Allow UDP {} to the server (firewall rule, NSG, or the router that answered), or \
                     leave RDP on TCP if UDP is not wanted.",
                    f.server.port()
                ))
                .filter(format!(
                    "{icmp} && {}=={} && udp.port=={}",
                    if first.err.v6 { "ipv6.addr" } else { "ip.addr" },
                    f.server.ip(),
                    f.server.port()
                )));
            return;
        }
        // Gateway UDP: DTLS hellos the gateway never answers.
        if let Some(d) = u.dtls {
            if f.dirs[Dir::Server].packets == 0
                && (u.dtls_count >= 2 || cx.capture_end.ts - d.ts >= SYN_WAIT_NS)
            {
                out.push(
                    Draft::new(
                        Code::UdpSynUnanswered,
                        Severity::Warning,
                        Phase::Udp,
                        d.frame,
                        d.ts,
                    )
                    .until(f.last.frame)
                    .summary(format!(
                        "{} DTLS record{} from the client to the gateway's UDP {}, no answer",
                        u.dtls_count,
                        super::plural(u.dtls_count),
                        f.server.port()
                    ))
                    .cause(
                        "The RD Gateway's UDP transport is blocked or not enabled; the \
                            connection stays on HTTPS.",
                    )
                    .remedy(format!(
                        "Allow UDP {} to the gateway and enable UDP on it (RD Gateway Manager > \
                         Transport Settings), or ignore: RDP works over HTTPS.",
                        f.server.port()
                    ))
                    .filter(conversation_filter(f)),
                );
            }
            return;
        }
        let Some((syn, first)) = u.syn else {
            return;
        };
        if u.syn_ack.is_some() || f.dirs[Dir::Server].packets > 0 {
            return;
        }
        if u.syns < 2 && cx.capture_end.ts - first.ts < SYN_WAIT_NS {
            return;
        }
        let last = *u.syn_times.last().unwrap_or(&first);
        let gaps: Vec<String> = u
            .syn_times
            .windows(2)
            .map(|w| secs(w[1].ts - w[0].ts))
            .collect();
        let ip_len = syn.len + 8 + if f.server.is_ipv6() { 40 } else { 20 };
        let fr = &f.frags;
        let fragmented = if fr.datagrams + fr.incomplete > 0 {
            format!(
                "; the SYNs crossed the capture point as IP fragments ({} reassembled, {} never complete): the path MTU is below {} bytes, the size RDPEUDP needs",
                fr.datagrams, fr.incomplete,
                if f.server.is_ipv6() { 1280 } else { 1260 }
            )
        } else {
            String::new()
        };
        let version = match syn.version {
            Some(0x101) => ", RDPEUDP2 offered",
            Some(2) => ", version 2",
            _ => "",
        };
        out.push(Draft::new(Code::UdpSynUnanswered, Severity::Warning, Phase::Udp, first.frame, first.ts)
            .until(last.frame)
            .summary(format!(
                "{} RDPEUDP SYN{} from {} to {} ({}-byte payload, {ip_len}-byte datagram, MTU {}/{}{version}){}, no SYN+ACK{fragmented}",
                u.syns,
                super::plural(u.syns),
                f.client,
                f.server,
                syn.len,
                syn.up_mtu,
                syn.down_mtu,
                if gaps.is_empty() {
                    String::new()
                } else {
                    format!(" {} apart", gaps.join(", "))
                },
            ))
            .cause("UDP 3389 is blocked on the way (firewall, NAT, VPN) or the path cannot carry a \
                    1260-byte (IPv4) / 1280-byte (IPv6) datagram; RDP falls back to TCP.")
            .remedy(format!(
                "Allow UDP {} from the client to the server; check the path MTU (ping -f -l 1232 on \
                 Windows); on the server, \"Select RDP transport protocols\" must include UDP. \
                 Not a connectivity failure when TCP carried on.",
                f.server.port()
            ))
            .filter(conversation_filter(f)));
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{icmp_error, rdpeudp_syn, udp_pkt};

    const T: i64 = 1_714_557_600_000_000_000;

    fn syns(n: usize) -> Vec<crate::synth::Pkt> {
        let cl = "198.18.0.10:50990".parse().unwrap();
        let sv = "198.19.0.20:3389".parse().unwrap();
        (0..n)
            .map(|i| udp_pkt(cl, sv, &rdpeudp_syn([7; 16]), T + i as i64 * 3000 * MS))
            .collect()
    }

    #[test]
    fn rdpeudp_syns_without_an_answer() {
        let d = check(&UdpTransport, &syns(3), &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].code, d[0].first_frame, d[0].last_frame),
            (Code::UdpSynUnanswered, 1, 3)
        );
        assert!(
            d[0].summary.starts_with("3 RDPEUDP SYNs"),
            "{}",
            d[0].summary
        );
        // One SYN and the capture ends: too early to say.
        assert!(check(&UdpTransport, &syns(1), &Config::default()).is_empty());
    }

    #[test]
    fn an_icmp_unreachable_quoting_the_syn() {
        let mut out = syns(1);
        let e = icmp_error(
            "198.19.0.1",
            "198.18.0.10".parse().unwrap(),
            3,
            0,
            &out[0],
            T + MS,
        );
        out.push(e);
        let d = check(&UdpTransport, &out, &Config::default());
        assert!(
            d.iter().any(|d| d.code == Code::UdpIcmpUnreachable),
            "{d:?}"
        );
    }

    #[test]
    fn icmp_past_the_per_flow_cap_is_counted_exactly() {
        // 100 SYNs, each answered with port unreachable: 16 events are
        // kept, the count and the last frame are the real ones.
        let mut out = Vec::new();
        for (i, syn) in syns(100).into_iter().enumerate() {
            let e = icmp_error(
                "198.19.0.1",
                "198.18.0.10".parse().unwrap(),
                3,
                0,
                &syn,
                T + i as i64 * 3000 * MS + MS,
            );
            out.push(syn);
            out.push(e);
        }
        let d = check(&UdpTransport, &out, &Config::default());
        let u = d
            .iter()
            .find(|d| d.code == Code::UdpIcmpUnreachable)
            .expect("finding");
        assert!(u.summary.contains("(100 times)"), "{}", u.summary);
        assert_eq!((u.first_frame, u.last_frame), (2, 200));
    }
}
