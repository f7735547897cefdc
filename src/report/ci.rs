//! What CI reads: a baseline of accepted findings (`--baseline`), the rule
//! that decides whether a run fails (`--fail-on`, judged on findings and on
//! failed attempts), and the JUnit XML report (`--junit`), one test case per
//! capture, bounded however many attempts a capture holds.

use super::model::{Attempt, CaptureReport, Finding, Outcome, Severity};
use std::collections::HashSet;
use std::io::{self, BufRead, Write};

/// Failures listed per capture in the JUnit report; the rest are counted.
pub const LISTED: usize = 20;

/// A client's host: its address without the (ephemeral) port.
pub fn host(endpoint: &str) -> &str {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match endpoint.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => endpoint,
    }
}

/// Accepted findings, keyed by capture, code, client host and server
/// `addr:port` (never the client's port, which changes every run).
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    keys: HashSet<(String, String, String, String)>,
}

fn key(capture: &str, code: &str, client: &str, server: &str) -> (String, String, String, String) {
    (
        capture.to_string(),
        code.to_string(),
        host(client).to_string(),
        server.to_string(),
    )
}

impl Baseline {
    /// Reads a findings report of an earlier run: CSV with a header
    /// (`--csv`) or JSON Lines (`--json`, `--format json`; records other
    /// than findings are ignored). Errors name the line.
    pub fn read(r: impl BufRead) -> Result<Baseline, String> {
        let mut b = Baseline::default();
        let mut lines = r.lines().enumerate().peekable();
        // Skip leading blank lines to see the format.
        while let Some((_, Ok(l))) = lines.peek() {
            if l.trim().is_empty() {
                lines.next();
            } else {
                break;
            }
        }
        let json = matches!(lines.peek(), Some((_, Ok(l))) if l.trim_start().starts_with('{'));
        if json {
            for (n, l) in lines {
                let l = l.map_err(|e| format!("line {}: {e}", n + 1))?;
                if l.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value =
                    serde_json::from_str(&l).map_err(|e| format!("line {}: {e}", n + 1))?;
                match v.get("type").and_then(|t| t.as_str()) {
                    None | Some("finding") => {}
                    Some(_) => continue,
                }
                let field = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_str())
                        .ok_or_else(|| format!("line {}: no {k:?} field", n + 1))
                };
                b.keys.insert(key(
                    field("capture")?,
                    field("code")?,
                    field("client")?,
                    field("server")?,
                ));
            }
            return Ok(b);
        }
        let text: String = lines
            .map(|(_, l)| l.map(|l| l + "\n"))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let mut c = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let head = c.headers().map_err(|e| e.to_string())?.clone();
        let col = |name: &str| {
            head.iter().position(|h| h == name).ok_or_else(|| {
                format!("no {name:?} column: a findings report (--csv or --json) is needed")
            })
        };
        let (cap, code, client, server) = (
            col("capture")?,
            col("code")?,
            col("client")?,
            col("server")?,
        );
        for (n, rec) in c.records().enumerate() {
            let rec = rec.map_err(|e| format!("line {}: {e}", n + 2))?;
            let f = |i: usize| rec.get(i).unwrap_or("");
            b.keys.insert(key(f(cap), f(code), f(client), f(server)));
        }
        Ok(b)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn accepts(&self, f: &Finding) -> bool {
        self.keys
            .contains(&key(&f.capture, &f.code.to_string(), &f.client, &f.server))
    }

    /// A failed attempt is accepted when its verdict is.
    pub fn accepts_attempt(&self, a: &Attempt) -> bool {
        self.keys
            .contains(&key(&a.capture, &a.verdict, &a.client, &a.server))
    }
}

/// When a run fails: findings at or above the threshold, and failed
/// attempts when the threshold is `error` or below (whatever their
/// verdict's severity), less what the baseline accepts.
#[derive(Debug, Default)]
pub struct Rule {
    pub threshold: Option<Severity>,
    pub baseline: Option<Baseline>,
}

impl Rule {
    pub fn finding_fails(&self, f: &Finding) -> bool {
        self.threshold.is_some_and(|t| f.severity >= t)
            && !self.baseline.as_ref().is_some_and(|b| b.accepts(f))
    }

    pub fn attempt_fails(&self, a: &Attempt) -> bool {
        self.threshold.is_some_and(|t| t <= Severity::Error)
            && a.outcome == Outcome::Failed
            && !self.baseline.as_ref().is_some_and(|b| b.accepts_attempt(a))
    }

    /// Findings the baseline accepted that would fail the run otherwise.
    pub fn accepted(&self, f: &Finding) -> bool {
        self.threshold.is_some_and(|t| f.severity >= t)
            && self.baseline.as_ref().is_some_and(|b| b.accepts(f))
    }
}

/// One capture's test case.
#[derive(Debug, Default)]
struct Case {
    name: String,
    attempts: u64,
    failing_attempts: u64,
    failing_findings: u64,
    lines: Vec<String>,
    error: Option<String>,
}

/// The JUnit report, one test case per capture, filled as reports come.
#[derive(Debug, Default)]
pub struct Junit {
    cases: Vec<Case>,
}

impl Junit {
    /// A report or part of one (parts of a capture come in a row).
    pub fn add(&mut self, r: &CaptureReport, rule: &Rule) {
        if self.cases.last().is_none_or(|c| c.name != r.capture) {
            self.cases.push(Case {
                name: r.capture.clone(),
                ..Default::default()
            });
        }
        let Some(c) = self.cases.last_mut() else {
            return;
        };
        c.attempts += r.attempts.len() as u64;
        for a in r.attempts.iter().filter(|a| rule.attempt_fails(a)) {
            c.failing_attempts += 1;
            if c.lines.len() < LISTED {
                c.lines.push(format!(
                    "attempt {} {} -> {} failed{}: {}",
                    a.attempt,
                    a.client,
                    a.server,
                    a.failed_phase
                        .map_or(String::new(), |p| format!(" in {}", p.name())),
                    if a.verdict.is_empty() {
                        "no finding names it"
                    } else {
                        &a.verdict
                    }
                ));
            }
        }
        for f in r.findings.iter().filter(|f| rule.finding_fails(f)) {
            c.failing_findings += 1;
            if c.lines.len() < LISTED {
                c.lines.push(format!(
                    "{} {} {} frames {}-{}: {}",
                    if f.attempt.is_empty() {
                        "-"
                    } else {
                        &f.attempt
                    },
                    f.severity.name(),
                    f.code,
                    f.first_frame,
                    f.last_frame,
                    f.summary
                ));
            }
        }
        if !r.partial {
            if let Some(e) = &r.error {
                c.error = Some(e.clone());
            }
        }
    }

    /// The XML (no timestamps, no durations: the same input gives the
    /// same bytes).
    pub fn write(&self, mut w: impl Write) -> io::Result<()> {
        let failures = self
            .cases
            .iter()
            .filter(|c| c.error.is_none() && c.failing_attempts + c.failing_findings > 0)
            .count();
        let errors = self.cases.iter().filter(|c| c.error.is_some()).count();
        writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            w,
            r#"<testsuites name="rdpsift" tests="{}" failures="{failures}" errors="{errors}">"#,
            self.cases.len()
        )?;
        writeln!(
            w,
            r#"  <testsuite name="rdpsift analyze" tests="{}" failures="{failures}" errors="{errors}">"#,
            self.cases.len()
        )?;
        for c in &self.cases {
            write!(
                w,
                r#"    <testcase classname="rdpsift.capture" name="{}""#,
                xml(&c.name)
            )?;
            let failing = c.failing_attempts + c.failing_findings;
            if let Some(e) = &c.error {
                writeln!(w, ">")?;
                writeln!(
                    w,
                    r#"      <error message="{}" type="unreadable"/>"#,
                    xml(e)
                )?;
                writeln!(w, "    </testcase>")?;
            } else if failing > 0 {
                writeln!(w, ">")?;
                let mut msg = format!(
                    "{} of {} attempt{} failed; {} finding{} at or above --fail-on",
                    c.failing_attempts,
                    c.attempts,
                    if c.attempts == 1 { "" } else { "s" },
                    c.failing_findings,
                    if c.failing_findings == 1 { "" } else { "s" },
                );
                if failing > c.lines.len() as u64 {
                    msg.push_str(&format!(" (the first {} listed)", c.lines.len()));
                }
                writeln!(
                    w,
                    r#"      <failure message="{}" type="rdpsift">{}</failure>"#,
                    xml(&msg),
                    xml(&c.lines.join("\n"))
                )?;
                writeln!(w, "    </testcase>")?;
            } else {
                writeln!(w, "/>")?;
            }
        }
        writeln!(w, "  </testsuite>")?;
        writeln!(w, "</testsuites>")?;
        w.flush()
    }
}

/// Text for an XML attribute or element: escaped (quick-xml), with the
/// characters XML 1.0 cannot hold replaced.
fn xml(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    quick_xml::escape::escape(&clean).into_owned()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::report::model::{Code, Draft, Phase};

    fn finding(client: &str, sev: Severity) -> Finding {
        Finding {
            capture: "c.pcap".into(),
            attempt: "#1".into(),
            client: client.into(),
            server: "198.19.0.20:3389".into(),
            draft: Draft::new(Code::TcpRefused, sev, Phase::Tcp, 1, 0).summary("refused <&>"),
        }
    }

    #[test]
    fn hosts_drop_the_port_only() {
        assert_eq!(host("198.18.0.10:50112"), "198.18.0.10");
        assert_eq!(host("[2001:db8::1]:50112"), "2001:db8::1");
        assert_eq!(host("2001:db8::1"), "2001:db8::1");
        assert_eq!(host(""), "");
    }

    #[test]
    fn a_baseline_accepts_the_same_finding_from_another_client_port() {
        let csv = "capture,attempt,code,severity,phase,client,server,first_frame\n\
                   c.pcap,#1,tcp.refused,error,tcp,198.18.0.10:50112,198.19.0.20:3389,1\n";
        let b = Baseline::read(csv.as_bytes()).unwrap();
        assert!(b.accepts(&finding("198.18.0.10:61000", Severity::Error)));
        // Another client host, or one byte changed in the server: new.
        assert!(!b.accepts(&finding("198.18.0.11:50112", Severity::Error)));
        let mut f = finding("198.18.0.10:1", Severity::Error);
        f.server = "198.19.0.20:3390".into();
        assert!(!b.accepts(&f));
        let json = "{\"type\":\"attempt\",\"capture\":\"c.pcap\"}\n\
                    {\"type\":\"finding\",\"capture\":\"c.pcap\",\"code\":\"tcp.refused\",\"client\":\"198.18.0.10:9\",\"server\":\"198.19.0.20:3389\"}\n";
        let b = Baseline::read(json.as_bytes()).unwrap();
        assert_eq!(b.len(), 1);
        assert!(b.accepts(&finding("198.18.0.10:50112", Severity::Error)));
        let e = Baseline::read("{\"type\":\"finding\"}\n".as_bytes()).unwrap_err();
        assert!(e.contains("line 1") && e.contains("capture"), "{e}");
        let e = Baseline::read("a,b\n1,2\n".as_bytes()).unwrap_err();
        assert!(e.contains("findings report"), "{e}");
    }

    #[test]
    fn junit_is_bounded_escaped_and_counts_the_rest() {
        let rule = Rule {
            threshold: Some(Severity::Error),
            baseline: None,
        };
        let mut j = Junit::default();
        let r = CaptureReport {
            capture: "a&b.pcap".into(),
            findings: (0..100)
                .map(|_| finding("198.18.0.10:1", Severity::Error))
                .collect(),
            ..Default::default()
        };
        j.add(&r, &rule);
        j.add(
            &CaptureReport {
                capture: "ok.pcap".into(),
                ..Default::default()
            },
            &rule,
        );
        let mut out = Vec::new();
        j.write(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(r#"name="a&amp;b.pcap""#), "{s}");
        assert!(s.contains("100 findings at or above --fail-on (the first 20 listed)"));
        assert_eq!(s.matches("refused &lt;&amp;&gt;").count(), LISTED);
        assert!(s.contains(r#"<testcase classname="rdpsift.capture" name="ok.pcap"/>"#));
        assert!(s.contains(r#"tests="2" failures="1" errors="0""#));
        assert!(!xml("a\u{1}b").contains('\u{1}'));
    }
}
