//! A file's attempts are decided while it is read and their rows written
//! as they are judged (a chunk at a time, the first file of each group of
//! files in flight), not held to the end: the output must be byte for byte
//! what holding them gives, in every format and for any thread count.

mod common;
use std::path::Path;

/// Every output of one run over `input`: stdout in `format`, the four
/// report files, standard error's summary line and the exit code.
fn outputs(
    input: &str,
    dir: &Path,
    chunk: &str,
    checkpoint: &str,
    j: &str,
    format: &str,
) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let file = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (fc, ac, fj, aj) = (file("f.csv"), file("a.csv"), file("f.json"), file("a.json"));
    common::outputs(
        &[
            "analyze",
            input,
            "--attempt-chunk",
            chunk,
            "--checkpoint-frames",
            checkpoint,
            "-j",
            j,
            "--format",
            format,
            "--csv",
            &fc,
            "--attempts-csv",
            &ac,
            "--json",
            &fj,
            "--attempts-json",
            &aj,
        ],
        &[fc.clone(), ac.clone(), fj.clone(), aj.clone()],
    )
}

/// `input` analyzed with rows written one attempt at a time, attempts
/// decided every 8 frames as the file is read, and held whole (decided
/// once the file is read, as small files are by default): the same bytes
/// everywhere, in every format, for -j 1, 2 and 3.
fn same_either_way(input: &str, tag: &str) {
    let base = std::env::temp_dir().join(format!("rdpsift-rows-{tag}-{}", std::process::id()));
    for format in ["csv", "json", "table"] {
        for j in ["1", "2", "3"] {
            let whole = outputs(input, &base.join("whole"), "100000", "0", j, format);
            let one = outputs(input, &base.join("one"), "1", "8", j, format);
            assert!(whole[0].1.len() > 1000, "{format}: {input} says something");
            for (w, o) in whole.iter().zip(&one) {
                assert!(
                    w.1 == o.1,
                    "{input}, {format} -j {j}: {} differs with attempts decided as the file is read",
                    w.0
                );
            }
        }
    }
    std::fs::remove_dir_all(base).ok();
}

#[test]
fn rows_written_as_judged_are_the_rows_held_to_the_end() {
    same_either_way("samples", "samples");
}

#[test]
fn rows_written_as_judged_on_the_shared_captures() {
    let Some(dir) = common::shared() else {
        return; // said by common::shared (SKIPPED)
    };
    same_either_way(dir.to_str().unwrap(), "shared");
}
