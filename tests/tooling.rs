//! What users expect of a command-line tool: completions for their shell
//! and a manual page generated from the same definitions as the options,
//! and examples of the three main uses under `--help`.

mod common;
use common::{run, stdout};
use std::process::Command;

/// Every long option of `analyze` that `--help` shows.
fn analyze_options() -> Vec<String> {
    let help = stdout(&run(&["analyze", "--help"]));
    let mut v: Vec<String> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 3)
        .map(|w| w.trim_end_matches([',', '.', ')']).to_string())
        .filter(|w| {
            w.chars()
                .skip(2)
                .all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .collect();
    v.sort();
    v.dedup();
    assert!(v.len() > 15, "{v:?}");
    v
}

#[test]
fn completions_for_every_shell_know_every_option() {
    let options = analyze_options();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        for o in options.iter().filter(|o| *o != "--help") {
            let name = o.trim_start_matches('-');
            assert!(text.contains(name), "{shell} completion lacks {o}");
        }
    }
    // bash reads the script it would source without a syntax error.
    let script = stdout(&run(&["completions", "bash"]));
    match Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .status()
    {
        Ok(s) => assert!(s.success(), "bash -n rejects the completion script"),
        Err(_) => eprintln!("SKIPPED: bash not found, the script's syntax is not checked"),
    }
    let bad = run(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_manual_page_documents_every_option() {
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let roff = stdout(&out);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH rdpsift 1"),
        "{}",
        &roff[..200.min(roff.len())]
    );
    assert!(roff.contains(".TH rdpsift-analyze 1"));
    for o in analyze_options() {
        // roff escapes the dashes: \-\-keylog
        let escaped = o.replace('-', "\\-");
        assert!(roff.contains(&escaped), "the manual lacks {o}");
    }
    // man renders it, when man is installed.
    let dir = std::env::temp_dir().join(format!("rdpsift-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("rdpsift.1");
    std::fs::write(&page, &roff).unwrap();
    match Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("rdpsift"), "{text}");
        }
        _ => eprintln!("SKIPPED: man not installed, the page is not rendered"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn help_shows_the_three_main_uses() {
    for args in [vec!["--help"], vec!["analyze", "--help"]] {
        let help = stdout(&run(&args));
        assert!(help.contains("Examples:"), "{args:?}");
        for use_ in ["rdpsift analyze capture.pcapng", "--keylog", "--csv"] {
            assert!(help.contains(use_), "{args:?} lacks {use_}");
        }
    }
}

/// `--view attempts` puts the attempts on standard output, the same bytes
/// as `--attempts-csv`/`--attempts-json` (JSON then ends with the summary
/// record): a healthy attempt has a row there where the findings view has
/// nothing to say about it.
#[test]
fn standard_output_shows_either_view() {
    let dir = std::env::temp_dir().join(format!("rdpsift-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, flag) in [("csv", "--attempts-csv"), ("json", "--attempts-json")] {
        let file = dir.join(format!("a.{format}"));
        let out = run(&[
            "analyze",
            "samples/healthy.pcap",
            "-q",
            "--format",
            format,
            "--view",
            "attempts",
            flag,
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let shown = stdout(&out);
        let file = std::fs::read_to_string(&file).unwrap();
        if format == "json" {
            // Standard output ends with the run's summary record.
            let (rows, last) = shown.trim_end().rsplit_once('\n').unwrap();
            assert_eq!(format!("{rows}\n"), file);
            assert!(
                last.starts_with(r#"{"type":"summary","schema":2,"#),
                "{last}"
            );
        } else {
            assert_eq!(shown, file, "{format}");
        }
        assert!(shown.contains("connected"), "{format}: {shown}");
        let default = stdout(&run(&[
            "analyze",
            "samples/healthy.pcap",
            "-q",
            "--format",
            format,
        ]));
        // CSV shows findings by default; JSON both kinds of records.
        assert_eq!(
            default.contains("\"outcome\"") || default.contains(",outcome,"),
            format == "json",
            "{format}: {default}"
        );
    }
    // Both kinds in one CSV would mix two headers: refused, with the way.
    let out = run(&[
        "analyze",
        "samples/healthy.pcap",
        "--format",
        "csv",
        "--view",
        "all",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--attempts-csv"));
    std::fs::remove_dir_all(dir).ok();
}
