#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rdpsift")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run rdpsift")
}

/// `../shared/captures`, or `None` (and a message) when it is not there.
pub fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/captures is absent");
        None
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

/// Parses CSV text into rows of fields (header included).
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv").iter().map(str::to_string).collect())
        .collect()
}

/// Extra arguments a sample is analyzed with (tests/expected/NAME.args,
/// whitespace-separated), e.g. `--target NAME` for the DNS samples.
pub fn sample_args(name: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/expected/{name}.args"));
    std::fs::read_to_string(p)
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Runs tests that read ../shared/captures (libtest-mimic): each gets the
/// captures' root; when ../shared is absent every one is reported as
/// ignored ("skipped"), with a message, instead of passing silently.
/// `shared_tests![a, b]`: the functions, each named by its own name.
#[macro_export]
macro_rules! shared_tests {
    ($($f:ident),* $(,)?) => {
        &[$((stringify!($f), $f as fn(&std::path::Path))),*]
    };
}

/// A named test that reads the shared captures' root.
pub type SharedTest = (&'static str, fn(&Path));

pub fn harness(tests: &[SharedTest]) -> std::process::ExitCode {
    use libtest_mimic::{Arguments, Failed, Trial};
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let present = root.is_dir();
    if !present {
        eprintln!(
            "SKIPPED: {} is absent; the {} tests that read it are reported as ignored",
            root.display(),
            tests.len()
        );
    }
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            let root = root.clone();
            Trial::test(name, move || {
                std::panic::catch_unwind(|| f(&root)).map_err(|e| {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into());
                    Failed::from(msg)
                })
            })
            .with_ignored_flag(!present)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Every output of one run: stdout, stderr, the exit code and the bytes
/// of each file in `files` (report files the arguments name).
pub fn outputs(args: &[&str], files: &[String]) -> Vec<(String, Vec<u8>)> {
    let o = run(args);
    let mut v = vec![
        ("stdout".to_string(), o.stdout),
        ("stderr".to_string(), o.stderr),
        (
            "exit".to_string(),
            format!("{:?}", o.status.code()).into_bytes(),
        ),
    ];
    for p in files {
        v.push((p.clone(), std::fs::read(p).unwrap()));
    }
    v
}
