//! Every finding's Wireshark filter, run through tshark on its capture,
//! selects the frames the finding cites. Skipped when tshark is absent.

mod common;
use common::*;
use std::process::Command;

#[test]
fn wireshark_filters_select_the_cited_frames() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIPPED: tshark is not installed");
        return;
    }
    let o = run(&["analyze", "-q", "--format", "csv", "samples"]);
    let mut rows = csv_rows(&stdout(&o));
    assert!(rows.len() > 10);
    // Samples analyzed with extra arguments (tests/expected/NAME.args).
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/samples")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let extra = sample_args(&name);
        if extra.is_empty() {
            continue;
        }
        let path = format!("samples/{name}");
        let mut args = vec!["analyze", "-q", "--format", "csv", &path];
        args.extend(extra.iter().map(String::as_str));
        rows.extend(csv_rows(&stdout(&run(&args))).into_iter().skip(1));
    }
    let mut failures = vec![];
    for r in &rows[1..] {
        let (capture, code, first, last, filter) = (&r[0], &r[2], &r[7], &r[8], &r[13]);
        if filter.is_empty() {
            continue;
        }
        let out = Command::new("tshark")
            .args([
                "-n",
                "-2",
                "-r",
                capture,
                "-Y",
                filter,
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("tshark");
        let frames: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        // tshark exits non-zero on a truncated file after reading what is there.
        let err = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.success() || err.contains("cut short");
        if !ok || !frames.contains(first) || !frames.contains(last) {
            failures.push(format!(
                "{capture} {code}: filter `{filter}` selected {frames:?}, cites {first}-{last}; {}",
                err
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
