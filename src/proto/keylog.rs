//! TLS key logs: the NSS key-log format (RFC 9850, the `SSLKEYLOGFILE`
//! format), from `--keylog` files and from pcapng Decryption Secrets Blocks
//! of type `TLSK`, and RSA private keys for TLS_RSA_* key exchange
//! (`--rsa-key`: PEM or DER, PKCS#1 or PKCS#8, with or without the
//! `Bag Attributes` preamble `openssl pkcs12` writes).
//!
//! A line is `<LABEL> <client_random hex> <secret hex>`; `#` starts a
//! comment; CRLF and blank lines are fine. Labels used:
//! `CLIENT_RANDOM` (48-byte master secret, TLS ≤ 1.2), `RSA` (first 8 bytes
//! of the encrypted pre-master secret, then the 48-byte pre-master secret),
//! and the TLS 1.3 traffic secrets. The other RFC 9850 labels (early data,
//! exporters) are known and not needed; any other label is counted as
//! unknown; a line that does not parse is counted as malformed. Both are
//! reported once per source, with the first such line.

use rustc_hash::FxHashMap;

/// Secrets kept per run (entries over it are counted, not kept, and the
/// count is reported): 512 Ki secrets take about 220 MiB (measured with a
/// 1.1 M-line key log: the map, and each secret boxed).
pub const MAX_SECRETS: usize = 1 << 19;
/// Longest line read (the longest valid line, a 48-byte TLS 1.3 secret, is
/// 30 + 1 + 64 + 1 + 96 characters).
pub const MAX_LINE: usize = 1024;
/// RSA keys kept per run.
pub const MAX_RSA_KEYS: usize = 64;

/// Secrets logged for one client random.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS ≤ 1.2 master secret (48 bytes).
    pub master: Option<Box<[u8]>>,
    pub client_hs: Option<Box<[u8]>>,
    pub server_hs: Option<Box<[u8]>>,
    pub client_app: Option<Box<[u8]>>,
    pub server_app: Option<Box<[u8]>>,
    /// The key source that gave them (index into [`KeyLog::sources`]).
    pub source: u16,
}

/// Lines not used, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    pub unknown_label: u64,
    pub malformed: u64,
    /// Valid lines past [`MAX_SECRETS`].
    pub over_bound: u64,
    /// The first skipped line: its number and why.
    pub first: Option<(u64, String)>,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.unknown_label + self.malformed + self.over_bound
    }
}

/// A source of keys: a `--keylog` file, a capture's DSBs, an RSA key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// "keys.txt", "capture.pcapng (Decryption Secrets Block)".
    pub name: String,
    /// Secrets lines kept (or RSA keys).
    pub entries: u64,
    pub skipped: Skipped,
}

/// The keys of a run.
#[derive(Debug, Default, Clone)]
pub struct KeyLog {
    by_random: FxHashMap<[u8; 32], Secrets>,
    /// Pre-master secrets by the first 8 bytes of their encryption.
    by_rsa: FxHashMap<[u8; 8], (Vec<u8>, u16)>,
    rsa_keys: Vec<(rsa::RsaPrivateKey, u16)>,
    /// This layer's own sources; their indexes start at `base`.
    pub sources: Vec<Source>,
    entries: usize,
    /// The keys this layer adds to (a capture's own secrets blocks over
    /// the run's key logs): looked up after this layer's, never copied.
    parent: Option<std::sync::Arc<KeyLog>>,
    /// Sources of the parent (this layer's first source index).
    base: u16,
}

/// What a line is.
enum Line {
    Blank,
    Unknown,
    Random(usize, [u8; 32], Vec<u8>),
    Rsa([u8; 8], Vec<u8>),
}

const KNOWN_UNUSED: &[&str] = &[
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "EARLY_EXPORTER_SECRET",
    "EXPORTER_SECRET",
    "ECH_SECRET",
    "ECH_CONFIG",
];

/// Index of the [`Secrets`] field a label fills.
const LABELS: &[&str] = &[
    "CLIENT_RANDOM",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
];

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Blank);
    }
    let mut it = line.split_ascii_whitespace();
    let (Some(label), Some(a), Some(b), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err("not three fields".into());
    };
    if label == "RSA" {
        let id = hex(a)
            .filter(|v| v.len() == 8)
            .ok_or("RSA: the encrypted pre-master prefix is not 16 hex digits")?;
        let pms = hex(b)
            .filter(|v| v.len() == 48)
            .ok_or("RSA: the pre-master secret is not 96 hex digits")?;
        return Ok(Line::Rsa(id.try_into().unwrap_or([0; 8]), pms));
    }
    let Some(field) = LABELS.iter().position(|l| *l == label) else {
        return if KNOWN_UNUSED.contains(&label) {
            Ok(Line::Blank)
        } else {
            Ok(Line::Unknown)
        };
    };
    let random = hex(a)
        .filter(|v| v.len() == 32)
        .ok_or("the client random is not 64 hex digits")?;
    let secret = hex(b).ok_or("the secret is not hex")?;
    let ok = if field == 0 {
        secret.len() == 48
    } else {
        (32..=64).contains(&secret.len())
    };
    if !ok {
        return Err(format!("{label}: a {}-byte secret", secret.len()));
    }
    Ok(Line::Random(
        field,
        random.try_into().unwrap_or([0; 32]),
        secret,
    ))
}

impl KeyLog {
    /// A layer over `parent`: what is added goes here, lookups fall back to
    /// the parent, and the parent is shared, not copied (a run's key log
    /// under each capture's own secrets blocks).
    pub fn layered(parent: std::sync::Arc<KeyLog>) -> KeyLog {
        KeyLog {
            base: parent.source_count().min(u16::MAX as usize) as u16,
            entries: parent.entries,
            parent: Some(parent),
            ..Default::default()
        }
    }

    /// Sources in all layers.
    pub fn source_count(&self) -> usize {
        self.base as usize + self.sources.len()
    }

    /// The source of index `i`, in whichever layer holds it.
    pub fn source_at(&self, i: u16) -> Option<&Source> {
        match (&self.parent, i.checked_sub(self.base)) {
            (_, Some(own)) => self.sources.get(own as usize),
            (Some(p), None) => p.source_at(i),
            (None, None) => None,
        }
    }

    /// Every source with its index, the parent's first.
    pub fn all_sources(&self) -> Vec<(u16, &Source)> {
        let mut v = self
            .parent
            .as_ref()
            .map(|p| p.all_sources())
            .unwrap_or_default();
        v.extend(
            self.sources
                .iter()
                .enumerate()
                .map(|(i, s)| (self.base + i as u16, s)),
        );
        v
    }

    /// True when there is nothing to decrypt with.
    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
            && self.by_rsa.is_empty()
            && self.rsa_keys.is_empty()
            && self.parent.as_ref().is_none_or(|p| p.is_empty())
    }

    /// Reads key-log text from a source named `name`; returns the source's
    /// index.
    pub fn add(&mut self, name: &str, text: &[u8]) -> u16 {
        let (src, mut s) = self.source(name);
        for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
            self.line(&mut s, src, n as u64 + 1, raw);
        }
        self.sources.push(s);
        src
    }

    /// Adds to this layer's last source when it has this name (a stream's
    /// secrets blocks, one after another), else as a new source.
    pub fn add_more(&mut self, name: &str, text: &[u8]) -> u16 {
        if self.sources.last().is_some_and(|s| s.name == name) {
            let mut s = self.sources.pop().unwrap_or_default();
            let src = self.source_count().min(u16::MAX as usize) as u16;
            for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
                self.line(&mut s, src, n as u64 + 1, raw);
            }
            self.sources.push(s);
            return src;
        }
        self.add(name, text)
    }

    /// [`KeyLog::add`] from a reader, a line at a time: memory is the
    /// secrets kept, never the file (a line over [`MAX_LINE`] bytes is
    /// skipped without being held).
    pub fn add_reader(&mut self, name: &str, mut r: impl std::io::BufRead) -> std::io::Result<u16> {
        use std::io::{BufRead, Read};
        let (src, mut s) = self.source(name);
        let mut buf = Vec::with_capacity(MAX_LINE + 1);
        let mut n = 0u64;
        loop {
            buf.clear();
            let got = (&mut r)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)?;
            if got == 0 {
                break;
            }
            n += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            } else if buf.len() > MAX_LINE {
                // The rest of an overlong line, read and dropped.
                let mut rest = 0usize;
                loop {
                    let b = r.fill_buf()?;
                    if b.is_empty() {
                        break;
                    }
                    match b.iter().position(|&c| c == b'\n') {
                        Some(p) => {
                            r.consume(p + 1);
                            rest += p;
                            break;
                        }
                        None => {
                            let l = b.len();
                            r.consume(l);
                            rest += l;
                        }
                    }
                }
                s.skipped.malformed += 1;
                s.skipped
                    .first
                    .get_or_insert((n, format!("a line of {} bytes", buf.len() + rest)));
                continue;
            }
            self.line(&mut s, src, n, &buf);
        }
        self.sources.push(s);
        Ok(src)
    }

    fn source(&self, name: &str) -> (u16, Source) {
        let src = self.source_count().min(u16::MAX as usize) as u16;
        (
            src,
            Source {
                name: name.to_string(),
                ..Default::default()
            },
        )
    }

    /// One line (`n`, 1-based) of source `src`.
    fn line(&mut self, s: &mut Source, src: u16, n: u64, raw: &[u8]) {
        let skip = |s: &mut Source, why: String, unknown: bool| {
            if unknown {
                s.skipped.unknown_label += 1;
            } else {
                s.skipped.malformed += 1;
            }
            s.skipped.first.get_or_insert((n, why));
        };
        if raw.len() > MAX_LINE {
            skip(s, format!("a line of {} bytes", raw.len()), false);
            return;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            skip(s, "not text".into(), false);
            return;
        };
        match parse_line(line) {
            Ok(Line::Blank) => {}
            Ok(Line::Unknown) => {
                let label = line.split_ascii_whitespace().next().unwrap_or("");
                let label: String = label.chars().take(40).collect();
                skip(s, format!("unknown label {label}"), true);
            }
            Err(e) => skip(s, e, false),
            Ok(_) if self.entries >= MAX_SECRETS => {
                s.skipped.over_bound += 1;
                s.skipped
                    .first
                    .get_or_insert((n, format!("over {MAX_SECRETS} secrets")));
            }
            Ok(Line::Random(field, random, secret)) => {
                self.entries += 1;
                s.entries += 1;
                let e = self.by_random.entry(random).or_default();
                e.source = src;
                let slot = match field {
                    0 => &mut e.master,
                    1 => &mut e.client_hs,
                    2 => &mut e.server_hs,
                    3 => &mut e.client_app,
                    _ => &mut e.server_app,
                };
                *slot = Some(secret.into_boxed_slice());
            }
            Ok(Line::Rsa(id, pms)) => {
                self.entries += 1;
                s.entries += 1;
                self.by_rsa.insert(id, (pms, src));
            }
        }
    }

    /// Reads an RSA private key (PEM or DER, PKCS#1 or PKCS#8).
    pub fn add_rsa(&mut self, name: &str, bytes: &[u8]) -> Result<u16, String> {
        let key = parse_rsa_key(bytes)?;
        if self.rsa_keys.len() >= MAX_RSA_KEYS {
            return Err(format!("more than {MAX_RSA_KEYS} RSA keys"));
        }
        let src = self.source_count().min(u16::MAX as usize) as u16;
        self.rsa_keys.push((key, src));
        self.sources.push(Source {
            name: name.to_string(),
            entries: 1,
            skipped: Skipped::default(),
        });
        Ok(src)
    }

    /// RSA key exchange needs the handshake transcript (for the extended
    /// master secret): kept only when there is an RSA key or `RSA` line.
    pub fn wants_transcript(&self) -> bool {
        !self.rsa_keys.is_empty()
            || !self.by_rsa.is_empty()
            || self.parent.as_ref().is_some_and(|p| p.wants_transcript())
    }

    pub fn by_random(&self, random: &[u8; 32]) -> Option<&Secrets> {
        self.by_random
            .get(random)
            .or_else(|| self.parent.as_ref()?.by_random(random))
    }

    /// The pre-master secret for an encrypted one: from an `RSA` key-log
    /// line, else decrypted with an RSA key of the right size.
    pub fn pre_master(&self, encrypted: &[u8]) -> Option<(Vec<u8>, u16)> {
        if let Some(id) = encrypted.get(..8).and_then(|p| <[u8; 8]>::try_from(p).ok()) {
            if let Some((pms, src)) = self.by_rsa.get(&id) {
                return Some((pms.clone(), *src));
            }
        }
        use rsa::traits::PublicKeyParts;
        for (k, src) in &self.rsa_keys {
            if k.size() != encrypted.len() {
                continue;
            }
            if let Ok(pms) = k.decrypt(rsa::Pkcs1v15Encrypt, encrypted) {
                if pms.len() == 48 {
                    return Some((pms, *src));
                }
            }
        }
        self.parent.as_ref()?.pre_master(encrypted)
    }

    /// Every client random with its source (for `tls.keys_unused`).
    pub fn randoms(&self) -> Box<dyn Iterator<Item = (&[u8; 32], u16)> + '_> {
        let own = self.by_random.iter().map(|(r, s)| (r, s.source));
        match &self.parent {
            Some(p) => Box::new(own.chain(p.randoms())),
            None => Box::new(own),
        }
    }

    /// Sources of `RSA` lines and RSA keys.
    pub fn rsa_sources(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.by_rsa.values().map(|(_, s)| *s).collect();
        v.extend(self.rsa_keys.iter().map(|(_, s)| *s));
        if let Some(p) = &self.parent {
            v.extend(p.rsa_sources());
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// An RSA private key from PEM (after any preamble) or DER; PKCS#1
/// (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
pub fn parse_rsa_key(bytes: &[u8]) -> Result<rsa::RsaPrivateKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    if let Some(start) = find(bytes, b"-----BEGIN ") {
        let text = std::str::from_utf8(&bytes[start..]).map_err(|_| "the PEM is not text")?;
        // One block: up to its END line.
        let end = text
            .find("-----END ")
            .and_then(|e| text[e..].find("\n").map(|n| e + n + 1).or(Some(text.len())))
            .unwrap_or(text.len());
        let pem = &text[..end];
        if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY") {
            return Err("an encrypted private key (decrypt it with openssl first)".into());
        }
        return rsa::RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| format!("not an RSA private key in PEM ({e})"));
    }
    rsa::RsaPrivateKey::from_pkcs1_der(bytes)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_der(bytes))
        .map_err(|_| "neither a PEM nor a DER RSA private key".to_string())
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod test {
    use super::*;

    const R: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    fn master() -> String {
        "ab".repeat(48)
    }

    #[test]
    fn lines_comments_crlf_and_labels() {
        let text = format!(
            "# comment\r\n\r\nCLIENT_RANDOM {R} {}\r\nSERVER_TRAFFIC_SECRET_0 {R} {}\nEXPORTER_SECRET {R} {}\nFOO {R} 00\n",
            master(),
            "cd".repeat(32),
            "00".repeat(32)
        );
        let mut k = KeyLog::default();
        let src = k.add("keys.txt", text.as_bytes());
        let r: [u8; 32] = hex(R).unwrap().try_into().unwrap();
        let s = k.by_random(&r).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.server_app.as_deref(), Some(&[0xcd; 32][..]));
        assert_eq!(s.source, src);
        let so = &k.sources[0];
        assert_eq!(so.entries, 2);
        assert_eq!(so.skipped.unknown_label, 1);
        assert_eq!(so.skipped.first, Some((6, "unknown label FOO".into())));
    }

    #[test]
    fn one_digit_short_or_changed_is_malformed() {
        let m = master();
        let short = format!("CLIENT_RANDOM {} {m}\n", &R[..63]);
        let bad = format!("CLIENT_RANDOM {}g {m}\n", &R[..63]);
        let secret_short = format!("CLIENT_RANDOM {R} {}\n", &m[..94]);
        for t in [short, bad, secret_short, "CLIENT_RANDOM x\n".into()] {
            let mut k = KeyLog::default();
            k.add("k", t.as_bytes());
            assert!(k.is_empty(), "{t}");
            assert_eq!(k.sources[0].skipped.malformed, 1, "{t}");
        }
    }

    #[test]
    fn rsa_lines_match_by_prefix() {
        let t = format!("RSA 0102030405060708 {}\n", "11".repeat(48));
        let mut k = KeyLog::default();
        k.add("k", t.as_bytes());
        let mut enc = vec![1, 2, 3, 4, 5, 6, 7, 8];
        enc.extend([0; 248]);
        assert_eq!(k.pre_master(&enc).unwrap().0, vec![0x11; 48]);
        enc[7] = 9;
        assert!(k.pre_master(&enc).is_none());
    }

    #[test]
    fn garbage_and_long_lines_are_bounded() {
        let mut t = vec![b'x'; 5000];
        t.extend(b"\n\xff\xfe\n");
        let mut k = KeyLog::default();
        k.add("k", &t);
        assert_eq!(k.sources[0].skipped.malformed, 2);
        assert!(k.is_empty());
    }

    #[test]
    fn rsa_key_garbage_is_an_error() {
        assert!(parse_rsa_key(
            b"Bag Attributes\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        assert!(parse_rsa_key(&[0x30, 0x82, 0x01]).is_err());
        assert!(parse_rsa_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
            .unwrap_err()
            .contains("encrypted"));
    }

    #[test]
    fn a_reader_gives_what_the_bytes_give_and_skips_long_lines_unheld() {
        let good = format!("CLIENT_RANDOM {} {}", "ab".repeat(32), "cd".repeat(48));
        let long = "x".repeat(3 * MAX_LINE);
        let text = format!("# c\r\n{good}\r\n{long}\nBOGUS a b\n{good}");
        let mut a = KeyLog::default();
        a.add("a", text.as_bytes());
        let mut b = KeyLog::default();
        b.add_reader("a", std::io::BufReader::with_capacity(64, text.as_bytes()))
            .unwrap();
        assert_eq!(a.sources, b.sources);
        assert_eq!(b.sources[0].entries, 2);
        assert_eq!(b.sources[0].skipped.malformed, 1);
        assert_eq!(b.sources[0].skipped.unknown_label, 1);
        assert_eq!(
            b.sources[0].skipped.first,
            Some((3, format!("a line of {} bytes", 3 * MAX_LINE)))
        );
        assert!(b.by_random(&[0xab; 32]).is_some());
    }

    #[test]
    fn a_layer_adds_to_its_parent_without_copying_it() {
        let mut run = KeyLog::default();
        run.add(
            "run.keys",
            format!("CLIENT_RANDOM {} {}", "ab".repeat(32), "cd".repeat(48)).as_bytes(),
        );
        let run = std::sync::Arc::new(run);
        let mut file = KeyLog::layered(run.clone());
        let src = file.add(
            "capture (Decryption Secrets Block)",
            format!("CLIENT_RANDOM {} {}", "01".repeat(32), "02".repeat(48)).as_bytes(),
        );
        assert_eq!((src, file.source_count()), (1, 2));
        assert_eq!(file.by_random(&[0xab; 32]).unwrap().source, 0);
        assert_eq!(file.by_random(&[0x01; 32]).unwrap().source, 1);
        assert_eq!(file.source_at(0).unwrap().name, "run.keys");
        assert_eq!(
            file.source_at(1).unwrap().name,
            "capture (Decryption Secrets Block)"
        );
        assert!(file.source_at(2).is_none());
        assert_eq!(file.randoms().count(), 2);
        assert_eq!(
            file.all_sources().iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
        // The parent is shared, not copied.
        assert_eq!(std::sync::Arc::strong_count(&run), 2);
    }
}
