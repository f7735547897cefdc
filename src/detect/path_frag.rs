//! `path.fragmented`, `path.frag_incomplete`, `path.frag_overlap`: IP
//! fragments on the flow, fragment trains that never completed, and
//! overlapping fragments. Evidence: the defragmenter's record per datagram.

use super::{Context, Detector, Draft};
use crate::finding::{Code, Phase, Severity};

pub struct Fragments;

impl Detector for Fragments {
    fn codes(&self) -> Vec<Code> {
        vec![
            Code::PathFragmented,
            Code::PathFragIncomplete,
            Code::PathFragOverlap,
        ]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let fr = f.frags;
        if fr.datagrams == 0 && fr.incomplete == 0 {
            return;
        }
        let v6 = f.server.ip().is_ipv6();
        let frag_cond = if v6 {
            "ipv6.fraghdr"
        } else {
            "(ip.flags.mf==1 || ip.frag_offset>0)"
        };
        let addr = if v6 { "ipv6.addr" } else { "ip.addr" };
        // Non-first fragments carry no ports: filter on addresses.
        let filter = format!(
            "{addr}=={} && {addr}=={} && {frag_cond}",
            f.client.ip(),
            f.server.ip()
        );
        let base = |code: Code, sev, summary: String, cause: &'static str, remedy: &'static str| {
            Draft::new(code, sev, Phase::Path, fr.first.frame, fr.first.ts)
                .until(fr.last.frame)
                .summary(summary)
                .cause(cause)
                .remedy(remedy)
                .filter(filter.clone())
        };
        // RDP over UDP: the 1232-byte SYN (1260/1280-byte datagram) is the
        // packet that gets fragmented on a path below that size.
        let udp_rdp = f.key.transport == crate::flow::Transport::Udp
            && (f.server.port() == crate::config::port::RDP || f.rdpeudp().syn.is_some());
        let rdpeudp = if udp_rdp {
            format!(
                "; on RDP over UDP: the 1232-byte RDPEUDP SYN needs a {}-byte path MTU, this path has less",
                if v6 { 1280 } else { 1260 }
            )
        } else {
            String::new()
        };
        if fr.datagrams > 0 {
            out.push(base(
                Code::PathFragmented,
                Severity::Warning,
                format!(
                    "{} datagram{} arrived in {} IP fragments (largest fragment {} bytes){rdpeudp}",
                    fr.datagrams,
                    super::plural(fr.datagrams),
                    fr.fragments,
                    fr.largest
                ),
                "Packets larger than the path MTU were fragmented; firewalls and NAT often drop fragments.",
                "Find the link with the smaller MTU (VPN, tunnel, PPPoE) and lower the sender's MTU or clamp the TCP MSS; for RDP over UDP, make sure the path carries 1280-byte datagrams.",
            ));
        }
        if fr.incomplete > 0 {
            out.push(base(
                Code::PathFragIncomplete,
                Severity::Warning,
                format!(
                    "{} fragmented datagram{} never completed{rdpeudp}",
                    fr.incomplete,
                    super::plural(fr.incomplete)
                ),
                "Some fragments were lost or dropped on the way (or before the capture point).",
                "Allow IP fragments on firewalls in the path, or avoid fragmentation by lowering the MTU/MSS.",
            ));
        }
        if fr.overlaps > 0 {
            out.push(base(
                Code::PathFragOverlap,
                Severity::Warning,
                format!(
                    "{} datagram{} had overlapping fragments ({} with bytes that disagree)",
                    fr.overlaps,
                    super::plural(fr.overlaps),
                    fr.conflicts
                ),
                "Overlapping fragments are a sign of a broken device or an evasion attempt; receivers may drop them.",
                "Find the device that re-fragments the traffic; capture on both sides of it.",
            ));
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{ipv4_fragments, rdpeudp_syn, udp_datagram, IpOpts, Pkt};
    use etherparse::IpNumber;

    #[test]
    fn a_fragmented_rdpeudp_syn_and_one_that_never_completed() {
        let cl: std::net::SocketAddr = "198.18.0.10:50990".parse().unwrap();
        let sv: std::net::SocketAddr = "198.19.0.20:3389".parse().unwrap();
        let udp = udp_datagram(cl, sv, &rdpeudp_syn([7; 16]));
        let frags = |id: u16| {
            ipv4_fragments(
                cl.ip(),
                sv.ip(),
                IpNumber::UDP,
                &udp,
                1000,
                IpOpts {
                    df: false,
                    id,
                    ..IpOpts::default()
                },
                true,
            )
        };
        let mut out: Vec<Pkt> = vec![];
        let mut t = 1_000_000_000;
        for f in frags(1).into_iter().chain(frags(2).into_iter().take(1)) {
            t += 1_000_000;
            out.push(Pkt {
                ts: t,
                orig_len: f.len() as u32,
                data: f,
            });
        }
        let d = check(&Fragments, &out, &Config::default());
        let codes: Vec<String> = d.iter().map(|d| d.code.to_string()).collect();
        assert_eq!(
            codes,
            vec!["path.fragmented", "path.frag_incomplete"],
            "{d:?}"
        );
        assert!(
            d[0].summary
                .contains("the 1232-byte RDPEUDP SYN needs a 1260-byte path MTU"),
            "{}",
            d[0].summary
        );
    }
}
