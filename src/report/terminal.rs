//! The terminal report: per capture, a block per attempt with the verdict
//! first (its summary, cause, remedy, confidence, frames and a Wireshark
//! filter on a line of its own), then the attempt's other findings by
//! severity; info findings are counted unless `verbose`. Text wraps at
//! the width given (80 columns read well); colour only when asked.

use super::model::{Attempt, CaptureReport, Finding, Outcome, Severity};
use anstyle::{AnsiColor, Style};
use std::io::{self, Write};

/// How the report is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub color: bool,
    /// Columns to wrap text at.
    pub width: usize,
    /// Show info findings too.
    pub verbose: bool,
}

impl Default for Look {
    fn default() -> Self {
        Look {
            color: false,
            width: 80,
            verbose: false,
        }
    }
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();

/// The body of each finding's lines starts here.
const INDENT: &str = "     ";

impl Look {
    /// `text` in `style` when colour is on.
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Writes `text` wrapped at the width, every line indented.
    fn para(&self, w: &mut impl Write, label: &str, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let first = format!("{INDENT}{label}");
        let rest = " ".repeat(first.chars().count());
        let o = textwrap::Options::new(self.width.max(40))
            .initial_indent(&first)
            .subsequent_indent(&rest);
        for line in textwrap::wrap(text, o) {
            writeln!(w, "{line}")?;
        }
        Ok(())
    }
}

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical | Severity::Error => RED,
        Severity::Warning => YELLOW,
        Severity::Info => DIM,
    }
}

fn mark(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::Error => "✗",
        Severity::Warning => "!",
        Severity::Info => "·",
    }
}

fn frames(first: u64, last: u64) -> String {
    if first == last {
        format!("frame {first}")
    } else {
        format!("frames {first}-{last}")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One finding: a head line (mark, code, severity, frames), then the
/// summary, cause, remedy and confidence wrapped, then the filter on a
/// line of its own, not indented, so it copies whole.
fn finding(w: &mut impl Write, look: &Look, f: &Finding, verdict: bool) -> io::Result<()> {
    let st = severity_style(f.severity);
    writeln!(
        w,
        "  {} {}  {}  {}{}",
        look.paint(st, mark(f.severity)),
        look.paint(BOLD, &f.code.to_string()),
        look.paint(st, f.severity.name()),
        frames(f.first_frame, f.last_frame),
        if verdict {
            format!("  {}", look.paint(DIM, "(the verdict)"))
        } else {
            String::new()
        }
    )?;
    look.para(w, "", &f.summary)?;
    look.para(w, "Cause: ", &f.cause)?;
    look.para(w, "Fix:   ", &f.remedy)?;
    let conf = f.confidence.render();
    if conf != "high" {
        look.para(w, "Confidence: ", &conf)?;
    }
    if !f.filter.is_empty() {
        writeln!(
            w,
            "{INDENT}{}",
            look.paint(DIM, "Wireshark filter (the line below):")
        )?;
        writeln!(w, "{}", f.filter)?;
    }
    Ok(())
}

/// The attempt's head: number, outcome, endpoints, then what it asked
/// for and the client's dialog code.
fn head(w: &mut impl Write, look: &Look, a: &Attempt) -> io::Result<()> {
    let (st, word) = match a.outcome {
        Outcome::Connected => (GREEN, "connected".to_string()),
        Outcome::Failed => (
            RED,
            match a.failed_phase {
                Some(p) => format!("FAILED in {}", p.name()),
                None => "FAILED".to_string(),
            },
        ),
        Outcome::Incomplete => (YELLOW, "incomplete".to_string()),
    };
    let proto = if a.app.is_empty() {
        a.transport.clone()
    } else {
        format!("{}/{}", a.transport, a.app)
    };
    writeln!(
        w,
        "{} {}  {} → {}  {}",
        look.paint(BOLD, &a.attempt),
        look.paint(st, &word),
        a.client,
        a.server,
        proto
    )?;
    let mut facts = Vec::new();
    if !a.via.is_empty() && a.via != "direct" {
        facts.push(format!("via {} {}", a.via, a.gateway));
    }
    if !a.target.is_empty() {
        facts.push(format!("target {}", a.target));
    }
    if !a.user.is_empty() {
        facts.push(format!("user {}", a.user));
    }
    if !a.requested.is_empty() || !a.selected.is_empty() {
        facts.push(format!("{} → {}", a.requested, a.selected));
    }
    if !a.tls_version.is_empty() {
        facts.push(a.tls_version.clone());
    }
    facts.push(frames(a.first_frame, a.last_frame));
    look.para(w, "", &facts.join(", "))?;
    if let Some(e) = a.client_error {
        writeln!(
            w,
            "{INDENT}The client shows error code {} ({}; {})",
            look.paint(BOLD, &e.hex()),
            e.decimal(),
            e.basis()
        )?;
    }
    Ok(())
}

/// Findings most severe first, then by frame; the verdict's own first.
fn ordered<'a>(fs: impl Iterator<Item = &'a Finding>, verdict: &str) -> Vec<&'a Finding> {
    let mut v: Vec<&Finding> = fs.collect();
    let is_verdict = |f: &Finding| !verdict.is_empty() && f.code == verdict;
    v.sort_by(|x, y| {
        is_verdict(y)
            .cmp(&is_verdict(x))
            .then(y.severity.cmp(&x.severity))
            .then(x.first_frame.cmp(&y.first_frame))
    });
    v
}

/// The findings of one attempt (or, after `heading`, of the capture),
/// info counted unless verbose.
fn findings(
    w: &mut impl Write,
    look: &Look,
    fs: Vec<&Finding>,
    verdict: &str,
    heading: Option<&str>,
) -> io::Result<()> {
    let is_verdict = |f: &Finding| !verdict.is_empty() && f.code == verdict;
    let shown = |f: &Finding| look.verbose || f.severity > Severity::Info || is_verdict(f);
    let hidden = fs.iter().filter(|f| !shown(f)).count();
    let mut visible = fs.iter().copied().filter(|f| shown(f)).peekable();
    if let (Some(h), Some(_)) = (heading, visible.peek()) {
        writeln!(w)?;
        writeln!(w, "{}", look.paint(BOLD, h))?;
    }
    let mut marked = false;
    for f in visible {
        let v = !marked && is_verdict(f);
        marked |= v;
        finding(w, look, f, v)?;
    }
    if hidden > 0 {
        let (n, it) = if hidden == 1 {
            ("1 info finding".to_string(), "it")
        } else {
            (format!("{hidden} info findings"), "them")
        };
        let about = if heading.is_some() {
            " about the capture"
        } else {
            ""
        };
        writeln!(
            w,
            "  {}",
            look.paint(DIM, &format!("({n}{about}: -v shows {it})"))
        )?;
    }
    Ok(())
}

/// The report as parts of captures come: a capture's name when its first
/// part comes, its attempts as they are decided, and its own findings and
/// totals with its last part (so a long capture's report scrolls by while
/// it is read, and nothing waits in memory).
#[derive(Debug)]
pub struct Terminal {
    look: Look,
    /// The capture whose parts are being written, and its counts so far.
    open: Option<String>,
    attempts: usize,
    failed: usize,
}

impl Terminal {
    pub fn new(look: Look) -> Terminal {
        Terminal {
            look,
            open: None,
            attempts: 0,
            failed: 0,
        }
    }

    /// One part of a capture's report (`r.partial`: more parts follow).
    pub fn part(&mut self, mut w: impl Write, r: &CaptureReport) -> io::Result<()> {
        let look = &self.look;
        // An archive's count of members that are not captures: the run's
        // summary says it.
        if r.partial && r.attempts.is_empty() && r.findings.is_empty() {
            return Ok(());
        }
        if self.open.as_deref() != Some(r.capture.as_str()) {
            writeln!(w, "{}", look.paint(BOLD, &format!("── {} ", r.capture)))?;
            self.open = Some(r.capture.clone());
            self.attempts = 0;
            self.failed = 0;
        }
        self.attempts += r.attempts.len();
        self.failed += r
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
            .count();
        let (attempts, rest) = r.grouped();
        for (a, mine) in attempts {
            writeln!(w)?;
            head(&mut w, look, a)?;
            let mine = ordered(mine.into_iter(), &a.verdict);
            findings(&mut w, look, mine, &a.verdict, None)?;
        }
        // The capture's own findings, and any whose attempt is not here.
        if !rest.is_empty() {
            let rest = ordered(rest.into_iter(), "");
            findings(&mut w, look, rest, "", Some("The capture"))?;
        }
        if r.partial {
            return Ok(());
        }
        if let Some(e) = &r.error {
            writeln!(w)?;
            look.para(&mut w, "", &format!("error: {e}"))?;
        }
        if self.attempts == 0 {
            writeln!(w)?;
            writeln!(w, "  no connection attempts to RDP services found")?;
        }
        writeln!(w)?;
        writeln!(
            w,
            "{}",
            look.paint(
                DIM,
                &format!(
                    "   {}: {} frames, {} ({} failed)",
                    r.capture,
                    r.frames,
                    plural(self.attempts, "attempt", "attempts"),
                    self.failed
                )
            )
        )?;
        writeln!(w)?;
        self.open = None;
        Ok(())
    }
}

/// The report of whole captures.
pub fn write(mut w: impl Write, reports: &[CaptureReport], look: &Look) -> io::Result<()> {
    let mut t = Terminal::new(*look);
    for r in reports {
        t.part(&mut w, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::report::model::{ClientError, Code, Confidence, Draft, Level, Phase};

    fn report() -> CaptureReport {
        let f = |code, sev, frame: u64, attempt: &str| {
            Finding {
            capture: "a.pcap".into(),
            attempt: attempt.into(),
            client: "198.18.0.1:50000".into(),
            server: "198.19.0.2:3389".into(),
            draft: Draft::new(code, sev, Phase::Tcp, frame, 0)
                .summary("what the frames show, in words long enough to be wrapped at the width of an eighty column terminal")
                .cause("c")
                .remedy("r")
                .filter("ip.addr==198.18.0.1 && ip.addr==198.19.0.2 && tcp.port==50000 && tcp.port==3389 && (frame.number==3)")
                .confidence(Confidence::lowered(Level::Medium, "why")),
        }
        };
        CaptureReport {
            capture: "a.pcap".into(),
            frames: 9,
            attempts: vec![Attempt {
                capture: "a.pcap".into(),
                attempt: "#1".into(),
                client: "198.18.0.1:50000".into(),
                server: "198.19.0.2:3389".into(),
                transport: "tcp".into(),
                outcome: Outcome::Failed,
                failed_phase: Some(Phase::Tcp),
                verdict: "tcp.refused".into(),
                client_error: Some(ClientError::documented(0x204)),
                first_frame: 1,
                last_frame: 3,
                ..Default::default()
            }],
            findings: vec![
                f(Code::TcpStalled, Severity::Warning, 2, "#1"),
                f(Code::PathMssMismatch, Severity::Info, 1, "#1"),
                f(Code::TcpRefused, Severity::Error, 3, "#1"),
                f(Code::CaptureTruncated, Severity::Info, 9, ""),
            ],
            error: None,
            partial: false,
            skipped: 0,
        }
    }

    fn text(look: &Look) -> String {
        let mut out = Vec::new();
        write(&mut out, &[report()], look).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_verdict_comes_first_and_info_waits_for_verbose() {
        let s = text(&Look::default());
        let verdict = s
            .find("✗ tcp.refused  error  frame 3  (the verdict)")
            .expect(&s);
        let stalled = s.find("! tcp.stalled").expect(&s);
        assert!(verdict < stalled, "{s}");
        assert!(!s.contains("path.mss_mismatch"), "{s}");
        assert!(s.contains("(1 info finding: -v shows it)"), "{s}");
        assert!(
            s.contains("(1 info finding about the capture: -v shows it)"),
            "{s}"
        );
        assert!(!s.contains("The capture\n"), "{s}");
        assert!(s.contains("The client shows error code 0x204 (516; documented)"));
        assert!(s.contains("Confidence: medium: why"), "{s}");
        let v = text(&Look {
            verbose: true,
            ..Look::default()
        });
        assert!(
            v.contains("· path.mss_mismatch") && v.contains("· capture.truncated"),
            "{v}"
        );
    }

    #[test]
    fn lines_fit_eighty_columns_but_the_filter_stays_whole() {
        let s = text(&Look::default());
        let filter = "ip.addr==198.18.0.1 && ip.addr==198.19.0.2 && tcp.port==50000 && tcp.port==3389 && (frame.number==3)";
        for line in s.lines() {
            if line == filter {
                continue;
            }
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        assert!(s.lines().any(|l| l == filter), "{s}");
        assert!(!s.contains('\x1b'));
    }

    #[test]
    fn colour_only_when_asked() {
        let s = text(&Look {
            color: true,
            ..Look::default()
        });
        assert!(s.contains("\x1b["), "{s}");
        // The filter line carries no escape codes: it copies clean.
        let filter = s.lines().find(|l| l.starts_with("ip.addr==")).unwrap();
        assert!(!filter.contains('\x1b'));
    }
}
