//! One capture through the whole pipeline. Frames are read in batches that
//! borrow from the source window; each frame goes to one of [`PARTS`] fixed
//! parts by its unordered IP pair's hash (ICMP errors by the pair they
//! quote), so a flow, its fragments and its ICMP errors meet in one part,
//! in capture order, with no per-packet channel; the workers run the
//! parts. Flows are judged as they finish (in the part that held them) and
//! kept as compact [`Conn`]s; at checkpoints and at the end they go to the
//! file's [`Stream`], which groups, judges and writes the attempts nothing
//! later can join; then the capture detectors run. The output is the same
//! whatever the thread count.

use super::stream::{Frontier, Stream};
use crate::capture::{CaptureError, FrameMeta, Mark, Reader, Source};
use crate::config::Config;
use crate::decode::{self, link};
use crate::detect::{self, verdict, CaptureFacts, Placed};
use crate::flow::table::{BoundsHit, Finished};
use crate::flow::Table;
use crate::proto::keylog::KeyLog;
use crate::report::build;
use crate::report::model::{Attempt as Row, CaptureReport, Finding};
use crate::session::{self, Conn};
use rayon::prelude::*;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Frames per batch, and bytes per batch for mapped files.
const BATCH_FRAMES: usize = 1 << 15;
const BATCH_BYTES: usize = 32 << 20;

/// One part's state across batches (a capture has [`PARTS`] of them).
struct Shard {
    table: Table,
    /// (interface, link type) pairs we could not decode, with the first frame.
    unsupported: Vec<(u32, u32, u64)>,
    /// Frames the decoder gave up on: why, the first frame, how many.
    undecoded: Vec<(&'static str, u64, u64)>,
    /// Finished flows, judged.
    conns: Vec<Conn>,
    /// Failed attempts of a scan's shape, set aside until the whole file
    /// is read (session::scan).
    book: session::scan::Book,
    /// On a stream: the client randoms (first 8 bytes) of TLS flows that
    /// began before any keys, to tell secrets that came too late.
    unkeyed: Vec<[u8; 8]>,
    stream: bool,
    /// `table.created` when the bounds were last shared out.
    shared_at: u64,
}

impl Shard {
    /// One of `n` parts.
    fn new(n: usize, cfg: &Config) -> Shard {
        Shard {
            table: Table::shared(n, cfg),
            unsupported: Vec::new(),
            undecoded: Vec::new(),
            conns: Vec::new(),
            book: session::scan::Book::shared(n),
            unkeyed: Vec::new(),
            stream: false,
            shared_at: 0,
        }
    }

    /// Judges the flows that finished and keeps them as connections.
    fn judge_finished(&mut self, cfg: &Config) {
        for Finished { flow, judged_at } in self.table.take_done() {
            // Bounds a flow hit are said once for the file (capture.bound).
            let b = &mut self.table.bounds;
            b.ooo_dropped += flow.tcp().dirs[0].ooo_dropped + flow.tcp().dirs[1].ooo_dropped;
            b.icmp_capped += flow.icmp_seen.saturating_sub(flow.icmp.len() as u64);
            if let Some(why) = flow.app.facts().bounded {
                b.parsers_bounded += 1;
                b.first_parser_bound.get_or_insert(why);
            }
            let drafts = detect::judge_flow(&flow, cfg, judged_at);
            let outcome = verdict::flow_outcome(&flow, &drafts);
            if self.stream && flow.app.keys.is_none() {
                if let Some(r) = flow.app.facts().tls.client_random {
                    self.unkeyed.push(session::conn::prefix(&r));
                }
            }
            if let Some(c) = self.book.put(Conn::new(&flow, drafts, outcome)) {
                if self.table.admit_record(cfg) {
                    self.conns.push(c);
                }
            }
        }
    }

    /// One frame, `ip` its IP packet as [`ip_of`] found it (found once,
    /// whether to pick the part or to decode).
    fn frame(&mut self, f: &FrameMeta, data: &[u8], ip: Option<&[u8]>, cfg: &Config) {
        if !link::supported(f.link) {
            if !self.unsupported.iter().any(|u| u.0 == f.iface) {
                self.unsupported.push((f.iface, f.link, f.number));
            }
            return;
        }
        let Some(ip) = ip else {
            if let Some(why) = link::give_up(f.link, data) {
                self.gave_up(why, f.number);
            }
            return;
        };
        let Some(pkt) = decode::decode(ip) else {
            return;
        };
        if let Some(why) = decode::packet::given_up(&pkt) {
            self.gave_up(why, f.number);
            return;
        }
        let at = Mark {
            frame: f.number,
            ts: f.ts,
        };
        self.table.packet(&pkt, at, cfg);
    }
}

impl Shard {
    fn gave_up(&mut self, why: &'static str, frame: u64) {
        match self.undecoded.iter_mut().find(|u| u.0 == why) {
            Some(u) => u.2 += 1,
            None => self.undecoded.push((why, frame, 1)),
        }
    }
}

/// A frame's IP packet: `None` when its link layer is not decoded or it
/// carries none.
fn ip_of<'a>(f: &FrameMeta, data: &'a [u8]) -> Option<&'a [u8]> {
    if link::supported(f.link) {
        link::ip_bytes(f.link, data)
    } else {
        None
    }
}

/// The part of `n` an IP packet goes to (part 0 without one).
fn part_of(ip: Option<&[u8]>, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let Some((a, b)) = ip.and_then(decode::packet::shard_pair) else {
        return 0;
    };
    let (lo, hi): (IpAddr, IpAddr) = if a <= b { (a, b) } else { (b, a) };
    let mut h = rustc_hash::FxHasher::default();
    lo.hash(&mut h);
    hi.hash(&mut h);
    // The high bits: FxHash's low bits follow the input's low bits (a
    // modulus used 16 of 32 parts for addresses differing in one octet).
    ((h.finish() as u128 * n as u128) >> 64) as usize
}

/// The fixed parts a capture's flows are split into by IP pair: each is a
/// table with its share of the per-file bounds, run by whichever worker is
/// free. They do not depend on the thread count, so neither does what a
/// bound drops (the output is the same for any `-j`, bounds hit or not).
pub const PARTS: usize = 32;

/// Gives each part, every [`SHARE_EVERY`] frames, what it holds plus a
/// share of the file's free room: of `max_flows` in proportion to the
/// flows it began since the last share plus the parts' mean (so a quiet
/// part can start), of `max_records` in equal parts. Together they never
/// pass the file's bounds, busy parts get more of the room, and, decided
/// at points that do not depend on the thread count, what a bound drops
/// does not either.
fn share_bounds(shards: &mut [Shard], cfg: &Config, freed: usize) {
    let n = shards.len().max(1);
    let held: usize = shards.iter().map(|s| s.table.len()).sum();
    // Reported connections held: those the parts gave out less those
    // whose rows are written (`freed`).
    let given: usize = shards
        .iter()
        .map(|s| s.table.records())
        .sum::<usize>()
        .saturating_sub(freed);
    let free_flows = cfg.max_flows.saturating_sub(held) as u128;
    let records = cfg.max_records.saturating_sub(given) / n;
    let began: Vec<u128> = shards
        .iter()
        .map(|s| (s.table.created - s.shared_at) as u128)
        .collect();
    let mean = began.iter().sum::<u128>() / n as u128 + 1;
    let weights: u128 = began.iter().map(|b| b + mean).sum();
    for (s, b) in shards.iter_mut().zip(began) {
        s.shared_at = s.table.created;
        let t = &mut s.table;
        t.set_share(
            t.len() + (free_flows * (b + mean) / weights) as usize,
            t.records() + records,
        );
    }
}

/// Runs frames of a batch through the parts (each takes its own by the IP
/// pair's hash) on `threads` workers and judges the flows that finished.
/// Every [`SWEEP_ALL`] chunks every part is swept for idle flows as of the
/// capture's clock (a part sweeps itself as its own packets come; one
/// whose IP pairs went quiet would hold its finished flows); there, and
/// every `checkpoint_frames` (tests make it small, or 0: only once the
/// file is read; it changes nothing but when rows are written), the
/// attempts that can be decided are ([`checkpoint`]).
#[allow(clippy::too_many_arguments)]
fn run_frames(
    shards: &mut [Shard],
    frames: &[FrameMeta],
    window: &[u8],
    cfg: &Config,
    threads: usize,
    clock: &mut Clock,
    stream: &mut Stream<'_>,
    emit: &mut dyn FnMut(Vec<Row>, Vec<Finding>),
) {
    let piece = cfg.checkpoint_frames.clamp(1, SHARE_EVERY);
    let every = (cfg.checkpoint_frames / SHARE_EVERY).max(1) as u64;
    for part in frames.chunks(SHARE_EVERY) {
        clock.chunks += 1;
        if clock.chunks % SWEEP_ALL == 0 {
            let now = clock.now;
            shards.par_iter_mut().for_each(|sh| {
                sh.table.sweep_at(now, cfg);
                sh.judge_finished(cfg);
            });
            if cfg.checkpoint_frames > 0 {
                checkpoint(shards, stream, now, emit);
            }
        } else if cfg.checkpoint_frames > 0 && piece == SHARE_EVERY && clock.chunks % every == 0 {
            checkpoint(shards, stream, clock.now, emit);
        }
        share_bounds(shards, cfg, stream.records_freed());
        if cfg.checkpoint_frames > 0 && piece < SHARE_EVERY {
            for p in part.chunks(piece) {
                run_part(shards, p, window, cfg, threads);
                clock.now = p.iter().map(|f| f.ts).fold(clock.now, i64::max);
                checkpoint(shards, stream, clock.now, emit);
            }
        } else {
            run_part(shards, part, window, cfg, threads);
            clock.now = part.iter().map(|f| f.ts).fold(clock.now, i64::max);
        }
    }
}

/// Every part hands over what finished and says where its oldest live
/// flow began; the file's stream decides what that allows.
fn checkpoint(
    shards: &mut [Shard],
    stream: &mut Stream<'_>,
    now: i64,
    emit: &mut dyn FnMut(Vec<Row>, Vec<Finding>),
) {
    let live = shards
        .par_iter_mut()
        .filter_map(|sh| {
            sh.table.harvest();
            sh.table.live_floor()
        })
        .min_by_key(|m| m.frame);
    hand_over(shards, stream);
    stream.advance(
        Frontier {
            live,
            now,
            end: None,
        },
        emit,
    );
}

/// What the parts finished goes to the file's stream: connections, the
/// scan books, DNS lookups and Kerberos messages (in part order, so the
/// same for any thread count).
fn hand_over(shards: &mut [Shard], stream: &mut Stream<'_>) {
    for sh in shards.iter_mut() {
        stream.add(std::mem::take(&mut sh.conns));
        stream.folder.take(&mut sh.book);
        stream.add_dns(std::mem::take(&mut sh.table.dns));
        stream.add_krb(std::mem::take(&mut sh.table.krb));
    }
}

/// Where a capture's parts are in it: chunks of [`SHARE_EVERY`] frames
/// run, and the largest timestamp so far.
#[derive(Debug, Clone, Copy)]
struct Clock {
    chunks: u64,
    now: i64,
}

/// Flows of each part finished at a time at the capture's end.
const CLOSE_SLICE: usize = 1024;

/// Every this many chunks, every part is swept for idle flows as of the
/// capture's clock.
const SWEEP_ALL: u64 = 16;

/// Frames between two shares of the bounds ([`share_bounds`]): counted in
/// frames from the start of each batch, so independent of the thread count.
const SHARE_EVERY: usize = 4096;

fn run_part(
    shards: &mut [Shard],
    frames: &[FrameMeta],
    window: &[u8],
    cfg: &Config,
    threads: usize,
) {
    let n = shards.len();
    if threads == 1 || n == 1 {
        for f in frames {
            let data = f.data(window);
            let ip = ip_of(f, data);
            shards[part_of(ip, n)].frame(f, data, ip, cfg);
        }
        for sh in shards.iter_mut() {
            sh.judge_finished(cfg);
        }
        return;
    }
    // Each frame's part and IP packet (where in the frame), found once
    // and in parallel; then the frames of each part in capture order (a
    // counting sort), so that no part walks the batch.
    let located: Vec<(u16, Option<u32>)> = frames
        .par_iter()
        .with_min_len(4096)
        .map(|f| {
            let data = f.data(window);
            let ip = ip_of(f, data);
            // The IP packet is the frame from an offset on (link::ip_bytes).
            let at = ip.map(|ip| (data.len() - ip.len()) as u32);
            (part_of(ip, n) as u16, at)
        })
        .collect();
    let mut start = vec![0u32; n + 1];
    for &(o, _) in &located {
        start[o as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; frames.len()];
    for (i, &(o, _)) in located.iter().enumerate() {
        order[next[o as usize] as usize] = i as u32;
        next[o as usize] += 1;
    }
    shards.par_iter_mut().enumerate().for_each(|(p, sh)| {
        for &i in &order[start[p] as usize..start[p + 1] as usize] {
            let f = &frames[i as usize];
            let data = f.data(window);
            let ip = located[i as usize].1.and_then(|at| data.get(at as usize..));
            sh.frame(f, data, ip, cfg);
        }
        sh.judge_finished(cfg);
    });
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
    analyze_rows(name, src, cfg, None, threads, progress, None)
}

/// The keys of one capture: the run's, and the capture's own Decryption
/// Secrets Blocks (for a mapped file all of them, wherever they sit, as one
/// source). The run's keys are shared under a layer of the capture's own,
/// never copied; a stream's later blocks copy only that layer.
/// `own`: `base` is already this capture's (a stream's earlier blocks).
fn file_keys(
    name: &str,
    base: Option<&Arc<KeyLog>>,
    own: bool,
    dsbs: &[Vec<u8>],
) -> Option<Arc<KeyLog>> {
    if dsbs.is_empty() {
        return base.cloned();
    }
    let mut k = match base {
        Some(b) if own => (**b).clone(),
        Some(b) => KeyLog::layered(b.clone()),
        None => KeyLog::default(),
    };
    // One source for all of a capture's blocks (a stream's later blocks
    // join it): a flood of blocks is one line of the report.
    k.add_more(
        &format!("{name} (Decryption Secrets Blocks)"),
        &dsbs.join(&b'\n'),
    );
    Some(Arc::new(k))
}

/// Where a file's report rows go as its attempts are judged (a chunk at a
/// time, in order, as [`CaptureReport`]s marked `partial`); the report
/// returned at the end then holds the rest: the capture's own findings,
/// its frame count and error. `None`: every row stays in that report.
pub type Rows<'a> = Option<&'a (dyn Fn(CaptureReport) + Sync)>;

/// [`analyze`] with the run's TLS `keys`, handing the report rows to `rows`
/// as the attempts are judged ([`Rows`]).
///
/// A mapped pcapng's secrets are all used from its first frame, wherever
/// the blocks sit; a stream takes them as they come (flows that began
/// before them stay undecrypted). Finding them first costs a walk over
/// every block of the file (13% of reading a 512 MiB pcapng), so a mapped
/// file is read without it, and only when a Decryption Secrets Block shows
/// up is the analysis started over with all of them found first (an
/// injected block sits before the first packet: the restart costs
/// nothing there).
pub fn analyze_rows(
    name: &str,
    src: Source,
    cfg: &Config,
    keys: Option<&Arc<KeyLog>>,
    threads: usize,
    progress: Progress<'_>,
    rows: Rows<'_>,
) -> CaptureReport {
    // Rows are made only once the file is read: a restart (below) comes
    // before any.
    let how = How {
        keys,
        threads,
        progress,
        rows,
    };
    match analyze_pass(name, src, cfg, &how, false) {
        Pass::Done(r) => r,
        Pass::Again(src) => match analyze_pass(name, src, cfg, &how, true) {
            Pass::Done(r) => r,
            Pass::Again(_) => CaptureReport {
                capture: name.to_string(),
                error: Some("internal error: secrets restart did not settle".into()),
                ..Default::default()
            },
        },
    }
}

/// One pass over a capture.
enum Pass {
    Done(CaptureReport),
    /// Secrets blocks were found in a mapped file read without looking for
    /// them first: start over (the source, rewound).
    Again(Source),
}

/// How a capture is analyzed: the run's keys, the workers, where progress
/// and rows go.
struct How<'a> {
    keys: Option<&'a Arc<KeyLog>>,
    threads: usize,
    progress: Progress<'a>,
    rows: Rows<'a>,
}

fn analyze_pass(name: &str, src: Source, cfg: &Config, how: &How<'_>, secrets_first: bool) -> Pass {
    let How {
        keys,
        threads,
        progress,
        rows,
    } = *how;
    let mut report = CaptureReport {
        capture: name.to_string(),
        ..Default::default()
    };
    let mapped = matches!(src, Source::Map { .. });
    let (dsbs, secrets_dropped) = if mapped && secrets_first {
        crate::capture::reader::pcapng_secrets(src.window())
    } else {
        (Vec::new(), 0)
    };
    let mut keys = file_keys(name, keys, false, &dsbs);
    // The keys are this capture's own layer from its first block on.
    let mut own = !dsbs.is_empty();
    let mut late_sources: Vec<(u16, u64)> = Vec::new();
    let mut reader = match Reader::named(src, name) {
        Ok(r) => r,
        Err(e) => {
            report.error = Some(e.to_string());
            return Pass::Done(report);
        }
    };
    let threads = threads.max(1);
    let mut shards: Vec<Shard> = (0..PARTS).map(|_| Shard::new(PARTS, cfg)).collect();
    for sh in &mut shards {
        sh.table.keys = keys.clone();
        sh.stream = !mapped;
    }
    let mut events_seen = 0usize;
    let mut batch: Vec<FrameMeta> = Vec::with_capacity(BATCH_FRAMES);
    let mut clock = Clock {
        chunks: 0,
        now: i64::MIN,
    };
    let mut end = Mark::default();
    let mut frames = 0u64;
    let mut corrupt: Option<(u64, String)> = None;
    // Attempts decided as the file is read: their rows go out at once
    // through `rows`, or are kept for the report.
    let mut stream = Stream::new(name, cfg);
    let mut kept: (Vec<Row>, Vec<Finding>) = (Vec::new(), Vec::new());
    let mut emit = |r: Vec<Row>, f: Vec<Finding>| match rows {
        Some(emit) => emit(CaptureReport {
            capture: name.to_string(),
            partial: true,
            attempts: r,
            findings: f,
            ..Default::default()
        }),
        None => {
            kept.0.extend(r);
            kept.1.extend(f);
        }
    };
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
        if mapped && !secrets_first && reader.saw_secrets() {
            if let Some(src) = reader.rewound() {
                return Pass::Again(src);
            }
            report.error = Some("internal error: a mapped file could not be rewound".into());
            return Pass::Done(report);
        }
        // Secrets that arrived in this batch (a stream): flows from their
        // place in the stream on use them, so the batch runs in pieces.
        let mut new: Vec<(u64, Vec<u8>)> = Vec::new();
        if !mapped && reader.events.len() > events_seen {
            new = reader.events[events_seen..]
                .iter()
                .filter_map(|e| match e {
                    crate::capture::ReadEvent::Secrets { kind, data, after }
                        if *kind == crate::capture::reader::SECRETS_TLS =>
                    {
                        Some((*after, data.clone()))
                    }
                    _ => None,
                })
                .collect();
            events_seen = reader.events.len();
        }
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
        let mut from = 0;
        for (after, data) in new {
            let to = from + batch[from..].partition_point(|f| f.number <= after);
            run_frames(
                &mut shards,
                &batch[from..to],
                window,
                cfg,
                threads,
                &mut clock,
                &mut stream,
                &mut emit,
            );
            from = to;
            keys = file_keys(name, keys.as_ref(), own, &[data]);
            own = true;
            // The blocks' source, and where the first of them arrived.
            if let Some(k) = &keys {
                let src = (k.source_count() - 1) as u16;
                if !late_sources.iter().any(|l| l.0 == src) {
                    late_sources.push((src, after));
                }
            }
            for sh in &mut shards {
                sh.table.keys = keys.clone();
            }
        }
        run_frames(
            &mut shards,
            &batch[from..],
            window,
            cfg,
            threads,
            &mut clock,
            &mut stream,
            &mut emit,
        );
        if !more {
            break;
        }
    }
    report.frames = frames;

    // Finish every flow and judge it: the DNS and Kerberos flows first
    // (their lookups and messages are handed over whole), then the others
    // oldest first, a slice of every part at a time. Each slice is handed
    // over and the stream decides what it can, the frontier being the
    // first packet of the oldest flow not yet finished: the connections
    // of a million open flows are not all held at once.
    // Tests that decide every 8 frames finish one flow a part at a time;
    // decided only at the end (0), nothing waits for the slices.
    let slice = match cfg.checkpoint_frames {
        0 => CLOSE_SLICE,
        n => (n / 8).clamp(1, CLOSE_SLICE),
    };
    let orders: Vec<(Vec<(Mark, crate::flow::FlowKey)>, usize)> = shards
        .par_iter_mut()
        .map(|sh| {
            let (order, quiet) = sh.table.closing(cfg);
            for part in order[..quiet].chunks(slice) {
                sh.table.close_some(part, end, cfg);
                sh.judge_finished(cfg);
            }
            (order, quiet)
        })
        .collect();
    let mut next: Vec<usize> = orders.iter().map(|o| o.1).collect();
    loop {
        let floor = orders
            .iter()
            .zip(&next)
            .filter_map(|(o, &i)| o.0.get(i).map(|x| x.0))
            .min_by_key(|m| m.frame);
        hand_over(&mut shards, &mut stream);
        let Some(floor) = floor else {
            break;
        };
        if cfg.checkpoint_frames > 0 {
            stream.advance(
                Frontier {
                    live: Some(floor),
                    now: clock.now,
                    end: None,
                },
                &mut emit,
            );
        }
        shards
            .par_iter_mut()
            .zip(orders.par_iter().zip(next.par_iter_mut()))
            .for_each(|(sh, ((order, _), i))| {
                let to = (*i + slice).min(order.len());
                sh.table.close_some(&order[*i..to], end, cfg);
                sh.judge_finished(cfg);
                *i = to;
            });
    }
    drop(orders);
    stream.advance(
        Frontier {
            live: None,
            now: clock.now,
            end: Some(end),
        },
        &mut emit,
    );
    let dns_dropped = stream.dns_dropped;
    let krb_dropped = stream.krb_dropped;
    let (mut folder, mut key_use) = stream.finish(end, &mut emit);
    report.attempts = kept.0;
    report.findings = kept.1;
    if keys.is_some() {
        key_use.extend(
            shards
                .iter_mut()
                .flat_map(|s| std::mem::take(&mut s.unkeyed))
                .map(session::KeyUse::Missed),
        );
    } else {
        key_use = Vec::new();
    }

    // The capture as a whole.
    let mut facts = capture_facts(&shards, std::mem::take(&mut reader.events), corrupt, end);
    facts.scans = folder.scans();
    facts.bounds.scan_unreported = folder.unreported;
    facts.bounds.dns_dropped += dns_dropped;
    facts.bounds.krb_dropped += krb_dropped;
    facts.keys = keys;
    facts.key_use = key_use;
    facts.late_sources = late_sources;
    facts.secrets_dropped = secrets_dropped;
    let mut cap = Vec::new();
    for d in detect::CAPTURE {
        d.check(&facts, &mut cap);
    }
    for d in cap {
        report.findings.push(build::finding(
            name,
            "",
            Placed {
                ends: None,
                draft: d,
            },
        ));
    }
    Pass::Done(report)
}

/// What the workers and the reader noticed about the file as a whole.
fn capture_facts(
    shards: &[Shard],
    events: Vec<crate::capture::ReadEvent>,
    corrupt: Option<(u64, String)>,
    end: Mark,
) -> CaptureFacts {
    let mut unsupported: Vec<(u32, u32, u64)> = shards
        .iter()
        .flat_map(|s| s.unsupported.iter().copied())
        .collect();
    unsupported.sort_by_key(|u| (u.0, u.2));
    unsupported.dedup_by_key(|u| u.0);
    let mut undecoded: Vec<(&'static str, u64, u64)> = Vec::new();
    for s in shards {
        for &(why, first, n) in &s.undecoded {
            match undecoded.iter_mut().find(|u| u.0 == why) {
                Some(u) => {
                    u.1 = u.1.min(first);
                    u.2 += n;
                }
                None => undecoded.push((why, first, n)),
            }
        }
    }
    undecoded.sort_by_key(|u| u.1);
    let mut orphan_icmp: Vec<_> = shards
        .iter()
        .flat_map(|s| s.table.orphan_icmp.iter().copied())
        .collect();
    orphan_icmp.sort_by_key(|o| o.at.frame);
    let mut bounds = BoundsHit::default();
    for s in shards {
        let b = &s.table.bounds;
        bounds.flows_evicted += b.flows_evicted;
        bounds.records_dropped += b.records_dropped;
        bounds.fragments_evicted += b.fragments_evicted;
        bounds.icmp_dropped += b.icmp_dropped;
        bounds.dns_dropped += b.dns_dropped;
        bounds.krb_dropped += b.krb_dropped;
        bounds.ooo_dropped += b.ooo_dropped;
        bounds.icmp_capped += b.icmp_capped;
        bounds.parsers_bounded += b.parsers_bounded;
        bounds.first_parser_bound = bounds.first_parser_bound.or(b.first_parser_bound);
    }
    CaptureFacts {
        events,
        corrupt,
        unsupported,
        undecoded,
        orphan_icmp,
        bounds,
        end,
        ..Default::default()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::finding::Dir;
    use crate::flow::Flow;
    use crate::proto::inside::KeyState;
    use std::path::{Path, PathBuf};

    fn shared(p: &str) -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/captures")
            .join(p);
        if p.exists() {
            Some(p)
        } else {
            eprintln!("SKIPPED: {} is absent", p.display());
            None
        }
    }

    /// Every flow of a capture, finished, with `keylog`'s keys.
    fn flows(cap: &Path, keylog: Option<&Path>, ports: &[u16]) -> Vec<Flow> {
        let kl = keylog.map(|k| {
            let mut kl = KeyLog::default();
            kl.add("keys", &std::fs::read(k).unwrap());
            kl
        });
        flows_with(cap, kl, ports)
    }

    fn flows_with(cap: &Path, keys: Option<KeyLog>, ports: &[u16]) -> Vec<Flow> {
        let cfg = Config {
            ports: ports.iter().copied().collect(),
            ..Config::default()
        };
        let mut t = Table::shared(1, &cfg);
        t.keys = keys.map(Arc::new);
        let mut sh = Shard::new(1, &cfg);
        sh.table = t;
        let mut r = Reader::new(Source::open(cap).unwrap()).unwrap();
        let mut batch = Vec::new();
        let mut end = Mark::default();
        loop {
            let more = r.next_batch(&mut batch, BATCH_FRAMES, BATCH_BYTES).unwrap();
            let w = r.window();
            for f in &batch {
                end = Mark {
                    frame: f.number,
                    ts: f.ts.max(end.ts),
                };
                let data = f.data(w);
                sh.frame(f, data, ip_of(f, data), &cfg);
            }
            if !more {
                break;
            }
        }
        sh.table.close(end, &cfg);
        sh.table.take_done().into_iter().map(|f| f.flow).collect()
    }

    fn heads(f: &Flow) -> [String; 2] {
        let i = f.app.facts().inside.as_deref().expect("decrypted");
        Dir::BOTH.map(|d| String::from_utf8_lossy(&i.head[d]).into_owned())
    }

    /// syncsynchalt's TLS 1.3 capture (AES-256-GCM): "ping" and "pong",
    /// and the certificate of the encrypted handshake.
    #[test]
    fn illustrated_tls13_decrypts() {
        let Some(dir) = shared("syncsynchalt/illustrated-tls13") else {
            return;
        };
        let fl = flows(
            &dir.join("capture.pcap"),
            Some(&dir.join("keylog.txt")),
            &[8400],
        );
        let f = fl
            .iter()
            .find(|f| f.app.facts().tls.client_hello.is_some())
            .unwrap();
        let i = f.app.facts().inside.as_deref().unwrap();
        assert!(
            matches!(i.keys, KeyState::Decrypting { .. }),
            "{:?}",
            i.keys
        );
        let [c, s] = heads(f);
        assert!(c.starts_with("ping"), "{c:?}");
        assert!(s.starts_with("pong"), "{s:?}");
        let (certs, at) = f.app.facts().tls.certs.clone().expect("certificate");
        assert_eq!(certs[0].cn.as_deref(), Some("example.ulfheim.net"));
        assert!(at.frame > 0);
        // Without keys: nothing decrypted, no certificate.
        let fl = flows(&dir.join("capture.pcap"), None, &[8400]);
        let f = fl
            .iter()
            .find(|f| f.app.facts().tls.client_hello.is_some())
            .unwrap();
        assert!(f.app.facts().inside.is_none());
        assert!(f.app.facts().tls.certs.is_none());
    }

    /// syncsynchalt's TLS 1.2 capture (AES-128-CBC-SHA): the record bodies
    /// equal the `*plain` files once MAC and padding are removed, and the
    /// client's encrypted alert is named close_notify.
    #[test]
    fn illustrated_tls12_decrypts() {
        let Some(dir) = shared("syncsynchalt/illustrated-tls12") else {
            return;
        };
        let fl = flows(
            &dir.join("capture.pcap"),
            Some(&dir.join("keylog.txt")),
            &[8443],
        );
        let f = fl
            .iter()
            .find(|f| f.app.facts().tls.client_hello.is_some())
            .unwrap();
        let [c, s] = heads(f);
        let plain = |n: &str| std::fs::read(dir.join(n)).unwrap();
        let cp = plain("clientdataplain");
        let sp = plain("serverdataplain");
        // The files hold data + 20-byte HMAC + padding.
        assert!(cp.starts_with(c.as_bytes()) && c == "ping", "{c:?}");
        assert!(sp.starts_with(s.as_bytes()) && s == "pong", "{s:?}");
        let a = f
            .app
            .facts()
            .tls
            .alerts
            .iter()
            .find(|a| a.named)
            .expect("named alert");
        assert_eq!((a.dir, a.level, a.desc), (Dir::Client, 1, 0));
    }

    /// Zeek's TLS 1.2 key-log traces: the HTTP inside (http.log lists a
    /// GET answered with 301 for tls12-decryption.pcap).
    #[test]
    fn zeek_tls12_keylog_http() {
        let Some(dir) = shared("zeek/Traces/tls") else {
            return;
        };
        for (cap, status) in [
            ("tls12-decryption", "HTTP/1.1 301"),
            ("tls-1.2-stream-keylog", "HTTP/1.1 200"),
        ] {
            let fl = flows(
                &dir.join(format!("{cap}.pcap")),
                Some(&dir.join(format!("{cap}.keylog"))),
                &[443],
            );
            let f = fl
                .iter()
                .find(|f| {
                    f.app
                        .facts()
                        .inside
                        .as_ref()
                        .is_some_and(|i| i.opened[0] > 0)
                })
                .unwrap_or_else(|| panic!("{cap}: nothing decrypted"));
            let [c, s] = heads(f);
            assert!(c.starts_with("GET "), "{cap}: {c:?}");
            assert!(s.starts_with(status), "{cap}: {s:?}");
        }
    }

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(name)
    }

    /// Each session of the lab's OpenSSL capture decrypts to what was sent:
    /// the client's "ping <case>" and s_server -rev's reversed answer; the
    /// KeyUpdate case's second line comes after the update on both sides.
    /// Returns the cipher suites and versions seen.
    fn check_pings(fl: &[Flow]) -> Vec<(u16, u16)> {
        let mut seen = vec![];
        for f in fl
            .iter()
            .filter(|f| f.app.facts().tls.client_hello.is_some())
        {
            let x = f.app.facts();
            let i = x.inside.as_deref().expect("keys tried");
            assert!(
                matches!(i.keys, KeyState::Decrypting { .. }),
                "{:?}: {:?}",
                f.key,
                i.keys
            );
            let [c, s] = heads(f);
            let line = c.lines().next().unwrap_or_default().to_string();
            assert!(line.starts_with("ping "), "{c:?}");
            let rev: String = line.chars().rev().collect();
            assert!(s.starts_with(&rev), "{line}: server said {s:?}");
            if line.ends_with("keyupdate") {
                assert!(c.contains("ping after"), "{c:?}");
                assert!(s.contains("retfa gnip"), "{s:?}");
            }
            let (sh, _) = x.tls.server_hello.expect("server hello");
            seen.push((sh.version, sh.cipher));
        }
        seen
    }

    /// Real OpenSSL 3.0 sessions (scripts/lab/tls-lab.sh): every suite and
    /// version the decryptor supports, EMS on and off, encrypt_then_mac on
    /// and off, TLS 1.0's chained IV, TLS 1.3 with KeyUpdate.
    #[test]
    fn openssl_suites_decrypt() {
        let fl = flows(
            &sample("lab-tls-suites.pcap"),
            Some(&sample("lab-tls-suites.keys")),
            &[4433],
        );
        let mut seen = check_pings(&fl);
        seen.sort();
        seen.dedup();
        let want = [
            (0x0301, 0xc014),
            (0x0302, 0xc013),
            (0x0303, 0xc013),
            (0x0303, 0xc027),
            (0x0303, 0xc028),
            (0x0303, 0xc02f),
            (0x0303, 0xc030),
            (0x0303, 0xcca8),
            (0x0304, 0x1301),
            (0x0304, 0x1302),
            (0x0304, 0x1303),
        ];
        assert_eq!(seen, want);
        let etm = fl.iter().filter(|f| f.app.facts().tls.etm).count();
        let ems = fl.iter().filter(|f| f.app.facts().tls.ems).count();
        assert!(etm >= 2 && etm < fl.len(), "encrypt_then_mac on {etm}");
        assert!(ems < fl.len(), "extended master secret on {ems}");
    }

    /// TLS_RSA_* sessions opened with the server's private key alone (the
    /// pre-master secret from the ClientKeyExchange), with and without EMS.
    #[test]
    fn rsa_key_exchange_decrypts() {
        let mut kl = KeyLog::default();
        kl.add_rsa(
            "key.pem",
            &std::fs::read(sample("lab-tls-rsa.key.pem")).unwrap(),
        )
        .unwrap();
        let fl = flows_with(&sample("lab-tls-rsa.pcap"), Some(kl), &[4433]);
        let seen = check_pings(&fl);
        assert_eq!(seen, vec![(0x0303, 0x009c), (0x0303, 0x003d)]);
        let ems: Vec<bool> = fl.iter().map(|f| f.app.facts().tls.ems).collect();
        assert_eq!(ems, vec![true, false]);
    }
}

#[cfg(test)]
mod undecoded_test {
    use super::*;
    use crate::synth::{Format, Pkt, Writer};

    fn analyze_pkts(pkts: &[Pkt], threads: usize) -> CaptureReport {
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(&mut buf, Format::Pcap).unwrap();
            for p in pkts {
                w.write(p).unwrap();
            }
        }
        let src = Source::from_reader(Box::new(std::io::Cursor::new(buf))).unwrap();
        analyze("t.pcap", src, &Config::default(), threads, &|_| {})
    }

    /// An Ethernet frame with `tags` VLAN tags around an IPv4/UDP packet.
    fn vlan_frame(tags: usize, ts: i64) -> Pkt {
        let mut d = vec![0u8; 12];
        for _ in 0..tags {
            d.extend_from_slice(&[0x81, 0x00, 0x00, 0x0A]);
        }
        d.extend_from_slice(&[0x08, 0x00]);
        d.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ]);
        d.extend_from_slice(&[0xC3, 0x50, 0x0D, 0x3D, 0, 8, 0, 0]);
        Pkt {
            ts,
            orig_len: d.len() as u32,
            data: d,
        }
    }

    /// An IPv6 packet whose extension chain repeats the hop-by-hop header
    /// (allowed only first: the decoder stops there).
    fn v6_chain(ts: i64) -> Pkt {
        let mut d = vec![0u8; 12];
        d.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0, 0, 40, 0, 64]);
        d.extend_from_slice(&[0u8; 32]);
        for _ in 0..5 {
            d.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
        }
        Pkt {
            ts,
            orig_len: d.len() as u32,
            data: d,
        }
    }

    #[test]
    fn frames_the_decoder_gives_up_on_are_counted_once_per_reason() {
        let mut pkts: Vec<Pkt> = (0..7).map(|i| vlan_frame(5, i * 1000)).collect();
        pkts.push(vlan_frame(4, 9000));
        pkts.extend((0..3).map(|i| v6_chain(10_000 + i)));
        for threads in [1, 2] {
            let r = analyze_pkts(&pkts, threads);
            let got: Vec<(String, u64, String)> = r
                .findings
                .iter()
                .filter(|f| f.code == crate::finding::Code::CaptureUndecoded)
                .map(|f| (f.code.to_string(), f.first_frame, f.summary.clone()))
                .collect();
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0].1, 1);
            assert!(
                got[0]
                    .2
                    .starts_with("7 frames skipped: more than 4 stacked VLAN tags"),
                "{}",
                got[0].2
            );
            assert_eq!(got[1].1, 9);
            assert!(
                got[1].2.starts_with("3 frames skipped: an IPv6 extension"),
                "{}",
                got[1].2
            );
        }
    }

    #[test]
    fn connections_past_the_record_bound_are_counted_the_same_for_any_j() {
        use crate::synth::{x224_cr, TcpConv, C, S};
        let t0 = 1_714_557_600_000_000_000i64;
        let mut pkts = Vec::new();
        // 60 clients (spread over the parts), each a connection that
        // negotiates and is closed by the client: reported one by one,
        // never of a scan's shape.
        for i in 0..60i64 {
            let mut c = TcpConv::new(
                &format!("198.18.{}.{}:50000", i / 200, 1 + i % 200),
                "198.19.0.20:3389",
                t0 + i * 1_000_000,
            );
            c.handshake(&mut pkts, 1_000_000)
                .send(&mut pkts, C, &x224_cr("u", 3), 1_000_000)
                .send(&mut pkts, S, &crate::synth::x224_cc(1), 1_000_000)
                .close(&mut pkts, C, 1_000_000);
        }
        pkts.sort_by_key(|p| p.ts);
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(&mut buf, Format::Pcap).unwrap();
            for p in &pkts {
                w.write(p).unwrap();
            }
        }
        let cfg = Config {
            max_records: 40,
            ..Config::default()
        };
        let mut seen = Vec::new();
        for threads in [1, 2, 3] {
            let src = Source::from_reader(Box::new(std::io::Cursor::new(buf.clone()))).unwrap();
            let r = analyze("t.pcap", src, &cfg, threads, &|_| {});
            let said: Vec<String> = r
                .findings
                .iter()
                .filter(|f| f.code == crate::finding::Code::CaptureBound)
                .map(|f| f.summary.clone())
                .collect();
            assert_eq!(said.len(), 1, "{said:?}");
            // The shares of 40 records among 32 parts: at least the 20
            // past 40 are counted, and what is kept is said for any -j.
            let dropped: u64 = said[0]
                .split(" attempts not reported")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{}", said[0]));
            assert!((20..60).contains(&dropped), "{}", said[0]);
            let kept: usize = r.attempts.iter().map(|a| a.connections as usize).sum();
            assert_eq!(kept as u64 + dropped, 60, "{}", said[0]);
            seen.push((said, r.attempts.len(), r.findings.len()));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    }

    #[test]
    fn bounds_a_flow_hits_are_said_for_the_file() {
        use crate::synth::{flag, icmp_error, rdpeudp_syn, udp_pkt, TcpConv, C};
        let t0 = 1_714_557_600_000_000_000i64;
        let mut pkts = Vec::new();
        // 100 ICMP unreachables for one UDP flow: 16 kept, 84 counted.
        let cl = "198.18.0.10:50990".parse().unwrap();
        let sv = "198.19.0.20:3389".parse().unwrap();
        for i in 0..100i64 {
            let syn = udp_pkt(cl, sv, &rdpeudp_syn([7; 16]), t0 + i * 1_000_000);
            let e = icmp_error(
                "198.19.0.1",
                "198.18.0.10".parse().unwrap(),
                3,
                0,
                &syn,
                t0 + i * 1_000_000 + 1000,
            );
            pkts.push(syn);
            pkts.push(e);
        }
        // 300 segments of 1000 bytes behind a hole: 256 held, the rest
        // dropped.
        let mut c = TcpConv::new("198.18.0.11:50000", "198.19.0.20:3389", t0 + 200_000_000);
        c.handshake(&mut pkts, 1_000_000);
        let base = c.seq[C];
        for i in 0..300u32 {
            c.now += 10_000;
            c.raw(
                &mut pkts,
                C,
                base.wrapping_add(1000 + i * 1000),
                flag::PSH,
                true,
                None,
                &[0x17; 1000],
            );
        }
        pkts.sort_by_key(|p| p.ts);
        for threads in [1, 2] {
            let r = analyze_pkts(&pkts, threads);
            let b: Vec<&String> = r
                .findings
                .iter()
                .filter(|f| f.code == crate::finding::Code::CaptureBound)
                .map(|f| &f.summary)
                .collect();
            assert_eq!(b.len(), 1, "{b:?}");
            assert!(
                b[0].contains("84 ICMP errors past the 16 kept per flow"),
                "{}",
                b[0]
            );
            assert!(
                b[0].contains("44000 out-of-order bytes dropped"),
                "{}",
                b[0]
            );
        }
    }
}
