//! Flags, input discovery, running captures in parallel, and writing the
//! reports.

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rdpsift::config::Config;
use rdpsift::proto::keylog::KeyLog;
use rdpsift::report::model::{ClientError, Outcome, Severity};
use rdpsift::report::{ci, output};
use rdpsift::run;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most worker threads `-j` takes: past the capture's 32 parts and a
/// few files at once, more threads only cost their start-up.
const MAX_THREADS: u16 = 256;

/// A duration in seconds: a finite number above zero (not NaN, inf, 0 or
/// negative, which would make every timeout fire at once or never).
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("{s} is not a duration: give seconds above 0"));
    }
    if v > 86_400.0 * 365.0 {
        return Err(format!("{s} seconds is more than a year"));
    }
    Ok(v)
}

fn saw(s: &str) -> Result<ClientError, String> {
    ClientError::parse(s)
}

#[derive(Parser, Debug)]
#[command(
    name = "rdpsift",
    version,
    about = "Tells from packet captures why Remote Desktop connections failed",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Analyze captures (files, directories, or - for standard input).
    Analyze(Box<Analyze>),
    /// List every finding code this build can report.
    Codes,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff: `rdpsift man > rdpsift.1`).
    Man,
}

/// The three uses, shown under `--help`.
const EXAMPLES: &str = "\
Examples:
  Why did this connection fail? (a table per attempt on a terminal)
    rdpsift analyze capture.pcapng
  One server, and the TLS inside with the client's key log:
    rdpsift analyze capture.pcapng --target rdp-host.example.com --keylog sslkeys.log
  In CI: every capture under a folder, findings to a file, exit 1 on errors:
    rdpsift analyze captures/ --csv findings.csv --attempts-csv attempts.csv -q";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Never,
    Info,
    Warning,
    Error,
    Critical,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Findings,
    Attempts,
    /// JSON only: each attempt followed by its findings.
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Analyze {
    /// Capture files (.pcap, .pcapng, also .gz/.zst), archives of them
    /// (.tar, .tgz, .tar.zst, .zip), directories, or -.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Write the findings report (CSV, header first) to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write one row per connection attempt (CSV) to FILE.
    #[arg(long, value_name = "FILE")]
    pub attempts_csv: Option<PathBuf>,
    /// Write the findings as JSON Lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the attempts as JSON Lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub attempts_json: Option<PathBuf>,
    /// What standard output shows (default: table on a terminal, CSV otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// With --format csv or json: one row per finding, per connection
    /// attempt (a healthy attempt has a row, no finding), or (JSON) all:
    /// each attempt then its findings. Default: findings for CSV, all for
    /// JSON.
    #[arg(long, value_enum)]
    pub view: Option<View>,
    /// Exit with status 1 when a finding is at or above this severity (a
    /// failed attempt counts as an error).
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Worker threads (default: all cores; at most 256).
    #[arg(short = 'j', long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u16>,
    /// Progress bar on standard error (never when it is not a terminal).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: When,
    /// Colour in the table: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: When,
    /// The terminal report shows info findings too (otherwise counted).
    #[arg(short, long)]
    pub verbose: bool,
    /// Print nothing on standard error but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also follow TCP/UDP flows on this port (repeatable); content decides the protocol.
    #[arg(long = "port", value_name = "N")]
    pub ports: Vec<u16>,
    /// Handshake phase with no progress for this many seconds: tcp.stalled.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = seconds)]
    pub stall_timeout: f64,
    /// SYN unanswered for this many seconds: tcp.syn_unanswered.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0, value_parser = seconds)]
    pub syn_timeout: f64,
    /// The server the user tried to reach (host name or address): only its
    /// attempts are reported, and a name is checked against certificates.
    #[arg(long, value_name = "NAME|ADDR")]
    pub target: Option<String>,
    /// An RD Gateway's host name or address (repeatable): its TLS
    /// connections are gateway legs even when nothing inside them can be
    /// read (no keys).
    #[arg(long = "gateway", value_name = "HOST")]
    pub gateways: Vec<String>,
    /// A client's connections to one server this many seconds apart, after
    /// a failed one, form one attempt (a retry).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub attempt_window: f64,
    /// Bytes per direction handed to protocol parsers (stream depth).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub depth: u64,
    /// Flows held at once per capture; past it the flow idle the longest
    /// is finished early and capture.bound says how many were.
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_flows: u64,
    /// A TLS key log (NSS / SSLKEYLOGFILE format, RFC 9850) to decrypt
    /// sessions with (repeatable). pcapng Decryption Secrets Blocks are
    /// used without it. SSLKEYLOGFILE is never read implicitly.
    #[arg(long = "keylog", value_name = "FILE")]
    pub keylogs: Vec<PathBuf>,
    /// Attempts judged (and written) at a time once a file is read; for
    /// tests: the output does not depend on it.
    #[arg(long, hide = true, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub attempt_chunk: u64,
    /// Frames between two points where the attempts that can be decided
    /// are written (0: only once the file is read); for tests: the output
    /// does not depend on it (when no bound is hit).
    #[arg(long, hide = true, value_name = "N", default_value_t = 65536)]
    pub checkpoint_frames: u64,
    /// Write a JUnit XML report to FILE: one test case per capture, failing
    /// at --fail-on (at most 20 failures listed per capture, the rest
    /// counted).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Accepted findings: a findings report of an earlier run (--csv or
    /// --json). Findings with the same capture, code, client host and
    /// server address:port, and failed attempts whose verdict is one, no
    /// longer fail the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Replace user names, host names and addresses in every output, the
    /// same value by the same stand-in (user-1, host-2.example,
    /// 198.18.0.3), for reports that leave the company.
    #[arg(long)]
    pub redact: bool,
    /// The error code the client showed (`0x904/0x7`, `0x204`, `2308`):
    /// the attempts whose evidence gives that dialog are listed at the end,
    /// best fit first, or it is said that none does.
    #[arg(long, value_name = "CODE[/EXT]", value_parser = saw)]
    pub saw: Option<ClientError>,
    /// The server's RSA private key (PEM or DER, PKCS#1 or PKCS#8) for
    /// TLS_RSA_* sessions (repeatable).
    #[arg(long = "rsa-key", value_name = "FILE")]
    pub rsa_keys: Vec<PathBuf>,
}

/// Reads the key sources of `--keylog` and `--rsa-key`; says on standard
/// error what was skipped in each (once per file).
fn load_keys(a: &Analyze) -> Result<Option<std::sync::Arc<KeyLog>>> {
    if a.keylogs.is_empty() && a.rsa_keys.is_empty() {
        return Ok(None);
    }
    let mut k = KeyLog::default();
    for p in &a.keylogs {
        let f = std::fs::File::open(p).with_context(|| format!("--keylog {}", p.display()))?;
        let i = k
            .add_reader(&p.display().to_string(), std::io::BufReader::new(f))
            .with_context(|| format!("--keylog {}", p.display()))? as usize;
        let Some(s) = k.source_at(i as u16) else {
            continue;
        };
        if s.skipped.total() > 0 && !a.quiet {
            let (line, why) = s.skipped.first.clone().unwrap_or_default();
            eprintln!(
                "rdpsift: {}: {} secrets read; {} lines skipped ({} unknown labels, {} malformed, {} over the bound); first: line {line}: {why}",
                p.display(),
                s.entries,
                s.skipped.total(),
                s.skipped.unknown_label,
                s.skipped.malformed,
                s.skipped.over_bound
            );
        }
    }
    for p in &a.rsa_keys {
        let bytes = std::fs::read(p).with_context(|| format!("--rsa-key {}", p.display()))?;
        k.add_rsa(&p.display().to_string(), &bytes)
            .map_err(|e| anyhow::anyhow!("--rsa-key {}: {e}", p.display()))?;
    }
    Ok(Some(std::sync::Arc::new(k)))
}

pub fn run(args: Args) -> Result<u8> {
    match args.cmd {
        Cmd::Codes => {
            let mut out = io::stdout().lock();
            for c in rdpsift::detect::all_codes() {
                writeln!(out, "{c}")?;
            }
            Ok(0)
        }
        Cmd::Completions { shell } => {
            let mut cmd = <Args as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "rdpsift", &mut io::stdout().lock());
            Ok(0)
        }
        Cmd::Man => {
            let cmd = <Args as clap::CommandFactory>::command();
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
            // The subcommands' own options, as sections of the one page.
            for sub in cmd.get_subcommands() {
                let name = format!("rdpsift-{}", sub.get_name());
                clap_mangen::Man::new(sub.clone().display_name(name)).render(&mut out)?;
            }
            Ok(0)
        }
        Cmd::Analyze(a) => analyze(*a),
    }
}

fn analyze(a: Analyze) -> Result<u8> {
    let cfg = Config {
        ports: a.ports.iter().copied().collect(),
        stall_ns: (a.stall_timeout * 1e9) as i64,
        syn_timeout_ns: (a.syn_timeout * 1e9) as i64,
        depth: a.depth,
        target: a.target.clone(),
        gateways: a
            .gateways
            .iter()
            .map(|g| g.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        attempt_window_ns: (a.attempt_window * 1e9) as i64,
        max_flows: a.max_flows as usize,
        attempt_chunk: a.attempt_chunk as usize,
        checkpoint_frames: a.checkpoint_frames as usize,
        ..Config::default()
    };
    let threads = a
        .threads
        .map_or_else(run::default_threads, usize::from)
        .clamp(1, MAX_THREADS as usize);
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let format = a
        .format
        .unwrap_or(if tty { Format::Table } else { Format::Csv });
    let view = match (format, a.view) {
        (Format::Csv, Some(View::All)) => anyhow::bail!(
            "--view all is for --format json (findings and attempts have different CSV columns: \
             use --csv and --attempts-csv for both)"
        ),
        (_, Some(v)) => v,
        (Format::Json, None) => View::All,
        (_, None) => View::Findings,
    };
    let color = match a.color {
        When::Always => true,
        When::Never => false,
        // NO_COLOR (no-color.org) and CLICOLOR_FORCE, TERM=dumb: what
        // clap and cargo read (anstyle-query).
        When::Auto => {
            anstyle_query::clicolor_force()
                || (tty && !anstyle_query::no_color() && anstyle_query::term_supports_ansi_color())
        }
    };
    // A Windows console shows escape codes as text until asked not to.
    #[cfg(windows)]
    let color = color && anstyle_query::windows::enable_ansi_colors().unwrap_or(false);
    let look = rdpsift::report::terminal::Look {
        color,
        width: if tty {
            textwrap::termwidth().clamp(40, 120)
        } else {
            80
        },
        verbose: a.verbose,
    };
    // A reader that stops early (`| head`) does not stop the run: the
    // rest is judged unseen, so the exit status is the run's own.
    let mut out = BufWriter::new(Closable {
        inner: stdout.lock(),
        closed: false,
    });
    let found = run::discover(&a.paths).map_err(anyhow::Error::msg)?;
    let mut failed_inputs = 0usize;
    for (p, e) in &found.errors {
        eprintln!("rdpsift: {}: {e}", p.display());
        if format == Format::Json {
            output::error_json(&mut out, &p.display().to_string(), &e.to_string())?;
        }
        failed_inputs += 1;
    }
    let mut skipped = found.skipped;
    let total = found.total_bytes();
    let bar = progress_bar(a.progress, total);
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        let d = done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(b) = &bar {
            b.set_position(d.min(total));
        }
    };
    let keys = load_keys(&a)?;
    let threshold = match a.fail_on {
        FailOn::Never => None,
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Critical => Some(Severity::Critical),
    };
    let baseline = a
        .baseline
        .as_ref()
        .map(|p| {
            let f = File::open(p).with_context(|| format!("--baseline {}", p.display()))?;
            ci::Baseline::read(io::BufReader::new(f))
                .map_err(|e| anyhow::anyhow!("--baseline {}: {e}", p.display()))
        })
        .transpose()?;
    let rule = ci::Rule {
        threshold,
        baseline,
    };
    let mut junit = a.junit.as_ref().map(|_| ci::Junit::default());
    let mut accepted = 0usize;
    let mut redactor = a.redact.then(rdpsift::report::redact::Redactor::default);
    let open = |p: &Option<PathBuf>| -> Result<Option<BufWriter<File>>> {
        p.as_ref()
            .map(|p| {
                File::create(p)
                    .map(BufWriter::new)
                    .with_context(|| format!("cannot create {}", p.display()))
            })
            .transpose()
    };
    let mut files = [
        (open(&a.csv)?, &a.csv),
        (open(&a.attempts_csv)?, &a.attempts_csv),
        (open(&a.json)?, &a.json),
        (open(&a.attempts_json)?, &a.attempts_json),
    ];
    // Reports are written as files finish, in input order, and dropped:
    // only the totals stay.
    let (mut captures, mut frames, mut attempts, mut failed, mut findings) =
        (0usize, 0u64, 0usize, 0usize, 0usize);
    let mut hit = false;
    let mut first = true;
    let mut fits = a.saw.map(rdpsift::report::saw::Fits::new);
    let mut terminal = rdpsift::report::terminal::Terminal::new(look);
    let wrote = run::run_each(
        &found.inputs,
        &cfg,
        keys.as_ref(),
        threads,
        &tick,
        |mut reports| -> Result<()> {
            if let Some(r) = &mut redactor {
                reports.iter_mut().for_each(|rep| r.report(rep));
            }
            for r in &reports {
                // Rows count wherever they come (a partial report or the
                // file's own); the file itself once, with its own report.
                attempts += r.attempts.len();
                failed += r
                    .attempts
                    .iter()
                    .filter(|x| x.outcome == Outcome::Failed)
                    .count();
                findings += r.findings.len();
                skipped += r.skipped;
                if let Some(f) = &mut fits {
                    r.attempts.iter().for_each(|x| f.add(x));
                }
                // A failed attempt counts as an error whatever its
                // verdict's severity (README: exit status); what the
                // baseline accepts does not count.
                hit |= r.findings.iter().any(|f| rule.finding_fails(f))
                    || r.attempts.iter().any(|x| rule.attempt_fails(x));
                accepted += r.findings.iter().filter(|f| rule.accepted(f)).count();
                if let Some(j) = &mut junit {
                    j.add(r, &rule);
                }
                if r.partial {
                    continue;
                }
                if let Some(e) = &r.error {
                    if let Some(b) = &bar {
                        b.suspend(|| eprintln!("rdpsift: {}: {e}", r.capture));
                    } else {
                        eprintln!("rdpsift: {}: {e}", r.capture);
                    }
                    failed_inputs += 1;
                }
                captures += 1;
                frames += r.frames;
            }
            for (k, (w, p)) in files.iter_mut().enumerate() {
                let Some(w) = w else { continue };
                let r = match k {
                    0 => output::findings_csv_part(&mut *w, &reports, first),
                    1 => output::attempts_csv_part(&mut *w, &reports, first),
                    2 => output::findings_json(&mut *w, &reports),
                    _ => output::attempts_json(&mut *w, &reports),
                };
                r.with_context(|| {
                    format!(
                        "cannot write {}",
                        p.as_ref()
                            .map_or(String::new(), |p| p.display().to_string())
                    )
                })?;
            }
            match (format, view) {
                (Format::Table, _) => {
                    for r in &reports {
                        terminal.part(&mut out, r)?;
                    }
                }
                (Format::Csv, View::Attempts) => {
                    output::attempts_csv_part(&mut out, &reports, first)?
                }
                (Format::Csv, _) => output::findings_csv_part(&mut out, &reports, first)?,
                (Format::Json, View::All) => output::all_json(&mut out, &reports)?,
                (Format::Json, v) => {
                    for r in &reports {
                        let one = std::slice::from_ref(r);
                        if v == View::Findings {
                            output::findings_json(&mut out, one)?
                        } else {
                            output::attempts_json(&mut out, one)?
                        }
                        if let (Some(e), false) = (&r.error, r.partial) {
                            output::error_json(&mut out, &r.capture, e)?;
                        }
                    }
                }
            }
            first = false;
            Ok(())
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    wrote?;
    for (w, p) in files.iter_mut() {
        if let Some(w) = w {
            w.flush().with_context(|| {
                format!(
                    "cannot write {}",
                    p.as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                )
            })?;
        }
    }
    if format == Format::Json {
        let s = output::Summary {
            captures: captures as u64,
            frames,
            attempts: attempts as u64,
            failed: failed as u64,
            findings: findings as u64,
            errors: failed_inputs as u64,
            skipped: skipped as u64,
            ..output::Summary::new()
        };
        output::summary_json(&mut out, &s)?;
    }
    if let Some(f) = &fits {
        if format == Format::Table {
            f.write(&mut out)?;
        } else if !a.quiet {
            f.write(io::stderr().lock())?;
        }
    }
    out.flush()?;
    if let (Some(j), Some(p)) = (&junit, &a.junit) {
        let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
        j.write(BufWriter::new(f))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }

    if !a.quiet {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut line = format!(
            "rdpsift: {}, {frames} frames, {} ({failed} failed), {}",
            plural(captures, "capture", "captures"),
            plural(attempts, "attempt", "attempts"),
            plural(findings, "finding", "findings"),
        );
        if accepted > 0 {
            line.push_str(&format!(
                "; {} accepted by the baseline",
                plural(accepted, "finding", "findings")
            ));
        }
        if skipped > 0 {
            line.push_str(&format!(
                "; {} skipped (not captures)",
                plural(skipped, "file", "files")
            ));
        }
        eprintln!("{line}");
    }

    // `--target` that matched nothing is said, never a silent pass: the
    // user asked about one server and these captures show no attempt to it.
    if let (Some(t), 0) = (&a.target, attempts) {
        if captures > 0 {
            eprintln!(
                "rdpsift: no attempt to {t} in {}: a name must be the one the client used \
                 (SNI, routing token or certificate name; a short name matches only if the \
                 client used it) or a DNS lookup of it; an address must be the server's",
                if captures == 1 {
                    "this capture"
                } else {
                    "these captures"
                }
            );
            hit |= threshold.is_some();
        }
    }
    if failed_inputs > 0 {
        return Ok(2);
    }
    Ok(if hit { 1 } else { 0 })
}

/// Standard output that a reader may close: past a broken pipe, writes
/// are dropped instead of failing the run.
struct Closable<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Closable<W> {
    /// What a write or flush returned, a broken pipe taken as done.
    fn unless_closed<T>(&mut self, r: io::Result<T>, done: T) -> io::Result<T> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            r => r,
        }
    }
}

impl<W: Write> Write for Closable<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.unless_closed(r, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.unless_closed(r, ())
    }
}

fn progress_bar(when: When, total: u64) -> Option<indicatif::ProgressBar> {
    let tty = io::stderr().is_terminal();
    let show = match when {
        When::Never => false,
        When::Always => tty,
        When::Auto => tty && total >= 64 << 20,
    };
    if !show {
        return None;
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .ok()?,
    );
    Some(b)
}
