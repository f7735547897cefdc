//! flow: bidirectional flows keyed by a symmetric 5-tuple, TCP state and
//! per-direction counters, reassembly into the proto layer, and the table
//! that holds them within bounds.

pub mod reasm;
pub mod table;

pub use table::Table;

use crate::config::{port, Config};
use crate::decode::packet::flags as tf;
use crate::decode::{IcmpError, Ip, Tcp, Udp};
use crate::proto::{App, AppClass};
use reasm::{Chunk, Reasm, SegKind};
use std::net::{IpAddr, SocketAddr};

pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Symmetric key: the smaller endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: SocketAddr,
    pub hi: SocketAddr,
    pub transport: Transport,
}

impl FlowKey {
    pub fn new(src: SocketAddr, dst: SocketAddr, transport: Transport) -> FlowKey {
        let (lo, hi) = if (src.ip(), src.port()) <= (dst.ip(), dst.port()) {
            (src, dst)
        } else {
            (dst, src)
        };
        FlowKey { lo, hi, transport }
    }
}

/// Why a flow is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// RDP port (TCP/UDP 3389), gateway UDP 3391.
    Rdp,
    /// A port named with `--port`.
    UserPort,
    /// TCP 443: an RD Gateway candidate, reported once known to be one.
    Gateway,
    Dns,
    /// Any other TCP flow: content decides (RDP found on any port).
    Probe,
}

/// A moment in a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub frame: u64,
    pub ts: i64,
}

/// Frames of one kind of event: how many, first and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    pub count: u32,
    pub first: Mark,
    pub last: Mark,
}

impl Marks {
    fn add(&mut self, m: Mark) {
        if self.count == 0 {
            self.first = m;
        }
        self.count += 1;
        self.last = m;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    pub dir: usize,
    pub at: Mark,
    pub ttl: u8,
    pub ip_id: u32,
    /// Payload bytes each way (client, server) before the reset.
    pub bytes: [u64; 2],
    pub established: bool,
}

/// Counters for one direction.
#[derive(Debug, Clone, Default)]
pub struct DirStats {
    pub packets: u64,
    /// IP bytes (as declared by the IP header).
    pub bytes: u64,
    pub payload: u64,
    pub data_segments: u64,
    pub retransmissions: u64,
    pub out_of_order: u64,
    /// Most times one segment (same sequence number) was sent.
    pub max_resend: u32,
    pub max_resend_at: Mark,
    pub zero_window: Marks,
    pub largest_segment: u32,
    pub largest_ip: u32,
    pub largest_ip_at: Mark,
    pub mss: Option<u16>,
    pub df: u64,
    /// TTL of the first packet that was not a RST (the endpoint's own).
    pub first_ttl: Option<u8>,
    pub syn: Marks,
    pub fin: Option<Mark>,
    pub first_data: Option<Mark>,
    pub last_data: Option<Mark>,
    pub capture_lost: u64,
    pub path: PathStats,
    /// ACKs from the peer that revealed bytes of this direction as never captured.
    pub loss_seen: Marks,
    /// Retransmitted segments.
    pub retrans: Marks,
    pub overlap_conflicts: u64,
    pub ooo_dropped: u64,
}

/// TCP machinery that can be dropped once a flow is of no interest.
#[derive(Debug, Default)]
pub struct TcpState {
    pub reasm: [Reasm; 2],
    zero_win: [bool; 2],
    last_resend_seq: [Option<u32>; 2],
    resend_run: [u32; 2],
    /// Segments sent and not yet acknowledged, per direction (a window of
    /// [`MAX_INFLIGHT`]; older ones fall off): for black holes.
    inflight: [std::collections::VecDeque<InFlight>; 2],
}

/// A data segment waiting for its ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub end: u32,
    pub len: u32,
    pub ip_len: u32,
    pub sends: u32,
    pub first: Mark,
    pub last: Mark,
    pub df: bool,
}

/// Unacknowledged segments remembered per direction.
const MAX_INFLIGHT: usize = 64;

/// What reached the peer and what never did, per direction (path MTU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathStats {
    /// The largest segment the peer acknowledged: payload and IP length.
    pub max_acked: u32,
    pub max_acked_ip: u32,
    /// The largest segment sent 2+ times and never acknowledged.
    pub stuck: Option<InFlight>,
    /// Receiver's view: a hole in this direction's data never filled while
    /// later data waited behind it (hole bytes, held bytes, largest held).
    pub unfilled: Option<(u64, usize, usize)>,
    /// The first segment that arrived beyond a hole.
    pub first_ooo: Option<Mark>,
}

/// A stall: the longest time without progress during the handshake region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stall {
    pub gap_ns: i64,
    pub before: Mark,
    pub after: Option<Mark>,
}

/// IP fragmentation seen on the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frags {
    pub datagrams: u32,
    pub fragments: u32,
    pub incomplete: u32,
    pub overlaps: u32,
    pub conflicts: u32,
    pub first: Mark,
    pub last: Mark,
    pub largest: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEvent {
    pub at: Mark,
    pub from: IpAddr,
    pub err: IcmpError,
    /// Direction of the quoted packet (who sent what the router refused).
    pub dir: usize,
}

/// At most this many ICMP events kept per flow.
const MAX_ICMP: usize = 16;

#[derive(Debug)]
pub struct Flow {
    pub key: FlowKey,
    pub interest: Interest,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first: Mark,
    pub last: Mark,
    pub dirs: [DirStats; 2],
    /// TCP: handshake.
    pub syn_ack: Marks,
    pub established: Option<Mark>,
    /// No SYN seen: the capture started after the connection did.
    pub mid_stream: bool,
    pub rst: Option<Reset>,
    pub rst_count: u32,
    pub stall: Stall,
    last_progress: Option<Mark>,
    pub frags: Frags,
    pub icmp: Vec<IcmpEvent>,
    pub app: App,
    pub tcp: Option<Box<TcpState>>,
    /// Content showed the flow is of no interest: only kept to not re-probe.
    pub ignored: bool,
    isn: [Option<u32>; 2],
}

impl Flow {
    pub fn new(
        key: FlowKey,
        client: SocketAddr,
        server: SocketAddr,
        interest: Interest,
        at: Mark,
    ) -> Flow {
        let tcp = (key.transport == Transport::Tcp).then(Box::default);
        let mut app = App::default();
        app.rdp_port = interest == Interest::Rdp;
        Flow {
            key,
            interest,
            client,
            server,
            first: at,
            last: at,
            dirs: Default::default(),
            syn_ack: Marks::default(),
            established: None,
            mid_stream: false,
            rst: None,
            rst_count: 0,
            stall: Stall::default(),
            last_progress: None,
            frags: Frags::default(),
            icmp: Vec::new(),
            app,
            tcp,
            ignored: false,
            isn: [None; 2],
        }
    }

    /// The endpoint of a direction (`CLIENT` / `SERVER`).
    pub fn endpoint(&self, dir: usize) -> SocketAddr {
        if dir == CLIENT {
            self.client
        } else {
            self.server
        }
    }

    pub fn dir_of(&self, src: SocketAddr) -> usize {
        if src == self.client {
            CLIENT
        } else {
            SERVER
        }
    }

    /// Reported in the attempts and findings.
    pub fn reported(&self) -> bool {
        match self.interest {
            Interest::Rdp | Interest::UserPort => true,
            Interest::Probe => matches!(self.app.class, AppClass::Rdp { .. }),
            Interest::Gateway | Interest::Dns => false,
        }
    }

    /// Closed: a reset, or a FIN each way.
    pub fn closed(&self) -> bool {
        self.rst.is_some() || (self.dirs[0].fin.is_some() && self.dirs[1].fin.is_some())
    }

    fn common(&mut self, dir: usize, ip: &Ip, at: Mark) {
        self.last = at;
        let d = &mut self.dirs[dir];
        d.packets += 1;
        d.bytes += ip.len as u64;
        if ip.len > d.largest_ip {
            d.largest_ip = ip.len;
            d.largest_ip_at = at;
        }
        if ip.df && !ip.v6 {
            d.df += 1;
        }
    }

    /// One TCP segment. `new_conn` is set by the table beforehand.
    pub fn tcp(&mut self, src: SocketAddr, ip: &Ip, t: &Tcp<'_>, at: Mark, cfg: &Config) {
        let dir = self.dir_of(src);
        self.common(dir, ip, at);
        if self.ignored {
            return;
        }
        let syn = t.flags & tf::SYN != 0;
        let ack = t.flags & tf::ACK != 0;
        let rst = t.flags & tf::RST != 0;
        let fin = t.flags & tf::FIN != 0;
        if !rst && self.dirs[dir].first_ttl.is_none() {
            self.dirs[dir].first_ttl = Some(ip.ttl);
        }
        let hs_before = self.dirs[0].payload + self.dirs[1].payload < cfg.handshake_bytes;
        if syn {
            if ack {
                self.syn_ack.add(at);
            } else {
                self.dirs[dir].syn.add(at);
            }
            if t.mss.is_some() {
                self.dirs[dir].mss = t.mss;
            }
            if self.isn[dir].is_none() {
                self.isn[dir] = Some(t.seq);
                if let Some(s) = self.tcp.as_mut() {
                    s.reasm[dir].start(t.seq.wrapping_add(1));
                }
            }
            self.progress(at, hs_before);
        } else if ack
            && dir == CLIENT
            && self.established.is_none()
            && self.syn_ack.count > 0
            && !rst
        {
            self.established = Some(at);
            self.progress(at, hs_before);
        }
        if self.dirs[0].syn.count == 0 && self.syn_ack.count == 0 && self.first == at {
            self.mid_stream = true;
        }
        if rst {
            self.rst_count += 1;
            if self.rst.is_none() {
                self.rst = Some(Reset {
                    dir,
                    at,
                    ttl: ip.ttl,
                    ip_id: ip.id,
                    bytes: [self.dirs[0].payload, self.dirs[1].payload],
                    established: self.established.is_some() || self.mid_stream,
                });
            }
        }
        if fin && self.dirs[dir].fin.is_none() {
            self.dirs[dir].fin = Some(at);
        }
        let Some(state) = self.tcp.as_mut() else {
            return;
        };
        // Zero window: count episodes (a change from open to zero).
        if !rst && !syn {
            let zero = t.window == 0;
            if zero && !state.zero_win[dir] {
                self.dirs[dir].zero_window.add(at);
            }
            state.zero_win[dir] = zero;
        }
        let lim = reasm::Limits {
            depth: cfg.depth,
            ..Default::default()
        };
        // The peer's ACK tells which of our holes were capture loss.
        let app = &mut self.app;
        if ack && !rst {
            let other = 1 - dir;
            let fl = &mut state.inflight[other];
            let p = &mut self.dirs[other].path;
            let mut got = |s: &InFlight| {
                if s.len > p.max_acked {
                    p.max_acked = s.len;
                    p.max_acked_ip = s.ip_len;
                }
            };
            // The cumulative ACK takes a prefix (segments are kept in send
            // order); a SACK block may take any of the rest.
            let k = fl
                .iter()
                .position(|s| (t.ack.wrapping_sub(s.end) as i32) < 0)
                .unwrap_or(fl.len());
            if k > 0 {
                fl.drain(..k).for_each(|s| got(&s));
            }
            if let Some((l, r)) = t.sack {
                fl.retain(|s| {
                    let start = s.end.wrapping_sub(s.len);
                    let sacked =
                        (start.wrapping_sub(l) as i32) >= 0 && (r.wrapping_sub(s.end) as i32) >= 0;
                    if sacked {
                        got(s);
                    }
                    !sacked
                });
            }
            let before = state.reasm[other].capture_lost;
            state.reasm[other].acked(t.ack, &lim, &mut |c| app.feed(other, c, at));
            if state.reasm[other].capture_lost > before {
                self.dirs[other].loss_seen.add(at);
            }
        }
        let wire = t.wire_len;
        if wire == 0 || rst {
            return;
        }
        let seq = if syn { t.seq.wrapping_add(1) } else { t.seq };
        let r = &mut state.reasm[dir];
        if !r.started() {
            self.mid_stream |= self.isn[dir].is_none();
        }
        let kind = r.segment(seq, t.payload, wire, &lim, &mut |c: Chunk<'_>| {
            app.feed(dir, c, at)
        });
        let end = seq.wrapping_add(wire);
        let fl = &mut state.inflight[dir];
        let again = if kind == SegKind::Retransmission {
            fl.iter_mut().rev().find(|s| s.end == end)
        } else {
            None
        };
        match again {
            Some(s) => {
                s.sends += 1;
                s.last = at;
            }
            None => {
                if fl.len() == MAX_INFLIGHT {
                    fl.pop_front();
                }
                fl.push_back(InFlight {
                    end,
                    len: wire,
                    ip_len: ip.len,
                    sends: 1,
                    first: at,
                    last: at,
                    df: ip.df || ip.v6,
                });
            }
        }
        let d = &mut self.dirs[dir];
        d.data_segments += 1;
        d.largest_segment = d.largest_segment.max(wire);
        d.capture_lost = r.capture_lost;
        d.overlap_conflicts = r.overlap_conflicts;
        d.ooo_dropped = r.ooo_dropped;
        match kind {
            SegKind::Retransmission => {
                d.retransmissions += 1;
                d.retrans.add(at);
                let run = if state.last_resend_seq[dir] == Some(seq) {
                    state.resend_run[dir] + 1
                } else {
                    2
                };
                state.last_resend_seq[dir] = Some(seq);
                state.resend_run[dir] = run;
                if run > d.max_resend && hs_before {
                    d.max_resend = run;
                    d.max_resend_at = at;
                }
            }
            SegKind::OutOfOrder | SegKind::HoleFill => {
                d.out_of_order += 1;
                if kind == SegKind::OutOfOrder && d.path.first_ooo.is_none() {
                    d.path.first_ooo = Some(at);
                }
            }
            SegKind::InOrder | SegKind::Partial => {}
        }
        let new_data = !matches!(kind, SegKind::Retransmission);
        if new_data {
            d.payload += wire as u64;
            if d.first_data.is_none() {
                d.first_data = Some(at);
            }
            d.last_data = Some(at);
        }
        if new_data {
            self.progress(at, hs_before);
        }
        if self.interest == Interest::Probe && self.app.decided() && !self.reported() {
            // Not RDP: stop following the content.
            self.ignored = true;
            self.tcp = None;
        }
    }

    /// Progress (new data or handshake) while still in the handshake region:
    /// remember the longest wait between two such moments.
    fn progress(&mut self, at: Mark, handshake: bool) {
        if handshake {
            if let Some(p) = self.last_progress {
                let gap = at.ts - p.ts;
                if gap > self.stall.gap_ns {
                    self.stall = Stall {
                        gap_ns: gap,
                        before: p,
                        after: Some(at),
                    };
                }
            }
        }
        self.last_progress = Some(at);
    }

    /// Called when the flow ends: the wait from the last progress to the end
    /// (a close, a reset or the end of the capture) counts as a stall too.
    pub fn finish(&mut self, end: Mark, cfg: &Config) {
        if self.dirs[0].payload + self.dirs[1].payload < cfg.handshake_bytes {
            if let Some(p) = self.last_progress {
                let gap = end.ts - p.ts;
                if gap > self.stall.gap_ns {
                    self.stall = Stall {
                        gap_ns: gap,
                        before: p,
                        after: (end.frame != p.frame && end.frame != 0).then_some(end),
                    };
                }
            }
        }
        if let Some(s) = self.tcp.take() {
            for dir in 0..2 {
                self.dirs[dir].capture_lost = s.reasm[dir].capture_lost;
                self.dirs[dir].path.unfilled = s.reasm[dir].pending_hole();
                self.dirs[dir].path.stuck = s.inflight[dir]
                    .iter()
                    .filter(|x| x.sends >= 2)
                    .max_by_key(|x| (x.len, std::cmp::Reverse(x.first.frame)))
                    .copied();
            }
        }
        self.app.finish();
    }

    pub fn udp(&mut self, src: SocketAddr, ip: &Ip, u: &Udp<'_>, at: Mark) {
        let dir = self.dir_of(src);
        self.common(dir, ip, at);
        match self.interest {
            Interest::Dns => self.app.facts_mut().dns.datagram(u.payload, at),
            Interest::Rdp => self.app.facts_mut().udp.datagram(dir, u.payload, at),
            _ => {}
        }
        let d = &mut self.dirs[dir];
        d.first_ttl.get_or_insert(ip.ttl);
        d.data_segments += 1;
        d.payload += u.wire_len as u64;
        d.largest_segment = d.largest_segment.max(u.wire_len);
        if d.first_data.is_none() {
            d.first_data = Some(at);
        }
        d.last_data = Some(at);
    }

    pub fn icmp(&mut self, ev: IcmpEvent) {
        if self.icmp.len() < MAX_ICMP {
            self.icmp.push(ev);
        }
    }

    /// Payload bytes (client→server, server→client).
    pub fn payload(&self) -> [u64; 2] {
        [self.dirs[0].payload, self.dirs[1].payload]
    }
}

/// Which port makes a flow interesting, and who is the server.
pub fn interest(transport: Transport, a: u16, b: u16, cfg: &Config) -> Option<(Interest, bool)> {
    // Returns (interest, b_is_server).
    let pick = |p: u16| -> Option<bool> {
        if b == p {
            Some(true)
        } else if a == p {
            Some(false)
        } else {
            None
        }
    };
    let user = cfg.ports.iter().find_map(|&p| pick(p));
    match transport {
        Transport::Tcp => {
            if let Some(s) = pick(port::RDP) {
                Some((Interest::Rdp, s))
            } else if let Some(s) = user {
                Some((Interest::UserPort, s))
            } else if let Some(s) = pick(port::HTTPS) {
                Some((Interest::Gateway, s))
            } else if let Some(s) = pick(port::DNS) {
                Some((Interest::Dns, s))
            } else {
                Some((Interest::Probe, b <= a))
            }
        }
        Transport::Udp => {
            if let Some(s) = pick(port::RDP).or_else(|| pick(port::GATEWAY_UDP)) {
                Some((Interest::Rdp, s))
            } else if let Some(s) = user {
                Some((Interest::UserPort, s))
            } else {
                pick(port::DNS).map(|s| (Interest::Dns, s))
            }
        }
    }
}
