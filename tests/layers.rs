//! The pipeline's layers stay honest: every `crate::…` and `super::…` path
//! in the code (not only `use` lines) may name only a stage that comes
//! before the file's own (docs/ARCHITECTURE.md). A planted bad reference
//! of each kind is caught (the test of the test, below).

use std::path::Path;

/// What each top-level module may refer to. `synth` and `fuzzing` are test
/// support (they drive the whole pipeline) and are not checked.
fn allowed(module: &str) -> Option<&'static [&'static str]> {
    const VOCAB: &[&str] = &["finding", "config"];
    Some(match module {
        "finding" | "config" => &[],
        "capture" => &["finding", "config"],
        "decode" => &["capture", "finding", "config"],
        // Parsers are leaves: bytes and marks in, facts out.
        "proto" => &["capture", "finding", "config"],
        "flow" => &["capture", "decode", "proto", "finding", "config"],
        "session" => &["capture", "decode", "flow", "proto", "finding", "config"],
        "detect" => &[
            "capture", "decode", "flow", "proto", "session", "finding", "config",
        ],
        "report" => &[
            "capture", "decode", "flow", "proto", "session", "detect", "finding", "config",
        ],
        "run" => &[
            "capture", "decode", "flow", "proto", "session", "detect", "report", "finding",
            "config",
        ],
        "synth" | "fuzzing" | "lib" => return None,
        _ => VOCAB,
    })
}

/// The module path of a source file: `src/detect/x224.rs` → [detect, x224],
/// `src/detect/mod.rs` → [detect], `src/lib.rs` → [].
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// Code without comments (line and block) and string literals.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\n'): skip it.
            let end = b[i + 1..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + 2 + p);
            i = end;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The top-level modules a file's paths refer to (with the text that did).
fn references(rel: &str, src: &str) -> Vec<(String, String)> {
    let me = module_path(rel);
    // Unit tests (the `#[cfg(test)]` module at the end of a file) may use
    // test support from anywhere.
    let src = src.split("\n#[cfg(test)]\nmod ").next().unwrap_or(src);
    let code = code_only(src);
    let mut refs = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !is_ident(bytes[i - 1]);
        let rest = &code[i..];
        if at_word && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            // Resolve `crate::` / `super::super::…` to a path from the root.
            let mut base: Vec<String> = Vec::new();
            let mut j = i;
            if rest.starts_with("crate::") {
                j += "crate::".len();
            } else {
                base = me.clone();
                while code[j..].starts_with("super::") {
                    base.pop();
                    j += "super::".len();
                }
            }
            // The names that follow: one identifier, or a `{a, b::c}` group.
            let mut names = Vec::new();
            if code[j..].starts_with('{') {
                let end = code[j..].find('}').map_or(code.len(), |e| j + e);
                let mut depth = 0;
                let mut start = j + 1;
                for (k, c) in code[j + 1..end].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(code[start..j + 1 + k].trim().to_string());
                            start = j + 2 + k;
                        }
                        _ => {}
                    }
                }
                names.push(code[start..end].trim().to_string());
            } else {
                let end = code[j..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(code.len(), |e| j + e);
                names.push(code[j..end].to_string());
            }
            for n in names {
                let first = n.split("::").next().unwrap_or("").trim().to_string();
                let top = match base.first() {
                    Some(b) => b.clone(),
                    None => first,
                };
                if !top.is_empty() && top != "self" {
                    refs.push((top, code[i..j.min(code.len())].to_string() + &n));
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    refs
}

/// Every reference that crosses a layer the wrong way, as `file: text`.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, src) in files {
        let me = module_path(rel);
        let Some(top) = me.first() else { continue };
        if me.last().is_some_and(|m| m == "fixture") {
            continue; // test fixtures (compiled under cfg(test) only)
        }
        let Some(ok) = allowed(top) else { continue };
        for (to, text) in references(rel, src) {
            if &to != top && !ok.contains(&to.as_str()) {
                bad.push(format!("{rel}: `{text}` ({top} must not refer to {to})"));
            }
        }
    }
    bad
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "bin") {
                continue; // binaries may use everything
            }
            sources(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn every_module_refers_only_to_earlier_stages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), root, &mut files);
    files.retain(|(rel, _)| rel != "src/main.rs" && rel != "src/cli.rs");
    assert!(files.len() > 40, "the sources were found");
    let bad = violations(&files);
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn planted_bad_references_are_caught() {
    let f = |rel: &str, src: &str| vec![(rel.to_string(), src.to_string())];
    // proto → detect, in an expression, not a `use` line.
    let v = violations(&f(
        "src/proto/x.rs",
        "fn a() { let _ = crate::detect::all_codes(); }",
    ));
    assert_eq!(v.len(), 1, "{v:?}");
    // proto → flow through `super::super::` from a nested file.
    let v = violations(&f(
        "src/proto/tls/x.rs",
        "use super::super::super::flow::Mark;",
    ));
    assert_eq!(v.len(), 1, "{v:?}");
    // session → detect inside a use group.
    let v = violations(&f(
        "src/session/x.rs",
        "use crate::{finding::Dir, detect::Draft};",
    ));
    assert_eq!(v.len(), 1, "{v:?}");
    // decode → flow; capture → decode.
    assert_eq!(
        violations(&f("src/decode/x.rs", "type T = crate::flow::Flow;")).len(),
        1
    );
    assert_eq!(
        violations(&f("src/capture/x.rs", "use crate::decode;")).len(),
        1
    );
    // detect → report printers; finding → anything.
    assert_eq!(
        violations(&f("src/detect/x.rs", "crate::report::output::table")).len(),
        1
    );
    assert_eq!(
        violations(&f("src/finding.rs", "use crate::capture::Mark;")).len(),
        1
    );
    // `super::` from a stage's mod.rs is the crate root.
    assert_eq!(
        violations(&f("src/proto/mod.rs", "use super::session;")).len(),
        1
    );
    // What is allowed stays allowed; comments and strings are not code.
    let ok = "use super::x224; use crate::{capture::Mark, finding::Dir};\n\
              // crate::detect::ending is mentioned in a comment\n\
              const S: &str = \"crate::report::x\";";
    assert!(violations(&f("src/proto/x.rs", ok)).is_empty());
    assert!(violations(&f("src/detect/x.rs", "use crate::session::moment::ending;")).is_empty());
}
