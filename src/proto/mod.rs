//! proto: what the reassembled byte streams say. [`probe`] recognises RDP
//! (and TLS/HTTP) by content; [`x224`], [`mcs`] and [`tls`] parse the
//! connection sequence; [`App`] frames each direction into TPKTs, fast-path
//! PDUs or TLS records and records the facts with the frame that completed
//! them ([`Facts`], [`Step`]).

pub mod dns;
pub mod error;
pub mod keylog;
pub mod krb;
pub mod mcs;
pub mod probe;
pub mod rdpeudp;
pub mod tls;
pub mod tls_crypt;
pub mod x224;

pub use probe::{AppClass, Via};

use crate::capture::{Mark, Pos};
use crate::finding::Dir;
use x224::{ConnReq, NegResult, Tpdu};

/// A piece of one direction's ordered byte stream, as reassembly hands it
/// over. `Gap(n)`: n bytes that will never come (capture loss, a snap
/// length cut).
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// Bytes past the stream depth: the parsers follow their framing (TLS
    /// record and TPKT/fast-path headers) and keep nothing else.
    Beyond(&'a [u8]),
    Gap(u64),
}

/// A milestone of the connection sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    ConnectionRequest,
    ConnectionConfirm,
    /// X.224 Disconnect Request from this side.
    Disconnect(Dir),
    McsConnectInitial,
    McsConnectResponse,
    ClientHello,
    ServerHello,
    ServerCertificate,
    /// A plaintext or encrypted alert from this side.
    Alert(Dir),
    TlsDone,
}

/// Steps remembered per flow (the sequence has about ten).
const MAX_STEPS: usize = 32;
/// Bytes of server stream held before the client stream is classified.
const MAX_WAIT: usize = probe::MAX_PROBE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Server side, before the class is known (or the tunnel reply).
    #[default]
    Wait,
    Tpkt,
    Tls,
    /// Kerberos over TCP: 4-byte length, message (RFC 4120 §7.2.2).
    Krb,
    /// Nothing more to parse (not RDP/TLS, a capture hole, or malformed).
    Off,
}

#[derive(Debug, Clone, Default)]
struct Stream {
    mode: Mode,
    buf: Vec<u8>,
    /// Bytes of the current record still to skip unread.
    skip: usize,
    /// The bytes being parsed are past the stream depth: headers only.
    beyond: bool,
}

/// Past the depth, a unit this small is still read whole (a TLS alert, the
/// 9-byte MCS Disconnect Provider Ultimatum); larger ones are skipped
/// after their header.
const BEYOND_READ: usize = 16;

/// The MCS Disconnect Provider Ultimatum in a TPKT (T.125, reason
/// rn-user-requested): `03 00 00 09 02 f0 80 21 80`, 9 bytes of plaintext
/// under TLS (PROTOCOLS.md §8) and in the clear under Standard RDP
/// Security, where MCS headers are not encrypted.
pub const ULTIMATUM: [u8; 9] = [0x03, 0x00, 0x00, 0x09, 0x02, 0xf0, 0x80, 0x21, 0x80];

/// Facts the parsers established, each with the frame that completed it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub cr: Option<(ConnReq, Mark)>,
    pub cc: Option<(NegResult, Mark)>,
    pub client_data: Option<(mcs::ClientData, Mark)>,
    pub server_data: Option<(mcs::ServerData, Mark)>,
    /// Plaintext slow-path and fast-path PDUs after the confirm, per side.
    pub pdus: [u64; 2],
    pub tls: tls::Tls,
    /// The first malformed unit: side, where (the frame that completed
    /// it and the unit's offset in the stream), what.
    pub malformed: Option<(Dir, Pos, error::Error)>,
    /// A capture hole stopped parsing this side.
    pub gap: [bool; 2],
    /// A parser bound stopped parsing (what was too big).
    pub bounded: Option<&'static str>,
    pub steps: Vec<(Step, Mark)>,
    /// The last plaintext TPKT or fast-path PDU per side (Standard RDP
    /// Security: the framing stays readable to the end).
    pub last_pdu: [Option<Mark>; 2],
    /// A plaintext MCS Disconnect Provider Ultimatum per side (the last).
    pub ultimatum: [Option<Mark>; 2],
    /// DNS queries and answers (flows to port 53).
    pub dns: dns::Dns,
    /// Kerberos messages (flows to port 88).
    pub krb: krb::Krb,
    /// RDP over UDP / gateway DTLS (UDP flows on RDP ports or found by content).
    pub udp: rdpeudp::Udp,
}

impl Facts {
    fn step(&mut self, s: Step, at: Mark) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push((s, at));
        }
    }

    /// The first time a step was reached.
    pub fn when(&self, s: Step) -> Option<Mark> {
        self.steps.iter().find(|(x, _)| *x == s).map(|(_, m)| *m)
    }

    /// The server's certificate (TLS, or the Standard RDP Security X.509
    /// chain of the MCS Connect Response), the frame that carried it and
    /// the chain's length.
    pub fn server_cert(&self) -> Option<(tls::CertInfo, Mark, usize)> {
        if let Some((chain, at)) = &self.tls.certs {
            return chain.first().map(|c| (c.clone(), *at, chain.len()));
        }
        if let Some((sd, at)) = &self.server_data {
            if let Some(mcs::ServerCert::X509 { chain, .. }) = &sd.cert {
                // MS-RDPBCGR 2.2.1.4.3.1: the server's certificate comes last.
                return chain
                    .last()
                    .map(|der| (tls::cert_info(der), *at, chain.len()));
            }
        }
        None
    }

    /// The negotiated protocol, when the server answered with RDP_NEG_RSP.
    pub fn selected(&self) -> Option<x224::Protocols> {
        match self.cc {
            Some((NegResult::Rsp { selected, .. }, _)) => Some(selected),
            _ => None,
        }
    }
}

/// Per-flow application state fed with the ordered client and server
/// streams. Memory per flow is bounded: the probe prefix
/// ([`probe::MAX_PROBE`]), one TPKT (64 KiB) or TLS record
/// ([`tls::MAX_RECORD`]) per side, one handshake message
/// ([`tls::MAX_HANDSHAKE`]).
#[derive(Debug, Clone, Default)]
pub struct App {
    pub class: AppClass,
    prefix: Vec<u8>,
    /// Stream offset just past the last byte fed, per direction (client,
    /// server): from the chunks' positions.
    seen: [u64; 2],
    streams: [Stream; 2],
    /// Allocated when a parser first has something to say (most flows of a
    /// busy capture never do): [`App::facts`].
    facts: Option<Box<Facts>>,
    /// The flow is on an RDP port: a stream that does not start as RDP is
    /// parsed as TPKTs anyway, so that what is wrong with it is reported.
    pub rdp_port: bool,
    /// The flow is on the Kerberos port: both streams are KDC messages.
    pub krb_port: bool,
    /// Stream offset of the unit being parsed (for `Facts::malformed`).
    unit_at: u64,
}

static NO_FACTS: std::sync::LazyLock<Facts> = std::sync::LazyLock::new(Facts::default);

impl App {
    /// What the parsers established (empty until they did).
    pub fn facts(&self) -> &Facts {
        self.facts.as_deref().unwrap_or(&NO_FACTS)
    }

    /// Mutable facts, allocated on first use.
    pub fn facts_mut(&mut self) -> &mut Facts {
        self.facts.get_or_insert_with(Box::default)
    }

    /// The flow ended: drop the parsing buffers, keep the facts.
    pub fn finish(&mut self) {
        self.prefix = Vec::new();
        self.streams = Default::default();
        if let Some(f) = self.facts.as_mut() {
            f.tls.finish();
            f.steps.shrink_to_fit();
        }
    }

    fn fx(&mut self) -> &mut Facts {
        self.facts_mut()
    }

    /// True once the content class is known.
    pub fn decided(&self) -> bool {
        self.class != AppClass::Unknown
    }

    /// Bytes of one direction's stream; `pos` is where the first of them
    /// came from (the frame that delivered them and their stream offset).
    pub fn feed(&mut self, dir: Dir, chunk: Chunk<'_>, pos: Pos) {
        let at = pos.at;
        match chunk {
            Chunk::Data(b) => {
                self.seen[dir] = pos.offset + b.len() as u64;
                if self.class == AppClass::Unknown {
                    if dir == Dir::Client {
                        self.classify(b, at);
                    } else {
                        self.hold_server(b);
                    }
                } else {
                    self.parse(dir, b, at, false);
                }
            }
            Chunk::Beyond(b) => {
                self.seen[dir] = pos.offset + b.len() as u64;
                if self.class == AppClass::Unknown {
                    // A depth below the probe's reach: nothing to match.
                    self.class = AppClass::Other;
                    self.prefix = Vec::new();
                    self.stop(dir);
                } else {
                    self.parse(dir, b, at, true);
                }
            }
            Chunk::Gap(n) => {
                self.seen[dir] = pos.offset + n;
                if dir == Dir::Client && self.class == AppClass::Unknown {
                    // Content after a hole cannot be matched from its start.
                    self.class = AppClass::Other;
                    self.prefix = Vec::new();
                }
                if self.streams[dir].mode != Mode::Off && self.class != AppClass::Other {
                    self.fx().gap[dir] = true;
                }
                self.stop(dir);
            }
        }
    }

    fn stop(&mut self, dir: Dir) {
        self.streams[dir] = Stream {
            mode: Mode::Off,
            ..Default::default()
        };
    }

    fn hold_server(&mut self, b: &[u8]) {
        let s = &mut self.streams[Dir::Server];
        if s.buf.len() + b.len() > MAX_WAIT {
            self.fx().bounded =
                Some("the server sent over 2 KiB before the client's stream was recognised");
            self.stop(Dir::Server);
        } else {
            s.buf.extend_from_slice(b);
        }
    }

    fn classify(&mut self, b: &[u8], at: Mark) {
        if self.krb_port {
            self.class = AppClass::Other;
            self.streams[Dir::Client].mode = Mode::Krb;
            self.streams[Dir::Server].mode = Mode::Krb;
            let held = std::mem::take(&mut self.streams[Dir::Server].buf);
            self.parse(Dir::Client, b, at, false);
            if !held.is_empty() {
                self.parse(Dir::Server, &held, at, false);
            }
            return;
        }
        let room = probe::MAX_PROBE - self.prefix.len();
        let took = b.len().min(room);
        self.prefix.extend_from_slice(&b[..took]);
        self.class = probe::classify(&self.prefix);
        if self.class == AppClass::Unknown && self.prefix.len() >= probe::MAX_PROBE {
            self.class = AppClass::Other;
        }
        if !self.decided() {
            return;
        }
        let prefix = std::mem::take(&mut self.prefix);
        let held = std::mem::take(&mut self.streams[Dir::Server].buf);
        let (cmode, smode, start) = match self.class {
            AppClass::Rdp {
                offset,
                via: Via::Direct | Via::Preconnection,
            } => (Mode::Tpkt, Mode::Tpkt, offset),
            AppClass::Rdp { offset, .. } => (Mode::Tpkt, Mode::Wait, offset),
            AppClass::Tls => (Mode::Tls, Mode::Tls, 0),
            _ if self.rdp_port => (Mode::Tpkt, Mode::Tpkt, 0),
            _ => (Mode::Off, Mode::Off, 0),
        };
        self.streams[Dir::Client].mode = cmode;
        self.streams[Dir::Server].mode = smode;
        // The prefix may have stopped short of this chunk's end.
        let mut client = prefix;
        client.extend_from_slice(&b[took..]);
        if start <= client.len() {
            self.parse(Dir::Client, &client[start..], at, false);
        }
        if !held.is_empty() {
            self.parse(Dir::Server, &held, at, false);
        }
    }

    fn parse(&mut self, dir: Dir, b: &[u8], at: Mark, beyond: bool) {
        let mut s = std::mem::take(&mut self.streams[dir]);
        s.beyond = beyond;
        let mut b = b;
        if s.skip > 0 {
            let n = s.skip.min(b.len());
            s.skip -= n;
            b = &b[n..];
        }
        if s.mode != Mode::Off && !b.is_empty() {
            if s.buf.is_empty() {
                // The parsed bytes end at what has been seen of the stream.
                let base = self.seen[dir].saturating_sub(b.len() as u64);
                let used = self.units(dir, &mut s, b, at, base);
                let rest = &b[used.min(b.len())..];
                if s.mode != Mode::Off && s.skip == 0 {
                    s.buf.extend_from_slice(rest);
                }
            } else {
                let mut buf = std::mem::take(&mut s.buf);
                buf.extend_from_slice(b);
                let base = self.seen[dir].saturating_sub(buf.len() as u64);
                let used = self.units(dir, &mut s, &buf, at, base);
                if s.mode != Mode::Off && s.skip == 0 {
                    buf.drain(..used.min(buf.len()));
                    s.buf = buf;
                }
            }
        }
        if s.mode == Mode::Off {
            s.buf = Vec::new();
        }
        self.streams[dir] = s;
    }

    fn malformed(&mut self, dir: Dir, at: Mark, e: error::Error) {
        if self.fx().malformed.is_none() {
            let unit = self.unit_at;
            self.fx().malformed = Some((dir, Pos::new(at, unit), e));
        }
    }

    /// Consumes whole units from `b`; returns the bytes used. A unit whose
    /// body is skipped unread sets `s.skip` to what is still to come.
    /// `base` is the stream offset of `b[0]`.
    fn units(&mut self, dir: Dir, s: &mut Stream, b: &[u8], at: Mark, base: u64) -> usize {
        let mut off = 0;
        loop {
            self.unit_at = base + off as u64;
            let rest = &b[off..];
            if rest.is_empty() {
                return off;
            }
            match s.mode {
                Mode::Off => return off,
                Mode::Wait => {
                    // Server: find the Connection Confirm after a tunnel reply.
                    match x224::find_confirm(rest) {
                        Some(p) => {
                            off += p;
                            s.mode = Mode::Tpkt;
                        }
                        None if rest.len() > MAX_WAIT => {
                            s.mode = Mode::Off;
                            return off;
                        }
                        None => return off,
                    }
                }
                Mode::Tpkt => {
                    if rest[0] == x224::TPKT_LEN as u8 - 1 {
                        let len = match x224::tpkt_len(rest) {
                            Ok(l) => l,
                            Err(e) if e.is_need_more() => return off,
                            Err(e) => {
                                self.malformed(dir, at, e);
                                s.mode = Mode::Off;
                                return off;
                            }
                        };
                        if s.beyond && len > BEYOND_READ {
                            // Past the depth: count it, skip its body.
                            self.fx().pdus[dir] += 1;
                            self.fx().last_pdu[dir] = Some(at);
                            if rest.len() < len {
                                s.skip = len - rest.len();
                                return b.len();
                            }
                            off += len;
                            continue;
                        }
                        if rest.len() < len {
                            return off;
                        }
                        self.tpdu(dir, &rest[..len], at);
                        off += len;
                    } else if tls::looks_like_record(rest) {
                        s.mode = Mode::Tls;
                    } else if self.fx().cc.is_some() || self.fx().client_data.is_some() {
                        match x224::fastpath_len(rest) {
                            Ok(l) => {
                                self.fx().pdus[dir] += 1;
                                self.fx().last_pdu[dir] = Some(at);
                                if rest.len() < l {
                                    s.skip = l - rest.len();
                                    return b.len();
                                }
                                off += l;
                            }
                            Err(e) if e.is_need_more() => return off,
                            Err(e) => {
                                self.malformed(dir, at, e);
                                s.mode = Mode::Off;
                                return off;
                            }
                        }
                    } else {
                        self.malformed(
                            dir,
                            at,
                            error::Error::malformed(
                                error::Layer::Tpkt,
                                0,
                                format!("{dir} data starts with 0x{:02x}, not a TPKT", rest[0]),
                            ),
                        );
                        s.mode = Mode::Off;
                        return off;
                    }
                }
                Mode::Krb => {
                    let len = match krb::tcp_len(rest) {
                        Ok(l) => l,
                        Err(e) if e.is_need_more() => return off,
                        Err(e) => {
                            self.malformed(dir, at, e);
                            s.mode = Mode::Off;
                            return off;
                        }
                    };
                    if rest.len() < 4 + len {
                        return off;
                    }
                    self.fx().krb.message(dir, &rest[4..4 + len], at);
                    off += 4 + len;
                }
                Mode::Tls => {
                    let (typ, len) = match tls::record_header(rest) {
                        Ok(h) => (h.typ, h.len),
                        Err(e) if e.is_need_more() => return off,
                        Err(e) => {
                            self.malformed(dir, at, e);
                            s.mode = Mode::Off;
                            return off;
                        }
                    };
                    let skip_body = typ == tls::APP_DATA
                        || (typ == tls::HANDSHAKE && self.fx().tls.ccs[dir].is_some())
                        || (s.beyond && len > BEYOND_READ);
                    if skip_body {
                        self.tls_record(dir, typ, len, None, at);
                        if rest.len() < 5 + len {
                            s.skip = 5 + len - rest.len();
                            return b.len();
                        }
                    } else {
                        if rest.len() < 5 + len {
                            return off;
                        }
                        self.tls_record(dir, typ, len, Some(&rest[5..5 + len]), at);
                    }
                    off += 5 + len;
                }
            }
        }
    }

    fn tls_record(&mut self, dir: Dir, typ: u8, len: usize, body: Option<&[u8]>, at: Mark) {
        let t = &mut self.fx().tls;
        let had = (
            t.client_hello.is_some(),
            t.server_hello.is_some(),
            t.certs.is_some(),
            t.done.is_some(),
        );
        let alerts = t.alerts.len();
        if let Err(e) = t.record(dir, typ, len, body, at) {
            self.malformed(
                dir,
                at,
                error::Error::malformed(error::Layer::TlsHandshake, 0, e),
            );
        }
        if self.fx().tls.bound_hit {
            self.fx().bounded = Some("a TLS handshake message over 256 KiB was not parsed");
        }
        let t = &self.fx().tls;
        let now = (
            t.client_hello.is_some(),
            t.server_hello.is_some(),
            t.certs.is_some(),
            t.done.is_some(),
        );
        let alert = t.alerts.len() > alerts;
        if now.0 && !had.0 {
            self.fx().step(Step::ClientHello, at);
        }
        if now.1 && !had.1 {
            self.fx().step(Step::ServerHello, at);
        }
        if now.2 && !had.2 {
            self.fx().step(Step::ServerCertificate, at);
        }
        if now.3 && !had.3 {
            self.fx().step(Step::TlsDone, at);
        }
        if alert {
            self.fx().step(Step::Alert(dir), at);
        }
    }

    fn tpdu(&mut self, dir: Dir, pdu: &[u8], at: Mark) {
        let t = match x224::parse(pdu) {
            Ok(t) => t,
            Err(e) => {
                // Keep what the request still tells (the cookie) when only
                // the negotiation part is bad.
                if dir == Dir::Server
                    && pdu.len() > x224::field::CODE
                    && pdu[x224::field::CODE] & 0xF0 == x224::CC
                    && self.fx().cc.is_none()
                {
                    self.fx().step(Step::ConnectionConfirm, at);
                }
                self.malformed(dir, at, e);
                return;
            }
        };
        match t {
            Tpdu::ConnReq(r) if dir == Dir::Client && self.fx().cr.is_none() => {
                self.fx().cr = Some((r, at));
                self.fx().step(Step::ConnectionRequest, at);
            }
            Tpdu::ConnConfirm(n) if dir == Dir::Server && self.fx().cc.is_none() => {
                self.fx().cc = Some((n, at));
                self.fx().step(Step::ConnectionConfirm, at);
            }
            Tpdu::Disconnect => self.fx().step(Step::Disconnect(dir), at),
            Tpdu::Data { offset } => {
                let data = &pdu[offset..];
                self.fx().last_pdu[dir] = Some(at);
                if pdu == ULTIMATUM {
                    self.fx().ultimatum[dir] = Some(at);
                }
                // BER application tags 101 / 102 (T.125).
                if dir == Dir::Client
                    && data.starts_with(&[0x7f, 0x65])
                    && self.fx().client_data.is_none()
                {
                    if let Some(c) = mcs::client_data(data) {
                        self.fx().client_data = Some((c, at));
                    }
                    self.fx().step(Step::McsConnectInitial, at);
                } else if dir == Dir::Server
                    && data.starts_with(&[0x7f, 0x66])
                    && self.fx().server_data.is_none()
                {
                    if let Some(c) = mcs::server_data(data) {
                        self.fx().server_data = Some((c, at));
                    }
                    self.fx().step(Step::McsConnectResponse, at);
                } else {
                    self.fx().pdus[dir] += 1;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const C: Dir = Dir::Client;
    const S: Dir = Dir::Server;

    /// A position at offset 0: these tests do not look at positions
    /// (`a_malformed_unit_is_placed_at_its_stream_offset` does).
    fn p(frame: u64) -> Pos {
        Pos::new(m(frame), 0)
    }

    fn m(frame: u64) -> Mark {
        Mark {
            frame,
            ts: frame as i64,
        }
    }

    fn cr() -> Vec<u8> {
        let mut b = vec![0x03, 0x00, 0x00, 0x2b, 0x26, 0xe0, 0, 0, 0, 0, 0];
        b.extend_from_slice(b"Cookie: mstshash=rzhou\r\n");
        b.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]);
        b
    }

    const CC_HYBRID: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x01, 0x08, 0x00,
        0x02, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn cr_split_then_cc_then_tls() {
        let mut a = App::default();
        let b = cr();
        a.feed(C, Chunk::Data(&b[..5]), p(4));
        assert!(!a.decided());
        a.feed(C, Chunk::Data(&b[5..]), p(5));
        assert!(matches!(a.class, AppClass::Rdp { .. }));
        assert_eq!(a.facts().cr.as_ref().unwrap().1, m(5));
        // ClientHello starts right after the CR (in the same direction).
        a.feed(
            C,
            Chunk::Data(&[0x16, 0x03, 0x01, 0x00, 0x04, 1, 0, 0, 0]),
            p(8),
        );
        a.feed(S, Chunk::Data(&CC_HYBRID), p(6));
        assert_eq!(a.facts().selected().unwrap().to_string(), "HYBRID");
        // A server record split over two segments, then app data skipped.
        a.feed(S, Chunk::Data(&[0x15, 0x03, 0x03, 0x00]), p(9));
        a.feed(
            S,
            Chunk::Data(&[0x02, 0x02, 0x28, 0x17, 0x03, 0x03, 0x00, 0x10, 1, 2]),
            p(10),
        );
        assert_eq!(a.facts().tls.alerts[0].desc, 40);
        assert_eq!(a.facts().tls.alerts[0].at, m(10));
        let steps: Vec<Step> = a.facts().steps.iter().map(|s| s.0).collect();
        assert_eq!(
            steps,
            vec![
                Step::ConnectionRequest,
                Step::ConnectionConfirm,
                Step::Alert(Dir::Server)
            ]
        );
    }

    #[test]
    fn gap_stops_parsing_and_is_remembered() {
        let mut a = App::default();
        a.feed(C, Chunk::Data(&cr()), p(1));
        a.feed(S, Chunk::Gap(100), p(2));
        a.feed(S, Chunk::Data(&CC_HYBRID), p(3));
        assert!(a.facts().cc.is_none());
        assert!(a.facts().gap[S]);
    }

    #[test]
    fn server_bytes_before_classification_and_socks_reply() {
        let mut a = App::default();
        // SOCKS5 greeting and connect, split so the class waits.
        let mut c = vec![
            0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 198, 18, 0, 2, 0x0d, 0x3d,
        ];
        c.extend(cr());
        a.feed(C, Chunk::Data(&c[..3]), p(1));
        // Server method choice + connect reply + CC in one go.
        let mut s = vec![
            0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 198, 18, 0, 2, 0x0d, 0x3d,
        ];
        s.extend(CC_HYBRID);
        a.feed(S, Chunk::Data(&s), p(2));
        a.feed(C, Chunk::Data(&c[3..]), p(3));
        assert!(matches!(
            a.class,
            AppClass::Rdp {
                via: Via::Socks5,
                ..
            }
        ));
        assert_eq!(
            a.facts().cr.as_ref().unwrap().0.cookie.as_deref(),
            Some("rzhou")
        );
        assert_eq!(a.facts().cc.unwrap().1, m(3));
    }

    #[test]
    fn not_a_tpkt_is_malformed_and_bounded() {
        let mut a = App::default();
        a.feed(C, Chunk::Data(&cr()), p(1));
        a.feed(S, Chunk::Data(b"SSH-2.0-OpenSSH\r\n"), p(2));
        assert!(a.facts().cc.is_none());
        let big = vec![0u8; 5000];
        a.feed(S, Chunk::Data(&big), p(3));
        assert!(a.streams[S].buf.len() <= MAX_WAIT);
    }
    #[test]
    fn a_malformed_unit_is_placed_at_its_stream_offset() {
        let mut a = App::default();
        a.feed(C, Chunk::Data(&cr()), p(1));
        // A valid confirm, then 19 bytes in, split over two segments, bytes
        // that are neither a TPKT nor a valid fast-path header.
        let mut s = CC_HYBRID.to_vec();
        s.extend([0x04, 0x00, 0x00, 0x13]);
        a.feed(S, Chunk::Data(&s[..21]), Pos::new(m(2), 0));
        a.feed(S, Chunk::Data(&s[21..]), Pos::new(m(3), 21));
        let (dir, pos, e) = a.facts().malformed.clone().unwrap();
        assert_eq!((dir, pos.at.frame, pos.offset), (S, 2, 19));
        assert_eq!((e.layer, e.offset), (error::Layer::FastPath, 1));
        assert!(e.to_string().contains("fast-path length 0"), "{e}");
    }
}
