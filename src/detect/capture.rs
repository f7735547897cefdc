//! Findings about the capture as a whole: `capture.truncated` and
//! `capture.corrupt` (the reader's events), `capture.unsupported_link`
//! (interfaces whose link type is not decoded), `capture.bound` (memory
//! bounds that were hit) and `path.icmp_frag_needed` for ICMP "too big"
//! that quotes traffic of no attempt (info, no attempt; the first 16).

use super::{capture_draft, CaptureDetector};
use crate::capture::{Mark, ReadEvent};
use crate::finding::{Code, Draft, Phase};
use crate::flow::table::{BoundsHit, OrphanIcmp};

/// What the capture stages noticed about the file.
#[derive(Debug, Clone, Default)]
pub struct CaptureFacts {
    /// The reader's events (truncation, secrets).
    pub events: Vec<ReadEvent>,
    /// Reading stopped at this frame, for this reason.
    pub corrupt: Option<(u64, String)>,
    /// (interface, link type, first frame) of interfaces not decoded.
    pub unsupported: Vec<(u32, u32, u64)>,
    /// Frames the decoder gave up on: why, first frame, count.
    pub undecoded: Vec<(&'static str, u64, u64)>,
    /// Scans and floods (session::scan).
    pub scans: Vec<crate::session::scan::Scan>,
    /// ICMP errors that quote no tracked flow, in frame order.
    pub orphan_icmp: Vec<OrphanIcmp>,
    pub bounds: BoundsHit,
    /// The last frame.
    pub end: Mark,
    /// The capture's TLS keys (the run's and its own secrets blocks).
    pub keys: Option<std::sync::Arc<crate::proto::keylog::KeyLog>>,
    /// What the keys did per connection.
    pub key_use: Vec<crate::session::KeyUse>,
    /// Sources that came from secrets blocks read as the stream went, with
    /// the frame they arrived in.
    pub late_sources: Vec<(u16, u64)>,
    /// Secrets bytes of a mapped file's blocks over the bounds (a stream's
    /// are `ReadEvent::SecretsDropped` events).
    pub secrets_dropped: u64,
}

/// Orphan ICMP "too big" reported at most.
const MAX_ORPHAN_FINDINGS: usize = 16;

pub struct File;

impl CaptureDetector for File {
    fn codes(&self) -> Vec<Code> {
        vec![Code::CaptureTruncated, Code::CaptureCorrupt]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        for ev in &cx.events {
            if let ReadEvent::Truncated { frame, missing } = ev {
                // Cite the last complete frame: the cut record is not a frame Wireshark shows.
                let cited = frame.saturating_sub(1).max(1);
                out.push(
                    capture_draft(Code::CaptureTruncated, cited, cx.end.ts)
                        .summary(format!(
                            "The file ends inside record {frame} ({missing} bytes missing); frames 1 to {} were analyzed",
                            frame - 1
                        ))
                        .cause("The capture was cut (copied while still being written, disk full, or a size limit).")
                        .remedy("Stop the capture cleanly before copying it, or use the file as it is: everything before the cut is in this report.")
                        .filter(format!("frame.number>={cited}")),
                );
            }
        }
        if let Some((frame, what)) = &cx.corrupt {
            out.push(
                capture_draft(Code::CaptureCorrupt, *frame, cx.end.ts)
                    .summary(format!("Reading stopped at frame {frame}: {what}"))
                    .cause("The file is damaged at this point.")
                    .remedy("Re-export the capture (editcap or Wireshark 'Export Specified Packets'); frames before this point are in this report.")
                    .filter(format!("frame.number>={}", frame.saturating_sub(1).max(1))),
            );
        }
    }
}

pub struct Links;

impl CaptureDetector for Links {
    fn codes(&self) -> Vec<Code> {
        vec![Code::CaptureUnsupportedLink, Code::CaptureUndecoded]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        for &(iface, lt, frame) in &cx.unsupported {
            out.push(
                capture_draft(Code::CaptureUnsupportedLink, frame, cx.end.ts)
                    .summary(format!("Interface {iface} has link type {lt}, which rdpsift does not decode; its frames were skipped"))
                    .cause("The capture was taken on a link layer other than Ethernet, Linux cooked, raw IP or BSD loopback.")
                    .remedy("Capture on an Ethernet or 'any' interface, or convert with editcap -T.")
                    .filter(format!("frame.interface_id=={iface}")),
            );
        }
        for &(why, first, n) in &cx.undecoded {
            out.push(
                capture_draft(Code::CaptureUndecoded, first, cx.end.ts)
                    .summary(format!(
                        "{n} frame{} skipped: {why} (the first: frame {first})",
                        super::plural(n)
                    ))
                    .cause(
                        "The decoder gives up on these frames rather than guess (a hostile or \
                         damaged capture, or an unusual encapsulation); whatever they carried is \
                         not in the report.",
                    )
                    .remedy(
                        "Look at the first such frame in Wireshark; strip the encapsulation \
                         (editcap, or capture closer to the hosts) if the traffic matters.",
                    )
                    .filter(format!("frame.number=={first}")),
            );
        }
    }
}

pub struct Orphans;

impl CaptureDetector for Orphans {
    fn codes(&self) -> Vec<Code> {
        vec![Code::PathIcmpFragNeeded]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        let too_big = cx.orphan_icmp.iter().filter(|o| o.err.is_too_big());
        for o in too_big.take(MAX_ORPHAN_FINDINGS) {
            let q = o.err.quoted;
            let mut d = capture_draft(Code::PathIcmpFragNeeded, o.at.frame, o.at.ts)
                .summary(format!(
                    "{} reported next-hop MTU {} for a {}-byte packet from {} to {} (traffic that is not an RDP attempt)",
                    o.from, o.err.mtu.unwrap_or(0), q.len, q.src, q.dst
                ))
                .cause("A link on the path has a smaller MTU than packets sent through it.")
                .remedy("Keep in mind for RDP over the same path: its TLS and CredSSP flights use full-size packets; allow this ICMP and clamp the MSS where a tunnel shrinks the path.")
                .filter(format!("frame.number=={}", o.at.frame));
            d.phase = Phase::Path;
            out.push(d);
        }
    }
}

/// `tls.keys_unused`: a key source (a `--keylog` file, an `--rsa-key`,
/// the capture's Decryption Secrets Blocks) that matched no TLS session of
/// this capture; its lines that were skipped; sessions whose handshake is
/// not in the capture (they cannot be decrypted); on a stream, secrets
/// that arrived after the sessions they name.
pub struct Keys;

impl CaptureDetector for Keys {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TlsKeysUnused]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        use crate::session::KeyUse;
        let Some(keys) = &cx.keys else {
            return;
        };
        let (mut used, mut no_handshake, mut missed) = (Vec::new(), Vec::new(), Vec::new());
        for k in &cx.key_use {
            match *k {
                KeyUse::Used(s) => used.push(s),
                KeyUse::NoHandshake(m) => no_handshake.push(m),
                KeyUse::Missed(r) => missed.push(r),
            }
        }
        for (id, src) in keys.all_sources() {
            if used.contains(&id) {
                continue;
            }
            let mut why = vec![format!(
                "{} ({} secret{}) matched no TLS session of this capture",
                src.name,
                src.entries,
                super::plural(src.entries)
            )];
            if src.skipped.total() > 0 {
                let (line, first) = src.skipped.first.clone().unwrap_or_default();
                why.push(format!(
                    "{} line{} skipped ({} unknown labels, {} malformed, {} over the bound; first: line {line}: {first})",
                    src.skipped.total(),
                    super::plural(src.skipped.total()),
                    src.skipped.unknown_label,
                    src.skipped.malformed,
                    src.skipped.over_bound
                ));
            }
            let mut frame = 1;
            if let Some(&(_, at)) = cx.late_sources.iter().find(|l| l.0 == id) {
                let late = keys
                    .randoms()
                    .filter(|(r, s)| *s == id && missed.contains(&crate::session::conn::prefix(r)))
                    .count();
                if late > 0 {
                    why.push(format!(
                        "it arrived after frame {at}, once the {late} session{} it names had begun: a stream is read once, so they stay encrypted (write the secrets first: editcap --inject-secrets)",
                        super::plural(late)
                    ));
                    frame = at;
                }
            }
            if !no_handshake.is_empty() {
                why.push(format!(
                    "{} TLS session{} had no handshake in what was read (it began before the capture, or lies past --depth; first record in frame {}) and cannot be decrypted",
                    no_handshake.len(),
                    super::plural(no_handshake.len()),
                    no_handshake[0]
                ));
            }
            out.push(
                capture_draft(Code::TlsKeysUnused, frame, cx.end.ts)
                    .summary(why.join("; "))
                    .cause(
                        "The keys are for other sessions (another capture, another client or \
                         server), or the sessions they name are not in this capture.",
                    )
                    .remedy(
                        "Give the key log written while this capture was taken (SSLKEYLOGFILE of \
                         the client or server that made these connections).",
                    ),
            );
        }
    }
}

pub struct Bounds;

impl CaptureDetector for Bounds {
    fn codes(&self) -> Vec<Code> {
        vec![Code::CaptureBound]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        let b = &cx.bounds;
        let secrets: u64 = cx.secrets_dropped
            + cx.events
                .iter()
                .map(|e| match e {
                    ReadEvent::SecretsDropped { bytes, .. } => *bytes,
                    _ => 0,
                })
                .sum::<u64>();
        let blocks: u64 = cx
            .events
            .iter()
            .map(|e| match e {
                ReadEvent::SecretsDropped { blocks, .. } => *blocks,
                _ => 0,
            })
            .sum();
        if secrets > 0 {
            out.push(
                capture_draft(Code::CaptureBound, 1, cx.end.ts)
                    .summary(format!(
                        "Decryption Secrets Blocks over the bounds (16 MiB, 1024 blocks per file): {secrets} bytes of secrets were not read ({blocks} blocks dropped while reading)"
                    ))
                    .cause("The capture carries more TLS secrets than rdpsift keeps for one file.")
                    .remedy("Give the key log with --keylog instead (read a line at a time), or keep only the secrets of the sessions of interest."),
            );
        }
        if *b == BoundsHit::default() {
            return;
        }
        // Only the bounds that were hit.
        let mut hit: Vec<String> = [
            (b.flows_evicted, "flows finished early (table full)"),
            (b.records_dropped, "attempts not reported"),
            (b.fragments_evicted, "fragment trains dropped"),
            (b.icmp_dropped, "ICMP errors quoting no flow not kept"),
            (
                b.icmp_capped,
                "ICMP errors past the 16 kept per flow (counted)",
            ),
            (b.dns_dropped, "DNS queries not kept"),
            (b.krb_dropped, "Kerberos messages not kept"),
            (
                b.scan_unreported,
                "failed connections counted only (scan table)",
            ),
            (
                b.ooo_dropped,
                "out-of-order bytes dropped (256 segments / 256 KiB held per direction)",
            ),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if b.parsers_bounded > 0 {
            hit.push(format!(
                "{} flow{} whose parsers hit a bound (first: {})",
                b.parsers_bounded,
                super::plural(b.parsers_bounded),
                b.first_parser_bound.unwrap_or("?")
            ));
        }
        if hit.is_empty() {
            return;
        }
        out.push(
            capture_draft(Code::CaptureBound, 1, cx.end.ts)
                .summary(format!("Bounds were hit: {}", hit.join(", ")))
                .cause("The capture holds more concurrent flows or fragments than rdpsift keeps in memory.")
                .remedy("Filter the capture to the hosts of interest (tshark -r in -w out -Y 'ip.addr==…') or raise the limits."),
        );
    }
}

/// `tcp.scan`: a run of failed attempts toward one server that is a scan
/// or a flood (session::scan): one summary instead of an attempt each.
pub struct Scans;

impl CaptureDetector for Scans {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpScan]
    }

    fn check(&self, cx: &CaptureFacts, out: &mut Vec<Draft>) {
        use crate::session::scan::MAX_SOURCES;
        for s in &cx.scans {
            let secs = (s.last.ts - s.first.ts) as f64 / 1e9;
            let counted = |what: &str| {
                if s.sources >= MAX_SOURCES {
                    format!("at least {MAX_SOURCES} {what}s")
                } else {
                    format!("{} {what}{}", s.sources, super::plural(s.sources as u64))
                }
            };
            let ip = if s.server.is_ipv4() { "ip" } else { "ipv6" };
            let port = s.server.port();
            let shape = format!(
                "went no further than a SYN never answered ({}) or refused or reset at once ({}), frames {} to {}",
                s.attempts - s.refused,
                s.refused,
                s.first.frame,
                s.last.frame
            );
            let frames = format!(
                "frame.number>={} && frame.number<={}",
                s.first.frame, s.last.frame
            );
            let d = Draft::new(
                Code::TcpScan,
                crate::finding::Severity::Warning,
                Phase::Tcp,
                s.first.frame,
                s.first.ts,
            )
            .until(s.last.frame);
            // The filter selects both directions (a refusal's RST comes
            // from the server), within the run's frames.
            let d = match s.source {
                None => d
                    .summary(format!(
                        "{} connection attempts to {} from {} in {secs:.1} s {shape}: a scan or a flood, summarized instead of an attempt each",
                        s.attempts,
                        s.server,
                        counted("source"),
                    ))
                    .cause(
                        "Many hosts (or one host many times) opened connections to this server in quick \
                         succession and none went further: a port scan, a SYN flood, or clients in a retry \
                         storm against a server that is down or filtered. Not one user's attempt.",
                    )
                    .remedy(
                        "If the sources are not your clients, block or rate-limit them at the edge (RDP \
                         should not face the internet: use an RD Gateway or a VPN). If they are, the \
                         server is unreachable for all of them: check that it listens and that the path \
                         lets SYNs through.",
                    )
                    .filter(format!(
                        "({ip}.dst=={a} && tcp.dstport=={port} || {ip}.src=={a} && tcp.srcport=={port}) && {frames}",
                        a = s.server.ip(),
                    )),
                Some(src) => d
                    .summary(format!(
                        "{} connection attempts from {src} to port {port} of {} in {secs:.1} s {shape}: a sweep (one host probing many servers), summarized instead of an attempt each",
                        s.attempts,
                        counted("server"),
                    ))
                    .cause(
                        "One host opened connections to this port on many servers in quick succession \
                         and none went further: a host scanning the network (a scanner, a worm, an \
                         inventory tool), or a client going down a list of servers none of which it \
                         can reach. Not one user's attempt.",
                    )
                    .remedy(
                        "If the host is not meant to scan, isolate it and find what runs on it. If it \
                         is a client trying a list of servers, none is reachable from it: check its \
                         route, its firewall and the servers' filters for this port.",
                    )
                    .filter(format!(
                        "({ip}.src=={src} && tcp.dstport=={port} || {ip}.dst=={src} && tcp.srcport=={port}) && {frames}"
                    )),
            };
            out.push(d);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn truncation_cites_the_last_complete_frame() {
        let cx = CaptureFacts {
            events: vec![ReadEvent::Truncated {
                frame: 7,
                missing: 30,
            }],
            end: Mark { frame: 6, ts: 9 },
            ..Default::default()
        };
        let mut out = vec![];
        File.check(&cx, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].first_frame, out[0].ts), (6, 9));
        assert_eq!(out[0].filter, "frame.number>=6");
        let mut out = vec![];
        Bounds.check(&cx, &mut out);
        assert!(out.is_empty(), "no bound hit, no finding");
    }
}
