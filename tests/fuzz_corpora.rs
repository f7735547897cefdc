//! Replays the committed fuzz corpora (fuzz/corpus/TARGET) and any crash
//! inputs kept as regressions (fuzz/regressions/TARGET) through the same
//! entry points the cargo-fuzz targets call: on stable, in every test run.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let d = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        // The committed seeds (a running fuzzer adds and removes others).
        let mut files: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                dir == "regressions"
                    || p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            })
            .collect();
        files.sort();
        for p in files {
            let data = std::fs::read(&p).unwrap();
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn x224_corpus() {
    replay("x224", rdpsift::fuzzing::x224);
}

#[test]
fn mcs_corpus() {
    replay("mcs", rdpsift::fuzzing::mcs);
}

#[test]
fn cert_corpus() {
    replay("cert", rdpsift::fuzzing::cert);
}

#[test]
fn app_corpus() {
    replay("app", rdpsift::fuzzing::app);
}

#[test]
fn capture_corpus() {
    replay("capture", rdpsift::fuzzing::capture);
}

#[test]
fn rdpeudp_corpus() {
    replay("rdpeudp", rdpsift::fuzzing::rdpeudp);
}

#[test]
fn packet_corpus() {
    replay("packet", rdpsift::fuzzing::packet);
}

#[test]
fn krb_corpus() {
    replay("krb", rdpsift::fuzzing::krb);
}

#[test]
fn dns_corpus() {
    replay("dns", rdpsift::fuzzing::dns);
}

#[test]
fn keylog_corpus() {
    replay("keylog", rdpsift::fuzzing::keylog);
}

#[test]
fn decrypt_corpus() {
    replay("decrypt", rdpsift::fuzzing::decrypt);
}

#[test]
fn credssp_corpus() {
    replay("credssp", rdpsift::fuzzing::credssp);
}

#[test]
fn rdp_corpus() {
    replay("rdp", rdpsift::fuzzing::rdp);
}

#[test]
fn inside_corpus() {
    replay("inside", rdpsift::fuzzing::inside);
}

#[test]
fn tsgu_corpus() {
    replay("tsgu", rdpsift::fuzzing::tsgu);
}

#[test]
fn rts_corpus() {
    replay("rts", rdpsift::fuzzing::rts);
}

#[test]
fn websocket_corpus() {
    replay("websocket", rdpsift::fuzzing::websocket);
}

#[test]
fn http_corpus() {
    replay("http", rdpsift::fuzzing::http);
}

#[test]
fn gateway_corpus() {
    replay("gateway", rdpsift::fuzzing::gateway);
}
