//! Scans and floods: many connection attempts toward one server that were
//! never answered or were refused, within a short time, are one `tcp.scan`
//! summary instead of a million attempts; so are many such attempts from
//! one host toward one port of many servers (a sweep).
//!
//! Each part sets aside the connections shaped like that (a SYN and
//! nothing else, or a SYN answered by a reset: no data either way) as
//! compact records in its [`Book`], holding the connections themselves up
//! to a bound; at every checkpoint the books go to the file's [`Folder`],
//! which cuts them into runs per server (consecutive attempts at most
//! [`SCAN_GAP_NS`] apart) as the capture is read: a run of [`SCAN_MIN`] or
//! more is a scan; the connections of a shorter run go on to the sweeps
//! (runs per source host and port), then back to be grouped into attempts
//! like any other. A run is decided once nothing later can extend it, so
//! the same as on the whole file ([`fold`]), for any `-j`.

use super::conn::Conn;
use crate::capture::Mark;
use crate::finding::{Code, Outcome};
use std::net::{IpAddr, SocketAddr};

/// Attempts toward one server, each at most [`SCAN_GAP_NS`] after the
/// previous, from which on they are a scan.
pub const SCAN_MIN: usize = 64;
/// The longest gap between two attempts of one scan.
pub const SCAN_GAP_NS: i64 = 10_000_000_000;
/// Connections held per file while their run is undecided (split among
/// the workers); past it only the record is kept.
pub const MAX_HELD: usize = 16_384;
/// Records kept per file (split among the workers); past it a failed
/// connection is counted only.
pub const MAX_RECORDS: usize = 2_000_000;
/// Distinct sources counted per scan; past it "at least".
pub const MAX_SOURCES: usize = 1024;

/// One failed attempt set aside (72 bytes: a million of them are what a
/// port scan leaves).
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// The server, packed: family first, so that records sort as their
    /// `SocketAddr`s do.
    server: (bool, [u8; 16], u16),
    /// The client host (same family as the server).
    client: [u8; 16],
    pub first: Mark,
    pub last: Mark,
    /// Refused, or answered and reset by the client (not unanswered).
    pub refused: bool,
    /// Where its connection is held ([`NOT_HELD`]: it is not).
    held: u32,
}

const NOT_HELD: u32 = u32::MAX;

fn octets(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

fn ip(v6: bool, b: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::from(b)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    }
}

impl Record {
    pub fn server(&self) -> SocketAddr {
        let (v6, b, port) = self.server;
        SocketAddr::new(ip(v6, b), port)
    }

    pub fn client_ip(&self) -> IpAddr {
        ip(self.server.0, self.client)
    }
}

/// One worker's set-aside attempts.
#[derive(Debug, Default)]
pub struct Book {
    records: Vec<Record>,
    held: Vec<Option<Conn>>,
    max_records: usize,
    max_held: usize,
    /// Failed connections past the record bound: counted only.
    pub overflow: u64,
}

/// A scan: one server's run of failed attempts, or a sweep: one source
/// host's run toward many servers on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The server (a sweep: the first server, whose port they all share).
    pub server: SocketAddr,
    /// A sweep's source host.
    pub source: Option<IpAddr>,
    pub attempts: u64,
    pub refused: u64,
    /// Distinct client hosts, or a sweep's distinct servers (at most
    /// [`MAX_SOURCES`] counted).
    pub sources: usize,
    pub first: Mark,
    pub last: Mark,
}

/// What the books of a file came to (tests: the whole-file reference).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Folded {
    pub scans: Vec<Scan>,
    /// Connections of runs too short to be a scan, back to the rest.
    pub conns: Vec<Conn>,
    /// Failed connections that were neither held nor part of a scan: not
    /// reported one by one (a bound).
    pub unreported: u64,
}

/// Is this connection a failed attempt of the scan shape: TCP, no data,
/// a SYN unanswered or refused (or, a half-open scan, answered and reset
/// by the client at once: four packets at most), and nothing else to say?
/// `Some(true)` when it went further than an unanswered SYN.
pub fn shaped(c: &Conn) -> Option<bool> {
    if c.transport != crate::flow::Transport::Tcp
        || c.outcome != Outcome::Failed
        || c.gateway().is_some()
        || c.drafts.len() != 1
    {
        return None;
    }
    match c.drafts[0].code {
        Code::TcpSynUnanswered => Some(false),
        Code::TcpRefused => Some(true),
        Code::TcpResetByClient if c.packets <= 4 && c.facts.requested.is_empty() => Some(true),
        _ => None,
    }
}

impl Book {
    /// The book of one of `n` parts (drained at every checkpoint).
    pub fn shared(n: usize) -> Book {
        Book {
            max_records: MAX_RECORDS.div_ceil(n),
            max_held: MAX_HELD.div_ceil(n),
            ..Default::default()
        }
    }

    /// Sets a failed attempt aside; gives it back when it is not of the
    /// scan shape.
    pub fn put(&mut self, c: Conn) -> Option<Conn> {
        let Some(refused) = shaped(&c) else {
            return Some(c);
        };
        if self.records.len() >= self.max_records {
            self.overflow += 1;
            return None;
        }
        let held = self.held.len() < self.max_held;
        self.records.push(Record {
            server: (c.server.is_ipv6(), octets(c.server.ip()), c.server.port()),
            client: octets(c.client.ip()),
            first: c.first,
            last: c.last,
            refused,
            held: if held {
                self.held.len() as u32
            } else {
                NOT_HELD
            },
        });
        if held {
            self.held.push(Some(c));
        }
        None
    }
}

/// Joins books as a whole file's (every run decided, the file read):
/// the scans, and the connections of shorter runs given back.
#[cfg(test)]
pub fn fold(books: Vec<Book>) -> Folded {
    let mut f = Folder::default();
    for mut b in books {
        f.take(&mut b);
    }
    let mut conns = Vec::new();
    f.decide(
        Frontier {
            ts: i64::MAX,
            end: true,
        },
        &mut conns,
    );
    conns.sort_by_key(|c| c.first.frame);
    Folded {
        scans: f.scans(),
        conns,
        unreported: f.unreported,
    }
}

/// The scans of a file decided as it is read: records arrive at points
/// counted in frames (the parts' books drained), each server's run is cut
/// as [`fold`] cuts the whole file's, and a run is decided once no later
/// record can extend it (the capture's time frontier is more than
/// [`SCAN_GAP_NS`] past its last). A run of [`SCAN_MIN`] becomes a scan
/// summary that absorbs the rest of its run without keeping it; a shorter
/// one goes on to the sweeps (per source host and port), then back to be
/// grouped. Past [`MAX_HELD`] undecided connections only records are kept,
/// past [`MAX_RECORDS`] undecided records a failed connection is counted.
#[derive(Debug, Default)]
pub struct Folder {
    /// Arrived since the last decision, not yet placed in a run.
    pending: Vec<Entry>,
    servers: rustc_hash::FxHashMap<(bool, [u8; 16], u16), Run>,
    /// Records the server runs left, not yet placed in a sweep run.
    swept: Vec<Entry>,
    sweeps: rustc_hash::FxHashMap<(bool, [u8; 16], u16), Run>,
    /// Undecided records kept and connections held.
    kept: usize,
    held: usize,
    /// Decided scans (in the order decided; [`Folder::scans`] sorts them).
    scans: Vec<Scan>,
    /// Failed connections neither held nor part of a scan.
    pub unreported: u64,
    /// Arrival order, to keep sorting total.
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    rec: Record,
    conn: Option<Box<Conn>>,
    seq: u64,
}

/// One open run: its records while shorter than [`SCAN_MIN`], then only
/// the summary.
#[derive(Debug, Default)]
struct Run {
    entries: Vec<Entry>,
    acc: Option<Box<Acc>>,
    last_ts: i64,
}

/// A scan being summed up.
#[derive(Debug)]
struct Acc {
    attempts: u64,
    refused: u64,
    seen: rustc_hash::FxHashSet<[u8; 16]>,
    first: Mark,
    last: Mark,
    lead: Record,
}

impl Acc {
    fn add(&mut self, r: &Record, who: [u8; 16]) {
        self.attempts += 1;
        self.refused += r.refused as u64;
        if self.seen.len() < MAX_SOURCES {
            self.seen.insert(who);
        }
        if r.first.frame < self.first.frame {
            self.first = r.first;
            self.lead = *r;
        }
        if r.last.frame > self.last.frame {
            self.last = r.last;
        }
    }

    fn scan(self, sweep: bool) -> Scan {
        Scan {
            server: self.lead.server(),
            source: sweep.then(|| self.lead.client_ip()),
            attempts: self.attempts,
            refused: self.refused,
            sources: self.seen.len(),
            first: self.first,
            last: self.last,
        }
    }
}

/// Where a decision stands: the time frontier (no later record begins
/// before it) and whether the file is read to its end.
#[derive(Debug, Clone, Copy)]
pub struct Frontier {
    pub ts: i64,
    pub end: bool,
}

impl Frontier {
    /// Can nothing later join a run whose last attempt began at `last`,
    /// `gap` apart at most?
    fn past(&self, last: i64, gap: i64) -> bool {
        self.end || self.ts.saturating_sub(last) > gap
    }
}

impl Folder {
    /// A part's book: its records and connections, in the order put.
    pub fn take(&mut self, book: &mut Book) {
        self.unreported += std::mem::take(&mut book.overflow);
        let mut held = std::mem::take(&mut book.held);
        for mut rec in book.records.drain(..) {
            let conn = (rec.held != NOT_HELD)
                .then(|| held[rec.held as usize].take())
                .flatten();
            rec.held = NOT_HELD;
            if self.kept >= MAX_RECORDS {
                self.unreported += 1;
                continue;
            }
            self.kept += 1;
            let conn = match conn {
                Some(c) if self.held < MAX_HELD => {
                    self.held += 1;
                    Some(Box::new(c))
                }
                _ => None,
            };
            self.seq += 1;
            self.pending.push(Entry {
                rec,
                conn,
                seq: self.seq,
            });
        }
    }

    /// Decides what `at` allows: scans found, connections of runs too
    /// short given back (to `back`).
    pub fn decide(&mut self, at: Frontier, back: &mut Vec<Conn>) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by_key(|e| (e.rec.server, e.rec.first.ts, e.rec.first.frame, e.seq));
        let mut left = std::mem::take(&mut self.swept);
        self.runs(pending, at, false, &mut left, back);
        // The sweeps, of what the server runs left; a record still in an
        // undecided server run may yet come, so the sweeps' frontier is
        // the earliest of those.
        let floor = self
            .servers
            .values()
            .flat_map(|r| r.entries.iter().map(|e| e.rec.first.ts))
            .min();
        let at2 = Frontier {
            ts: floor.map_or(at.ts, |f| f.min(at.ts)),
            end: at.end && floor.is_none(),
        };
        left.sort_unstable_by_key(|e| {
            let r = &e.rec;
            (
                r.server.0,
                r.client,
                r.server.2,
                r.first.ts,
                r.first.frame,
                e.seq,
            )
        });
        // Placed only up to the frontier: a sweep run's records must come
        // in time order.
        let (now, later): (Vec<Entry>, Vec<Entry>) = left
            .into_iter()
            .partition(|e| at2.end || e.rec.first.ts < at2.ts);
        self.swept = later;
        self.runs(now, at2, true, &mut Vec::new(), back);
    }

    /// Records sorted by their run's key (a server; a sweep's source host
    /// and port) and time, into runs: a run nothing can extend is closed at
    /// once (a run only ever held in a map while it may still grow).
    fn runs(
        &mut self,
        sorted: Vec<Entry>,
        at: Frontier,
        sweep: bool,
        left: &mut Vec<Entry>,
        back: &mut Vec<Conn>,
    ) {
        let key = |r: &Record| {
            if sweep {
                (r.server.0, r.client, r.server.2)
            } else {
                r.server
            }
        };
        let who = |r: &Record| if sweep { r.server.1 } else { r.client };
        let mut it = sorted.into_iter().peekable();
        while let Some(e) = it.next() {
            let k = key(&e.rec);
            let map = if sweep {
                &mut self.sweeps
            } else {
                &mut self.servers
            };
            let mut run = map.remove(&k).unwrap_or_default();
            let mut next = Some(e);
            while let Some(e) = next.take() {
                if (!run.entries.is_empty() || run.acc.is_some())
                    && e.rec.first.ts - run.last_ts > SCAN_GAP_NS
                {
                    self.close(std::mem::take(&mut run), sweep, left, back);
                }
                Self::place(&mut run, e, who, &mut self.kept, &mut self.held);
                next = it.next_if(|n| key(&n.rec) == k);
            }
            if at.past(run.last_ts, SCAN_GAP_NS) {
                self.close(run, sweep, left, back);
            } else if sweep {
                self.sweeps.insert(k, run);
            } else {
                self.servers.insert(k, run);
            }
        }
        // Runs nothing came to that nothing can extend any more.
        let map = if sweep {
            &mut self.sweeps
        } else {
            &mut self.servers
        };
        let closed: Vec<_> = map
            .iter()
            .filter(|(_, r)| at.past(r.last_ts, SCAN_GAP_NS))
            .map(|(k, _)| *k)
            .collect();
        for k in closed {
            let map = if sweep {
                &mut self.sweeps
            } else {
                &mut self.servers
            };
            if let Some(run) = map.remove(&k) {
                self.close(run, sweep, left, back);
            }
        }
    }

    /// Adds a record to its open run; at [`SCAN_MIN`] the run becomes a
    /// summary and its records are let go.
    fn place(
        run: &mut Run,
        e: Entry,
        who: impl Fn(&Record) -> [u8; 16],
        kept: &mut usize,
        held: &mut usize,
    ) {
        run.last_ts = if run.entries.is_empty() && run.acc.is_none() {
            e.rec.first.ts
        } else {
            run.last_ts.max(e.rec.first.ts)
        };
        if let Some(acc) = &mut run.acc {
            acc.add(&e.rec, who(&e.rec));
            *kept -= 1;
            *held -= e.conn.is_some() as usize;
            return;
        }
        run.entries.push(e);
        if run.entries.len() >= SCAN_MIN {
            let lead = run.entries[0].rec;
            let mut acc = Acc {
                attempts: 0,
                refused: 0,
                seen: Default::default(),
                first: lead.first,
                last: lead.last,
                lead,
            };
            for e in run.entries.drain(..) {
                acc.add(&e.rec, who(&e.rec));
                *kept -= 1;
                *held -= e.conn.is_some() as usize;
            }
            run.acc = Some(Box::new(acc));
        }
    }

    /// A run is over: a scan, or its records go on (`left`: to the sweeps;
    /// a sweep's: back to be grouped, or counted when not held).
    fn close(&mut self, run: Run, sweep: bool, left: &mut Vec<Entry>, back: &mut Vec<Conn>) {
        if let Some(acc) = run.acc {
            self.scans.push((*acc).scan(sweep));
            return;
        }
        for e in run.entries {
            if !sweep {
                left.push(e);
                continue;
            }
            self.kept -= 1;
            match e.conn {
                Some(c) => {
                    self.held -= 1;
                    back.push(*c);
                }
                None => self.unreported += 1,
            }
        }
    }

    /// The earliest first frame (and its time) of a record not decided
    /// yet: no connection given back later begins before it.
    pub fn floor(&self) -> Option<Mark> {
        self.pending
            .iter()
            .chain(&self.swept)
            .chain(self.servers.values().flat_map(|r| &r.entries))
            .chain(self.sweeps.values().flat_map(|r| &r.entries))
            .map(|e| e.rec.first)
            .min_by_key(|m| (m.frame, m.ts))
    }

    /// The scans decided, by first frame.
    pub fn scans(&mut self) -> Vec<Scan> {
        let mut s = std::mem::take(&mut self.scans);
        s.sort_by_key(|s| (s.first.frame, s.server, s.source));
        s
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::finding::{Draft, Phase, Severity};
    use crate::flow::Transport;

    fn failed(client: &str, server: &str, frame: u64, code: Code) -> Conn {
        let mut c = Conn::test(
            client,
            server,
            Transport::Tcp,
            frame,
            frame,
            Outcome::Failed,
        );
        c.drafts.push(Draft::new(
            code,
            Severity::Error,
            Phase::Tcp,
            frame,
            frame as i64,
        ));
        c
    }

    #[test]
    fn a_burst_is_one_scan_and_a_short_run_goes_back() {
        let mut a = Book::shared(2);
        let mut b = Book::shared(2);
        // 70 attempts a second apart from 70 hosts, split between two
        // workers: one scan (the same for any split).
        for k in 0..70u64 {
            let code = if k % 10 == 0 {
                Code::TcpRefused
            } else {
                Code::TcpSynUnanswered
            };
            let c = failed(
                &format!("10.0.0.{k}:40000"),
                "198.19.0.20:3389",
                k + 1,
                code,
            );
            let book = if k % 3 == 0 { &mut a } else { &mut b };
            assert!(book.put(c).is_none());
        }
        // A user retrying another server three times: not a scan.
        for k in 0..3u64 {
            let c = failed(
                "10.9.9.9:5000",
                "198.19.0.21:3389",
                100 + k * 20,
                Code::TcpSynUnanswered,
            );
            assert!(a.put(c).is_none());
        }
        // A connection that carried data is not set aside.
        let ok = Conn::test(
            "10.1.1.1:1",
            "198.19.0.20:3389",
            Transport::Tcp,
            5,
            9,
            Outcome::Connected,
        );
        assert!(a.put(ok).is_some());
        let f = fold(vec![a, b]);
        assert_eq!(f.scans.len(), 1);
        let s = &f.scans[0];
        assert_eq!((s.attempts, s.refused, s.sources), (70, 7, 70));
        assert_eq!((s.first.frame, s.last.frame), (1, 70));
        assert_eq!(f.conns.len(), 3);
        assert_eq!(f.unreported, 0);
        // 63 attempts: one short of a scan, all given back.
        let mut c = Book::shared(1);
        for k in 0..63u64 {
            c.put(failed(
                &format!("10.0.0.{k}:1"),
                "198.19.0.20:3389",
                k + 1,
                Code::TcpSynUnanswered,
            ));
        }
        let f = fold(vec![c]);
        assert!(f.scans.is_empty());
        assert_eq!(f.conns.len(), 63);
        // A gap over 10 s splits the runs.
        let mut d = Book::shared(1);
        for k in 0..128u64 {
            let mut x = failed(
                &format!("10.0.1.{}:1", k % 250),
                "198.19.0.20:3389",
                k + 1,
                Code::TcpSynUnanswered,
            );
            if k >= 64 {
                x.first.ts += 20_000_000_000;
            }
            d.put(x);
        }
        assert_eq!(fold(vec![d]).scans.len(), 2);
        // One host sweeping port 3389 of 70 servers, split between two
        // workers: one sweep, whatever the split; a host that tried 63
        // servers is not one.
        let mut e = Book::shared(2);
        let mut g = Book::shared(2);
        for k in 0..70u64 {
            let c = failed(
                "10.7.7.7:40000",
                &format!("198.19.1.{k}:3389"),
                2 * k + 1,
                if k == 5 {
                    Code::TcpRefused
                } else {
                    Code::TcpSynUnanswered
                },
            );
            let book = if k % 2 == 0 { &mut e } else { &mut g };
            assert!(book.put(c).is_none());
        }
        for k in 0..63u64 {
            let c = failed(
                "10.8.8.8:40000",
                &format!("198.19.2.{k}:3389"),
                2 * k + 2,
                Code::TcpSynUnanswered,
            );
            assert!(e.put(c).is_none());
        }
        let f = fold(vec![e, g]);
        assert_eq!(f.scans.len(), 1);
        let s = &f.scans[0];
        assert_eq!(s.source, Some("10.7.7.7".parse().unwrap()));
        assert_eq!((s.attempts, s.refused, s.sources), (70, 1, 70));
        assert_eq!(
            (s.first.frame, s.last.frame, s.server.port()),
            (1, 139, 3389)
        );
        assert_eq!(f.conns.len(), 63);
        assert!(f
            .conns
            .iter()
            .all(|c| c.client.ip().to_string() == "10.8.8.8"));
        // A run toward one server is taken first: its records are not
        // counted again in a sweep.
        let mut h = Book::shared(1);
        for k in 0..70u64 {
            h.put(failed(
                "10.7.7.7:40000",
                "198.19.0.20:3389",
                k + 1,
                Code::TcpSynUnanswered,
            ));
        }
        let f = fold(vec![h]);
        assert_eq!(f.scans.len(), 1);
        assert_eq!(f.scans[0].source, None);
    }

    /// Decided as the records come (books handed over a few at a time,
    /// the frontier at the next record's time) or on the whole file: the
    /// same scans, sweeps and connections given back.
    #[test]
    fn decided_as_read_is_decided_on_the_whole_file() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut all = Vec::new();
        let mut frame = 1u64;
        for _ in 0..3000 {
            // Mostly close together, sometimes past the 10 s gap.
            frame += if next(300) == 0 {
                11 + next(30)
            } else {
                next(2)
            };
            let (client, server) = if next(10) < 3 {
                // A sweep's: one of two hosts, a server each.
                (
                    format!("10.7.7.{}:4000", next(2)),
                    format!("198.20.{}.{}:3389", next(250), next(250)),
                )
            } else {
                let client = match next(4) {
                    0 => format!("10.7.7.{}:4000", next(2)),
                    _ => format!("10.{}.{}.{}:4000", next(250), next(250), next(250)),
                };
                (client, format!("198.19.0.{}:3389", next(2)))
            };
            let code = if next(7) == 0 {
                Code::TcpRefused
            } else {
                Code::TcpSynUnanswered
            };
            all.push(failed(&client, &server, frame, code));
        }
        let mut whole = Book::shared(1);
        for c in all.iter().cloned() {
            whole.put(c);
        }
        let want = fold(vec![whole]);
        assert!(
            want.scans.len() >= 3 && !want.conns.is_empty(),
            "{:?} {} {}",
            want.scans,
            want.conns.len(),
            want.unreported
        );
        for step in [1usize, 7, 64, 500] {
            let mut f = Folder::default();
            let mut back = Vec::new();
            let mut from = 0;
            while from < all.len() {
                let to = (from + step).min(all.len());
                let (mut a, mut b) = (Book::shared(2), Book::shared(2));
                for (k, c) in all[from..to].iter().cloned().enumerate() {
                    if k % 2 == 0 {
                        a.put(c)
                    } else {
                        b.put(c)
                    };
                }
                f.take(&mut a);
                f.take(&mut b);
                let at = match all.get(to) {
                    Some(n) => Frontier {
                        ts: n.first.ts,
                        end: false,
                    },
                    None => Frontier {
                        ts: i64::MAX,
                        end: true,
                    },
                };
                f.decide(at, &mut back);
                from = to;
            }
            back.sort_by_key(|c| c.first.frame);
            let frames = |v: &[Conn]| v.iter().map(|c| c.first.frame).collect::<Vec<_>>();
            let got = f.scans();
            let only = |a: &[Scan], b: &[Scan]| {
                a.iter()
                    .filter(|x| !b.contains(x))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                got,
                want.scans,
                "step {step}: only decided as read {:?}; only on the whole file {:?}",
                only(&got, &want.scans),
                only(&want.scans, &got)
            );
            assert_eq!(frames(&back), frames(&want.conns), "step {step}");
            assert_eq!(f.unreported, want.unreported, "step {step}");
        }
    }
}
