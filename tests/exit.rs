//! The exit status says what the report says (README: exit status): a
//! failed attempt fails the run even when its verdict is only a warning,
//! a reader that closes standard output early does not change it, and a
//! `--target` that matches nothing is said and is not a pass.

mod common;
use common::{bin, run};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// stalled.pcap: one attempt, failed (tcp.stalled, a warning).
#[test]
fn a_failed_attempt_fails_the_run_whatever_its_verdicts_severity() {
    let args = |fail_on: &'static str| {
        vec![
            "analyze",
            "samples/stalled.pcap",
            "-q",
            "--format",
            "csv",
            "--fail-on",
            fail_on,
        ]
    };
    assert_eq!(run(&args("error")).status.code(), Some(1));
    assert_eq!(run(&args("warning")).status.code(), Some(1));
    // Above error, only findings count; never is never.
    assert_eq!(run(&args("critical")).status.code(), Some(0));
    assert_eq!(run(&args("never")).status.code(), Some(0));
    // A healthy capture still passes.
    let ok = run(&["analyze", "samples/healthy.pcap", "-q", "--format", "csv"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `rdpsift analyze samples | head -1`: the samples have failures, so the
/// status is 1 with or without the reader going away.
#[test]
fn a_closed_pipe_does_not_change_the_exit_status() {
    let mut child = Command::new(bin())
        .args(["analyze", "samples", "--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (stdout dropped above) after one line of over
    // 100 KB of findings: the writes after it fail with a broken pipe.
    assert!(first.starts_with('{'), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The run went to its end: the summary counts every capture.
    assert!(err.contains("captures,"), "{err}");
    let whole = run(&["analyze", "samples", "--format", "json"]);
    let summary = |e: &str| e.lines().last().unwrap_or("").to_string();
    assert_eq!(
        summary(&err),
        summary(&String::from_utf8_lossy(&whole.stderr))
    );
}

#[test]
fn a_target_that_matches_nothing_is_said_and_is_not_a_pass() {
    let healthy = |extra: &[&str]| {
        let mut args = vec!["analyze", "samples/healthy.pcap", "-q", "--format", "csv"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = healthy(&["--target", "rdp-host"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no attempt to rdp-host"), "{err}");
    let never = healthy(&["--target", "rdp-host", "--fail-on", "never"]);
    assert_eq!(never.status.code(), Some(0));
    // The full name the client used matches, and says nothing of the kind.
    let full = healthy(&["--target", "rdp-host.example.test"]);
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(!err.contains("no attempt"), "{err}");
    assert_eq!(full.status.code(), Some(0), "{err}");
}
