//! Attempts decided while the capture is read (docs/ARCHITECTURE.md, the
//! run stage): the samples strung together into one capture an hour long,
//! one after another with gaps shorter and longer than the attempt window,
//! the same client and server hosts recurring (so retries, gateway legs,
//! side channels, DNS and Kerberos meet across samples). Decided every 8
//! frames, every 4,096, every 65,536 (the default) or only once the file
//! is read, with -j 1, 2 and 3: the same bytes in every output.

mod common;
use rdpsift::capture::{Reader, Source};
use rdpsift::synth::{Format, Pkt, Writer};
use std::path::{Path, PathBuf};

const SEC: i64 = 1_000_000_000;

/// The Ethernet pcap samples, in name order, one after another: each
/// begins a gap after the previous one ended (gaps cycle through 2 s,
/// 20 s, 45 s and 200 s: inside and past the 30 s attempt window and the
/// 10 s scan gap), with unrelated traffic in the gaps (so that parts are
/// swept and connections finish while the capture is read). With `open`,
/// TCP FINs and resets are left out and the longest gap is 90 s: the
/// connections of the last ten minutes are still open when the file
/// ends, and finish there, oldest first.
fn strung(out: &Path, open: bool) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    names.sort();
    let mut w = Writer::new(
        std::io::BufWriter::new(std::fs::File::create(out).unwrap()),
        Format::Pcap,
    )
    .unwrap();
    let gaps = [
        2 * SEC,
        20 * SEC,
        45 * SEC,
        if open { 90 } else { 200 } * SEC,
    ];
    let (mut t, mut used) = (1_714_557_600 * SEC, 0);
    for p in names {
        let mut r = match Source::open(&p).map(|s| Reader::new(s).ok()) {
            Ok(Some(r)) => r,
            _ => continue,
        };
        let mut frames: Vec<Pkt> = Vec::new();
        let mut batch = Vec::new();
        let mut ethernet = true;
        loop {
            let more = r.next_batch(&mut batch, 4096, 1 << 24).unwrap_or(false);
            for f in &batch {
                ethernet &= f.link == 1;
                frames.push(Pkt {
                    ts: f.ts,
                    orig_len: f.orig_len,
                    data: f.data(r.window()).to_vec(),
                });
            }
            if !more {
                break;
            }
        }
        if !ethernet || frames.is_empty() {
            continue;
        }
        // Each sample's own times, moved to begin at `t` (kept in order);
        // samples meet in threes on hosts of their own (IPv4 moved to a
        // network per three). Every fourth is played again 25 s after it
        // ended from another client port (a retry within the attempt
        // window, or a new attempt after one that connected).
        let first = frames.iter().map(|f| f.ts).min().unwrap();
        let plays = if used % 4 == 3 { 2 } else { 1 };
        for play in 0..plays {
            let mut last = t;
            for f in &frames {
                let mut f = f.clone();
                f.ts = t + (f.ts - first).max(0);
                rehost(&mut f.data, (used / 3) as u8);
                if play == 1 {
                    new_client_port(&mut f.data, client_port(&frames[0].data));
                }
                last = last.max(f.ts);
                if open && fin_or_rst(&f.data) {
                    continue;
                }
                w.write(&f).unwrap();
            }
            // Unrelated traffic through the gap (a frame every 5 ms): the
            // frames that move the parts' sweeps and checkpoints along.
            let gap = if play + 1 < plays {
                25 * SEC
            } else {
                gaps[used % gaps.len()]
            };
            let (a, b) = (
                "10.99.0.1:40000".parse().unwrap(),
                "10.99.0.2:40001".parse().unwrap(),
            );
            let mut f = last + 5_000_000;
            while f < last + gap {
                w.write(&rdpsift::synth::udp_pkt(a, b, b"filler", f))
                    .unwrap();
                f += 5_000_000;
            }
            t = last + gap;
        }
        used += 1;
    }
    used
}

/// Where an Ethernet frame's IPv4 TCP or UDP header begins.
fn l4(d: &[u8]) -> Option<usize> {
    if d.len() < 34 || d[12..14] != [0x08, 0x00] || !matches!(d[23], 6 | 17) {
        return None;
    }
    let at = 14 + ((d[14] & 0x0f) as usize) * 4;
    (d.len() >= at + 4).then_some(at)
}

/// A TCP segment with FIN or RST set.
fn fin_or_rst(d: &[u8]) -> bool {
    l4(d).is_some_and(|at| d[23] == 6 && d.len() > at + 13 && d[at + 13] & 0x05 != 0)
}

/// The source port of a sample's first frame (its client's).
fn client_port(d: &[u8]) -> Option<u16> {
    l4(d).map(|at| u16::from_be_bytes([d[at], d[at + 1]]))
}

/// That port, wherever it appears, becomes another.
fn new_client_port(d: &mut [u8], port: Option<u16>) {
    let (Some(at), Some(port)) = (l4(d), port) else {
        return;
    };
    for p in [at, at + 2] {
        if u16::from_be_bytes([d[p], d[p + 1]]) == port {
            d[p..p + 2].copy_from_slice(&port.wrapping_add(7).to_be_bytes());
        }
    }
}

/// Moves an Ethernet frame's IPv4 addresses (198.18.0.0/15) by `n` in
/// their third octet, and fixes the header checksum.
fn rehost(d: &mut [u8], n: u8) {
    if d.len() < 34 || d[12..14] != [0x08, 0x00] {
        return;
    }
    for at in [14 + 12, 14 + 16] {
        if d[at] == 198 && (d[at + 1] == 18 || d[at + 1] == 19) {
            d[at + 2] = d[at + 2].wrapping_add(n.wrapping_mul(7));
        }
    }
    let ihl = ((d[14] & 0x0f) as usize) * 4;
    if ihl < 20 || d.len() < 14 + ihl {
        return;
    }
    d[24] = 0;
    d[25] = 0;
    let mut sum = 0u32;
    for w in d[14..14 + ihl].chunks(2) {
        sum += u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    d[24..26].copy_from_slice(&c.to_be_bytes());
}

fn outputs(input: &str, dir: &Path, checkpoint: &str, j: &str) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let file = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (fc, ac) = (file("f.csv"), file("a.csv"));
    common::outputs(
        &[
            "analyze",
            input,
            "--checkpoint-frames",
            checkpoint,
            "-j",
            j,
            "--format",
            "json",
            "--csv",
            &fc,
            "--attempts-csv",
            &ac,
        ],
        &[fc.clone(), ac.clone()],
    )
}

#[test]
fn attempts_decided_while_reading_are_the_attempts_decided_at_the_end() {
    same_rows_decided_any_time("strung", false);
}

/// Connections still open at the end of the file are finished a few at a
/// time (one per part per slice when decided every 8 frames) and the
/// attempts they close are decided between slices.
#[test]
fn connections_open_at_the_end_are_decided_as_they_finish() {
    same_rows_decided_any_time("open", true);
}

fn same_rows_decided_any_time(name: &str, open: bool) {
    let base = std::env::temp_dir().join(format!("rdpsift-stream-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let cap = base.join("strung.pcap");
    let used = strung(&cap, open);
    assert!(used >= 40, "{used} samples strung");
    let cap = cap.to_str().unwrap();
    let once = outputs(cap, &base.join("once"), "0", "1");
    let attempts = once[4].1.iter().filter(|&&b| b == b'\n').count();
    assert!(attempts > 40, "{attempts} attempt rows");
    for j in ["1", "2", "3"] {
        for checkpoint in ["8", "4096", "65536", "0"] {
            let got = outputs(cap, &base.join(format!("{j}-{checkpoint}")), checkpoint, j);
            for (w, o) in once.iter().zip(&got) {
                assert!(
                    w.1 == o.1,
                    "-j {j}, decided every {checkpoint} frames: {} differs:\n{}\n--- vs ---\n{}",
                    w.0,
                    String::from_utf8_lossy(&w.1)
                        .chars()
                        .take(3000)
                        .collect::<String>(),
                    String::from_utf8_lossy(&o.1)
                        .chars()
                        .take(3000)
                        .collect::<String>()
                );
            }
        }
    }
    std::fs::remove_dir_all(base).ok();
}
