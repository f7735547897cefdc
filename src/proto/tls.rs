//! TLS records and the plaintext handshake (RFC 5246, RFC 8446), on
//! tls-parser for the handshake messages and x509-parser for certificates.
//! Records are framed here (tls-parser wants whole records and cannot say
//! "need more"); only handshake bodies are buffered, application data is
//! counted from its header and skipped.

use super::error::{Error, Layer};
use crate::capture::Mark;
use crate::finding::Dir;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

pub const HANDSHAKE: u8 = 22;
pub const ALERT: u8 = 21;
pub const CCS: u8 = 20;
pub const APP_DATA: u8 = 23;

/// Largest record a conforming peer sends (2^14 + 2048, RFC 5246 6.2.3).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message kept for parsing (certificate chains).
pub const MAX_HANDSHAKE: usize = 256 << 10;
/// Encrypted records remembered in order after the handshake.
pub const MAX_RECORDS: usize = 24;
/// The last records remembered per side (the end of the session).
pub const TAIL: usize = 4;
/// Smallest record that fits a Demand Active or Confirm Active PDU: their
/// capability sets make them the largest PDUs of the connection sequence
/// (PROTOCOLS.md §8: 496 and 635 bytes from Windows; FreeRDP and xrdp
/// send 300 to 600 bytes of capabilities).
pub const CAPS_RECORD: u16 = 300;
/// Server records before a Demand Active: the MCS Connect Response,
/// Attach User Confirm, at least two Channel Join Confirms and licensing
/// (more with CredSSP). A large server record earlier is CredSSP's.
pub const RECORDS_BEFORE_DEMAND: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// Versions offered (supported_versions, else the hello's version).
    pub versions: Vec<u16>,
    pub ciphers: usize,
    pub sni: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerHello {
    pub version: u16,
    pub cipher: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub cn: Option<String>,
    /// DNS names and IP addresses of the subjectAltName.
    pub san: Vec<String>,
    /// Validity, seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// "RSA 2048", "EC 256".
    pub key: String,
    pub self_signed: bool,
    /// The certificate did not decode: what the X.509 parser said. Its
    /// other fields are then empty, not facts.
    pub malformed: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    pub dir: Dir,
    pub at: Mark,
    pub level: u8,
    pub desc: u8,
    /// Sent after ChangeCipherSpec: type visible, content not.
    pub encrypted: bool,
    /// An encrypted alert whose level and description were decrypted.
    pub named: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub dir: Dir,
    pub len: u16,
    pub at: Mark,
}

/// Totals of encrypted application records one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub records: u64,
    pub bytes: u64,
    pub first: Option<Mark>,
    pub last: Option<Mark>,
}

/// What the order and sizes of the encrypted records say of the RDP
/// connection sequence (PROTOCOLS.md §8), tracked as records pass: the
/// Demand Active-sized server record (at least [`CAPS_RECORD`] bytes,
/// after [`RECORDS_BEFORE_DEMAND`] other server records), the client's
/// Confirm Active-sized answer, and how many records went each way after
/// it. Shapes, not contents: the detectors say so in their confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sequence {
    pub demand: Option<Rec>,
    pub confirm: Option<Rec>,
    /// Records each way after the Confirm Active.
    pub after: [u64; 2],
}

impl Sequence {
    fn record(&mut self, r: Rec, server_before: u64) {
        if self.confirm.is_some() {
            self.after[r.dir] += 1;
        } else if r.len >= CAPS_RECORD {
            match r.dir {
                Dir::Server if server_before >= RECORDS_BEFORE_DEMAND => self.demand = Some(r),
                Dir::Client if self.demand.is_some() => self.confirm = Some(r),
                _ => {}
            }
        }
    }
}

/// What the TLS exchange of one connection showed.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub client_hello: Option<(ClientHello, Mark)>,
    pub server_hello: Option<(ServerHello, Mark)>,
    pub certs: Option<(Vec<CertInfo>, Mark)>,
    pub cert_request: Option<Mark>,
    pub ccs: [Option<Mark>; 2],
    /// The handshake completed (both Finished sent, as far as visible).
    pub done: Option<Mark>,
    pub alerts: Vec<Alert>,
    /// Encrypted application records after the handshake, per direction.
    pub app: [Totals; 2],
    /// The first [`MAX_RECORDS`] of them, in stream order per direction.
    pub records: Vec<Rec>,
    /// The last [`TAIL`] records of each side (newest last), to the end of
    /// the stream (past the depth, from the record headers).
    pub tail: [Vec<Rec>; 2],
    pub sequence: Sequence,
    /// A handshake message over [`MAX_HANDSHAKE`] was skipped.
    pub bound_hit: bool,
    /// The hellos' randoms (the key log is keyed by the client's).
    pub client_random: Option<[u8; 32]>,
    pub server_random: Option<[u8; 32]>,
    /// Both hellos carried extended_master_secret / encrypt_then_mac.
    pub ems: bool,
    pub etm: bool,
    /// TLS_RSA_*: the encrypted pre-master secret of the ClientKeyExchange.
    pub pre_master_enc: Option<Vec<u8>>,
    /// With [`Tls::keep_transcript`]: the handshake messages up to the
    /// ClientKeyExchange, for the extended master secret of an RSA key
    /// exchange (bounded by [`MAX_HANDSHAKE`]).
    pub session_hash: Option<Vec<u8>>,
    pub keep_transcript: bool,
    offered_ems: bool,
    offered_etm: bool,
    transcript_done: bool,
    hs: [Vec<u8>; 2],
    hs_dead: [bool; 2],
}

impl Tls {
    /// Drops the handshake buffers once the flow is over.
    pub fn finish(&mut self) {
        self.hs = Default::default();
        self.records.shrink_to_fit();
        self.session_hash = None;
        self.pre_master_enc = None;
    }

    pub fn tls13(&self) -> bool {
        self.server_hello.is_some_and(|(h, _)| h.version == 0x0304)
    }

    /// Does a record of `len` bytes carry one of the `plain` sizes under
    /// the connection's suite ([`sealed_len`])? `any` when the suite (or
    /// the ServerHello) is unknown.
    pub fn sealed_fits(
        &self,
        plain: std::ops::RangeInclusive<usize>,
        any: &std::ops::RangeInclusive<u16>,
        len: u16,
    ) -> bool {
        match self
            .server_hello
            .filter(|(h, _)| sealed_len(*plain.start(), h.version, h.cipher).is_some())
        {
            Some((h, _)) => plain
                .into_iter()
                .any(|p| sealed_len(p, h.version, h.cipher) == Some(len as usize)),
            None => any.contains(&len),
        }
    }

    /// One record. `body` is `None` for records skipped unread (encrypted).
    /// Returns a description when the content is invalid.
    pub fn record(
        &mut self,
        dir: Dir,
        typ: u8,
        len: usize,
        body: Option<&[u8]>,
        at: Mark,
    ) -> Result<(), String> {
        let encrypted = self.ccs[dir].is_some();
        match typ {
            CCS => {
                if self.ccs[dir].is_none() {
                    self.ccs[dir] = Some(at);
                }
                if !self.tls13() && self.ccs[0].is_some() && self.ccs[1].is_some() {
                    self.done.get_or_insert(at);
                }
            }
            ALERT => {
                let b = body.unwrap_or_default();
                if self.alerts.len() < 8 {
                    let (level, desc, enc) = if !encrypted && b.len() == 2 {
                        (b[0], b[1], false)
                    } else {
                        (0, 0, true)
                    };
                    if !enc && !(1..=2).contains(&level) {
                        return Err(format!("TLS alert with level {level}"));
                    }
                    self.alerts.push(Alert {
                        dir,
                        at,
                        level,
                        desc,
                        encrypted: enc,
                        named: false,
                    });
                }
            }
            HANDSHAKE if !encrypted => {
                if let Some(b) = body {
                    return self.handshake_bytes(dir, b, at);
                }
            }
            // An encrypted handshake message (Finished, renegotiation).
            HANDSHAKE => {}
            APP_DATA => {
                // TLS 1.3: the client's first encrypted record after the
                // ServerHello carries its Finished.
                if self.done.is_none() {
                    if self.tls13() && dir == Dir::Client {
                        self.done = Some(at);
                    }
                    return Ok(());
                }
                let before = self.app[Dir::Server].records;
                let t = &mut self.app[dir];
                t.records += 1;
                t.bytes += len as u64;
                t.first.get_or_insert(at);
                t.last = Some(at);
                let r = Rec {
                    dir,
                    len: len.min(u16::MAX as usize) as u16,
                    at,
                };
                if self.records.len() < MAX_RECORDS {
                    self.records.push(r);
                }
                let tail = &mut self.tail[dir];
                if tail.len() == TAIL {
                    tail.remove(0);
                }
                tail.push(r);
                self.sequence.record(r, before);
            }
            _ => {}
        }
        Ok(())
    }

    /// Handshake messages of a decrypted record (TLS 1.3's encrypted
    /// flight: EncryptedExtensions, Certificate, …).
    pub fn decrypted_handshake(&mut self, dir: Dir, b: &[u8], at: Mark) -> Result<(), String> {
        self.handshake_bytes(dir, b, at)
    }

    /// A decrypted alert: names the encrypted alert record of `at`, or
    /// (TLS 1.3, where alerts travel as application data) adds it.
    pub fn decrypted_alert(&mut self, dir: Dir, b: &[u8], at: Mark) {
        let [level, desc] = [
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ];
        if let Some(a) = self
            .alerts
            .iter_mut()
            .find(|a| a.dir == dir && a.at == at && a.encrypted && !a.named)
        {
            a.level = level;
            a.desc = desc;
            a.named = true;
        } else if self.alerts.len() < 8 {
            self.alerts.push(Alert {
                dir,
                at,
                level,
                desc,
                encrypted: true,
                named: true,
            });
        }
    }

    fn handshake_bytes(&mut self, dir: Dir, b: &[u8], at: Mark) -> Result<(), String> {
        if self.hs_dead[dir] {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.hs[dir]);
        buf.extend_from_slice(b);
        let mut off = 0;
        let mut res = Ok(());
        while buf.len() - off >= 4 {
            let m = &buf[off..];
            let len = u32::from_be_bytes([0, m[1], m[2], m[3]]) as usize;
            if len > MAX_HANDSHAKE {
                self.bound_hit = true;
                self.hs_dead[dir] = true;
                break;
            }
            if m.len() < 4 + len {
                break;
            }
            if let Err(e) = self.message(dir, &m[..4 + len], at) {
                res = Err(e);
                self.hs_dead[dir] = true;
                break;
            }
            off += 4 + len;
        }
        buf.drain(..off);
        if !self.hs_dead[dir] {
            self.hs[dir] = buf;
        }
        res
    }

    fn message(&mut self, dir: Dir, m: &[u8], at: Mark) -> Result<(), String> {
        let typ = m[0];
        if self.keep_transcript && !self.transcript_done {
            let t = self.session_hash.get_or_insert_with(Vec::new);
            if t.len() + m.len() <= MAX_HANDSHAKE {
                t.extend_from_slice(m);
            } else {
                self.session_hash = None;
                self.transcript_done = true;
            }
        }
        if typ == 16 && dir == Dir::Client {
            self.transcript_done = true;
            // RSA: a 2-byte length, then the encrypted pre-master secret
            // (RFC 5246 §7.4.7.1); kept for the key lookup, 1 KiB at most.
            let rsa = self
                .server_hello
                .and_then(|(h, _)| tls_parser::TlsCipherSuite::from_id(h.cipher))
                .is_some_and(|c| c.kx == tls_parser::TlsCipherKx::Rsa);
            if rsa && m.len() >= 6 && m.len() <= 1024 {
                let n = u16::from_be_bytes([m[4], m[5]]) as usize;
                let body = &m[6..];
                self.pre_master_enc = Some(if n == body.len() { body } else { &m[4..] }.to_vec());
            }
            return Ok(());
        }
        if typ == 11 && self.tls13() {
            if self.certs.is_none() && dir == Dir::Server {
                let ders = super::tls_crypt::tls13_certificates(&m[4..], 8)
                    .ok_or("undecodable TLS 1.3 Certificate message")?;
                self.certs = Some((ders.into_iter().map(cert_info).collect(), at));
            }
            return Ok(());
        }
        let parsed = tls_parser::parse_tls_message_handshake(m);
        let msg = match parsed {
            Ok((_, TlsMessage::Handshake(h))) => h,
            Ok(_) => return Ok(()),
            Err(_) => {
                return match typ {
                    1 | 2 | 11 => Err(format!("undecodable TLS handshake message type {typ}")),
                    _ => Ok(()),
                }
            }
        };
        match msg {
            TlsMessageHandshake::ClientHello(ch) if self.client_hello.is_none() => {
                self.client_random = ch.random.try_into().ok();
                let mut h = ClientHello {
                    versions: vec![ch.version.0],
                    ciphers: ch.ciphers.len(),
                    sni: None,
                };
                if let Some(ext) = ch.ext {
                    if let Ok((_, exts)) = tls_parser::parse_tls_client_hello_extensions(ext) {
                        for e in exts {
                            match e {
                                TlsExtension::SNI(names) => {
                                    h.sni = names
                                        .first()
                                        .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
                                }
                                TlsExtension::ExtendedMasterSecret => self.offered_ems = true,
                                TlsExtension::EncryptThenMac => self.offered_etm = true,
                                TlsExtension::SupportedVersions(v) => {
                                    let v: Vec<u16> = v
                                        .iter()
                                        .map(|x| x.0)
                                        .filter(|x| x & 0x0F0F != 0x0A0A)
                                        .collect();
                                    if !v.is_empty() {
                                        h.versions = v;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                self.client_hello = Some((h, at));
            }
            TlsMessageHandshake::ServerHello(sh) if self.server_hello.is_none() => {
                self.server_random = sh.random.try_into().ok();
                let mut h = ServerHello {
                    version: sh.version.0,
                    cipher: sh.cipher.0,
                };
                if let Some(ext) = sh.ext {
                    if let Ok((_, exts)) = tls_parser::parse_tls_server_hello_extensions(ext) {
                        for e in exts {
                            match e {
                                TlsExtension::SupportedVersions(v) => {
                                    if let Some(v) = v.first() {
                                        h.version = v.0;
                                    }
                                }
                                TlsExtension::ExtendedMasterSecret => self.ems = self.offered_ems,
                                // tls-parser 0.12.2 reads a ServerHello's
                                // type 21 (padding) as encrypt_then_mac and
                                // leaves the real one (22, RFC 7366) unknown:
                                // the type number decides here.
                                TlsExtension::Unknown(t, _) if t.0 == EXT_ENCRYPT_THEN_MAC => {
                                    self.etm = self.offered_etm
                                }
                                _ => {}
                            }
                        }
                    }
                }
                self.server_hello = Some((h, at));
            }
            TlsMessageHandshake::Certificate(c) if self.certs.is_none() && dir == Dir::Server => {
                let infos = c
                    .cert_chain
                    .iter()
                    .take(8)
                    .map(|r| cert_info(r.data))
                    .collect();
                self.certs = Some((infos, at));
            }
            TlsMessageHandshake::CertificateRequest(_) => {
                self.cert_request.get_or_insert(at);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Certificates decoded recently on this thread: connections to one server
/// present the same one again and again, and decoding is the costliest
/// step of a TLS handshake here.
const CERT_CACHE: usize = 32;

thread_local! {
    static CERTS: std::cell::RefCell<Vec<(Vec<u8>, CertInfo)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Certificate facts; a certificate that does not decode keeps its
/// subject as "(undecodable certificate)" and says why in `malformed`.
pub fn cert_info(der: &[u8]) -> CertInfo {
    if let Some(c) = CERTS.with(|c| {
        c.borrow()
            .iter()
            .find(|(d, _)| d.as_slice() == der)
            .map(|(_, i)| i.clone())
    }) {
        return c;
    }
    let info = decode_cert(der);
    CERTS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() == CERT_CACHE {
            c.remove(0);
        }
        c.push((der.to_vec(), info.clone()));
    });
    info
}

fn decode_cert(der: &[u8]) -> CertInfo {
    use x509_parser::extensions::GeneralName;
    use x509_parser::public_key::PublicKey;
    let c = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c,
        Err(e) => {
            return CertInfo {
                subject: "(undecodable certificate)".into(),
                malformed: Some(format!("{e} ({} bytes)", der.len())),
                ..Default::default()
            };
        }
    };
    // Names may hold control characters; a report line must not.
    let clean = |s: String| s.replace(|c: char| c.is_control(), " ").trim().to_string();
    let subject = clean(c.subject().to_string());
    let issuer = clean(c.issuer().to_string());
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string);
    let mut san = Vec::new();
    if let Ok(Some(ext)) = c.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => san.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                    16 => {
                        let a: [u8; 16] = (*ip).try_into().unwrap_or([0; 16]);
                        san.push(std::net::Ipv6Addr::from(a).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let key = match c.public_key().parsed() {
        Ok(PublicKey::RSA(r)) => format!("RSA {}", r.key_size()),
        Ok(PublicKey::EC(e)) => format!("EC {}", e.key_size()),
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        Ok(_) => "other".into(),
        Err(_) => "unknown".into(),
    };
    CertInfo {
        self_signed: subject == issuer,
        subject,
        issuer,
        cn,
        san,
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        key,
        malformed: None,
    }
}

/// "TLS 1.2", "SSL 3.0", "0x7f12".
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0x7f00..=0x7fff => format!("TLS 1.3 draft {}", v & 0xff),
        _ => format!("0x{v:04x}"),
    }
}

/// IANA cipher suite name, or the number.
pub fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id)
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| format!("0x{id:04x}"))
}

/// The length of the TLS record that carries `plain` bytes of application
/// data under a negotiated version and suite (the header's length field),
/// with the minimal padding Schannel and OpenSSL use; `None` for a suite
/// this build does not know.
/// - TLS 1.3: plaintext + the content-type byte + a 16-byte tag (8 for
///   CCM_8), RFC 8446 §5.2 (no record padding).
/// - TLS 1.2 AES-GCM / AES-CCM: an 8-byte explicit nonce + plaintext + a
///   16-byte tag (8 for CCM_8), RFC 5288 §3 / RFC 6655 §3. ChaCha20-Poly1305
///   has no explicit nonce: plaintext + 16 (RFC 7905 §2).
/// - CBC: plaintext + the MAC, padded with at least the padding-length
///   byte to a whole block; from TLS 1.1 on an explicit IV of one block
///   comes first (RFC 5246 §6.2.3.2, RFC 4346).
/// - Stream (RC4) and NULL ciphers: plaintext + the MAC.
pub fn sealed_len(plain: usize, version: u16, cipher: u16) -> Option<usize> {
    use tls_parser::{TlsCipherEnc as E, TlsCipherEncMode as M, TlsCipherMac as Mac};
    let c = tls_parser::TlsCipherSuite::from_id(cipher)?;
    let tag = if c.name.contains("CCM_8") { 8 } else { 16 };
    if version == 0x0304 || (0x7f00..=0x7fff).contains(&version) {
        return Some(plain + 1 + tag);
    }
    let mac = match c.mac {
        Mac::Null => 0,
        Mac::HmacMd5 => 16,
        Mac::HmacSha1 => 20,
        Mac::HmacSha256 => 32,
        Mac::HmacSha384 => 48,
        Mac::HmacSha512 => 64,
        Mac::Aead => 0,
    };
    Some(match (c.enc, c.enc_mode) {
        (E::Chacha20_Poly1305, _) => plain + 16,
        (_, M::Gcm | M::Ccm) => 8 + plain + tag,
        (_, M::Cbc) => {
            let block = match c.enc {
                E::Des | E::TripleDes | E::Idea | E::Rc2 => 8,
                _ => 16,
            };
            let iv = if version >= 0x0302 { block } else { 0 };
            iv + ((plain + mac) / block + 1) * block
        }
        (E::Rc4 | E::Null, _) | (_, M::Null) => plain + mac,
    })
}

/// Alert descriptions (RFC 8446 §6, RFC 5246 §7.2, the IANA registry).
pub const ALERTS: &[(u8, &str)] = &[
    (0, "close_notify"),
    (10, "unexpected_message"),
    (20, "bad_record_mac"),
    (21, "decryption_failed"),
    (22, "record_overflow"),
    (30, "decompression_failure"),
    (40, "handshake_failure"),
    (41, "no_certificate"),
    (42, "bad_certificate"),
    (43, "unsupported_certificate"),
    (44, "certificate_revoked"),
    (45, "certificate_expired"),
    (46, "certificate_unknown"),
    (47, "illegal_parameter"),
    (48, "unknown_ca"),
    (49, "access_denied"),
    (50, "decode_error"),
    (51, "decrypt_error"),
    (60, "export_restriction"),
    (70, "protocol_version"),
    (71, "insufficient_security"),
    (80, "internal_error"),
    (86, "inappropriate_fallback"),
    (90, "user_canceled"),
    (100, "no_renegotiation"),
    (109, "missing_extension"),
    (110, "unsupported_extension"),
    (111, "certificate_unobtainable"),
    (112, "unrecognized_name"),
    (113, "bad_certificate_status_response"),
    (114, "bad_certificate_hash_value"),
    (115, "unknown_psk_identity"),
    (116, "certificate_required"),
    (120, "no_application_protocol"),
];

/// The alert description's name, when it has one.
pub fn alert_known(d: u8) -> Option<&'static str> {
    ALERTS.iter().find(|(n, _)| *n == d).map(|(_, s)| *s)
}

/// The alert description's name, or `unknown_N`.
pub fn alert_name(d: u8) -> String {
    alert_known(d).map_or_else(|| format!("unknown_{d}"), str::to_string)
}

/// The encrypt_then_mac extension's type (RFC 7366).
const EXT_ENCRYPT_THEN_MAC: u16 = 22;

/// A TLS record header (RFC 5246 §6.2.1): content type, version, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub typ: u8,
    pub version: u16,
    /// Length of the fragment after the 5-byte header.
    pub len: usize,
}

/// Byte layout of the record header.
pub mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const VERSION: Range<usize> = 1..3;
    pub const LENGTH: Range<usize> = 3..5;
    pub const HEADER_LEN: usize = 5;
}

/// Is this the start of a TLS record (a content type 20–23, major version 3)?
pub fn looks_like_record(b: &[u8]) -> bool {
    b.len() >= 2 && (CCS..=APP_DATA).contains(&b[0]) && b[1] == 3
}

/// The record header at the start of `b`: need-more under 5 bytes;
/// malformed for a content type outside 20–24, a major version other than
/// 3, or a length over [`MAX_RECORD`].
pub fn record_header(b: &[u8]) -> Result<RecordHeader, Error> {
    if b.len() < field::HEADER_LEN {
        return Err(Error::need_more(Layer::TlsRecord, field::HEADER_LEN));
    }
    let typ = b[field::TYPE];
    let len = u16::from_be_bytes([b[3], b[4]]) as usize;
    let bad_at = if !(20..=24).contains(&typ) {
        Some(field::TYPE)
    } else if b[1] != 3 {
        Some(field::VERSION.start)
    } else if len > MAX_RECORD {
        Some(field::LENGTH.start)
    } else {
        None
    };
    if let Some(at) = bad_at {
        return Err(Error::malformed(
            Layer::TlsRecord,
            at,
            format!(
                "invalid TLS record header {:02x} {:02x}{:02x} length {len}",
                typ, b[1], b[2]
            ),
        ));
    }
    Ok(RecordHeader {
        typ,
        version: u16::from_be_bytes([b[1], b[2]]),
        len,
    })
}

/// Does a certificate name (possibly `*.domain`) cover `host`?
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = p.strip_prefix("*.") {
        return h
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest);
    }
    p == h
}

#[cfg(test)]
mod test {
    use super::*;

    fn m(frame: u64) -> Mark {
        Mark { frame, ts: 0 }
    }

    #[test]
    fn alert_and_ccs_and_app_records() {
        let mut t = Tls::default();
        // Fatal handshake_failure in plaintext (PROTOCOLS.md §5 example).
        t.record(Dir::Server, ALERT, 2, Some(&[2, 40]), m(3))
            .unwrap();
        assert_eq!(t.alerts[0].desc, 40);
        assert!(!t.alerts[0].encrypted);
        assert!(t
            .record(Dir::Server, ALERT, 2, Some(&[7, 40]), m(4))
            .is_err());
        t.record(Dir::Client, CCS, 1, Some(&[1]), m(5)).unwrap();
        t.record(Dir::Server, CCS, 1, Some(&[1]), m(6)).unwrap();
        assert_eq!(t.done, Some(m(6)));
        // After CCS, an alert's content is not visible.
        t.record(Dir::Server, ALERT, 26, Some(&[0; 26]), m(7))
            .unwrap();
        assert!(t.alerts[1].encrypted);
        for i in 0..6 {
            t.record(Dir::Server, APP_DATA, 65 + i, None, m(10 + i as u64))
                .unwrap();
        }
        assert_eq!(t.app[1].records, 6);
        assert_eq!(t.tail[Dir::Server].len(), TAIL);
        assert_eq!(t.tail[Dir::Server][3].len, 70);
        assert!(t.tail[Dir::Client].is_empty());
    }

    #[test]
    fn record_lengths_by_suite() {
        // PROTOCOLS.md §8, observed: ECDHE-RSA-AES256-GCM-SHA384 in TLS 1.2,
        // Set Error Info (36 bytes) in a 60-byte record, the ultimatum (9)
        // in a 33-byte one.
        assert_eq!(sealed_len(36, 0x0303, 0xc030), Some(60));
        assert_eq!(sealed_len(9, 0x0303, 0xc030), Some(33));
        // TLS 1.3 AES-128-GCM: + type byte + tag.
        assert_eq!(sealed_len(9, 0x0304, 0x1301), Some(26));
        // TLS 1.2 ChaCha20-Poly1305: no explicit nonce.
        assert_eq!(sealed_len(9, 0x0303, 0xcca8), Some(25));
        // AES-128-CBC-SHA: TLS 1.0 without IV, TLS 1.2 with a 16-byte IV.
        // 9 + 20 = 29 -> 32; 36 + 20 = 56 -> 64.
        assert_eq!(sealed_len(9, 0x0301, 0xc013), Some(32));
        assert_eq!(sealed_len(36, 0x0303, 0xc013), Some(80));
        // A whole block of plaintext + MAC still gets a padding block.
        assert_eq!(sealed_len(12, 0x0301, 0xc013), Some(48));
        // AES-CBC-SHA256 (32-byte MAC), TLS 1.2.
        assert_eq!(sealed_len(36, 0x0303, 0xc027), Some(96));
        // RC4-SHA: + MAC.
        assert_eq!(sealed_len(9, 0x0301, 0x0005), Some(29));
        assert_eq!(sealed_len(9, 0x0303, 0xfefe), None);
    }

    #[test]
    fn the_connection_sequence_shape() {
        let mut t = Tls::default();
        t.record(Dir::Client, CCS, 1, Some(&[1]), m(1)).unwrap();
        t.record(Dir::Server, CCS, 1, Some(&[1]), m(2)).unwrap();
        let mut f = 3;
        let mut rec = |t: &mut Tls, d: Dir, len: usize| {
            t.record(d, APP_DATA, len, None, m(f)).unwrap();
            f += 1;
        };
        // CredSSP: a large CHALLENGE from the server early is not a
        // Demand Active.
        rec(&mut t, Dir::Client, 81);
        rec(&mut t, Dir::Server, 319);
        rec(&mut t, Dir::Client, 740);
        assert_eq!(t.sequence.demand, None);
        for len in [60, 150, 35, 39, 39, 58] {
            rec(&mut t, Dir::Server, len);
        }
        rec(&mut t, Dir::Server, 496);
        let d = t.sequence.demand.unwrap();
        assert_eq!((d.len, d.dir), (496, Dir::Server));
        // A small client record is no Confirm Active.
        rec(&mut t, Dir::Client, 60);
        assert_eq!(t.sequence.confirm, None);
        rec(&mut t, Dir::Client, 635);
        assert_eq!(t.sequence.confirm.unwrap().len, 635);
        rec(&mut t, Dir::Client, 60);
        rec(&mut t, Dir::Server, 60);
        rec(&mut t, Dir::Server, 1400);
        assert_eq!(t.sequence.after, [1, 2]);
    }

    #[test]
    fn client_hello_split_over_records() {
        // ClientHello with TLS 1.2, two suites, SNI "rdp.example".
        let sni = b"rdp.example";
        let mut ext = vec![0x00, 0x00]; // server_name
        let list_len = 3 + sni.len();
        ext.extend(((list_len + 2) as u16).to_be_bytes());
        ext.extend((list_len as u16).to_be_bytes());
        ext.push(0);
        ext.extend((sni.len() as u16).to_be_bytes());
        ext.extend(sni);
        let mut body = vec![0x03, 0x03];
        body.extend([0u8; 32]);
        body.push(0); // session id
        body.extend([0x00, 0x04, 0xc0, 0x30, 0x00, 0x9d]);
        body.extend([1, 0]);
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(&ext);
        let mut msg = vec![1];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(&body);
        let mut t = Tls::default();
        let (a, b) = msg.split_at(20);
        t.record(Dir::Client, HANDSHAKE, a.len(), Some(a), m(1))
            .unwrap();
        assert!(t.client_hello.is_none());
        t.record(Dir::Client, HANDSHAKE, b.len(), Some(b), m(2))
            .unwrap();
        let (h, at) = t.client_hello.clone().unwrap();
        assert_eq!(at, m(2));
        assert_eq!(h.versions, vec![0x0303]);
        assert_eq!(h.ciphers, 2);
        assert_eq!(h.sni.as_deref(), Some("rdp.example"));
    }

    #[test]
    fn names() {
        assert_eq!(alert_name(112), "unrecognized_name");
        assert_eq!(version_name(0x0301), "TLS 1.0");
        assert_eq!(cipher_name(0xc030), "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        assert!(name_matches("*.example.com", "rdp.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("HOST.example.com.", "host.example.com"));
    }
    #[test]
    fn record_header_short_and_changed() {
        // An alert record header: type 21, TLS 1.2, length 2.
        let h = [0x15, 0x03, 0x03, 0x00, 0x02];
        assert_eq!(
            record_header(&h).unwrap(),
            RecordHeader {
                typ: ALERT,
                version: 0x0303,
                len: 2
            }
        );
        assert!(record_header(&h[..4]).unwrap_err().is_need_more());
        for (at, v, off) in [(0, 0x19u8, 0usize), (1, 0x04, 1), (3, 0x48, 3)] {
            let mut b = h;
            b[at] = v;
            let e = record_header(&b).unwrap_err();
            assert_eq!((e.layer, e.offset), (Layer::TlsRecord, off), "{e}");
        }
        assert!(looks_like_record(&h));
        assert!(!looks_like_record(&[0x03, 0x00]));
    }
}
