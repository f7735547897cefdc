//! The terminal report in a real terminal: tmux at 80 columns. Every line
//! fits without the terminal wrapping it, except the Wireshark filter,
//! which is one line that copies whole (tmux joins it back); colour on a
//! terminal, none with NO_COLOR or `--color never`.

mod common;
use std::process::Command;
use std::time::{Duration, Instant};

/// What an 80-column terminal shows of `args` run in it: the lines joined
/// where the terminal wrapped them, with escape codes (`-e`).
fn in_tmux(args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed; the 80-column terminal test does not run");
        return None;
    }
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = format!("rdpsift-{}-{n}", std::process::id());
    let tmux = |a: &[&str]| {
        Command::new("timeout")
            .arg("20")
            .arg("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(a)
            .output()
            .unwrap()
    };
    let mut cmd = String::from("env -u NO_COLOR");
    for (k, v) in env {
        cmd.push_str(&format!(" {k}={v}"));
    }
    cmd.push_str(&format!(" {}", common::bin()));
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    cmd.push_str("; echo END-OF-RUN; sleep 30");
    let started = tmux(&["new-session", "-d", "-x", "80", "-y", "150", &cmd]);
    assert!(started.status.success(), "{started:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let o = tmux(&["capture-pane", "-p", "-J", "-e", "-S", "-"]);
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        if t.contains("END-OF-RUN") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&["kill-server"]);
    assert!(text.contains("END-OF-RUN"), "the run did not end:\n{text}");
    Some(text)
}

/// The text without escape codes.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn at_eighty_columns_only_the_filter_is_longer_and_it_stays_one_line() {
    let Some(screen) = in_tmux(&["analyze", "samples/server-denied.pcap"], &[]) else {
        return;
    };
    assert!(
        screen.contains('\x1b'),
        "no colour on a terminal:\n{screen}"
    );
    let text = plain(&screen);
    let filter = "ip.addr==198.18.0.10 && ip.addr==198.19.0.20 && tcp.port==50112 && \
                  tcp.port==3389 && (frame.number==14 || frame.number==48 || \
                  frame.number==52 || frame.number==56 || frame.number==58 || frame.number==60)";
    assert!(
        text.lines().any(|l| l.trim_end() == filter),
        "the filter is not one line:\n{text}"
    );
    for line in text.lines() {
        let line = line.trim_end();
        if line != filter {
            assert!(
                line.chars().count() <= 80,
                "wrapped by the terminal: {line:?}"
            );
        }
    }
    for words in [
        "#1 FAILED in rdp",
        "The client shows error code 0x904/0x7",
        "rdp.server_denied  critical",
        "Cause:",
        "Fix:",
    ] {
        assert!(text.contains(words), "{words:?} missing:\n{text}");
    }
}

#[test]
fn no_colour_with_no_color_or_never() {
    for (args, env) in [
        (
            vec!["analyze", "samples/refused.pcap"],
            vec![("NO_COLOR", "1")],
        ),
        (
            vec!["analyze", "samples/refused.pcap", "--color", "never"],
            vec![],
        ),
    ] {
        let Some(screen) = in_tmux(&args, &env) else {
            return;
        };
        assert!(screen.contains("tcp.refused"), "{screen}");
        assert!(!screen.contains('\x1b'), "{args:?} {env:?}:\n{screen}");
    }
}
