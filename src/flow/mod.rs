//! flow: bidirectional flows keyed by a symmetric 5-tuple. Every flow has
//! a small core (endpoints, times, per-side counters, fragments, ICMP, the
//! protocol state); a TCP flow also has its [`TcpFlow`] (handshake, ending,
//! retransmissions, path evidence and, while the connection is followed,
//! the reassembly machinery), boxed and dropped once content shows the flow
//! is of no interest.

pub mod inflight;
pub mod reasm;
pub mod table;

pub use crate::capture::Mark;
pub use table::Table;

use crate::capture::Pos;
use crate::config::{port, Config};
use crate::decode::packet::flags as tf;
use crate::decode::{IcmpError, Ip, Tcp, Udp};
use crate::finding::Dir;
use crate::proto::dns::Dns;
use crate::proto::krb::Krb;
use crate::proto::rdpeudp::Udp as Rdpeudp;
use crate::proto::{App, AppClass};
use inflight::{InFlight, Window};
use reasm::{Reasm, SegKind};
use std::net::{IpAddr, SocketAddr};

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

/// Symmetric key: the smaller endpoint first. Held compactly (38 bytes
/// instead of two 32-byte `SocketAddr`s): the table, its eviction queue
/// and the SYN-only records each hold one per flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: ([u8; 16], u16),
    hi: ([u8; 16], u16),
    v6: bool,
    pub transport: Transport,
}

/// An endpoint as the key holds it (IPv4 in the first four bytes).
fn packed(a: SocketAddr) -> ([u8; 16], u16) {
    let mut b = [0u8; 16];
    match a.ip() {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    (b, a.port())
}

impl FlowKey {
    pub fn new(src: SocketAddr, dst: SocketAddr, transport: Transport) -> FlowKey {
        let (lo, hi) = if (src.ip(), src.port()) <= (dst.ip(), dst.port()) {
            (src, dst)
        } else {
            (dst, src)
        };
        FlowKey {
            lo: packed(lo),
            hi: packed(hi),
            // A v4 and a v6 endpoint never share a flow; a mixed pair
            // (only from a damaged packet) is keyed by its lower side.
            v6: lo.is_ipv6(),
            transport,
        }
    }

    /// The smaller endpoint.
    pub fn lo(&self) -> SocketAddr {
        unpacked(self.lo, self.v6)
    }

    /// The larger endpoint.
    pub fn hi(&self) -> SocketAddr {
        unpacked(self.hi, self.v6)
    }
}

fn unpacked((b, port): ([u8; 16], u16), v6: bool) -> SocketAddr {
    let ip = if v6 {
        IpAddr::from(b)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    };
    SocketAddr::new(ip, port)
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
    /// Port 88: Kerberos, followed like DNS (plaintext around RDP).
    Kerberos,
    /// Any other TCP flow: content decides (RDP found on any port).
    Probe,
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
    pub dir: Dir,
    pub at: Mark,
    pub ttl: u8,
    pub ip_id: u32,
    /// Payload bytes each way (client, server) before the reset.
    pub bytes: [u64; 2],
    pub established: bool,
}

/// Counters for one direction, kept for every flow.
#[derive(Debug, Clone, Default)]
pub struct DirStats {
    pub packets: u64,
    /// IP bytes (as declared by the IP header).
    pub bytes: u64,
    pub payload: u64,
    pub data_segments: u64,
    pub largest_segment: u32,
    pub largest_ip: u32,
    pub largest_ip_at: Mark,
    pub df: u64,
    /// TTL of the first packet that was not a RST (the endpoint's own).
    pub first_ttl: Option<u8>,
    pub first_data: Option<Mark>,
    pub last_data: Option<Mark>,
}

/// TCP evidence for one direction.
#[derive(Debug, Clone, Default)]
pub struct TcpDir {
    pub retransmissions: u64,
    pub out_of_order: u64,
    /// Most times one segment (same sequence number) was sent.
    pub max_resend: u32,
    pub max_resend_at: Mark,
    pub zero_window: Marks,
    pub mss: Option<u16>,
    pub syn: Marks,
    pub fin: Option<Mark>,
    pub capture_lost: u64,
    /// Sequence numbers no TCP could send: segments beyond any window
    /// (bytes), acknowledgments skipping more than the link could carry.
    pub out_of_window: u64,
    pub implausible_acks: u64,
    pub path: PathStats,
    /// ACKs from the peer that revealed bytes of this direction as never captured.
    pub loss_seen: Marks,
    /// Retransmitted segments.
    pub retrans: Marks,
    pub overlap_conflicts: u64,
    pub ooo_dropped: u64,
}

/// The TCP machinery, dropped when the flow ends or is of no interest.
#[derive(Debug, Default)]
struct Machinery {
    reasm: [Reasm; 2],
    zero_win: [bool; 2],
    last_resend_seq: [Option<u32>; 2],
    resend_run: [u32; 2],
    /// Segments sent and not yet acknowledged, per direction: for black holes.
    inflight: [Window; 2],
}

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
    pub dir: Dir,
}

/// What a tunnelled RDP connection came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// The leg that carried it: client and gateway.
    pub leg: (SocketAddr, SocketAddr),
    /// CHANNEL_CREATE's target and port.
    pub target: Option<(String, u16)>,
    pub kind: crate::proto::gateway::Kind,
}

/// At most this many ICMP events kept per flow.
const MAX_ICMP: usize = 16;

/// A TCP connection's evidence: handshake, ending, per-side TCP counters.
#[derive(Debug, Default)]
pub struct TcpFlow {
    pub dirs: [TcpDir; 2],
    pub syn_ack: Marks,
    pub established: Option<Mark>,
    /// No SYN seen: the capture started after the connection did.
    pub mid_stream: bool,
    pub rst: Option<Reset>,
    pub rst_count: u32,
    pub stall: Stall,
    last_progress: Option<Mark>,
    isn: [Option<u32>; 2],
    /// Allocated at the first ACK or payload (a SYN-only flow of a scan
    /// never needs it), dropped for good when `machinery_off`.
    machinery: Option<Box<Machinery>>,
    machinery_off: bool,
}

/// What a UDP flow's datagrams said: the parser of its port's protocol.
#[derive(Debug, Default)]
pub struct Datagrams {
    /// DNS queries and answers (port 53).
    pub dns: Dns,
    /// Kerberos messages (port 88).
    pub krb: Krb,
    /// RDP over UDP and the gateway's DTLS (RDP ports).
    pub udp: Rdpeudp,
}

static NO_UDP: std::sync::LazyLock<Rdpeudp> = std::sync::LazyLock::new(Rdpeudp::default);

static NO_TCP: std::sync::LazyLock<TcpFlow> = std::sync::LazyLock::new(TcpFlow::default);

/// A flow's protocol state ([`App`], 330 bytes), allocated when a parser
/// is first fed (most flows of a scan or a flood never are); until then it
/// reads as an empty `App`. Holds what a new `App` starts with.
#[derive(Debug, Default)]
pub struct LazyApp {
    app: Option<Box<App>>,
    rdp_port: bool,
    krb_port: bool,
    keys: Option<std::sync::Arc<crate::proto::keylog::KeyLog>>,
    gateways: Option<std::sync::Arc<[String]>>,
}

static NO_APP: std::sync::LazyLock<App> = std::sync::LazyLock::new(App::default);

impl std::ops::Deref for LazyApp {
    type Target = App;
    fn deref(&self) -> &App {
        self.app.as_deref().unwrap_or(&NO_APP)
    }
}

impl std::ops::DerefMut for LazyApp {
    fn deref_mut(&mut self) -> &mut App {
        self.app.get_or_insert_with(|| {
            let mut a = App::default();
            a.rdp_port = self.rdp_port;
            a.krb_port = self.krb_port;
            a.keys = self.keys.clone();
            a.gateways = self.gateways.clone();
            Box::new(a)
        })
    }
}

impl LazyApp {
    fn new(interest: Interest) -> LazyApp {
        LazyApp {
            rdp_port: interest == Interest::Rdp,
            krb_port: interest == Interest::Kerberos,
            ..Default::default()
        }
    }

    /// An `App` that already exists (a gateway leg's tunnel).
    fn of(app: App) -> LazyApp {
        LazyApp {
            rdp_port: app.rdp_port,
            krb_port: app.krb_port,
            keys: app.keys.clone(),
            gateways: app.gateways.clone(),
            app: Some(Box::new(app)),
        }
    }

    /// The run's TLS keys and `--gateway` names, for the `App` to come.
    pub fn arm(
        &mut self,
        keys: Option<std::sync::Arc<crate::proto::keylog::KeyLog>>,
        gateways: Option<std::sync::Arc<[String]>>,
    ) {
        if let Some(a) = self.app.as_deref_mut() {
            a.keys = keys.clone();
            a.gateways = gateways.clone();
        }
        self.keys = keys;
        self.gateways = gateways;
    }

    /// The flow ended: the `App`'s buffers go (nothing to do without one).
    pub fn finish(&mut self) {
        if let Some(a) = self.app.as_deref_mut() {
            a.finish();
        }
    }
}

#[derive(Debug)]
pub struct Flow {
    pub key: FlowKey,
    pub interest: Interest,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first: Mark,
    pub last: Mark,
    pub dirs: [DirStats; 2],
    pub frags: Frags,
    /// The first [`MAX_ICMP`] − 1 ICMP events and the latest one.
    pub icmp: Vec<IcmpEvent>,
    /// Destination-unreachable events in all (kept or not): the count a
    /// finding says, exact whatever the cap.
    pub icmp_unreachable: u64,
    /// ICMP events in all (kept or not).
    pub icmp_seen: u64,
    pub app: LazyApp,
    /// A UDP flow's datagram parsers (DNS, Kerberos, RDPEUDP), allocated at
    /// its first payload: 350 bytes where the [`App`] and its facts would
    /// be 2 KB, for flows that are mostly one or two datagrams.
    dgram: Option<Box<Datagrams>>,
    /// TCP only, and only while the flow is of interest.
    tcp: Option<Box<TcpFlow>>,
    /// Content showed the flow is of no interest: only kept to not re-probe.
    pub ignored: bool,
    /// A TLS connection to a gateway the user named (`--gateway`), or to
    /// an Azure Virtual Desktop gateway by its name: a gateway leg even
    /// when nothing inside it can be read.
    pub named_gateway: bool,
    /// The tunnelled RDP connection of a gateway leg: the leg's client and
    /// server (this flow's endpoints stand for the client and the gateway).
    pub tunnel_of: Option<Box<Tunnel>>,
    /// A gateway OUT channel the table has registered.
    pub out_leg_known: bool,
    /// When ignored: was it closed, the client's ISN and whether it sent a
    /// SYN (what a new SYN on the same ports is judged by).
    ignored_state: (bool, Option<u32>, bool),
}

impl Flow {
    pub fn new(
        key: FlowKey,
        client: SocketAddr,
        server: SocketAddr,
        interest: Interest,
        at: Mark,
    ) -> Flow {
        let tcp = (key.transport == Transport::Tcp).then(|| {
            Box::new(TcpFlow {
                machinery: None,
                ..Default::default()
            })
        });
        let app = LazyApp::new(interest);
        Flow {
            key,
            interest,
            client,
            server,
            first: at,
            last: at,
            dirs: Default::default(),
            frags: Frags::default(),
            icmp: Vec::new(),
            icmp_unreachable: 0,
            icmp_seen: 0,
            app,
            dgram: None,
            tcp,
            ignored: false,
            named_gateway: false,
            tunnel_of: None,
            out_leg_known: false,
            ignored_state: (false, None, false),
        }
    }

    /// What the datagrams of a UDP flow to an RDP port said (empty for
    /// other flows).
    pub fn rdpeudp(&self) -> &Rdpeudp {
        self.dgram.as_deref().map_or(&NO_UDP, |d| &d.udp)
    }

    fn dgram_mut(&mut self) -> &mut Datagrams {
        self.dgram.get_or_insert_with(Box::default)
    }

    /// The DNS lookups this flow holds, taken (none left).
    pub fn take_dns(&mut self) -> Dns {
        self.dgram
            .as_deref_mut()
            .map(|d| std::mem::take(&mut d.dns))
            .unwrap_or_default()
    }

    /// The DNS lookups of this flow that nothing later changes, taken.
    pub fn final_dns(&mut self, now: i64) -> Vec<crate::proto::dns::Query> {
        match self.dgram.as_deref_mut() {
            Some(d) => d.dns.take_final(now),
            None => Vec::new(),
        }
    }

    /// The Kerberos messages of a flow to port 88: its datagrams', or what
    /// its TCP stream carried.
    pub fn krb_mut(&mut self) -> &mut Krb {
        if self.key.transport == Transport::Udp {
            &mut self.dgram_mut().krb
        } else {
            &mut self.app.facts_mut().krb
        }
    }

    /// The TCP evidence (empty for UDP flows and ignored ones).
    pub fn tcp(&self) -> &TcpFlow {
        self.tcp.as_deref().unwrap_or(&NO_TCP)
    }

    /// The endpoint of a direction.
    pub fn endpoint(&self, dir: Dir) -> SocketAddr {
        match dir {
            Dir::Client => self.client,
            Dir::Server => self.server,
        }
    }

    pub fn dir_of(&self, src: SocketAddr) -> Dir {
        if src == self.client {
            Dir::Client
        } else {
            Dir::Server
        }
    }

    /// Reported in the attempts and findings.
    pub fn reported(&self) -> bool {
        match self.interest {
            Interest::Rdp | Interest::UserPort => true,
            Interest::Probe => {
                matches!(self.app.class, AppClass::Rdp { .. }) || self.app.gateway_leg().is_some()
            }
            Interest::Gateway => self.app.gateway_leg().is_some() || self.named_gateway,
            Interest::Dns | Interest::Kerberos => false,
        }
    }

    /// Closed: a reset, or a FIN each way.
    pub fn closed(&self) -> bool {
        if self.ignored {
            return self.ignored_state.0;
        }
        let t = self.tcp();
        t.rst.is_some() || (t.dirs[Dir::Client].fin.is_some() && t.dirs[Dir::Server].fin.is_some())
    }

    /// The client's initial sequence number, and whether it sent a SYN.
    pub fn client_syn(&self) -> (Option<u32>, bool) {
        if self.ignored {
            return (self.ignored_state.1, self.ignored_state.2);
        }
        let t = self.tcp();
        (t.isn[0], t.dirs[Dir::Client].syn.count > 0)
    }

    fn common(&mut self, dir: Dir, ip: &Ip, at: Mark) {
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

    /// One TCP segment.
    pub fn tcp_segment(&mut self, src: SocketAddr, ip: &Ip, t: &Tcp<'_>, at: Mark, cfg: &Config) {
        let dir = self.dir_of(src);
        self.common(dir, ip, at);
        if self.ignored {
            return;
        }
        let Some(tf) = self.tcp.as_deref_mut() else {
            return;
        };
        let syn = t.flags & tf::SYN != 0;
        let ack = t.flags & tf::ACK != 0;
        let rst = t.flags & tf::RST != 0;
        let fin = t.flags & tf::FIN != 0;
        if !rst && self.dirs[dir].first_ttl.is_none() {
            self.dirs[dir].first_ttl = Some(ip.ttl);
        }
        let hs_before =
            self.dirs[Dir::Client].payload + self.dirs[Dir::Server].payload < cfg.handshake_bytes;
        if syn {
            if ack {
                tf.syn_ack.add(at);
            } else {
                tf.dirs[dir].syn.add(at);
            }
            if t.mss.is_some() {
                tf.dirs[dir].mss = t.mss;
            }
            if tf.isn[dir].is_none() {
                tf.isn[dir] = Some(t.seq);
                if let Some(m) = tf.machinery.as_mut() {
                    m.reasm[dir].start(t.seq.wrapping_add(1));
                }
            }
            tf.progress(at, hs_before);
        } else if ack
            && dir == Dir::Client
            && tf.established.is_none()
            && tf.syn_ack.count > 0
            && !rst
        {
            tf.established = Some(at);
            tf.progress(at, hs_before);
        }
        if tf.dirs[Dir::Client].syn.count == 0 && tf.syn_ack.count == 0 && self.first == at {
            tf.mid_stream = true;
        }
        if rst {
            tf.rst_count += 1;
            if tf.rst.is_none() {
                tf.rst = Some(Reset {
                    dir,
                    at,
                    ttl: ip.ttl,
                    ip_id: ip.id,
                    bytes: [
                        self.dirs[Dir::Client].payload,
                        self.dirs[Dir::Server].payload,
                    ],
                    established: tf.established.is_some() || tf.mid_stream,
                });
            }
        }
        if fin && tf.dirs[dir].fin.is_none() {
            tf.dirs[dir].fin = Some(at);
        }
        if tf.machinery.is_none() && !tf.machinery_off && !rst && (ack || t.wire_len > 0) {
            let mut m = Box::<Machinery>::default();
            for d in Dir::BOTH {
                if let Some(isn) = tf.isn[d] {
                    m.reasm[d].start(isn.wrapping_add(1));
                }
            }
            tf.machinery = Some(m);
        }
        let Some(m) = tf.machinery.as_deref_mut() else {
            return;
        };
        // Zero window: count episodes (a change from open to zero).
        if !rst && !syn {
            let zero = t.window == 0;
            if zero && !m.zero_win[dir] {
                tf.dirs[dir].zero_window.add(at);
            }
            m.zero_win[dir] = zero;
        }
        let lim = reasm::Limits {
            depth: cfg.depth,
            ..Default::default()
        };
        // The peer's ACK tells which of our holes were capture loss.
        let app = &mut self.app;
        if ack && !rst {
            let other = dir.other();
            let p = &mut tf.dirs[other].path;
            m.inflight[other].acked(t.ack, t.sack, |s| {
                if s.len > p.max_acked {
                    p.max_acked = s.len;
                    p.max_acked_ip = s.ip_len;
                }
            });
            let before = m.reasm[other].capture_lost;
            m.reasm[other].acked(t.ack, at.ts, &lim, &mut |off, c| {
                app.feed(other, c, Pos::new(at, off))
            });
            if m.reasm[other].capture_lost > before {
                tf.dirs[other].loss_seen.add(at);
            }
        }
        let wire = t.wire_len;
        if wire == 0 || rst {
            return;
        }
        let seq = if syn { t.seq.wrapping_add(1) } else { t.seq };
        let r = &mut m.reasm[dir];
        if !r.started() {
            tf.mid_stream |= tf.isn[dir].is_none();
        }
        let kind = r.segment(seq, t.payload, wire, &lim, &mut |off, c| {
            app.feed(dir, c, Pos::new(at, off))
        });
        m.inflight[dir].sent(
            InFlight {
                end: seq.wrapping_add(wire),
                len: wire,
                ip_len: ip.len,
                sends: 1,
                first: at,
                last: at,
                df: ip.df || ip.v6,
            },
            kind == SegKind::Retransmission,
        );
        let d = &mut self.dirs[dir];
        let td = &mut tf.dirs[dir];
        d.data_segments += 1;
        d.largest_segment = d.largest_segment.max(wire);
        td.capture_lost = r.capture_lost;
        td.overlap_conflicts = r.overlap_conflicts;
        td.ooo_dropped = r.ooo_dropped;
        match kind {
            SegKind::Retransmission => {
                td.retransmissions += 1;
                td.retrans.add(at);
                let run = if m.last_resend_seq[dir] == Some(seq) {
                    m.resend_run[dir] + 1
                } else {
                    2
                };
                m.last_resend_seq[dir] = Some(seq);
                m.resend_run[dir] = run;
                if run > td.max_resend && hs_before {
                    td.max_resend = run;
                    td.max_resend_at = at;
                }
            }
            SegKind::OutOfOrder | SegKind::HoleFill => {
                td.out_of_order += 1;
                if kind == SegKind::OutOfOrder && td.path.first_ooo.is_none() {
                    td.path.first_ooo = Some(at);
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
            tf.progress(at, hs_before);
        }
        if self.interest == Interest::Probe && self.app.settled() && !self.reported() {
            // Not RDP: stop following the content; keep only what a new
            // SYN on the same ports is judged by.
            let (isn, syn) = self.client_syn();
            self.ignored_state = (self.closed(), isn, syn);
            self.ignored = true;
            self.tcp = None;
            self.app = LazyApp::default();
        }
    }

    /// A gateway leg's tunnelled RDP connection, as a flow of its own: the
    /// leg's endpoints (the client and the gateway), its DATA bytes and
    /// frames, its facts from the `App` that read the tunnel. TCP-wise it
    /// was established when the gateway created the channel and has no
    /// ending of its own (the leg has it).
    pub fn take_tunnel(&mut self) -> Option<Flow> {
        self.app.tunnel.as_ref()?;
        let mut app = *self.app.tunnel.take()?;
        app.finish();
        let t = &self.app.gateway_leg()?.tsg;
        let span = self.app.tunnel_span;
        let first = Dir::BOTH
            .iter()
            .filter_map(|&d| span[d].map(|s| s.0))
            .min_by_key(|m| m.frame)?;
        let last = Dir::BOTH
            .iter()
            .filter_map(|&d| span[d].map(|s| s.1))
            .max_by_key(|m| m.frame)
            .unwrap_or(first);
        let opened = t.channel.map(|c| c.1).filter(|m| m.frame <= first.frame);
        let g = self.app.gateway_leg()?;
        let tunnel = Tunnel {
            leg: (self.client, self.server),
            target: g.tsg.target.as_ref().map(|(n, p, _)| (n.clone(), *p)),
            kind: g.kind?,
        };
        let mut f = Flow::new(
            self.key,
            self.client,
            self.server,
            Interest::Rdp,
            opened.unwrap_or(first),
        );
        f.last = last;
        for d in Dir::BOTH {
            let s = &mut f.dirs[d];
            // The leg counts the packets and bytes.
            s.payload = self.app.tunnel_seen[d];
            s.first_data = span[d].map(|s| s.0);
            s.last_data = span[d].map(|s| s.1);
        }
        if let Some(tf) = f.tcp.as_deref_mut() {
            tf.established = Some(opened.unwrap_or(first));
            tf.machinery = None;
            tf.machinery_off = true;
        }
        f.app = LazyApp::of(app);
        f.tunnel_of = Some(Box::new(tunnel));
        Some(f)
    }

    /// Called when the flow ends: the wait from the last progress to the end
    /// (a close, a reset or the end of the capture) counts as a stall too.
    pub fn finish(&mut self, end: Mark, cfg: &Config) {
        let handshake =
            self.dirs[Dir::Client].payload + self.dirs[Dir::Server].payload < cfg.handshake_bytes;
        if let Some(tf) = self.tcp.as_deref_mut() {
            if handshake {
                if let Some(p) = tf.last_progress {
                    let gap = end.ts - p.ts;
                    if gap > tf.stall.gap_ns {
                        tf.stall = Stall {
                            gap_ns: gap,
                            before: p,
                            after: (end.frame != p.frame && end.frame != 0).then_some(end),
                        };
                    }
                }
            }
            tf.machinery_off = true;
            if let Some(m) = tf.machinery.take() {
                for dir in Dir::BOTH {
                    let td = &mut tf.dirs[dir];
                    td.capture_lost = m.reasm[dir].capture_lost;
                    td.out_of_window = m.reasm[dir].out_of_window;
                    td.implausible_acks = m.reasm[dir].implausible_acks;
                    td.path.unfilled = m.reasm[dir].pending_hole();
                    td.path.stuck = m.inflight[dir].stuck();
                }
            }
        }
        self.app.finish();
    }

    pub fn udp(&mut self, src: SocketAddr, ip: &Ip, u: &Udp<'_>, at: Mark) {
        let dir = self.dir_of(src);
        self.common(dir, ip, at);
        match self.interest {
            Interest::Dns => self.dgram_mut().dns.datagram(u.payload, at),
            Interest::Kerberos => self.dgram_mut().krb.message(dir, u.payload, at),
            Interest::Rdp => self.dgram_mut().udp.datagram(dir, u.payload, at),
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
        self.icmp_seen += 1;
        if ev.err.is_unreachable() {
            self.icmp_unreachable += 1;
        }
        if self.icmp.len() < MAX_ICMP {
            self.icmp.push(ev);
        } else if let Some(last) = self.icmp.last_mut() {
            // Past the cap the last slot follows the latest event, so the
            // frames a finding cites run to the real last one.
            *last = ev;
        }
    }

    /// Payload bytes (client→server, server→client).
    pub fn payload(&self) -> [u64; 2] {
        [
            self.dirs[Dir::Client].payload,
            self.dirs[Dir::Server].payload,
        ]
    }
}

impl TcpFlow {
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
            } else if let Some(s) = pick(port::KERBEROS) {
                Some((Interest::Kerberos, s))
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
                pick(port::DNS)
                    .map(|s| (Interest::Dns, s))
                    .or_else(|| pick(port::KERBEROS).map(|s| (Interest::Kerberos, s)))
            }
        }
    }
}
