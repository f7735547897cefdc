//! run: a set of inputs through the pipeline. Finds the captures (files,
//! directories walked in order, standard input), runs them on a pool of
//! worker threads (files in parallel, and each file's packets over the same
//! workers), and keeps going past a file that cannot be read: its error is
//! part of its report. `main.rs`/`cli.rs` only turn flags into a run and a
//! run into output and an exit code.

mod file;
mod stream;

pub use file::{analyze, analyze_rows, Progress, Rows};

use crate::capture::{self, Source};
use crate::config::Config;
use crate::report::model::CaptureReport;
use rayon::prelude::*;
use std::io;
use std::path::{Path, PathBuf};

/// A capture to analyze: how the report names it and where to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub path: PathBuf,
}

/// What input discovery found.
#[derive(Debug, Default)]
pub struct Inputs {
    pub inputs: Vec<Input>,
    /// Files in directories that are not captures (by extension and content).
    pub skipped: usize,
    /// Paths named by the user that could not be read.
    pub errors: Vec<(PathBuf, io::Error)>,
}

impl Inputs {
    /// Bytes to read (files only; standard input counts 0).
    pub fn total_bytes(&self) -> u64 {
        self.inputs
            .iter()
            .filter_map(|i| std::fs::metadata(&i.path).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Finds the captures the user named. Files named must be captures;
/// directories are walked (sorted, recursively): files with a capture
/// extension must be captures, others are taken when their first bytes say
/// so and skipped otherwise. `-` is standard input, at most once.
pub fn discover(paths: &[PathBuf]) -> Result<Inputs, String> {
    let mut found = Inputs::default();
    for p in paths {
        if let Err(e) = walk(p, &mut found.inputs, &mut found.skipped) {
            found.errors.push((p.clone(), e));
        }
    }
    if found
        .inputs
        .iter()
        .filter(|i| i.path.as_os_str() == "-")
        .count()
        > 1
    {
        return Err("standard input (-) can be named only once".into());
    }
    Ok(found)
}

fn walk(p: &Path, out: &mut Vec<Input>, skipped: &mut usize) -> io::Result<()> {
    if p.as_os_str() == "-" {
        out.push(Input {
            name: "-".into(),
            path: p.to_path_buf(),
        });
        return Ok(());
    }
    let meta = std::fs::metadata(p)?;
    if !meta.is_dir() {
        out.push(Input {
            name: p.display().to_string(),
            path: p.to_path_buf(),
        });
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        let Ok(m) = std::fs::metadata(&e) else {
            *skipped += 1;
            continue;
        };
        if m.is_dir() {
            walk(&e, out, skipped)?;
            continue;
        }
        let name = e
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if capture::has_capture_extension(&name)
            || capture::source::sniff_capture(&e).unwrap_or(false)
        {
            out.push(Input {
                name: e.display().to_string(),
                path: e,
            });
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// Analyzes every input on a pool of `threads` workers; reports come back
/// in input order. A file that cannot be opened gets a report with its
/// error; `progress` is told how many bytes each step consumed.
///
/// The reports go to `sink` in input order, a few at a time (as many files
/// as workers are analyzed at once), so that a run of many files holds only
/// those: its memory does not grow with the number of files. The first file
/// of each few hands its rows to `sink` as they are judged (reports marked
/// `partial`, before its own), so a file of a million attempts is not held
/// whole either; the files behind it wait for their turn.
pub fn run_each<E: Send>(
    inputs: &[Input],
    cfg: &Config,
    keys: Option<&std::sync::Arc<crate::proto::keylog::KeyLog>>,
    threads: usize,
    progress: Progress<'_>,
    mut sink: impl FnMut(Vec<CaptureReport>) -> Result<(), E>,
) -> Result<Result<(), E>, rayon::ThreadPoolBuildError> {
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    for chunk in inputs.chunks(threads) {
        // A few rows in flight at most: the judging waits for the writer.
        let (tx, rx) = std::sync::mpsc::sync_channel::<CaptureReport>(2);
        let mut failed: Option<E> = None;
        let reports: Vec<CaptureReport> = std::thread::scope(|s| {
            let work = s.spawn(|| {
                let emit = move |r: CaptureReport| {
                    // The receiver is there until the work ends.
                    let _ = tx.send(r);
                };
                let emit: &(dyn Fn(CaptureReport) + Sync) = &emit;
                pool.install(|| {
                    chunk
                        .par_iter()
                        .enumerate()
                        .map(|(k, i)| match Source::open(&i.path) {
                            Ok(src) => analyze_rows(
                                &i.name,
                                src,
                                cfg,
                                keys,
                                threads,
                                progress,
                                (k == 0).then_some(emit),
                            ),
                            Err(e) => CaptureReport {
                                capture: i.name.clone(),
                                error: Some(e.to_string()),
                                ..Default::default()
                            },
                        })
                        .collect()
                })
            });
            // Drained to the end even after the sink failed, so the
            // judging never waits on a full channel.
            for part in rx.iter() {
                if failed.is_none() {
                    if let Err(e) = sink(vec![part]) {
                        failed = Some(e);
                    }
                }
            }
            match work.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        });
        if let Some(e) = failed {
            return Ok(Err(e));
        }
        if let Err(e) = sink(reports) {
            return Ok(Err(e));
        }
    }
    if inputs.is_empty() {
        return Ok(sink(Vec::new()));
    }
    Ok(Ok(()))
}

/// The default number of workers: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
