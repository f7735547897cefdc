//! A capture's attempts decided while it is read. The parts hand over
//! their finished connections at points counted in frames; an attempt is
//! grouped, judged and written once nothing later in the capture can join
//! it, and its connections are let go. The same code runs at the end of
//! the file with nothing left to wait for, so a file read at once and a
//! file streamed give the same rows, and so does any thread count.
//!
//! What makes it exact: every join of `session::group` is between
//! connections of one client host and spans at most [`horizon`] of capture
//! time (the attempt window, [`session::LEG_PAIR_NS`], a DNS answer's
//! [`crate::proto::dns::ANSWER_NS`]). A client host's connections are
//! cut into *islands*: a connection that begins more than the horizon
//! after every earlier one of its host ended starts a new island. Islands
//! are grouped independently; an island is closed once the capture's time
//! frontier (the first frame of the oldest live flow, or the clock) is
//! past its last end plus the horizon. Attempts are numbered by their
//! first connection, so one is written once no earlier attempt can still
//! appear: no open island and no connection still to come begins before
//! it. A connection still open therefore holds the attempts that began
//! after it (rows keep the order of the batch report).

use crate::capture::Mark;
use crate::config::Config;
use crate::detect;
use crate::flow::table::{DnsLookup, KdcMessage};
use crate::report::build;
use crate::report::model::{Attempt as Row, Finding};
use crate::session::{self, scan, Attempt, Conn, KeyUse};
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{IpAddr, SocketAddr};

/// Report order of connections and attempts ([`session::order`]).
type Key = (u64, SocketAddr, SocketAddr);
use session::order as key;

/// The longest capture time a join of `session::group` spans (from the end
/// of a connection to the start of one that joins its attempt), and the
/// longest a DNS lookup takes to be final.
pub fn horizon(cfg: &Config) -> i64 {
    cfg.attempt_window_ns
        .max(session::LEG_PAIR_NS)
        .max(crate::proto::dns::ANSWER_NS)
}

/// DNS lookups and Kerberos messages kept per file for judging attempts.
pub const MAX_DNS: usize = crate::flow::table::MAX_DNS * super::file::PARTS;
pub const MAX_KRB: usize = crate::flow::table::MAX_KRB * super::file::PARTS;

/// A client host's connections that may still join one another (boxed
/// while they wait: moved from the pool to an island and on to grouping,
/// a million connections are not copied whole).
struct Island {
    #[allow(clippy::vec_box)] // moved, not copied (568 bytes each)
    conns: Vec<Box<Conn>>,
    /// The latest end among them.
    last: i64,
    key: Key,
}

/// A closed island, grouped: its attempts wait for their turn.
struct Grouped {
    conns: Vec<Conn>,
    attempts: Vec<Attempt>,
    left: usize,
}

/// Where the capture's reading stands at a decision.
#[derive(Debug, Clone, Copy)]
pub struct Frontier {
    /// The oldest live flow that may still be reported (`None`: none).
    pub live: Option<Mark>,
    /// The largest timestamp read so far.
    pub now: i64,
    /// Set once the file is read: its last frame (every flow finished).
    pub end: Option<Mark>,
}

pub struct Stream<'c> {
    cfg: &'c Config,
    name: String,
    /// Finished connections not yet placed in an island.
    #[allow(clippy::vec_box)] // sorted and moved, not copied
    pool: Vec<Box<Conn>>,
    islands: rustc_hash::FxHashMap<IpAddr, Island>,
    /// The open islands by their first connection.
    open: BTreeSet<(Key, IpAddr)>,
    ready: BinaryHeap<Reverse<(Key, u64, usize)>>,
    grouped: rustc_hash::FxHashMap<u64, Grouped>,
    next_group: u64,
    dns: Vec<DnsLookup>,
    krb: Vec<KdcMessage>,
    sorted: bool,
    pub dns_dropped: u64,
    pub krb_dropped: u64,
    pub folder: scan::Folder,
    /// How each TLS connection used the keys (capture findings).
    pub key_use: Vec<KeyUse>,
    /// Attempts written so far.
    numbered: usize,
    /// Connections let go (their rows written).
    released: usize,
    /// Connections the scan runs gave back (they took no attempt record
    /// in their part: the scan book has its own bound).
    given_back: usize,
}

impl<'c> Stream<'c> {
    pub fn new(name: &str, cfg: &'c Config) -> Stream<'c> {
        Stream {
            cfg,
            name: name.to_string(),
            pool: Vec::new(),
            islands: Default::default(),
            open: Default::default(),
            ready: Default::default(),
            grouped: Default::default(),
            next_group: 0,
            dns: Vec::new(),
            krb: Vec::new(),
            sorted: true,
            dns_dropped: 0,
            krb_dropped: 0,
            folder: Default::default(),
            key_use: Vec::new(),
            numbered: 0,
            released: 0,
            given_back: 0,
        }
    }

    /// Finished connections (a part's, in the order they finished).
    pub fn add(&mut self, conns: Vec<Conn>) {
        for c in conns {
            if let Some(k) = c.key_use() {
                self.key_use.push(k);
            }
            self.admit(c);
        }
    }

    fn admit(&mut self, c: Conn) {
        match &self.cfg.target {
            Some(t) if !c.targeted(t) => self.released += 1,
            _ => self.pool.push(Box::new(c)),
        }
    }

    /// Attempt records given back: connections that took one in their
    /// part and are let go (for the parts' share of the record bound).
    pub fn records_freed(&self) -> usize {
        self.released.saturating_sub(self.given_back)
    }

    pub fn add_dns(&mut self, d: Vec<DnsLookup>) {
        self.sorted &= d.is_empty();
        self.dns_dropped += bounded(&mut self.dns, d, MAX_DNS);
    }

    pub fn add_krb(&mut self, k: Vec<KdcMessage>) {
        self.sorted &= k.is_empty();
        self.krb_dropped += bounded(&mut self.krb, k, MAX_KRB);
    }

    /// Decides what `at` allows and writes the attempts whose turn came,
    /// `chunk` at a time, through `emit`.
    pub fn advance(&mut self, at: Frontier, emit: &mut dyn FnMut(Vec<Row>, Vec<Finding>)) {
        let h = horizon(self.cfg);
        let done = at.end.is_some();
        // The scans first: what they give back joins the connections.
        let live_ts = at.live.map_or(at.now, |m| m.ts.min(at.now));
        let mut back = Vec::new();
        self.folder.decide(
            scan::Frontier {
                ts: live_ts,
                end: done,
            },
            &mut back,
        );
        self.given_back += back.len();
        for c in back {
            self.admit(c);
        }
        // Every connection that begins before `floor` is known.
        let floor = [at.live, self.folder.floor()]
            .into_iter()
            .flatten()
            .min_by_key(|m| m.frame);
        let (ff, ft) = match floor {
            _ if done => (u64::MAX, i64::MAX),
            Some(m) => (m.frame, m.ts.min(at.now)),
            None => (u64::MAX, at.now),
        };
        self.pool.sort_unstable_by_key(|c| key(c));
        let n = self.pool.partition_point(|c| c.first.frame < ff);
        let placed: Vec<Box<Conn>> = self.pool.drain(..n).collect();
        // Time still to come: no later connection begins before it.
        let ft = self.pool.first().map_or(ft, |c| ft.min(c.first.ts));
        for c in placed {
            self.place(c, h);
        }
        let closed: Vec<IpAddr> = self
            .islands
            .iter()
            .filter(|(_, i)| done || ft.saturating_sub(i.last) > h)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in closed {
            if let Some(i) = self.islands.remove(&ip) {
                self.open.remove(&(i.key, ip));
                self.group(i);
            }
        }
        // The attempts whose turn came.
        let open_first = self.open.first().map(|o| o.0);
        let mut turn: Vec<(u64, usize)> = Vec::new();
        while let Some(Reverse((k, g, i))) = self.ready.peek().copied() {
            if !done && (k.0 >= ff || open_first.is_some_and(|o| o < k)) {
                break;
            }
            self.ready.pop();
            turn.push((g, i));
        }
        if turn.is_empty() {
            return;
        }
        self.sort_facts();
        // Judged while the file is read, an attempt's DNS evidence ends
        // within the horizon, before any capture end (detect::dns).
        let end = at.end.unwrap_or(Mark {
            frame: u64::MAX,
            ts: i64::MAX,
        });
        // Chunks of up to `attempt_chunk` attempts or connections (an
        // attempt of many retries is a chunk of its own): rows are written
        // before the next chunk is judged.
        let mut chunks: Vec<&[(u64, usize)]> = Vec::new();
        let mut from = 0;
        while from < turn.len() {
            let (mut to, mut held) = (from, 0usize);
            while to < turn.len() && to - from < self.cfg.attempt_chunk.max(1) {
                let (g, i) = turn[to];
                let a = &self.grouped[&g].attempts[i];
                let n = a.conns.len() + a.side.len();
                if to > from && held + n > self.cfg.attempt_chunk {
                    break;
                }
                held += n;
                to += 1;
            }
            chunks.push(&turn[from..to]);
            from = to;
        }
        for part in chunks {
            for &(g, i) in part {
                self.numbered += 1;
                if let Some(gr) = self.grouped.get_mut(&g) {
                    let a = &mut gr.attempts[i];
                    a.number = self.numbered;
                    session::complete(a, &gr.conns, self.cfg);
                }
            }
            let (grouped, dns, krb, cfg, name) =
                (&self.grouped, &self.dns, &self.krb, self.cfg, &self.name);
            let rows: Vec<(Row, Vec<Finding>)> = part
                .par_iter()
                .map(|&(g, i)| {
                    let gr = &grouped[&g];
                    let a = &gr.attempts[i];
                    let j = detect::judge_attempt(a, &gr.conns, dns, krb, cfg, end);
                    build::attempt(name, a, &gr.conns, j)
                })
                .collect();
            for &(g, i) in part {
                let Some(gr) = self.grouped.get_mut(&g) else {
                    continue;
                };
                let a = std::mem::replace(&mut gr.attempts[i], empty());
                for &c in a.conns.iter().chain(&a.side) {
                    gr.conns[c].release();
                }
                gr.left -= 1;
                if gr.left == 0 {
                    self.released += gr.conns.len();
                    self.grouped.remove(&g);
                }
            }
            let (r, f): (Vec<Row>, Vec<Vec<Finding>>) = rows.into_iter().unzip();
            emit(r, f.into_iter().flatten().collect());
        }
    }

    /// DNS lookups in capture order, Kerberos messages in time order (an
    /// attempt finds its window by binary search).
    fn sort_facts(&mut self) {
        if !self.sorted {
            self.dns.sort_by_key(|d| d.query.at.frame);
            self.krb.sort_by_key(|k| (k.msg.at.ts, k.msg.at.frame));
            self.sorted = true;
        }
    }

    /// A connection, in report order, to its host's island.
    fn place(&mut self, c: Box<Conn>, h: i64) {
        // Decided only once the file is read (tests): one island of every
        // connection, `session::group` over the whole file, which is what
        // the islands must give.
        let whole = self.cfg.checkpoint_frames == 0;
        let ip = if whole {
            IpAddr::from([0, 0, 0, 0])
        } else {
            c.client.ip()
        };
        if let Some(i) = self.islands.get_mut(&ip) {
            if whole || c.first.ts <= i.last.saturating_add(h) {
                i.last = i.last.max(c.last.ts);
                i.conns.push(c);
                return;
            }
            if let Some(i) = self.islands.remove(&ip) {
                self.open.remove(&(i.key, ip));
                self.group(i);
            }
        }
        let k = key(&c);
        self.open.insert((k, ip));
        self.islands.insert(
            ip,
            Island {
                last: c.last.ts,
                conns: vec![c],
                key: k,
            },
        );
    }

    /// A closed island's attempts, waiting for their turn.
    fn group(&mut self, i: Island) {
        let conns: Vec<Conn> = i.conns.into_iter().map(|c| *c).collect();
        let mut attempts = session::group_bare(&conns, &[], Mark::default(), self.cfg);
        // Most islands are one attempt, which a vector holds room for four
        // of (1.4 KB of nothing while it waits its turn).
        attempts.shrink_to_fit();
        // Connections no attempt took (none today) are let go with it.
        let g = self.next_group;
        self.next_group += 1;
        for (n, a) in attempts.iter().enumerate() {
            if let Some(&first) = a.conns.first() {
                self.ready.push(Reverse((key(&conns[first]), g, n)));
            }
        }
        let left = attempts.iter().filter(|a| !a.conns.is_empty()).count();
        if left == 0 {
            self.released += conns.len();
            return;
        }
        self.grouped.insert(
            g,
            Grouped {
                conns,
                attempts,
                left,
            },
        );
    }

    /// The file is done: `--target` with no attempt at all makes its failed
    /// lookup the attempt. The DNS lookups and Kerberos messages go to the
    /// capture's facts.
    pub fn finish(
        mut self,
        end: Mark,
        emit: &mut dyn FnMut(Vec<Row>, Vec<Finding>),
    ) -> (scan::Folder, Vec<KeyUse>) {
        if self.numbered == 0 && self.cfg.target.is_some() {
            self.sort_facts();
            let attempts = session::group(&[], &self.dns, end, self.cfg);
            for a in &attempts {
                let j = detect::judge_attempt(a, &[], &self.dns, &self.krb, self.cfg, end);
                let (r, f) = build::attempt(&self.name, a, &[], j);
                emit(vec![r], f);
            }
        }
        (self.folder, self.key_use)
    }
}

/// Appends `items` while `into` holds fewer than `max`; says how many did
/// not fit.
fn bounded<T>(into: &mut Vec<T>, items: Vec<T>, max: usize) -> u64 {
    let room = max.saturating_sub(into.len()).min(items.len());
    let over = items.len() - room;
    into.extend(items.into_iter().take(room));
    over as u64
}

fn empty() -> Attempt {
    Attempt {
        number: 0,
        conns: Vec::new(),
        side: Vec::new(),
        lookup: None,
        facts: Default::default(),
        redirected: 0,
        tunnelled: 0,
        companions: 0,
    }
}
