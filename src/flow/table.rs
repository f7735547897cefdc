//! The flow table of one part of a capture: creates flows, routes
//! segments, datagrams, fragments and ICMP errors to them, finishes idle
//! and closed flows, and keeps every structure within its bound.

use super::{interest, Flow, FlowKey, IcmpEvent, Interest, Mark, Transport};
use crate::config::Config;
use crate::decode::defrag::{self, Defrag, FragKey, FragMeta, Outcome};
use crate::decode::{self, Packet, L4};
use crate::finding::Dir;
use rustc_hash::FxHashMap;
use std::net::{IpAddr, SocketAddr};

/// ICMP errors that quote no tracked flow, kept for path findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanIcmp {
    pub at: Mark,
    pub from: IpAddr,
    pub err: decode::IcmpError,
}

/// ICMP errors and fragments quoting no flow kept per file (each part of
/// a capture keeps its share).
const MAX_ORPHAN_ICMP: usize = 4096;
/// Floors of a part's share ([`Table::shared`]): ICMP errors and fragments
/// quoting no flow, datagrams under reassembly and their bytes.
const MIN_ORPHANS: usize = 256;
const MIN_DATAGRAMS: usize = 64;
const MIN_DEFRAG_BYTES: usize = 1 << 20;
/// How often (in packets) idle flows are swept.
const SWEEP_EVERY: u32 = 1 << 16;

/// Bounds that were hit, reported as `capture.bound` findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundsHit {
    pub flows_evicted: u64,
    pub records_dropped: u64,
    pub fragments_evicted: u64,
    pub icmp_dropped: u64,
    pub dns_dropped: u64,
    pub krb_dropped: u64,
    /// Failed connections of a scan's shape that were neither reported
    /// one by one nor part of a scan (the scan book's bounds).
    pub scan_unreported: u64,
    /// Out-of-order bytes dropped past the hold bound, in all flows.
    pub ooo_dropped: u64,
    /// ICMP errors past the 16 kept per flow.
    pub icmp_capped: u64,
    /// Flows whose parsers hit a bound (a TLS handshake message or a
    /// CredSSP TSRequest over 256 KiB, a gateway leg's bounds, …), and the
    /// first such bound.
    pub parsers_bounded: u64,
    pub first_parser_bound: Option<&'static str>,
}

/// A DNS query seen on a finished DNS flow, with its endpoints.
#[derive(Debug, Clone)]
pub struct DnsLookup {
    pub client: std::net::SocketAddr,
    pub server: std::net::SocketAddr,
    pub query: crate::proto::dns::Query,
}

/// DNS lookups kept per worker for matching against attempts.
pub const MAX_DNS: usize = 8192;

/// A Kerberos message seen on a finished flow to port 88, with the flow's
/// endpoints (client: the host that asked the KDC).
#[derive(Debug, Clone)]
pub struct KdcMessage {
    pub client: std::net::SocketAddr,
    pub server: std::net::SocketAddr,
    pub msg: crate::proto::krb::Message,
}

/// Kerberos messages kept per worker.
pub const MAX_KRB: usize = 8192;

/// A flow that ended, and the capture time it is judged at: the end of the
/// capture, or its last frame's time plus its timeout (idle, or linger once
/// closed) when that is earlier, or the SYN that reused its ports. It
/// depends on the flow and the capture's end alone, so it is the same for
/// any number of workers, whenever a sweep happened to finish the flow.
#[derive(Debug)]
pub struct Finished {
    pub flow: Flow,
    pub judged_at: Mark,
}

/// A TCP flow that has seen nothing but its client's SYN (and identical
/// retransmissions of it): what a port scan or an unanswered connection
/// leaves by the million. Held as these ~100 bytes instead of a flow
/// (≈ 2 KiB with its TCP evidence); the first other packet, an ICMP error
/// or fragment about it, or its end turns it into the [`Flow`] the same
/// packets would have made (they are replayed through the one code path,
/// so nothing downstream can tell).
#[derive(Debug, Clone, Copy)]
struct SynOnly {
    /// The client is the key's smaller endpoint.
    client_lo: bool,
    interest: Interest,
    /// The SYN's IP and TCP fields (every copy identical but for the IP id,
    /// which only a reset's evidence keeps).
    ip_len: u32,
    ttl: u8,
    df: bool,
    flags: u8,
    window: u16,
    seq: u32,
    mss: Option<u16>,
    /// The frame and time of each copy.
    marks: [Mark; MAX_LITE_SYNS],
    count: u8,
}

/// SYN copies a [`SynOnly`] holds; a client that sends more is a flow.
const MAX_LITE_SYNS: usize = 2;

impl SynOnly {
    fn new(
        key: &FlowKey,
        client: SocketAddr,
        interest: Interest,
        ip: &decode::Ip,
        t: &decode::Tcp<'_>,
        at: Mark,
    ) -> SynOnly {
        SynOnly {
            client_lo: key.lo() == client,
            interest,
            ip_len: ip.len,
            ttl: ip.ttl,
            df: ip.df,
            flags: t.flags,
            window: t.window,
            seq: t.seq,
            mss: t.mss,
            marks: [at; MAX_LITE_SYNS],
            count: 1,
        }
    }

    /// Whether a TCP segment from `src` is one of this kind: a bare SYN
    /// from the client, no payload, the same fields as the first.
    fn takes(
        kind: Option<(&SynOnly, &FlowKey)>,
        src: SocketAddr,
        ip: &decode::Ip,
        t: &decode::Tcp<'_>,
    ) -> bool {
        use crate::decode::packet::flags as tf;
        let bare = t.flags & (tf::SYN | tf::ACK | tf::RST | tf::FIN) == tf::SYN && t.wire_len == 0;
        match kind {
            None => bare,
            Some((s, key)) => {
                bare && src == s.ends(key).0
                    && (s.count as usize) < MAX_LITE_SYNS
                    && (s.ip_len, s.ttl, s.df, s.flags, s.window, s.seq, s.mss)
                        == (ip.len, ip.ttl, ip.df, t.flags, t.window, t.seq, t.mss)
            }
        }
    }

    fn first(&self) -> Mark {
        self.marks[0]
    }

    /// Client and server.
    fn ends(&self, key: &FlowKey) -> (SocketAddr, SocketAddr) {
        if self.client_lo {
            (key.lo(), key.hi())
        } else {
            (key.hi(), key.lo())
        }
    }

    fn last(&self) -> Mark {
        self.marks[self.count as usize - 1]
    }

    /// The flow these SYNs make: built and fed by the same code as any
    /// other flow.
    fn flow(&self, key: FlowKey, table: &Table, cfg: &Config) -> Flow {
        let (client, server) = self.ends(&key);
        let mut f = Flow::new(key, client, server, self.interest, self.first());
        table.arm(&mut f, cfg);
        let ip = decode::Ip {
            src: client.ip(),
            dst: server.ip(),
            ttl: self.ttl,
            id: 0,
            df: self.df,
            len: self.ip_len,
            v6: client.is_ipv6(),
        };
        let t = decode::Tcp {
            sport: client.port(),
            dport: server.port(),
            seq: self.seq,
            ack: 0,
            flags: self.flags,
            window: self.window,
            mss: self.mss,
            sack: None,
            payload: &[],
            wire_len: 0,
        };
        for at in &self.marks[..self.count as usize] {
            f.tcp_segment(client, &ip, &t, *at, cfg);
        }
        f
    }
}

pub struct Table {
    /// Boxed: a map's buckets are a power of two and its 32 parts sit
    /// half full, so 550-byte flows held inline cost 1.2 KB each, and a
    /// flow finished at the capture's end frees its memory for the
    /// connection it becomes (removing never shrinks a map). 1 M
    /// fragment trains: 1,590 -> 857 MiB; the bench mixes' CPU within
    /// noise (it was 1.03-1.10x when flows carried their App inline).
    flows: FxHashMap<FlowKey, Box<Flow>>,
    /// Flows that are one client SYN so far (counted with `flows` against
    /// `max_flows`); never a key of `flows` at the same time.
    syns: FxHashMap<FlowKey, SynOnly>,
    /// SYN-only flows are held as [`SynOnly`] records (tests turn it off
    /// to check that nothing downstream can tell).
    lite: bool,
    defrag: Defrag,
    frag_dropped: Vec<FragMeta>,
    /// Finished flows that are reported, with the moment they are judged
    /// at; the caller takes them as they come ([`Table::take_done`]).
    done: Vec<Finished>,
    pub orphan_icmp: Vec<OrphanIcmp>,
    /// Incomplete fragment trains whose flow is unknown.
    pub orphan_frags: Vec<FragMeta>,
    pub dns: Vec<DnsLookup>,
    pub krb: Vec<KdcMessage>,
    pub bounds: BoundsHit,
    since_sweep: u32,
    now: i64,
    /// Reported flows kept so far (bounded by `max_records`).
    records: usize,
    /// Flows this table may hold at once and reported flows it may hand
    /// out: its share of the per-file `max_flows` and `max_records`.
    max_flows: usize,
    max_records: usize,
    /// ICMP errors (and fragments) quoting no flow kept, each.
    max_orphans: usize,
    /// Packets between sweeps for idle flows.
    sweep_every: u32,
    /// Flows begun (tracked) so far: a part's demand when the file's
    /// room is shared out.
    pub created: u64,
    /// The run's TLS keys, handed to every new flow (`None`: no keys).
    pub keys: Option<std::sync::Arc<crate::proto::keylog::KeyLog>>,
    /// Gateway OUT channels by client host and gateway (newest last): where
    /// an IN channel's tunnelled bytes go. Both channels share the IP
    /// pair, so they meet on one worker.
    out_legs: FxHashMap<(IpAddr, SocketAddr), Vec<FlowKey>>,
    /// `--gateway` names, shared by the flows.
    gateway_names: Option<std::sync::Arc<[String]>>,
    /// Client and server hosts with UDP to the gateway's port 3391 (its
    /// DTLS transport): their TLS on 443 is a gateway leg, keys or not.
    /// Bounded by [`MAX_GATEWAY_UDP`].
    gateway_udp: rustc_hash::FxHashSet<(IpAddr, IpAddr)>,
    /// Live flows in the order they were queued for eviction (CLOCK): the
    /// key, the flow's first frame (a key reused by a later flow is
    /// another entry) and its last packet's time when queued. Entries of
    /// finished flows are dropped lazily.
    order: std::collections::VecDeque<(FlowKey, u64, i64)>,
}

/// Host pairs with gateway UDP remembered per worker (a flood of spoofed
/// UDP to 3391 must not grow the set; past it a 443 flow needs
/// `--gateway` to count as a leg).
pub const MAX_GATEWAY_UDP: usize = 4096;

impl Table {
    pub fn new() -> Table {
        Table {
            flows: FxHashMap::default(),
            syns: FxHashMap::default(),
            lite: true,
            defrag: Defrag::new(defrag::Limits::default()),
            frag_dropped: Vec::new(),
            done: Vec::new(),
            orphan_icmp: Vec::new(),
            orphan_frags: Vec::new(),
            dns: Vec::new(),
            krb: Vec::new(),
            bounds: BoundsHit::default(),
            since_sweep: 0,
            now: i64::MIN,
            records: 0,
            max_flows: usize::MAX,
            max_records: usize::MAX,
            max_orphans: MAX_ORPHAN_ICMP,
            sweep_every: SWEEP_EVERY,
            created: 0,
            keys: None,
            out_legs: FxHashMap::default(),
            gateway_names: None,
            gateway_udp: Default::default(),
            order: Default::default(),
        }
    }

    /// A table that is one of the `n` fixed parts of a capture (its flows
    /// by IP pair): `max_flows` and `max_records` of the configuration are
    /// per file, so each part holds its share; reassembly and unmatched
    /// ICMP errors get a share of the per-file amounts too, with a floor
    /// (docs/THRESHOLDS.md). The parts do not depend on the thread count,
    /// so neither does what a bound drops.
    pub fn shared(n: usize, cfg: &Config) -> Table {
        let n = n.max(1);
        let whole = defrag::Limits::default();
        Table {
            max_flows: cfg.max_flows.div_ceil(n),
            max_records: cfg.max_records.div_ceil(n),
            max_orphans: MAX_ORPHAN_ICMP.div_ceil(n).max(MIN_ORPHANS),
            // A part sees 1/n of the packets: swept as often in capture time.
            sweep_every: (SWEEP_EVERY / n as u32).max(1024),
            defrag: Defrag::new(defrag::Limits {
                max_datagrams: whole.max_datagrams.div_ceil(n).max(MIN_DATAGRAMS),
                max_bytes: (whole.max_bytes / n).max(MIN_DEFRAG_BYTES),
                ..whole
            }),
            ..Table::new()
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len() + self.syns.len()
    }

    /// A judged flow that is to be reported one by one (not set aside as
    /// part of a scan, which has bounds of its own) takes a record: false,
    /// and counted, past this part's share of `max_records`.
    pub fn admit_record(&mut self, cfg: &Config) -> bool {
        if self.records < cfg.max_records.min(self.max_records) {
            self.records += 1;
            true
        } else {
            self.bounds.records_dropped += 1;
            false
        }
    }

    /// Reported flows kept so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// This part's bounds until they are set again: flows held at once
    /// and reported flows kept in all ([`Table::shared`] sets the first
    /// shares; run::file shares the file's free room out again every
    /// 4,096 frames).
    pub fn set_share(&mut self, flows: usize, records: usize) {
        self.max_flows = flows;
        self.max_records = records;
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.syns.is_empty()
    }

    /// The table holds as many flows as it may (its share of `max_flows`).
    fn full(&self, cfg: &Config) -> bool {
        self.len() >= cfg.max_flows.min(self.max_flows)
    }

    /// A new flow gets the run's keys and gateway names.
    fn arm(&self, flow: &mut Flow, cfg: &Config) {
        let gateways = if cfg.gateways.is_empty() {
            None
        } else {
            self.gateway_names.clone()
        };
        flow.app.arm(self.keys.clone(), gateways);
    }

    /// A SYN-only record becomes the flow its packets make (before anything
    /// else about the flow is read or done). Whether there was one.
    fn promote(&mut self, key: &FlowKey, cfg: &Config) -> bool {
        let Some(s) = self.syns.remove(key) else {
            return false;
        };
        let f = s.flow(*key, self, cfg);
        self.flows.insert(*key, Box::new(f));
        true
    }

    /// The first frame and the last packet's time of a live flow.
    fn live(&self, key: &FlowKey) -> Option<(u64, i64)> {
        match self.flows.get(key) {
            Some(f) => Some((f.first.frame, f.last.ts)),
            None => self.syns.get(key).map(|s| (s.first().frame, s.last().ts)),
        }
    }

    /// Takes a live flow out of the table (a SYN-only one as its flow).
    fn take(&mut self, key: &FlowKey, cfg: &Config) -> Option<Flow> {
        self.promote(key, cfg);
        self.flows.remove(key).map(|f| *f)
    }

    /// One decoded packet.
    pub fn packet(&mut self, pkt: &Packet<'_>, at: Mark, cfg: &Config) {
        self.now = self.now.max(at.ts);
        match pkt.l4 {
            L4::Fragment(f) => {
                let key = FragKey {
                    src: pkt.ip.src,
                    dst: pkt.ip.dst,
                    proto: f.proto,
                    id: f.id,
                };
                match self.defrag.add(
                    key,
                    f.offset,
                    f.more,
                    f.payload,
                    pkt.ip.len,
                    at.frame,
                    at.ts,
                    &mut self.frag_dropped,
                ) {
                    Outcome::Complete(data, meta) => {
                        let l4 =
                            decode::packet::transport(f.proto, &data, data.len() as u32, pkt.ip.v6);
                        let hdr = if pkt.ip.v6 { 40 } else { 20 };
                        let ip = decode::Ip {
                            len: data.len() as u32 + hdr,
                            ..pkt.ip
                        };
                        let whole = Packet { ip, l4 };
                        self.dispatch(&whole, at, cfg, Some(&meta));
                    }
                    Outcome::Invalid(meta, _why) => self.frag_dropped.push(meta),
                    Outcome::Pending => {}
                }
                self.bounds.fragments_evicted = self.defrag.evicted;
                self.settle_frags(cfg);
            }
            _ => self.dispatch(pkt, at, cfg, None),
        }
        self.since_sweep += 1;
        if self.since_sweep >= self.sweep_every {
            self.since_sweep = 0;
            self.sweep(cfg);
        }
    }

    fn dispatch(&mut self, pkt: &Packet<'_>, at: Mark, cfg: &Config, frag: Option<&FragMeta>) {
        let ip = &pkt.ip;
        let (transport, sport, dport) = match pkt.l4 {
            L4::Tcp(t) => (Transport::Tcp, t.sport, t.dport),
            L4::Udp(u) => (Transport::Udp, u.sport, u.dport),
            L4::IcmpError(e) => {
                self.icmp(ip.src, e, at, cfg);
                return;
            }
            _ => return,
        };
        let src = SocketAddr::new(ip.src, sport);
        let dst = SocketAddr::new(ip.dst, dport);
        let key = FlowKey::new(src, dst, transport);
        // Looked up once for a packet of a known flow (the common case).
        let mut known = self.flows.contains_key(&key);
        if let (false, L4::Tcp(t)) = (known, pkt.l4) {
            if let Some(s) = self.syns.get_mut(&key) {
                if frag.is_none() && SynOnly::takes(Some((s, &key)), src, ip, &t) {
                    s.marks[s.count as usize] = at;
                    s.count += 1;
                    return;
                }
                known = self.promote(&key, cfg);
            }
        }
        // A new SYN on a closed connection with the same ports starts a new one.
        if let (true, L4::Tcp(t)) = (known, pkt.l4) {
            let syn_only = t.flags & 0x12 == 0x02;
            if syn_only {
                if let Some(f) = self.flows.get(&key) {
                    let (isn, client_syn) = f.client_syn();
                    let same = isn == Some(t.seq) && f.client == src;
                    if !same && (f.closed() || client_syn && f.client != src) {
                        let old = self.flows.remove(&key).expect("present");
                        known = false;
                        // Judged at the SYN that replaced it.
                        self.finish(*old, cfg, None, Some(at));
                    }
                }
            }
        }
        if !known {
            let found = interest(transport, sport, dport, cfg).or_else(|| match pkt.l4 {
                // RDP over UDP on any port: a client SYN (MS-RDPEUDP 2.2.2.5).
                L4::Udp(u) if crate::proto::rdpeudp::is_client_syn(u.payload) => {
                    Some((Interest::Rdp, true))
                }
                _ => None,
            });
            let Some((mut int, dst_is_server)) = found else {
                return;
            };
            let (mut client, mut server) = if dst_is_server {
                (src, dst)
            } else {
                (dst, src)
            };
            // A SYN names the client whatever the ports say, and the
            // service is the server's port: a client whose source port
            // happens to be 3389 (or 443, 53) talking to port 80 is probed
            // by content like any other flow, not taken for RDP.
            if let L4::Tcp(t) = pkt.l4 {
                if t.flags & 0x12 == 0x02 {
                    (client, server) = (src, dst);
                } else if t.flags & 0x12 == 0x12 {
                    (client, server) = (dst, src);
                }
                if t.flags & 0x02 != 0 {
                    if let Some((i, _)) = interest(transport, 0, server.port(), cfg) {
                        int = i;
                    }
                }
            }
            if self.full(cfg) {
                self.evict_one(cfg);
            }
            if transport == Transport::Udp
                && server.port() == crate::config::port::GATEWAY_UDP
                && self.gateway_udp.len() < MAX_GATEWAY_UDP
            {
                self.gateway_udp.insert((client.ip(), server.ip()));
            }
            if !cfg.gateways.is_empty() && self.gateway_names.is_none() {
                self.gateway_names = Some(cfg.gateways.clone().into());
            }
            self.queue(key, at);
            if let L4::Tcp(t) = pkt.l4 {
                if self.lite && frag.is_none() && src == client && SynOnly::takes(None, src, ip, &t)
                {
                    self.syns
                        .insert(key, SynOnly::new(&key, client, int, ip, &t, at));
                    return;
                }
            }
            let mut flow = Flow::new(key, client, server, int, at);
            self.arm(&mut flow, cfg);
            self.flows.insert(key, Box::new(flow));
        }
        let f = self.flows.get_mut(&key).expect("inserted");
        if let Some(m) = frag {
            // The datagram's frames: all its fragments, from the first.
            if m.first_frame < f.first.frame {
                f.first = Mark {
                    frame: m.first_frame,
                    ts: m.first_ts,
                };
            }
            let dir = f.dir_of(src);
            f.dirs[dir].packets += m.fragments.saturating_sub(1) as u64;
            let fr = &mut f.frags;
            if fr.datagrams + fr.incomplete == 0 || m.first_frame < fr.first.frame {
                fr.first = Mark {
                    frame: m.first_frame,
                    ts: m.first_ts,
                };
            }
            fr.datagrams += 1;
            fr.fragments += m.fragments;
            fr.overlaps += m.overlap as u32;
            fr.conflicts += m.overlap_conflict as u32;
            fr.largest = fr.largest.max(m.largest);
            if m.last_frame > fr.last.frame {
                fr.last = Mark {
                    frame: m.last_frame,
                    ts: m.last_ts,
                };
            }
        }
        match pkt.l4 {
            L4::Tcp(t) => f.tcp_segment(src, ip, &t, at, cfg),
            L4::Udp(u) => f.udp(src, ip, &u, at),
            _ => {}
        }
        let mut register = None;
        if !f.out_leg_known {
            if let Some(g) = f.app.gateway_leg() {
                if g.channel == Some(crate::proto::gateway::Channel::Out) {
                    f.out_leg_known = true;
                    register = Some((f.client.ip(), f.server));
                }
            }
        }
        let outbound = f.app.has_outbound();
        if let Some(pair) = register {
            let mut legs = self.out_legs.remove(&pair).unwrap_or_default();
            legs.retain(|k| self.flows.contains_key(k) && *k != key);
            legs.push(key);
            self.out_legs.insert(pair, legs);
        }
        if outbound {
            self.forward(key);
        }
    }

    /// An IN channel's tunnelled bytes (and an RPC IN channel's requests)
    /// to its OUT channel: the one with the same RDG-Connection-Id (RPC:
    /// virtual connection cookie), else the newest to that gateway; its
    /// own tunnel when there is none.
    fn forward(&mut self, key: FlowKey) {
        let Some(f) = self.flows.get_mut(&key) else {
            return;
        };
        let out = f.app.take_outbound();
        let calls = f.app.take_calls();
        let id = f.app.gateway_leg().and_then(|g| g.connection_id.clone());
        let pair = (f.client.ip(), f.server);
        let partner = self.out_legs.get(&pair).and_then(|legs| {
            let live: Vec<&FlowKey> = legs.iter().filter(|k| self.flows.contains_key(k)).collect();
            live.iter()
                .rev()
                .find(|k| {
                    id.is_some()
                        && self.flows[**k]
                            .app
                            .gateway_leg()
                            .and_then(|g| g.connection_id.as_ref())
                            == id.as_ref()
                })
                .or(live.last())
                .map(|k| **k)
        });
        let target = partner.unwrap_or(key);
        if let Some(t) = self.flows.get_mut(&target) {
            for (d, at, b) in out {
                t.app.tunnelled(d, &b, at);
            }
            if target != key && !calls.is_empty() {
                t.app.rpc_calls(&calls);
            }
        }
    }

    fn icmp(&mut self, from: IpAddr, e: decode::IcmpError, at: Mark, cfg: &Config) {
        let q = e.quoted;
        let transport = match q.proto {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            _ => {
                self.orphan(from, e, at);
                return;
            }
        };
        let src = SocketAddr::new(q.src, q.sport);
        let key = FlowKey::new(src, SocketAddr::new(q.dst, q.dport), transport);
        self.promote(&key, cfg);
        match self.flows.get_mut(&key) {
            Some(f) if !f.ignored => {
                let dir = f.dir_of(src);
                f.icmp(IcmpEvent {
                    at,
                    from,
                    err: e,
                    dir,
                })
            }
            Some(_) => {}
            None => self.orphan(from, e, at),
        }
    }

    fn orphan(&mut self, from: IpAddr, err: decode::IcmpError, at: Mark) {
        if self.orphan_icmp.len() < self.max_orphans {
            self.orphan_icmp.push(OrphanIcmp { at, from, err });
        } else {
            self.bounds.icmp_dropped += 1;
        }
    }

    /// Incomplete fragment trains go to their flow when the first fragment
    /// named its ports, or to the list of orphans.
    fn settle_frags(&mut self, cfg: &Config) {
        for m in std::mem::take(&mut self.frag_dropped) {
            let k = m.key;
            let transport = match k.proto {
                6 => Some(Transport::Tcp),
                17 => Some(Transport::Udp),
                _ => None,
            };
            let flow = match (transport, m.ports) {
                (Some(t), Some((sp, dp))) => {
                    let (src, dst) = (SocketAddr::new(k.src, sp), SocketAddr::new(k.dst, dp));
                    let key = FlowKey::new(src, dst, t);
                    self.promote(&key, cfg);
                    // A datagram to a relevant port that never completed is
                    // an attempt by itself (e.g. a fragmented RDPEUDP SYN).
                    if !self.flows.contains_key(&key) && !self.full(cfg) {
                        if let Some((int @ (Interest::Rdp | Interest::UserPort), dst_is_server)) =
                            interest(t, sp, dp, cfg)
                        {
                            let (c, s) = if dst_is_server {
                                (src, dst)
                            } else {
                                (dst, src)
                            };
                            let at = Mark {
                                frame: m.first_frame,
                                ts: m.first_ts,
                            };
                            self.queue(key, at);
                            self.flows
                                .insert(key, Box::new(Flow::new(key, c, s, int, at)));
                        }
                    }
                    self.flows.get_mut(&key)
                }
                _ => None,
            };
            match flow {
                Some(f) => {
                    let dir = if k.src == f.client.ip() {
                        Dir::Client
                    } else {
                        Dir::Server
                    };
                    f.dirs[dir].packets += m.fragments as u64;
                    f.frags.incomplete += 1;
                    f.frags.fragments += m.fragments;
                    f.frags.overlaps += m.overlap as u32;
                    f.frags.conflicts += m.overlap_conflict as u32;
                    if (f.frags.datagrams == 0 && f.frags.incomplete == 1)
                        || m.first_frame < f.frags.first.frame
                    {
                        f.frags.first = Mark {
                            frame: m.first_frame,
                            ts: m.first_ts,
                        };
                    }
                    if m.last_frame > f.frags.last.frame {
                        f.frags.last = Mark {
                            frame: m.last_frame,
                            ts: m.last_ts,
                        };
                    }
                }
                None if self.orphan_frags.len() < self.max_orphans => self.orphan_frags.push(m),
                None => self.bounds.fragments_evicted += 1,
            }
        }
    }

    /// `end`: where the flow's last wait ends (its last frame when `None`);
    /// `judged_at`: the capture time it is judged at (see [`Finished`]).
    fn finish(&mut self, mut f: Flow, cfg: &Config, end: Option<Mark>, judged_at: Option<Mark>) {
        let end = end.unwrap_or(f.last);
        f.finish(end, cfg);
        f.named_gateway = named_gateway(&f, cfg)
            || (f.interest == Interest::Gateway
                && f.app.class == crate::proto::AppClass::Tls
                && f.tunnel_of.is_none()
                && self.gateway_udp.contains(&(f.client.ip(), f.server.ip())));
        let tunnel = if f.reported() { f.take_tunnel() } else { None };
        self.keep(f, cfg, judged_at);
        if let Some(t) = tunnel {
            self.keep(t, cfg, judged_at);
        }
    }

    fn keep(&mut self, mut f: Flow, cfg: &Config, judged_at: Option<Mark>) {
        if f.reported() {
            // No later than the flow's own timeout: whether a sweep
            // finished it before the capture ended (which depends on
            // how the packets were shared among workers) changes nothing.
            let timeout = if f.closed() {
                cfg.closed_linger_ns
            } else {
                cfg.idle_ns
            };
            let limit = Mark {
                frame: f.last.frame,
                ts: f.last.ts.saturating_add(timeout),
            };
            let judged_at = judged_at.filter(|m| m.ts <= limit.ts).unwrap_or(limit);
            self.done.push(Finished { flow: f, judged_at });
        } else if f.interest == Interest::Dns {
            let d = f.take_dns();
            self.bounds.dns_dropped += d.dropped as u64;
            for q in d.queries {
                if self.dns.len() < MAX_DNS {
                    self.dns.push(DnsLookup {
                        client: f.client,
                        server: f.server,
                        query: q,
                    });
                } else {
                    self.bounds.dns_dropped += 1;
                }
            }
        } else if f.interest == Interest::Kerberos {
            let k = std::mem::take(f.krb_mut());
            self.bounds.krb_dropped += k.dropped as u64;
            for msg in k.messages {
                if self.krb.len() < MAX_KRB {
                    self.krb.push(KdcMessage {
                        client: f.client,
                        server: f.server,
                        msg,
                    });
                } else {
                    self.bounds.krb_dropped += 1;
                }
            }
        }
    }

    /// Finishes the flows idle (or closed and quiet) as of `now`, the
    /// capture's clock (a quiet part sees no packets to sweep on).
    pub fn sweep_at(&mut self, now: i64, cfg: &Config) {
        self.now = self.now.max(now);
        self.since_sweep = 0;
        self.sweep(cfg);
    }

    /// Finishes flows that are idle (open) or closed and quiet.
    fn sweep(&mut self, cfg: &Config) {
        let now = self.now;
        self.defrag.expire(now, &mut self.frag_dropped);
        self.settle_frags(cfg);
        let mut old: Vec<(u64, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let idle = now.saturating_sub(f.last.ts);
                idle > cfg.idle_ns
                    || (f.closed() && idle > cfg.closed_linger_ns)
                    || (f.ignored && idle > cfg.closed_linger_ns)
            })
            .map(|(k, f)| (f.first.frame, *k))
            .chain(
                self.syns
                    .iter()
                    .filter(|(_, s)| now.saturating_sub(s.last().ts) > cfg.idle_ns)
                    .map(|(k, s)| (s.first().frame, *k)),
            )
            .collect();
        old.sort_by_key(|x| x.0);
        for (_, k) in old {
            let f = self.take(&k, cfg).expect("present");
            self.finish(f, cfg, None, None);
        }
    }

    /// A new flow joins the eviction queue; stale entries (finished flows)
    /// are dropped when they outnumber the live ones.
    fn queue(&mut self, key: FlowKey, at: Mark) {
        self.created += 1;
        self.order.push_back((key, at.frame, at.ts));
        if self.order.len() > 2 * self.len() + 4096 {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(k, first, _)| self.live(k).is_some_and(|(f, _)| f == *first));
            self.order = order;
        }
    }

    /// The flow table is full: finish a flow that was idle since it was
    /// last queued (CLOCK, amortized O(1): a flow that saw packets since
    /// gets a second chance at the back; a flow whose content showed it of
    /// no interest goes at once).
    fn evict_one(&mut self, cfg: &Config) {
        let mut victim = None;
        let mut tries = self.order.len() * 2 + 1;
        while let Some((k, first, ts)) = self.order.pop_front() {
            let Some((_, last)) = self.live(&k).filter(|(f, _)| *f == first) else {
                continue;
            };
            let ignored = self.flows.get(&k).is_some_and(|f| f.ignored);
            if last > ts && !ignored && tries > 0 {
                tries -= 1;
                self.order.push_back((k, first, last));
                continue;
            }
            victim = Some(k);
            break;
        }
        if let Some(k) = victim {
            let f = self.take(&k, cfg).expect("present");
            self.bounds.flows_evicted += 1;
            let now = Mark {
                frame: f.last.frame,
                ts: self.now,
            };
            self.finish(f, cfg, None, Some(now));
        }
    }

    /// End of the capture: finish everything. `end` is the last frame.
    pub fn close(&mut self, end: Mark, cfg: &Config) {
        let (order, _) = self.closing(cfg);
        self.close_some(&order, end, cfg);
    }

    /// End of the capture, a part at a time: the live flows in the order
    /// they are finished in, after the fragments are settled: DNS and
    /// Kerberos flows first (what they said is evidence for attempts of any
    /// time), then the rest by first frame, each with its first packet;
    /// and how many come first. The caller finishes them with
    /// [`Table::close_some`] and takes what finished ([`Table::take_done`])
    /// between parts, so a million open flows are not all finished flows
    /// at once.
    pub fn closing(&mut self, cfg: &Config) -> (Vec<(Mark, FlowKey)>, usize) {
        self.defrag.drain(&mut self.frag_dropped);
        self.settle_frags(cfg);
        self.order = Default::default();
        let quiet = |i: Interest| matches!(i, Interest::Dns | Interest::Kerberos);
        let mut all: Vec<(bool, Mark, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (!quiet(f.interest), f.first, *k))
            .chain(
                self.syns
                    .iter()
                    .map(|(k, s)| (!quiet(s.interest), s.first(), *k)),
            )
            .collect();
        all.sort_by_key(|x| (x.0, x.1.frame));
        let quiet = all.partition_point(|x| !x.0);
        (all.into_iter().map(|(_, m, k)| (m, k)).collect(), quiet)
    }

    /// Finishes these flows (from [`Table::closing`]) at the capture's end.
    pub fn close_some(&mut self, keys: &[(Mark, FlowKey)], end: Mark, cfg: &Config) {
        for (_, k) in keys {
            if let Some(f) = self.take(k, cfg) {
                let e = if f.closed() { f.last } else { end };
                self.finish(f, cfg, Some(e), Some(end));
            }
        }
        if self.is_empty() {
            // Removing never shrinks a map: give back what a million
            // flows grew them to.
            self.flows = FxHashMap::default();
            self.syns = FxHashMap::default();
        }
    }

    /// The first frame (and its time) of the oldest live flow that may yet
    /// be reported (held SYNs and pending fragment trains included; not
    /// DNS or Kerberos flows, nor flows whose content showed them of no
    /// interest): every connection that begins before it is finished.
    pub fn live_floor(&self) -> Option<Mark> {
        self.flows
            .values()
            .filter(|f| !f.ignored && !matches!(f.interest, Interest::Dns | Interest::Kerberos))
            .map(|f| f.first)
            .chain(self.syns.values().map(|s| s.first()))
            .chain(self.defrag.floor())
            .chain(self.frag_dropped.iter().map(|m| Mark {
                frame: m.first_frame,
                ts: m.first_ts,
            }))
            .min_by_key(|m| m.frame)
    }

    /// Hands over what live DNS and Kerberos flows said that nothing later
    /// changes (final lookups, parsed messages), as of the table's clock:
    /// attempts are judged before those flows idle out.
    pub fn harvest(&mut self) {
        let now = self.now;
        let (dns, krb, bounds) = (&mut self.dns, &mut self.krb, &mut self.bounds);
        for f in self.flows.values_mut() {
            match f.interest {
                Interest::Dns => {
                    let (client, server) = (f.client, f.server);
                    for q in f.final_dns(now) {
                        if dns.len() < MAX_DNS {
                            dns.push(DnsLookup {
                                client,
                                server,
                                query: q,
                            });
                        } else {
                            bounds.dns_dropped += 1;
                        }
                    }
                }
                Interest::Kerberos => {
                    let (client, server) = (f.client, f.server);
                    for msg in std::mem::take(&mut f.krb_mut().messages) {
                        if krb.len() < MAX_KRB {
                            krb.push(KdcMessage {
                                client,
                                server,
                                msg,
                            });
                        } else {
                            bounds.krb_dropped += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The flows finished so far, in the order they finished.
    pub fn take_done(&mut self) -> Vec<Finished> {
        std::mem::take(&mut self.done)
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

/// A TLS connection to an RD Gateway the user named (`--gateway`: its
/// address, SNI or certificate name), or whose SNI is an Azure Virtual
/// Desktop gateway's (PROTOCOLS.md §9): a leg even without keys.
fn named_gateway(f: &Flow, cfg: &Config) -> bool {
    if f.app.class != crate::proto::AppClass::Tls || f.tunnel_of.is_some() {
        return false;
    }
    let x = f.app.facts();
    let sni = x
        .tls
        .client_hello
        .as_ref()
        .and_then(|(h, _)| h.sni.as_deref())
        .map(str::to_ascii_lowercase);
    if sni
        .as_deref()
        .is_some_and(|s| s.ends_with(".wvd.microsoft.com"))
    {
        return true;
    }
    let cert = x.server_cert().map(|c| c.0);
    cfg.gateways.iter().any(|g| {
        g.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip == f.server.ip())
            || sni.as_deref().is_some_and(|s| s == g)
            || cert.as_ref().is_some_and(|c| {
                c.san
                    .iter()
                    .chain(c.cn.as_ref())
                    .any(|n| crate::proto::tls::name_matches(n, g))
            })
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::link;
    use crate::synth::{flag, icmp_error, Pkt, TcpConv, C, S};

    /// The finished flows of these packets, as their debug text (every
    /// field, the TCP evidence and machinery included), with SYN-only
    /// records on or off.
    fn finished(pkts: &[Pkt], lite: bool) -> Vec<String> {
        let cfg = Config::default();
        let mut t = Table::new();
        t.lite = lite;
        let mut end = Mark::default();
        for (i, p) in pkts.iter().enumerate() {
            end = Mark {
                frame: i as u64 + 1,
                ts: p.ts,
            };
            let ip = link::ip_bytes(1, &p.data).expect("ethernet");
            t.packet(&decode::decode(ip).expect("decodes"), end, &cfg);
        }
        t.close(end, &cfg);
        let mut done = t.take_done();
        done.sort_by_key(|f| f.flow.first.frame);
        done.iter().map(|f| format!("{f:?}")).collect()
    }

    const SEC: i64 = 1_000_000_000;

    fn conv() -> TcpConv {
        TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", SEC)
    }

    /// A flow that was SYNs only, then whatever came next, is the flow
    /// the same packets make without SYN-only records, field for field.
    #[test]
    fn syn_only_records_make_the_same_flows() {
        let mut cases: Vec<(&str, Vec<Pkt>)> = Vec::new();
        let mut out = vec![];
        conv().syn(&mut out);
        cases.push(("one SYN", out));
        let mut out = vec![];
        conv().syn(&mut out).syn_again(&mut out, SEC);
        cases.push(("a SYN resent", out));
        let mut out = vec![];
        conv()
            .syn(&mut out)
            .syn_again(&mut out, SEC)
            .syn_again(&mut out, 2 * SEC)
            .syn_again(&mut out, 4 * SEC);
        cases.push(("more copies than a record holds", out));
        let mut out = vec![];
        let mut c = conv();
        c.syn(&mut out).wait(SEC);
        let s = c.seq[C].wrapping_add(7);
        c.raw(&mut out, C, s, flag::SYN, false, Some(1460), &[]);
        cases.push(("a second SYN with another ISN", out));
        let mut out = vec![];
        let mut c = conv();
        c.syn(&mut out);
        c.ttl[C] = 60;
        c.syn_again(&mut out, SEC);
        cases.push(("a copy with another TTL", out));
        let mut out = vec![];
        let mut c = conv();
        let s = c.seq[C];
        c.raw(&mut out, C, s, flag::SYN | 0xC0, false, Some(1460), &[]);
        c.wait(SEC).handshake(&mut out, 10_000_000);
        cases.push(("an ECN SYN, then a handshake", out));
        let mut out = vec![];
        let mut c = conv();
        c.syn(&mut out).wait(SEC);
        c.seq[C] = c.seq[C].wrapping_add(1);
        let s = c.seq[S];
        c.raw(&mut out, S, s, flag::SYN, true, Some(1460), &[]);
        c.wait(SEC).rst(&mut out, C);
        cases.push(("SYN, SYN-ACK, reset", out));
        let mut out = vec![];
        let mut c = conv();
        c.syn(&mut out).wait(SEC);
        let about = out[0].clone();
        let to = c.client.ip();
        out.push(icmp_error("198.18.0.254", to, 1, 0, &about, 2 * SEC));
        cases.push(("SYN and a host unreachable", out));
        let mut out = vec![];
        conv().syn(&mut out);
        let mut c = TcpConv::new("198.18.0.2:3389", "198.18.0.1:50000", SEC + 5);
        c.syn(&mut out);
        cases.push(("both sides send a SYN", out));
        let mut out = vec![];
        let mut c = conv();
        c.syn(&mut out);
        let s = c.seq[C];
        c.wait(SEC)
            .raw(&mut out, C, s, flag::SYN, false, Some(1460), b"tfo");
        cases.push(("a SYN with data (TCP Fast Open)", out));
        let mut out = vec![];
        conv().syn(&mut out);
        let mut c = conv();
        c.wait(700 * SEC).syn(&mut out);
        cases.push(("idle, then the same ports again", out));
        for (what, pkts) in &cases {
            let lite = finished(pkts, true);
            assert!(!lite.is_empty(), "{what}");
            assert_eq!(lite, finished(pkts, false), "{what}");
        }
        // And a SYN-only flow really is a record while it lasts.
        let mut out = vec![];
        conv().syn(&mut out);
        let mut t = Table::new();
        let ip = link::ip_bytes(1, &out[0].data).unwrap();
        t.packet(
            &decode::decode(ip).unwrap(),
            Mark { frame: 1, ts: SEC },
            &Config::default(),
        );
        assert_eq!((t.syns.len(), t.flows.len(), t.len()), (1, 0, 1));
    }
}
