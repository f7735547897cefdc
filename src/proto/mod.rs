//! proto: what the reassembled byte streams say. [`probe`] recognises RDP
//! (and TLS/HTTP) by content; [`x224`], [`mcs`] and [`tls`] parse the
//! connection sequence; [`App`] frames each direction into TPKTs, fast-path
//! PDUs or TLS records and records the facts with the frame that completed
//! them ([`Facts`], [`Step`]).

pub mod credssp;
pub mod dns;
pub mod error;
pub mod gateway;
pub mod http;
pub mod inside;
pub mod keylog;
pub mod krb;
pub mod mcs;
pub mod probe;
pub mod rdp;
pub mod rdpeudp;
pub mod rts;
pub mod tls;
pub mod tls_crypt;
pub mod tsgu;
pub mod websocket;
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

/// What the start of a decrypted stream held.
enum Inner {
    Used(usize),
    More,
    Stop,
    /// Not CredSSP: TPKT or fast-path framing.
    NotMine,
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
    /// HTTP/1.x: an RD Gateway leg (plaintext, or decrypted), read by
    /// [`gateway::Leg`].
    Http,
    /// Nothing more to parse (not RDP/TLS, a capture hole, or malformed).
    Off,
}

#[derive(Debug, Clone, Default)]
struct Stream {
    mode: Mode,
    buf: Vec<u8>,
    /// Bytes of the current record still to skip unread.
    skip: usize,
    /// The decrypted stream inside TLS (CredSSP, then TPKTs).
    inner: bool,
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
    /// Kerberos messages of a TCP flow to port 88 (a UDP flow's are in
    /// the flow's [`crate::flow::Datagrams`]).
    pub krb: krb::Krb,
    /// What the decrypted TLS streams said (only when keys were given).
    pub inside: Option<Box<inside::Inside>>,
    /// An RD Gateway leg's HTTP, WebSocket and MS-TSGU (boxed: most flows
    /// are not legs).
    pub gateway: Option<Box<gateway::Leg>>,
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
    /// The run's TLS keys (none: nothing is decrypted, at no cost).
    pub keys: Option<std::sync::Arc<keylog::KeyLog>>,
    /// `--gateway` names (lower case): a CONNECT to one is a gateway leg.
    pub gateways: Option<std::sync::Arc<[String]>>,
    /// Record decryption, once keys for the session were found.
    crypt: Option<Box<Crypt>>,
    /// The RDP connection a gateway leg tunnels (DATA packets), parsed by
    /// an `App` of its own; taken by the flow stage when the leg ends.
    pub tunnel: Option<Box<App>>,
    /// Tunnelled bytes per side, and the first and last frame that
    /// carried some.
    pub tunnel_seen: [u64; 2],
    pub tunnel_span: [Option<(Mark, Mark)>; 2],
    /// An IN channel's tunnelled bytes, for the flow stage to hand to its
    /// OUT channel's tunnel ([`App::take_outbound`]).
    outbound: Vec<(Dir, Mark, Vec<u8>)>,
    outbound_len: usize,
    /// An RPC IN channel read requests its OUT channel has not had yet
    /// (a flag, so that the per-packet check stays one load).
    calls_pending: bool,
}

/// Tunnelled bytes an IN channel holds for its OUT channel between two
/// packets (one TLS record's worth, at most a few HTTP_PACKETs).
const MAX_OUTBOUND: usize = 1 << 20;

/// Past the depth, decrypted records up to this size are still read (Set
/// Error Info, the ultimatum, alerts); larger ones only advance the
/// sequence number.
const BEYOND_DECRYPT: usize = 1024;

/// Decryption state of one TLS session.
#[derive(Debug, Clone, Default)]
struct Crypt {
    /// Each side's decrypter, armed (TLS ≤ 1.2 at its ChangeCipherSpec).
    dec: [Option<tls_crypt::Decrypter>; 2],
    /// TLS ≤ 1.2: decrypters waiting for their side's ChangeCipherSpec.
    staged: [Option<tls_crypt::Decrypter>; 2],
    /// TLS 1.3: the application secret each side moves to after Finished.
    next: [Option<Vec<u8>>; 2],
    /// The decrypted byte streams, framed like plaintext ones.
    inner: [Stream; 2],
    seen: [u64; 2],
    source: u16,
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
        self.crypt = None;
        if let Some(f) = self.facts.as_mut() {
            if let Some(g) = f.gateway.as_mut() {
                g.finish();
            }
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

    /// True once the content says whether the flow matters: the class is
    /// known and, for HTTP, the first request told whether it is a gateway
    /// leg.
    pub fn settled(&self) -> bool {
        match self.class {
            AppClass::Unknown => false,
            AppClass::Http => self.facts().gateway.as_ref().is_some_and(|g| {
                g.kind.is_some() || g.not_http || !g.exchanges.is_empty() || g.malformed.is_some()
            }),
            _ => true,
        }
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
            AppClass::Http => (Mode::Http, Mode::Http, 0),
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
        let s = std::mem::take(&mut self.streams[dir]);
        let seen = self.seen[dir];
        let s = self.parse_on(s, seen, dir, b, at, beyond);
        self.streams[dir] = s;
    }

    /// Decrypted application data: the inner stream of `dir`.
    fn parse_inner(&mut self, dir: Dir, b: &[u8], at: Mark) {
        let h = &mut self.ins().head[dir];
        if h.len() < inside::HEAD {
            let n = (inside::HEAD - h.len()).min(b.len());
            h.extend_from_slice(&b[..n]);
        }
        let Some(c) = self.crypt.as_mut() else {
            return;
        };
        c.seen[dir] += b.len() as u64;
        let seen = c.seen[dir];
        let s = std::mem::take(&mut c.inner[dir]);
        let s = self.parse_on(s, seen, dir, b, at, false);
        if let Some(c) = self.crypt.as_mut() {
            c.inner[dir] = s;
        }
    }

    /// Frames `b` on stream `s`, whose bytes seen so far end at `seen`.
    fn parse_on(
        &mut self,
        mut s: Stream,
        seen: u64,
        dir: Dir,
        b: &[u8],
        at: Mark,
        beyond: bool,
    ) -> Stream {
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
                let base = seen.saturating_sub(b.len() as u64);
                let used = self.units(dir, &mut s, b, at, base);
                let rest = &b[used.min(b.len())..];
                if s.mode != Mode::Off && s.skip == 0 {
                    s.buf.extend_from_slice(rest);
                }
            } else {
                let mut buf = std::mem::take(&mut s.buf);
                buf.extend_from_slice(b);
                let base = seen.saturating_sub(buf.len() as u64);
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
        s
    }

    /// The decrypted-stream facts, allocated on first use.
    fn ins(&mut self) -> &mut inside::Inside {
        self.fx().inside.get_or_insert_with(Box::default)
    }

    /// Looks the session's keys up; arms TLS 1.3's decrypters at once and
    /// stages TLS 1.2's for each side's ChangeCipherSpec.
    fn start_keys(&mut self) {
        let Some(keys) = self.keys.clone() else {
            return;
        };
        let found = inside::keys_for(&self.fx().tls, &keys);
        let rdp = matches!(self.class, AppClass::Rdp { .. }) || self.rdp_port;
        let inner = Stream {
            // Not RDP: perhaps a gateway leg's HTTP (the leg tells).
            mode: if rdp { Mode::Tpkt } else { Mode::Http },
            inner: true,
            ..Default::default()
        };
        let mut c = Crypt {
            inner: [inner.clone(), inner],
            ..Default::default()
        };
        let source = match found {
            inside::Found::Tls12([cd, sd], src) => {
                c.staged = [Some(cd), Some(sd)];
                src
            }
            inside::Found::Tls13([cd, sd], [ca, sa], src) => {
                c.dec = [Some(cd), Some(sd)];
                c.next = [Some(ca), Some(sa)];
                src
            }
            inside::Found::Missing(why) => {
                self.ins().keys = why;
                return;
            }
        };
        c.source = source;
        self.crypt = Some(Box::new(c));
        self.ins().keys = inside::KeyState::Decrypting { source };
    }

    /// Opens one record of `dir` and hands its content on: application
    /// data to the inner stream, handshake messages to the TLS parser,
    /// alerts named.
    fn decrypt(&mut self, dir: Dir, typ: u8, body: &[u8], at: Mark, beyond: bool) {
        let tls13 = self.fx().tls.tls13();
        if typ == tls::CCS || (tls13 && typ != tls::APP_DATA) {
            return;
        }
        // A gateway leg is read whole: the tunnelled session's end is at
        // the end of it.
        let leg = self.gateway_leg().is_some();
        let Some(c) = self.crypt.as_mut() else {
            return;
        };
        let source = c.source;
        let Some(d) = c.dec[dir].as_mut() else {
            return;
        };
        if beyond && body.len() > BEYOND_DECRYPT && !leg {
            d.skip(Some(body));
            return;
        }
        match d.open(typ, body) {
            Ok((inner, plain)) => {
                self.ins().opened[dir] += 1;
                match inner {
                    tls::APP_DATA => self.parse_inner(dir, &plain, at),
                    tls::HANDSHAKE if tls13 => self.decrypted_handshake(dir, &plain, at),
                    tls::ALERT => {
                        let t = &mut self.fx().tls;
                        let before = t.alerts.len();
                        t.decrypted_alert(dir, &plain, at);
                        if self.fx().tls.alerts.len() > before {
                            self.fx().step(Step::Alert(dir), at);
                        }
                    }
                    _ => {}
                }
            }
            Err(e) => {
                c.dec[dir] = None;
                let i = self.ins();
                if !matches!(i.keys, inside::KeyState::Failed { .. }) {
                    i.keys = inside::KeyState::Failed {
                        source,
                        dir,
                        at,
                        why: e.to_string(),
                    };
                }
            }
        }
    }

    /// TLS 1.3's encrypted handshake: the messages parsed as plaintext
    /// ones would be (the Certificate); after this side's Finished its
    /// application keys, after a KeyUpdate the next generation.
    fn decrypted_handshake(&mut self, dir: Dir, plain: &[u8], at: Mark) {
        let had = self.fx().tls.certs.is_some();
        if let Err(e) = self.fx().tls.decrypted_handshake(dir, plain, at) {
            self.malformed(
                dir,
                at,
                error::Error::malformed(error::Layer::TlsHandshake, 0, e),
            );
        }
        if !had && self.fx().tls.certs.is_some() {
            self.fx().step(Step::ServerCertificate, at);
        }
        let mut p = plain;
        while p.len() >= 4 {
            let len = u32::from_be_bytes([0, p[1], p[2], p[3]]) as usize;
            let Some(c) = self.crypt.as_mut() else {
                return;
            };
            match p[0] {
                // Finished
                20 => {
                    if let (Some(next), Some(d)) = (c.next[dir].take(), c.dec[dir].as_ref()) {
                        c.dec[dir] = Some(tls_crypt::Decrypter::tls13(d.suite, &next));
                    }
                }
                // KeyUpdate
                24 => {
                    if let Some(d) = c.dec[dir].as_mut() {
                        d.key_update();
                    }
                }
                _ => {}
            }
            p = &p[(4 + len).min(p.len())..];
        }
    }

    /// CredSSP and the Early User Authorization Result at the start of a
    /// decrypted stream, before its TPKTs.
    fn inner_unit(&mut self, dir: Dir, rest: &[u8], at: Mark) -> Inner {
        if rest[0] == 0x30 {
            let len = match credssp::len(rest) {
                Ok(l) => l,
                Err(e) if e.is_need_more() => return Inner::More,
                Err(e) => {
                    self.malformed(dir, at, e);
                    return Inner::Stop;
                }
            };
            if len > credssp::MAX_TSREQUEST {
                self.fx().bounded = Some("a CredSSP TSRequest over 256 KiB was not parsed");
                return Inner::Stop;
            }
            if rest.len() < len {
                return Inner::More;
            }
            match credssp::ts_request(&rest[..len]) {
                Ok(r) => {
                    let c = &mut self.ins().credssp;
                    c.requests[dir] += 1;
                    c.version[dir].get_or_insert(r.version);
                    c.last[dir] = Some(at);
                    if let Some(m) = r.mech {
                        if c.mech.is_none() || matches!(m, credssp::Mech::Ntlm(_)) {
                            c.mech = Some(m);
                        }
                    }
                    if r.user.is_some() {
                        c.user = r.user;
                    }
                    if dir == Dir::Server {
                        if let Some(code) = r.error_code {
                            c.error.get_or_insert((code, at));
                        }
                        if r.pub_key_auth {
                            c.server_pub_key.get_or_insert(at);
                        }
                    } else if r.auth_info {
                        c.client_auth_info.get_or_insert(at);
                    }
                }
                Err(e) => self.malformed(dir, at, e),
            }
            return Inner::Used(len);
        }
        // HYBRID_EX: 4 bytes after the client's credentials (MS-RDPBCGR
        // 2.2.10.2), before anything else from the server.
        let hybrid_ex = self
            .fx()
            .selected()
            .is_some_and(|p| p.0 & x224::Protocols::HYBRID_EX != 0);
        if dir == Dir::Server && hybrid_ex && rest[0] != 0x03 {
            let i = self.ins();
            if i.euar.is_none() && i.credssp.client_auth_info.is_some() && i.pdus[dir] == 0 {
                if rest.len() < 4 {
                    return Inner::More;
                }
                i.euar = Some((u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]), at));
                return Inner::Used(4);
            }
        }
        Inner::NotMine
    }

    /// What an MCS domain PDU says (decrypted, or in the clear under
    /// Standard RDP Security): only PDUs that tell something allocate.
    fn domain_pdu(&mut self, dir: Dir, data: &[u8], at: Mark, inner: bool) {
        use rdp::Pdu;
        let pdu = match rdp::domain_pdu(data) {
            Ok(p) => p,
            Err(e) if inner && !e.is_need_more() => {
                self.malformed(dir, at, e);
                return;
            }
            Err(_) => return,
        };
        if matches!(pdu, Pdu::Other | Pdu::Unreadable | Pdu::Data(_)) {
            return;
        }
        let i = self.ins();
        match pdu {
            Pdu::Ultimatum(r) => i.ultimatum[dir] = Some((r, at)),
            Pdu::ClientInfo { user, domain } if dir == Dir::Client => {
                i.client_info.get_or_insert((user, domain, at));
            }
            Pdu::License {
                error: Some((code, st)),
                ..
            } if dir == Dir::Server => {
                i.license.get_or_insert((code, st, at));
            }
            Pdu::DemandActive if dir == Dir::Server => {
                i.demand_active.get_or_insert(at);
            }
            Pdu::ConfirmActive if dir == Dir::Client => {
                i.confirm_active.get_or_insert(at);
            }
            Pdu::DeactivateAll => {
                i.deactivate_all.get_or_insert(at);
            }
            Pdu::ErrorInfo(code)
                if dir == Dir::Server && i.error_info.len() < inside::MAX_ERRINFO =>
            {
                i.error_info.push((code, at));
            }
            Pdu::SaveSessionInfo {
                logon_error: Some((t, d)),
                ..
            } if dir == Dir::Server => {
                i.logon_error.get_or_insert((t, d, at));
            }
            Pdu::ShutdownRequest if dir == Dir::Client => {
                i.shutdown.get_or_insert(at);
            }
            Pdu::Redirect(r) if dir == Dir::Server => {
                i.redirect.get_or_insert((r, at));
            }
            _ => {}
        }
    }

    /// A gateway leg's HTTP bytes; the RDP bytes its DATA packets carried
    /// go to the tunnelled connection's `App`.
    fn http(&mut self, dir: Dir, b: &[u8], at: Mark) {
        let names = self.gateways.clone();
        let leg = self.fx().gateway.get_or_insert_with(Box::default);
        leg.feed(dir, b, at);
        let bounded = leg.bounded;
        if leg.kind == Some(gateway::Kind::Connect) && !leg.named {
            if let (Some(h), Some(n)) = (leg.connect_host(), names) {
                leg.named = n.contains(&h);
            }
        }
        let not_http = leg.not_http;
        self.calls_pending = leg.has_calls();
        if bounded.is_some() && self.fx().bounded.is_none() {
            // Said like any parser's bound: the flow's confidence.
            self.fx().bounded = bounded;
        }
        if not_http {
            // Decrypted: the records go on; plaintext: nothing to read.
            match self.crypt.as_mut() {
                Some(c) => {
                    c.inner[Dir::Client].mode = Mode::Off;
                    c.inner[Dir::Server].mode = Mode::Off;
                }
                None => {
                    self.streams[Dir::Client].mode = Mode::Off;
                    self.streams[Dir::Server].mode = Mode::Off;
                }
            }
            return;
        }
        let inner = self.fx().gateway.as_mut().map(|g| g.take_inner());
        // The two-channel transport: the IN channel's bytes join the OUT
        // channel's, another flow (the flow stage moves them).
        let in_channel = self
            .gateway_leg()
            .is_some_and(|g| g.channel == Some(gateway::Channel::In));
        for (d, at, bytes) in inner.into_iter().flatten() {
            if in_channel && self.outbound_len + bytes.len() <= MAX_OUTBOUND {
                self.outbound_len += bytes.len();
                self.outbound.push((d, at, bytes));
            } else {
                self.tunnelled(d, &bytes, at);
            }
        }
    }

    /// The tunnelled bytes an IN channel read since the last call.
    pub fn take_outbound(&mut self) -> Vec<(Dir, Mark, Vec<u8>)> {
        self.outbound_len = 0;
        std::mem::take(&mut self.outbound)
    }

    /// Has an IN channel tunnelled bytes (or RPC requests) waiting?
    pub fn has_outbound(&self) -> bool {
        !self.outbound.is_empty() || self.calls_pending
    }

    /// The RPC requests an IN channel read since the last call.
    pub fn take_calls(&mut self) -> Vec<gateway::Call> {
        if !std::mem::take(&mut self.calls_pending) {
            return Vec::new();
        }
        self.fx()
            .gateway
            .as_mut()
            .map(|g| g.take_calls())
            .unwrap_or_default()
    }

    /// Requests the paired RPC IN channel carried.
    pub fn rpc_calls(&mut self, calls: &[gateway::Call]) {
        if let Some(g) = self.fx().gateway.as_mut() {
            g.add_calls(calls);
        }
    }

    /// Bytes of the tunnelled RDP connection, one side's, in order.
    pub fn tunnelled(&mut self, dir: Dir, b: &[u8], at: Mark) {
        let keys = self.keys.clone();
        let t = self.tunnel.get_or_insert_with(|| {
            Box::new(App {
                rdp_port: true,
                keys,
                ..Default::default()
            })
        });
        let pos = Pos::new(at, self.tunnel_seen[dir]);
        self.tunnel_seen[dir] += b.len() as u64;
        let span = &mut self.tunnel_span[dir];
        *span = Some((span.map_or(at, |s| s.0), at));
        t.feed(dir, Chunk::Data(b), pos);
    }

    /// Is this flow an RD Gateway leg (by what its HTTP said)?
    pub fn gateway_leg(&self) -> Option<&gateway::Leg> {
        self.facts().gateway.as_deref().filter(|g| g.is_leg())
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
                    if s.inner {
                        match self.inner_unit(dir, rest, at) {
                            Inner::Used(n) => {
                                off += n;
                                continue;
                            }
                            Inner::More => return off,
                            Inner::Stop => {
                                s.mode = Mode::Off;
                                return off;
                            }
                            Inner::NotMine => {}
                        }
                    }
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
                        self.tpdu(dir, &rest[..len], at, s.inner);
                        off += len;
                    } else if !s.inner && tls::looks_like_record(rest) {
                        s.mode = Mode::Tls;
                    } else if self.fx().cc.is_some() || self.fx().client_data.is_some() {
                        match x224::fastpath_len(rest) {
                            Ok(l) if s.inner => {
                                let i = self.ins();
                                i.pdus[dir] += 1;
                                i.last_pdu[dir] = Some(at);
                                if rest.len() < l {
                                    return off;
                                }
                                off += l;
                            }
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
                Mode::Http => {
                    self.http(dir, rest, at);
                    return b.len();
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
                    let decrypting = self.crypt.as_ref().is_some_and(|c| c.dec[dir].is_some());
                    let skip_body = !decrypting
                        && (typ == tls::APP_DATA
                            || (typ == tls::HANDSHAKE && self.fx().tls.ccs[dir].is_some())
                            || (s.beyond && len > BEYOND_READ));
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
                        let body = &rest[5..5 + len];
                        self.tls_record(dir, typ, len, Some(body), at);
                        if decrypting {
                            self.decrypt(dir, typ, body, at, s.beyond);
                        }
                    }
                    off += 5 + len;
                }
            }
        }
    }

    fn tls_record(&mut self, dir: Dir, typ: u8, len: usize, body: Option<&[u8]>, at: Mark) {
        let transcript = self.keys.as_ref().is_some_and(|k| k.wants_transcript());
        let t = &mut self.fx().tls;
        t.keep_transcript = transcript;
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
        let tls13 = t.tls13();
        let no_hello = t.client_hello.is_none();
        if self.keys.is_some() && self.crypt.is_none() {
            if (now.1 && !had.1 && tls13) || (typ == tls::CCS && !tls13) {
                self.start_keys();
            } else if typ == tls::APP_DATA && no_hello {
                let i = self.ins();
                if i.keys == inside::KeyState::NotTried {
                    i.keys = inside::KeyState::NoHandshake;
                }
            }
        }
        if typ == tls::CCS && !tls13 {
            if let Some(c) = self.crypt.as_mut() {
                if let Some(d) = c.staged[dir].take() {
                    c.dec[dir] = Some(d);
                }
            }
        }
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

    fn tpdu(&mut self, dir: Dir, pdu: &[u8], at: Mark, inner: bool) {
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
                if inner {
                    self.ins().last_pdu[dir] = Some(at);
                } else {
                    self.fx().last_pdu[dir] = Some(at);
                    if pdu == ULTIMATUM {
                        self.fx().ultimatum[dir] = Some(at);
                    }
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
                    if inner {
                        self.ins().pdus[dir] += 1;
                    } else {
                        self.fx().pdus[dir] += 1;
                    }
                    self.domain_pdu(dir, data, at, inner);
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
