//! Direct RDP and TLS on real public captures (../shared/captures), checked
//! field by field against the gold files their projects wrote: Zeek's
//! rdp.log / ssl.log / x509.log, Suricata's test.yaml, nDPI's results.
//! Skips with a message when ../shared is absent.

#[macro_use]
mod common;
use common::harness;
use rdpsift::capture::Source;
use rdpsift::config::Config;
use rdpsift::report::model::{Attempt, Outcome};
use rdpsift::report::CaptureReport;
use rdpsift::run as engine;
use std::collections::HashMap;
use std::path::Path;

fn analyze(path: &Path, ports: &[u16]) -> CaptureReport {
    let cfg = Config {
        ports: ports.iter().copied().collect(),
        ..Config::default()
    };
    let r = engine::analyze(
        &path.display().to_string(),
        Source::open(path).unwrap(),
        &cfg,
        2,
        &|_| {},
    );
    assert!(r.error.is_none(), "{}: {:?}", path.display(), r.error);
    r
}

/// A Zeek log: one map per row, keyed by the `#fields` names.
fn zeek_log(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let fields: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .expect("#fields")
        .split('\t')
        .map(String::from)
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            fields
                .iter()
                .cloned()
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

/// The attempt whose client port is `port` (Zeek's id.orig_p).
fn by_port<'a>(r: &'a CaptureReport, port: &str) -> &'a Attempt {
    r.attempts
        .iter()
        .find(|a| a.client.ends_with(&format!(":{port}")))
        .unwrap_or_else(|| panic!("no attempt from port {port}: {:?}", r.attempts))
}

/// Zeek's version names (TLSv10) against ours (TLS 1.0).
fn zeek_version(v: &str) -> String {
    match v {
        "TLSv10" => "TLS 1.0",
        "TLSv11" => "TLS 1.1",
        "TLSv12" => "TLS 1.2",
        "TLSv13" => "TLS 1.3",
        other => other,
    }
    .to_string()
}

fn unset(v: &str) -> &str {
    match v {
        "-" | "(empty)" => "",
        v => v,
    }
}

fn zeek_rdp_traces_agree_with_rdp_and_ssl_logs(root: &Path) {
    let base = root.join("zeek/Baseline");
    for (trace, dir) in [
        ("rdp-to-ssl.pcap", "scripts.base.protocols.rdp.rdp-to-ssl"),
        (
            "rdp-no-cookie-mstshash.pcap",
            "scripts.base.protocols.rdp.rdp-no-cookie-msthash",
        ),
        ("rdp-x509.pcap", "scripts.base.protocols.rdp.rdp-x509"),
        (
            "rdp-unknown-keyboard.pcap",
            "scripts.base.protocols.rdp.rdp-unknown-keyboard",
        ),
    ] {
        let r = analyze(&root.join("zeek/Traces/rdp").join(trace), &[]);
        for row in zeek_log(&base.join(dir).join("rdp.log")) {
            let a = by_port(&r, &row["id.orig_p"]);
            assert_eq!(a.app, "rdp", "{trace}");
            assert_eq!(a.user, unset(&row["cookie"]), "{trace}: cookie");
            // Zeek's security_protocol is the selected protocol (or RDP).
            let sel = a.selected.split(' ').next().unwrap_or("");
            assert_eq!(sel, row["security_protocol"], "{trace}: protocol");
            let channels = unset(&row["client_channels"]).replace(',', ";");
            assert_eq!(a.channels, channels, "{trace}: channels");
            assert_eq!(a.client_name, unset(&row["client_name"]), "{trace}: name");
            if unset(&row["client_build"]) == "RDP 8.1" {
                assert_eq!(a.client_build, "9600", "{trace}: build");
            }
            let method = unset(&row["encryption_method"]);
            if !method.is_empty() {
                let level = row["encryption_level"].to_lowercase();
                assert_eq!(a.rdp_encryption, format!("{method}, {level}"), "{trace}");
            }
            // Zeek's "Success": the server accepted and the session ran;
            // "encrypted": the negotiation was accepted and TLS followed.
            match row["result"].as_str() {
                "Success" => assert_eq!(a.outcome, Outcome::Connected, "{trace}: {a:?}"),
                "encrypted" => assert!(!a.tls_version.is_empty(), "{trace}: {a:?}"),
                _ => {}
            }
        }
        let ssl = base.join(dir).join("ssl.log");
        if ssl.exists() {
            for row in zeek_log(&ssl) {
                let a = by_port(&r, &row["id.orig_p"]);
                assert_eq!(a.tls_version, zeek_version(&row["version"]), "{trace}");
                assert_eq!(a.tls_cipher, row["cipher"], "{trace}");
                assert_eq!(a.cert_subject, row["subject"], "{trace}");
                assert_eq!(a.target, unset(&row["server_name"]), "{trace}: SNI");
            }
        }
        let x509 = base.join(dir).join("x509.log");
        if x509.exists() {
            // Standard RDP Security: the server's certificate is the last of
            // the chain; its notAfter is Zeek's not_valid_after.
            let rows = zeek_log(&x509);
            let last = rows.last().unwrap();
            let not_after: f64 = last["certificate.not_valid_after"].parse().unwrap();
            let a = &r.attempts[0];
            assert_eq!(
                a.cert_not_after,
                rdpsift::report::model::rfc3339(not_after as i64 * 1_000_000_000)
            );
            assert!(a.cert_subject.contains("CN=ncalrpc:SERVR"), "{a:?}");
        }
    }
}

fn zeek_invalid_length_is_malformed_not_a_crash(root: &Path) {
    let r = analyze(&root.join("zeek/Traces/rdp/rdp-invalid-length.pcap"), &[]);
    assert!(
        r.findings.iter().any(|f| f.code == "x224.malformed"),
        "{:?}",
        r.findings
    );
}

fn suricata_rdp_003_agrees_with_test_yaml(root: &Path) {
    let dir = root.join("suricata-verify/tests/rdp-protocol");
    let yaml = std::fs::read_to_string(dir.join("test.yaml")).unwrap();
    let value = |key: &str| -> String {
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key} in test.yaml"))
            .trim_matches('"')
            .to_string()
    };
    let r = analyze(&dir.join("RDP-003.pcap"), &[]);
    assert_eq!(r.attempts.len(), 1);
    let a = &r.attempts[0];
    assert_eq!(a.user, value("rdp.cookie"));
    assert_eq!(a.client_name, value("rdp.client.client_name"));
    let channels: Vec<String> = (0..3)
        .map(|i| value(&format!("rdp.channels[{i}]")))
        .collect();
    assert_eq!(a.channels, channels.join(";"));
    // Suricata names build 2600 "Windows XP".
    assert_eq!(value("rdp.client.build"), "Windows XP");
    assert_eq!(a.client_build, "2600");
    // No negotiation request: a legacy client, Standard RDP Security.
    assert_eq!(a.requested, "none");
    assert_eq!(a.selected, "RDP (no negotiation)");
    assert_eq!(a.rdp_encryption, "56bit, client compatible");
    assert_eq!(a.outcome, Outcome::Connected);
    // Standard RDP Security: the server's ultimatum is read in the clear,
    // with its T.125 reason, and the session ended as sessions do.
    let end = r
        .findings
        .iter()
        .find(|f| f.code == "rdp.session_ended")
        .expect("rdp.session_ended");
    assert!(
        end.summary.contains(
            "in the clear: the ultimatum in frame 431 gives reason 3 (rn-user-requested)"
        ),
        "{}",
        end.summary
    );
}

fn ndpi_rdp_traces_agree_with_results(root: &Path) {
    let dir = root.join("nDPI/tests/cfgs/default");
    for (pcap, expect_sel) in [
        ("rdp.pcap", "HYBRID_EX"),
        ("rdp3.pcap", "RDP (no negotiation)"),
    ] {
        let out = std::fs::read_to_string(dir.join("result").join(format!("{pcap}.out"))).unwrap();
        // nDPI's flow line names both endpoints and the RDP protocol.
        let line = out.lines().find(|l| l.contains("[proto: 88/RDP]")).unwrap();
        let r = analyze(&dir.join("pcap").join(pcap), &[]);
        assert_eq!(r.attempts.len(), 1, "{pcap}");
        let a = &r.attempts[0];
        assert!(
            line.contains(&a.client) && line.contains(&a.server),
            "{pcap}: {line}"
        );
        assert_eq!(a.app, "rdp");
        assert_eq!(a.selected, expect_sel, "{pcap}");
    }
    // rdp.pcap: 0xb requested (SSL|HYBRID|HYBRID_EX) on a NULL link.
    let r = analyze(&dir.join("pcap/rdp.pcap"), &[]);
    assert_eq!(r.attempts[0].requested, "SSL|HYBRID|HYBRID_EX");
}

/// The TLS traces are not RDP: with `--port` for their ports, alerts,
/// versions and certificates agree with the gold files.
fn tls_traces_alerts_versions_certificates(root: &Path) {
    let z = root.join("zeek/Traces/tls");
    // Findings that matter here (info ones such as path.mss_mismatch aside).
    let codes = |r: &CaptureReport| -> Vec<String> {
        r.findings
            .iter()
            .filter(|f| f.severity.name() != "info" || f.code.to_string().starts_with("tls."))
            .map(|f| f.code.to_string())
            .collect()
    };
    // Zeek ssl.log: last_alert handshake_failure after the ClientHello.
    let log = zeek_log(
        &root.join("zeek/Baseline/scripts.base.protocols.ssl.tls-1.2-handshake-failure/ssl.log"),
    );
    assert_eq!(log[0]["last_alert"], "handshake_failure");
    let r = analyze(&z.join("tls-1.2-handshake-failure.pcap"), &[443]);
    assert_eq!(codes(&r), ["tls.alert.handshake_failure"]);
    assert!(r.findings[0].summary.starts_with("The server sent a fatal"));

    // Client certificate requested, then alert 40 (zeek: certificate_request).
    let r = analyze(&z.join("certificate-request-failed.pcap"), &[3000]);
    assert!(codes(&r).contains(&"tls.alert.handshake_failure".to_string()));
    assert!(
        r.attempts[0].cert_subject.contains("O=SomeOrg"),
        "{:?}",
        r.attempts[0]
    );

    // A corrupted record where the ServerHello should be (zeek: "Invalid
    // version late in TLS connection").
    let r = analyze(&z.join("tls-1.2-protocol-error.pcap"), &[443]);
    assert!(
        codes(&r).contains(&"tls.malformed".to_string()),
        "{:?}",
        codes(&r)
    );

    // Alert 112 unrecognized_name on port 64132; the handshake went on.
    let r = analyze(&z.join("tls-early-alert.pcap"), &[64132]);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "tls.alert.unrecognized_name")
        .unwrap();
    assert_eq!(f.severity.name(), "info");
    assert_eq!(r.attempts[0].tls_version, "TLS 1.2");

    // TLS 1.3 draft clients refused with protocol_version (zeek: tls13 ssl-out).
    for t in [
        "tls13draft16-chrome55.0.2879.0-canary-aborted.pcap",
        "tls13draft16-ff52.a01-aborted.pcap",
    ] {
        let r = analyze(&z.join(t), &[443]);
        assert!(
            codes(&r).iter().all(|c| c == "tls.alert.protocol_version"),
            "{t}: {:?}",
            codes(&r)
        );
        assert_eq!(r.attempts[0].target, "tls13.crypto.mozilla.org");
    }

    // Suricata: a fatal handshake_failure (the server sends it, as tshark shows).
    let s = root.join("suricata-verify/tests");
    let r = analyze(&s.join("tls-extra-alert/input.pcap"), &[443]);
    assert_eq!(codes(&r), ["tls.alert.handshake_failure"]);

    // Suricata tls-certs-alert: a three-certificate chain for example.com.
    let r = analyze(&s.join("tls/tls-certs-alert/input.pcap"), &[443]);
    assert_eq!(r.attempts[0].target, "example.com");
    assert!(r.attempts[0]
        .cert_subject
        .contains("Internet Corporation for Assigned Names"));

    // MTU 300: the ClientHello over many small segments still gives its SNI.
    let yaml = std::fs::read_to_string(s.join("tls/tls-client-hello-frag-01/test.yaml")).unwrap();
    assert!(yaml.contains("www.google.com"));
    let r = analyze(
        &s.join("tls/tls-client-hello-frag-01/dump_mtu300.pcap"),
        &[443],
    );
    assert_eq!(r.attempts[0].target, "www.google.com");
    assert_eq!(r.attempts[0].outcome, Outcome::Connected);

    // nDPI: "Found fatal TLS alert", TLSv1 client; the SNI it names.
    let out =
        std::fs::read_to_string(root.join("nDPI/tests/cfgs/default/result/tls_alert.pcap.out"))
            .unwrap();
    assert!(out.contains("Found fatal TLS alert") && out.contains("www.google-analytics.com"));
    let r = analyze(
        &root.join("nDPI/tests/cfgs/default/pcap/tls_alert.pcap"),
        &[443],
    );
    let a = r
        .attempts
        .iter()
        .find(|a| a.target == "www.google-analytics.com")
        .unwrap();
    assert_eq!(a.verdict, "tls.alert.protocol_version");
}

/// RDP over UDP (zeek rdpeudp traces) and the path MTU (ICMP too big),
/// against the gold files.
fn rdpeudp_and_path_traces(root: &Path) {
    let rdp = root.join("zeek/Traces/rdp");
    let base = root.join("zeek/Baseline");
    // Handshake fail: zeek saw only rdpeudp_syn; conn.log says S0 (no reply).
    let conn = zeek_log(&base.join("scripts.base.protocols.rdp.rdpeudp-handshake-fail/conn.log"));
    assert_eq!(conn[0]["conn_state"], "S0");
    let r = analyze(&rdp.join("rdpeudp-handshake-fail.pcap"), &[]);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "udp.syn_unanswered")
        .unwrap();
    assert!(f.summary.starts_with("3 RDPEUDP SYNs"), "{}", f.summary);
    assert!(f.summary.contains("1232-byte payload"), "{}", f.summary);
    assert_eq!(r.attempts[0].outcome, Outcome::Failed);
    // Handshake success, v1 and v2 (zeek's rdpeudp_established version).
    for (trace, dir, app) in [
        (
            "rdpeudp-handshake-success.pcap",
            "scripts.base.protocols.rdp.rdpeudp-handshake-success",
            "rdpeudp v1",
        ),
        (
            "rdpeudp2-handshake-success.pcap",
            "scripts.base.protocols.rdp.rdpeudp2-handshake-success",
            "rdpeudp2",
        ),
    ] {
        let out = std::fs::read_to_string(base.join(dir).join("out")).unwrap();
        let est = out
            .lines()
            .find(|l| l.starts_with("rdpeudp_established"))
            .unwrap();
        let v = est.rsplit(", ").next().unwrap().trim();
        assert_eq!(app.ends_with('2'), v == "2", "{trace}: zeek says {v}");
        let r = analyze(&rdp.join(trace), &[]);
        assert_eq!(r.attempts.len(), 1, "{trace}");
        assert_eq!(r.attempts[0].app, app, "{trace}");
        assert_eq!(r.attempts[0].outcome, Outcome::Connected, "{trace}");
        assert!(
            r.findings
                .iter()
                .all(|f| !f.code.to_string().starts_with("udp.")),
            "{trace}"
        );
    }
    // smtp.pcap: four ICMP 3/4 with MTU 1492, tied to the SMTP flow's attempt.
    let r = analyze(&root.join("zeek/Traces/smtp.pcap"), &[25]);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "path.icmp_frag_needed")
        .unwrap();
    assert!(!f.attempt.is_empty());
    assert!(
        f.summary.contains("next-hop MTU 1492") && f.summary.contains("(4 times)"),
        "{}",
        f.summary
    );
    // IPv6 Packet Too Big: 1280 (zeek) and 1200 (suricata), not an attempt's.
    for (p, mtu) in [
        ("zeek/Traces/icmp/icmp6-toobig.pcap", "1280"),
        (
            "suricata-verify/tests/ipv6-evasion/ipv6-atomic-fragments-toobig/toobig.pcap",
            "1200",
        ),
    ] {
        let r = analyze(&root.join(p), &[]);
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "path.icmp_frag_needed")
            .unwrap();
        assert!(
            f.summary.contains(&format!("next-hop MTU {mtu} ")),
            "{p}: {}",
            f.summary
        );
        assert!(f.attempt.is_empty());
    }
    // dump_mtu300: small segments and the receiver's coalesced ones are not errors.
    let r = analyze(
        &root.join("suricata-verify/tests/tls/tls-client-hello-frag-01/dump_mtu300.pcap"),
        &[443],
    );
    assert!(
        r.findings.iter().all(|f| f.severity.name() == "info"),
        "{:?}",
        r.findings
    );
    assert!(r.findings.iter().any(|f| f.code == "capture.offload"));
}

fn main() -> std::process::ExitCode {
    harness(shared_tests![
        zeek_rdp_traces_agree_with_rdp_and_ssl_logs,
        zeek_invalid_length_is_malformed_not_a_crash,
        suricata_rdp_003_agrees_with_test_yaml,
        ndpi_rdp_traces_agree_with_results,
        tls_traces_alerts_versions_certificates,
        rdpeudp_and_path_traces,
    ])
}
