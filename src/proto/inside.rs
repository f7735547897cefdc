//! What a decrypted TLS session says ([`Inside`]), and how its record keys
//! are found ([`keys_for`]): the client random of the ClientHello looked
//! up in the key log (TLS ≤ 1.2 master secret, TLS 1.3 traffic secrets),
//! or, for TLS_RSA_* suites, the pre-master secret of the
//! ClientKeyExchange from an `RSA` line or an RSA private key (with the
//! extended master secret when both hellos carried it).

use super::credssp::{Mech, NtlmUser};
use super::keylog::KeyLog;
use super::rdp::Redirect;
use super::tls::Tls;
use super::tls_crypt::{self, Decrypter, Suite};
use crate::capture::Mark;
use crate::finding::Dir;

/// What became of a TLS session's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyState {
    /// No keys were given for the run (or the session is not TLS).
    #[default]
    NotTried,
    /// Keys were given, none for this session's client random.
    NoSecret,
    /// The handshake (ClientHello / ServerHello) is not in the capture.
    NoHandshake,
    /// A version or suite this build does not decrypt.
    Unsupported { version: u16, cipher: u16 },
    /// Records are being decrypted with keys from this source.
    Decrypting { source: u16 },
    /// A record did not open: the first one, and why.
    Failed {
        source: u16,
        dir: Dir,
        at: Mark,
        why: String,
    },
}

/// CredSSP as the decrypted TSRequests show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credssp {
    /// TSRequests per side.
    pub requests: [u32; 2],
    /// Each side's TSRequest.version (the first seen).
    pub version: [Option<u32>; 2],
    pub mech: Option<Mech>,
    /// From NTLM's AUTHENTICATE.
    pub user: Option<NtlmUser>,
    /// The server's errorCode (unsigned), and the frame.
    pub error: Option<(u32, Mark)>,
    /// The server's pubKeyAuth (NLA succeeded as far as the server goes).
    pub server_pub_key: Option<Mark>,
    /// The client's authInfo (its credentials: NLA completed).
    pub client_auth_info: Option<Mark>,
    /// Each side's last TSRequest.
    pub last: [Option<Mark>; 2],
}

/// What the decrypted streams (or the plaintext PDUs of Standard RDP
/// Security at encryption level NONE) said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inside {
    pub keys: KeyState,
    /// Records decrypted per side.
    pub opened: [u64; 2],
    /// PDUs read from the decrypted streams per side.
    pub pdus: [u64; 2],
    pub credssp: Credssp,
    /// HYBRID_EX Early User Authorization Result (0 success, 5 denied).
    pub euar: Option<(u32, Mark)>,
    /// Client Info PDU: user and domain.
    pub client_info: Option<(String, String, Mark)>,
    /// The server's first License Error PDU: code and state transition.
    pub license: Option<(u32, u32, Mark)>,
    pub demand_active: Option<Mark>,
    pub confirm_active: Option<Mark>,
    pub deactivate_all: Option<Mark>,
    /// Set Error Info PDUs, in order (at most [`MAX_ERRINFO`]).
    pub error_info: Vec<(u32, Mark)>,
    /// Save Session Info with a logon error: type, data.
    pub logon_error: Option<(u32, u32, Mark)>,
    /// The MCS Disconnect Provider Ultimatum per side: reason, frame.
    pub ultimatum: [Option<(u8, Mark)>; 2],
    /// The client's Shutdown Request (the user closed the window).
    pub shutdown: Option<Mark>,
    pub redirect: Option<(Redirect, Mark)>,
    /// The last PDU per side.
    pub last_pdu: [Option<Mark>; 2],
    /// The first [`HEAD`] decrypted bytes per side (what a reader of the
    /// report, or a test, can check the decryption by).
    pub head: [Vec<u8>; 2],
}

/// Decrypted bytes kept per side in [`Inside::head`].
pub const HEAD: usize = 256;

/// Set Error Info PDUs remembered per connection.
pub const MAX_ERRINFO: usize = 8;

impl Inside {
    /// The last Set Error Info code other than 0 (none), else the last.
    pub fn errinfo(&self) -> Option<(u32, Mark)> {
        self.error_info
            .iter()
            .rev()
            .find(|e| e.0 != 0)
            .or(self.error_info.last())
            .copied()
    }

    /// Who logged on: `DOMAIN\\user` from the Client Info PDU (the cookie
    /// cuts it at 9 characters), else from NTLM's AUTHENTICATE.
    pub fn user(&self) -> Option<String> {
        let (u, d) = match (&self.client_info, &self.credssp.user) {
            (Some((u, d, _)), _) if !u.is_empty() => (u, d),
            (_, Some(n)) if !n.user.is_empty() => (&n.user, &n.domain),
            _ => return None,
        };
        Some(if d.is_empty() {
            u.clone()
        } else {
            format!("{d}\\{u}")
        })
    }

    /// The session reached the active phase (Demand Active and the
    /// client's Confirm Active, read).
    pub fn active(&self) -> Option<Mark> {
        self.demand_active.and(self.confirm_active)
    }
}

/// Record keys for a session, or why there are none.
pub enum Found {
    /// TLS ≤ 1.2: both sides' decrypters (client, server), armed at each
    /// side's ChangeCipherSpec.
    Tls12([Decrypter; 2], u16),
    /// TLS 1.3: handshake decrypters and the application secrets each
    /// side moves to after its Finished.
    Tls13([Decrypter; 2], [Vec<u8>; 2], u16),
    Missing(KeyState),
}

/// Finds the keys of the session whose handshake `t` holds.
pub fn keys_for(t: &Tls, keys: &KeyLog) -> Found {
    let (Some(cr), Some((sh, _))) = (t.client_random, t.server_hello) else {
        return Found::Missing(KeyState::NoHandshake);
    };
    let unsupported = KeyState::Unsupported {
        version: sh.version,
        cipher: sh.cipher,
    };
    let Some(suite) = Suite::of(sh.cipher, sh.version) else {
        // Said only when the keys name this session (or could: RSA).
        let named = keys.by_random(&cr).is_some() || keys.wants_transcript();
        return Found::Missing(if named {
            unsupported
        } else {
            KeyState::NoSecret
        });
    };
    let logged = keys.by_random(&cr);
    if sh.version == 0x0304 {
        let Some(s) = logged else {
            return Found::Missing(KeyState::NoSecret);
        };
        return match (&s.client_hs, &s.server_hs, &s.client_app, &s.server_app) {
            (Some(ch), Some(shs), Some(ca), Some(sa)) => Found::Tls13(
                [Decrypter::tls13(suite, ch), Decrypter::tls13(suite, shs)],
                [ca.to_vec(), sa.to_vec()],
                s.source,
            ),
            _ => Found::Missing(KeyState::NoSecret),
        };
    }
    let Some(sr) = t.server_random else {
        return Found::Missing(KeyState::NoHandshake);
    };
    let (master, source) =
        match logged.and_then(|s| s.master.as_deref().map(|m| (m.to_vec(), s.source))) {
            Some(m) => m,
            None => {
                let pms = if suite.rsa_kx {
                    t.pre_master_enc.as_deref().and_then(|e| keys.pre_master(e))
                } else {
                    None
                };
                let Some((pms, source)) = pms else {
                    return Found::Missing(KeyState::NoSecret);
                };
                let hash = t
                    .ems
                    .then(|| {
                        t.session_hash
                            .as_deref()
                            .map(|m| tls_crypt::session_hash(suite.hash, m))
                    })
                    .flatten();
                if t.ems && hash.is_none() {
                    return Found::Missing(KeyState::NoHandshake);
                }
                (
                    tls_crypt::master_secret(suite.hash, &pms, &cr, &sr, hash.as_deref()),
                    source,
                )
            }
        };
    let (c, s) = tls_crypt::key_block(suite, sh.version, &master, &cr, &sr);
    Found::Tls12(
        [
            Decrypter::new(suite, sh.version, c, t.etm),
            Decrypter::new(suite, sh.version, s, t.etm),
        ],
        source,
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::proto::tls::ServerHello;

    fn session(cipher: u16) -> Tls {
        let mut t = Tls::default();
        t.client_random = Some([7; 32]);
        t.server_random = Some([8; 32]);
        t.server_hello = Some((
            ServerHello {
                version: 0x0303,
                cipher,
            },
            Mark::default(),
        ));
        t
    }

    fn keys() -> KeyLog {
        let mut k = KeyLog::default();
        let line = format!("CLIENT_RANDOM {} {}\n", "07".repeat(32), "01".repeat(48));
        k.add("keys", line.as_bytes());
        k
    }

    #[test]
    fn a_suite_not_decrypted_is_said_only_when_the_keys_name_the_session() {
        // TLS_RSA_WITH_3DES_EDE_CBC_SHA with a secret for its random.
        let Found::Missing(why) = keys_for(&session(0x000A), &keys()) else {
            panic!("3DES is not decrypted")
        };
        assert_eq!(
            why,
            KeyState::Unsupported {
                version: 0x0303,
                cipher: 0x000A
            }
        );
        // Another session's keys only: nothing to say about this one.
        let mut other = session(0x000A);
        other.client_random = Some([9; 32]);
        assert!(matches!(
            keys_for(&other, &keys()),
            Found::Missing(KeyState::NoSecret)
        ));
        // A suite it decrypts, with the secret: keys for both sides.
        assert!(matches!(
            keys_for(&session(0xc02f), &keys()),
            Found::Tls12(..)
        ));
    }
}
