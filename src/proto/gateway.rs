//! One RD Gateway leg, read from its plaintext HTTP (a capture behind a
//! TLS-terminating proxy) or from its decrypted TLS: the HTTP/1.x exchanges
//! ([`http`]), their body framing judged by the leg's role (PROTOCOLS.md
//! §4), the WebSocket frames after a 101 ([`websocket`]) and the MS-TSGU
//! HTTP_PACKET stream ([`tsgu`]) in the OUT channel's body, the IN
//! channel's chunks or the WebSocket binary frames, and the DCE/RPC and
//! RTS PDUs of RPC over HTTP ([`rts`]). DATA packets carry the
//! inner RDP byte stream: [`Leg::take_inner`] hands it to the caller (the
//! `App` of the inner connection).
//!
//! Which leg is which (MS-TSGU 2.1.2, 3.3.5.1; MS-RPCH 2.1.2.1; MS-KKDCP):
//! `RDG_OUT_DATA` (with `Upgrade: websocket`: the WebSocket transport),
//! `RDG_IN_DATA`, `RPC_IN_DATA` / `RPC_OUT_DATA`, `GET` with
//! `Upgrade: websocket` to a gateway path (the "wst" transport of Azure
//! gateways), `POST` to a KDC proxy path, `CONNECT` through a forward
//! proxy. Anything else (a browser's HTTPS) is not a leg: `kind` stays
//! `None` and nothing is reported of it.
//!
//! Memory is bounded: one message head ([`http::MAX_HEAD`]) and one
//! HTTP_PACKET ([`tsgu::MAX_PACKET`]) per side, [`MAX_EXCHANGES`]
//! exchanges; bodies and WebSocket payloads stream through, whatever
//! length they declare.

use super::error::{Error, Layer};
use super::{http, krb, rts, tsgu, websocket};
use crate::capture::Mark;
use crate::finding::Dir;

/// Exchanges kept per leg (NTLM needs two rounds per channel; a 401 loop
/// is told by its count).
pub const MAX_EXCHANGES: usize = 64;
/// Inner RDP bytes held for the caller between two feeds.
const MAX_PENDING: usize = 1 << 20;
/// How far into the OUT channel's body the first HTTP_PACKET is looked
/// for: the random seed before it is 10 bytes from Windows Server 2019
/// (rdpgw), about 100 per MS-TSGU 3.3.5.1.
pub const MAX_SEED: usize = 128;
/// A chunk size above this is not a gateway's (FreeRDP sends one
/// HTTP_PACKET per chunk): reported, never waited for.
pub const MAX_CHUNK: u64 = 1 << 32;

/// The transport a leg belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Two HTTP channels, `RDG_OUT_DATA` and `RDG_IN_DATA`.
    Http,
    /// `RDG_OUT_DATA` upgraded to a WebSocket: one connection.
    WebSocket,
    /// RPC-over-HTTP (`RPC_IN_DATA` / `RPC_OUT_DATA`).
    Rpc,
    /// `GET` + WebSocket upgrade (Azure Virtual Desktop / Windows 365).
    Wst,
    /// MS-KKDCP: Kerberos through the gateway's `/KdcProxy`.
    KdcProxy,
    /// `CONNECT host:port` to a forward proxy.
    Connect,
}

impl Kind {
    /// The attempt's `via` column.
    pub fn via(self) -> &'static str {
        match self {
            Kind::Http => "gateway-http",
            Kind::WebSocket => "gateway-ws",
            Kind::Rpc => "gateway-rpc",
            Kind::Wst => "gateway-wst",
            Kind::KdcProxy => "gateway-kdcproxy",
            Kind::Connect => "gateway-connect",
        }
    }

    /// Does this leg carry the tunnel (not a side call)?
    pub fn tunnel(self) -> bool {
        matches!(self, Kind::Http | Kind::WebSocket | Kind::Rpc | Kind::Wst)
    }
}

/// Which way a leg's tunnel data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Gateway to client (`RDG_OUT_DATA`, `RPC_OUT_DATA`), or both ways
    /// after a WebSocket upgrade.
    Out,
    /// Client to gateway (`RDG_IN_DATA`, `RPC_IN_DATA`).
    In,
}

/// One request and the response to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub target: String,
    pub at: Mark,
    /// The Authorization scheme the request carried.
    pub authorization: Option<String>,
    /// The NTLM message type of its token (1 NEGOTIATE, 3 AUTHENTICATE).
    pub ntlm: Option<u8>,
    pub upgrade: Option<String>,
    /// The request's body was all seen (none, or its length or last
    /// chunk): an answer is then awaited.
    pub body_done: bool,
    pub response: Option<Response>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Schemes offered by WWW-/Proxy-Authenticate.
    pub challenges: Vec<String>,
    /// A 401 carrying an NTLM CHALLENGE (type 2).
    pub ntlm_challenge: bool,
    pub body: http::Body,
    pub version: u8,
    pub close: bool,
    pub via: Option<String>,
    pub at: Mark,
}

/// What the HTTP_PACKETs said (MS-TSGU 2.2.10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tsg {
    /// Each response's HRESULT and frame.
    pub handshake: Option<(u32, Mark)>,
    pub tunnel: Option<(u32, Mark)>,
    pub tunnel_auth: Option<(u32, Mark)>,
    /// The idle timeout TUNNEL_AUTH_RESPONSE announced (minutes).
    pub idle_timeout: Option<u32>,
    /// CHANNEL_CREATE: the target and port the client asked for.
    pub target: Option<(String, u16, Mark)>,
    pub channel: Option<(u32, Mark)>,
    /// CLOSE_CHANNEL: who sent it, its status.
    pub close: Option<(Dir, u32, Mark)>,
    pub keepalives: u32,
    /// The longest gap between two of the gateway's keep-alives (ns).
    pub keepalive_gap: i64,
    last_keepalive: Option<Mark>,
    /// DATA bytes per side, and the first and last DATA frame per side.
    pub data: [u64; 2],
    pub first_data: [Option<Mark>; 2],
    pub last_data: [Option<Mark>; 2],
    /// The last HTTP_PACKET's frame per side.
    pub last_packet: [Option<Mark>; 2],
}

/// The WebSocket after a 101.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ws {
    pub upgraded: Option<Mark>,
    pub frames: [u64; 2],
    /// The first close frame: its side, code, reason.
    pub close: Option<(Dir, Option<u16>, String, Mark)>,
}

/// Requests whose operation number is kept to name a fault's call.
pub const MAX_CALLS: usize = 16;

/// A request: its call id, operation number and frame.
pub type Call = (u32, Option<u16>, Mark);

/// A fault: its status, the call it answered (operation number and the
/// request's frame, when kept), its frame.
pub type Fault = (Option<u32>, Option<(Option<u16>, Mark)>, Mark);

/// What the RPC-over-HTTP PDUs said (MS-RPCH, C706): the virtual
/// connection being built, the bind, the calls' numbers and the faults.
/// The calls' stubs are sealed and never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rpc {
    /// RTS PDUs by name: the side and frame of the first of each.
    pub rts: Vec<(Dir, &'static str, Mark)>,
    /// The virtual connection cookie (CONN/A1 on the OUT channel, CONN/B1
    /// on the IN channel): what pairs the two.
    pub cookie: Option<[u8; 16]>,
    pub bind: Option<Mark>,
    /// The bind_ack's first result (0 accepted) and frame.
    pub bind_ack: Option<(Option<u16>, Mark)>,
    pub bind_nak: Option<(Option<u16>, Mark)>,
    /// The first [`MAX_CALLS`] requests.
    pub calls: Vec<Call>,
    pub requests: u64,
    pub responses: u64,
    /// The first fault.
    pub fault: Option<Fault>,
    pub pdus: [u64; 2],
}

impl Rpc {
    /// The first RTS PDU of this name.
    pub fn rts(&self, name: &str) -> Option<(Dir, Mark)> {
        self.rts.iter().find(|r| r.1 == name).map(|r| (r.0, r.2))
    }
}

/// What a sink does with body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sink {
    #[default]
    Discard,
    /// An HTTP_PACKET stream; `true`: a seed comes first (the OUT channel).
    Tsgu(bool),
    /// A KDC-PROXY-MESSAGE (MS-KKDCP 2.2.2), kept whole up to
    /// [`MAX_KDC_BODY`], read when its body ends.
    Kdc,
    /// The tunnelled RDP stream itself (the wst transport).
    Raw,
    /// DCE/RPC PDUs (RPC over HTTP: the IN channel's request body, the
    /// OUT channel's CONN/A1 and its 200's body).
    Rpc,
}

/// A KDC proxy message body kept at most (a Kerberos message over TCP is
/// at most 64 KiB here too: proto::krb).
pub const MAX_KDC_BODY: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Head,
    /// A Content-Length body: bytes still to come.
    Length(u64, Sink),
    /// Chunked: before a size line, inside a chunk (bytes left), after
    /// one (its CRLF).
    ChunkSize(Sink),
    ChunkData(u64, Sink),
    ChunkEnd(Sink),
    /// The trailer section after the last chunk.
    Trailer,
    UntilClose(Sink),
    /// WebSocket frames; inside a data frame: bytes left, mask, offset.
    Ws,
    WsData(u64, Option<[u8; 4]>, usize, bool),
    Off,
}

#[derive(Debug, Clone, Default)]
struct Side {
    state: State,
    buf: Vec<u8>,
    /// The HTTP_PACKET stream being framed.
    pk: Vec<u8>,
    /// A KDC proxy message being read.
    kdc: Vec<u8>,
    seek_seed: bool,
    tsgu_off: bool,
}

/// One gateway leg.
#[derive(Debug, Clone, Default)]
pub struct Leg {
    pub kind: Option<Kind>,
    pub channel: Option<Channel>,
    pub connection_id: Option<String>,
    /// The Host of the first request.
    pub host: Option<String>,
    pub exchanges: Vec<Exchange>,
    /// Exchanges past [`MAX_EXCHANGES`], counted (and `bounded` said).
    pub dropped: u32,
    pub tsg: Tsg,
    pub ws: Ws,
    pub rpc: Rpc,
    /// The OUT channel's seed length, once the first packet was found.
    pub seed: Option<usize>,
    /// A response whose framing cannot work for its role: side, frame,
    /// what.
    pub bad_framing: Option<(Dir, Mark, String)>,
    /// Re-framing by an intermediary that clients survive: frame, what.
    pub interference: Option<(Mark, String)>,
    pub malformed: Option<(Dir, Mark, Error)>,
    pub bounded: Option<&'static str>,
    /// The Kerberos messages a KDC proxy call carried (MS-KKDCP).
    pub krb: krb::Krb,
    /// The client's stream is not HTTP: nothing more is read.
    pub not_http: bool,
    /// A CONNECT to a host the user named as a gateway (`--gateway`): a
    /// CONNECT is a leg only then (a browser's through the same proxy is
    /// none).
    pub named: bool,
    st: [Side; 2],
    /// An RPC IN channel's requests not yet handed to its OUT channel
    /// (where their faults arrive): at most [`MAX_CALLS`] in all.
    calls_out: Vec<Call>,
    inner: Vec<(Dir, Mark, Vec<u8>)>,
    pending: usize,
}

/// The Kerberos message in a KDC-PROXY-MESSAGE (MS-KKDCP 2.2.2):
/// `SEQUENCE { kerb-message [0] OCTET STRING, … }`, the octets a
/// 4-byte length (RFC 4120 §7.2.2) then the message.
pub fn kdc_proxy_message(b: &[u8]) -> Option<&[u8]> {
    // One DER element: tag, length (short or long form up to 4 bytes),
    // contents.
    fn tlv(b: &[u8]) -> Option<(u8, &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&l0, rest) = rest.split_first()?;
        let (len, rest) = if l0 < 0x80 {
            (usize::from(l0), rest)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |a, &x| a << 8 | usize::from(x));
            (len, &rest[n..])
        };
        Some((tag, rest.get(..len)?))
    }
    let (0x30, seq) = tlv(b)? else {
        return None;
    };
    let (0xA0, inner) = tlv(seq)? else {
        return None;
    };
    let (0x04, octets) = tlv(inner)? else {
        return None;
    };
    let len = u32::from_be_bytes(octets.get(..4)?.try_into().ok()?) as usize;
    octets.get(4..4usize.checked_add(len)?)
}

fn is_ws(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|u| {
        u.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// A path or host an Azure / Windows 365 gateway's "wst" upgrade uses
/// (FreeRDP wst.c; PROTOCOLS.md §9, UNVERIFIED list).
fn wst_target(target: &str, host: Option<&str>) -> bool {
    let t = target.to_ascii_lowercase();
    t.starts_with("/remotedesktopgateway")
        || t.contains("/api/arm/")
        || t.contains("clmtk=")
        || host.is_some_and(|h| h.ends_with(".wvd.microsoft.com"))
}

impl Leg {
    /// Is this a gateway leg (a method or upgrade only a gateway uses)?
    pub fn is_leg(&self) -> bool {
        match self.kind {
            Some(Kind::Connect) => self.named,
            k => k.is_some(),
        }
    }

    /// The host a CONNECT asked for (lower case, without the port).
    pub fn connect_host(&self) -> Option<String> {
        let e = self.exchanges.iter().find(|e| e.method == "CONNECT")?;
        let t = e.target.trim();
        let host = match t.strip_prefix('[') {
            Some(r) => r.split(']').next().unwrap_or(r),
            None => t.rsplit_once(':').map_or(t, |(h, _)| h),
        };
        Some(host.trim_end_matches('.').to_ascii_lowercase())
    }

    /// The inner RDP bytes DATA packets carried since the last call, in
    /// order, with the frame that completed each.
    pub fn take_inner(&mut self) -> Vec<(Dir, Mark, Vec<u8>)> {
        self.pending = 0;
        std::mem::take(&mut self.inner)
    }

    /// The exchanges whose response is in, in order.
    pub fn answered(&self) -> impl Iterator<Item = (&Exchange, &Response)> {
        self.exchanges
            .iter()
            .filter_map(|e| e.response.as_ref().map(|r| (e, r)))
    }

    /// Did the leg carry tunnelled RDP (DATA either way: an IN channel
    /// carries the client's side only)?
    pub fn carried(&self) -> bool {
        self.tsg.data[0] + self.tsg.data[1] > 0
    }

    /// The leg ended: drop the parsing state. (A Content-Length body cut
    /// short by the end is not judged: the RPC IN channel declares 1 GiB
    /// and is closed long before, and a client may stop reading.)
    pub fn finish(&mut self) {
        self.st = Default::default();
        self.inner = Vec::new();
        self.pending = 0;
    }

    /// Bytes of one side's plaintext HTTP stream.
    pub fn feed(&mut self, dir: Dir, b: &[u8], at: Mark) {
        if self.st[dir].state == State::Off || self.not_http {
            return;
        }
        let mut buf = std::mem::take(&mut self.st[dir].buf);
        let used = if buf.is_empty() {
            let used = self.run(dir, b, at);
            buf.extend_from_slice(&b[used.min(b.len())..]);
            0
        } else {
            buf.extend_from_slice(b);
            self.run(dir, &buf, at)
        };
        buf.drain(..used.min(buf.len()));
        if self.st[dir].state == State::Off {
            buf = Vec::new();
        }
        self.st[dir].buf = buf;
    }

    /// An exchange past [`MAX_EXCHANGES`]: counted, and the bound said.
    fn drop_exchange(&mut self) {
        self.dropped += 1;
        self.bounded =
            Some("over 64 HTTP exchanges on one gateway connection: the rest were not kept");
    }

    /// A message's body ended: a KDC proxy message is read; a request's
    /// answer is awaited now.
    fn body_end(&mut self, dir: Dir, at: Mark) {
        let kdc = std::mem::take(&mut self.st[dir].kdc);
        if !kdc.is_empty() {
            match kdc_proxy_message(&kdc) {
                Some(m) => self.krb.message(dir, m, at),
                None if self.malformed.is_none() => {
                    self.malformed = Some((
                        dir,
                        at,
                        Error::malformed(Layer::Http, 0, "a KDC-PROXY-MESSAGE that is not one"),
                    ));
                }
                None => {}
            }
        }
        if dir == Dir::Client {
            if let Some(e) = self.exchanges.last_mut() {
                e.body_done = true;
            }
        }
    }

    fn off(&mut self, dir: Dir) {
        self.st[dir].state = State::Off;
    }

    fn malformed(&mut self, dir: Dir, at: Mark, e: Error) {
        if self.malformed.is_none() {
            self.malformed = Some((dir, at, e));
        }
        self.off(dir);
    }

    fn framing(&mut self, dir: Dir, at: Mark, why: String) {
        if self.bad_framing.is_none() {
            self.bad_framing = Some((dir, at, why));
        }
        self.off(dir);
    }

    /// Consumes what it can of `b`; returns the bytes used.
    fn run(&mut self, dir: Dir, b: &[u8], at: Mark) -> usize {
        let mut off = 0;
        loop {
            let rest = &b[off..];
            if rest.is_empty() {
                return off;
            }
            match self.st[dir].state {
                State::Off => return b.len(),
                State::Head => {
                    let role = match dir {
                        Dir::Client => http::Role::Client,
                        Dir::Server => http::Role::Server,
                    };
                    match http::head(rest, role) {
                        Ok(None) => return off,
                        Ok(Some(h)) => {
                            off += h.len;
                            self.head(dir, h, at);
                        }
                        Err(e) => {
                            let first = self.exchanges.is_empty() && self.dropped == 0;
                            if dir == Dir::Client && first {
                                // Not HTTP at all: not a leg.
                                self.not_http = true;
                                self.st = Default::default();
                                return b.len();
                            }
                            let after_body = self
                                .exchanges
                                .iter()
                                .rev()
                                .find_map(|x| x.response.as_ref())
                                .is_some_and(|r| matches!(r.body, http::Body::Length(_)));
                            if dir == Dir::Server && after_body {
                                self.framing(
                                    dir,
                                    at,
                                    format!(
                                        "after a response's Content-Length body the next bytes are not a response ({e}): the body was longer than it declared"
                                    ),
                                );
                            } else {
                                self.malformed(dir, at, e);
                            }
                            return b.len();
                        }
                    }
                }
                State::Length(left, sink) => {
                    let n = (left.min(rest.len() as u64)) as usize;
                    self.sink(dir, sink, &rest[..n], at);
                    off += n;
                    let left = left - n as u64;
                    if left == 0 {
                        self.body_end(dir, at);
                    }
                    if self.st[dir].state != State::Off {
                        self.st[dir].state = if left == 0 {
                            State::Head
                        } else {
                            State::Length(left, sink)
                        };
                    }
                }
                State::ChunkSize(sink) => match http::chunk_size(rest) {
                    Ok(None) => return off,
                    Ok(Some((n, size))) => {
                        off += n;
                        if size > MAX_CHUNK {
                            self.framing(
                                dir,
                                at,
                                format!("a chunk size of {size} bytes (0x{size:x}): no gateway sends chunks over {MAX_CHUNK}"),
                            );
                            return b.len();
                        }
                        self.st[dir].state = if size == 0 {
                            State::Trailer
                        } else {
                            State::ChunkData(size, sink)
                        };
                    }
                    Err(e) => {
                        self.framing(dir, at, format!("a chunked body broke: {e}"));
                        return b.len();
                    }
                },
                State::ChunkData(left, sink) => {
                    let n = (left.min(rest.len() as u64)) as usize;
                    self.sink(dir, sink, &rest[..n], at);
                    off += n;
                    let left = left - n as u64;
                    if self.st[dir].state != State::Off {
                        self.st[dir].state = if left == 0 {
                            State::ChunkEnd(sink)
                        } else {
                            State::ChunkData(left, sink)
                        };
                    }
                }
                State::ChunkEnd(sink) => {
                    if rest.len() < 2 {
                        return off;
                    }
                    if &rest[..2] != b"\r\n" {
                        self.framing(
                            dir,
                            at,
                            "a chunk's data ran past the size its line declared (no CRLF after it)"
                                .to_string(),
                        );
                        return b.len();
                    }
                    off += 2;
                    self.st[dir].state = State::ChunkSize(sink);
                }
                State::Trailer => {
                    // Trailer fields, then an empty line (RFC 9112 §7.1.2).
                    match rest.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            off += 2;
                            self.body_end(dir, at);
                            self.st[dir].state = State::Head;
                        }
                        Some(p) => off += p + 2,
                        None if rest.len() > http::MAX_HEAD => {
                            self.framing(dir, at, "a chunked trailer over 16 KiB".into());
                            return b.len();
                        }
                        None => return off,
                    }
                }
                State::UntilClose(sink) => {
                    self.sink(dir, sink, rest, at);
                    return b.len();
                }
                State::Ws => match websocket::header(rest) {
                    Err(e) if e.is_need_more() => return off,
                    Err(e) => {
                        self.malformed(dir, at, e);
                        return b.len();
                    }
                    Ok(h) => {
                        self.ws.frames[dir] += 1;
                        if h.is_control() {
                            let Some(len) = h.frame_len().filter(|&l| l <= 14 + 125) else {
                                self.malformed(
                                    dir,
                                    at,
                                    Error::malformed(
                                        Layer::WebSocket,
                                        1,
                                        format!(
                                            "a {} frame of {} bytes (control frames hold at most 125)",
                                            websocket::opcode_name(h.opcode),
                                            h.payload_len
                                        ),
                                    ),
                                );
                                return b.len();
                            };
                            if rest.len() < len {
                                return off;
                            }
                            let mut p = rest[h.header_len..len].to_vec();
                            if let Some(k) = h.mask {
                                websocket::unmask(&mut p, k, 0);
                            }
                            if h.opcode == websocket::CLOSE && self.ws.close.is_none() {
                                let (code, reason) = websocket::close_reason(&p);
                                self.ws.close = Some((dir, code, reason, at));
                            }
                            off += len;
                        } else {
                            off += h.header_len;
                            let data =
                                matches!(h.opcode, websocket::BINARY | websocket::CONTINUATION);
                            self.st[dir].state = State::WsData(h.payload_len, h.mask, 0, data);
                        }
                    }
                },
                State::WsData(left, mask, moff, data) => {
                    let n = (left.min(rest.len() as u64)) as usize;
                    if data {
                        // The wst transport carries the RDP stream itself
                        // in its frames (FreeRDP wst.c); MS-TSGU's carries
                        // HTTP_PACKETs.
                        let sink = if self.kind == Some(Kind::Wst) {
                            Sink::Raw
                        } else {
                            Sink::Tsgu(false)
                        };
                        match mask {
                            Some(k) => {
                                let mut p = rest[..n].to_vec();
                                websocket::unmask(&mut p, k, moff);
                                self.sink(dir, sink, &p, at);
                            }
                            None => self.sink(dir, sink, &rest[..n], at),
                        }
                    }
                    off += n;
                    let left = left - n as u64;
                    if self.st[dir].state != State::Off {
                        self.st[dir].state = if left == 0 {
                            State::Ws
                        } else {
                            State::WsData(left, mask, moff + n, data)
                        };
                    }
                }
            }
        }
    }

    /// A message head: a request recorded (and the leg's kind decided), a
    /// response matched to its request and its body's framing judged.
    fn head(&mut self, dir: Dir, h: http::Head, at: Mark) {
        let body = http::body(&h, None);
        if dir == Dir::Client {
            let method = h.method.clone().unwrap_or_default();
            let target = h.target.clone().unwrap_or_default();
            if self.host.is_none() {
                self.host = h.host.clone();
            }
            if self.connection_id.is_none() {
                self.connection_id = h.connection_id.clone();
            }
            if self.kind.is_none() {
                let (kind, channel) = match method.as_str() {
                    "RDG_OUT_DATA" if is_ws(&h.upgrade) => {
                        (Some(Kind::WebSocket), Some(Channel::Out))
                    }
                    "RDG_OUT_DATA" => (Some(Kind::Http), Some(Channel::Out)),
                    "RDG_IN_DATA" => (Some(Kind::Http), Some(Channel::In)),
                    "RPC_OUT_DATA" => (Some(Kind::Rpc), Some(Channel::Out)),
                    "RPC_IN_DATA" => (Some(Kind::Rpc), Some(Channel::In)),
                    "GET" if is_ws(&h.upgrade) && wst_target(&target, h.host.as_deref()) => {
                        (Some(Kind::Wst), Some(Channel::Out))
                    }
                    "POST" if target.to_ascii_lowercase().contains("kdcproxy") => {
                        (Some(Kind::KdcProxy), None)
                    }
                    "CONNECT" => (Some(Kind::Connect), None),
                    _ => (None, None),
                };
                self.kind = kind;
                self.channel = channel;
            }
            let sink = if method == "RDG_IN_DATA" && h.chunked {
                Sink::Tsgu(false)
            } else if self.kind == Some(Kind::Rpc) && method.starts_with("RPC_") {
                Sink::Rpc
            } else {
                Sink::Discard
            };
            if self.exchanges.len() < MAX_EXCHANGES {
                self.exchanges.push(Exchange {
                    method,
                    target,
                    at,
                    authorization: h.authorization.clone(),
                    ntlm: h.ntlm,
                    upgrade: h.upgrade.clone(),
                    body_done: matches!(body, http::Body::None | http::Body::Length(0)),
                    response: None,
                });
            } else {
                self.drop_exchange();
            }
            self.st[dir].state = match body {
                http::Body::Chunked => State::ChunkSize(sink),
                http::Body::Length(0) | http::Body::None => State::Head,
                http::Body::Length(n) => State::Length(n, sink),
                _ => State::Head,
            };
            return;
        }
        let status = h.status.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // 100 Continue and the like: the real answer follows.
            self.st[dir].state = State::Head;
            return;
        }
        let idx = self.exchanges.iter().position(|e| e.response.is_none());
        let method = idx.map(|i| self.exchanges[i].method.clone());
        let body = http::body(&h, method.as_deref());
        let req_ws = idx.is_some_and(|i| is_ws(&self.exchanges[i].upgrade));
        let resp = Response {
            status,
            reason: h.reason.clone().unwrap_or_default(),
            challenges: h.challenges.clone(),
            ntlm_challenge: h.ntlm_challenge,
            body,
            version: h.version,
            close: h.close,
            via: h.via.clone(),
            at,
        };
        match idx {
            Some(i) => self.exchanges[i].response = Some(resp),
            None if self.exchanges.len() < MAX_EXCHANGES => {
                // The request was not captured.
                self.exchanges.push(Exchange {
                    method: String::new(),
                    target: String::new(),
                    at,
                    authorization: None,
                    ntlm: None,
                    upgrade: None,
                    body_done: true,
                    response: Some(resp),
                });
            }
            None => self.drop_exchange(),
        }
        let out_200 = matches!(method.as_deref(), Some("RDG_OUT_DATA")) && status == 200;
        if out_200 && req_ws && self.kind == Some(Kind::WebSocket) {
            // The upgrade was refused with a 200: the legacy OUT channel.
            self.kind = Some(Kind::Http);
        }
        if out_200 && h.chunked && self.interference.is_none() {
            self.interference = Some((
                at,
                format!(
                    "the OUT channel's 200 was re-framed as chunked{}: a gateway sends it without length (its body runs until the connection closes); an intermediary re-encoded it",
                    h.via.as_ref().map(|v| format!(" (Via: {v})")).unwrap_or_default()
                ),
            ));
        }
        if status >= 400
            && body == http::Body::UntilClose
            && !h.close
            && h.version >= 1
            && self.bad_framing.is_none()
        {
            // The error's end cannot be found: no length, not chunked, and
            // the connection is to stay open.
            self.bad_framing = Some((
                dir,
                at,
                format!(
                    "the {status} response has neither Content-Length nor chunked framing and does not close the connection: the client cannot tell where it ends"
                ),
            ));
        }
        let sink = if out_200 {
            Sink::Tsgu(true)
        } else if matches!(method.as_deref(), Some("RPC_OUT_DATA")) && status == 200 {
            Sink::Rpc
        } else if self.kind == Some(Kind::KdcProxy) && status == 200 {
            Sink::Kdc
        } else {
            Sink::Discard
        };
        self.st[dir].state = match body {
            http::Body::None | http::Body::Length(0) => State::Head,
            http::Body::Length(n) => State::Length(n, sink),
            http::Body::Chunked => State::ChunkSize(sink),
            http::Body::UntilClose => State::UntilClose(sink),
            http::Body::Switched if status == 101 && req_ws => {
                self.ws.upgraded = Some(at);
                if self.kind == Some(Kind::Http) {
                    self.kind = Some(Kind::WebSocket);
                }
                self.st[Dir::Client].state = State::Ws;
                State::Ws
            }
            // A tunnel to somewhere else (CONNECT): not followed here.
            http::Body::Switched => {
                self.off(Dir::Client);
                State::Off
            }
        };
    }

    /// Body bytes: dropped, or framed as HTTP_PACKETs.
    fn sink(&mut self, dir: Dir, sink: Sink, b: &[u8], at: Mark) {
        if sink == Sink::Raw {
            self.data(dir, b, at);
            return;
        }
        if sink == Sink::Kdc {
            let k = &mut self.st[dir].kdc;
            if k.len() + b.len() <= MAX_KDC_BODY {
                k.extend_from_slice(b);
            } else {
                k.clear();
                self.bounded = Some("a KDC proxy message over 64 KiB was not read");
            }
            return;
        }
        if sink == Sink::Rpc {
            self.rpc_sink(dir, b, at);
            return;
        }
        let Sink::Tsgu(seed) = sink else {
            return;
        };
        let s = &mut self.st[dir];
        if s.tsgu_off || b.is_empty() {
            return;
        }
        if seed && self.seed.is_none() && s.pk.is_empty() {
            s.seek_seed = true;
        }
        s.pk.extend_from_slice(b);
        if s.seek_seed {
            // The first packet on the OUT channel is the HANDSHAKE_RESPONSE
            // (type 2, reserved 0, a length of 14 to 64).
            let found = s.pk.windows(8).take(MAX_SEED + 1).position(|w| {
                w[0] == 2
                    && w[1] == 0
                    && w[2] == 0
                    && w[3] == 0
                    && (14..=64).contains(&u32::from_le_bytes([w[4], w[5], w[6], w[7]]))
            });
            match found {
                Some(p) => {
                    s.pk.drain(..p);
                    s.seek_seed = false;
                    self.seed = Some(p);
                }
                None if s.pk.len() < MAX_SEED + 8 => return,
                None => {
                    s.seek_seed = false;
                    self.seed = Some(0);
                }
            }
        }
        let pk = std::mem::take(&mut self.st[dir].pk);
        let mut off = 0;
        while off < pk.len() {
            match tsgu::header(&pk[off..]) {
                Err(e) if e.is_need_more() => break,
                Err(e) => {
                    self.st[dir].tsgu_off = true;
                    if self.malformed.is_none() {
                        self.malformed = Some((dir, at, e));
                    }
                    off = pk.len();
                    break;
                }
                Ok((_, len)) => {
                    if pk.len() - off < len {
                        break;
                    }
                    let p = &pk[off..off + len];
                    match tsgu::parse(p) {
                        Ok(packet) => self.packet(dir, packet, p, at),
                        Err(e) => {
                            if self.malformed.is_none() {
                                self.malformed = Some((dir, at, e));
                            }
                        }
                    }
                    off += len;
                }
            }
        }
        let mut pk = pk;
        pk.drain(..off.min(pk.len()));
        if !self.st[dir].tsgu_off {
            self.st[dir].pk = pk;
        }
    }

    /// Body bytes of an RPC-over-HTTP channel, framed as PDUs (at most
    /// one PDU, 64 KiB, is held).
    fn rpc_sink(&mut self, dir: Dir, b: &[u8], at: Mark) {
        if self.st[dir].tsgu_off || b.is_empty() {
            return;
        }
        let mut pk = std::mem::take(&mut self.st[dir].pk);
        pk.extend_from_slice(b);
        let mut off = 0;
        while off < pk.len() {
            match rts::parse(&pk[off..]) {
                Err(e) if e.is_need_more() => break,
                Err(e) => {
                    self.st[dir].tsgu_off = true;
                    if self.malformed.is_none() {
                        self.malformed = Some((dir, at, e));
                    }
                    off = pk.len();
                }
                Ok((h, p)) => {
                    self.pdu(dir, h, p, at);
                    off += h.len;
                }
            }
        }
        pk.drain(..off.min(pk.len()));
        if !self.st[dir].tsgu_off {
            self.st[dir].pk = pk;
        }
    }

    fn pdu(&mut self, dir: Dir, h: rts::Header, p: rts::Pdu, at: Mark) {
        use rts::Pdu as P;
        let r = &mut self.rpc;
        r.pdus[dir] += 1;
        match p {
            P::Rts { name, cookie } => {
                if let Some(n) = name {
                    if r.rts(n).is_none() && r.rts.len() < 16 {
                        r.rts.push((dir, n, at));
                    }
                }
                if let (Some(c), None) = (cookie, r.cookie) {
                    r.cookie = Some(c);
                    if self.connection_id.is_none() {
                        self.connection_id = Some(rts::cookie_hex(&c));
                    }
                }
            }
            P::Bind => {
                r.bind.get_or_insert(at);
            }
            P::BindAck { result } => {
                r.bind_ack.get_or_insert((result, at));
            }
            P::BindNak { reason } => {
                r.bind_nak.get_or_insert((reason, at));
            }
            P::Request { opnum } => {
                r.requests += 1;
                if r.calls.len() < MAX_CALLS && !r.calls.iter().any(|c| c.0 == h.call_id) {
                    r.calls.push((h.call_id, opnum, at));
                    if self.channel == Some(Channel::In) {
                        self.calls_out.push((h.call_id, opnum, at));
                    }
                }
            }
            P::Response => r.responses += 1,
            P::Fault { status } if r.fault.is_none() => {
                let call = r
                    .calls
                    .iter()
                    .find(|c| c.0 == h.call_id)
                    .map(|c| (c.1, c.2));
                r.fault = Some((status, call, at));
            }
            _ => {}
        }
    }

    /// The requests an RPC IN channel read since the last call, for its
    /// OUT channel ([`Leg::add_calls`]).
    pub fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls_out)
    }

    pub fn has_calls(&self) -> bool {
        !self.calls_out.is_empty()
    }

    /// Requests its IN channel carried: the faults on this OUT channel
    /// answer them.
    pub fn add_calls(&mut self, calls: &[Call]) {
        for &c in calls {
            let r = &mut self.rpc;
            if r.calls.len() < MAX_CALLS && !r.calls.iter().any(|x| x.0 == c.0) {
                r.calls.push(c);
            }
        }
    }

    /// Tunnelled RDP bytes, held for [`Leg::take_inner`].
    fn data(&mut self, dir: Dir, d: &[u8], at: Mark) {
        let t = &mut self.tsg;
        t.data[dir] += d.len() as u64;
        t.first_data[dir].get_or_insert(at);
        t.last_data[dir] = Some(at);
        if d.is_empty() {
            return;
        }
        if self.pending + d.len() <= MAX_PENDING {
            self.pending += d.len();
            self.inner.push((dir, at, d.to_vec()));
        } else {
            self.bounded = Some("over 1 MiB of tunnelled RDP waited between two reads");
        }
    }

    fn packet(&mut self, dir: Dir, p: tsgu::Packet, raw: &[u8], at: Mark) {
        use tsgu::Packet as P;
        let t = &mut self.tsg;
        t.last_packet[dir] = Some(at);
        match p {
            P::HandshakeResponse { error, .. } => {
                t.handshake.get_or_insert((error.unwrap_or(0), at));
            }
            P::TunnelResponse { status, .. } => {
                t.tunnel.get_or_insert((status.unwrap_or(0), at));
            }
            P::TunnelAuthResponse {
                error,
                idle_timeout,
            } => {
                t.tunnel_auth.get_or_insert((error.unwrap_or(0), at));
                if t.idle_timeout.is_none() {
                    t.idle_timeout = idle_timeout.filter(|&m| m > 0);
                }
            }
            P::ChannelCreate { target, port } if t.target.is_none() => {
                t.target = Some((target.unwrap_or_default(), port.unwrap_or(0), at));
            }
            P::ChannelResponse { error } => {
                t.channel.get_or_insert((error.unwrap_or(0), at));
            }
            P::Data { data } => {
                let d = &raw[data.start.min(raw.len())..data.end.min(raw.len())];
                self.data(dir, d, at);
            }
            P::Keepalive if dir == Dir::Server => {
                t.keepalives += 1;
                if let Some(l) = t.last_keepalive {
                    t.keepalive_gap = t.keepalive_gap.max(at.ts - l.ts);
                }
                t.last_keepalive = Some(at);
            }
            P::Close { status } | P::CloseResponse { status } => {
                t.close.get_or_insert((dir, status.unwrap_or(0), at));
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

    fn m(frame: u64) -> Mark {
        Mark {
            frame,
            ts: frame as i64 * 1_000_000_000,
        }
    }

    /// An HTTP_PACKET (MS-TSGU 2.2.10.9): type, reserved 0, length, body.
    fn pkt(t: u16, body: &[u8]) -> Vec<u8> {
        let mut v = t.to_le_bytes().to_vec();
        v.extend([0, 0]);
        v.extend(((8 + body.len()) as u32).to_le_bytes());
        v.extend(body);
        v
    }

    fn handshake_response(code: u32) -> Vec<u8> {
        let mut b = code.to_le_bytes().to_vec();
        b.extend([1, 0, 0, 0, 0, 0]);
        pkt(tsgu::HANDSHAKE_RESPONSE, &b)
    }

    fn channel_response(code: u32) -> Vec<u8> {
        let mut b = code.to_le_bytes().to_vec();
        b.extend([1, 0, 0, 0, 7, 0, 0, 0]);
        pkt(tsgu::CHANNEL_RESPONSE, &b)
    }

    fn data(d: &[u8]) -> Vec<u8> {
        let mut b = (d.len() as u16).to_le_bytes().to_vec();
        b.extend(d);
        pkt(tsgu::DATA, &b)
    }

    fn channel_create(name: &str) -> Vec<u8> {
        let mut b = vec![1, 0];
        b.extend(3389u16.to_le_bytes());
        b.extend(3u16.to_le_bytes());
        let n: Vec<u8> = name
            .encode_utf16()
            .chain([0])
            .flat_map(|u| u.to_le_bytes())
            .collect();
        b.extend((n.len() as u16).to_le_bytes());
        b.extend(n);
        pkt(tsgu::CHANNEL_CREATE, &b)
    }

    const OUT_401: &[u8] = b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n\
        RDG-Connection-Id: {1}\r\nAuthorization: NTLM TlRMTVNTUAABAAAA\r\nContent-Length: 0\r\n\
        Host: gw.example.test\r\n\r\n";
    const CHALLENGE: &[u8] =
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\n\
        Content-Length: 0\r\n\r\n";
    const OUT_AUTH: &[u8] = b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n\
        RDG-Connection-Id: {1}\r\nAuthorization: NTLM TlRMTVNTUAADAAAA\r\nContent-Length: 0\r\n\r\n";
    /// The OUT channel's final answer: no Content-Length (PROTOCOLS.md §4).
    const OUT_200: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
    const SEED: &[u8] = &[0xab, 0xcd, 0xab, 0xcd, 0xab, 0xcd, 0xab, 0xcd, 0xab, 0xcd];

    /// The server side of a healthy two-channel OUT leg, whole.
    fn out_server() -> Vec<u8> {
        let mut s = CHALLENGE.to_vec();
        s.extend(OUT_200);
        s.extend(SEED);
        s.extend(handshake_response(0));
        s.extend(channel_response(0));
        s.extend(data(b"\x03\x00\x00\x13server-cc"));
        s
    }

    fn out_leg(server: &[u8], split: usize) -> Leg {
        let mut l = Leg::default();
        l.feed(C, OUT_401, m(1));
        let (a, b) = server.split_at(split.min(server.len()));
        // The answer to the first request, then the second request.
        let first = CHALLENGE.len().min(a.len());
        l.feed(S, &a[..first], m(2));
        l.feed(C, OUT_AUTH, m(3));
        l.feed(S, &a[first..], m(4));
        l.feed(S, b, m(5));
        l
    }

    #[test]
    fn a_healthy_out_channel_at_every_split() {
        let s = out_server();
        for split in 0..=s.len() {
            let mut l = out_leg(&s, split);
            assert_eq!(l.kind, Some(Kind::Http), "split {split}");
            assert_eq!(l.channel, Some(Channel::Out));
            assert_eq!(l.connection_id.as_deref(), Some("{1}"));
            assert_eq!(l.host.as_deref(), Some("gw.example.test"));
            let st: Vec<u16> = l.answered().map(|(_, r)| r.status).collect();
            assert_eq!(st, vec![401, 200], "split {split}");
            let (_, r) = l.answered().nth(1).unwrap();
            assert_eq!(r.body, http::Body::UntilClose);
            assert_eq!(l.seed, Some(10), "split {split}");
            assert_eq!(l.tsg.handshake.map(|h| h.0), Some(0));
            assert_eq!(l.tsg.channel.map(|h| h.0), Some(0));
            assert_eq!(l.tsg.data, [0, 13]);
            let inner = l.take_inner();
            let bytes: Vec<u8> = inner.iter().flat_map(|x| x.2.clone()).collect();
            assert_eq!(bytes, b"\x03\x00\x00\x13server-cc");
            assert!(l.bad_framing.is_none() && l.malformed.is_none() && l.interference.is_none());
        }
    }

    #[test]
    fn a_failing_channel_response_is_kept_with_its_code() {
        let mut s = CHALLENGE.to_vec();
        s.extend(OUT_200);
        s.extend(SEED);
        s.extend(handshake_response(0));
        s.extend(channel_response(0x8007_59DA));
        let l = out_leg(&s, s.len());
        assert_eq!(l.tsg.channel.map(|c| c.0), Some(0x8007_59DA));
        // One byte changed in the packet type: a CHANNEL_RESPONSE no more.
        let at = s.len() - 20;
        assert_eq!(s[at], tsgu::CHANNEL_RESPONSE as u8);
        s[at] = 0x7f;
        let l = out_leg(&s, s.len());
        assert_eq!(l.tsg.channel, None);
        // One byte short: the packet is not complete, nothing is guessed.
        s[at] = tsgu::CHANNEL_RESPONSE as u8;
        let l = out_leg(&s[..s.len() - 1], s.len());
        assert_eq!(l.tsg.channel, None);
        assert!(l.malformed.is_none());
    }

    #[test]
    fn the_in_channel_streams_packets_in_chunks() {
        let mut l = Leg::default();
        let mut c = b"RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\nRDG-Connection-Id: {1}\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        for p in [
            channel_create("target.example.test"),
            data(b"\x03\x00\x00\x0bcr"),
        ] {
            c.extend(format!("{:X}\r\n", p.len()).as_bytes());
            c.extend(&p);
            c.extend(b"\r\n");
        }
        for (i, b) in c.iter().enumerate() {
            l.feed(C, std::slice::from_ref(b), m(i as u64));
        }
        assert_eq!((l.kind, l.channel), (Some(Kind::Http), Some(Channel::In)));
        assert_eq!(
            l.tsg.target.as_ref().map(|t| (t.0.as_str(), t.1)),
            Some(("target.example.test", 3389))
        );
        assert_eq!(l.tsg.data, [6, 0]);
        assert!(l.bad_framing.is_none());
        // A chunk whose data runs past its size: no CRLF where it ends.
        let mut l = Leg::default();
        let mut bad = c.clone();
        let p = bad.windows(2).rposition(|w| w == b"\r\n").unwrap();
        bad[p] = b'x';
        l.feed(C, &bad, m(1));
        assert!(l.bad_framing.is_some());
        // A chunk size no gateway sends is reported, never waited for.
        let mut l = Leg::default();
        let mut huge = c[..c.iter().position(|&b| b == b'{').unwrap()].to_vec();
        huge.extend(b"{1}\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\n");
        l.feed(C, &huge, m(1));
        assert!(l.bad_framing.as_ref().unwrap().2.contains("chunk size"));
    }

    #[test]
    fn the_websocket_transport_unmasks_the_clients_frames() {
        let mut l = Leg::default();
        l.feed(
            C,
            b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nConnection: Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n",
            m(1),
        );
        assert_eq!(l.kind, Some(Kind::WebSocket));
        l.feed(
            S,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            m(2),
        );
        // A masked binary frame carrying DATA, split in two frames
        // (fragmented: binary + continuation).
        let p = data(b"\x03\x00\x00\x0bcr");
        let key = [1u8, 2, 3, 4];
        let mut f = vec![];
        for (i, part) in [&p[..5], &p[5..]].iter().enumerate() {
            f.push(if i == 0 { 0x02 } else { 0x80 });
            f.push(0x80 | part.len() as u8);
            f.extend(key);
            f.extend(part.iter().enumerate().map(|(j, b)| b ^ key[j % 4]));
        }
        l.feed(C, &f, m(3));
        // The server's close frame: 1000 and a reason.
        l.feed(S, &[0x88, 0x04, 0x03, 0xe8, b'o', b'k'], m(4));
        assert_eq!(l.ws.upgraded, Some(m(2)));
        assert_eq!(l.ws.frames, [2, 1]);
        assert_eq!(l.tsg.data, [6, 0]);
        assert_eq!(
            l.ws.close.as_ref().map(|c| (c.0, c.1, c.2.as_str())),
            Some((S, Some(1000), "ok"))
        );
    }

    #[test]
    fn framing_judged_by_role() {
        // An error without length that keeps the connection: bad framing.
        let mut l = Leg::default();
        l.feed(C, OUT_AUTH, m(1));
        l.feed(
            S,
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n<p>",
            m(2),
        );
        assert!(l.bad_framing.is_some());
        // The same error closing the connection is fine.
        let mut l = Leg::default();
        l.feed(C, OUT_AUTH, m(1));
        l.feed(
            S,
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n<p>",
            m(2),
        );
        assert!(l.bad_framing.is_none());
        // The OUT channel's 200 re-framed as chunked: interference only.
        let mut l = Leg::default();
        l.feed(C, OUT_AUTH, m(1));
        let mut s =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 nginx\r\n\r\n".to_vec();
        let mut body = SEED.to_vec();
        body.extend(handshake_response(0));
        s.extend(format!("{:x}\r\n", body.len()).as_bytes());
        s.extend(&body);
        s.extend(b"\r\n");
        l.feed(S, &s, m(2));
        assert!(l
            .interference
            .as_ref()
            .unwrap()
            .1
            .contains("Via: 1.1 nginx"));
        assert_eq!(l.tsg.handshake.map(|h| h.0), Some(0));
        assert!(l.bad_framing.is_none());
        // A Content-Length body longer than declared.
        let mut l = Leg::default();
        l.feed(C, OUT_401, m(1));
        l.feed(C, OUT_AUTH, m(1));
        l.feed(
            S,
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nabcdef",
            m(2),
        );
        assert!(l.bad_framing.is_some());
    }

    #[test]
    fn exchanges_past_the_bound_are_counted_and_said() {
        let mut l = Leg::default();
        for i in 0..MAX_EXCHANGES + 1 {
            l.feed(C, OUT_401, m(i as u64));
        }
        assert_eq!((l.exchanges.len(), l.dropped), (MAX_EXCHANGES, 1));
        assert!(l.bounded.is_some());
    }

    #[test]
    fn other_http_is_no_leg_and_other_bytes_no_http() {
        let mut l = Leg::default();
        l.feed(C, b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n", m(1));
        assert!(!l.is_leg());
        let mut l = Leg::default();
        l.feed(C, b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", m(1));
        assert!(!l.is_leg(), "a WebSocket elsewhere is no gateway");
        let mut l = Leg::default();
        l.feed(
            C,
            b"GET /remoteDesktopGateway/ HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            m(1),
        );
        assert_eq!(l.kind, Some(Kind::Wst));
        let mut l = Leg::default();
        l.feed(
            C,
            b"POST /KdcProxy HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            m(1),
        );
        assert_eq!(l.kind, Some(Kind::KdcProxy));
        let mut l = Leg::default();
        l.feed(C, b"\x16\x03\x01\x00\x05hello", m(1));
        assert!(l.not_http && !l.is_leg());
    }

    /// A DCE/RPC PDU (C706 12.6.3.1 header, little-endian).
    fn rpdu(ptype: u8, call: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
        v.extend(((16 + body.len()) as u16).to_le_bytes());
        v.extend([0, 0]);
        v.extend(call.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn rts(cmds: &[(u32, &[u8])]) -> Vec<u8> {
        let mut b = vec![0, 0];
        b.extend((cmds.len() as u16).to_le_bytes());
        for (t, v) in cmds {
            b.extend(t.to_le_bytes());
            b.extend_from_slice(v);
        }
        rpdu(20, 0, &b)
    }

    #[test]
    fn rpc_channels_name_their_virtual_connection_and_its_faults() {
        let one = 1u32.to_le_bytes();
        let a1 = rts(&[(6, &one), (3, &[0xAA; 16]), (3, &[0xBB; 16]), (0, &one)]);
        let b1 = rts(&[
            (6, &one),
            (3, &[0xAA; 16]),
            (3, &[0xCC; 16]),
            (4, &one),
            (5, &one),
            (12, &[0xDD; 16]),
        ]);
        // The OUT channel: NTLM, then CONN/A1 as the request's body; the
        // 200 with CONN/A3 and the fault to call 3, cut mid-PDU.
        let mut out = Leg::default();
        out.feed(
            C,
            b"RPC_OUT_DATA /rpc/rpcproxy.dll?h:3388 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            m(1),
        );
        out.feed(
            S,
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
            m(2),
        );
        let mut req =
            b"RPC_OUT_DATA /rpc/rpcproxy.dll?h:3388 HTTP/1.1\r\nContent-Length: 76\r\n\r\n"
                .to_vec();
        req.extend(&a1);
        out.feed(C, &req, m(3));
        assert_eq!(
            (out.kind, out.channel),
            (Some(Kind::Rpc), Some(Channel::Out))
        );
        assert_eq!(out.connection_id.as_deref(), Some("aa".repeat(16).as_str()));
        let mut ok = b"HTTP/1.1 200 Success\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
        ok.extend(rts(&[(2, &one)]));
        let fault = rpdu(3, 3, &[0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        ok.extend(&fault[..10]);
        out.feed(S, &ok, m(4));
        assert_eq!(out.rpc.rts("CONN/A3").map(|x| x.1.frame), Some(4));
        assert!(
            out.rpc.fault.is_none(),
            "one byte short of the header's length"
        );
        // The IN channel's request (its body: the PDUs), handed over.
        let mut inn = Leg::default();
        let mut req =
            b"RPC_IN_DATA /rpc/rpcproxy.dll?h:3388 HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n"
                .to_vec();
        req.extend(&b1);
        req.extend(rpdu(0, 3, &[0, 0, 0, 0, 0, 0, 1, 0]));
        inn.feed(C, &req, m(5));
        assert_eq!(inn.connection_id, out.connection_id);
        let calls = inn.take_calls();
        assert_eq!(calls, vec![(3, Some(1), m(5))]);
        assert!(!inn.has_calls());
        out.add_calls(&calls);
        out.feed(S, &fault[10..], m(6));
        assert_eq!(out.rpc.fault, Some((Some(5), Some((Some(1), m(5))), m(6))));
        // A PDU whose version is not 5.0 stops the stream, said once.
        let mut bad = rpdu(0, 4, &[0; 8]);
        bad[0] = 4;
        inn.feed(C, &bad, m(7));
        assert!(inn.malformed.is_some());
        assert_eq!(inn.rpc.requests, 1);
    }
}
