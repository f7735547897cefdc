//! Test support: builds captures from scenario descriptions with
//! etherparse's header types, and writes them as pcap or pcapng. Used by the
//! tests, by `rdpsift-synth` (samples and the benchmark capture), never by
//! the analysis itself.

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header,
    TcpHeader, TcpOptionElement, UdpHeader,
};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

pub const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_S: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// A frame to be written.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub ts: i64,
    pub data: Vec<u8>,
    /// Length on the wire (≥ data.len() when a snap length cut it).
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNanos,
    PcapBigEndian,
    PcapNg,
}

/// Writes pcap or pcapng (Ethernet) incrementally.
pub struct Writer<W: Write> {
    w: W,
    fmt: Format,
}

impl<W: Write> Writer<W> {
    pub fn new(mut w: W, fmt: Format) -> io::Result<Writer<W>> {
        match fmt {
            Format::Pcap | Format::PcapNanos => {
                let magic: u32 = if fmt == Format::Pcap {
                    0xa1b2c3d4
                } else {
                    0xa1b23c4d
                };
                w.write_all(&magic.to_le_bytes())?;
                w.write_all(&2u16.to_le_bytes())?;
                w.write_all(&4u16.to_le_bytes())?;
                w.write_all(&[0; 8])?;
                w.write_all(&262144u32.to_le_bytes())?;
                w.write_all(&1u32.to_le_bytes())?;
            }
            Format::PcapBigEndian => {
                w.write_all(&0xa1b2c3d4u32.to_be_bytes())?;
                w.write_all(&2u16.to_be_bytes())?;
                w.write_all(&4u16.to_be_bytes())?;
                w.write_all(&[0; 8])?;
                w.write_all(&262144u32.to_be_bytes())?;
                w.write_all(&1u32.to_be_bytes())?;
            }
            Format::PcapNg => {
                // SHB: type, len, BOM, version 1.0, section length -1, len.
                let mut shb = Vec::new();
                shb.extend_from_slice(&0x0A0D0D0Au32.to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                shb.extend_from_slice(&0x1A2B3C4Du32.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                w.write_all(&shb)?;
                // IDB: Ethernet, snaplen 0, if_tsresol = 9 (nanoseconds).
                let mut idb = Vec::new();
                idb.extend_from_slice(&1u32.to_le_bytes());
                idb.extend_from_slice(&32u32.to_le_bytes());
                idb.extend_from_slice(&1u16.to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&0u32.to_le_bytes());
                idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol=9, padded
                idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
                idb.extend_from_slice(&32u32.to_le_bytes());
                w.write_all(&idb)?;
            }
        }
        Ok(Writer { w, fmt })
    }

    pub fn write(&mut self, p: &Pkt) -> io::Result<()> {
        let caplen = p.data.len() as u32;
        match self.fmt {
            Format::Pcap | Format::PcapNanos | Format::PcapBigEndian => {
                let sec = p.ts.div_euclid(1_000_000_000) as u32;
                let ns = p.ts.rem_euclid(1_000_000_000) as u32;
                let frac = if self.fmt == Format::PcapNanos {
                    ns
                } else {
                    ns / 1000
                };
                let fields = [sec, frac, caplen, p.orig_len.max(caplen)];
                for v in fields {
                    if self.fmt == Format::PcapBigEndian {
                        self.w.write_all(&v.to_be_bytes())?;
                    } else {
                        self.w.write_all(&v.to_le_bytes())?;
                    }
                }
                self.w.write_all(&p.data)
            }
            Format::PcapNg => {
                let pad = (4 - caplen % 4) % 4;
                let len = 32 + caplen + pad;
                let ts = p.ts as u64;
                let mut h = Vec::with_capacity(28);
                h.extend_from_slice(&6u32.to_le_bytes());
                h.extend_from_slice(&len.to_le_bytes());
                h.extend_from_slice(&0u32.to_le_bytes());
                h.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
                h.extend_from_slice(&(ts as u32).to_le_bytes());
                h.extend_from_slice(&caplen.to_le_bytes());
                h.extend_from_slice(&p.orig_len.max(caplen).to_le_bytes());
                self.w.write_all(&h)?;
                self.w.write_all(&p.data)?;
                self.w.write_all(&[0u8; 3][..pad as usize])?;
                self.w.write_all(&len.to_le_bytes())
            }
        }
    }

    /// A pcapng Decryption Secrets Block of TLS key-log text (secrets type
    /// `TLSK`), wherever the caller puts it; pcap formats have none.
    pub fn secrets(&mut self, keylog: &[u8]) -> io::Result<()> {
        if self.fmt != Format::PcapNg {
            return Ok(());
        }
        let n = keylog.len() as u32;
        let pad = (4 - n % 4) % 4;
        let len = 20 + n + pad;
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&0x0Au32.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&0x544C_534Bu32.to_le_bytes());
        h.extend_from_slice(&n.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(keylog)?;
        self.w.write_all(&[0u8; 3][..pad as usize])?;
        self.w.write_all(&len.to_le_bytes())
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Writes all packets to a byte vector.
pub fn to_bytes(pkts: &[Pkt], fmt: Format) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), fmt).expect("vec");
    for p in pkts {
        w.write(p).expect("vec");
    }
    w.into_inner()
}

/// IP header options for one packet.
#[derive(Debug, Clone, Copy)]
pub struct IpOpts {
    pub ttl: u8,
    pub df: bool,
    pub id: u16,
}

impl Default for IpOpts {
    fn default() -> Self {
        IpOpts {
            ttl: 64,
            df: true,
            id: 0,
        }
    }
}

fn eth(src_is_client: bool, ether_type: EtherType) -> Vec<u8> {
    let (s, d) = if src_is_client {
        (MAC_C, MAC_S)
    } else {
        (MAC_S, MAC_C)
    };
    let mut v = Vec::with_capacity(1514);
    Ethernet2Header {
        source: s,
        destination: d,
        ether_type,
    }
    .write(&mut v)
    .expect("vec");
    v
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// An IP packet (with Ethernet) around an already built transport payload.
pub fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: IpNumber,
    l4: &[u8],
    o: IpOpts,
    from_client: bool,
) -> Vec<u8> {
    if src.is_ipv6() {
        let mut v = eth(from_client, EtherType::IPV6);
        Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: l4.len() as u16,
            next_header: proto,
            hop_limit: o.ttl,
            source: v6(src),
            destination: v6(dst),
        }
        .write(&mut v)
        .expect("vec");
        v.extend_from_slice(l4);
        v
    } else {
        let mut v = eth(from_client, EtherType::IPV4);
        let mut h = Ipv4Header::new(l4.len() as u16, o.ttl, proto, v4(src), v4(dst)).expect("size");
        h.dont_fragment = o.df;
        h.identification = o.id;
        h.header_checksum = h.calc_header_checksum();
        h.write(&mut v).expect("vec");
        v.extend_from_slice(l4);
        v
    }
}

/// IPv4 fragments of a transport payload, `chunk` bytes each (multiple of 8).
pub fn ipv4_fragments(
    src: IpAddr,
    dst: IpAddr,
    proto: IpNumber,
    l4: &[u8],
    chunk: usize,
    o: IpOpts,
    from_client: bool,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < l4.len() {
        let end = (off + chunk).min(l4.len());
        let mut v = eth(from_client, EtherType::IPV4);
        let mut h =
            Ipv4Header::new((end - off) as u16, o.ttl, proto, v4(src), v4(dst)).expect("size");
        h.identification = o.id;
        h.more_fragments = end < l4.len();
        h.fragment_offset = IpFragOffset::try_new((off / 8) as u16).expect("offset");
        h.header_checksum = h.calc_header_checksum();
        h.write(&mut v).expect("vec");
        v.extend_from_slice(&l4[off..end]);
        out.push(v);
        off = end;
    }
    out
}

/// TCP segment bytes (header + payload) with a correct checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    window: u16,
    mss: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = TcpHeader::new(src.port(), dst.port(), seq, window);
    t.fin = flags & 0x01 != 0;
    t.syn = flags & 0x02 != 0;
    t.rst = flags & 0x04 != 0;
    t.psh = flags & 0x08 != 0;
    if let Some(a) = ack {
        t.ack = true;
        t.acknowledgment_number = a;
    }
    if let Some(m) = mss {
        t.set_options(&[TcpOptionElement::MaximumSegmentSize(m)])
            .expect("fits");
    }
    t.checksum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => t
            .calc_checksum_ipv4_raw(s.octets(), d.octets(), payload)
            .unwrap_or(0),
        _ => t
            .calc_checksum_ipv6_raw(v6(src.ip()), v6(dst.ip()), payload)
            .unwrap_or(0),
    };
    let mut v = Vec::with_capacity(t.header_len() + payload.len());
    t.write(&mut v).expect("vec");
    v.extend_from_slice(payload);
    v
}

pub fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let h = UdpHeader {
        source_port: src.port(),
        destination_port: dst.port(),
        length: (8 + payload.len()) as u16,
        checksum: 0,
    };
    let mut v = Vec::with_capacity(8 + payload.len());
    h.write(&mut v).expect("vec");
    v.extend_from_slice(payload);
    v
}

/// ICMPv4 type 3 (code given; code 4 carries `mtu`) quoting `quoted_ip`.
pub fn icmp4_unreachable(code: u8, mtu: u16, quoted_ip: &[u8]) -> Vec<u8> {
    let mut v = vec![3, code, 0, 0, 0, 0];
    v.extend_from_slice(&mtu.to_be_bytes());
    v.extend_from_slice(&quoted_ip[..quoted_ip.len().min(28)]);
    let c = inet_checksum(&v);
    v[2..4].copy_from_slice(&c.to_be_bytes());
    v
}

fn inet_checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
}

/// One TCP conversation, told step by step; packets go to `out`.
#[derive(Debug, Clone)]
pub struct TcpConv {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Next sequence number each way (client, server).
    pub seq: [u32; 2],
    pub now: i64,
    pub window: [u16; 2],
    pub ttl: [u8; 2],
    pub mss: u16,
    ip_id: [u16; 2],
}

pub const C: usize = 0;
pub const S: usize = 1;

impl TcpConv {
    pub fn new(client: &str, server: &str, start_ns: i64) -> TcpConv {
        TcpConv {
            client: client.parse().expect("client addr"),
            server: server.parse().expect("server addr"),
            seq: [0x1000_0000, 0x7000_0000],
            now: start_ns,
            window: [64240, 65160],
            ttl: [128, 64],
            mss: 1460,
            ip_id: [0x100, 0x200],
        }
    }

    pub fn wait(&mut self, ns: i64) -> &mut Self {
        self.now += ns;
        self
    }

    /// Raw segment from `dir` with explicit sequence/flags (for retransmissions and oddities).
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        out: &mut Vec<Pkt>,
        dir: usize,
        seq: u32,
        flags: u8,
        with_ack: bool,
        mss: Option<u16>,
        payload: &[u8],
    ) {
        let (src, dst) = if dir == C {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ack = with_ack.then_some(self.seq[1 - dir]);
        let seg = tcp_segment(src, dst, seq, ack, flags, self.window[dir], mss, payload);
        self.ip_id[dir] = self.ip_id[dir].wrapping_add(1);
        let o = IpOpts {
            ttl: self.ttl[dir],
            df: true,
            id: self.ip_id[dir],
        };
        let data = ip_packet(src.ip(), dst.ip(), IpNumber::TCP, &seg, o, dir == C);
        out.push(Pkt {
            ts: self.now,
            orig_len: data.len() as u32,
            data,
        });
    }

    pub fn syn(&mut self, out: &mut Vec<Pkt>) -> &mut Self {
        let s = self.seq[C];
        self.raw(out, C, s, flag::SYN, false, Some(self.mss), &[]);
        self
    }

    /// Resends the SYN (same ISN) after `ns`.
    pub fn syn_again(&mut self, out: &mut Vec<Pkt>, ns: i64) -> &mut Self {
        self.now += ns;
        self.syn(out)
    }

    pub fn handshake(&mut self, out: &mut Vec<Pkt>, rtt: i64) -> &mut Self {
        self.syn(out);
        self.seq[C] = self.seq[C].wrapping_add(1);
        self.now += rtt / 2;
        let s = self.seq[S];
        self.raw(out, S, s, flag::SYN, true, Some(self.mss), &[]);
        self.seq[S] = self.seq[S].wrapping_add(1);
        self.now += rtt / 2;
        let c = self.seq[C];
        self.raw(out, C, c, 0, true, None, &[]);
        self
    }

    /// Data from `dir` in segments of at most `mss`, each acknowledged after `rtt`.
    pub fn send(&mut self, out: &mut Vec<Pkt>, dir: usize, data: &[u8], rtt: i64) -> &mut Self {
        for chunk in data.chunks(self.mss as usize) {
            let s = self.seq[dir];
            self.raw(out, dir, s, flag::PSH, true, None, chunk);
            self.seq[dir] = self.seq[dir].wrapping_add(chunk.len() as u32);
            self.now += rtt;
            self.ack(out, 1 - dir);
        }
        self
    }

    /// A pure ACK from `dir`.
    pub fn ack(&mut self, out: &mut Vec<Pkt>, dir: usize) -> &mut Self {
        let s = self.seq[dir];
        self.raw(out, dir, s, 0, true, None, &[]);
        self
    }

    pub fn fin(&mut self, out: &mut Vec<Pkt>, dir: usize) -> &mut Self {
        let s = self.seq[dir];
        self.raw(out, dir, s, flag::FIN, true, None, &[]);
        self.seq[dir] = self.seq[dir].wrapping_add(1);
        self
    }

    /// FIN from `dir`, FIN back, final ACK.
    pub fn close(&mut self, out: &mut Vec<Pkt>, dir: usize, rtt: i64) -> &mut Self {
        self.fin(out, dir);
        self.now += rtt / 2;
        self.fin(out, 1 - dir);
        self.now += rtt / 2;
        self.ack(out, dir)
    }

    pub fn rst(&mut self, out: &mut Vec<Pkt>, dir: usize) -> &mut Self {
        let s = self.seq[dir];
        self.raw(out, dir, s, flag::RST, true, None, &[]);
        self
    }
}

/// An X.224 Connection Request with a cookie and RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1).
pub fn x224_cr(user: &str, protocols: u32) -> Vec<u8> {
    x224_cr_flags(user, 0, protocols)
}

/// A Connection Request whose RDP_NEG_REQ has `flags` (0x01 Restricted
/// Admin required, 0x02 Remote Credential Guard required).
pub fn x224_cr_flags(user: &str, flags: u8, protocols: u32) -> Vec<u8> {
    x224_cr_line(&format!("Cookie: mstshash={user}\r\n"), flags, protocols)
}

/// A Connection Request carrying `line` (a cookie or a routing token,
/// with its CR LF) before RDP_NEG_REQ.
pub fn x224_cr_line(cookie: &str, flags: u8, protocols: u32) -> Vec<u8> {
    let li = 6 + cookie.len() + 8;
    let mut v = vec![0x03, 0x00];
    v.extend_from_slice(&((li + 5) as u16).to_be_bytes());
    v.extend_from_slice(&[li as u8, 0xE0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(cookie.as_bytes());
    v.extend_from_slice(&[0x01, flags, 0x08, 0x00]);
    v.extend_from_slice(&protocols.to_le_bytes());
    v
}

/// An X.224 Connection Confirm with RDP_NEG_RSP selecting `protocol`.
pub fn x224_cc(protocol: u32) -> Vec<u8> {
    x224_cc_flags(protocol, 0x1f)
}

/// The same with RDP_NEG_RSP `flags` (0x08 Restricted Admin supported,
/// 0x10 Remote Credential Guard supported).
pub fn x224_cc_flags(protocol: u32, flags: u8) -> Vec<u8> {
    let mut v = vec![
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0, 0, 0x12, 0x34, 0, 0x02, flags, 0x08, 0x00,
    ];
    v.extend_from_slice(&protocol.to_le_bytes());
    v
}

/// Deterministic filler bytes (a tiny xorshift; no dependency needed).
pub fn filler(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A self-signed EC certificate for `rdp-host.example.test`, valid
/// 2024-01-01 to 2024-07-01 (made once with Python's cryptography package).
pub const CERT_HOST: &[u8] = include_bytes!("synth_certs/rdp-host.der");
/// Self-signed, `rdp-old.example.test`, expired 2024-03-01.
pub const CERT_EXPIRED: &[u8] = include_bytes!("synth_certs/expired.der");

/// A TLS record (RFC 5246 6.2.1).
pub fn tls_record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ, 0x03, 0x03];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn handshake_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn ext(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut v = typ.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// ClientHello offering TLS 1.2 (or `versions` via supported_versions) and
/// three ECDHE-RSA/ECDSA GCM suites, with an SNI when given.
pub fn tls_client_hello(sni: Option<&str>, versions: &[u16]) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend(filler(32, 0xC1));
    b.push(0);
    b.extend_from_slice(&[0x00, 0x06, 0xc0, 0x30, 0xc0, 0x2f, 0xc0, 0x2b]);
    b.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut l = vec![0];
        l.extend_from_slice(&(name.len() as u16).to_be_bytes());
        l.extend_from_slice(name.as_bytes());
        let mut body = (l.len() as u16).to_be_bytes().to_vec();
        body.extend(l);
        exts.extend(ext(0, &body));
    }
    if !versions.is_empty() {
        let mut body = vec![(versions.len() * 2) as u8];
        for v in versions {
            body.extend_from_slice(&v.to_be_bytes());
        }
        exts.extend(ext(43, &body));
    }
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend(exts);
    tls_record(22, &handshake_msg(1, &b))
}

/// ServerHello (TLS 1.2, `cipher`), Certificate (`cert`), ServerHelloDone,
/// in one record as Windows sends them.
pub fn tls_server_flight(cipher: u16, cert: &[u8]) -> Vec<u8> {
    let mut sh = vec![0x03, 0x03];
    sh.extend(filler(32, 0x5E));
    sh.push(0);
    sh.extend_from_slice(&cipher.to_be_bytes());
    sh.push(0);
    sh.extend_from_slice(&[0, 0]);
    let mut certs = Vec::new();
    certs.extend_from_slice(&(cert.len() as u32).to_be_bytes()[1..]);
    certs.extend_from_slice(cert);
    let mut cm = (certs.len() as u32).to_be_bytes()[1..].to_vec();
    cm.extend(certs);
    let mut body = handshake_msg(2, &sh);
    body.extend(handshake_msg(11, &cm));
    body.extend(handshake_msg(14, &[]));
    tls_record(22, &body)
}

/// ClientKeyExchange (client) or nothing (server), then ChangeCipherSpec
/// and an encrypted Finished (40 bytes).
pub fn tls_finish(client: bool, seed: u64) -> Vec<u8> {
    let mut v = Vec::new();
    if client {
        let mut kx = vec![65];
        kx.extend(filler(65, seed));
        v.extend(tls_record(22, &handshake_msg(16, &kx)));
    }
    v.extend(tls_record(20, &[1]));
    v.extend(tls_record(22, &filler(40, seed + 1)));
    v
}

/// An application-data record of `n` bytes in all (header included).
pub fn tls_app(n: usize, seed: u64) -> Vec<u8> {
    tls_record(23, &filler(n - 5, seed))
}

/// An application-data record whose length field is `len` (the sizes of
/// PROTOCOLS.md §8 are length fields: the record is 5 bytes more).
pub fn tls_sealed(len: usize, seed: u64) -> Vec<u8> {
    tls_record(23, &filler(len, seed))
}

/// A plaintext alert record.
pub fn tls_alert(level: u8, desc: u8) -> Vec<u8> {
    tls_record(21, &[level, desc])
}

/// A Connection Confirm with RDP_NEG_FAILURE `code` (MS-RDPBCGR 2.2.1.2.2).
pub fn x224_cc_failure(code: u32) -> Vec<u8> {
    let mut v = x224_cc(0);
    v[11] = 0x03;
    v[12] = 0x00;
    v[15..19].copy_from_slice(&code.to_le_bytes());
    v
}

/// An RDPEUDP client SYN (MS-RDPEUDP 2.2.2.5): CORRELATION_ID|SYNEX|SYN,
/// MTUs 1232, version 2, padded to 1232 bytes.
pub fn rdpeudp_syn(corr: [u8; 16]) -> Vec<u8> {
    let mut b = vec![0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x18, 0x01];
    b.extend(0x2345_6789u32.to_be_bytes());
    b.extend(1232u16.to_be_bytes());
    b.extend(1232u16.to_be_bytes());
    b.extend(corr);
    b.extend([0u8; 16]);
    b.extend([0x00, 0x01, 0x00, 0x02]);
    b.resize(1232, 0);
    b
}

/// A UDP datagram as an Ethernet frame at `ts`.
pub fn udp_pkt(src: SocketAddr, dst: SocketAddr, payload: &[u8], ts: i64) -> Pkt {
    let udp = udp_datagram(src, dst, payload);
    let data = ip_packet(
        src.ip(),
        dst.ip(),
        IpNumber::UDP,
        &udp,
        IpOpts::default(),
        src.port() != 53,
    );
    Pkt {
        ts,
        orig_len: data.len() as u32,
        data,
    }
}

/// An ICMPv4 destination unreachable (`code`, next-hop `mtu`) from a router
/// to `to`, quoting the Ethernet frame `about`.
pub fn icmp_error(router: &str, to: IpAddr, code: u8, mtu: u16, about: &Pkt, ts: i64) -> Pkt {
    let icmp = icmp4_unreachable(code, mtu, &about.data[14..]);
    let data = ip_packet(
        router.parse().expect("router address"),
        to,
        IpNumber::ICMP,
        &icmp,
        IpOpts {
            ttl: 255,
            df: false,
            id: 0,
        },
        false,
    );
    Pkt {
        ts,
        orig_len: data.len() as u32,
        data,
    }
}

/// A DER TLV with a short, one- or two-byte long length (the Kerberos
/// and CredSSP builders).
pub fn der(t: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![t];
    match v.len() {
        n if n < 0x80 => o.push(n as u8),
        n if n < 0x100 => o.extend([0x81, n as u8]),
        n => o.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    o.extend_from_slice(v);
    o
}

fn der_ctx(n: u8, v: Vec<u8>) -> Vec<u8> {
    der(0xa0 | n, &v)
}

fn der_int(v: u8) -> Vec<u8> {
    // Positive, one byte (a leading zero when the top bit is set).
    if v & 0x80 != 0 {
        der(0x02, &[0, v])
    } else {
        der(0x02, &[v])
    }
}

fn der_gstr(s: &str) -> Vec<u8> {
    der(0x1b, s.as_bytes())
}

fn der_time(epoch: i64) -> Vec<u8> {
    // GeneralizedTime YYYYMMDDHHMMSSZ from seconds since the epoch
    // (civil-from-days, H. Hinnant).
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let t = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    der(0x18, t.as_bytes())
}

fn der_name(t: u8, parts: &[&str]) -> Vec<u8> {
    let strs: Vec<u8> = parts.iter().flat_map(|p| der_gstr(p)).collect();
    let mut seq = der_ctx(0, der_int(t));
    seq.extend(der_ctx(1, der(0x30, &strs)));
    der(0x30, &seq)
}

/// Kerberos's realm in the synthetic samples.
pub const KRB_REALM: &str = "RDPSIFT.TEST";

/// A KRB-ERROR (RFC 4120 §5.9.1) as a KDC sends it: error-code `code`,
/// the KDC's time `stime`, client `cname`, service `sname` (its parts).
pub fn krb_error(code: u8, cname: &str, sname: &[&str], stime: i64) -> Vec<u8> {
    let mut s = der_ctx(0, der_int(5));
    s.extend(der_ctx(1, der_int(30)));
    s.extend(der_ctx(4, der_time(stime)));
    s.extend(der_ctx(5, der_int(7)));
    s.extend(der_ctx(6, der_int(code)));
    s.extend(der_ctx(7, der_gstr(KRB_REALM)));
    s.extend(der_ctx(8, der_name(1, &[cname])));
    s.extend(der_ctx(9, der_gstr(KRB_REALM)));
    s.extend(der_ctx(10, der_name(2, sname)));
    der(0x7e, &der(0x30, &s))
}

/// A TGS-REQ (RFC 4120 §5.4.1) for service `sname` without padata (the
/// analysis reads the body's names; a real one carries the TGT in an
/// AP-REQ as PA-TGS-REQ).
pub fn krb_tgs_req(sname: &[&str], till: i64) -> Vec<u8> {
    krb_req(12, None, sname, till)
}

/// An AS-REQ (msg-type 10) or TGS-REQ (12): client `cname` (AS-REQ),
/// service `sname`, without padata.
pub fn krb_req(msg_type: u8, cname: Option<&str>, sname: &[&str], till: i64) -> Vec<u8> {
    let mut body = der_ctx(0, der(0x03, &[0, 0x40, 0x81, 0, 0x10]));
    if let Some(c) = cname {
        body.extend(der_ctx(1, der_name(1, &[c])));
    }
    body.extend(der_ctx(2, der_gstr(KRB_REALM)));
    body.extend(der_ctx(3, der_name(2, sname)));
    body.extend(der_ctx(5, der_time(till)));
    body.extend(der_ctx(7, der(0x02, &[0x12, 0x34, 0x56, 0x78])));
    body.extend(der_ctx(8, der(0x30, &[der_int(18), der_int(17)].concat())));
    let mut s = der_ctx(1, der_int(5));
    s.extend(der_ctx(2, der_int(msg_type)));
    s.extend(der_ctx(4, der(0x30, &body)));
    der(0x60 | msg_type, &der(0x30, &s))
}

/// EncryptedData (RFC 4120 §5.2.9): AES256 (etype 18), `n` bytes of
/// cipher text.
fn der_enc(n: usize, seed: u64) -> Vec<u8> {
    let mut s = der_ctx(0, der_int(18));
    s.extend(der_ctx(1, der_int(2)));
    s.extend(der_ctx(2, der(0x04, &filler(n, seed))));
    der(0x30, &s)
}

/// An AS-REP (msg-type 11) or TGS-REP (13) for `cname`: a ticket for
/// `sname` (RFC 4120 §5.4.2, §5.3), the encrypted parts filler.
pub fn krb_rep(msg_type: u8, cname: &str, sname: &[&str], seed: u64) -> Vec<u8> {
    let mut t = der_ctx(0, der_int(5));
    t.extend(der_ctx(1, der_gstr(KRB_REALM)));
    t.extend(der_ctx(2, der_name(2, sname)));
    t.extend(der_ctx(3, der_enc(900, seed)));
    let ticket = der(0x61, &der(0x30, &t));
    let mut s = der_ctx(0, der_int(5));
    s.extend(der_ctx(1, der_int(msg_type)));
    s.extend(der_ctx(3, der_gstr(KRB_REALM)));
    s.extend(der_ctx(4, der_name(1, &[cname])));
    s.extend(der_ctx(5, ticket));
    s.extend(der_ctx(6, der_enc(300, seed + 1)));
    der(0x60 | msg_type, &der(0x30, &s))
}

/// The master secret of every synthetic keyed session: the ClientHello and
/// ServerHello randoms are fixed (`filler(32, 0xC1)` / `filler(32, 0x5E)`),
/// so one key-log line ([`keyed_keylog`]) opens all of them.
pub fn keyed_master() -> Vec<u8> {
    filler(48, 0x3A)
}

/// The NSS key-log line for the synthetic keyed sessions.
pub fn keyed_keylog() -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "# rdpsift's synthetic keyed sessions (src/synth.rs)\nCLIENT_RANDOM {} {}\n",
        hex(&filler(32, 0xC1)),
        hex(&keyed_master())
    )
}

/// One side's TLS 1.2 AES-256-GCM record sealer (RFC 5288: a 4-byte
/// implicit salt, the sequence number as the 8-byte explicit nonce).
pub struct Seal {
    key: Vec<u8>,
    salt: Vec<u8>,
    seq: u64,
}

/// The client's and the server's sealers of the synthetic keyed sessions
/// (ECDHE-RSA-AES256-GCM-SHA384, the suite of `tls_server_flight(0xc030)`),
/// derived by the library's own key schedule.
pub fn keyed_seals() -> [Seal; 2] {
    use crate::proto::tls_crypt::{key_block, Suite};
    let suite = Suite::of(0xc030, 0x0303).expect("suite");
    let cr: [u8; 32] = filler(32, 0xC1).try_into().expect("32");
    let sr: [u8; 32] = filler(32, 0x5E).try_into().expect("32");
    let (c, s) = key_block(suite, 0x0303, &keyed_master(), &cr, &sr);
    [c, s].map(|k| Seal {
        key: k.key,
        salt: k.iv,
        seq: 0,
    })
}

impl Seal {
    /// A record of type `typ` carrying `plain`.
    pub fn record(&mut self, typ: u8, plain: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let explicit = self.seq.to_be_bytes();
        let mut nonce = self.salt.clone();
        nonce.extend_from_slice(&explicit);
        let mut aad = explicit.to_vec();
        aad.extend_from_slice(&[typ, 0x03, 0x03]);
        aad.extend_from_slice(&(plain.len() as u16).to_be_bytes());
        let ct = aes_gcm::Aes256Gcm::new_from_slice(&self.key)
            .expect("key")
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("seal");
        self.seq += 1;
        let mut body = explicit.to_vec();
        body.extend(ct);
        tls_record(typ, &body)
    }

    /// Application data.
    pub fn app(&mut self, plain: &[u8]) -> Vec<u8> {
        self.record(23, plain)
    }
}

/// The side's end of the TLS 1.2 handshake, with the Finished sealed:
/// ClientKeyExchange (client), ChangeCipherSpec, Finished.
pub fn keyed_finish(seal: &mut Seal, client: bool) -> Vec<u8> {
    let mut v = Vec::new();
    if client {
        let mut kx = vec![65];
        kx.extend(filler(65, 31));
        v.extend(tls_record(22, &handshake_msg(16, &kx)));
    }
    v.extend(tls_record(20, &[1]));
    let mut fin = vec![20, 0, 0, 12];
    fin.extend(filler(12, if client { 41 } else { 42 }));
    v.extend(seal.record(22, &fin));
    v
}

/// A CredSSP TSRequest (MS-CSSP 2.2.1) with an NTLM token, pubKeyAuth,
/// authInfo and errorCode as given (errorCode as the 4-byte signed
/// INTEGER Windows sends).
pub fn ts_request(
    version: u8,
    token: Option<&[u8]>,
    auth_info: bool,
    pub_key_auth: bool,
    error: Option<u32>,
) -> Vec<u8> {
    let mut c = der(0xa0, &der(0x02, &[version]));
    if let Some(t) = token {
        let item = der(0x30, &der(0xa0, &der(0x04, t)));
        c.extend(der(0xa1, &der(0x30, &item)));
    }
    if auth_info {
        c.extend(der(0xa2, &der(0x04, &filler(90, 7))));
    }
    if pub_key_auth {
        c.extend(der(0xa3, &der(0x04, &filler(46, 8))));
    }
    if let Some(e) = error {
        c.extend(der(0xa4, &der(0x02, &e.to_be_bytes())));
    }
    if version >= 5 && token.is_some() {
        c.extend(der(0xa5, &der(0x04, &filler(32, 9))));
    }
    der(0x30, &c)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// NTLMSSP NEGOTIATE (1), CHALLENGE (2) or AUTHENTICATE (3) (MS-NLMP
/// 2.2.1): AUTHENTICATE names `domain\user` on `workstation`.
pub fn ntlm(msg: u32, user: &str, domain: &str, workstation: &str) -> Vec<u8> {
    let mut v = b"NTLMSSP\0".to_vec();
    v.extend(msg.to_le_bytes());
    match msg {
        3 => {
            let (d, u, w) = (utf16(domain), utf16(user), utf16(workstation));
            let lm = [0u8; 24];
            let nt = filler(48, 11);
            let mut payload = Vec::new();
            let mut field = |b: &[u8], fields: &mut Vec<u8>| {
                let off = 88 + payload.len();
                fields.extend((b.len() as u16).to_le_bytes());
                fields.extend((b.len() as u16).to_le_bytes());
                fields.extend((off as u32).to_le_bytes());
                payload.extend_from_slice(b);
            };
            let mut fields = Vec::new();
            for b in [&lm[..], &nt, &d, &u, &w, &filler(16, 12)] {
                field(b, &mut fields);
            }
            v.extend(fields);
            v.extend(0xE288_8215u32.to_le_bytes()); // NEGOTIATE_UNICODE among them
            v.extend([10, 0, 0x61, 0x4a, 0, 0, 0, 15]);
            v.extend(filler(16, 13)); // MIC
            v.extend(payload);
        }
        2 => {
            v.extend([0, 0, 0, 0, 0, 0, 0, 0]);
            v.extend(0xE28A_8215u32.to_le_bytes());
            v.extend(filler(8, 14));
            v.extend([0u8; 8]);
            v.extend(filler(120, 15));
        }
        _ => {
            v.extend(0xE208_82B7u32.to_le_bytes());
            v.extend([0u8; 16]);
            v.extend([10, 0, 0x61, 0x4a, 0, 0, 0, 15]);
        }
    }
    v
}

/// A TPKT with an X.224 Data TPDU around an MCS PDU.
pub fn tpkt_dt(mcs: &[u8]) -> Vec<u8> {
    let mut v = vec![0x03, 0x00];
    v.extend(((mcs.len() + 7) as u16).to_be_bytes());
    v.extend([0x02, 0xf0, 0x80]);
    v.extend_from_slice(mcs);
    v
}

/// MCS SendDataRequest (client, `request`) or SendDataIndication
/// (server) on the I/O channel 1003 around `d` (T.125, PER).
pub fn mcs_send(request: bool, d: &[u8]) -> Vec<u8> {
    let mut b = vec![
        if request { 0x64 } else { 0x68 },
        0x00,
        0x06,
        0x03,
        0xeb,
        0x70,
    ];
    if d.len() < 0x80 {
        b.push(d.len() as u8);
    } else {
        b.extend([0x80 | (d.len() >> 8) as u8, d.len() as u8]);
    }
    b.extend_from_slice(d);
    b
}

/// A Share Control PDU of `typ` (Demand Active 1, Confirm Active 3 …,
/// MS-RDPBCGR 2.2.8.1.1.1.1) with `body`.
pub fn share_control(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut d = ((6 + body.len()) as u16).to_le_bytes().to_vec();
    d.extend((0x10 | typ).to_le_bytes());
    d.extend(1002u16.to_le_bytes());
    d.extend_from_slice(body);
    d
}

/// A Share Data PDU of type `t2` (Set Error Info 0x2F, Save Session Info
/// 0x26 …) with `body`.
pub fn share_data(t2: u8, body: &[u8]) -> Vec<u8> {
    let mut h = 0x0001_03eau32.to_le_bytes().to_vec(); // shareId
    h.extend([0, 1]);
    h.extend(((body.len() + 4) as u16).to_le_bytes());
    h.extend([t2, 0, 0, 0]);
    h.extend_from_slice(body);
    share_control(7, &h)
}

/// The server's Set Error Info PDU (2.2.5.1.1) in its TPKT.
pub fn set_error_info(code: u32) -> Vec<u8> {
    tpkt_dt(&mcs_send(false, &share_data(0x2f, &code.to_le_bytes())))
}

/// The client's Client Info PDU (2.2.1.11.1.1, Unicode) for `domain\user`,
/// with `security` the basic security header's flags (SEC_INFO_PKT).
pub fn client_info(user: &str, domain: &str) -> Vec<u8> {
    let (d, u) = (utf16(domain), utf16(user));
    let mut b = 0x0040u32.to_le_bytes().to_vec(); // SEC_INFO_PKT, flagsHi 0
    b.extend(0u32.to_le_bytes()); // code page
    b.extend(0x0001_0013u32.to_le_bytes()); // INFO_MOUSE | INFO_UNICODE …
    for n in [d.len(), u.len(), 0, 0, 0] {
        b.extend((n as u16).to_le_bytes());
    }
    for s in [&d, &u, &vec![], &vec![], &vec![]] {
        b.extend_from_slice(s);
        b.extend([0, 0]);
    }
    tpkt_dt(&mcs_send(true, &b))
}

/// The server's License Error PDU (MS-RDPELE 2.2.2.7.1 in 2.2.1.12.1.3):
/// `code` (7 STATUS_VALID_CLIENT is the normal answer), state transition
/// `st` (2 ST_NO_TRANSITION).
pub fn license_error(code: u32, st: u32) -> Vec<u8> {
    let mut b = vec![0x80, 0x00, 0x00, 0x00, 0xff, 0x03, 0x10, 0x00];
    b.extend(code.to_le_bytes());
    b.extend(st.to_le_bytes());
    b.extend([0x04, 0x00, 0x00, 0x00]);
    tpkt_dt(&mcs_send(false, &b))
}

/// The server's Save Session Info PDU with a logon error notification
/// (2.2.10.1.1.4.1.1): INFOTYPE_LOGON_EXTENDED_INFO, LOGON_EX_LOGONERRORS.
pub fn logon_error(typ: u32, data: u32) -> Vec<u8> {
    let mut p = 3u32.to_le_bytes().to_vec();
    p.extend([14, 0]);
    p.extend(2u32.to_le_bytes());
    p.extend(8u32.to_le_bytes());
    p.extend(typ.to_le_bytes());
    p.extend(data.to_le_bytes());
    p.extend([0u8; 570 - 14]);
    tpkt_dt(&mcs_send(false, &share_data(0x26, &p)))
}

/// A fast-path update (2.2.9.1.2) of `n` bytes in all.
pub fn fastpath_pdu(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0x00, 0x80 | (n >> 8) as u8, n as u8];
    v.extend(filler(n - 3, seed));
    v
}

/// The server's Server Redirection PDU (MS-RDPBCGR 2.2.13.3.1, Enhanced
/// Security: a Share Control PDU of type 0xA) sending the client to the
/// address `target` with the routing token `token`.
pub fn server_redirection(target: &str, token: &str) -> Vec<u8> {
    let mut addr = utf16(target);
    addr.extend([0, 0]);
    let mut r = vec![0x00, 0x04, 0, 0]; // SEC_REDIRECTION_PKT, length later
    r.extend(7u32.to_le_bytes()); // session id
    r.extend(0x3u32.to_le_bytes()); // LB_TARGET_NET_ADDRESS | LB_LOAD_BALANCE_INFO
    r.extend((addr.len() as u32).to_le_bytes());
    r.extend(&addr);
    r.extend((token.len() as u32).to_le_bytes());
    r.extend(token.as_bytes());
    let n = r.len() as u16;
    r[2..4].copy_from_slice(&n.to_le_bytes());
    let mut body = vec![0, 0];
    body.extend(r);
    tpkt_dt(&mcs_send(false, &share_control(0xA, &body)))
}
