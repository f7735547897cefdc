//! Small fixtures for detector unit tests: a flow made from packets told
//! with `synth::TcpConv` (run through the real decode and flow stages), and
//! connections and attempts made by hand.

use super::{judge_attempt, AttemptContext, AttemptDetector, Context, Detector, Placed};
use crate::capture::Mark;
use crate::config::Config;
use crate::decode::{self, link};
use crate::finding::{Draft, Outcome};
use crate::flow::{Flow, Table, Transport};
use crate::session::{self, Conn};
use crate::synth::Pkt;

/// The finished flows of these packets (Ethernet frames, numbered from 1),
/// and the mark of the last one; with TLS keys when given.
pub fn flows_with_keys(
    pkts: &[Pkt],
    cfg: &Config,
    keys: Option<crate::proto::keylog::KeyLog>,
) -> (Vec<Flow>, Mark) {
    let mut t = Table::new();
    t.keys = keys.map(std::sync::Arc::new);
    let mut end = Mark::default();
    for (i, p) in pkts.iter().enumerate() {
        let at = Mark {
            frame: i as u64 + 1,
            ts: p.ts,
        };
        end = at;
        let ip = link::ip_bytes(1, &p.data).expect("ethernet");
        let pkt = decode::decode(ip).expect("decodes");
        t.packet(&pkt, at, cfg);
    }
    t.close(end, cfg);
    (t.take_done().into_iter().map(|f| f.flow).collect(), end)
}

/// What one flow detector says of the only flow of these packets.
pub fn check(d: &dyn Detector, pkts: &[Pkt], cfg: &Config) -> Vec<Draft> {
    check_with_keys(d, pkts, cfg, None)
}

/// [`check`] with TLS keys.
pub fn check_with_keys(
    d: &dyn Detector,
    pkts: &[Pkt],
    cfg: &Config,
    keys: Option<crate::proto::keylog::KeyLog>,
) -> Vec<Draft> {
    let (flows, end) = flows_with_keys(pkts, cfg, keys);
    assert_eq!(flows.len(), 1, "one flow expected");
    let mut out = vec![];
    d.check(
        &Context {
            flow: &flows[0],
            cfg,
            capture_end: end,
        },
        &mut out,
    );
    out
}

/// A connection between 198.18.0.1:`port` and 198.18.0.2:3389, from
/// `first` to `last` (frames; the time is the frame number in seconds).
pub fn conn(transport: Transport, port: u16, first: u64, last: u64) -> Conn {
    let mut c = Conn::test(
        &format!("198.18.0.1:{port}"),
        "198.18.0.2:3389",
        transport,
        first,
        last,
        Outcome::Incomplete,
    );
    c.udp_side = false;
    c.failed_phase = None;
    c
}

/// Groups the connections into attempts, runs one attempt detector on the
/// first attempt and judges it.
pub fn attempt_of(
    conns: Vec<Conn>,
    d: &dyn AttemptDetector,
) -> (Vec<Placed>, super::verdict::Verdict) {
    let cfg = Config::default();
    let end = conns
        .iter()
        .map(|c| c.last)
        .max_by_key(|m| m.frame)
        .unwrap_or_default();
    let attempts = session::group(&conns, &[], end, &cfg);
    let a = &attempts[0];
    let cx = AttemptContext::new(a, &conns, &[], &[], &cfg, end);
    let mut out = vec![];
    d.check(&cx, &mut out);
    (out, judge_attempt(a, &conns, &[], &[], &cfg, end).verdict)
}

/// 1 ms, the fixtures' round trip.
pub const MS: i64 = 1_000_000;

/// A TCP connection from 198.18.0.1:50000 to 198.18.0.2:3389 up to the
/// end of the TLS handshake: X.224 request (SSL|HYBRID), confirm selecting
/// `selected`, ClientHello, the server's flight with `cert`, both finishes.
pub fn rdp_over_tls(out: &mut Vec<Pkt>, selected: u32, cert: &[u8]) -> crate::synth::TcpConv {
    use crate::synth::{self as s, C, S};
    let mut c = s::TcpConv::new(
        "198.18.0.1:50000",
        "198.18.0.2:3389",
        1_714_557_600_000_000_000,
    );
    c.handshake(out, MS);
    c.send(out, C, &s::x224_cr("alice", 0x3), MS);
    c.send(out, S, &s::x224_cc(selected), MS);
    c.send(
        out,
        C,
        &s::tls_client_hello(Some("rdp-host.example.test"), &[]),
        2 * MS,
    );
    c.send(out, S, &s::tls_server_flight(0xc030, cert), 2 * MS);
    c.send(out, C, &s::tls_finish(true, 31), 2 * MS);
    c.send(out, S, &s::tls_finish(false, 32), 2 * MS);
    c
}
