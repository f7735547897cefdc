//! Generates the bundled samples (`samples DIR`) and the benchmark capture
//! (`bench FILE --mib N [--small]`). Deterministic: the same command writes
//! the same bytes.

use rdpsift::synth::{self, flag, ip_packet, IpOpts, Pkt, TcpConv, C, S};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;

const T0: i64 = 1_714_557_600_000_000_000; // 2024-05-01T10:00:00Z
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
const CLIENT: &str = "198.18.0.10:50112";
const SERVER: &str = "198.19.0.20:3389";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let r = match args.get(1).map(String::as_str) {
        Some("samples") if args.len() == 3 => samples(Path::new(&args[2])),
        Some("bench-keyed") if args.len() >= 3 => {
            let n = flag_value(&args, "--sessions").unwrap_or(2000);
            bench_keyed(Path::new(&args[2]), n)
        }
        Some("hostile") if args.len() >= 4 => {
            let n = flag_value(&args, "--flows").unwrap_or(1_000_000);
            hostile(Path::new(&args[3]), &args[2], n)
        }
        Some("bench") if args.len() >= 3 => {
            let mib = flag_value(&args, "--mib").unwrap_or(1024);
            let small = args.iter().any(|a| a == "--small");
            let fmt = if args.iter().any(|a| a == "--pcapng") {
                synth::Format::PcapNg
            } else {
                synth::Format::Pcap
            };
            bench(Path::new(&args[2]), mib, small, fmt)
        }
        _ => {
            eprintln!(
                "usage: rdpsift-synth samples DIR | bench FILE [--mib N] [--small] [--pcapng] | bench-keyed FILE [--sessions N] | hostile syn|syn80|sweep|synrst|short|frag|udpsyn|rdg|dsb FILE [--flows N]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("rdpsift-synth: {e}");
        std::process::exit(1);
    }
}

fn flag_value(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn write(dir: &Path, name: &str, pkts: &[Pkt], fmt: synth::Format) -> std::io::Result<()> {
    std::fs::write(dir.join(name), synth::to_bytes(pkts, fmt))
}

/// The start of an RDP connection: handshake, X.224 CR (requesting `req`)
/// and CC (selecting `sel`).
fn rdp_start_with(c: &mut TcpConv, out: &mut Vec<Pkt>, req: u32, sel: u32) {
    c.handshake(out, 2 * MS);
    c.wait(MS)
        .send(out, C, &synth::x224_cr("alice", req), 2 * MS);
    c.wait(MS).send(out, S, &synth::x224_cc(sel), 2 * MS);
}

/// CR requesting SSL|HYBRID, CC selecting HYBRID (what mstsc and Windows do).
fn rdp_start(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    rdp_start_with(c, out, 0x3, 0x2);
}

/// The TLS 1.2 handshake after the confirm: ClientHello, the server's
/// flight with `cert`, both finishes.
fn tls_handshake(c: &mut TcpConv, out: &mut Vec<Pkt>, sni: &str, cert: &[u8]) {
    c.wait(MS)
        .send(out, C, &synth::tls_client_hello(Some(sni), &[]), 2 * MS);
    c.send(out, S, &synth::tls_server_flight(0xc030, cert), 2 * MS);
    c.send(out, C, &synth::tls_finish(true, 31), 2 * MS);
    c.send(out, S, &synth::tls_finish(false, 32), 2 * MS);
}

/// The client's TLS ClientHello for rdp-host.example.test.
fn client_hello(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.wait(MS).send(
        out,
        C,
        &synth::tls_client_hello(Some("rdp-host.example.test"), &[]),
        2 * MS,
    );
}

/// A CredSSP-shaped exchange inside TLS: three client records (negotiate,
/// authenticate + pubKeyAuth, credentials) and two server records.
fn nla(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.send(out, C, &synth::tls_app(90, 33), 2 * MS);
    c.send(out, S, &synth::tls_app(320, 34), 2 * MS);
    c.send(out, C, &synth::tls_app(650, 35), 2 * MS);
    c.send(out, S, &synth::tls_app(120, 36), 2 * MS);
    c.send(out, C, &synth::tls_app(180, 37), 2 * MS);
}

/// The RDP connection sequence inside TLS (MCS connect, channel joins,
/// client info, licensing, capabilities): small records both ways.
fn rdp_setup(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.send(out, C, &synth::tls_app(470, 40), 2 * MS);
    c.send(out, S, &synth::tls_app(340, 41), 2 * MS);
    for i in 0..6 {
        c.send(out, C, &synth::tls_app(45, 42 + i), MS);
        c.send(out, S, &synth::tls_app(50, 48 + i), MS);
    }
    c.send(out, C, &synth::tls_app(420, 54), 2 * MS);
}

/// Session data: `kib` KiB from the server in 16 KiB records, some input
/// from the client.
fn session(c: &mut TcpConv, out: &mut Vec<Pkt>, kib: usize) {
    c.send(out, S, &synth::tls_app(360, 55), 2 * MS);
    c.send(out, C, &synth::tls_app(600, 56), 2 * MS);
    let mut data = Vec::new();
    for i in 0..kib.div_ceil(16) {
        data.extend(synth::tls_app(16 * 1024, 60 + i as u64));
    }
    c.send(out, S, &data, 2 * MS);
    for i in 0..4 {
        c.send(out, C, &synth::tls_app(60, 90 + i), 20 * MS);
    }
}

/// A complete, healthy connection up to session data.
fn connected(c: &mut TcpConv, out: &mut Vec<Pkt>, kib: usize) {
    rdp_start(c, out);
    tls_handshake(c, out, "rdp-host.example.test", synth::CERT_HOST);
    nla(c, out);
    rdp_setup(c, out);
    session(c, out, kib);
}

/// Standard RDP Security client data (MS-RDPBCGR 2.2.1.3): an MCS Connect
/// Initial with core, security and network blocks after "Duca".
fn mcs_connect_initial() -> Vec<u8> {
    let mut core = vec![0u8; 212];
    core[0..4].copy_from_slice(&0x0008_0004u32.to_le_bytes());
    core[4..6].copy_from_slice(&1280u16.to_le_bytes());
    core[6..8].copy_from_slice(&1024u16.to_le_bytes());
    core[12..16].copy_from_slice(&0x409u32.to_le_bytes());
    core[16..20].copy_from_slice(&19041u32.to_le_bytes());
    for (i, ch) in "WS-ALICE".encode_utf16().enumerate() {
        core[20 + 2 * i..22 + 2 * i].copy_from_slice(&ch.to_le_bytes());
    }
    core[140..142].copy_from_slice(&1u16.to_le_bytes());
    let block = |typ: u16, body: &[u8]| {
        let mut v = typ.to_le_bytes().to_vec();
        v.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    };
    let mut net = 2u32.to_le_bytes().to_vec();
    net.extend_from_slice(b"rdpdr\0\0\0\x00\x00\x80\x80cliprdr\0\x00\x00\xa0\xc0");
    let mut ud = block(0xC001, &core);
    ud.extend(block(0xC002, &[3, 0, 0, 0, 0, 0, 0, 0]));
    ud.extend(block(0xC003, &net));
    mcs_pdu(&[0x7f, 0x65], b"Duca", &ud)
}

/// The server's MCS Connect Response with core and security blocks.
fn mcs_connect_response() -> Vec<u8> {
    mcs_connect_response_with(&[2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
}

/// The same with `security` as the security block's body.
fn mcs_connect_response_with(security: &[u8]) -> Vec<u8> {
    let block = |typ: u16, body: &[u8]| {
        let mut v = typ.to_le_bytes().to_vec();
        v.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    };
    let mut ud = block(0x0C01, &[4, 0, 8, 0, 0, 0, 0, 0]);
    ud.extend(block(0x0C02, security));
    mcs_pdu(&[0x7f, 0x66], b"McDn", &ud)
}

/// TPKT + X.224 DT + a BER tag, filler standing in for the T.125/T.124
/// headers, the H.221 key and a two-byte PER length, then the blocks.
fn mcs_pdu(tag: &[u8], key: &[u8], ud: &[u8]) -> Vec<u8> {
    let mut body = tag.to_vec();
    body.extend_from_slice(&[0x82, 0x01, 0x00]);
    body.extend(synth::filler(20, 7).iter().map(|b| b & 0x3f));
    body.extend_from_slice(key);
    body.push(0x80 | (ud.len() >> 8) as u8);
    body.push(ud.len() as u8);
    body.extend_from_slice(ud);
    let len = 7 + body.len();
    let mut v = vec![0x03, 0x00];
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0x02, 0xf0, 0x80]);
    v.extend(body);
    v
}

/// A Connection Request without negotiation data (a legacy client).
fn x224_cr_legacy(user: &str) -> Vec<u8> {
    let mut v = synth::x224_cr(user, 0);
    v.truncate(v.len() - 8);
    let len = v.len();
    v[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    v[4] = (len - 5) as u8;
    v
}

/// A Connection Confirm without negotiation data.
const CC_LEGACY: [u8; 11] = [0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0, 0, 0x12, 0x34, 0];

fn samples(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pcap = synth::Format::Pcap;

    // A healthy session: negotiation, TLS 1.2, NLA, connection sequence,
    // 100 KiB of session data, the client closes.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    connected(&mut c, &mut out, 100);
    c.wait(500 * MS).close(&mut out, C, 2 * MS);
    write(dir, "healthy.pcap", &out, pcap)?;

    // Three SYNs, nothing back.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.syn(&mut out)
        .syn_again(&mut out, SEC)
        .syn_again(&mut out, 2 * SEC);
    write(dir, "syn-unanswered.pcap", &out, pcap)?;

    // SYN answered by RST/ACK.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.syn(&mut out);
    c.seq[C] = c.seq[C].wrapping_add(1);
    c.wait(MS).rst(&mut out, S);
    write(dir, "refused.pcap", &out, pcap)?;

    // A scan and a sweep (tcp.scan): 70 hosts each send one SYN to the
    // server 100 ms apart, every tenth refused; then one host sends a SYN
    // to port 3389 of 70 servers, none answered; a last datagram 5 s on
    // ends the capture (a SYN counts as unanswered after 3 s).
    let mut out = vec![];
    let mut t = T0;
    for k in 0..70 {
        let mut c = TcpConv::new(&format!("198.18.3.{}:{}", k + 1, 40000 + k), SERVER, t);
        c.syn(&mut out);
        if k % 10 == 9 {
            c.seq[C] = c.seq[C].wrapping_add(1);
            c.wait(MS).rst(&mut out, S);
        }
        t += 100 * MS;
    }
    for k in 0..70 {
        let mut c = TcpConv::new(
            &format!("198.18.9.9:{}", 50000 + k),
            &format!("198.19.5.{}:3389", k + 1),
            t,
        );
        c.syn(&mut out);
        t += 100 * MS;
    }
    out.push(synth::udp_pkt(
        "198.18.9.9:5353".parse().unwrap(),
        "198.19.5.1:5353".parse().unwrap(),
        b"end",
        t + 5 * SEC,
    ));
    write(dir, "scan.pcap", &out, pcap)?;

    // SYN answered by ICMP "administratively prohibited" from a router.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.syn(&mut out);
    let p = synth::icmp_error("198.18.0.1", c.client.ip(), 13, 0, &out[0], T0 + 3 * MS);
    out.push(p);
    write(dir, "icmp-unreachable.pcap", &out, pcap)?;

    // The server resets a session that had been running.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    connected(&mut c, &mut out, 80);
    c.wait(40 * MS).rst(&mut out, S);
    write(dir, "reset-by-server.pcap", &out, pcap)?;

    // The client resets during the connection sequence (IPv6, pcapng).
    let mut out = vec![];
    let mut c = TcpConv::new("[2001:db8::10]:50114", "[2001:db8:1::20]:3389", T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    c.wait(5 * MS).rst(&mut out, C);
    write(dir, "reset-by-client.pcapng", &out, synth::Format::PcapNg)?;

    // TLS without NLA (SSL selected); the server closes with a FIN right
    // after the handshake (nanosecond pcap).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start_with(&mut c, &mut out, 0x1, 0x1);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    c.wait(10 * MS).close(&mut out, S, 2 * MS);
    write(dir, "closed-by-server.pcap", &out, synth::Format::PcapNanos)?;

    // After NLA and the first connection-sequence records nothing moves for
    // 25 s; the client gives up with a reset.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    c.send(&mut out, C, &synth::tls_app(470, 40), 2 * MS);
    c.wait(25 * SEC).rst(&mut out, C);
    write(dir, "stalled.pcap", &out, pcap)?;

    // The server's flight is retransmitted: four of ten segments sent again, one three times.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    client_hello(&mut c, &mut out);
    let mut flight = synth::tls_server_flight(0xc030, synth::CERT_HOST);
    let rest = 14600 - flight.len();
    flight.extend(synth::tls_app(rest, 12));
    for (i, seg) in flight.chunks(1460).enumerate() {
        let s = c.seq[S];
        c.raw(&mut out, S, s, flag::PSH, true, None, seg);
        if i % 3 == 0 {
            c.wait(200 * MS)
                .raw(&mut out, S, s, flag::PSH, true, None, seg);
        }
        if i == 0 {
            c.wait(400 * MS)
                .raw(&mut out, S, s, flag::PSH, true, None, seg);
        }
        c.seq[S] = c.seq[S].wrapping_add(seg.len() as u32);
        c.wait(2 * MS).ack(&mut out, C);
    }
    c.send(&mut out, C, &synth::tls_finish(true, 13), 2 * MS);
    c.send(&mut out, S, &synth::tls_finish(false, 14), 2 * MS);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    session(&mut c, &mut out, 64);
    c.wait(100 * MS).close(&mut out, C, 2 * MS);
    write(dir, "retransmissions.pcap", &out, pcap)?;

    // The client advertises a zero window in the middle of the session (big-endian pcap).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    connected(&mut c, &mut out, 32);
    c.window[C] = 0;
    c.wait(300 * MS).ack(&mut out, C);
    c.window[C] = 64240;
    c.wait(300 * MS).ack(&mut out, C);
    c.send(&mut out, S, &synth::tls_app(2000, 16), 2 * MS);
    c.wait(10 * MS).close(&mut out, C, 2 * MS);
    write(dir, "zero-window.pcap", &out, synth::Format::PcapBigEndian)?;

    fragmented_udp(dir)?;

    // A healthy session whose file was cut inside the last record.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    let mut bytes = synth::to_bytes(&out, pcap);
    bytes.truncate(bytes.len() - 20);
    std::fs::write(dir.join("truncated.pcap"), bytes)?;

    // The capture missed a server segment that the client acknowledged.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    let mut flight = vec![];
    c.send(&mut flight, S, &synth::tls_app(4380, 21), 2 * MS);
    flight.remove(2); // the second data segment, never captured
    out.extend(flight);
    c.send(&mut out, C, &synth::tls_app(200, 22), 2 * MS);
    c.wait(10 * MS).close(&mut out, C, 2 * MS);
    write(dir, "capture-loss.pcap", &out, pcap)?;

    // RDP through a SOCKS5 proxy on port 1080: found by content; the proxy
    // hangs up after the Connection Request.
    let mut out = vec![];
    let mut c = TcpConv::new("198.18.0.10:50300", "198.19.0.30:1080", T0);
    c.handshake(&mut out, 2 * MS);
    c.send(&mut out, C, &[5, 1, 0], 2 * MS);
    c.send(&mut out, S, &[5, 0], 2 * MS);
    c.send(
        &mut out,
        C,
        &[5, 1, 0, 1, 198, 19, 0, 20, 0x0d, 0x3d],
        2 * MS,
    );
    c.send(
        &mut out,
        S,
        &[5, 0, 0, 1, 198, 19, 0, 20, 0x0d, 0x3d],
        2 * MS,
    );
    c.send(&mut out, C, &synth::x224_cr("alice", 0x3), 2 * MS);
    c.wait(5 * MS).close(&mut out, S, 2 * MS);
    // And an ordinary web flow on 8080 beside it, which is not reported.
    let mut w = TcpConv::new("198.18.0.10:50301", "198.19.0.30:8080", T0 + MS);
    w.handshake(&mut out, 2 * MS);
    w.send(&mut out, C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2 * MS);
    w.close(&mut out, C, 2 * MS);
    out.sort_by_key(|p| p.ts);
    write(dir, "socks5-rdp.pcap", &out, pcap)?;

    // Every RDP_NEG_FAILURE code, each answered by the client's RST/ACK
    // (what Windows clients do). Requests as a client that gets each.
    for (code, req, name) in [
        (1u32, 0x0u32, "neg-ssl-required.pcap"),
        (2, 0x3, "neg-ssl-not-allowed.pcap"),
        (3, 0x1, "neg-ssl-cert-not-on-server.pcap"),
        (4, 0x3, "neg-inconsistent-flags.pcap"),
        (5, 0x1, "neg-hybrid-required.pcap"),
        (6, 0x3, "neg-ssl-with-user-auth-required.pcap"),
    ] {
        let mut out = vec![];
        let mut c = TcpConv::new(CLIENT, SERVER, T0);
        c.handshake(&mut out, 2 * MS);
        c.wait(MS)
            .send(&mut out, C, &synth::x224_cr("alice", req), 2 * MS);
        c.wait(MS)
            .send(&mut out, S, &synth::x224_cc_failure(code), 2 * MS);
        c.wait(MS).rst(&mut out, C);
        write(dir, name, &out, pcap)?;
    }

    // A fallback: HYBRID_EX|HYBRID|SSL refused with SSL_NOT_ALLOWED_BY_SERVER,
    // then a new connection with Standard RDP Security that works.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.handshake(&mut out, 2 * MS);
    c.wait(MS)
        .send(&mut out, C, &synth::x224_cr("alice", 0xb), 2 * MS);
    c.wait(MS)
        .send(&mut out, S, &synth::x224_cc_failure(2), 2 * MS);
    c.wait(MS).rst(&mut out, C);
    let mut c = TcpConv::new("198.18.0.10:50113", SERVER, c.now + 150 * MS);
    rdp_start_with(&mut c, &mut out, 0x0, 0x0);
    c.send(&mut out, C, &mcs_connect_initial(), 2 * MS);
    c.send(&mut out, S, &mcs_connect_response(), 2 * MS);
    for i in 0..40 {
        c.send(&mut out, S, &synth::fastpath_pdu(1400, 200 + i), MS);
        c.send(&mut out, C, &synth::fastpath_pdu(40, 300 + i), MS);
    }
    c.wait(SEC).close(&mut out, C, 2 * MS);
    write(dir, "fallback.pcap", &out, pcap)?;

    // The server answers the ClientHello with a fatal handshake_failure.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start_with(&mut c, &mut out, 0x3, 0x1);
    client_hello(&mut c, &mut out);
    c.send(&mut out, S, &synth::tls_alert(2, 40), 2 * MS);
    c.wait(MS).close(&mut out, S, 2 * MS);
    write(dir, "tls-alert.pcap", &out, pcap)?;

    // An expired certificate: the client sends certificate_expired and leaves.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.wait(MS).send(
        &mut out,
        C,
        &synth::tls_client_hello(Some("rdp-old.example.test"), &[]),
        2 * MS,
    );
    c.send(
        &mut out,
        S,
        &synth::tls_server_flight(0xc030, synth::CERT_EXPIRED),
        2 * MS,
    );
    c.send(&mut out, C, &synth::tls_alert(2, 45), 2 * MS);
    c.wait(MS).close(&mut out, C, 2 * MS);
    write(dir, "cert-expired.pcap", &out, pcap)?;

    // NLA: two CredSSP messages from the client, one answer, then the
    // server closes.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    c.send(&mut out, C, &synth::tls_app(90, 33), 2 * MS);
    c.send(&mut out, S, &synth::tls_app(320, 34), 2 * MS);
    c.send(&mut out, C, &synth::tls_app(650, 35), 2 * MS);
    c.wait(30 * MS).close(&mut out, S, 2 * MS);
    write(dir, "nla-stalled.pcap", &out, pcap)?;

    // The server denies the connection during the connection sequence: a
    // 65-byte record (Set Error Info size under AES-GCM), a 46-byte one,
    // then its FIN.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    c.send(&mut out, S, &synth::tls_app(65, 70), 2 * MS);
    c.send(&mut out, S, &synth::tls_app(46, 71), 2 * MS);
    c.wait(MS).close(&mut out, S, 2 * MS);
    write(dir, "server-denied.pcap", &out, pcap)?;

    // A healthy session to RDP on a non-standard port (found by content).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, "198.19.0.20:53389", T0);
    connected(&mut c, &mut out, 80);
    c.wait(500 * MS).close(&mut out, C, 2 * MS);
    write(dir, "nonstandard-port.pcap", &out, pcap)?;

    // xrdp-like: the client asks for SSL|HYBRID, the server selects
    // Standard RDP Security; the client closes.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start_with(&mut c, &mut out, 0x3, 0x0);
    c.wait(2 * MS).close(&mut out, C, 2 * MS);
    write(dir, "unrequested-protocol.pcap", &out, pcap)?;

    // The client refuses what the server selected (SSL without NLA).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start_with(&mut c, &mut out, 0x3, 0x1);
    c.wait(3 * MS).rst(&mut out, C);
    write(dir, "client-aborted.pcap", &out, pcap)?;

    // Something that is not RDP owns port 3389: it closes on the request.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.handshake(&mut out, 2 * MS);
    c.wait(MS)
        .send(&mut out, C, &synth::x224_cr("alice", 0x3), 2 * MS);
    c.wait(MS).close(&mut out, S, 2 * MS);
    write(dir, "no-confirm.pcap", &out, pcap)?;

    // A legacy client (no negotiation data): the server confirms, then
    // resets on the MCS Connect Initial.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.handshake(&mut out, 2 * MS);
    c.wait(MS)
        .send(&mut out, C, &x224_cr_legacy("alice"), 2 * MS);
    c.wait(MS).send(&mut out, S, &CC_LEGACY, 2 * MS);
    c.send(&mut out, C, &mcs_connect_initial(), 2 * MS);
    c.wait(MS).rst(&mut out, S);
    write(dir, "legacy-rejected.pcap", &out, pcap)?;

    // A firewall resets the connection in the server's name during the TLS
    // handshake: its TTL (62) is not the server's (118 here).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.ttl[S] = 118;
    rdp_start(&mut c, &mut out);
    client_hello(&mut c, &mut out);
    c.ttl[S] = 62;
    c.wait(MS).rst(&mut out, S);
    write(dir, "middlebox-reset.pcap", &out, pcap)?;

    // The name does not resolve: A and AAAA answered NXDOMAIN; the client
    // never connects (analyzed with --target, see tests/expected/*.args).
    let cl: SocketAddr = "198.18.0.10:53001".parse().unwrap();
    let ns: SocketAddr = "198.18.0.53:53".parse().unwrap();
    let mut out = vec![];
    for (i, qtype) in [1u16, 28].into_iter().enumerate() {
        let t = T0 + i as i64 * MS;
        let id = 0x4a00 + i as u16;
        let q = dns_message(id, false, 0, "rdp-host.example.test", qtype);
        out.push(synth::udp_pkt(cl, ns, &q, t));
        let a = dns_message(id, true, 3, "rdp-host.example.test", qtype);
        out.push(synth::udp_pkt(ns, cl, &a, t + 20 * MS));
    }
    out.sort_by_key(|p| p.ts);
    write(dir, "dns-nxdomain.pcap", &out, pcap)?;

    // The name the user typed does not resolve (the client's DNS suffix
    // appended: NXDOMAIN for A and AAAA); a second later the same client
    // tries the server by address and is refused. Analyzed without
    // --target: the failed lookup is context of the refused attempt.
    let mut out = vec![];
    for (i, qtype) in [1u16, 28].into_iter().enumerate() {
        let t = T0 + i as i64 * MS;
        let id = 0x4c00 + i as u16;
        let q = dns_message(id, false, 0, "rdp-host.corp.example.test", qtype);
        out.push(synth::udp_pkt(cl, ns, &q, t));
        let a = dns_message(id, true, 3, "rdp-host.corp.example.test", qtype);
        out.push(synth::udp_pkt(ns, cl, &a, t + 20 * MS));
    }
    let mut c = TcpConv::new(CLIENT, SERVER, T0 + SEC);
    c.syn(&mut out);
    c.seq[C] = c.seq[C].wrapping_add(1);
    c.wait(MS).rst(&mut out, S);
    out.sort_by_key(|p| p.ts);
    write(dir, "dns-typed-name.pcap", &out, pcap)?;

    // The DNS server never answers: three tries a second apart, and the
    // capture runs on for 3 s more.
    let mut out = vec![];
    for i in 0..3 {
        let q = dns_message(0x5b00 + i, false, 0, "rdp-host.example.test", 1);
        out.push(synth::udp_pkt(cl, ns, &q, T0 + i as i64 * SEC));
    }
    let mut c = TcpConv::new("198.18.0.10:50400", "198.19.0.99:443", T0 + 5 * SEC);
    c.handshake(&mut out, 2 * MS);
    write(dir, "dns-no-response.pcap", &out, pcap)?;
    path_samples(dir)?;
    windows_samples(dir)?;
    keyed_samples(dir)?;
    gateway_samples(dir)?;
    Ok(())
}

/// A WebSocket frame (RFC 6455 §5.2): binary (or `op`), masked with `key`
/// when the client sends it.
fn ws_frame(op: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | op];
    let m = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    let mut p = payload.to_vec();
    if let Some(k) = key {
        f.extend(k);
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    f.extend(p);
    f
}

/// The "wst" WebSocket transport of Azure Virtual Desktop / Windows 365
/// gateways (FreeRDP wst.c: `GET` with an upgrade and a bearer token, then
/// the RDP stream itself in binary frames). SYNTHETIC: no Debian client
/// speaks it (FreeRDP 2.11 has no wst), and a real one is TLS to
/// *.wvd.microsoft.com; these are its plaintext as a TLS-terminating
/// proxy's gateway side would show it, built from FreeRDP's wst.c and
/// RFC 6455.
fn gateway_samples(dir: &Path) -> std::io::Result<()> {
    let pcap = synth::Format::Pcap;
    let host = "rdgateway-c101-eus-r1.wvd.microsoft.com";
    let key = Some([0x1d, 0x5a, 0x77, 0x02]);
    let get = |token: &str| {
        format!(
            "GET /remoteDesktopGateway/?CorrelationId=5d0f1a3e-0000-4000-8000-00000000c0de HTTP/1.1\r\n\
             Host: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .into_bytes()
    };
    // A working tunnel: 101, then X.224, TLS and a session in the frames.
    let mut out = vec![];
    let mut c = TcpConv::new("198.18.0.10:50600", "198.19.0.40:80", T0);
    c.handshake(&mut out, 2 * MS);
    c.wait(MS).send(
        &mut out,
        C,
        &get("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.c2Vzc2lvbg.c2ln"),
        30 * MS,
    );
    c.wait(MS).send(
        &mut out,
        S,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        2 * MS,
    );
    c.wait(MS).send(
        &mut out,
        C,
        &ws_frame(2, &synth::x224_cr("alice", 3), key),
        20 * MS,
    );
    c.wait(MS)
        .send(&mut out, S, &ws_frame(2, &synth::x224_cc(2), None), 20 * MS);
    c.wait(MS).send(
        &mut out,
        C,
        &ws_frame(
            2,
            &synth::tls_client_hello(Some("rdp-host.example.test"), &[0x0303]),
            key,
        ),
        20 * MS,
    );
    c.wait(MS).send(
        &mut out,
        S,
        &ws_frame(2, &synth::tls_server_flight(0xc030, synth::CERT_HOST), None),
        20 * MS,
    );
    c.wait(MS).send(
        &mut out,
        C,
        &ws_frame(2, &synth::tls_finish(true, 7), key),
        20 * MS,
    );
    c.wait(MS).send(
        &mut out,
        S,
        &ws_frame(2, &synth::tls_finish(false, 8), None),
        20 * MS,
    );
    for i in 0..12u64 {
        c.wait(40 * MS).send(
            &mut out,
            C,
            &ws_frame(2, &synth::tls_app(120, 500 + i), key),
            20 * MS,
        );
        c.wait(5 * MS).send(
            &mut out,
            S,
            &ws_frame(2, &synth::tls_app(1400, 600 + i), None),
            20 * MS,
        );
    }
    c.wait(SEC)
        .send(&mut out, C, &ws_frame(8, &[0x03, 0xe8], key), 20 * MS);
    c.wait(MS)
        .send(&mut out, S, &ws_frame(8, &[0x03, 0xe8], None), 20 * MS);
    c.wait(MS).close(&mut out, C, 2 * MS);
    write(dir, "gateway-wst.pcap", &out, pcap)?;

    // The same gateway refusing an expired token: 401 with a Bearer
    // challenge (RFC 6750 §3), the client gives up.
    let mut out = vec![];
    let mut c = TcpConv::new("198.18.0.10:50610", "198.19.0.40:80", T0);
    c.handshake(&mut out, 2 * MS);
    c.wait(MS).send(
        &mut out,
        C,
        &get("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.ZXhwaXJlZA.c2ln"),
        30 * MS,
    );
    c.wait(MS).send(
        &mut out,
        S,
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\", \
          error_description=\"The access token expired\"\r\nContent-Length: 0\r\n\r\n",
        2 * MS,
    );
    c.wait(20 * MS).close(&mut out, C, 2 * MS);
    write(dir, "gateway-wst-expired.pcap", &out, pcap)?;
    Ok(())
}

/// The KDC of the Windows-shaped samples, and the UDP port its client uses.
const KDC: &str = "198.18.0.88:88";

/// One Kerberos exchange over UDP: `req` from the client, `rep` 2 ms later.
fn kdc_exchange(out: &mut Vec<Pkt>, client_port: u16, req: &[u8], rep: &[u8], ts: i64) {
    let cl: SocketAddr = format!("198.18.0.10:{client_port}").parse().unwrap();
    let kdc: SocketAddr = KDC.parse().unwrap();
    out.push(synth::udp_pkt(cl, kdc, req, ts));
    out.push(synth::udp_pkt(kdc, cl, rep, ts + 2 * MS));
}

/// The user's logon to the domain as the capture shows it: AS-REQ without
/// pre-authentication, KRB-ERROR 25 PREAUTH_REQUIRED, AS-REQ again, and
/// `last` (an AS-REP, or the KDC's refusal).
fn kdc_logon(out: &mut Vec<Pkt>, ts: i64, last: &[u8]) {
    let tgt = ["krbtgt", synth::KRB_REALM];
    let req = synth::krb_req(10, Some("alice"), &tgt, 1_714_600_000);
    let pre = synth::krb_error(25, "alice", &tgt, ts / SEC);
    kdc_exchange(out, 51001, &req, &pre, ts);
    kdc_exchange(out, 51002, &req, last, ts + 10 * MS);
}

/// How the CredSSP exchange of a Windows-shaped session goes.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    /// NTLM: NEGOTIATE 81, CHALLENGE 319, AUTHENTICATE + pubKeyAuth 740.
    Ntlm,
    /// Kerberos: the AP-REQ with the service ticket, about 1.9 KB.
    Kerberos,
}

/// The TCP handshake and the X.224 exchange of a Windows client:
/// SSL|HYBRID|HYBRID_EX requested, HYBRID_EX selected.
fn win_negotiate(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.handshake(out, MS);
    c.wait(MS).send(out, C, &synth::x224_cr("alice", 0xB), MS);
    c.wait(MS).send(out, S, &synth::x224_cc(0x8), MS);
}

/// A TLS 1.2 handshake (ECDHE-RSA-AES256-GCM-SHA384) with `sni`.
fn win_tls(c: &mut TcpConv, out: &mut Vec<Pkt>, sni: Option<&str>) {
    c.wait(MS)
        .send(out, C, &synth::tls_client_hello(sni, &[]), MS);
    c.send(
        out,
        S,
        &synth::tls_server_flight(0xc030, synth::CERT_HOST),
        MS,
    );
    c.send(out, C, &synth::tls_finish(true, 31), MS);
    c.send(out, S, &synth::tls_finish(false, 32), MS);
}

/// The server ending the connection after `wait`: Set Error Info (60),
/// the ultimatum (33), its FIN; the client resets.
fn win_server_ends(c: &mut TcpConv, out: &mut Vec<Pkt>, wait: i64, seed: u64) {
    c.wait(wait)
        .send(out, S, &synth::tls_sealed(60, seed), MS / 2);
    c.send(out, S, &synth::tls_sealed(33, seed + 1), MS / 2);
    c.fin(out, S);
    c.wait(MS / 2).rst(out, C);
}

/// A Windows 11 → Server 2022-shaped connection up to the end of CredSSP
/// (record lengths of PROTOCOLS.md §8 under TLS 1.2 AES-256-GCM): X.224
/// with SSL|HYBRID|HYBRID_EX requested and HYBRID_EX selected, the TLS
/// handshake, the client's CredSSP records and the server's answers up
/// to its pubKeyAuth; without `ok`, the server's answer to the
/// AUTHENTICATE is the 39-byte TSRequest with an errorCode.
fn win_credssp(c: &mut TcpConv, out: &mut Vec<Pkt>, sni: Option<&str>, auth: Auth, ok: bool) {
    let sealed = |n: usize, seed: u64| synth::tls_sealed(n, seed);
    win_negotiate(c, out);
    win_tls(c, out, sni);
    match auth {
        Auth::Ntlm => {
            c.wait(MS).send(out, C, &sealed(81, 100), MS);
            c.send(out, S, &sealed(319, 101), MS);
            c.wait(2 * MS).send(out, C, &sealed(740, 102), MS);
        }
        Auth::Kerberos => {
            c.wait(MS).send(out, C, &sealed(1893, 100), MS);
            c.send(out, S, &sealed(237, 101), MS);
        }
    }
    if !ok {
        c.wait(2 * MS).send(out, S, &sealed(39, 103), MS);
        return;
    }
    c.send(out, S, &sealed(83, 103), MS);
    c.send(out, C, &sealed(179, 104), MS);
}

/// After CredSSP: the Early User Authorization Result (28), then the
/// connection sequence up to licensing: MCS Connect Initial 486 /
/// Response 150, Erect Domain 36, Attach User 32 / Confirm 35, 7 channel
/// joins 36 / 39, Client Info 457, the License Error (valid client) 58.
fn win_to_licensing(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    let sealed = |n: usize, seed: u64| synth::tls_sealed(n, seed);
    c.send(out, S, &sealed(28, 110), MS);
    c.send(out, C, &sealed(486, 111), MS);
    c.send(out, S, &sealed(150, 112), MS);
    c.send(out, C, &[sealed(36, 113), sealed(32, 114)].concat(), MS);
    c.send(out, S, &sealed(35, 115), MS);
    for i in 0..7 {
        c.send(out, C, &sealed(36, 120 + i), MS);
        c.send(out, S, &sealed(39, 130 + i), MS);
    }
    c.send(out, C, &sealed(457, 140), MS);
    c.wait(5 * MS).send(out, S, &sealed(58, 141), MS);
}

/// Licensing done: Demand Active 496, Confirm Active 635, Synchronize and
/// Control each way, then `secs` seconds of an active session: graphics
/// records of 600–1600 bytes from the server, 38–52-byte input records
/// and acknowledgements from the client, about 40 records a second.
fn win_active(c: &mut TcpConv, out: &mut Vec<Pkt>, secs: usize) {
    let sealed = |n: usize, seed: u64| synth::tls_sealed(n, seed);
    c.send(out, S, &sealed(496, 150), MS);
    c.send(out, C, &sealed(635, 151), MS);
    c.send(
        out,
        C,
        &[sealed(60, 152), sealed(64, 153), sealed(64, 154)].concat(),
        MS,
    );
    c.send(
        out,
        S,
        &[sealed(60, 155), sealed(64, 156), sealed(64, 157)].concat(),
        MS,
    );
    let mut seed = 200;
    for _ in 0..secs * 10 {
        let mut g = Vec::new();
        for k in 0..3 {
            seed += 1;
            g.extend(sealed(600 + (seed as usize * 337) % 1000, seed + k));
        }
        c.wait(20 * MS).send(out, S, &g, MS);
        seed += 1;
        c.wait(40 * MS)
            .send(out, C, &sealed(38 + (seed as usize % 15), seed), MS);
    }
}

/// The server's end of a session the user closed: Set Error Info (60), a
/// little more graphics, the Disconnect Provider Ultimatum (33), and the
/// client's RST/ACK within a millisecond (mstsc closes abortively).
fn win_user_closes(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.wait(300 * MS)
        .send(out, S, &synth::tls_sealed(60, 900), MS / 2);
    c.send(out, S, &synth::tls_sealed(1184, 901), MS / 2);
    c.send(out, S, &synth::tls_sealed(33, 902), MS / 2);
    c.wait(MS / 2).rst(out, C);
}

/// A Windows-shaped session whose TLS records are really sealed
/// (ECDHE-RSA-AES256-GCM-SHA384 under the key log of
/// `synth::keyed_keylog`), so the server's own reasons can be read inside.
struct Keyed {
    c: TcpConv,
    seal: [synth::Seal; 2],
}

impl Keyed {
    /// The TCP handshake, X.224 (HYBRID_EX selected) and the TLS
    /// handshake with sealed Finished messages.
    fn start(out: &mut Vec<Pkt>, host: Option<&str>) -> Keyed {
        Keyed::start_with(
            out,
            TcpConv::new(CLIENT, SERVER, T0),
            &synth::x224_cr("alice", 0xB),
            host,
        )
    }

    /// The same on connection `c`, whose Connection Request is `cr`.
    fn start_with(out: &mut Vec<Pkt>, mut c: TcpConv, cr: &[u8], host: Option<&str>) -> Keyed {
        let mut seal = synth::keyed_seals();
        c.handshake(out, MS);
        c.wait(MS).send(out, C, cr, MS);
        c.wait(MS).send(out, S, &synth::x224_cc(0x8), MS);
        c.wait(MS)
            .send(out, C, &synth::tls_client_hello(host, &[]), MS);
        c.send(
            out,
            S,
            &synth::tls_server_flight(0xc030, synth::CERT_HOST),
            MS,
        );
        c.send(out, C, &synth::keyed_finish(&mut seal[C], true), MS);
        c.send(out, S, &synth::keyed_finish(&mut seal[S], false), MS);
        Keyed { c, seal }
    }

    /// One record of `dir` carrying `plain`.
    fn send(&mut self, out: &mut Vec<Pkt>, dir: usize, plain: &[u8]) -> &mut Self {
        let r = self.seal[dir].app(plain);
        self.c.send(out, dir, &r, MS);
        self
    }

    /// CredSSP with NTLM (client at TSRequest version 6, the server at
    /// `server_version`): NEGOTIATE, CHALLENGE, AUTHENTICATE with
    /// pubKeyAuth; then the server's `answer`: its pubKeyAuth and the
    /// client's credentials (`None`), an errorCode, or nothing.
    fn credssp(&mut self, out: &mut Vec<Pkt>, server_version: u8, answer: Answer) {
        let neg = synth::ntlm(1, "", "", "");
        let chal = synth::ntlm(2, "", "", "");
        let auth = synth::ntlm(3, "alice", "CONTOSO", "WS-ALICE");
        self.send(
            out,
            C,
            &synth::ts_request(6, Some(&neg), false, false, None),
        );
        self.send(
            out,
            S,
            &synth::ts_request(server_version, Some(&chal), false, false, None),
        );
        if answer == Answer::Stop {
            return;
        }
        self.c.wait(2 * MS);
        self.send(
            out,
            C,
            &synth::ts_request(6, Some(&auth), false, true, None),
        );
        match answer {
            Answer::Error(code) => {
                self.c.wait(2 * MS);
                self.send(
                    out,
                    S,
                    &synth::ts_request(6, None, false, false, Some(code)),
                );
            }
            _ => {
                self.send(out, S, &synth::ts_request(6, None, false, true, None));
                self.send(out, C, &synth::ts_request(6, None, true, false, None));
            }
        }
    }

    /// The Early User Authorization Result, the MCS connect, the Client
    /// Info PDU and the server's licensing answer (`license`: its error
    /// code; 7 STATUS_VALID_CLIENT is the normal one).
    fn through_licensing(&mut self, out: &mut Vec<Pkt>, license: u32) {
        self.send(out, S, &0u32.to_le_bytes());
        self.send(out, C, &mcs_connect_initial());
        self.send(out, S, &mcs_connect_response());
        self.send(out, C, &synth::client_info("alice", "CONTOSO"));
        self.c.wait(5 * MS);
        self.send(out, S, &synth::license_error(license, 2));
    }

    /// Demand Active, Confirm Active, then `secs` seconds of fast-path
    /// graphics and input.
    fn active(&mut self, out: &mut Vec<Pkt>, secs: usize) {
        let da = synth::tpkt_dt(&synth::mcs_send(
            false,
            &synth::share_control(1, &synth::filler(450, 150)),
        ));
        let ca = synth::tpkt_dt(&synth::mcs_send(
            true,
            &synth::share_control(3, &synth::filler(590, 151)),
        ));
        self.send(out, S, &da);
        self.send(out, C, &ca);
        for k in 0..secs as u64 * 10 {
            self.c.wait(20 * MS);
            self.send(
                out,
                S,
                &synth::fastpath_pdu(600 + (k as usize * 337) % 1000, 200 + k),
            );
            self.c.wait(40 * MS);
            self.send(
                out,
                C,
                &synth::fastpath_pdu(14 + (k as usize % 15), 300 + k),
            );
        }
    }

    /// The server ends the connection: Set Error Info `code`, the
    /// ultimatum, its FIN; the client resets (as mstsc does).
    fn server_ends(&mut self, out: &mut Vec<Pkt>, wait: i64, code: u32) {
        self.c.wait(wait);
        self.send(out, S, &synth::set_error_info(code));
        self.send(out, S, &ULTIMATUM);
        self.c.fin(out, S);
        self.c.wait(MS / 2).rst(out, C);
    }
}

/// The MCS Disconnect Provider Ultimatum (rn-user-requested) in its TPKT.
const ULTIMATUM: [u8; 9] = [0x03, 0x00, 0x00, 0x09, 0x02, 0xf0, 0x80, 0x21, 0x80];

/// How the server answers the client's NTLM AUTHENTICATE.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Error(u32),
    /// The client stops after the CHALLENGE.
    Stop,
}

/// Keyed Windows-shaped samples (`win-keys-*.pcap`, all opened by
/// `win-keys.keys`): what the server says inside TLS. No Debian peer sends
/// these PDUs (FreeRDP's shadow server answers a wrong password with a
/// close_notify, xrdp has no NLA), so their bytes are built from the
/// specifications and sealed with the library's own key schedule.
fn keyed_samples(dir: &Path) -> std::io::Result<()> {
    let pcap = synth::Format::Pcap;
    let host = Some("rdp-host.example.test");
    std::fs::write(dir.join("win-keys.keys"), synth::keyed_keylog())?;

    // A wrong password: the server's TSRequest carries errorCode
    // STATUS_LOGON_FAILURE; the client resets.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Error(0xC000006D));
    k.c.wait(MS).rst(&mut out, C);
    write(dir, "win-keys-wrong-password.pcap", &out, pcap)?;
    // The same as pcapng with the key log in a Decryption Secrets Block
    // after the packets it opens (editcap always writes them first).
    let mut w = synth::Writer::new(Vec::new(), synth::Format::PcapNg)?;
    for p in &out {
        w.write(p)?;
    }
    w.secrets(synth::keyed_keylog().as_bytes())?;
    std::fs::write(dir.join("win-keys-dsb-last.pcapng"), w.into_inner())?;

    // The client requires CredSSP 6, the server answers with version 3:
    // the client sends nothing more and resets.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 3, Answer::Stop);
    k.c.wait(2 * MS).rst(&mut out, C);
    write(dir, "win-keys-credssp-version.pcap", &out, pcap)?;

    // Right credentials, but the user may not log on remotely: the Early
    // User Authorization Result is ACCESS_DENIED, the server closes.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.send(&mut out, S, &5u32.to_le_bytes());
    k.c.fin(&mut out, S);
    k.c.wait(MS).rst(&mut out, C);
    write(dir, "win-keys-access-denied.pcap", &out, pcap)?;

    // The server denies the connection right after licensing: Set Error
    // Info 0x7, the ultimatum, its FIN; the client resets.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 7);
    k.server_ends(&mut out, 3 * MS, 0x7);
    write(dir, "win-keys-denied.pcap", &out, pcap)?;

    // No licence server: License Error ERR_NO_LICENSE_SERVER, Set Error
    // Info 0x101, the ultimatum.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 0x06);
    k.server_ends(&mut out, 3 * MS, 0x101);
    write(dir, "win-keys-no-license-server.pcap", &out, pcap)?;

    // A logon error after licensing: Save Session Info with
    // LOGON_MSG_NO_PERMISSION, then the server closes.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 7);
    k.send(&mut out, S, &synth::logon_error(0xFFFF_FFFA, 0));
    k.server_ends(&mut out, 3 * MS, 0x0);
    write(dir, "win-keys-logon-error.pcap", &out, pcap)?;

    // A healthy session the user logs off: Set Error Info 0xC, the
    // ultimatum, the client's RST.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 7);
    k.active(&mut out, 4);
    k.server_ends(&mut out, 300 * MS, 0xC);
    write(dir, "win-keys-logoff.pcap", &out, pcap)?;

    // Another connection takes the session over: Set Error Info 0x5.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 7);
    k.active(&mut out, 3);
    k.server_ends(&mut out, 300 * MS, 0x5);
    write(dir, "win-keys-taken-over.pcap", &out, pcap)?;

    // A connection broker: after the Client Info PDU it sends a Server
    // Redirection PDU to 198.19.0.21 with a routing token and closes; the
    // client connects there with the token and its session runs until the
    // user disconnects.
    let mut out = vec![];
    let mut k = Keyed::start(&mut out, host);
    k.credssp(&mut out, 6, Answer::Ok);
    k.send(&mut out, S, &0u32.to_le_bytes());
    k.send(&mut out, C, &mcs_connect_initial());
    k.send(&mut out, S, &mcs_connect_response());
    k.send(&mut out, C, &synth::client_info("alice", "CONTOSO"));
    k.send(&mut out, S, &synth::license_error(7, 2));
    let token = "Cookie: msts=3640205228.15629.0000";
    k.send(
        &mut out,
        S,
        &synth::server_redirection("198.19.0.21", token),
    );
    k.c.fin(&mut out, S);
    k.c.wait(MS / 2).rst(&mut out, C);
    let c = TcpConv::new("198.18.0.10:50113", "198.19.0.21:3389", k.c.now + 40 * MS);
    let cr = synth::x224_cr_line(&format!("{token}\r\n"), 0, 0xB);
    let mut k = Keyed::start_with(&mut out, c, &cr, None);
    k.credssp(&mut out, 6, Answer::Ok);
    k.through_licensing(&mut out, 7);
    k.active(&mut out, 3);
    k.server_ends(&mut out, 300 * MS, 0xB);
    write(dir, "win-keys-broker-redirect.pcap", &out, pcap)?;

    // Standard RDP Security at encryption level NONE: the same PDUs in the
    // clear. The server denies the connection after licensing.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start_with(&mut c, &mut out, 0x0, 0x0);
    c.send(&mut out, C, &mcs_connect_initial(), MS);
    c.send(&mut out, S, &mcs_connect_response_none(), MS);
    c.send(&mut out, C, &synth::client_info("alice", "CONTOSO"), MS);
    c.send(&mut out, S, &synth::license_error(7, 2), MS);
    c.wait(3 * MS)
        .send(&mut out, S, &synth::set_error_info(0x7), MS);
    c.send(&mut out, S, &ULTIMATUM, MS);
    c.fin(&mut out, S);
    c.wait(MS / 2).rst(&mut out, C);
    write(dir, "std-security-none-denied.pcap", &out, pcap)?;
    Ok(())
}

/// The decryption benchmark: `n` keyed Windows-shaped sessions (CredSSP,
/// the connection sequence, 3 s of active session, the user's logoff), one
/// after another (5 s apart) from different client ports, all opened by
/// `samples/win-keys.keys` (the generator's fixed randoms). Analyzed with
/// and without that key log, it gives the cost of decryption.
/// Hostile captures for `scripts/bench hostile` (never committed): `n`
/// flows from distinct client addresses and ports, 10 000 new flows a
/// second: `syn` a SYN each to 3389 (a port scan), `syn80` the same to
/// port 80, `sweep` a SYN each from one host to 3389 of a server each,
/// `synrst` SYN, SYN-ACK, RST, `short` a whole short session
/// (handshake, X.224 request and confirm, FINs), `frag` the first
/// fragment of a UDP datagram to 3389 (the rest never comes), `dsb` (pcapng)
/// an empty Decryption Secrets Block each, then one SYN.
fn hostile(path: &Path, kind: &str, n: u64) -> std::io::Result<()> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let fmt = if kind == "dsb" {
        synth::Format::PcapNg
    } else {
        synth::Format::Pcap
    };
    let mut w = synth::Writer::new(file, fmt)?;
    if kind == "dsb" {
        for _ in 0..n {
            w.secrets(&[])?;
        }
        let mut out = Vec::new();
        TcpConv::new(CLIENT, SERVER, T0).syn(&mut out);
        w.write(&out[0])?;
        return w.into_inner().flush();
    }
    let server = if kind == "syn80" {
        "198.19.0.20:80"
    } else if kind == "rdg" {
        "198.19.0.20:443"
    } else {
        SERVER
    };
    for i in 0..n {
        let client = format!(
            "10.{}.{}.{}:{}",
            i >> 24 & 0xFF,
            i >> 16 & 0xFF,
            i >> 8 & 0xFF,
            1024 + (i & 0xFF) * 200
        );
        // A sweep: one host, a server each.
        let (client, server) = if kind == "sweep" {
            (
                format!("198.18.7.7:{}", 1024 + i % 60000),
                format!("10.{}.{}.{}:3389", i >> 16 & 0xFF, i >> 8 & 0xFF, i & 0xFF),
            )
        } else {
            (client, server.to_string())
        };
        let mut c = TcpConv::new(&client, &server, T0 + i as i64 * 100_000);
        let mut out = Vec::new();
        match kind {
            "syn" | "syn80" | "sweep" => {
                c.syn(&mut out);
            }
            "synrst" => {
                c.syn(&mut out);
                c.wait(MS);
                c.seq[C] = c.seq[C].wrapping_add(1);
                let s = c.seq[S];
                c.raw(&mut out, S, s, synth::flag::SYN, true, Some(1460), &[]);
                c.wait(MS);
                let s = c.seq[C];
                c.raw(&mut out, C, s, synth::flag::RST, false, None, &[]);
            }
            "short" => {
                rdp_start_with(&mut c, &mut out, 0x3, 0x1);
                c.wait(MS).close(&mut out, C, MS);
            }
            "rdg" => {
                // An RD Gateway OUT channel request in plaintext, answered
                // 401: a leg each, a busy gateway's worth of them.
                c.handshake(&mut out, MS);
                let request = format!(
                    "RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nHost: gw\r\nRDG-Connection-Id: {{{i:08x}-0000-0000-0000-000000000000}}\r\n\r\n"
                );
                c.send(&mut out, C, request.as_bytes(), MS);
                c.send(
                    &mut out,
                    S,
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
                    MS,
                );
                c.close(&mut out, C, MS);
            }
            "udpsyn" => {
                // An RDPEUDP SYN each (a UDP side channel without its TCP
                // connection): a million must group in linear time.
                out.push(synth::udp_pkt(
                    c.client,
                    c.server,
                    &synth::rdpeudp_syn([(i & 0xFF) as u8; 16]),
                    c.now,
                ));
            }
            "frag" => {
                let first = synth::ipv4_fragments(
                    c.client.ip(),
                    c.server.ip(),
                    etherparse::IpNumber::UDP,
                    &synth::udp_datagram(c.client, c.server, &[0u8; 1200]),
                    1000,
                    IpOpts {
                        ttl: 128,
                        df: false,
                        id: i as u16,
                    },
                    true,
                )
                .swap_remove(0);
                out.push(Pkt {
                    ts: c.now,
                    orig_len: first.len() as u32,
                    data: first,
                });
            }
            other => {
                return Err(std::io::Error::other(format!(
                    "unknown hostile kind {other}"
                )));
            }
        }
        for p in &out {
            w.write(p)?;
        }
    }
    w.into_inner().flush()
}

fn bench_keyed(path: &Path, n: u64) -> std::io::Result<()> {
    let mut w = synth::Writer::new(BufWriter::new(File::create(path)?), synth::Format::Pcap)?;
    for i in 0..n {
        let mut out = vec![];
        let client = format!(
            "198.18.{}.{}:{}",
            1 + i / 60000 % 200,
            10 + i % 200,
            1024 + i % 60000
        );
        let c = TcpConv::new(&client, SERVER, T0 + i as i64 * 5 * SEC);
        let mut k = Keyed::start_with(&mut out, c, &synth::x224_cr("alice", 0xB), None);
        k.credssp(&mut out, 6, Answer::Ok);
        k.through_licensing(&mut out, 7);
        k.active(&mut out, 3);
        k.server_ends(&mut out, 300 * MS, 0xC);
        for p in &out {
            w.write(p)?;
        }
    }
    w.into_inner().flush()
}

/// The server's MCS Connect Response choosing no encryption (method and
/// level NONE: no server random, no certificate, MS-RDPBCGR 2.2.1.4.3).
fn mcs_connect_response_none() -> Vec<u8> {
    mcs_connect_response_with(&[0, 0, 0, 0, 0, 0, 0, 0])
}

/// Samples shaped like real Windows sessions (PROTOCOLS.md §8), with the
/// Kerberos around them built from RFC 4120 (the RDP side of a Kerberos
/// NLA is synthetic everywhere: Debian's FreeRDP has no GSSAPI).
fn windows_samples(dir: &Path) -> std::io::Result<()> {
    let pcap = synth::Format::Pcap;
    let host = Some("rdp-host.example.test");

    // A healthy session with NTLM that the user closes as mstsc does.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, host, Auth::Ntlm, true);
    win_to_licensing(&mut c, &mut out);
    win_active(&mut c, &mut out, 8);
    win_user_closes(&mut c, &mut out);
    write(dir, "win-session-ntlm.pcap", &out, pcap)?;

    // The same with Kerberos: the TGS exchange for TERMSRV/host just
    // before the ClientHello, a 1.9 KB AP-REQ as the first CredSSP record.
    let mut out = vec![];
    let spn = ["TERMSRV", "rdp-host.example.test"];
    kdc_exchange(
        &mut out,
        51003,
        &synth::krb_tgs_req(&spn, 1_714_600_000),
        &synth::krb_rep(13, "alice", &spn, 7),
        T0 - 80 * MS,
    );
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, host, Auth::Kerberos, true);
    win_to_licensing(&mut c, &mut out);
    win_active(&mut c, &mut out, 8);
    win_user_closes(&mut c, &mut out);
    out.sort_by_key(|p| p.ts);
    write(dir, "win-session-kerberos.pcap", &out, pcap)?;

    // The server denies the same session right after licensing: Set
    // Error Info (60), the ultimatum (33), its FIN; the client resets.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, host, Auth::Ntlm, true);
    win_to_licensing(&mut c, &mut out);
    win_server_ends(&mut c, &mut out, 3 * MS, 160);
    write(dir, "win-session-denied.pcap", &out, pcap)?;

    // The server ends an idle session (idle timeout, or a logoff from the
    // server): Set Error Info, the ultimatum, its FIN; the client resets.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, host, Auth::Ntlm, true);
    win_to_licensing(&mut c, &mut out);
    win_active(&mut c, &mut out, 4);
    win_server_ends(&mut c, &mut out, 20 * SEC, 910);
    write(dir, "win-session-idle-timeout.pcap", &out, pcap)?;

    // An active session cut by the server's RST without an ultimatum.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, host, Auth::Ntlm, true);
    win_to_licensing(&mut c, &mut out);
    win_active(&mut c, &mut out, 4);
    c.wait(200 * MS).rst(&mut out, S);
    write(dir, "win-session-cut.pcap", &out, pcap)?;

    // NTLM refused: the client logged on to the domain with Kerberos but
    // dialled the server's address (no SNI, no TGS for TERMSRV), so
    // CredSSP is NTLM; the server answers the AUTHENTICATE with the
    // 39-byte error TSRequest and the client resets.
    let mut out = vec![];
    kdc_logon(
        &mut out,
        T0 - 20 * SEC,
        &synth::krb_rep(11, "alice", &["krbtgt", synth::KRB_REALM], 8),
    );
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_credssp(&mut c, &mut out, None, Auth::Ntlm, false);
    c.wait(MS).rst(&mut out, C);
    out.sort_by_key(|p| p.ts);
    write(dir, "win-ntlm-refused.pcap", &out, pcap)?;

    // A wrong password: the KDC answers the user's pre-authenticated
    // AS-REQ with KRB-ERROR 24; the client, which got the TLS handshake
    // done, sends no CredSSP and closes.
    let mut out = vec![];
    let tgt = ["krbtgt", synth::KRB_REALM];
    kdc_logon(
        &mut out,
        T0 + 20 * MS,
        &synth::krb_error(24, "alice", &tgt, T0 / SEC),
    );
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    win_negotiate(&mut c, &mut out);
    win_tls(&mut c, &mut out, host);
    c.wait(60 * MS).close(&mut out, C, MS);
    out.sort_by_key(|p| p.ts);
    write(dir, "kerberos-preauth-failed.pcap", &out, pcap)?;

    // Restricted Admin required by the client (mstsc /restrictedAdmin),
    // not announced by the server: the client resets.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.handshake(&mut out, MS);
    c.wait(MS)
        .send(&mut out, C, &synth::x224_cr_flags("alice", 0x01, 0xB), MS);
    c.wait(MS)
        .send(&mut out, S, &synth::x224_cc_flags(0x8, 0x07), MS);
    c.wait(2 * MS).rst(&mut out, C);
    write(dir, "restricted-admin.pcap", &out, pcap)?;

    // Plain TLS (not RDP) on port 8400, analyzed with --port 8400: a
    // handshake, a request and an answer, the server closes.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, "198.19.0.20:8400", T0);
    c.handshake(&mut out, MS);
    win_tls(&mut c, &mut out, Some("app.example.test"));
    c.send(&mut out, C, &synth::tls_sealed(120, 300), MS);
    c.send(&mut out, S, &synth::tls_sealed(60, 301), MS);
    c.wait(MS).close(&mut out, S, MS);
    write(dir, "plain-tls-port.pcap", &out, pcap)?;
    Ok(())
}

/// UDP 3389 blocked, path MTU problems, offload.
fn path_samples(dir: &Path) -> std::io::Result<()> {
    let pcap = synth::Format::Pcap;

    // RDP over UDP blocked: three RDPEUDP SYNs 3.5 s and 2.7 s apart, no
    // answer, while the TCP session carries on (as mstsc does, PROTOCOLS §7).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    connected(&mut c, &mut out, 80);
    let cl: SocketAddr = "198.18.0.10:50990".parse().unwrap();
    let sv: SocketAddr = "198.19.0.20:3389".parse().unwrap();
    let syn = synth::rdpeudp_syn([7; 16]);
    let t = c.now;
    for at in [t + 10 * MS, t + 3510 * MS, t + 6210 * MS] {
        let mut p = synth::udp_pkt(cl, sv, &syn, at);
        p.ts = at;
        out.push(p);
    }
    for i in 0..8 {
        c.wait(SEC)
            .send(&mut out, S, &synth::tls_app(900, 400 + i), 2 * MS);
    }
    c.wait(500 * MS).close(&mut out, C, 2 * MS);
    out.sort_by_key(|p| p.ts);
    write(dir, "udp-blocked.pcap", &out, pcap)?;

    // A PMTU black hole seen from the server side: the first full-size
    // segments of the server's TLS flight are resent with backoff and never
    // acknowledged; the small tail gets through (SACKed above the hole).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    client_hello(&mut c, &mut out);
    let mut flight = synth::tls_server_flight(0xc030, synth::CERT_HOST);
    flight.extend(synth::tls_app(2900 - flight.len(), 500));
    let segs: Vec<&[u8]> = flight.chunks(1460).collect();
    let start = c.seq[S];
    let mut off = 0u32;
    let mut sent = vec![];
    for seg in &segs {
        sent.push((start.wrapping_add(off), *seg));
        off += seg.len() as u32;
    }
    for (seq, seg) in &sent {
        c.raw(&mut out, S, *seq, flag::PSH, true, None, seg);
    }
    // The client only acknowledges what it got before the hole.
    c.wait(2 * MS).ack(&mut out, C);
    let mut rto = 300 * MS;
    for _ in 0..4 {
        c.wait(rto);
        let (seq, seg) = sent[0];
        c.raw(&mut out, S, seq, flag::PSH, true, None, seg);
        c.wait(MS).ack(&mut out, C);
        rto *= 2;
    }
    c.seq[S] = start.wrapping_add(off);
    c.wait(20 * SEC).rst(&mut out, C);
    write(dir, "blackhole.pcap", &out, pcap)?;

    // Path MTU discovery working: a router answers the server's full-size
    // segment with ICMP fragmentation needed (MTU 1400); the server resends
    // in smaller segments and the session goes on.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    client_hello(&mut c, &mut out);
    let mut flight = synth::tls_server_flight(0xc030, synth::CERT_HOST);
    flight.extend(synth::tls_app(2800 - flight.len(), 501));
    let s0 = c.seq[S];
    let n = out.len();
    c.raw(&mut out, S, s0, flag::PSH, true, None, &flight[..1460]);
    let p = synth::icmp_error("198.19.0.1", c.server.ip(), 4, 1400, &out[n], c.now + MS);
    out.push(p);
    c.wait(2 * MS);
    c.mss = 1360;
    c.send(&mut out, S, &flight, 2 * MS);
    c.send(&mut out, C, &synth::tls_finish(true, 502), 2 * MS);
    c.send(&mut out, S, &synth::tls_finish(false, 503), 2 * MS);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    session(&mut c, &mut out, 80);
    c.wait(500 * MS).close(&mut out, C, 2 * MS);
    write(dir, "icmp-frag-needed.pcap", &out, pcap)?;

    // Captured on the server with segmentation offload: 2920-byte "segments".
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    tls_handshake(&mut c, &mut out, "rdp-host.example.test", synth::CERT_HOST);
    nla(&mut c, &mut out);
    rdp_setup(&mut c, &mut out);
    c.mss = 2920;
    session(&mut c, &mut out, 80);
    c.mss = 1460;
    c.wait(500 * MS).close(&mut out, C, 2 * MS);
    write(dir, "offload.pcap", &out, pcap)?;
    Ok(())
}

/// A DNS query or response with one question (RFC 1035 4.1).
fn dns_message(id: u16, response: bool, rcode: u16, name: &str, qtype: u16) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 | rcode } else { 0x0100 };
    let mut v = id.to_be_bytes().to_vec();
    v.extend(flags.to_be_bytes());
    v.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        v.push(l.len() as u8);
        v.extend(l.as_bytes());
    }
    v.push(0);
    v.extend(qtype.to_be_bytes());
    v.extend([0, 1]);
    v
}

/// RDP over UDP 3389 with fragmented 1232-byte datagrams: one reassembles,
/// one loses its second fragment, one has overlapping fragments.
fn fragmented_udp(dir: &Path) -> std::io::Result<()> {
    let mut out = vec![];
    let cl: SocketAddr = "198.18.0.10:50200".parse().unwrap();
    let sv: SocketAddr = "198.19.0.20:3389".parse().unwrap();
    let mut syn = vec![
        0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];
    syn.resize(1232, 0);
    let udp = synth::udp_datagram(cl, sv, &syn);
    let mut t = T0;
    for (id, keep) in [(0x1111u16, 2usize), (0x2222, 1)] {
        let frags = synth::ipv4_fragments(
            cl.ip(),
            sv.ip(),
            etherparse::IpNumber::UDP,
            &udp,
            1000,
            IpOpts {
                ttl: 128,
                df: false,
                id,
            },
            true,
        );
        for f in frags.into_iter().take(keep) {
            out.push(Pkt {
                ts: t,
                orig_len: f.len() as u32,
                data: f,
            });
            t += MS;
        }
        t += 500 * MS;
    }
    // Overlap: the second of four fragments is sent twice with different bytes.
    let mut frags = synth::ipv4_fragments(
        cl.ip(),
        sv.ip(),
        etherparse::IpNumber::UDP,
        &udp,
        400,
        IpOpts {
            ttl: 128,
            df: false,
            id: 0x3333,
        },
        true,
    );
    let mut dup = frags[1].clone();
    let n = dup.len();
    dup[n - 1] ^= 0xff;
    frags.insert(1, dup);
    for f in frags {
        out.push(Pkt {
            ts: t,
            orig_len: f.len() as u32,
            data: f,
        });
        t += MS;
    }
    let reply = synth::udp_datagram(sv, cl, &synth::filler(100, 17));
    let data = ip_packet(
        sv.ip(),
        cl.ip(),
        etherparse::IpNumber::UDP,
        &reply,
        IpOpts::default(),
        false,
    );
    out.push(Pkt {
        ts: t + 2 * MS,
        orig_len: data.len() as u32,
        data,
    });
    write(dir, "fragmented-udp.pcap", &out, synth::Format::Pcap)
}

/// A large capture: many concurrent conversations, round-robin, each a
/// TCP 3389 or 443 session (handshake, flights, some retransmissions and
/// reordering) or a UDP 3389 exchange; now and then fragments and ICMP.
fn bench(path: &Path, mib: u64, small: bool, fmt: synth::Format) -> std::io::Result<()> {
    let target = mib << 20;
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut w = synth::Writer::new(file, fmt)?;
    let mut written = 24u64;
    let mut t = T0;
    let mut n = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const LANES: usize = 2000;
    let mut lanes: Vec<Vec<Pkt>> = (0..LANES).map(|_| Vec::new()).collect();
    let mut pos = vec![0usize; LANES];
    while written < target {
        for lane in 0..LANES {
            if pos[lane] >= lanes[lane].len() {
                n += 1;
                lanes[lane] = conversation(n, &mut next, small);
                pos[lane] = 0;
            }
            let mut p = lanes[lane][pos[lane]].clone();
            pos[lane] += 1;
            // 20 µs a frame: a busy link (1 GiB in about 30 s).
            t += 20_000;
            p.ts = t;
            written += 16 + p.data.len() as u64;
            w.write(&p)?;
            if written >= target {
                break;
            }
        }
    }
    w.into_inner().flush()?;
    eprintln!("wrote {} MiB, {n} conversations", written >> 20);
    Ok(())
}

fn conversation(n: u64, next: &mut impl FnMut() -> u64, small: bool) -> Vec<Pkt> {
    let mut out = vec![];
    let client = format!(
        "198.18.{}.{}:{}",
        (n >> 8) & 0xff,
        n & 0xff,
        49152 + (n % 16000)
    );
    let port = match n % 10 {
        0..=5 => 3389,
        6..=8 => 443,
        _ => 0,
    };
    let server = format!(
        "198.19.{}.{}:{}",
        (n >> 4) & 0xff,
        1 + (n % 200),
        if port == 0 { 3389 } else { port }
    );
    if port == 0 {
        // UDP 3389, sometimes fragmented; sometimes an ICMP error comes back.
        let cl: SocketAddr = client.parse().unwrap();
        let sv: SocketAddr = server.parse().unwrap();
        let size = if small { 40 } else { 1232 };
        for i in 0..if small { 20 } else { 8 } {
            let (a, b) = if i % 2 == 0 { (cl, sv) } else { (sv, cl) };
            let udp = synth::udp_datagram(a, b, &synth::filler(size, n + i));
            if !small && n % 7 == 0 && i == 0 {
                for f in synth::ipv4_fragments(
                    a.ip(),
                    b.ip(),
                    etherparse::IpNumber::UDP,
                    &udp,
                    1000,
                    IpOpts {
                        df: false,
                        id: n as u16,
                        ..IpOpts::default()
                    },
                    true,
                ) {
                    out.push(Pkt {
                        ts: 0,
                        orig_len: f.len() as u32,
                        data: f,
                    });
                }
                continue;
            }
            let d = ip_packet(
                a.ip(),
                b.ip(),
                etherparse::IpNumber::UDP,
                &udp,
                IpOpts::default(),
                i % 2 == 0,
            );
            if n % 13 == 0 && i == 2 {
                let icmp = synth::icmp4_unreachable(3, 0, &d[14..]);
                let e = ip_packet(
                    sv.ip(),
                    cl.ip(),
                    etherparse::IpNumber::ICMP,
                    &icmp,
                    IpOpts::default(),
                    false,
                );
                out.push(Pkt {
                    ts: 0,
                    orig_len: e.len() as u32,
                    data: e,
                });
            }
            out.push(Pkt {
                ts: 0,
                orig_len: d.len() as u32,
                data: d,
            });
        }
        return out;
    }
    let mut c = TcpConv::new(&client, &server, 0);
    if small {
        c.mss = 64;
    }
    c.handshake(&mut out, 0);
    if port == 3389 {
        c.send(&mut out, C, &synth::x224_cr("bench", 0x3), 0);
        c.send(&mut out, S, &synth::x224_cc(0x2), 0);
    }
    c.send(
        &mut out,
        C,
        &synth::tls_client_hello(Some("rdp-host.example.test"), &[]),
        0,
    );
    c.send(
        &mut out,
        S,
        &synth::tls_server_flight(0xc030, synth::CERT_HOST),
        0,
    );
    let flights = 2 + (next() % 6) as usize;
    for f in 0..flights {
        let len = if small {
            64 + (next() % 512) as usize
        } else {
            200 + (next() % 30000) as usize
        };
        // Application data records of at most 16 KiB.
        let mut data = Vec::with_capacity(len + 10);
        let mut left = len;
        while left > 0 {
            let r = left.clamp(6, 16 * 1024);
            data.extend(synth::tls_app(r, n * 31 + f as u64));
            left -= r.min(left);
        }
        let dir = if f % 2 == 0 { S } else { C };
        let mut segs = vec![];
        c.send(&mut segs, dir, &data, 0);
        // Now and then a retransmission or a swap (reordering).
        if segs.len() > 4 && next() % 5 == 0 {
            let again = segs[2].clone();
            segs.insert(4, again);
        }
        if segs.len() > 6 && next() % 7 == 0 {
            segs.swap(2, 4);
        }
        out.extend(segs);
    }
    if next() % 10 == 0 {
        c.rst(&mut out, S);
    } else {
        c.close(&mut out, C, 0);
    }
    out
}
