//! docs/findings.md is the authoritative list of codes: it and the code agree.

#[test]
fn findings_doc_matches_the_registry() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/findings.md")).unwrap();
    let mut reported = vec![];
    let mut all = vec![];
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`').to_string();
        all.push(code.clone());
        if cells[4] == "reported" {
            reported.push(code);
        }
    }
    let mut emitted: Vec<String> = rdpsift::detect::all_codes()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    emitted.sort();
    reported.sort();
    assert_eq!(
        reported, emitted,
        "docs/findings.md 'reported' rows vs detect::all_codes()"
    );
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a code is listed twice");
    // Every family: listed, with its `unknown` member, and every member
    // this build emits is a row (checked above as a code).
    for f in rdpsift::finding::Family::ALL {
        let prefix = f.prefix();
        assert!(
            doc.contains(&format!("- `{prefix}.*`")),
            "family {prefix}.* is not described in docs/findings.md"
        );
        let unknown = format!("{prefix}.unknown");
        assert!(all.contains(&unknown), "{unknown} is not a row");
        let members = rdpsift::detect::all_codes()
            .into_iter()
            .filter(|c| c.family() == Some(*f))
            .count();
        assert!(members > 1, "family {prefix} has no named member");
    }
}
