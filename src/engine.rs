//! engine: runs the pipeline over one capture. Frames are read in batches
//! that borrow from the source window; every worker walks the whole batch
//! and takes the frames whose unordered IP pair hashes to it (ICMP errors by
//! the pair they quote), so a flow, its fragments and its ICMP errors meet on
//! one worker, in capture order, with no per-packet channel. Results are
//! merged in frame order: output is the same whatever the thread count.

use crate::capture::{CaptureError, FrameMeta, ReadEvent, Reader, Source};
use crate::config::Config;
use crate::decode::{self, link};
use crate::detect::{self, Context, Draft};
use crate::flow::{Flow, Mark, Table};
use crate::report::model::{CaptureReport, Confidence, Phase, Severity};
use crate::session::{self, Judged};
use rayon::prelude::*;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Frames per batch, and bytes per batch for mapped files.
const BATCH_FRAMES: usize = 1 << 15;
const BATCH_BYTES: usize = 32 << 20;

/// One worker's state across batches.
struct Shard {
    table: Table,
    /// (interface, link type) pairs we could not decode, with the first frame.
    unsupported: Vec<(u32, u32, u64)>,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            table: Table::new(),
            unsupported: Vec::new(),
        }
    }

    fn frame(&mut self, f: &FrameMeta, data: &[u8], cfg: &Config) {
        if !link::supported(f.link) {
            if !self.unsupported.iter().any(|u| u.0 == f.iface) {
                self.unsupported.push((f.iface, f.link, f.number));
            }
            return;
        }
        let Some(ip) = link::ip_bytes(f.link, data) else {
            return;
        };
        let Some(pkt) = decode::decode(ip) else {
            return;
        };
        let at = Mark {
            frame: f.number,
            ts: f.ts,
        };
        self.table.packet(&pkt, at, cfg);
    }
}

fn shard_of(f: &FrameMeta, data: &[u8], n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let Some((a, b)) = link::ip_bytes(f.link, data).and_then(decode::packet::shard_pair) else {
        return 0;
    };
    let (lo, hi): (IpAddr, IpAddr) = if a <= b { (a, b) } else { (b, a) };
    let mut h = rustc_hash::FxHasher::default();
    lo.hash(&mut h);
    hi.hash(&mut h);
    (h.finish() % n as u64) as usize
}

/// Progress callback: bytes of capture consumed so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Analyzes one capture. `name` is how the report names it.
pub fn analyze(
    name: &str,
    src: Source,
    cfg: &Config,
    threads: usize,
    progress: Progress<'_>,
) -> CaptureReport {
    let mut report = CaptureReport {
        capture: name.to_string(),
        ..Default::default()
    };
    let mut reader = match Reader::new(src) {
        Ok(r) => r,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let threads = threads.max(1);
    let mut shards: Vec<Shard> = (0..threads).map(|_| Shard::new()).collect();
    let mut batch: Vec<FrameMeta> = Vec::with_capacity(BATCH_FRAMES);
    let mut end = Mark::default();
    let mut frames = 0u64;
    let mut corrupt: Option<(u64, String)> = None;
    loop {
        let more = match reader.next_batch(&mut batch, BATCH_FRAMES, BATCH_BYTES) {
            Ok(m) => m,
            Err(e) => {
                let frame = match &e {
                    CaptureError::Corrupt { frame, .. } => *frame,
                    _ => frames + 1,
                };
                report.error = Some(e.to_string());
                corrupt = Some((frame, e.to_string()));
                false
            }
        };
        let window = reader.window();
        if let Some(last) = batch.last() {
            frames = last.number;
            end = Mark {
                frame: last.number,
                ts: batch
                    .iter()
                    .map(|f| f.ts)
                    .max()
                    .unwrap_or(last.ts)
                    .max(end.ts),
            };
            progress(batch.iter().map(|f| f.len as u64 + 16).sum());
        }
        if threads == 1 {
            for f in &batch {
                shards[0].frame(f, f.data(window), cfg);
            }
        } else {
            let batch = &batch;
            shards.par_iter_mut().enumerate().for_each(|(i, sh)| {
                for f in batch {
                    let data = f.data(window);
                    if shard_of(f, data, threads) == i {
                        sh.frame(f, data, cfg);
                    }
                }
            });
        }
        if !more {
            break;
        }
    }
    report.frames = frames;

    // Finish every flow and judge it.
    let judged: Vec<Judged> = shards
        .par_iter_mut()
        .flat_map_iter(|sh| {
            sh.table.close(end, cfg);
            std::mem::take(&mut sh.table.done)
        })
        .map(|flow: Flow| {
            let drafts = detect::run(&Context {
                flow: &flow,
                cfg,
                capture_end: end,
            });
            Judged { flow, drafts }
        })
        .collect();
    let mut dns: Vec<crate::flow::table::DnsLookup> = shards
        .iter_mut()
        .flat_map(|s| std::mem::take(&mut s.table.dns))
        .collect();
    dns.sort_by_key(|d| d.query.at.frame);
    let (attempts, mut findings) = session::build(name, judged, &dns, end, cfg);
    report.attempts = attempts;

    // Findings about the capture itself.
    let mut cap: Vec<Draft> = Vec::new();
    for ev in &reader.events {
        if let ReadEvent::Truncated { frame, missing } = ev {
            // Cite the last complete frame: the cut record is not a frame Wireshark shows.
            cap.push(capture_draft(
                "capture.truncated",
                frame.saturating_sub(1).max(1),
                end.ts,
                format!(
                    "The file ends inside record {frame} ({missing} bytes missing); frames 1 to {} were analyzed",
                    frame - 1
                ),
                "The capture was cut (copied while still being written, disk full, or a size limit).",
                "Stop the capture cleanly before copying it, or use the file as it is: everything before the cut is in this report.",
                format!("frame.number>={}", frame.saturating_sub(1).max(1)),
            ));
        }
    }
    if let Some((frame, what)) = corrupt {
        cap.push(capture_draft(
            "capture.corrupt",
            frame,
            end.ts,
            format!("Reading stopped at frame {frame}: {what}"),
            "The file is damaged at this point.",
            "Re-export the capture (editcap or Wireshark 'Export Specified Packets'); frames before this point are in this report.",
            format!("frame.number>={}", frame.saturating_sub(1).max(1)),
        ));
    }
    let mut unsupported: Vec<(u32, u32, u64)> = shards
        .iter()
        .flat_map(|s| s.unsupported.iter().copied())
        .collect();
    unsupported.sort_by_key(|u| (u.0, u.2));
    unsupported.dedup_by_key(|u| u.0);
    for (iface, lt, frame) in unsupported {
        cap.push(capture_draft(
            "capture.unsupported_link",
            frame,
            end.ts,
            format!("Interface {iface} has link type {lt}, which rdpsift does not decode; its frames were skipped"),
            "The capture was taken on a link layer other than Ethernet, Linux cooked, raw IP or BSD loopback.",
            "Capture on an Ethernet or 'any' interface, or convert with editcap -T.",
            format!("frame.interface_id=={iface}"),
        ));
    }
    // ICMP "too big" quoting traffic that is not an attempt's: it still
    // tells about the path (info, no attempt).
    let mut orphans: Vec<&crate::flow::table::OrphanIcmp> = shards
        .iter()
        .flat_map(|s| s.table.orphan_icmp.iter())
        .filter(|o| o.err.is_too_big())
        .collect();
    orphans.sort_by_key(|o| o.at.frame);
    for o in orphans.iter().take(16) {
        let q = o.err.quoted;
        let mut d = capture_draft(
            "path.icmp_frag_needed",
            o.at.frame,
            o.at.ts,
            format!(
                "{} reported next-hop MTU {} for a {}-byte packet from {} to {} (traffic that is not an RDP attempt)",
                o.from, o.err.mtu.unwrap_or(0), q.len, q.src, q.dst
            ),
            "A link on the path has a smaller MTU than packets sent through it.",
            "Keep in mind for RDP over the same path: its TLS and CredSSP flights use full-size packets; allow this ICMP and clamp the MSS where a tunnel shrinks the path.",
            format!("frame.number=={}", o.at.frame),
        );
        d.phase = Phase::Path;
        cap.push(d);
    }
    let mut bounds = crate::flow::table::BoundsHit::default();
    for s in &shards {
        let b = &s.table.bounds;
        bounds.flows_evicted += b.flows_evicted;
        bounds.records_dropped += b.records_dropped;
        bounds.fragments_evicted += b.fragments_evicted;
        bounds.icmp_dropped += b.icmp_dropped;
        bounds.dns_dropped += b.dns_dropped;
    }
    if bounds != Default::default() {
        cap.push(capture_draft(
            "capture.bound",
            1,
            end.ts,
            format!(
                "Bounds were hit: {} flows finished early (table full), {} attempts not reported, {} fragment trains dropped, {} ICMP errors not kept, {} DNS queries not kept",
                bounds.flows_evicted, bounds.records_dropped, bounds.fragments_evicted, bounds.icmp_dropped, bounds.dns_dropped
            ),
            "The capture holds more concurrent flows or fragments than rdpsift keeps in memory.",
            "Filter the capture to the hosts of interest (tshark -r in -w out -Y 'ip.addr==…') or raise the limits.",
            String::new(),
        ));
    }
    for d in cap {
        findings.push(session::finding(name, "", "", "", d));
    }
    report.findings = findings;
    report
}

fn capture_draft(
    code: &str,
    frame: u64,
    ts: i64,
    summary: String,
    cause: &str,
    remedy: &str,
    filter: String,
) -> Draft {
    Draft {
        code: code.into(),
        severity: Severity::Info,
        phase: Phase::Capture,
        first_frame: frame,
        last_frame: frame,
        ts,
        summary,
        cause: cause.into(),
        remedy: remedy.into(),
        filter,
        confidence: Confidence::high(),
    }
}
