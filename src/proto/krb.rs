//! Kerberos on port 88 (RFC 4120 §5, plaintext): AS-REQ/REP, TGS-REQ/REP
//! and KRB-ERROR, over UDP (a message per datagram) and TCP (each message
//! after a 4-byte big-endian length, RFC 4120 §7.2.2). The DER is read by
//! rusticata's kerberos-parser; kept per message: its kind, the client
//! and service names, the realm, the error code, the KDC's time. Bounded:
//! [`MAX_MESSAGES`] per flow, TCP messages up to [`MAX_TCP_MESSAGE`].

use super::error::{bad, Error, Layer};
use crate::capture::Mark;
use crate::finding::Dir;
use der_parser::asn1_rs::{Class, FromDer, TaggedParser};
use kerberos_parser::krb5::{KdcRep, KdcReq, KrbError, PrincipalName};

/// Messages kept per flow (a logon is a handful).
pub const MAX_MESSAGES: usize = 64;
/// Largest TCP message read (tickets with large PACs stay well below).
pub const MAX_TCP_MESSAGE: usize = 64 << 10;

/// The APPLICATION tags of the messages (RFC 4120 §5.4.1, §5.9.1).
pub mod tag {
    pub const AS_REQ: u32 = 10;
    pub const AS_REP: u32 = 11;
    pub const TGS_REQ: u32 = 12;
    pub const TGS_REP: u32 = 13;
    pub const KRB_ERROR: u32 = 30;
}

/// Error codes that are part of normal operation (PROTOCOLS.md §8):
/// 25 PREAUTH_REQUIRED (the first answer to most AS-REQs), 52
/// RESPONSE_TOO_BIG (the client retries over TCP), 68 WRONG_REALM (a
/// referral).
pub const NORMAL_ERRORS: &[i32] = &[25, 52, 68];

/// Error codes with a finding of their own (RFC 4120 §7.5.9), named as
/// the `kerberos.*` family members.
pub const ERRORS: &[(i32, &str, &str)] = &[
    (6, "principal_unknown", "KDC_ERR_C_PRINCIPAL_UNKNOWN"),
    (7, "service_unknown", "KDC_ERR_S_PRINCIPAL_UNKNOWN"),
    (12, "policy", "KDC_ERR_POLICY"),
    (14, "etype_unsupported", "KDC_ERR_ETYPE_NOSUPP"),
    (18, "client_revoked", "KDC_ERR_CLIENT_REVOKED"),
    (23, "password_expired", "KDC_ERR_KEY_EXPIRED"),
    (24, "preauth_failed", "KDC_ERR_PREAUTH_FAILED"),
    (37, "clock_skew", "KRB_AP_ERR_SKEW"),
];

/// The member name and RFC name of an error code.
pub fn error_name(code: i32) -> Option<(&'static str, &'static str)> {
    ERRORS
        .iter()
        .find(|e| e.0 == code)
        .map(|&(_, member, rfc)| (member, rfc))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AsReq,
    AsRep,
    TgsReq,
    TgsRep,
    Error(i32),
}

/// One message, as far as the analysis needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub dir: Dir,
    pub at: Mark,
    /// The client principal (`alice`), when the message names it.
    pub cname: Option<String>,
    pub realm: String,
    /// The service principal (`TERMSRV/host.example.test`, `krbtgt/REALM`).
    pub sname: Option<String>,
    /// KRB-ERROR: the KDC's time and the client's (seconds since the
    /// epoch), when given.
    pub stime: Option<i64>,
    pub ctime: Option<i64>,
    /// KRB-ERROR e-text.
    pub etext: Option<String>,
}

impl Message {
    /// The service's type and host: `("TERMSRV", "host.example.test")`.
    pub fn service(&self) -> Option<(&str, &str)> {
        self.sname.as_deref()?.split_once('/')
    }
}

/// The Kerberos messages of one flow.
#[derive(Debug, Clone, Default)]
pub struct Krb {
    pub messages: Vec<Message>,
    /// Messages not kept ([`MAX_MESSAGES`]).
    pub dropped: u32,
    /// The first undecodable message.
    pub malformed: Option<(Mark, Error)>,
}

impl Krb {
    /// One message (a UDP datagram, or a TCP message without its length).
    pub fn message(&mut self, dir: Dir, b: &[u8], at: Mark) {
        match parse(b, dir, at) {
            Ok(m) if self.messages.len() < MAX_MESSAGES => self.messages.push(m),
            Ok(_) => self.dropped += 1,
            Err(e) => {
                self.malformed.get_or_insert((at, e));
            }
        }
    }
}

fn principal(p: &PrincipalName) -> String {
    p.name_string.join("/")
}

fn epoch(t: &der_parser::asn1_rs::GeneralizedTime) -> Option<i64> {
    t.0.to_datetime().ok().map(|d| d.unix_timestamp())
}

/// Parses one message: need-more when the DER is cut short, malformed when
/// it is no Kerberos message.
pub fn parse(b: &[u8], dir: Dir, at: Mark) -> Result<Message, Error> {
    let Some(&first) = b.first() else {
        return Err(Error::need_more(Layer::Kerberos, 1));
    };
    // [APPLICATION n], constructed: 0x60 | n for n < 31, 0x7e for 30.
    if first & 0xE0 != 0x60 {
        return bad(
            Layer::Kerberos,
            0,
            format!("first byte 0x{first:02x} is no APPLICATION tag"),
        );
    }
    let n = (first & 0x1F) as u32;
    let fail = |e: der_parser::asn1_rs::Err<der_parser::asn1_rs::Error>| -> Error {
        match e {
            der_parser::asn1_rs::Err::Incomplete(_) => {
                Error::need_more(Layer::Kerberos, b.len() + 1)
            }
            e => Error::malformed(Layer::Kerberos, 0, format!("message type {n}: {e}")),
        }
    };
    let base = Message {
        kind: Kind::AsReq,
        dir,
        at,
        cname: None,
        realm: String::new(),
        sname: None,
        stime: None,
        ctime: None,
        etext: None,
    };
    match n {
        tag::AS_REQ | tag::TGS_REQ => {
            let (_, r) =
                TaggedParser::from_der_and_then(Class::Application, n, b, KdcReq::from_der)
                    .map_err(fail)?;
            let body = &r.req_body;
            Ok(Message {
                kind: if n == tag::AS_REQ {
                    Kind::AsReq
                } else {
                    Kind::TgsReq
                },
                cname: body.cname.as_ref().map(principal),
                realm: body.realm.0.clone(),
                sname: body.sname.as_ref().map(principal),
                ..base
            })
        }
        tag::AS_REP | tag::TGS_REP => {
            let (_, r) =
                TaggedParser::from_der_and_then(Class::Application, n, b, KdcRep::from_der)
                    .map_err(fail)?;
            Ok(Message {
                kind: if n == tag::AS_REP {
                    Kind::AsRep
                } else {
                    Kind::TgsRep
                },
                cname: Some(principal(&r.cname)),
                realm: r.crealm.0.clone(),
                sname: Some(principal(&r.ticket.sname)),
                ..base
            })
        }
        tag::KRB_ERROR => {
            let (_, e) = KrbError::from_der(b).map_err(fail)?;
            Ok(Message {
                kind: Kind::Error(e.error_code.0),
                cname: e.cname.as_ref().map(principal),
                realm: e.realm.0.clone(),
                sname: Some(principal(&e.sname)),
                stime: epoch(&e.stime),
                ctime: e.ctime.as_ref().and_then(epoch),
                etext: e.etext.clone(),
                ..base
            })
        }
        _ => bad(
            Layer::Kerberos,
            0,
            format!("APPLICATION {n} is no KDC message"),
        ),
    }
}

/// The length of a TCP message from its 4-byte prefix (the high bit is
/// reserved and must be 0, RFC 4120 §7.2.2).
pub fn tcp_len(b: &[u8]) -> Result<usize, Error> {
    let Some(p) = b.get(..4) else {
        return Err(Error::need_more(Layer::Kerberos, 4));
    };
    let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    if n & 0x8000_0000 != 0 {
        return bad(
            Layer::Kerberos,
            0,
            "TCP length with the reserved high bit set",
        );
    }
    if n as usize > MAX_TCP_MESSAGE {
        return bad(
            Layer::Kerberos,
            0,
            format!("TCP message of {n} bytes (over {MAX_TCP_MESSAGE})"),
        );
    }
    Ok(n as usize)
}

#[cfg(test)]
mod test {
    use super::*;

    fn m() -> Mark {
        Mark { frame: 1, ts: 0 }
    }

    /// A KRB-ERROR as MIT krb5kdc 1.20 sends for kinit with a wrong
    /// password: realm RDPSIFT.TEST, cname alice, sname krbtgt/RDPSIFT.TEST.
    pub(crate) fn krb_error(code: u8) -> Vec<u8> {
        crate::synth::krb_error(code, "alice", &["krbtgt", "RDPSIFT.TEST"], 1_796_203_800)
    }

    #[test]
    fn a_krb_error_is_read_field_by_field() {
        let b = krb_error(24);
        let msg = parse(&b, Dir::Server, m()).unwrap();
        assert_eq!(msg.kind, Kind::Error(24));
        assert_eq!(msg.cname.as_deref(), Some("alice"));
        assert_eq!(msg.realm, "RDPSIFT.TEST");
        assert_eq!(msg.sname.as_deref(), Some("krbtgt/RDPSIFT.TEST"));
        assert_eq!(msg.service(), Some(("krbtgt", "RDPSIFT.TEST")));
        assert_eq!(msg.stime, Some(1_796_203_800));
        assert_eq!(
            error_name(24),
            Some(("preauth_failed", "KDC_ERR_PREAUTH_FAILED"))
        );
    }

    #[test]
    fn a_tgs_req_names_its_service() {
        let b = crate::synth::krb_tgs_req(&["TERMSRV", "rdp-host.rdpsift.test"], 1_796_203_800);
        let msg = parse(&b, Dir::Client, m()).unwrap();
        assert_eq!(msg.kind, Kind::TgsReq);
        assert_eq!(msg.service(), Some(("TERMSRV", "rdp-host.rdpsift.test")));
        assert_eq!(msg.realm, "RDPSIFT.TEST");
        let b = crate::synth::krb_req(10, Some("alice"), &["krbtgt", "RDPSIFT.TEST"], 0);
        let msg = parse(&b, Dir::Client, m()).unwrap();
        assert_eq!(
            (msg.kind, msg.cname.as_deref()),
            (Kind::AsReq, Some("alice"))
        );
        for (t, kind) in [(11, Kind::AsRep), (13, Kind::TgsRep)] {
            let b = crate::synth::krb_rep(t, "alice", &["TERMSRV", "rdp-host"], 1);
            let msg = parse(&b, Dir::Server, m()).unwrap();
            assert_eq!(msg.kind, kind);
            assert_eq!(msg.service(), Some(("TERMSRV", "rdp-host")));
            assert_eq!(msg.cname.as_deref(), Some("alice"));
        }
    }

    #[test]
    fn one_byte_short_or_changed() {
        let b = krb_error(6);
        // One byte short: the outer length no longer fits.
        let e = parse(&b[..b.len() - 1], Dir::Server, m()).unwrap_err();
        assert_eq!(e.layer, Layer::Kerberos);
        // The tag changed to APPLICATION 31 (0x7f): no KDC message.
        let mut c = b.clone();
        c[0] = 0x7f;
        let e = parse(&c, Dir::Server, m()).unwrap_err();
        assert!(e.to_string().contains("no KDC message"), "{e}");
        // A universal SEQUENCE instead of an APPLICATION tag.
        c[0] = 0x30;
        assert!(parse(&c, Dir::Server, m()).is_err());
        assert!(parse(&[], Dir::Server, m()).unwrap_err().is_need_more());
    }

    #[test]
    fn every_cut_and_every_changed_byte_of_the_real_kdc_messages_is_safe() {
        // The lab's MIT krb5kdc messages (fuzz/corpus/krb): each prefix and
        // each byte replaced by 0x00, 0xff and its complement.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/krb");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            for cut in 0..b.len() {
                let _ = parse(&b[..cut], Dir::Server, m());
            }
            for i in 0..b.len() {
                for v in [0x00, 0xff, !b[i]] {
                    let mut c = b.clone();
                    c[i] = v;
                    let _ = parse(&c, Dir::Server, m());
                }
            }
            n += 1;
        }
        assert!(n > 10);
    }

    #[test]
    fn tcp_length_prefix() {
        assert_eq!(tcp_len(&[0, 0, 1, 0]).unwrap(), 256);
        assert!(tcp_len(&[0, 0, 1]).unwrap_err().is_need_more());
        assert!(tcp_len(&[0x80, 0, 0, 1]).is_err());
        assert!(tcp_len(&[0, 0x10, 0, 0]).is_err());
    }
}
