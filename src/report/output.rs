//! Printers. Each writes into any `io::Write`, so tests compare exact text.
//! CSV and JSON Lines share one row type per report, so their fields agree.

use super::model::{rfc3339, Attempt, CaptureReport, Finding};
use crate::finding::Code;
use serde::Serialize;
use std::io::{self, Write};

/// A findings row: the column order is the public contract. Made from the
/// finding's placement and its draft (`finding::Draft`), field by field.
#[derive(Serialize)]
pub struct FindingRow<'a> {
    pub capture: &'a str,
    pub attempt: &'a str,
    pub code: Code,
    pub severity: &'static str,
    pub phase: &'static str,
    pub client: &'a str,
    pub server: &'a str,
    pub first_frame: u64,
    pub last_frame: u64,
    pub time: String,
    pub summary: &'a str,
    pub cause: &'a str,
    pub remedy: &'a str,
    pub filter: &'a str,
    pub confidence: String,
}

impl<'a> From<&'a Finding> for FindingRow<'a> {
    fn from(f: &'a Finding) -> Self {
        FindingRow {
            capture: &f.capture,
            attempt: &f.attempt,
            code: f.code,
            severity: f.severity.name(),
            phase: f.phase.name(),
            client: &f.client,
            server: &f.server,
            first_frame: f.first_frame,
            last_frame: f.last_frame,
            time: rfc3339(f.ts),
            summary: &f.summary,
            cause: &f.cause,
            remedy: &f.remedy,
            filter: &f.filter,
            confidence: f.confidence.render(),
        }
    }
}

#[derive(Serialize)]
pub struct AttemptRow<'a> {
    pub capture: &'a str,
    pub attempt: &'a str,
    pub client: &'a str,
    pub server: &'a str,
    pub transport: &'a str,
    pub start: String,
    pub end: String,
    pub packets: u64,
    pub bytes: u64,
    pub outcome: &'static str,
    pub failed_phase: &'static str,
    pub verdict: &'a str,
    pub app: &'a str,
    pub first_frame: u64,
    pub last_frame: u64,
    pub connections: u32,
    pub via: &'a str,
    pub gateway: &'a str,
    pub legs: u32,
    pub target: &'a str,
    pub user: &'a str,
    pub requested: &'a str,
    pub selected: &'a str,
    pub tls_version: &'a str,
    pub tls_cipher: &'a str,
    pub cert_subject: &'a str,
    pub cert_not_after: &'a str,
    pub fits_0x904: &'static str,
    pub client_error: String,
    pub client_error_decimal: String,
    pub client_error_basis: &'static str,
    pub client_name: &'a str,
    pub client_build: &'a str,
    pub channels: &'a str,
    pub rdp_encryption: &'a str,
    pub timeline: &'a str,
}

impl<'a> From<&'a Attempt> for AttemptRow<'a> {
    fn from(a: &'a Attempt) -> Self {
        AttemptRow {
            capture: &a.capture,
            attempt: &a.attempt,
            client: &a.client,
            server: &a.server,
            transport: &a.transport,
            start: rfc3339(a.start),
            end: rfc3339(a.end),
            packets: a.packets,
            bytes: a.bytes,
            outcome: a.outcome.name(),
            failed_phase: a.failed_phase.map_or("", |p| p.name()),
            verdict: &a.verdict,
            app: &a.app,
            first_frame: a.first_frame,
            last_frame: a.last_frame,
            connections: a.connections,
            via: &a.via,
            gateway: &a.gateway,
            legs: a.legs,
            target: &a.target,
            user: &a.user,
            requested: &a.requested,
            selected: &a.selected,
            tls_version: &a.tls_version,
            tls_cipher: &a.tls_cipher,
            cert_subject: &a.cert_subject,
            cert_not_after: &a.cert_not_after,
            fits_0x904: a.fits_0x904,
            client_error: a.client_error.map_or(String::new(), |e| e.hex()),
            client_error_decimal: a.client_error.map_or(String::new(), |e| e.decimal()),
            client_error_basis: a.client_error.map_or("", |e| e.basis()),
            client_name: &a.client_name,
            client_build: &a.client_build,
            channels: &a.channels,
            rdp_encryption: &a.rdp_encryption,
            timeline: &a.timeline,
        }
    }
}

/// The column names of a row type, in order: its serde field names, read
/// by serializing one row with csv's own header writer, so the header and
/// the rows cannot disagree.
fn header_of<T: Serialize>(row: T) -> Vec<String> {
    let mut c = csv::WriterBuilder::new().from_writer(Vec::new());
    if c.serialize(row).is_err() {
        return Vec::new();
    }
    let bytes = c.into_inner().unwrap_or_default();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    r.records()
        .next()
        .and_then(Result::ok)
        .map(|h| h.iter().map(String::from).collect())
        .unwrap_or_default()
}

fn finding_header() -> Vec<String> {
    let d = crate::finding::Draft::new(
        Code::TcpRefused,
        crate::finding::Severity::Info,
        crate::finding::Phase::Tcp,
        0,
        0,
    );
    let f = Finding {
        capture: String::new(),
        attempt: String::new(),
        client: String::new(),
        server: String::new(),
        draft: d,
    };
    header_of(FindingRow::from(&f))
}

fn attempt_header() -> Vec<String> {
    header_of(AttemptRow::from(&Attempt::default()))
}

fn csv_err(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        k => io::Error::other(format!("{k:?}")),
    }
}

/// CSV rows, after a header row when one is given (written even when
/// there are no rows: the first part of a run).
fn write_csv<T: Serialize>(
    w: impl Write,
    header: Option<&[String]>,
    rows: impl Iterator<Item = T>,
) -> io::Result<()> {
    let mut c = csv::WriterBuilder::new().has_headers(false).from_writer(w);
    if let Some(header) = header {
        c.write_record(header).map_err(csv_err)?;
    }
    for r in rows {
        c.serialize(r).map_err(csv_err)?;
    }
    c.flush()
}

/// The version of the reports' schema (docs/schema.md): the columns of
/// the CSV reports and the records of the JSON Lines.
pub const SCHEMA: u32 = 2;

/// A JSON Lines record: its `type` first, then the row's fields.
#[derive(Serialize)]
struct Typed<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    row: T,
}

fn write_jsonl<T: Serialize>(
    mut w: impl Write,
    kind: &'static str,
    rows: impl Iterator<Item = T>,
) -> io::Result<()> {
    for row in rows {
        serde_json::to_writer(&mut w, &Typed { kind, row })?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// The run's totals: the last record of `--format json`. Nothing in it
/// depends on when or where the run happened.
#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub schema: u32,
    pub tool: &'static str,
    pub version: &'static str,
    pub captures: u64,
    pub frames: u64,
    pub attempts: u64,
    pub failed: u64,
    pub findings: u64,
    /// Inputs that could not be read (fully): one `error` record each.
    pub errors: u64,
    /// Files met in directories that are not captures.
    pub skipped: u64,
}

impl Summary {
    pub fn new() -> Summary {
        Summary {
            schema: SCHEMA,
            tool: "rdpsift",
            version: env!("CARGO_PKG_VERSION"),
            ..Default::default()
        }
    }
}

pub fn summary_json(w: impl Write, s: &Summary) -> io::Result<()> {
    write_jsonl(w, "summary", std::iter::once(s))
}

/// An input that could not be read, or not fully (the message names the
/// frame when there is one).
#[derive(Serialize)]
struct ErrorRow<'a> {
    capture: &'a str,
    message: &'a str,
}

pub fn error_json(w: impl Write, capture: &str, message: &str) -> io::Result<()> {
    write_jsonl(w, "error", std::iter::once(ErrorRow { capture, message }))
}

/// Attempts and findings in one stream: each attempt, then its findings;
/// a capture's own findings after its attempts; then the capture's
/// `error` record when it has one.
pub fn all_json(mut w: impl Write, reports: &[CaptureReport]) -> io::Result<()> {
    for r in reports {
        let (attempts, rest) = r.grouped();
        for (a, mine) in attempts {
            write_jsonl(&mut w, "attempt", std::iter::once(AttemptRow::from(a)))?;
            write_jsonl(&mut w, "finding", mine.into_iter().map(FindingRow::from))?;
        }
        write_jsonl(&mut w, "finding", rest.into_iter().map(FindingRow::from))?;
        if let (Some(e), false) = (&r.error, r.partial) {
            error_json(&mut w, &r.capture, e)?;
        }
    }
    w.flush()
}

pub fn findings_csv(w: impl Write, reports: &[CaptureReport]) -> io::Result<()> {
    findings_csv_part(w, reports, true)
}

/// The findings of some captures of a run: `header` for the first part.
pub fn findings_csv_part(w: impl Write, reports: &[CaptureReport], header: bool) -> io::Result<()> {
    write_csv(
        w,
        header.then(finding_header).as_deref(),
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .map(FindingRow::from),
    )
}

pub fn attempts_csv(w: impl Write, reports: &[CaptureReport]) -> io::Result<()> {
    attempts_csv_part(w, reports, true)
}

/// The attempts of some captures of a run: `header` for the first part.
pub fn attempts_csv_part(w: impl Write, reports: &[CaptureReport], header: bool) -> io::Result<()> {
    write_csv(
        w,
        header.then(attempt_header).as_deref(),
        reports
            .iter()
            .flat_map(|r| &r.attempts)
            .map(AttemptRow::from),
    )
}

pub fn findings_json(w: impl Write, reports: &[CaptureReport]) -> io::Result<()> {
    write_jsonl(
        w,
        "finding",
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .map(FindingRow::from),
    )
}

pub fn attempts_json(w: impl Write, reports: &[CaptureReport]) -> io::Result<()> {
    write_jsonl(
        w,
        "attempt",
        reports
            .iter()
            .flat_map(|r| &r.attempts)
            .map(AttemptRow::from),
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::report::model::{Code, Confidence, Draft, Level, Outcome, Phase, Severity};

    fn sample() -> CaptureReport {
        CaptureReport {
            capture: "a.pcap".into(),
            frames: 3,
            attempts: vec![Attempt {
                capture: "a.pcap".into(),
                attempt: "#1".into(),
                client: "198.18.0.1:50000".into(),
                server: "[2001:db8::1]:3389".into(),
                transport: "tcp".into(),
                start: 0,
                end: 1_500_000,
                packets: 3,
                bytes: 180,
                outcome: Outcome::Failed,
                failed_phase: Some(Phase::Tcp),
                verdict: "tcp.refused".into(),
                app: String::new(),
                first_frame: 1,
                last_frame: 3,
                connections: 1,
                user: "alice".into(),
                requested: "SSL|HYBRID".into(),
                fits_0x904: "no",
                ..Default::default()
            }],
            findings: vec![Finding {
                capture: "a.pcap".into(),
                attempt: "#1".into(),
                client: "198.18.0.1:50000".into(),
                server: "[2001:db8::1]:3389".into(),
                draft: Draft::new(Code::TcpRefused, Severity::Error, Phase::Tcp, 1, 0)
                    .until(2)
                    .summary("refused, \"quoted\"")
                    .cause("c")
                    .remedy("r")
                    .filter("tcp.flags.reset==1")
                    .confidence(Confidence::lowered(Level::Medium, "why")),
            }],
            error: None,
            partial: false,
            skipped: 0,
        }
    }

    #[test]
    fn findings_csv_exact() {
        let mut out = Vec::new();
        findings_csv(&mut out, &[sample()]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "capture,attempt,code,severity,phase,client,server,first_frame,last_frame,time,summary,cause,remedy,filter,confidence\n\
             a.pcap,#1,tcp.refused,error,tcp,198.18.0.1:50000,[2001:db8::1]:3389,1,2,1970-01-01T00:00:00.000000Z,\"refused, \"\"quoted\"\"\",c,r,tcp.flags.reset==1,medium: why\n"
        );
    }

    #[test]
    fn attempt_columns_are_the_public_contract() {
        let want = "capture,attempt,client,server,transport,start,end,packets,bytes,outcome,\
                    failed_phase,verdict,app,first_frame,last_frame,connections,via,gateway,legs,target,user,\
                    requested,selected,tls_version,tls_cipher,cert_subject,cert_not_after,\
                    fits_0x904,client_error,client_error_decimal,client_error_basis,\
                    client_name,client_build,channels,rdp_encryption,timeline";
        assert_eq!(attempt_header().join(","), want);
        let mut out = Vec::new();
        findings_csv(&mut out, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "capture,attempt,code,severity,phase,client,server,first_frame,last_frame,time,\
             summary,cause,remedy,filter,confidence\n"
        );
    }

    #[test]
    fn header_only_when_empty() {
        let mut out = Vec::new();
        attempts_csv(&mut out, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }

    #[test]
    fn json_lines_have_the_csv_fields() {
        let mut out = Vec::new();
        attempts_json(&mut out, &[sample()]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "attempt");
        let keys: Vec<&str> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .filter(|k| *k != "type")
            .collect();
        let mut want = attempt_header();
        want.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, want);
        assert_eq!(v["failed_phase"], "tcp");
    }
}
