//! Scans and floods: many connection attempts toward one server that were
//! never answered or were refused, within a short time, are one `tcp.scan`
//! summary instead of a million attempts; so are many such attempts from
//! one host toward one port of many servers (a sweep).
//!
//! Each worker sets aside the connections shaped like that (a SYN and
//! nothing else, or a SYN answered by a reset: no data either way) as
//! compact records, holding the connections themselves up to a bound. Once
//! every worker is done, the records of the whole file are sorted and cut
//! into runs per server (consecutive attempts at most [`SCAN_GAP_NS`]
//! apart): a run of [`SCAN_MIN`] or more is a scan; the connections of a
//! shorter run go back to be grouped into attempts like any other. The
//! decision is made on the whole file, so it is the same for any `-j`.

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
    /// The worker whose book holds it.
    book: u16,
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
    /// This worker's number (records say whose book holds them).
    index: u16,
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

/// What the books of a file came to.
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
    /// The book of worker `index` of `n`.
    pub fn shared(index: usize, n: usize) -> Book {
        Book {
            index: index as u16,
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
            book: self.index,
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

/// Joins the workers' books: the scans, and the connections of shorter
/// runs given back.
pub fn fold(books: Vec<Book>) -> Folded {
    let mut out = Folded::default();
    let mut all: Vec<Record> = Vec::with_capacity(books.iter().map(|b| b.records.len()).sum());
    let mut held: Vec<Vec<Option<Conn>>> = Vec::new();
    for b in books {
        out.unreported += b.overflow;
        all.extend(b.records);
        held.push(b.held);
    }
    // Runs toward one server first; what they leave, runs of one source
    // toward one port of many servers (a sweep); what is left goes back.
    all.sort_unstable_by_key(|r| (r.server, r.first.ts, r.first.frame, r.book));
    let mut rest: Vec<Record> = Vec::new();
    runs(
        &all,
        |a, b| a.server == b.server,
        |r| r.client,
        &mut out.scans,
        &mut rest,
        false,
    );
    drop(all);
    rest.sort_unstable_by_key(|r| {
        (
            r.server.0,
            r.client,
            r.server.2,
            r.first.ts,
            r.first.frame,
            r.book,
        )
    });
    let mut left: Vec<Record> = Vec::new();
    runs(
        &rest,
        |a, b| (a.server.0, a.client, a.server.2) == (b.server.0, b.client, b.server.2),
        |r| r.server.1,
        &mut out.scans,
        &mut left,
        true,
    );
    left.sort_unstable_by_key(|r| (r.first.frame, r.book));
    for r in left {
        let c = (r.held != NOT_HELD)
            .then(|| held[r.book as usize][r.held as usize].take())
            .flatten();
        match c {
            Some(c) => out.conns.push(c),
            None => out.unreported += 1,
        }
    }
    out.scans.sort_by_key(|s| s.first.frame);
    out
}

/// Cuts sorted records into runs (same `key`, each at most
/// [`SCAN_GAP_NS`] after the previous): a run of [`SCAN_MIN`] or more is a
/// scan counting the distinct `who` (sources, or a sweep's servers); the
/// records of shorter runs go to `rest`.
fn runs(
    all: &[Record],
    same: impl Fn(&Record, &Record) -> bool,
    who: impl Fn(&Record) -> [u8; 16],
    scans: &mut Vec<Scan>,
    rest: &mut Vec<Record>,
    sweep: bool,
) {
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len()
            && same(&all[i], &all[j])
            && all[j].first.ts - all[j - 1].first.ts <= SCAN_GAP_NS
        {
            j += 1;
        }
        let run = &all[i..j];
        if run.len() >= SCAN_MIN {
            let mut seen: rustc_hash::FxHashSet<[u8; 16]> = Default::default();
            for r in run {
                if seen.len() >= MAX_SOURCES {
                    break;
                }
                seen.insert(who(r));
            }
            let first = run.iter().map(|r| r.first).min_by_key(|m| m.frame);
            let last = run.iter().map(|r| r.last).max_by_key(|m| m.frame);
            let lead = run.iter().min_by_key(|r| r.first.frame).unwrap_or(&run[0]);
            scans.push(Scan {
                server: lead.server(),
                source: sweep.then(|| lead.client_ip()),
                attempts: run.len() as u64,
                refused: run.iter().filter(|r| r.refused).count() as u64,
                sources: seen.len(),
                first: first.unwrap_or_default(),
                last: last.unwrap_or_default(),
            });
        } else {
            rest.extend_from_slice(run);
        }
        i = j;
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
        let mut a = Book::shared(0, 2);
        let mut b = Book::shared(1, 2);
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
        let mut c = Book::shared(0, 1);
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
        let mut d = Book::shared(0, 1);
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
        let mut e = Book::shared(0, 2);
        let mut g = Book::shared(1, 2);
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
        let mut h = Book::shared(0, 1);
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
}
