//! TLS record decryption with logged or recovered secrets, on the
//! RustCrypto crates: the PRFs of TLS 1.0/1.1 (MD5 ⊕ SHA-1) and TLS 1.2
//! (SHA-256/384) (RFC 2246 §5, RFC 5246 §5), the master secret with and
//! without the extended master secret (RFC 7627), the key block, TLS 1.3's
//! HKDF-Expand-Label (RFC 8446 §7.1), and one [`Decrypter`] per direction
//! for AES-GCM, ChaCha20-Poly1305 and AES-CBC with HMAC-SHA1/256/384
//! (MAC-then-encrypt, or encrypt_then_mac, RFC 7366; TLS 1.0's chained IV).
//! The PRF is hand-written: it is a dozen lines over `hmac`, and no small
//! crate offers the TLS 1.0 variant.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// The record cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
    Aes128Cbc,
    Aes256Cbc,
}

/// The HMAC of a CBC suite (the AEAD suites have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlg {
    None,
    Sha1,
    Sha256,
    Sha384,
}

/// The hash of the PRF / HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// TLS 1.0 / 1.1: MD5 ⊕ SHA-1.
    Md5Sha1,
    Sha256,
    Sha384,
}

/// What a negotiated suite needs for decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub cipher: Cipher,
    pub mac: MacAlg,
    pub hash: Hash,
    /// The key exchange is TLS_RSA_* (the pre-master secret is sent
    /// encrypted to the server's key).
    pub rsa_kx: bool,
}

impl Suite {
    /// The suite of `id` under `version`, when this build decrypts it.
    pub fn of(id: u16, version: u16) -> Option<Suite> {
        use tls_parser::TlsPRF;
        use tls_parser::{
            TlsCipherEnc as E, TlsCipherEncMode as M, TlsCipherKx as K, TlsCipherMac,
        };
        if version == 0x0304 {
            let (cipher, hash) = match id {
                0x1301 => (Cipher::Aes128Gcm, Hash::Sha256),
                0x1302 => (Cipher::Aes256Gcm, Hash::Sha384),
                0x1303 => (Cipher::Chacha20, Hash::Sha256),
                _ => return None,
            };
            return Some(Suite {
                cipher,
                mac: MacAlg::None,
                hash,
                rsa_kx: false,
            });
        }
        if !(0x0301..=0x0303).contains(&version) {
            return None;
        }
        let c = tls_parser::TlsCipherSuite::from_id(id)?;
        let cipher = match (c.enc, c.enc_mode, c.enc_size) {
            (E::Aes, M::Gcm, 128) => Cipher::Aes128Gcm,
            (E::Aes, M::Gcm, 256) => Cipher::Aes256Gcm,
            (E::Chacha20_Poly1305, _, _) => Cipher::Chacha20,
            (E::Aes, M::Cbc, 128) => Cipher::Aes128Cbc,
            (E::Aes, M::Cbc, 256) => Cipher::Aes256Cbc,
            _ => return None,
        };
        let mac = match (cipher, c.mac) {
            (Cipher::Aes128Cbc | Cipher::Aes256Cbc, TlsCipherMac::HmacSha1) => MacAlg::Sha1,
            (Cipher::Aes128Cbc | Cipher::Aes256Cbc, TlsCipherMac::HmacSha256) => MacAlg::Sha256,
            (Cipher::Aes128Cbc | Cipher::Aes256Cbc, TlsCipherMac::HmacSha384) => MacAlg::Sha384,
            (Cipher::Aes128Cbc | Cipher::Aes256Cbc, _) => return None,
            _ => MacAlg::None,
        };
        // AEAD and CBC suites before TLS 1.2 do not exist / use MD5+SHA1.
        if version < 0x0303 && mac == MacAlg::None {
            return None;
        }
        let hash = if version < 0x0303 {
            Hash::Md5Sha1
        } else if c.prf == TlsPRF::Sha384 {
            Hash::Sha384
        } else {
            Hash::Sha256
        };
        Some(Suite {
            cipher,
            mac,
            hash,
            rsa_kx: c.kx == K::Rsa,
        })
    }

    pub fn key_len(&self) -> usize {
        match self.cipher {
            Cipher::Aes128Gcm | Cipher::Aes128Cbc => 16,
            _ => 32,
        }
    }

    fn mac_len(&self) -> usize {
        match self.mac {
            MacAlg::None => 0,
            MacAlg::Sha1 => 20,
            MacAlg::Sha256 => 32,
            MacAlg::Sha384 => 48,
        }
    }

    /// The fixed IV from the key block (TLS ≤ 1.2).
    fn iv_len(&self, version: u16) -> usize {
        match self.cipher {
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 4,
            Cipher::Chacha20 => 12,
            _ if version == 0x0301 => 16,
            _ => 0,
        }
    }
}

fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], seed: &[u8], out: &mut [u8]) {
    let Ok(base) = <M as KeyInit>::new_from_slice(secret) else {
        return;
    };
    let mut a = {
        let mut m = base.clone();
        m.update(seed);
        m.finalize().into_bytes().to_vec()
    };
    let mut off = 0;
    while off < out.len() {
        let mut m = base.clone();
        m.update(&a);
        m.update(seed);
        let block = m.finalize().into_bytes();
        let n = block.len().min(out.len() - off);
        out[off..off + n].copy_from_slice(&block[..n]);
        off += n;
        let mut m = base.clone();
        m.update(&a);
        a = m.finalize().into_bytes().to_vec();
    }
}

/// The TLS PRF: `PRF(secret, label, seed)` of `len` bytes.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut ls = label.to_vec();
    ls.extend_from_slice(seed);
    let mut out = vec![0u8; len];
    match hash {
        Hash::Sha256 => p_hash::<Hmac<Sha256>>(secret, &ls, &mut out),
        Hash::Sha384 => p_hash::<Hmac<Sha384>>(secret, &ls, &mut out),
        Hash::Md5Sha1 => {
            let half = secret.len().div_ceil(2);
            p_hash::<Hmac<md5::Md5>>(&secret[..half], &ls, &mut out);
            let mut b = vec![0u8; len];
            p_hash::<Hmac<sha1::Sha1>>(&secret[secret.len() - half..], &ls, &mut b);
            for (o, x) in out.iter_mut().zip(b) {
                *o ^= x;
            }
        }
    }
    out
}

/// The transcript hash RFC 7627 feeds the extended master secret.
pub fn session_hash(hash: Hash, messages: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match hash {
        Hash::Sha256 => Sha256::digest(messages).to_vec(),
        Hash::Sha384 => Sha384::digest(messages).to_vec(),
        Hash::Md5Sha1 => {
            let mut v = md5::Md5::digest(messages).to_vec();
            v.extend_from_slice(&sha1::Sha1::digest(messages));
            v
        }
    }
}

/// The master secret from a pre-master secret: with `ems` the session
/// hash (RFC 7627 §4), else the two randoms.
pub fn master_secret(
    hash: Hash,
    pre_master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    ems: Option<&[u8]>,
) -> Vec<u8> {
    match ems {
        Some(h) => prf(hash, pre_master, b"extended master secret", h, 48),
        None => {
            let mut seed = client_random.to_vec();
            seed.extend_from_slice(server_random);
            prf(hash, pre_master, b"master secret", &seed, 48)
        }
    }
}

/// One direction's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub mac: Vec<u8>,
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The client's and the server's write keys from the master secret.
pub fn key_block(
    suite: Suite,
    version: u16,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> (Keys, Keys) {
    let (m, k, i) = (suite.mac_len(), suite.key_len(), suite.iv_len(version));
    let mut seed = server_random.to_vec();
    seed.extend_from_slice(client_random);
    let b = prf(suite.hash, master, b"key expansion", &seed, 2 * (m + k + i));
    let part = |o: usize, n: usize| b[o..o + n].to_vec();
    (
        Keys {
            mac: part(0, m),
            key: part(2 * m, k),
            iv: part(2 * m + 2 * k, i),
        },
        Keys {
            mac: part(m, m),
            key: part(2 * m + k, k),
            iv: part(2 * m + 2 * k + i, i),
        },
    )
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
pub fn expand_label(hash: Hash, secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    let mut info = Vec::with_capacity(10 + label.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    let mut out = vec![0u8; len];
    let ok = match hash {
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()
            .and_then(|h| h.expand(&info, &mut out).ok()),
        _ => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()
            .and_then(|h| h.expand(&info, &mut out).ok()),
    };
    if ok.is_none() {
        out.clear();
    }
    out
}

/// TLS 1.3 record keys from a traffic secret.
pub fn tls13_keys(suite: Suite, secret: &[u8]) -> Keys {
    Keys {
        mac: Vec::new(),
        key: expand_label(suite.hash, secret, "key", suite.key_len()),
        iv: expand_label(suite.hash, secret, "iv", 12),
    }
}

/// The traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub fn tls13_next_secret(suite: Suite, secret: &[u8]) -> Vec<u8> {
    let n = match suite.hash {
        Hash::Sha384 => 48,
        _ => 32,
    };
    expand_label(suite.hash, secret, "traffic upd", n)
}

/// Why a record did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than the cipher's overhead, or not whole blocks.
    Length(usize),
    /// The AEAD tag or the HMAC did not verify (wrong keys, or a record
    /// out of order).
    Auth,
    /// The CBC padding is not valid.
    Padding,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Length(n) => write!(f, "a {n}-byte record is too short for its cipher"),
            OpenError::Auth => f.write_str("the record does not authenticate with these keys"),
            OpenError::Padding => f.write_str("the record's CBC padding is invalid"),
        }
    }
}

/// One direction's record decryption state.
#[derive(Debug, Clone)]
pub struct Decrypter {
    pub suite: Suite,
    pub version: u16,
    pub keys: Keys,
    pub seq: u64,
    pub encrypt_then_mac: bool,
    /// TLS 1.3: the traffic secret, for KeyUpdate.
    pub secret: Vec<u8>,
}

fn hmac_of(alg: MacAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let Ok(mut m) = <M as KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        MacAlg::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        MacAlg::Sha256 => run::<Hmac<Sha256>>(key, parts),
        MacAlg::Sha384 => run::<Hmac<Sha384>>(key, parts),
        MacAlg::None => Vec::new(),
    }
}

/// Constant time does not matter here (nothing is secret from the
/// capture's owner), but a plain comparison reads as one.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl Decrypter {
    /// TLS ≤ 1.2 keys.
    pub fn new(suite: Suite, version: u16, keys: Keys, encrypt_then_mac: bool) -> Decrypter {
        Decrypter {
            suite,
            version,
            keys,
            seq: 0,
            encrypt_then_mac,
            secret: Vec::new(),
        }
    }

    /// TLS 1.3 keys from a traffic secret.
    pub fn tls13(suite: Suite, secret: &[u8]) -> Decrypter {
        Decrypter {
            suite,
            version: 0x0304,
            keys: tls13_keys(suite, secret),
            seq: 0,
            encrypt_then_mac: false,
            secret: secret.to_vec(),
        }
    }

    /// TLS 1.3 KeyUpdate: the next generation of this direction's keys.
    pub fn key_update(&mut self) {
        let next = tls13_next_secret(self.suite, &self.secret);
        *self = Decrypter::tls13(self.suite, &next);
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        let iv = &self.keys.iv;
        if iv.len() == 12 {
            n.copy_from_slice(iv);
        }
        for (i, b) in self.seq.to_be_bytes().iter().enumerate() {
            n[4 + i] ^= b;
        }
        n
    }

    fn aead(&self, nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, OpenError> {
        let p = Payload { msg: ct, aad };
        let n = aes_gcm::Nonce::from_slice(nonce);
        let r = match self.suite.cipher {
            Cipher::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(&self.keys.key)
                .map_err(|_| OpenError::Auth)?
                .decrypt(n, p),
            Cipher::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(&self.keys.key)
                .map_err(|_| OpenError::Auth)?
                .decrypt(n, p),
            Cipher::Chacha20 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.keys.key)
                .map_err(|_| OpenError::Auth)?
                .decrypt(n, p),
            _ => return Err(OpenError::Auth),
        };
        r.map_err(|_| OpenError::Auth)
    }

    /// Opens one record (`typ` and `body` as on the wire). Returns the
    /// content type and the plaintext (TLS 1.3: the inner type, padding
    /// removed). The sequence number advances on success and on failure
    /// alike (a record that failed still took its number).
    pub fn open(&mut self, typ: u8, body: &[u8]) -> Result<(u8, Vec<u8>), OpenError> {
        let r = self.open_inner(typ, body);
        self.seq = self.seq.wrapping_add(1);
        r
    }

    /// Counts a record not opened (past the depth, too big to be of
    /// interest); TLS 1.0 CBC keeps its chained IV from `body_tail`, the
    /// record's last 16 bytes.
    pub fn skip(&mut self, body_tail: Option<&[u8]>) {
        self.seq = self.seq.wrapping_add(1);
        if let (Some(t), true) = (
            body_tail,
            self.version == 0x0301 && self.keys.iv.len() == 16,
        ) {
            if t.len() >= 16 {
                self.keys.iv = t[t.len() - 16..].to_vec();
            }
        }
    }

    fn open_inner(&mut self, typ: u8, body: &[u8]) -> Result<(u8, Vec<u8>), OpenError> {
        let seq = self.seq.to_be_bytes();
        let v = self.version.to_be_bytes();
        match self.suite.cipher {
            _ if self.version == 0x0304 => {
                if body.len() < 17 {
                    return Err(OpenError::Length(body.len()));
                }
                let aad = [typ, 0x03, 0x03, (body.len() >> 8) as u8, body.len() as u8];
                let mut p = self.aead(&self.nonce(), &aad, body)?;
                // RFC 8446 §5.4: zeros pad after the inner type.
                while p.last() == Some(&0) {
                    p.pop();
                }
                let inner = p.pop().ok_or(OpenError::Padding)?;
                Ok((inner, p))
            }
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => {
                if body.len() < 24 {
                    return Err(OpenError::Length(body.len()));
                }
                let mut nonce = [0u8; 12];
                if self.keys.iv.len() == 4 {
                    nonce[..4].copy_from_slice(&self.keys.iv);
                }
                nonce[4..].copy_from_slice(&body[..8]);
                let plen = body.len() - 24;
                let aad = aad13(&seq, typ, &v, plen);
                Ok((typ, self.aead(&nonce, &aad, &body[8..])?))
            }
            Cipher::Chacha20 => {
                if body.len() < 16 {
                    return Err(OpenError::Length(body.len()));
                }
                let aad = aad13(&seq, typ, &v, body.len() - 16);
                Ok((typ, self.aead(&self.nonce(), &aad, body)?))
            }
            Cipher::Aes128Cbc | Cipher::Aes256Cbc => self.open_cbc(typ, body, &seq, &v),
        }
    }

    fn open_cbc(
        &mut self,
        typ: u8,
        body: &[u8],
        seq: &[u8; 8],
        v: &[u8; 2],
    ) -> Result<(u8, Vec<u8>), OpenError> {
        use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
        let ml = self.suite.mac_len();
        let explicit = self.version >= 0x0302;
        let (enc, mac_given) = if self.encrypt_then_mac {
            if body.len() < ml {
                return Err(OpenError::Length(body.len()));
            }
            let (e, m) = body.split_at(body.len() - ml);
            let want = hmac_of(
                self.suite.mac,
                &self.keys.mac,
                &[seq, &[typ], v, &(e.len() as u16).to_be_bytes(), e],
            );
            if !same(&want, m) {
                return Err(OpenError::Auth);
            }
            (e, Some(m))
        } else {
            (body, None)
        };
        let min = if explicit { 32 } else { 16 };
        if enc.len() < min || enc.len() % 16 != 0 {
            return Err(OpenError::Length(body.len()));
        }
        let (iv, ct) = if explicit {
            (enc[..16].to_vec(), &enc[16..])
        } else {
            (self.keys.iv.clone(), enc)
        };
        if !explicit {
            // TLS 1.0: the next record's IV is this one's last block.
            self.keys.iv = ct[ct.len() - 16..].to_vec();
        }
        let mut buf = ct.to_vec();
        let ok = match self.suite.cipher {
            Cipher::Aes128Cbc => {
                cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.keys.key, &iv)
                    .ok()
                    .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ()))
            }
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.keys.key, &iv)
                .ok()
                .and_then(|d| d.decrypt_padded_mut::<NoPadding>(&mut buf).ok().map(|_| ())),
        };
        ok.ok_or(OpenError::Auth)?;
        let pad = *buf.last().ok_or(OpenError::Padding)? as usize;
        if pad + 1 > buf.len()
            || !buf[buf.len() - 1 - pad..]
                .iter()
                .all(|&b| b as usize == pad)
        {
            return Err(OpenError::Padding);
        }
        buf.truncate(buf.len() - 1 - pad);
        if mac_given.is_none() {
            if buf.len() < ml {
                return Err(OpenError::Length(body.len()));
            }
            let m = buf.split_off(buf.len() - ml);
            let want = hmac_of(
                self.suite.mac,
                &self.keys.mac,
                &[seq, &[typ], v, &(buf.len() as u16).to_be_bytes(), &buf],
            );
            if !same(&want, &m) {
                return Err(OpenError::Auth);
            }
        }
        Ok((typ, buf))
    }
}

fn aad13(seq: &[u8; 8], typ: u8, v: &[u8; 2], plen: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(seq);
    a[8] = typ;
    a[9..11].copy_from_slice(v);
    a[11..].copy_from_slice(&(plen as u16).to_be_bytes());
    a
}

/// The certificates of a TLS 1.3 Certificate message body (RFC 8446
/// §4.4.2: a request context, then a 24-bit list of entries, each a 24-bit
/// DER certificate and 16-bit extensions). tls-parser 0.12 reads TLS 1.2's
/// layout only. At most `max` certificates; `None` when the layout does
/// not hold.
pub fn tls13_certificates(body: &[u8], max: usize) -> Option<Vec<&[u8]>> {
    let u24 = |b: &[u8]| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize;
    let ctx = *body.first()? as usize;
    let mut p = 1 + ctx;
    let list = u24(body.get(p..p + 3)?);
    p += 3;
    let end = p.checked_add(list)?;
    if end > body.len() {
        return None;
    }
    let mut out = Vec::new();
    while p < end {
        let n = u24(body.get(p..p + 3)?);
        p += 3;
        let der = body.get(p..p + n)?;
        p += n;
        let e = body.get(p..p + 2)?;
        p += 2 + (((e[0] as usize) << 8) | e[1] as usize);
        if p > end {
            return None;
        }
        if out.len() < max {
            out.push(der);
        }
    }
    Some(out)
}

#[cfg(test)]
mod test {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448-style check of HKDF-Expand-Label with the published
    /// test vector of tls13.xargs.org (server handshake traffic secret →
    /// key and iv, AES-128-GCM).
    #[test]
    fn tls13_key_schedule_vector() {
        let s = Suite::of(0x1301, 0x0304).unwrap();
        let secret = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        let k = tls13_keys(s, &secret);
        assert_eq!(k.key, h("3fce516009c21727d0f2e4e86ee403bc"));
        assert_eq!(k.iv, h("5d313eb2671276ee13000b30"));
    }

    /// The TLS 1.2 PRF test vector (SHA-256) posted to the IETF TLS list
    /// and used by many implementations.
    #[test]
    fn prf12_vector() {
        let out = prf(
            Hash::Sha256,
            &h("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &h("a0ba9f936cda311827a6f796ffd5198c"),
            16,
        );
        assert_eq!(out, h("e3f229ba727be17b8d122620557cd453"));
    }

    #[test]
    fn suites() {
        assert_eq!(Suite::of(0xc030, 0x0303).unwrap().hash, Hash::Sha384);
        let cbc = Suite::of(0x002f, 0x0301).unwrap();
        assert_eq!(
            (cbc.cipher, cbc.mac, cbc.hash, cbc.rsa_kx),
            (Cipher::Aes128Cbc, MacAlg::Sha1, Hash::Md5Sha1, true)
        );
        assert!(Suite::of(0x000a, 0x0303).is_none(), "3DES is not decrypted");
        assert!(Suite::of(0xc030, 0x0302).is_none(), "no GCM before TLS 1.2");
    }

    #[test]
    fn a_changed_byte_fails_authentication() {
        let s = Suite::of(0x1301, 0x0304).unwrap();
        let mut d = Decrypter::tls13(s, &[7; 32]);
        assert_eq!(d.open(23, &[0; 10]), Err(OpenError::Length(10)));
        assert_eq!(d.open(23, &[0; 40]), Err(OpenError::Auth));
        assert_eq!(d.seq, 2);
        let c = Suite::of(0x002f, 0x0303).unwrap();
        let (k, _) = key_block(c, 0x0303, &[1; 48], &[2; 32], &[3; 32]);
        let mut d = Decrypter::new(c, 0x0303, k, false);
        assert_eq!(d.open(23, &[0; 31]), Err(OpenError::Length(31)));
        assert!(d.open(23, &[0; 64]).is_err());
    }

    #[test]
    fn tls13_certificate_entries() {
        // context 0, list of one 3-byte "cert" with 2 bytes of extensions.
        let b = [0, 0, 0, 10, 0, 0, 3, 1, 2, 3, 0, 2, 0xaa, 0xbb];
        assert_eq!(tls13_certificates(&b, 8).unwrap(), vec![&[1u8, 2, 3][..]]);
        assert!(tls13_certificates(&b[..13], 8).is_none(), "one byte short");
        let mut c = b;
        c[3] = 11; // the list claims one byte more than there is
        assert!(tls13_certificates(&c, 8).is_none());
    }
}
