//! What CI trusts: a JUnit report with one bounded test case per capture
//! and no run-dependent values, and a baseline that fails the run only on
//! findings it does not hold (matched without the client's port).

mod common;
use common::run;
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdpsift-ci-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn junit_has_a_case_per_capture_failing_at_fail_on_and_the_same_bytes_each_run() {
    let d = scratch("junit");
    let (a, b) = (d.join("a.xml"), d.join("b.xml"));
    let args = |f: &PathBuf| {
        vec![
            "analyze".to_string(),
            "-q".into(),
            "--format".into(),
            "csv".into(),
            "samples".into(),
            "--junit".into(),
            f.to_str().unwrap().into(),
        ]
    };
    let o = run(&args(&a).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    let mut four = args(&b);
    four.extend(["-j".into(), "3".into()]);
    run(&four.iter().map(String::as_str).collect::<Vec<_>>());
    let x = std::fs::read_to_string(&a).unwrap();
    assert_eq!(
        x,
        std::fs::read_to_string(&b).unwrap(),
        "stable across runs"
    );
    // Well-formed: every element read back by an XML parser.
    let mut r = quick_xml::Reader::from_str(&x);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match r.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let captures = std::fs::read_dir("samples")
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .count();
    assert_eq!(cases, captures, "{x}");
    assert!(failures > 30 && failures < cases, "{failures} of {cases}");
    assert!(x.contains(r#"name="samples/refused.pcap">"#), "{x}");
    assert!(x.contains(r#"<testcase classname="rdpsift.capture" name="samples/healthy.pcap"/>"#));
    assert!(!x.contains("timestamp") && !x.contains("time="));
    // Nothing fails at --fail-on never.
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/refused.pcap",
        "--fail-on",
        "never",
        "--junit",
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(&a)
        .unwrap()
        .contains(r#"failures="0""#));
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_baseline_fails_the_run_only_on_new_findings() {
    let d = scratch("baseline");
    let base = d.join("base.csv");
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/refused.pcap",
        "samples/server-denied.pcap",
        "--csv",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    // The same captures again: everything accepted, exit 0.
    let o = run(&[
        "analyze",
        "--format",
        "csv",
        "samples/refused.pcap",
        "samples/server-denied.pcap",
        "--baseline",
        base.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("accepted by the baseline"));
    // A capture the baseline does not hold fails it.
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/refused.pcap",
        "samples/reset-by-server.pcap",
        "--baseline",
        base.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    // The same failure from another client port is the same finding: the
    // baseline written as JSON, its client ports rewritten.
    let json = d.join("base.json");
    run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/refused.pcap",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&json)
        .unwrap()
        .replace(":50112\"", ":61234\"");
    assert!(text.contains(":61234"));
    std::fs::write(&json, text).unwrap();
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/refused.pcap",
        "--baseline",
        json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    // A baseline that is not a findings report is refused, named.
    std::fs::write(d.join("bad.csv"), "a,b\n1,2\n").unwrap();
    let o = run(&[
        "analyze",
        "-q",
        "samples/refused.pcap",
        "--baseline",
        d.join("bad.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.csv"));
    std::fs::remove_dir_all(d).ok();
}
