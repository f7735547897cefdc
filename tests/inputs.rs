//! What the run reads: directories walked without loops or hangs, each
//! file once; paths that are pipes read from their first byte; options
//! that would make no sense refused; files that are not captures named for
//! what they are.

mod common;
use common::{bin, run, stdout};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdpsift-inputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The captures a CSV findings report names, with how many rows each.
fn captures(csv: &str) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = Vec::new();
    for line in csv.lines().skip(1) {
        let name = line.split(',').next().unwrap_or("").to_string();
        match v.iter_mut().find(|x| x.0 == name) {
            Some(x) => x.1 += 1,
            None => v.push((name, 1)),
        }
    }
    v
}

/// Runs the binary with a deadline: a walk that hangs on a FIFO or loops
/// on links fails the test instead of hanging it.
fn run_within(args: &[&str], secs: u64) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().ok();
            panic!("rdpsift {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
#[allow(clippy::disallowed_methods)] // a Unix test: links and FIFOs
fn a_walk_reads_every_capture_once_past_link_loops_and_fifos() {
    use std::os::unix::fs::symlink;
    let d = scratch("walk");
    let (top, other) = (d.join("top"), d.join("other"));
    std::fs::create_dir_all(top.join("sub")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(sample("server-denied.pcap"), top.join("a.pcap")).unwrap();
    // Hidden files are captures too.
    std::fs::copy(sample("blackhole.pcap"), top.join("sub/.hidden.pcap")).unwrap();
    // A loop to the parent, two links from a sibling tree into this one and
    // a link back to that tree (paths multiply without a walk that
    // remembers directories), and a second name for a file.
    symlink("..", top.join("sub/up")).unwrap();
    symlink(&top, other.join("l1")).unwrap();
    symlink(&top, other.join("l2")).unwrap();
    symlink(&other, top.join("to-other")).unwrap();
    symlink("a.pcap", top.join("same.pcap")).unwrap();
    // A FIFO nobody writes to: reading it would wait for ever.
    let fifo = top.join("fifo.pcap");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED part: mkfifo not available; the walk is tested without a FIFO");
    }
    let out = run_within(
        &[
            "analyze",
            top.to_str().unwrap(),
            other.to_str().unwrap(),
            "-q",
            "--format",
            "csv",
            "--fail-on",
            "never",
        ],
        60,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = captures(&stdout(&out));
    seen.sort();
    let names: Vec<String> = seen
        .iter()
        .map(|(n, _)| n.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.pcap", ".hidden.pcap"], "{seen:?}");
    // Each once: the same rows as the files alone.
    for (name, rows) in &seen {
        let alone = run(&[
            "analyze",
            name,
            "-q",
            "--format",
            "csv",
            "--fail-on",
            "never",
        ]);
        assert_eq!(captures(&stdout(&alone)), [(name.clone(), *rows)]);
    }
    std::fs::remove_dir_all(d).ok();
}

/// `/dev/stdin` (or `<(zcat …)`, a FIFO) named as a path is read from its
/// first byte: the bytes sniffed to tell a mapped file from a stream are
/// not lost (they were, and the file was "not a capture").
#[cfg(unix)]
#[test]
fn a_pipe_named_as_a_path_is_read_whole() {
    let cap = sample("server-denied.pcap");
    let direct = run(&[
        "analyze",
        cap.to_str().unwrap(),
        "-q",
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    let bytes = std::fs::read(&cap).unwrap();
    let mut child = Command::new(bin())
        .args([
            "analyze",
            "/dev/stdin",
            "-q",
            "--format",
            "json",
            "--fail-on",
            "never",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&bytes).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let piped = stdout(&out).replace("\"/dev/stdin\"", "NAME");
    let direct = stdout(&direct).replace(&format!("{:?}", cap.to_str().unwrap()), "NAME");
    assert!(!piped.is_empty());
    assert_eq!(piped, direct);
}

#[test]
fn timeouts_and_thread_counts_that_make_no_sense_are_refused() {
    let cap = sample("server-denied.pcap");
    let cap = cap.to_str().unwrap();
    for (flag, value) in [
        ("--syn-timeout", "nan"),
        ("--syn-timeout", "inf"),
        ("--stall-timeout", "0"),
        ("--attempt-window", "-5"),
        ("--attempt-window", "1e400"),
        ("--syn-timeout", "soon"),
        ("-j", "4000"),
        ("-j", "0"),
    ] {
        let start = Instant::now();
        let arg = format!("{flag}={value}");
        let out = run(&["analyze", cap, "-q", &arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
        assert!(
            err.contains(flag.trim_start_matches('-')) || err.contains("--threads"),
            "{arg}: {err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{arg} took {:?}",
            start.elapsed()
        );
    }
    let out = run(&[
        "analyze",
        cap,
        "-q",
        "--syn-timeout",
        "2.5",
        "--fail-on",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn files_that_are_not_captures_are_named_for_what_they_are() {
    let d = scratch("hints");
    let cap = std::fs::read(sample("server-denied.pcap")).unwrap();
    // A zip's local file header, a tar's ustar magic at 257, a trace named
    // .etl (its content is Windows' own).
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(&cap[..200]);
    let mut tar = vec![0u8; 512];
    tar[..10].copy_from_slice(b"edge.pcapn");
    tar[257..263].copy_from_slice(b"ustar\0");
    tar.extend_from_slice(&cap);
    for (name, bytes, says) in [
        // Damaged archives (tests/archives.rs reads whole ones).
        ("site.zip", zip, "cannot read this zip archive"),
        ("site.tar", tar, "cannot read this tar archive"),
        (
            "trace.etl",
            b"\x00\x00\x01\x00 not a capture".to_vec(),
            "pktmon etl2pcap",
        ),
    ] {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = run(&["analyze", p.to_str().unwrap(), "-q"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    }
    std::fs::remove_dir_all(d).ok();
}
