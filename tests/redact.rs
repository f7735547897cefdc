//! `--redact` on the samples: no address, user or host name of the plain
//! run is left in any output, each stand-in is the same wherever its value
//! was, and what is not personal (codes, frames, outcomes) is unchanged.

mod common;
use common::{run, sample_args, stdout};
use serde_json::Value;

fn records(redact: bool) -> Vec<Value> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("samples").unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let mut args: Vec<String> = ["analyze", "-q", "--format", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(p.to_str().unwrap().into());
        args.extend(sample_args(&name));
        if redact {
            args.push("--redact".into());
        }
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        all.extend(
            stdout(&out)
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    all
}

#[test]
fn nothing_personal_is_left_and_the_rest_is_unchanged() {
    let plain = records(false);
    let red = records(true);
    assert_eq!(plain.len(), red.len());
    let text = serde_json::to_string(&red).unwrap();
    let mut secrets = std::collections::BTreeSet::new();
    for p in &plain {
        for k in ["client", "server", "gateway"] {
            if let Some(v) = p[k].as_str().filter(|v| !v.is_empty()) {
                // The address without its port.
                let host = v.rsplit_once(':').map_or(v, |h| h.0);
                secrets.insert(host.trim_matches(['[', ']']).to_string());
            }
        }
        for k in ["target", "user", "client_name"] {
            if let Some(v) = p[k].as_str().filter(|v| v.len() > 3) {
                secrets.insert(v.to_string());
            }
        }
    }
    assert!(secrets.len() > 20, "{secrets:?}");
    for s in &secrets {
        // The capture names are the user's own paths, kept: look past them.
        let hits = text.matches(s.as_str()).count();
        let in_names = red
            .iter()
            .filter_map(|r| r["capture"].as_str())
            .map(|c| c.matches(s.as_str()).count())
            .sum::<usize>();
        assert_eq!(hits, in_names, "{s:?} is left in the redacted report");
    }
    for (p, r) in plain.iter().zip(&red) {
        for k in [
            "type",
            "capture",
            "attempt",
            "code",
            "severity",
            "first_frame",
            "outcome",
            "verdict",
            "client_error",
        ] {
            assert_eq!(p.get(k), r.get(k), "{k}");
        }
    }
    // One stand-in per value: the attempt's server is the server of its
    // findings, redacted alike.
    let mut server_of = std::collections::HashMap::new();
    for r in &red {
        if r["type"] == "attempt" {
            server_of.insert(
                (
                    r["capture"].as_str().unwrap().to_string(),
                    r["attempt"].as_str().unwrap().to_string(),
                ),
                r["server"].as_str().unwrap().to_string(),
            );
        }
    }
    let mut checked = 0;
    for (p, r) in plain.iter().zip(&red) {
        if r["type"] != "finding" {
            continue;
        }
        let key = (
            r["capture"].as_str().unwrap().to_string(),
            r["attempt"].as_str().unwrap().to_string(),
        );
        let pa = plain.iter().find(|x| {
            x["type"] == "attempt" && x["capture"] == p["capture"] && x["attempt"] == p["attempt"]
        });
        if let (Some(s), Some(pa)) = (server_of.get(&key), pa) {
            if pa["server"] == p["server"] {
                assert_eq!(&r["server"], s, "{r}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked}");
}
