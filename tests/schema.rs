//! The JSON Lines records against their JSON Schema (docs/rdpsift.schema.json)
//! and docs/schema.md: every record the samples and the public captures
//! give is valid (the public captures' in tests/shared_captures.rs), every
//! field is documented, the version agrees.

mod common;
use common::{run, stdout};
use serde_json::Value;

fn schema() -> Value {
    let text = std::fs::read_to_string("docs/rdpsift.schema.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(lines: &str, v: &jsonschema::Validator) -> Vec<Value> {
    let mut records = Vec::new();
    for (n, line) in lines.lines().enumerate() {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {n}: {e}"));
        let errors: Vec<String> = v.iter_errors(&r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "line {}: {line}\n{errors:#?}", n + 1);
        records.push(r);
    }
    records
}

#[test]
fn every_record_of_the_samples_is_valid() {
    let v = jsonschema::validator_for(&schema()).unwrap();
    let dir = tempdir();
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"not a capture").unwrap();
    let junk = junk.to_str().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for view in ["all", "findings", "attempts"] {
        let out = run(&[
            "analyze", "-q", "--format", "json", "--view", view, "samples", junk,
        ]);
        let records = check(&stdout(&out), &v);
        let last = records.last().unwrap();
        assert_eq!(last["type"], "summary", "{view}");
        assert_eq!(last["errors"], 1, "{view}");
        for r in &records {
            kinds.insert(r["type"].as_str().unwrap().to_string());
        }
        // The error record names the input that could not be read.
        assert!(records
            .iter()
            .any(|r| r["type"] == "error" && r["capture"] == junk));
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["attempt", "error", "finding", "summary"]
    );
}

#[test]
fn the_all_view_puts_each_attempts_findings_after_it() {
    let out = run(&[
        "analyze",
        "-q",
        "--format",
        "json",
        "samples/server-denied.pcap",
        "samples/truncated.pcap",
    ]);
    let records: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut current = (String::new(), String::new());
    for r in &records {
        match r["type"].as_str().unwrap() {
            "attempt" => {
                current = (
                    r["capture"].as_str().unwrap().into(),
                    r["attempt"].as_str().unwrap().into(),
                )
            }
            "finding" => {
                let a = r["attempt"].as_str().unwrap();
                assert_eq!(r["capture"].as_str().unwrap(), current.0);
                assert!(a.is_empty() || a == current.1, "{r}");
            }
            _ => {}
        }
    }
    assert_eq!(records.last().unwrap()["type"], "summary");
}

#[test]
fn the_documentation_names_every_field_and_the_version() {
    let s = schema();
    let doc = std::fs::read_to_string("docs/schema.md").unwrap();
    let defs = s["$defs"].as_object().unwrap();
    for kind in ["attempt", "finding", "error", "summary"] {
        for field in defs[kind]["properties"].as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("`{field}`")),
                "docs/schema.md does not name {kind}.{field}"
            );
        }
    }
    let version = s["$defs"]["summary"]["properties"]["schema"]["const"]
        .as_u64()
        .unwrap();
    assert!(doc.starts_with(&format!("# Report schema, version {version}\n")));
    // The program writes the version the schema documents.
    let out = run(&["analyze", "-q", "--format", "json", "samples/healthy.pcap"]);
    let last: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["schema"].as_u64(), Some(version));
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rdpsift-schema-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
