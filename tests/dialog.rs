//! The user's dialog code: every attempt's `client_error`, and `--saw`
//! ranking the attempts whose evidence gives what the user saw.

mod common;
use common::{csv_rows, run, stdout};

fn attempts(path: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "analyze", "-q", "--format", "csv", "--view", "attempts", path,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    csv_rows(&stdout(&out))
}

fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = rows[0].iter().position(|c| c == name).expect(name);
    rows[1..].iter().map(|r| r[i].clone()).collect()
}

#[test]
fn each_attempt_names_its_dialog_in_hex_and_decimal() {
    for (sample, hex, dec, basis) in [
        (
            "samples/server-denied.pcap",
            "0x904/0x7",
            "2308/7",
            "documented",
        ),
        ("samples/refused.pcap", "0x204", "516", "documented"),
        ("samples/syn-unanswered.pcap", "0x204", "516", "inferred"),
        (
            "samples/reset-by-server.pcap",
            "0x904",
            "2308",
            "documented",
        ),
        ("samples/healthy.pcap", "", "", ""),
        ("samples/stalled.pcap", "", "", ""),
    ] {
        let rows = attempts(sample, &[]);
        assert_eq!(column(&rows, "client_error"), [hex], "{sample}");
        assert_eq!(column(&rows, "client_error_decimal"), [dec], "{sample}");
        assert_eq!(column(&rows, "client_error_basis"), [basis], "{sample}");
        // The deprecated column stays for this schema version.
        assert_eq!(column(&rows, "fits_0x904").len(), 1, "{sample}");
    }
}

#[test]
fn saw_ranks_the_exact_fit_first_and_says_when_nothing_fits() {
    let out = run(&[
        "analyze",
        "--format",
        "table",
        "--color",
        "never",
        "samples/reset-by-server.pcap",
        "samples/server-denied.pcap",
        "samples/healthy.pcap",
        "--saw",
        "0x904/0x7",
    ]);
    let s = stdout(&out);
    let at = s.find("What you saw: 0x904/0x7 (2308/7)").expect(&s);
    let tail = &s[at..];
    let exact = tail
        .find("exact  samples/server-denied.pcap #1")
        .expect(tail);
    let code = tail
        .find("code   samples/reset-by-server.pcap #1")
        .expect(tail);
    assert!(exact < code, "{tail}");
    assert!(!tail.contains("healthy.pcap"), "{tail}");

    // Decimal, as Event 1026 prints it; nothing fits a refused connect.
    let out = run(&[
        "analyze",
        "--format",
        "table",
        "--color",
        "never",
        "samples/server-denied.pcap",
        "--saw",
        "516",
    ]);
    assert!(
        stdout(&out).contains("no attempt's evidence gives this dialog"),
        "{}",
        stdout(&out)
    );
    // Outside the table, the ranking goes to standard error.
    let out = run(&[
        "analyze",
        "--format",
        "json",
        "samples/refused.pcap",
        "--saw",
        "0x204",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exact  samples/refused.pcap #1"), "{err}");
    // A code that is not one is refused before any capture is read.
    let out = run(&["analyze", "samples/refused.pcap", "--saw", "0x9z4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an error code"));
}
