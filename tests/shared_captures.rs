//! The tool on real public captures (../shared/captures), checked against the
//! gold outputs their projects wrote. Skips with a message when absent.

#[macro_use]
mod common;
use common::*;
use rdpsift::capture::{Reader, Source};
use rdpsift::config::Config;
use rdpsift::flow::{Mark, Table};
use rdpsift::{decode, run as engine};
use std::path::{Path, PathBuf};

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            all_files(&p, out);
        } else if rdpsift::capture::source::sniff_capture(&p).unwrap_or(false) {
            out.push(p);
        }
    }
}

fn analyze(path: &Path, ports: &[u16]) -> rdpsift::report::CaptureReport {
    let cfg = Config {
        ports: ports.iter().copied().collect(),
        ..Config::default()
    };
    engine::analyze(
        &path.display().to_string(),
        Source::open(path).unwrap(),
        &cfg,
        2,
        &|_| {},
    )
}

fn codes(r: &rdpsift::report::CaptureReport) -> Vec<String> {
    r.findings.iter().map(|f| f.code.to_string()).collect()
}

fn every_shared_capture_is_read_without_panic(root: &Path) {
    let mut files = vec![];
    all_files(root, &mut files);
    assert!(files.len() > 50, "found only {} captures", files.len());
    let mut clean = 0;
    for f in &files {
        // Many ports relevant: the most code paths on every byte.
        let r = analyze(f, &[25, 53, 80, 443, 8080]);
        match &r.error {
            None => clean += 1,
            Some(e) => assert!(!e.is_empty(), "{}", f.display()),
        }
    }
    // Public captures are valid files: every one reads to its end.
    assert_eq!(clean, files.len());
}

/// Packet counts as capinfos reports them (pcap-parser's own test files).
fn pcap_parser_format_files_give_their_packets(root: &Path) {
    let cases = [
        ("err-buffertoosmall.pcapng", 27),
        ("modified-format.pcap", 1),
        ("ntp.pcap", 12),
        ("test001-be.pcapng", 4),
        ("test001-le.pcapng", 4),
        ("test010-le.pcapng", 4),
        ("test016-be.pcapng", 4),
        ("test016-le.pcapng", 4),
        ("test017-be.pcapng", 0),
        ("test017-le.pcapng", 0),
    ];
    for (name, n) in cases {
        let p = root.join("rusticata-pcap-parser/assets").join(name);
        let r = analyze(&p, &[]);
        assert_eq!(r.error, None, "{name}");
        assert_eq!(r.frames, n, "{name}");
        // Also through the streaming window (as standard input would be read).
        let data = std::fs::read(&p).unwrap();
        let src = Source::from_reader(Box::new(std::io::Cursor::new(data))).unwrap();
        let r = engine::analyze(name, src, &Config::default(), 1, &|_| {});
        assert_eq!(r.frames, n, "{name} (stream)");
    }
}

/// Zeek's conn_state for the four minimal reset traces
/// (Baseline/scripts.base.protocols.conn.conn_state-RST-behavior/out), mapped
/// to what rdpsift reports:
/// - R / OTH: no SYN seen, the originator resets: mid-stream attempt,
///   `tcp.reset_by_client` with lowered confidence;
/// - SR, SaR / RSTOS0: the originator sent a SYN, then a reset, no SYN-ACK:
///   nothing to blame on the server, the attempt is `incomplete`;
/// - SaFR / OTH: the same with a FIN first: `incomplete`, no finding.
fn zeek_reset_traces_agree_with_conn_state(root: &Path) {
    let baseline = std::fs::read_to_string(
        root.join("zeek/Baseline/scripts.base.protocols.conn.conn_state-RST-behavior/out"),
    )
    .unwrap();
    let states: Vec<&str> = baseline.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(states, ["R, OTH", "SR, RSTOS0", "SaR, RSTOS0", "SaFR, OTH"]);
    let cases = [
        ("single-rst.pcap", 80, "failed", vec!["tcp.reset_by_client"]),
        ("syn-then-rst.pcap", 31313, "incomplete", vec![]),
        ("syn-then-ack-then-rst.pcap", 31313, "incomplete", vec![]),
        ("syn-then-stuff-then-rst.pcap", 31313, "incomplete", vec![]),
    ];
    for (name, port, outcome, want) in cases {
        let r = analyze(&root.join("zeek/Traces/tcp").join(name), &[port]);
        assert_eq!(r.attempts.len(), 1, "{name}");
        assert_eq!(r.attempts[0].outcome.name(), outcome, "{name}");
        assert_eq!(codes(&r), want, "{name}");
    }
    let r = analyze(&root.join("zeek/Traces/tcp/single-rst.pcap"), &[80]);
    assert!(r.findings[0].confidence.reason.contains("started after"));
}

fn fragment_traces_reassemble(root: &Path) {
    // A SYN in two fragments (Zeek) and in three on raw IPv4, link type 228 (Suricata).
    for (path, port, frags) in [
        ("zeek/Traces/ipv4/fragmented-syn.pcap", 80, 2),
        (
            "suricata-verify/tests/defrag/bug-6887-defrag-ipv4-tcp-syn/frag-ip-tcp-syn.pcap",
            8080,
            3,
        ),
    ] {
        let r = analyze(&root.join(path), &[port]);
        assert_eq!(r.attempts.len(), 1, "{path}");
        assert_eq!(
            r.attempts[0].client,
            if port == 80 {
                "192.168.1.100:12345"
            } else {
                "1.1.1.1:12345"
            }
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "path.fragmented")
            .expect(path);
        assert!(
            f.summary.contains(&format!("{frags} IP fragments")),
            "{}",
            f.summary
        );
    }
    // Zeek flags fragment_inconsistency on fragmented-4: overlapping bytes that disagree.
    let r = analyze(&root.join("zeek/Traces/ipv4/fragmented-4.pcap"), &[80]);
    assert!(
        codes(&r).iter().any(|c| c == "path.frag_overlap"),
        "{:?}",
        codes(&r)
    );
    // IPv6 fragment header: a DNS answer in three fragments.
    let r = analyze(&root.join("zeek/Traces/ipv6-fragmented-dns.pcap"), &[53]);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "path.fragmented")
        .expect("v6 fragments");
    assert!(f.summary.contains("3 IP fragments"));
    assert_eq!(f.attempt, "#2");
}

fn garbage_fragments_stay_bounded(root: &Path) {
    let p = root.join("nDPI/tests/cfgs/default/pcap/ip_fragmented_garbage.pcap");
    let r = analyze(&p, &[]);
    assert_eq!(r.frames, 1252);
    assert!(r.attempts.is_empty());
}

/// ICMP errors are matched to the flow whose packet they quote: smtp.pcap has
/// four "fragmentation needed" (next-hop MTU 1492) quoting 1500-byte segments.
fn icmp_errors_meet_their_flow(root: &Path) {
    let cfg = Config {
        ports: [25].into_iter().collect(),
        ..Config::default()
    };
    let mut reader =
        Reader::new(Source::open(&root.join("zeek/Traces/smtp.pcap")).unwrap()).unwrap();
    let mut table = Table::new();
    let mut batch = vec![];
    let mut end = Mark::default();
    loop {
        let more = reader.next_batch(&mut batch, 1000, 1 << 20).unwrap();
        for f in &batch {
            let ip = decode::link::ip_bytes(f.link, f.data(reader.window())).unwrap();
            let pkt = decode::decode(ip).unwrap();
            end = Mark {
                frame: f.number,
                ts: f.ts,
            };
            table.packet(&pkt, end, &cfg);
        }
        if !more {
            break;
        }
    }
    table.close(end, &cfg);
    let done = table.take_done();
    let flow = &done
        .iter()
        .find(|f| f.flow.server.port() == 25 && f.flow.client.port() == 1470)
        .unwrap()
        .flow;
    assert_eq!(flow.icmp.len(), 4);
    for e in &flow.icmp {
        assert!(e.err.is_too_big());
        assert_eq!(e.err.mtu, Some(1492));
        assert_eq!(e.err.quoted.len, 1500);
        assert!(e.err.quoted.df);
        assert_eq!(e.dir, rdpsift::finding::Dir::Client);
    }
    assert!(table.orphan_icmp.is_empty());
}

fn direct_rdp_traces_are_found_as_rdp(root: &Path) {
    for (path, attempts) in [
        ("zeek/Traces/rdp/rdp-to-ssl.pcap", 2),
        ("zeek/Traces/rdp/rdp-x509.pcap", 1),
        ("suricata-verify/tests/rdp-protocol/RDP-003.pcap", 1),
        ("nDPI/tests/cfgs/default/pcap/rdp.pcap", 1),
    ] {
        let r = analyze(&root.join(path), &[]);
        assert_eq!(r.attempts.len(), attempts, "{path}");
        for a in &r.attempts {
            assert_eq!(a.app, "rdp", "{path}");
            assert_eq!(a.outcome.name(), "connected", "{path}");
        }
    }
}

/// How the real Windows sessions end: the mstsc client stopping during NLA
/// (its identity prompt) is a warning beside what the connection showed,
/// and a healthy ending is `rdp.session_ended`.
fn real_nla_stops_and_endings(root: &Path) {
    let r = analyze(&root.join("zeek/Traces/rdp/rdp-to-ssl.pcap"), &[]);
    let codes: Vec<String> = r.findings.iter().map(|f| f.code.to_string()).collect();
    assert!(
        codes.contains(&"nla.client_aborted".to_string()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"rdp.session_ended".to_string()),
        "{codes:?}"
    );
    assert!(r.attempts.iter().all(|a| a.outcome.name() == "connected"));
    // A client reset right after TLS keeps its own finding and outcome.
    let r = analyze(
        &root.join("zeek/Traces/rdp/rdp-no-cookie-mstshash.pcap"),
        &[],
    );
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].outcome.name(), "failed");
    assert_eq!(r.attempts[0].verdict, "tcp.reset_by_client");
}

/// Public WebSocket and HTTP traces are no RD Gateway: HTTP on any port
/// is followed by content, and only a gateway's methods make a leg.
fn websocket_and_http_traces_are_not_gateways(root: &Path) {
    for path in [
        "suricata-verify/tests/websocket/basic_websockets.pcap",
        "zeek/Traces/http/websocket.pcap",
        "nDPI/tests/cfgs/default/pcap/websocket.pcap",
    ] {
        let r = analyze(&root.join(path), &[]);
        assert!(r.attempts.is_empty(), "{path}: {:?}", r.attempts);
        assert!(r.findings.is_empty(), "{path}: {:?}", codes(&r));
    }
    let mut files = vec![];
    all_files(root, &mut files);
    for f in &files {
        let r = analyze(f, &[80, 8080]);
        let gw: Vec<String> = codes(&r)
            .into_iter()
            .filter(|c| c.starts_with("gateway."))
            .collect();
        assert!(gw.is_empty(), "{}: {gw:?}", f.display());
        assert!(
            r.attempts
                .iter()
                .all(|a| a.via == "direct" || a.via.is_empty()),
            "{}",
            f.display()
        );
    }
}

/// Every JSON Lines record the public captures give is valid against the
/// report's JSON Schema (docs/rdpsift.schema.json; tests/schema.rs does
/// the samples).
fn json_records_match_the_schema(root: &Path) {
    let text = std::fs::read_to_string("docs/rdpsift.schema.json").unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let out = run(&["analyze", "-q", "--format", "json", root.to_str().unwrap()]);
    let text = stdout(&out);
    let mut n = 0;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = v.iter_errors(&r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}\n{errors:#?}");
        n += 1;
    }
    assert!(n > 20, "{n} records");
}

fn main() -> std::process::ExitCode {
    harness(shared_tests![
        json_records_match_the_schema,
        every_shared_capture_is_read_without_panic,
        pcap_parser_format_files_give_their_packets,
        zeek_reset_traces_agree_with_conn_state,
        fragment_traces_reassemble,
        garbage_fragments_stay_bounded,
        icmp_errors_meet_their_flow,
        direct_rdp_traces_are_found_as_rdp,
        real_nla_stops_and_endings,
        websocket_and_http_traces_are_not_gateways,
    ])
}
