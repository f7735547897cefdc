//! The path MTU (RFC 1191, RFC 8201, PROTOCOLS.md §6):
//! `path.icmp_frag_needed` (ICMP 3/4 or ICMPv6 Packet Too Big quoting the
//! flow), `path.blackhole` (full-size DF segments resent and never
//! acknowledged while smaller ones get through, no ICMP), `path.mss_mismatch`
//! (MSS each side announced vs largest segment vs ICMP MTU) and
//! `capture.offload` (segments larger than the link MTU captured on an
//! endpoint with TSO/GRO: not a network fault).

use super::{filter_with, frames_filter, secs, Context, Detector, Draft};
use crate::finding::{Code, Confidence, Dir, Level, Phase, Severity};
use crate::flow::{Flow, IcmpEvent, Transport};

pub struct PathMtu;

/// The Ethernet MTU: an IP packet larger than this was not on the wire as
/// one frame (segmentation or receive offload on the capturing host).
pub const LINK_MTU: u32 = 1500;

/// Segments smaller than this are not "full-size" for black-hole purposes
/// (the IPv4 minimum reassembly size, RFC 791).
const MIN_FULL: u32 = 576;

fn offload_dir(f: &Flow) -> Option<Dir> {
    Dir::BOTH
        .into_iter()
        .filter(|&d| f.dirs[d].largest_ip > LINK_MTU && f.frags.datagrams == 0)
        .max_by_key(|&d| f.dirs[d].largest_ip)
}

impl Detector for PathMtu {
    fn codes(&self) -> Vec<Code> {
        vec![
            Code::PathIcmpFragNeeded,
            Code::PathBlackhole,
            Code::PathMssMismatch,
            Code::CaptureOffload,
        ]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let too_big: Vec<&IcmpEvent> = f.icmp.iter().filter(|e| e.err.is_too_big()).collect();
        icmp_too_big(&too_big, out);
        if f.key.transport != Transport::Tcp {
            return;
        }
        let offload = offload_dir(f);
        offloaded(f, offload, out);
        sender_blackhole(cx, offload, &too_big, out);
        receiver_blackhole(cx, offload, &too_big, out);
        mss(f, offload, &too_big, out);
    }
}

/// `path.icmp_frag_needed`: ICMP "too big" quoting the flow's packets.
fn icmp_too_big(too_big: &[&IcmpEvent], out: &mut Vec<Draft>) {
    if let (Some(first), Some(last)) = (too_big.first(), too_big.last()) {
        let mtus: Vec<u32> = {
            let mut v: Vec<u32> = too_big.iter().map(|e| e.err.mtu.unwrap_or(0)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let q = first.err.quoted;
        let mtu = |m: u32| {
            if m == 0 {
                "0 (a pre-RFC 1191 router that does not say)".to_string()
            } else {
                m.to_string()
            }
        };
        let kind = if first.err.v6 {
            "ICMPv6 Packet Too Big"
        } else {
            "ICMP fragmentation needed"
        };
        let icmp = if first.err.v6 {
            "icmpv6.type==2"
        } else {
            "icmp.type==3 && icmp.code==4"
        };
        out.push(Draft::new(Code::PathIcmpFragNeeded, Severity::Warning, Phase::Path, first.at.frame, first.at.ts)
                .until(last.at.frame)
                .summary(format!(
                    "{} sent {kind} with next-hop MTU {} for a {}-byte packet{} from the {} ({} time{})",
                    first.from,
                    mtus.iter().map(|&m| mtu(m)).collect::<Vec<_>>().join(", "),
                    q.len,
                    if q.df { " with DF set" } else { "" },
                    first.dir.name(),
                    too_big.len(),
                    super::plural(too_big.len())
                ))
                .cause("A link on the path (PPPoE, a tunnel, a VPN) has a smaller MTU than the \
                        packets sent; path MTU discovery is working, the sender must send smaller \
                        packets.")
                .remedy(format!(
                    "Nothing if the connection went on (PMTU discovery adapted); otherwise lower the \
                     MTU of the tunnel/VPN interface or clamp the TCP MSS to {} on the router, and \
                     keep ICMP type 3 code 4 / ICMPv6 type 2 allowed.",
                    mtus.iter()
                        .filter(|&&m| m > 0)
                        .min()
                        .map_or("the path MTU − 40".to_string(), |m| (m
                            - if first.err.v6 { 60 } else { 40 })
                        .to_string())
                ))
                .filter(format!(
                    "{icmp} && {}=={}",
                    if first.err.v6 { "ipv6.addr" } else { "ip.addr" },
                    first.from
                )));
    }
}

/// `capture.offload`: IP packets above the link MTU, not fragmented.
fn offloaded(f: &Flow, offload: Option<Dir>, out: &mut Vec<Draft>) {
    if let Some(d) = offload {
        let ds = &f.dirs[d];
        out.push(Draft::new(Code::CaptureOffload, Severity::Info, Phase::Capture, ds.largest_ip_at.frame, ds.largest_ip_at.ts)
                .summary(format!(
                    "The {} sent IP packets of up to {} bytes (segments up to {} bytes), more than the {}-byte link MTU",
                    d.name(), ds.largest_ip, ds.largest_segment, LINK_MTU
                ))
                .cause("The capture was taken on an endpoint whose NIC segments (TSO/GSO) or \
                        coalesces (GRO/LRO) TCP: the wire carried normal-size frames. Not a network \
                        fault; sizes and retransmission counts in this capture are the host's view.")
                .remedy("To see the wire, capture on a switch port or router, or turn offloads off \
                         while capturing (ethtool -K IFACE tso off gso off gro off; on Windows, \
                         Large Send Offload in the adapter properties).")
                .filter(filter_with(f, &format!("ip.len>{LINK_MTU}"))));
    }
}

/// `path.blackhole`, the sender's view.
fn sender_blackhole(
    cx: &Context<'_>,
    offload: Option<Dir>,
    too_big: &[&IcmpEvent],
    out: &mut Vec<Draft>,
) {
    let f = cx.flow;
    // Black hole: per direction, the largest segment resent and never
    // acknowledged, bigger than anything acknowledged, with no ICMP.
    #[allow(clippy::needless_range_loop)] // d is a side, used on both sides
    for d in Dir::BOTH {
        if offload == Some(d) || !too_big.is_empty() {
            continue;
        }
        let p = &f.tcp().dirs[d].path;
        let Some(stuck) = p.stuck else {
            continue;
        };
        if stuck.len < MIN_FULL || stuck.len <= p.max_acked || !stuck.df {
            continue;
        }
        let other = d.other();
        let implied = p.max_acked_ip;
        let lost = f.tcp().dirs[d].capture_lost + f.tcp().dirs[other].capture_lost;
        out.push(Draft::new(Code::PathBlackhole, Severity::Error, Phase::Path, stuck.first.frame, stuck.first.ts)
                .until(stuck.last.frame)
                .summary(format!(
                    "The {}'s {}-byte segment (IP {} bytes, DF) was sent {} times over {} and never acknowledged, while segments up to {} bytes (IP {}) got through; no ICMP fragmentation-needed arrived{}",
                    d.name(),
                    stuck.len,
                    stuck.ip_len,
                    stuck.sends,
                    secs(stuck.last.ts - stuck.first.ts),
                    p.max_acked,
                    implied,
                    if implied >= MIN_FULL {
                        format!("; the path MTU is between {} and {} bytes", implied, stuck.ip_len - 1)
                    } else {
                        format!("; the path MTU is below {} bytes", stuck.ip_len)
                    }
                ))
                .cause("A path MTU black hole: a link on the way (VPN, tunnel, PPPoE) is smaller than \
                        the full-size packets, and the ICMP \"fragmentation needed\" that would tell \
                        the sender is filtered. The handshake's small packets pass; the first large \
                        flight (TLS certificate, CredSSP tokens) never arrives, and the client reports \
                        0x904 or a timeout.")
                .remedy(format!(
                    "Allow ICMP type 3 code 4 (and ICMPv6 type 2) through firewalls on the path; or \
                     clamp the TCP MSS on the router to {} (iptables -t mangle -A FORWARD -p tcp \
                     --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu); or lower the MTU of the \
                     tunnel/VPN interface.",
                    if implied >= MIN_FULL {
                        (implied - 40).to_string()
                    } else {
                        "the path MTU − 40".to_string()
                    }
                ))
                .filter(frames_filter(f, &[stuck.first.frame, stuck.last.frame]))
                .confidence(if lost > 0 {
                    Confidence::lowered(
                        Level::Medium,
                        "the capture itself lost packets; a missing ACK may be capture loss",
                    )
                } else {
                    Confidence::high()
                }));
    }
}

/// `path.blackhole`, the receiver's view.
fn receiver_blackhole(
    cx: &Context<'_>,
    offload: Option<Dir>,
    too_big: &[&IcmpEvent],
    out: &mut Vec<Draft>,
) {
    let f = cx.flow;
    // The receiver's view (a capture near the client of a server-to-client
    // black hole, PROTOCOLS.md §7): a hole of full-size data never filled
    // while smaller segments after it arrived, no ICMP, the connection
    // going on (or ending) long enough for any resend to have come.
    if !out.iter().any(|d| d.code == Code::PathBlackhole) && too_big.is_empty() {
        #[allow(clippy::needless_range_loop)] // d is a side
        for d in Dir::BOTH {
            let p = &f.tcp().dirs[d].path;
            let (Some((hole, held, largest)), Some(first)) = (p.unfilled, p.first_ooo) else {
                continue;
            };
            let waited = f.last.ts - first.ts;
            if offload == Some(d)
                || hole < MIN_FULL as u64
                || (largest as u64) >= hole
                || waited < 1_000_000_000
            {
                continue;
            }
            let peer_mss = f.tcp().dirs[d.other()].mss.map_or(String::new(), |m| {
                format!(" (the receiver announced MSS {m})")
            });
            out.push(Draft::new(Code::PathBlackhole, Severity::Error, Phase::Path, first.frame, first.ts)
                    .until(f.last.frame)
                    .summary(format!(
                        "{hole} bytes of the {}'s data never arrived, while {held} bytes sent after them did (segments of at most {largest} bytes){peer_mss}; the hole stayed open for {} until frame {}, and no ICMP fragmentation-needed was seen",
                        d.name(),
                        secs(waited),
                        f.last.frame
                    ))
                    .cause("Seen from the receiving side: the sender's full-size segments are lost on \
                            the way while its smaller ones arrive, and no resend ever gets through: a \
                            path MTU black hole (a smaller link with its ICMP \"fragmentation needed\" \
                            filtered). The ICMP goes to the sender, so it is never in a capture taken \
                            on this side.")
                    .remedy("Capture on the sender's side too to confirm (resends of full-size DF \
                             segments); then allow ICMP type 3 code 4 / ICMPv6 type 2 on the path, \
                             clamp the TCP MSS on the router (--clamp-mss-to-pmtu), or lower the \
                             tunnel/VPN MTU.")
                    .filter(frames_filter(f, &[first.frame, f.last.frame]))
                    .confidence(Confidence::lowered(
                        Level::Medium,
                        "seen from the receiver only: the lost segments' sizes are inferred from the hole",
                    )));
        }
    }
}

/// `path.mss_mismatch`.
fn mss(f: &Flow, offload: Option<Dir>, too_big: &[&IcmpEvent], out: &mut Vec<Draft>) {
    // MSS: what each side announced vs what was sent and the ICMP MTU.
    let (Some(cm), Some(sm)) = (f.tcp().dirs[Dir::Client].mss, f.tcp().dirs[Dir::Server].mss)
    else {
        return;
    };
    let icmp_mtu = too_big
        .iter()
        .map(|e| e.err.mtu.unwrap_or(0))
        .filter(|&m| m > 0)
        .min();
    let over = Dir::BOTH.into_iter().find(|&d| {
        let peer_mss = f.tcp().dirs[d.other()].mss.unwrap_or(u16::MAX) as u32;
        offload != Some(d) && f.dirs[d].largest_segment > peer_mss
    });
    let hdr = if f.server.is_ipv6() { 60 } else { 40 };
    let icmp_below = icmp_mtu.filter(|&m| (cm.min(sm) as u32) + hdr > m);
    if cm == sm && over.is_none() && icmp_below.is_none() {
        return;
    }
    let mut what = vec![format!("the client announced MSS {cm}, the server {sm}")];
    what.push(format!(
        "largest segments: {} bytes from the client, {} from the server",
        f.dirs[Dir::Client].largest_segment,
        f.dirs[Dir::Server].largest_segment
    ));
    if let Some(m) = icmp_mtu {
        what.push(format!(
            "ICMP reported MTU {m} (MSS {} would fit)",
            m.saturating_sub(hdr)
        ));
    }
    let syn = f.tcp().dirs[Dir::Client].syn.first.frame;
    let sa = f.tcp().syn_ack.first.frame;
    out.push(
        Draft::new(
            Code::PathMssMismatch,
            Severity::Info,
            Phase::Path,
            syn.min(sa).max(1),
            f.first.ts,
        )
        .until(syn.max(sa))
        .summary(what.join("; "))
        .cause(if over.is_some() {
            "A side sent segments larger than the MSS its peer announced: a device rewrote the \
                 MSS on one direction only, or the capture host offloads segmentation."
        } else if icmp_below.is_some() {
            "The announced MSS does not fit the path MTU that ICMP reported: the path has a \
                 smaller link than the endpoints know."
        } else {
            "The two sides announced different MSS values: a device on the path (firewall, VPN \
                 concentrator; Cisco ASA clamps to 1380) may clamp it, or the hosts differ in MTU."
        })
        .remedy(
            "Informational: compare with the MTU of each link; clamp the MSS where a tunnel \
                     shrinks the path.",
        )
        .filter(filter_with(f, "tcp.flags.syn==1")),
    );
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{filler, icmp_error, x224_cr, TcpConv, C};

    #[test]
    fn a_router_reports_a_smaller_mtu() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.mss = 1460;
        c.handshake(&mut out, MS);
        c.send(&mut out, C, &x224_cr("alice", 3), MS);
        c.send(&mut out, C, &filler(1460, 1), MS);
        let big = out[out.len() - 2].clone();
        let e = icmp_error(
            "198.19.2.1",
            "198.18.0.1".parse().unwrap(),
            4,
            1400,
            &big,
            big.ts + MS,
        );
        out.push(e);
        let d = check(&PathMtu, &out, &Config::default());
        let f = d
            .iter()
            .find(|d| d.code == Code::PathIcmpFragNeeded)
            .expect("found");
        assert_eq!(f.first_frame, out.len() as u64);
        assert!(
            f.summary
                .contains("next-hop MTU 1400 for a 1500-byte packet with DF set from the client"),
            "{}",
            f.summary
        );
        assert!(
            f.remedy.contains("clamp the TCP MSS to 1360"),
            "{}",
            f.remedy
        );
    }
}
