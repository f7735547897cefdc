//! `--saw CODE[/EXT]`: which attempts' evidence gives the dialog the user
//! saw. Attempts are ranked as they stream past; the best few are kept.

use super::model::{Attempt, ClientError, Outcome};
use std::io::{self, Write};

/// The attempts listed at most per rank list (the rest are counted).
pub const LISTED: usize = 10;

/// How well an attempt's dialog fits what the user saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// Same code, the extended code differs (both known).
    CodeOnly,
    /// Same code; the extended code is known on one side only.
    Code,
    /// Same code and extended code.
    Exact,
}

/// How `got` fits what the user `saw`.
pub fn fit(saw: ClientError, got: ClientError) -> Option<Fit> {
    if saw.code != got.code {
        return None;
    }
    Some(match (saw.ext, got.ext) {
        (Some(a), Some(b)) if a == b => Fit::Exact,
        (None, None) => Fit::Exact,
        (Some(_), Some(_)) => Fit::CodeOnly,
        _ => Fit::Code,
    })
}

#[derive(Debug, Clone)]
struct Entry {
    fit: Option<Fit>,
    seq: u64,
    line: String,
}

/// The ranking, fed one attempt at a time in report order.
#[derive(Debug)]
pub struct Fits {
    saw: ClientError,
    seq: u64,
    /// Counts by fit: CodeOnly, Code, Exact.
    counts: [u64; 3],
    /// Failed attempts whose capture names no dialog.
    silent: u64,
    best: Vec<Entry>,
    unnamed: Vec<Entry>,
}

impl Fits {
    pub fn new(saw: ClientError) -> Fits {
        Fits {
            saw,
            seq: 0,
            counts: [0; 3],
            silent: 0,
            best: Vec::new(),
            unnamed: Vec::new(),
        }
    }

    pub fn add(&mut self, a: &Attempt) {
        self.seq += 1;
        let line = |e: &str| {
            format!(
                "{} {}  {} → {}  {}{}",
                a.capture,
                a.attempt,
                a.client,
                a.server,
                if a.verdict.is_empty() {
                    a.outcome.name()
                } else {
                    &a.verdict
                },
                e
            )
        };
        match a.client_error {
            Some(got) => {
                let Some(fit) = fit(self.saw, got) else {
                    return;
                };
                self.counts[fit as usize] += 1;
                let e = Entry {
                    fit: Some(fit),
                    seq: self.seq,
                    line: line(&format!("  {} ({})", got.hex(), got.basis())),
                };
                keep(&mut self.best, e, |e| (std::cmp::Reverse(e.fit), e.seq));
            }
            None if a.outcome == Outcome::Failed => {
                self.silent += 1;
                let e = Entry {
                    fit: None,
                    seq: self.seq,
                    line: line(""),
                };
                keep(&mut self.unnamed, e, |e| (std::cmp::Reverse(e.fit), e.seq));
            }
            None => {}
        }
    }

    /// Attempts whose evidence gives the dialog (any fit).
    pub fn fitting(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The section printed after the report.
    pub fn write(&self, mut w: impl Write) -> io::Result<()> {
        let s = self.saw;
        writeln!(w, "What you saw: {} ({})", s.hex(), s.decimal())?;
        let [code_only, code, exact] = self.counts;
        if self.fitting() == 0 {
            writeln!(w, "  no attempt's evidence gives this dialog.")?;
        } else {
            writeln!(
                w,
                "  {exact} attempt{} fit{} exactly, {code} by the error code alone (the extended \
                 code not read from the capture), {code_only} with another extended code:",
                if exact == 1 { "" } else { "s" },
                if exact == 1 { "s" } else { "" },
            )?;
            for e in &self.best {
                let tag = match e.fit {
                    Some(Fit::Exact) => "exact",
                    Some(Fit::Code) => "code ",
                    _ => "other",
                };
                writeln!(w, "  {tag}  {}", e.line)?;
            }
            more(&mut w, self.fitting(), self.best.len())?;
        }
        if self.silent > 0 {
            writeln!(
                w,
                "  {} failed attempt{} the capture does not name a dialog for (it may be one of them):",
                self.silent,
                if self.silent == 1 { "" } else { "s" }
            )?;
            for e in &self.unnamed {
                writeln!(w, "         {}", e.line)?;
            }
            more(&mut w, self.silent, self.unnamed.len())?;
        }
        Ok(())
    }
}

fn more(mut w: impl Write, total: u64, shown: usize) -> io::Result<()> {
    if total > shown as u64 {
        writeln!(w, "         … and {} more", total - shown as u64)?;
    }
    Ok(())
}

/// Keeps the `LISTED` smallest entries by `key`.
fn keep<K: Ord>(v: &mut Vec<Entry>, e: Entry, key: impl Fn(&Entry) -> K) {
    let at = v.partition_point(|x| key(x) <= key(&e));
    if at < LISTED {
        v.insert(at, e);
        v.truncate(LISTED);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn att(n: u32, e: Option<ClientError>, outcome: Outcome) -> Attempt {
        Attempt {
            capture: "c.pcap".into(),
            attempt: format!("#{n}"),
            outcome,
            client_error: e,
            verdict: "v".into(),
            ..Default::default()
        }
    }

    #[test]
    fn exact_fits_rank_before_code_fits_and_the_list_is_bounded() {
        let saw = ClientError::parse("0x904/0x7").unwrap();
        let mut f = Fits::new(saw);
        let plain = ClientError::documented(0x904);
        let denied = plain.with_ext(7);
        for n in 0..30 {
            f.add(&att(n, Some(plain), Outcome::Failed));
        }
        f.add(&att(99, Some(denied), Outcome::Failed));
        f.add(&att(
            100,
            Some(ClientError::documented(0x204)),
            Outcome::Failed,
        ));
        f.add(&att(101, None, Outcome::Failed));
        f.add(&att(102, None, Outcome::Connected));
        assert_eq!(f.fitting(), 31);
        assert_eq!(f.silent, 1);
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "What you saw: 0x904/0x7 (2308/7)");
        assert!(lines[2].starts_with("  exact  c.pcap #99 "), "{s}");
        assert!(lines[3].starts_with("  code   c.pcap #0 "), "{s}");
        assert!(s.contains("… and 21 more"), "{s}");
        assert!(s.contains("1 failed attempt the capture"), "{s}");
        assert!(!s.contains("#100") && !s.contains("#102"), "{s}");
    }

    #[test]
    fn nothing_fitting_is_said() {
        let mut f = Fits::new(ClientError::parse("2308").unwrap());
        f.add(&att(
            1,
            Some(ClientError::documented(0x204)),
            Outcome::Failed,
        ));
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("no attempt's evidence gives this dialog"));
    }

    #[test]
    fn codes_parse_in_hex_and_decimal() {
        let p = |s| ClientError::parse(s).map(|e| (e.code, e.ext));
        assert_eq!(p("0x904/0x7"), Ok((0x904, Some(7))));
        assert_eq!(p("2308/7"), Ok((0x904, Some(7))));
        assert_eq!(p("0x0300001B"), Ok((0x0300_001B, None)));
        assert_eq!(p(" 0X204 "), Ok((0x204, None)));
        assert!(p("0x9g4").is_err());
        assert!(p("").is_err());
        assert!(p("0x904/").is_err());
    }
}
