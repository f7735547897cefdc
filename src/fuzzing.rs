//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), kept in the
//! library so that `cargo test` replays the committed corpora through the
//! very same code (tests/fuzz_corpora.rs). Each must never panic.

use crate::capture::{Mark, Pos};
use crate::finding::Dir;
use crate::proto::{mcs, tls, x224, App, Chunk};

/// One TPKT/X.224 PDU (and the fast-path length reader).
pub fn x224(data: &[u8]) {
    if let Ok(len) = x224::tpkt_len(data) {
        let _ = x224::parse(&data[..len.min(data.len())]);
    }
    let _ = x224::parse(data);
    let _ = x224::fastpath_len(data);
}

/// GCC client and server data blocks.
pub fn mcs(data: &[u8]) {
    let _ = mcs::client_data(data);
    let _ = mcs::server_data(data);
}

/// One DER certificate.
pub fn cert(data: &[u8]) {
    let _ = tls::cert_info(data);
}

/// Both streams of a connection: the first byte of each piece says the
/// direction and the piece length, so the fuzzer also explores how bytes
/// are split between segments and holes; a third pass hands each stream
/// over past a 64-byte depth (`Chunk::Beyond`), as reassembly does.
pub fn app(data: &[u8]) {
    for (rdp_port, depth) in [(false, None), (true, None), (true, Some(64u64))] {
        let mut a = App::default();
        a.rdp_port = rdp_port;
        let mut rest = data;
        let mut frame = 1;
        // Each direction's stream offset, as reassembly would give it.
        let mut offset = [0u64; 2];
        while let Some((&ctl, tail)) = rest.split_first() {
            let n = ((ctl >> 2) as usize + 1).min(tail.len());
            let dir = if ctl & 1 == 0 {
                Dir::Client
            } else {
                Dir::Server
            };
            let at = Mark {
                frame,
                ts: frame as i64,
            };
            let pos = Pos::new(at, offset[dir]);
            offset[dir] += n as u64;
            if ctl & 2 != 0 && ctl > 0xF0 {
                a.feed(dir, Chunk::Gap(n as u64), pos);
            } else if let Some(d) = depth {
                // As reassembly hands a stream over past its depth: the
                // bytes before the depth as data, the rest headers-only.
                let start = offset[dir] - n as u64;
                let keep = (d.saturating_sub(start) as usize).min(n);
                if keep > 0 {
                    a.feed(dir, Chunk::Data(&tail[..keep]), pos);
                }
                if keep < n {
                    let at_depth = Pos::new(at, start + keep as u64);
                    a.feed(dir, Chunk::Beyond(&tail[keep..n]), at_depth);
                }
            } else {
                a.feed(dir, Chunk::Data(&tail[..n]), pos);
            }
            rest = &tail[n..];
            frame += 1;
        }
    }
}

/// A whole capture file through the engine (reader, decode, flows,
/// parsers, detectors, session).
pub fn capture(data: &[u8]) {
    let cfg = crate::config::Config {
        ports: [443u16, 3389, 53].into_iter().collect(),
        ..Default::default()
    };
    let Ok(src) =
        crate::capture::Source::from_reader(Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    let _ = crate::run::analyze("fuzz", src, &cfg, 1, &|_| {});
}

/// RDPEUDP datagrams: the SYN parser and the per-flow handshake tracker
/// (each piece: first byte = direction and length, as in [`app`]).
pub fn rdpeudp(data: &[u8]) {
    use crate::proto::rdpeudp;
    let _ = rdpeudp::syn(data);
    let _ = rdpeudp::is_client_syn(data);
    let mut u = rdpeudp::Udp::default();
    let mut rest = data;
    let mut frame = 1;
    while let Some((&ctl, tail)) = rest.split_first() {
        let n = (((ctl >> 1) as usize) * 12).min(tail.len());
        let dir = if ctl & 1 == 0 {
            Dir::Client
        } else {
            Dir::Server
        };
        u.datagram(dir, &tail[..n], Mark { frame, ts: 0 });
        rest = &tail[n..];
        frame += 1;
    }
    let _ = (u.version(), u.established());
}

/// One IP packet through the decoder: ICMP errors with their quoted packet,
/// TCP options (MSS, SACK), UDP, fragments; and DNS on the UDP payload.
pub fn packet(data: &[u8]) {
    if let Some(p) = crate::decode::decode(data) {
        if let crate::decode::L4::IcmpError(e) = p.l4 {
            let _ = (e.describe(), e.is_too_big(), e.is_unreachable());
        }
        if let crate::decode::L4::Udp(u) = p.l4 {
            let _ = crate::proto::dns::parse(u.payload);
        }
    }
    let _ = crate::proto::dns::parse(data);
}

/// One Kerberos message (a UDP datagram), and the same as a TCP stream
/// with its 4-byte length prefix.
pub fn krb(data: &[u8]) {
    use crate::proto::krb;
    let at = Mark { frame: 1, ts: 0 };
    let _ = krb::parse(data, Dir::Client, at);
    let mut k = krb::Krb::default();
    k.message(Dir::Server, data, at);
    if let Ok(n) = krb::tcp_len(data) {
        if let Some(m) = data.get(4..4 + n) {
            let _ = krb::parse(m, Dir::Server, at);
        }
    }
}

/// One DNS message.
pub fn dns(data: &[u8]) {
    let _ = crate::proto::dns::parse(data);
}
