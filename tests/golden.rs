//! Golden files (insta snapshots in tests/snapshots/, reviewed like code):
//! the terminal report of a few samples that show each kind of block, and
//! the JSON Lines of one. `cargo insta review` (or INSTA_UPDATE=always)
//! after a deliberate change; CI fails on any difference.

mod common;
use common::{run, sample_args, stdout};

fn report(sample: &str, extra: &[&str]) -> String {
    let mut args: Vec<String> = ["analyze", "-q", "--format", "table", "--color", "never"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(format!("samples/{sample}"));
    args.extend(sample_args(sample));
    args.extend(extra.iter().map(|s| s.to_string()));
    stdout(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
}

#[test]
fn terminal_reports() {
    for (sample, extra) in [
        ("server-denied.pcap", &[][..]),
        ("refused.pcap", &[][..]),
        ("healthy.pcap", &["-v"][..]),
        ("dns-typed-name.pcap", &[][..]),
        ("truncated.pcap", &[][..]),
        ("lab-gw-rap-denied.pcapng", &[][..]),
        ("win-keys-wrong-password.pcap", &[][..]),
        ("fallback.pcap", &["--saw", "0x204"][..]),
    ] {
        if !std::path::Path::new("samples").join(sample).exists() {
            panic!("samples/{sample} is missing");
        }
        insta::assert_snapshot!(format!("terminal-{sample}"), report(sample, extra));
    }
}

#[test]
fn json_lines() {
    let out = run(&[
        "analyze",
        "-q",
        "--format",
        "json",
        "samples/server-denied.pcap",
        "samples/refused.pcap",
    ]);
    insta::assert_snapshot!("json-server-denied-refused", stdout(&out));
}
