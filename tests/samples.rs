//! End-to-end: the binary on the bundled samples, compared with reviewed
//! expected reports (tests/expected/NAME.{findings,attempts}.csv).
//! `UPDATE_EXPECTED=1 cargo test --test samples` rewrites them; review the diff.

mod common;
use common::*;
use std::path::Path;

fn samples() -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples"))
            .expect("samples/")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // Key logs and keys beside their captures are not captures.
            .filter(|n| !n.ends_with(".keys") && !n.ends_with(".pem"))
            .collect();
    v.sort();
    v
}

#[test]
fn samples_match_their_expected_reports() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let dir = std::env::temp_dir().join(format!("rdpsift-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = vec![];
    for name in samples() {
        let path = format!("samples/{name}");
        let att = dir.join(format!("{name}.attempts.csv"));
        let extra = sample_args(&name);
        let mut args = vec![
            "analyze",
            "-q",
            "--format",
            "csv",
            "--attempts-csv",
            att.to_str().unwrap(),
            &path,
        ];
        args.extend(extra.iter().map(String::as_str));
        let o = run(&args);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{name}: {:?}", o);
        let got = [
            ("findings", stdout(&o)),
            ("attempts", std::fs::read_to_string(&att).unwrap()),
        ];
        for (kind, text) in got {
            let exp = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/expected/{name}.{kind}.csv"));
            if update {
                std::fs::write(&exp, &text).unwrap();
            } else {
                let want = std::fs::read_to_string(&exp)
                    .unwrap_or_else(|_| panic!("missing {}", exp.display()));
                if want != text {
                    failures.push(format!(
                        "{name} {kind}:\n--- expected\n{want}--- got\n{text}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A capture with its key log injected as a Decryption Secrets Block
/// (editcap --inject-secrets) reports exactly what the capture and the key
/// log given with --keylog report.
#[test]
fn secrets_blocks_equal_a_key_log() {
    for (plain, dsb, extra) in [
        (
            "lab-tls-suites.pcap",
            "lab-tls-suites-dsb.pcapng",
            &["--port", "4433"][..],
        ),
        (
            "lab-keys-shadow-nla-wrong.pcap",
            "lab-keys-shadow-nla-wrong-dsb.pcapng",
            &[][..],
        ),
    ] {
        let keys = format!("samples/{}", plain.replace(".pcap", ".keys"));
        let mut a = vec!["analyze", "-q", "--format", "csv", "--keylog", &keys];
        a.extend(extra);
        let p = format!("samples/{plain}");
        a.push(&p);
        let mut b = vec!["analyze", "-q", "--format", "csv"];
        b.extend(extra);
        let d = format!("samples/{dsb}");
        b.push(&d);
        let (a, b) = (stdout(&run(&a)), stdout(&run(&b)));
        assert!(a.lines().count() > 1, "{a}");
        assert_eq!(a.replace(&p, &d), b, "{plain} with --keylog vs {dsb}");
        assert!(!b.contains("tls.decrypt_failed"), "{b}");
    }
    // Without keys the same capture says nothing of what is inside.
    let o = stdout(&run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "samples/lab-keys-shadow-nla-wrong.pcap",
    ]));
    assert!(!o.contains("decrypted"), "{o}");
}

/// A Decryption Secrets Block after the packets it opens: a mapped file
/// finds it first; a stream (standard input) reads it too late and says so.
#[test]
fn secrets_after_the_packets() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let path = "samples/win-keys-dsb-last.pcapng";
    let mapped = stdout(&run(&["analyze", "-q", "--format", "csv", path]));
    assert!(mapped.contains("nla.error.logon_failure"), "{mapped}");
    assert!(!mapped.contains("tls.keys_unused"), "{mapped}");
    let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut c = Command::new(bin())
        .args(["analyze", "-q", "--format", "csv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&data).unwrap();
    let streamed = stdout(&c.wait_with_output().unwrap());
    assert!(!streamed.contains("nla.error"), "{streamed}");
    assert!(streamed.contains("nla.stalled"), "{streamed}");
    assert!(
        streamed.contains("arrived after frame 24, once the 1 session it names had begun"),
        "{streamed}"
    );
}

/// Records past the stream depth are still opened when small (Set Error
/// Info, the ultimatum), their sequence numbers kept by the record chain:
/// the end of a long session is read.
#[test]
fn the_end_of_a_session_is_read_past_the_depth() {
    let o = stdout(&run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        "--depth",
        "4096",
        "--keylog",
        "samples/win-keys.keys",
        "samples/win-keys-logoff.pcap",
    ]));
    assert!(
        o.contains("Set Error Info 0xC ERRINFO_LOGOFF_BY_USER"),
        "{o}"
    );
    assert!(o.contains("gives reason 3 (rn-user-requested)"), "{o}");
}

/// A flood of Decryption Secrets Blocks is bounded and one line of the
/// report, mapped or streamed: the blocks are one source, those over the
/// bound a `capture.bound`.
#[test]
fn a_flood_of_secrets_blocks_is_bounded() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut w = rdpsift::synth::Writer::new(Vec::new(), rdpsift::synth::Format::PcapNg).unwrap();
    for _ in 0..3000 {
        w.secrets(b"junk").unwrap();
    }
    let data = w.into_inner();
    let path =
        std::env::temp_dir().join(format!("rdpsift-dsb-flood-{}.pcapng", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let mapped = stdout(&run(&[
        "analyze",
        "-q",
        "--format",
        "csv",
        path.to_str().unwrap(),
    ]));
    let mut c = Command::new(bin())
        .args(["analyze", "-q", "--format", "csv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&data).unwrap();
    let streamed = stdout(&c.wait_with_output().unwrap());
    for o in [&mapped, &streamed] {
        assert_eq!(o.matches("tls.keys_unused").count(), 1, "{o}");
        assert!(o.contains("1024 lines skipped"), "{o}");
        assert!(o.contains("capture.bound"), "{o}");
    }
    std::fs::remove_file(&path).ok();
}

/// Every sample's verdict is the scenario it was made for.
#[test]
fn each_scenario_gets_its_verdict() {
    let cases = [
        ("healthy.pcap", "connected", ""),
        ("syn-unanswered.pcap", "failed", "tcp.syn_unanswered"),
        ("refused.pcap", "failed", "tcp.refused"),
        ("icmp-unreachable.pcap", "failed", "tcp.icmp_unreachable"),
        ("reset-by-server.pcap", "failed", "tcp.reset_by_server"),
        ("reset-by-client.pcapng", "failed", "tcp.reset_by_client"),
        ("closed-by-server.pcap", "failed", "tcp.closed_by_server"),
        ("stalled.pcap", "failed", "tcp.stalled"),
        ("retransmissions.pcap", "connected", "tcp.retransmissions"),
        ("zero-window.pcap", "connected", "tcp.zero_window"),
        ("fragmented-udp.pcap", "connected", "path.fragmented"),
        ("capture-loss.pcap", "connected", ""),
        ("socks5-rdp.pcap", "failed", "x224.no_confirm"),
        (
            "neg-ssl-required.pcap",
            "failed",
            "x224.neg_failure.ssl_required",
        ),
        (
            "neg-ssl-not-allowed.pcap",
            "failed",
            "x224.neg_failure.ssl_not_allowed",
        ),
        (
            "neg-ssl-cert-not-on-server.pcap",
            "failed",
            "x224.neg_failure.ssl_cert_not_on_server",
        ),
        (
            "neg-inconsistent-flags.pcap",
            "failed",
            "x224.neg_failure.inconsistent_flags",
        ),
        (
            "neg-hybrid-required.pcap",
            "failed",
            "x224.neg_failure.hybrid_required",
        ),
        (
            "neg-ssl-with-user-auth-required.pcap",
            "failed",
            "x224.neg_failure.ssl_with_user_auth_required",
        ),
        ("fallback.pcap", "connected", "rdp.fallback"),
        ("tls-alert.pcap", "failed", "tls.alert.handshake_failure"),
        ("cert-expired.pcap", "failed", "tls.cert.expired"),
        ("nla-stalled.pcap", "failed", "nla.stalled"),
        ("server-denied.pcap", "failed", "rdp.server_denied"),
        ("nonstandard-port.pcap", "connected", ""),
        (
            "unrequested-protocol.pcap",
            "failed",
            "x224.unrequested_protocol",
        ),
        ("client-aborted.pcap", "failed", "x224.client_aborted"),
        ("no-confirm.pcap", "failed", "x224.no_confirm"),
        ("legacy-rejected.pcap", "failed", "x224.legacy_rejected"),
        ("middlebox-reset.pcap", "failed", "tcp.reset_by_middlebox"),
        ("udp-blocked.pcap", "connected", "udp.syn_unanswered"),
        ("blackhole.pcap", "failed", "path.blackhole"),
        (
            "icmp-frag-needed.pcap",
            "connected",
            "path.icmp_frag_needed",
        ),
        ("offload.pcap", "connected", ""),
        // Windows-shaped sessions (PROTOCOLS.md §8) and the Kerberos
        // around them (src/bin/rdpsift-synth.rs, windows_samples).
        ("win-session-ntlm.pcap", "connected", ""),
        ("win-session-kerberos.pcap", "connected", ""),
        ("win-session-denied.pcap", "failed", "rdp.server_denied"),
        ("win-session-cut.pcap", "failed", "tcp.reset_by_server"),
        ("win-session-idle-timeout.pcap", "connected", ""),
        ("win-ntlm-refused.pcap", "failed", "nla.stalled"),
        (
            "kerberos-preauth-failed.pcap",
            "failed",
            "kerberos.preauth_failed",
        ),
        (
            "restricted-admin.pcap",
            "failed",
            "x224.restricted_admin_unsupported",
        ),
        ("plain-tls-port.pcap", "connected", "tls.cert.name_mismatch"),
        // Real xrdp + xfreerdp across network namespaces (scripts/lab).
        ("lab-blackhole.pcap", "failed", "path.blackhole"),
        ("lab-blackhole-client.pcap", "failed", "path.blackhole"),
        (
            "lab-icmp-frag-needed.pcap",
            "connected",
            "path.icmp_frag_needed",
        ),
        ("lab-udp-blocked.pcap", "connected", "udp.syn_unanswered"),
        (
            "lab-security-mismatch.pcap",
            "failed",
            "x224.unrequested_protocol",
        ),
        // Real session endings, NLA and MIT Kerberos (scripts/lab/session-lab.sh).
        ("lab-xrdp-fin.pcap", "connected", ""),
        ("lab-xrdp-abortive.pcap", "connected", ""),
        ("lab-xrdp-killed.pcap", "failed", "tcp.reset_by_server"),
        ("lab-shadow-nla.pcap", "connected", ""),
        ("lab-shadow-nla-wrong.pcap", "failed", "nla.stalled"),
        (
            "lab-krb-wrong-password.pcap",
            "failed",
            "kerberos.preauth_failed",
        ),
        ("lab-krb-tcp.pcap", "failed", "kerberos.preauth_failed"),
        ("lab-krb-errors.pcap", "connected", ""),
        // Inside TLS with keys: real xfreerdp / FreeRDP / xrdp sessions
        // (keylog.c), and Windows-shaped sessions sealed by the generator.
        ("lab-keys-shadow-nla.pcap", "connected", ""),
        ("lab-keys-shadow-nla-wrong.pcap", "failed", "nla.stalled"),
        ("lab-keys-xrdp-fin.pcap", "connected", ""),
        (
            "win-keys-wrong-password.pcap",
            "failed",
            "nla.error.logon_failure",
        ),
        (
            "win-keys-credssp-version.pcap",
            "failed",
            "nla.credssp_version_mismatch",
        ),
        ("win-keys-access-denied.pcap", "failed", "nla.access_denied"),
        ("win-keys-denied.pcap", "failed", "rdp.server_denied"),
        (
            "win-keys-no-license-server.pcap",
            "failed",
            "rdp.license.no_license_server",
        ),
        (
            "win-keys-logon-error.pcap",
            "failed",
            "rdp.logon_error.no_permission",
        ),
        ("win-keys-logoff.pcap", "connected", ""),
        (
            "win-keys-taken-over.pcap",
            "connected",
            "rdp.error_info.disconnected_by_otherconnection",
        ),
        (
            "std-security-none-denied.pcap",
            "failed",
            "rdp.server_denied",
        ),
        // Through an RD Gateway: real xfreerdp, scripts/lab/rdg.py, real
        // proxies and kinit (scripts/lab/gateway-lab.sh); wst synthetic.
        ("lab-gw-ws-ok.pcapng", "connected", ""),
        ("lab-gw-no-ws.pcapng", "connected", ""),
        ("lab-gw-http-ok-nokeys.pcap", "connected", ""),
        (
            "lab-gw-ntlm-reject.pcapng",
            "failed",
            "gateway.http.auth_failed",
        ),
        ("lab-gw-404.pcapng", "failed", "gateway.http.status.404"),
        ("lab-gw-rpc-fault.pcapng", "failed", "gateway.rpc.fault"),
        (
            "lab-gw-rpc-bind-nak.pcapng",
            "failed",
            "gateway.rpc.bind_refused",
        ),
        (
            "lab-gw-rpc-no-a3.pcapng",
            "failed",
            "gateway.rpc.no_conn_a3",
        ),
        (
            "lab-gw-rap-denied.pcapng",
            "failed",
            "gateway.tsg.channel_failed",
        ),
        (
            "lab-gw-capability.pcapng",
            "failed",
            "gateway.tsg.tunnel_failed",
        ),
        (
            "lab-gw-nginx-buffered.pcapng",
            "failed",
            "gateway.http.no_response",
        ),
        (
            "lab-gw-nginx-default-upstream.pcap",
            "failed",
            "gateway.http.auth_loop",
        ),
        (
            "lab-gw-nginx-chunked.pcapng",
            "connected",
            "gateway.http.proxy_interference",
        ),
        (
            "lab-gw-haproxy-idle.pcapng",
            "connected",
            "gateway.idle_cut",
        ),
        (
            "lab-gw-haproxy-ws.pcapng",
            "failed",
            "gateway.ws.upgrade_refused",
        ),
        ("lab-gw-squid-407.pcap", "failed", "gateway.http.proxy_auth"),
        (
            "lab-gw-kdcproxy-wrong.pcapng",
            "failed",
            "gateway.kdcproxy.failed",
        ),
        (
            "lab-gw-udp-dropped.pcapng",
            "connected",
            "udp.syn_unanswered",
        ),
        // The same capture without its secrets: the 443 flow is a leg
        // because UDP 3391 goes to the same server.
        (
            "lab-gw-udp-dropped-nokeys.pcap",
            "connected",
            "udp.syn_unanswered",
        ),
        ("gateway-wst.pcap", "connected", ""),
    ];
    for (name, outcome, verdict) in cases {
        let path = format!("samples/{name}");
        let mut args = vec![
            "analyze",
            "-q",
            "--format",
            "csv",
            "--attempts-csv",
            "/dev/stdout",
            "--csv",
            "/dev/null",
            &path,
        ];
        let extra = sample_args(name);
        args.extend(extra.iter().map(String::as_str));
        let o = run(&args);
        let text = stdout(&o);
        let rows = csv_rows(text.split("capture,attempt,code").next().unwrap());
        assert_eq!(rows.len(), 2, "{name}: one attempt expected:\n{text}");
        assert_eq!(rows[1][9], outcome, "{name}");
        assert_eq!(rows[1][11], verdict, "{name}");
    }
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let one = run(&["analyze", "-q", "-j", "1", "--format", "json", "samples"]);
    let four = run(&["analyze", "-q", "-j", "4", "--format", "json", "samples"]);
    assert!(!one.stdout.is_empty());
    assert_eq!(one.stdout, four.stdout);
}

#[test]
fn exit_codes() {
    assert_eq!(
        run(&["analyze", "-q", "samples/healthy.pcap"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["analyze", "-q", "samples/refused.pcap"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "samples/refused.pcap"
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        run(&[
            "analyze",
            "-q",
            "--fail-on",
            "info",
            "samples/truncated.pcap"
        ])
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        run(&[
            "analyze",
            "-q",
            "--fail-on",
            "critical",
            "samples/refused.pcap"
        ])
        .status
        .code(),
        Some(0)
    );
    // Not a capture: named on stderr, exit 2, the other file still reported.
    let o = run(&[
        "analyze",
        "--format",
        "csv",
        "Cargo.toml",
        "samples/refused.pcap",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Cargo.toml") && err.contains("not a pcap"),
        "{err}"
    );
    assert!(stdout(&o).contains("tcp.refused"));
    // A truncated capture is not an input error.
    assert_eq!(
        run(&["analyze", "-q", "samples/truncated.pcap"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn directory_walk_takes_captures_by_content_and_skips_the_rest() {
    let dir = std::env::temp_dir().join(format!("rdpsift-walk-{}", std::process::id()));
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    std::fs::copy(src.join("refused.pcap"), sub.join("no-extension")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a capture").unwrap();
    let raw = std::fs::read(src.join("syn-unanswered.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    std::fs::write(dir.join("x.pcap.gz"), gz.finish().unwrap()).unwrap();
    let o = run(&["analyze", "--format", "csv", dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(
        out.contains("tcp.refused") && out.contains("tcp.syn_unanswered"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 file skipped"));
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn standard_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/refused.pcap")).unwrap();
    let mut c = Command::new(bin())
        .args(["analyze", "-q", "--format", "csv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&data).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(stdout(&o).contains("-,#1,tcp.refused"));
}

/// The committed samples are exactly what the generator writes.
#[test]
fn samples_are_reproducible() {
    let dir = std::env::temp_dir().join(format!("rdpsift-regen-{}", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rdpsift-synth"))
        .args(["samples", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    // lab-* captures come from real software (scripts/lab), not the generator.
    let keys = ["win-keys.keys".to_string()];
    for name in samples()
        .into_iter()
        .filter(|n| !n.starts_with("lab-"))
        .chain(keys)
    {
        let a = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("samples")
                .join(&name),
        )
        .unwrap();
        let b = std::fs::read(dir.join(&name)).unwrap();
        assert!(
            a == b,
            "samples/{name} differs from what scripts/gen-samples writes"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_terminal_report_puts_the_verdict_and_its_words_first() {
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "table",
        "samples/server-denied.pcap",
    ]);
    let t = stdout(&o);
    let at = |s: &str| t.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{t}"));
    // The attempt, its dialog code, the verdict with its cause, remedy,
    // confidence and filter, in that order; the info finding folded.
    let order = [
        at("#1 FAILED in rdp  198.18.0.10:50112 → 198.19.0.20:3389"),
        at("The client shows error code 0x904/0x7 (2308/7; documented)"),
        at("✗ rdp.server_denied  critical  frames 14-60  (the verdict)"),
        at("Cause: "),
        at("Fix:   "),
        at("Confidence: medium"),
        at("\nip.addr==198.18.0.10 && ip.addr==198.19.0.20 && tcp.port==50112"),
        at("(1 info finding: -v shows it)"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{t}");
    assert!(!t.contains("tls.cert.self_signed"), "{t}");
    let v = stdout(&run(&[
        "analyze",
        "-q",
        "-v",
        "--format",
        "table",
        "samples/server-denied.pcap",
    ]));
    assert!(v.contains("· tls.cert.self_signed  info  frame 10"), "{v}");
}
