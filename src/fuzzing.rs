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
    // Attempts decided every 4 frames: hostile timestamps and orders go
    // through the stream's islands and scan runs, not only the end.
    let cfg = crate::config::Config {
        ports: [443u16, 3389, 53].into_iter().collect(),
        checkpoint_frames: 4,
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

/// A key-log file (RFC 9850 lines, comments, junk) and the same bytes as
/// an RSA private key (PEM or DER).
pub fn keylog(data: &[u8]) {
    let mut k = crate::proto::keylog::KeyLog::default();
    k.add("fuzz", data);
    if let Some(r) = data.get(..32).and_then(|r| <[u8; 32]>::try_from(r).ok()) {
        let _ = k.by_random(&r);
    }
    let _ = k.pre_master(data);
    let _ = crate::proto::keylog::parse_rsa_key(data);
}

/// The suites and versions the record decryptor handles.
const SUITES: &[(u16, u16)] = &[
    (0xc02f, 0x0303),
    (0xc030, 0x0303),
    (0xcca8, 0x0303),
    (0xc013, 0x0301),
    (0xc013, 0x0302),
    (0xc027, 0x0303),
    (0xc028, 0x0303),
    (0x009c, 0x0303),
    (0x1301, 0x0304),
    (0x1302, 0x0304),
    (0x1303, 0x0304),
];

/// Record decryption with keys and records from the input: byte 0 picks
/// the suite and encrypt_then_mac, the next 48 bytes are the master
/// secret (or TLS 1.3 traffic secret), then records as (type, u16 length,
/// body); a KeyUpdate is taken at every 0x18 type. The TLS 1.3
/// Certificate parser reads the rest.
pub fn decrypt(data: &[u8]) {
    use crate::proto::tls_crypt::{key_block, tls13_certificates, Decrypter, Suite};
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let (id, version) = SUITES[ctl as usize % SUITES.len()];
    let Some(suite) = Suite::of(id, version) else {
        return;
    };
    let mut secret = rest.get(..48).unwrap_or(rest).to_vec();
    secret.resize(48, 0);
    let mut rest = rest.get(48..).unwrap_or_default();
    let mut d = if version == 0x0304 {
        Decrypter::tls13(suite, &secret[..if id == 0x1302 { 48 } else { 32 }])
    } else {
        let (c, _) = key_block(suite, version, &secret, &[1; 32], &[2; 32]);
        Decrypter::new(suite, version, c, ctl & 0x80 != 0)
    };
    while rest.len() >= 3 {
        let typ = rest[0];
        let n = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let body = rest.get(3..3 + n).unwrap_or(&rest[3..]);
        if typ == 0x18 {
            d.key_update();
        } else if typ & 1 == 1 {
            d.skip(Some(body));
        } else {
            let _ = d.open(typ, body);
        }
        rest = &rest[(3 + n).min(rest.len())..];
    }
    let _ = tls13_certificates(data, 8);
}

/// MS-TSGU HTTP_PACKETs, one after another as a gateway stream carries
/// them.
pub fn tsgu(data: &[u8]) {
    use crate::proto::tsgu;
    let mut rest = data;
    while let Ok((_, len)) = tsgu::header(rest) {
        let _ = tsgu::parse(rest);
        if len > rest.len() {
            break;
        }
        rest = &rest[len..];
    }
    let _ = tsgu::parse(data);
}

/// DCE/RPC PDUs one after another (RPC over HTTP: RTS, bind, faults).
pub fn rts(data: &[u8]) {
    use crate::proto::rts;
    let mut rest = data;
    while let Ok(h) = rts::header(rest) {
        let _ = rts::parse(rest);
        if h.len > rest.len() {
            break;
        }
        rest = &rest[h.len..];
    }
    let _ = rts::parse(data);
}

/// WebSocket frames one after another, each payload unmasked and, for a
/// close, its code and reason read.
pub fn websocket(data: &[u8]) {
    use crate::proto::websocket as ws;
    let mut rest = data;
    while let Ok(h) = ws::header(rest) {
        let Some(n) = h.frame_len().filter(|&n| n <= rest.len()) else {
            break;
        };
        let mut p = rest[h.header_len..n].to_vec();
        if let Some(k) = h.mask {
            ws::unmask(&mut p, k, 0);
        }
        if h.opcode == ws::CLOSE {
            let _ = ws::close_reason(&p);
        }
        rest = &rest[n..];
    }
}

/// HTTP/1.x messages one after another on one side (the first byte picks
/// the side): heads, body framing, chunk-size lines.
pub fn http(data: &[u8]) {
    use crate::proto::http;
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    let role = if ctl & 1 == 0 {
        http::Role::Client
    } else {
        http::Role::Server
    };
    while let Ok(Some(h)) = http::head(rest, role) {
        rest = &rest[h.len.min(rest.len())..];
        match http::body(&h, None) {
            http::Body::Length(n) => {
                rest = &rest[usize::try_from(n).unwrap_or(usize::MAX).min(rest.len())..];
            }
            http::Body::Chunked => {
                while let Ok(Some((line, size))) = http::chunk_size(rest) {
                    let n = usize::try_from(size)
                        .ok()
                        .and_then(|s| s.checked_add(line + 2))
                        .unwrap_or(usize::MAX);
                    rest = &rest[n.min(rest.len())..];
                    if size == 0 {
                        break;
                    }
                }
            }
            _ => return,
        }
    }
}

/// A gateway leg's two sides, interleaved: each piece starts with a
/// control byte (bit 0 the side, the rest its length less one, 1 to
/// 128 bytes), then the bytes, fed to [`crate::proto::gateway::Leg`];
/// the tunnelled bytes are taken after each piece.
pub fn gateway(data: &[u8]) {
    use crate::proto::gateway::Leg;
    let mut leg = Leg::default();
    let mut rest = data;
    let mut frame = 0u64;
    while let Some((&c, r)) = rest.split_first() {
        let dir = if c & 1 == 0 { Dir::Client } else { Dir::Server };
        let n = usize::from(c >> 1) + 1;
        let (piece, r) = r.split_at(n.min(r.len()));
        frame += 1;
        leg.feed(dir, piece, Mark { frame, ts: 0 });
        let _ = leg.take_inner();
        rest = r;
    }
    let _ = leg.answered().count();
    leg.finish();
}

/// One CredSSP TSRequest (DER, MS-CSSP 2.2.1) with the NTLM token inside.
pub fn credssp(data: &[u8]) {
    use crate::proto::credssp;
    let _ = credssp::len(data);
    let _ = credssp::ts_request(data);
}

/// One MCS domain PDU and the RDP PDUs inside it (Set Error Info, Client
/// Info, licensing, Save Session Info, Server Redirection …).
pub fn rdp(data: &[u8]) {
    let _ = crate::proto::rdp::domain_pdu(data);
}

/// The decrypted-stream path end to end: a keyed session (the generator's
/// key log) whose application records carry the input's bytes, cut into
/// records by its control bytes as in [`app`], sealed for real, so the
/// decryptor opens them and the inner framing (CredSSP, the Early User
/// Authorization Result, TPKTs, fast-path) parses fuzzer-chosen plaintext.
pub fn inside(data: &[u8]) {
    use crate::synth;
    let mut keys = crate::proto::keylog::KeyLog::default();
    keys.add("synth", synth::keyed_keylog().as_bytes());
    let mut a = App::default();
    a.rdp_port = true;
    a.keys = Some(std::sync::Arc::new(keys));
    let mut seals = synth::keyed_seals();
    let mut offset = [0u64; 2];
    let mut frame = 1;
    let mut feed = |a: &mut App, dir: Dir, b: &[u8]| {
        let at = Mark {
            frame,
            ts: frame as i64,
        };
        a.feed(dir, Chunk::Data(b), Pos::new(at, offset[dir]));
        offset[dir] += b.len() as u64;
        frame += 1;
    };
    feed(&mut a, Dir::Client, &synth::x224_cr("fuzz", 0xB));
    feed(&mut a, Dir::Server, &synth::x224_cc(0x8));
    feed(&mut a, Dir::Client, &synth::tls_client_hello(None, &[]));
    feed(
        &mut a,
        Dir::Server,
        &synth::tls_server_flight(0xc030, synth::CERT_HOST),
    );
    feed(
        &mut a,
        Dir::Client,
        &synth::keyed_finish(&mut seals[0], true),
    );
    feed(
        &mut a,
        Dir::Server,
        &synth::keyed_finish(&mut seals[1], false),
    );
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let n = (((ctl >> 1) as usize + 1) * 4).min(tail.len());
        let dir = if ctl & 1 == 0 {
            Dir::Client
        } else {
            Dir::Server
        };
        let rec = seals[dir.idx()].app(&tail[..n]);
        feed(&mut a, dir, &rec);
        rest = &tail[n..];
    }
    a.finish();
}

/// Writes the seeds of the keylog, decrypt, credssp, rdp and inside
/// targets from the generator's builders and the lab's key logs:
/// `cargo test --release --lib write_fuzz_seeds -- --ignored`.
#[cfg(test)]
mod seeds {
    use crate::synth;
    use std::path::Path;

    fn put(target: &str, name: &str, b: &[u8]) {
        let d = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("seed-{name}")), b).unwrap();
    }

    fn pdus() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("sei-7", synth::set_error_info(7)),
            ("sei-c", synth::set_error_info(0xC)),
            ("client-info", synth::client_info("alice", "CONTOSO")),
            ("license-valid", synth::license_error(7, 2)),
            ("license-none", synth::license_error(6, 2)),
            ("logon-error", synth::logon_error(0xFFFF_FFFA, 0)),
            (
                "redirect",
                synth::server_redirection("198.19.0.21", "Cookie: msts=1"),
            ),
            (
                "demand-active",
                synth::tpkt_dt(&synth::mcs_send(
                    false,
                    &synth::share_control(1, &synth::filler(40, 1)),
                )),
            ),
            ("ultimatum", vec![3, 0, 0, 9, 2, 0xf0, 0x80, 0x21, 0x80]),
        ]
    }

    fn tsrequests() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                "negotiate",
                synth::ts_request(6, Some(&synth::ntlm(1, "", "", "")), false, false, None),
            ),
            (
                "challenge",
                synth::ts_request(6, Some(&synth::ntlm(2, "", "", "")), false, false, None),
            ),
            (
                "authenticate",
                synth::ts_request(
                    6,
                    Some(&synth::ntlm(3, "alice", "CONTOSO", "WS")),
                    false,
                    true,
                    None,
                ),
            ),
            (
                "error",
                synth::ts_request(6, None, false, false, Some(0xC000006D)),
            ),
            ("auth-info", synth::ts_request(6, None, true, false, None)),
        ]
    }

    #[test]
    #[ignore = "writes fuzz/corpus seeds"]
    fn write_fuzz_seeds() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        for k in [
            "lab-tls-suites.keys",
            "win-keys.keys",
            "lab-keys-shadow-nla.keys",
            "lab-tls-rsa.key.pem",
        ] {
            put("keylog", k, &std::fs::read(samples.join(k)).unwrap());
        }
        for (n, b) in pdus() {
            // The MCS PDU after the TPKT and X.224 Data headers.
            put("rdp", n, b.get(7..).unwrap_or(&b));
        }
        for (n, b) in tsrequests() {
            put("credssp", n, &b);
        }
        // inside: the CredSSP exchange, the authorization result and the
        // connection sequence, each record with its control byte.
        let mut s = Vec::new();
        let mut rec = |dir: u8, b: &[u8]| {
            let mut b = b.to_vec();
            let n = b.len().div_ceil(4).clamp(1, 128);
            b.resize(n * 4, 0);
            s.push((((n - 1) as u8) << 1) | dir);
            s.extend(b);
        };
        let t = tsrequests();
        rec(0, &t[0].1);
        rec(1, &t[1].1);
        rec(0, &t[2].1);
        rec(1, &synth::ts_request(6, None, false, true, None));
        rec(0, &t[4].1);
        rec(1, &5u32.to_le_bytes());
        for (_, b) in pdus() {
            rec(1, &b);
        }
        put("inside", "session", &s);
        // tsgu: a gateway's answers in order, then DATA with a TPKT.
        let pkt = |typ: u16, body: &[u8]| {
            let mut v = typ.to_le_bytes().to_vec();
            v.extend([0, 0]);
            v.extend(((8 + body.len()) as u32).to_le_bytes());
            v.extend_from_slice(body);
            v
        };
        let mut g = pkt(2, &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        g.extend(pkt(
            5,
            &[1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0x3f, 0, 0, 0],
        ));
        g.extend(pkt(7, &[0xda, 0x59, 0x07, 0x80, 2, 0, 0, 0, 30, 0, 0, 0]));
        g.extend(pkt(9, &[0xdd, 0x59, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0]));
        g.extend(pkt(0xA, &[6, 0, 3, 0, 0, 6, 2, 0xf0]));
        g.extend(pkt(0xD, &[]));
        g.extend(pkt(0x10, &[0xca, 0x04, 0, 0]));
        put("tsgu", "gateway", &g);
        // websocket: a masked binary frame carrying the gateway packets, a
        // ping, a close with a reason.
        let mut w = vec![0x82, 0xfe];
        w.extend((g.len() as u16).to_be_bytes());
        w.extend([0x37, 0xfa, 0x21, 0x3d]);
        let mut body = g.clone();
        crate::proto::websocket::unmask(&mut body, [0x37, 0xfa, 0x21, 0x3d], 0);
        w.extend(body);
        w.extend([0x89, 0]);
        w.extend([0x88, 7, 0x03, 0xe8]);
        w.extend(b"bye!!");
        put("websocket", "frames", &w);
        // http: a gateway's OUT and IN requests, and its answers.
        put(
            "http",
            "requests",
            b"\0RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nRDG-Connection-Id: {1}\r\n\
              Content-Length: 0\r\n\r\nRDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\n\
              Transfer-Encoding: chunked\r\n\r\n8\r\n\x01\x00\x00\x00\x0e\x00\x00\x00\r\n0\r\n\r\n",
        );
        put(
            "http",
            "responses",
            b"\x01HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n\
              WWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n\xab\xcd",
        );
        // gateway: a two-channel OUT leg (401, 200 without length, the
        // seed, the packets) and a WebSocket leg, in control-byte pieces.
        let mut gw = Vec::new();
        let mut piece = |dir: u8, b: &[u8]| {
            for c in b.chunks(128) {
                let n = c.len();
                gw.push((((n - 1) as u8) << 1) | dir);
                gw.extend_from_slice(c);
            }
        };
        piece(
            0,
            b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nRDG-Connection-Id: {1}\r\n\
              Authorization: NTLM TlRMTVNTUAABAAAA\r\nContent-Length: 0\r\n\r\n",
        );
        piece(
            1,
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
        );
        let mut out = b"HTTP/1.1 200 OK\r\n\r\n\xab\xcd\xab\xcd\xab\xcd\xab\xcd\xab\xcd".to_vec();
        out.extend(&g);
        piece(1, &out);
        put("gateway", "two-channel", &gw);
        let mut gw2 = Vec::new();
        std::mem::swap(&mut gw, &mut gw2);
        let mut piece = |dir: u8, b: &[u8]| {
            for c in b.chunks(128) {
                let n = c.len();
                gw2.push((((n - 1) as u8) << 1) | dir);
                gw2.extend_from_slice(c);
            }
        };
        piece(
            0,
            b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\n\r\n",
        );
        piece(
            1,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        );
        piece(0, &w);
        put("gateway", "websocket", &gw2);
        // rts: the RPC-over-HTTP PDUs of a virtual connection (CONN/A1,
        // CONN/B1, CONN/A3, CONN/C2), a bind_ack and a fault.
        let rpdu = |ptype: u8, call: u32, body: &[u8]| {
            let mut v = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
            v.extend(((16 + body.len()) as u16).to_le_bytes());
            v.extend([0, 0]);
            v.extend(call.to_le_bytes());
            v.extend_from_slice(body);
            v
        };
        let rts_pdu = |cmds: &[(u32, &[u8])]| {
            let mut b = vec![0, 0];
            b.extend((cmds.len() as u16).to_le_bytes());
            for (t, v) in cmds {
                b.extend(t.to_le_bytes());
                b.extend_from_slice(v);
            }
            rpdu(20, 0, &b)
        };
        let one = 1u32.to_le_bytes();
        let win = 65536u32.to_le_bytes();
        let a1 = rts_pdu(&[(6, &one), (3, &[0xAA; 16]), (3, &[0xBB; 16]), (0, &win)]);
        let b1 = rts_pdu(&[
            (6, &one),
            (3, &[0xAA; 16]),
            (3, &[0xCC; 16]),
            (4, &0x4000_0000u32.to_le_bytes()),
            (5, &300_000u32.to_le_bytes()),
            (12, &[0xDD; 16]),
        ]);
        let mut srv = rts_pdu(&[(2, &120_000u32.to_le_bytes())]);
        srv.extend(rts_pdu(&[
            (6, &one),
            (0, &win),
            (2, &120_000u32.to_le_bytes()),
        ]));
        let mut ack = vec![0xD0, 0x16, 0xD0, 0x16, 0x34, 0x12, 0, 0, 5, 0];
        ack.extend(b"3388\0\0");
        ack.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        ack.extend([0; 20]);
        srv.extend(rpdu(12, 2, &ack));
        srv.extend(rpdu(
            3,
            3,
            &[0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0],
        ));
        let mut cli = b1.clone();
        cli.extend(rpdu(11, 2, &[0xD0, 0x16, 0xD0, 0x16, 0, 0, 0, 0]));
        cli.extend(rpdu(0, 3, &[0, 0, 0, 0, 0, 0, 1, 0, 0xEE, 0xEE]));
        put("rts", "out-channel", &[a1.clone(), srv.clone()].concat());
        put("rts", "in-channel", &cli);
        // gateway: an RPC OUT channel (NTLM, CONN/A1, the 200 and its PDUs).
        let mut gw3 = Vec::new();
        let mut piece = |dir: u8, b: &[u8]| {
            for c in b.chunks(128) {
                let n = c.len();
                gw3.push((((n - 1) as u8) << 1) | dir);
                gw3.extend_from_slice(c);
            }
        };
        piece(
            0,
            b"RPC_OUT_DATA /rpc/rpcproxy.dll?localhost:3388 HTTP/1.1\r\n\
              Authorization: NTLM TlRMTVNTUAABAAAA\r\nContent-Length: 0\r\n\r\n",
        );
        piece(
            1,
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
        );
        let mut req = b"RPC_OUT_DATA /rpc/rpcproxy.dll?localhost:3388 HTTP/1.1\r\n\
              Authorization: NTLM TlRMTVNTUAADAAAA\r\nContent-Length: 76\r\n\r\n"
            .to_vec();
        req.extend(&a1);
        piece(0, &req);
        let mut ok = b"HTTP/1.1 200 Success\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
        ok.extend(&srv);
        piece(1, &ok);
        put("gateway", "rpc-out", &gw3);
        // decrypt: every suite, a record of each kind.
        for i in 0..11u8 {
            let mut d = vec![i | if i % 2 == 1 { 0x80 } else { 0 }];
            d.extend(synth::filler(48, i as u64 + 1));
            for (typ, n) in [(23u8, 40u16), (21, 26), (0x18, 0), (22, 64)] {
                d.push(typ);
                d.extend(n.to_be_bytes());
                d.extend(synth::filler(n as usize, 7));
            }
            put("decrypt", &format!("suite-{i}"), &d);
        }
    }
}
