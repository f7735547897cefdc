//! Generates the bundled samples (`samples DIR`) and the benchmark capture
//! (`bench FILE --mib N [--small]`). Deterministic: the same command writes
//! the same bytes.

use rdpsift::synth::{self, flag, ip_packet, IpOpts, Pkt, TcpConv, C, S};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
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
        Some("bench") if args.len() >= 3 => {
            let mib = flag_value(&args, "--mib").unwrap_or(1024);
            let small = args.iter().any(|a| a == "--small");
            bench(Path::new(&args[2]), mib, small)
        }
        _ => {
            eprintln!("usage: rdpsift-synth samples DIR | bench FILE [--mib N] [--small]");
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

/// The start of an RDP connection: handshake, X.224 CR/CC.
fn rdp_start(c: &mut TcpConv, out: &mut Vec<Pkt>) {
    c.handshake(out, 2 * MS);
    c.wait(MS)
        .send(out, C, &synth::x224_cr("alice", 0x3), 2 * MS);
    c.wait(MS).send(out, S, &synth::x224_cc(0x2), 2 * MS);
}

fn tls_like(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0x16, 0x03, 0x03];
    v.extend_from_slice(&((n - 5) as u16).to_be_bytes());
    v.extend(synth::filler(n - 5, seed));
    v
}

fn samples(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pcap = synth::Format::Pcap;

    // A healthy session: handshake, negotiation, a TLS-like exchange, data both ways, client closes.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 1), 2 * MS);
    c.send(&mut out, S, &tls_like(3000, 2), 2 * MS);
    c.send(&mut out, C, &synth::filler(2000, 3), 2 * MS);
    c.send(&mut out, S, &synth::filler(8000, 4), 2 * MS);
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

    // SYN answered by ICMP "administratively prohibited" from a router.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    c.syn(&mut out);
    let quoted = out[0].data[14..].to_vec();
    let icmp = synth::icmp4_unreachable(13, 0, &quoted);
    let router: IpAddr = "198.18.0.1".parse().unwrap();
    let data = ip_packet(
        router,
        c.client.ip(),
        etherparse::IpNumber::ICMP,
        &icmp,
        IpOpts {
            ttl: 255,
            df: false,
            id: 0,
        },
        false,
    );
    out.push(Pkt {
        ts: T0 + 3 * MS,
        orig_len: data.len() as u32,
        data,
    });
    write(dir, "icmp-unreachable.pcap", &out, pcap)?;

    // The server resets after the negotiation.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 5), 2 * MS);
    c.wait(40 * MS).rst(&mut out, S);
    write(dir, "reset-by-server.pcap", &out, pcap)?;

    // The client resets after the negotiation (IPv6, pcapng).
    let mut out = vec![];
    let mut c = TcpConv::new("[2001:db8::10]:50114", "[2001:db8:1::20]:3389", T0);
    rdp_start(&mut c, &mut out);
    c.wait(5 * MS).rst(&mut out, C);
    write(dir, "reset-by-client.pcapng", &out, synth::Format::PcapNg)?;

    // The server closes with a FIN after a short TLS exchange (nanosecond pcap).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 6), 2 * MS);
    c.send(&mut out, S, &tls_like(1200, 7), 2 * MS);
    c.send(&mut out, C, &synth::filler(400, 8), 2 * MS);
    c.send(&mut out, S, &synth::filler(65, 9), 2 * MS);
    c.wait(10 * MS).close(&mut out, S, 2 * MS);
    write(dir, "closed-by-server.pcap", &out, synth::Format::PcapNanos)?;

    // Nothing moves for 25 s after the client's first TLS flight; the client gives up with a reset.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 10), 2 * MS);
    c.wait(25 * SEC).rst(&mut out, C);
    write(dir, "stalled.pcap", &out, pcap)?;

    // The server's flight is retransmitted: four of ten segments sent again, one three times.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 11), 2 * MS);
    let flight = synth::filler(14600, 12);
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
    c.send(&mut out, C, &synth::filler(500, 13), 2 * MS);
    c.wait(100 * MS).close(&mut out, C, 2 * MS);
    write(dir, "retransmissions.pcap", &out, pcap)?;

    // The client advertises a zero window in the middle of the session (big-endian pcap).
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 14), 2 * MS);
    c.send(&mut out, S, &synth::filler(4000, 15), 2 * MS);
    c.window[C] = 0;
    c.wait(300 * MS).ack(&mut out, C);
    c.window[C] = 64240;
    c.wait(300 * MS).ack(&mut out, C);
    c.send(&mut out, S, &synth::filler(2000, 16), 2 * MS);
    c.wait(10 * MS).close(&mut out, C, 2 * MS);
    write(dir, "zero-window.pcap", &out, synth::Format::PcapBigEndian)?;

    // RDP over UDP 3389 with fragmented 1232-byte datagrams: one reassembles,
    // one loses its second fragment, one has overlapping fragments.
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
    write(dir, "fragmented-udp.pcap", &out, pcap)?;

    // A healthy session whose file was cut inside the last record.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 18), 2 * MS);
    c.send(&mut out, S, &tls_like(3000, 19), 2 * MS);
    let mut bytes = synth::to_bytes(&out, pcap);
    bytes.truncate(bytes.len() - 20);
    std::fs::write(dir.join("truncated.pcap"), bytes)?;

    // The capture missed a server segment that the client acknowledged.
    let mut out = vec![];
    let mut c = TcpConv::new(CLIENT, SERVER, T0);
    rdp_start(&mut c, &mut out);
    c.send(&mut out, C, &tls_like(300, 20), 2 * MS);
    let mut flight = vec![];
    c.send(&mut flight, S, &synth::filler(4380, 21), 2 * MS);
    flight.remove(2); // the second data segment, never captured
    out.extend(flight);
    c.send(&mut out, C, &synth::filler(200, 22), 2 * MS);
    c.wait(10 * MS).close(&mut out, C, 2 * MS);
    write(dir, "capture-loss.pcap", &out, pcap)?;

    // RDP through a SOCKS5 proxy on port 1080: found by content.
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
    Ok(())
}

/// A large capture: many concurrent conversations, round-robin, each a
/// TCP 3389 or 443 session (handshake, flights, some retransmissions and
/// reordering) or a UDP 3389 exchange; now and then fragments and ICMP.
fn bench(path: &Path, mib: u64, small: bool) -> std::io::Result<()> {
    let target = mib << 20;
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut w = synth::Writer::new(file, synth::Format::Pcap)?;
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
    c.send(&mut out, C, &tls_like(if small { 60 } else { 300 }, n), 0);
    let flights = 2 + (next() % 6) as usize;
    for f in 0..flights {
        let len = if small {
            64 + (next() % 512) as usize
        } else {
            200 + (next() % 30000) as usize
        };
        let data = synth::filler(len, n * 31 + f as u64);
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
