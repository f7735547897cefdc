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
    /// An archive of captures (read member by member), not a capture.
    pub archive: Option<capture::archive::Kind>,
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

/// Finds the captures the user named. Files named must be captures (a
/// path named is read as a stream whatever it is: a pipe, a FIFO,
/// `/dev/stdin`); directories are walked (sorted by name, recursively,
/// hidden files included, symbolic links followed without looping): files
/// with a capture extension must be captures, others are taken when their
/// first bytes say so and skipped otherwise, and what is not a regular
/// file (a FIFO, a socket, a device) is skipped unread. A file reached
/// twice (a link, a second path) is read once. `-` is standard input, at
/// most once.
pub fn discover(paths: &[PathBuf]) -> Result<Inputs, String> {
    let mut found = Inputs::default();
    let mut seen = Seen::default();
    for p in paths {
        if let Err(e) = walk(p, &mut found, &mut seen) {
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

/// Files already found, by identity: device and inode on Unix, the
/// canonical path elsewhere (links resolved; hard links there count twice).
#[derive(Default)]
struct Seen(std::collections::HashSet<FileId>);

#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

impl Seen {
    /// Whether this file is new (and now remembered).
    fn first(&mut self, path: &Path, meta: &std::fs::Metadata) -> bool {
        self.0.insert(file_id(path, meta))
    }
}

/// Device and inode. On Windows the canonical path stands for them
/// ([`file_id`] below): the file index is not in stable Rust there.
#[cfg(unix)]
#[allow(clippy::disallowed_methods)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> FileId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn walk(p: &Path, found: &mut Inputs, seen: &mut Seen) -> io::Result<()> {
    if p.as_os_str() == "-" {
        found.inputs.push(Input {
            name: "-".into(),
            path: p.to_path_buf(),
            archive: None,
        });
        return Ok(());
    }
    let meta = std::fs::metadata(p)?;
    if !meta.is_dir() {
        if seen.first(p, &meta) {
            // Only a regular file is sniffed for an archive: a pipe named
            // here is read once, as a capture.
            let archive = if meta.is_file() {
                capture::archive::kind_of(p)?
            } else {
                None
            };
            found.inputs.push(Input {
                name: p.display().to_string(),
                path: p.to_path_buf(),
                archive,
            });
        }
        return Ok(());
    }
    // Directories are walked once each too: links between sibling trees
    // would otherwise multiply the paths to every file below them.
    let mut dirs = Seen::default();
    dirs.first(p, &meta);
    let mut entries = walkdir::WalkDir::new(p)
        .follow_links(true)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(e) = entries.next() {
        // A link that loops back to a directory above it, or an entry
        // that cannot be read: skipped.
        let Ok(e) = e else {
            found.skipped += 1;
            continue;
        };
        let Ok(m) = e.metadata() else {
            found.skipped += 1;
            continue;
        };
        if m.is_dir() {
            if !dirs.first(e.path(), &m) {
                entries.skip_current_dir();
            }
            continue;
        }
        if !m.is_file() {
            found.skipped += 1;
            continue;
        }
        if !seen.first(e.path(), &m) {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        let archive = if capture::has_capture_extension(&name) {
            None
        } else {
            capture::archive::kind_of(e.path()).ok().flatten()
        };
        if archive.is_some()
            || capture::has_capture_extension(&name)
            || capture::source::sniff_capture(e.path()).unwrap_or(false)
        {
            found.inputs.push(Input {
                name: e.path().display().to_string(),
                path: e.path().to_path_buf(),
                archive,
            });
        } else {
            found.skipped += 1;
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
    let mut at = 0;
    while at < inputs.len() {
        if inputs[at].archive.is_some() {
            let i = &inputs[at];
            at += 1;
            if let Err(e) = archive(i, cfg, keys, threads, &pool, progress, &mut sink) {
                return Ok(Err(e));
            }
            continue;
        }
        // Files side by side, up to one per worker, until an archive.
        let n = inputs[at..]
            .iter()
            .take(threads)
            .take_while(|i| i.archive.is_none())
            .count();
        let chunk = &inputs[at..at + n];
        at += n;
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

/// An archive's captures, one member after the other as the archive is
/// read (each analyzed over all the workers, its rows handed out as they
/// are judged), named `archive.tgz:dir/member.pcap`. Members that are not
/// captures are counted in a last report (partial, rows none); an archive
/// without captures, or one that cannot be read to its end, gets an error
/// report of its own.
fn archive<E>(
    input: &Input,
    cfg: &Config,
    keys: Option<&std::sync::Arc<crate::proto::keylog::KeyLog>>,
    threads: usize,
    pool: &rayon::ThreadPool,
    progress: Progress<'_>,
    sink: &mut impl FnMut(Vec<CaptureReport>) -> Result<(), E>,
) -> Result<(), E> {
    let kind = input.archive.unwrap_or(capture::archive::Kind::Tar);
    let (tx, rx) = std::sync::mpsc::sync_channel::<CaptureReport>(2);
    let mut failed: Option<E> = None;
    std::thread::scope(|s| {
        s.spawn(move || {
            let emit = |r: CaptureReport| {
                let _ = tx.send(r);
            };
            let emit: &(dyn Fn(CaptureReport) + Sync) = &emit;
            let (mut captures, mut skipped, mut first_skipped) = (0u64, 0u64, None::<String>);
            let mut error = None;
            match capture::archive::members(&input.path, kind) {
                Err(e) => error = Some(e.to_string()),
                Ok(members) => {
                    for item in members {
                        match item {
                            capture::archive::Item::Member { name, reader } => {
                                captures += 1;
                                let name = format!("{}:{name}", input.name);
                                let r = match Source::from_reader(Box::new(reader)) {
                                    Ok(src) => pool.install(|| {
                                        analyze_rows(
                                            &name,
                                            src,
                                            cfg,
                                            keys,
                                            threads,
                                            progress,
                                            Some(emit),
                                        )
                                    }),
                                    Err(e) => CaptureReport {
                                        capture: name,
                                        error: Some(e.to_string()),
                                        ..Default::default()
                                    },
                                };
                                emit(r);
                            }
                            capture::archive::Item::Skipped { name } => {
                                skipped += 1;
                                first_skipped.get_or_insert(name);
                            }
                            capture::archive::Item::Error(e) => {
                                error = Some(e);
                            }
                        }
                    }
                }
            }
            if error.is_none() && captures == 0 {
                error = Some(match first_skipped {
                    Some(f) => format!(
                        "no captures in this archive ({skipped} member{} that {} not a capture, \
                         the first {f})",
                        if skipped == 1 { "" } else { "s" },
                        if skipped == 1 { "is" } else { "are" },
                    ),
                    None => "no captures in this archive (it is empty)".to_string(),
                });
            }
            match error {
                Some(e) => emit(CaptureReport {
                    capture: input.name.clone(),
                    error: Some(e),
                    skipped: skipped as usize,
                    ..Default::default()
                }),
                None if skipped > 0 => emit(CaptureReport {
                    capture: input.name.clone(),
                    partial: true,
                    skipped: skipped as usize,
                    ..Default::default()
                }),
                None => {}
            }
        });
        for r in rx.iter() {
            if failed.is_none() {
                if let Err(e) = sink(vec![r]) {
                    failed = Some(e);
                }
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The default number of workers: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
