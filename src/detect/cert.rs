//! The server certificate, judged against the capture's own clock:
//! `tls.cert.expired`, `tls.cert.not_yet_valid`, `tls.cert.self_signed`,
//! `tls.cert.name_mismatch`, `tls.cert.unobservable` (TLS 1.3),
//! `tls.cert.malformed` (a certificate that does not decode: no validity
//! or name verdict is drawn from it). From the
//! TLS Certificate message (≤ TLS 1.2) or, under Standard RDP Security,
//! the X.509 chain in the server's security data.

use super::{frames_filter, Context, Detector, Draft};
use crate::finding::{rfc3339, Code, Phase, Severity};
use crate::flow::Mark;
use crate::proto::tls::name_matches;

pub struct Certificates;

/// The name the client meant to reach: SNI or `--target`, when not an address.
pub fn target_name(cx: &Context<'_>) -> Option<String> {
    let sni = cx
        .flow
        .app
        .facts()
        .tls
        .client_hello
        .as_ref()
        .and_then(|(h, _)| h.sni.clone());
    sni.or_else(|| cx.cfg.target.clone())
        .filter(|n| n.parse::<std::net::IpAddr>().is_err())
}

impl Detector for Certificates {
    fn codes(&self) -> Vec<Code> {
        vec![
            Code::TlsCertExpired,
            Code::TlsCertNotYetValid,
            Code::TlsCertSelfSigned,
            Code::TlsCertNameMismatch,
            Code::TlsCertUnobservable,
            Code::TlsCertMalformed,
        ]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let t = &f.app.facts().tls;
        let base = |code: Code, sev: Severity, at: Mark| {
            Draft::new(code, sev, Phase::Tls, at.frame, at.ts).filter(frames_filter(f, &[at.frame]))
        };
        if t.tls13() && t.certs.is_none() {
            // Without keys the certificate stays encrypted; with them it was
            // read from the decrypted handshake and is judged below.
            if let Some((sh, at)) = t.server_hello {
                let _ = sh;
                let mut d = base(Code::TlsCertUnobservable, Severity::Info, at);
                d.summary = format!(
                    "TLS 1.3 selected in frame {}: the server certificate is encrypted",
                    at.frame
                );
                d.cause = "TLS 1.3 encrypts the certificate; its name and validity cannot be \
                           checked from the capture."
                    .into();
                d.remedy = "Check the certificate on the server (certlm.msc > Remote Desktop, or \
                            the RD deployment's certificate settings), or give rdpsift the \
                            session's key log (--keylog) to read it."
                    .into();
                out.push(d);
            }
            return;
        }
        let Some((c, at, n)) = f.app.facts().server_cert() else {
            return;
        };
        // A gateway's certificate must be trusted by the client (mstsc does
        // not let the user accept an untrusted gateway).
        let gateway = f.app.gateway_leg().is_some() || f.named_gateway;
        if let Some(why) = &c.malformed {
            // Nothing in it is a fact: no validity, issuer or name verdict.
            let mut d = base(Code::TlsCertMalformed, Severity::Warning, at);
            d.summary = format!(
                "The server's certificate in frame {} does not decode as X.509: {why}",
                at.frame
            );
            d.cause = "The certificate the server sent is damaged or not X.509 DER; a client \
                       cannot validate it and refuses or warns. The capture itself may have cut \
                       or damaged it (compare with the certificate on the server)."
                .into();
            d.remedy = "Export the certificate bound to RDP on the server (certlm.msc > Remote \
                        Desktop) and check it decodes (certutil -dump); reissue it if not."
                .into();
            d.confidence = crate::finding::Confidence::lowered(
                crate::finding::Level::Medium,
                "the capture may have damaged the certificate",
            );
            out.push(d);
            return;
        }
        let now = at.ts.div_euclid(1_000_000_000);
        let when = rfc3339(at.ts);
        let who = format!("\"{}\" (issuer \"{}\", {})", c.subject, c.issuer, c.key);
        if now > c.not_after {
            let sev = if gateway {
                Severity::Warning
            } else {
                Severity::Error
            };
            let mut d = base(Code::TlsCertExpired, sev, at);
            d.summary = format!(
                "The server certificate {who} expired at {}, before this capture ({when})",
                rfc3339(c.not_after * 1_000_000_000)
            );
            d.cause = "Clients refuse or warn about an expired certificate.".into();
            d.remedy = "Renew the certificate bound to RDP (Remote Desktop certificate store, \
                        SSLCertificateSHA1Hash, or the RD deployment's certificate settings); a \
                        self-signed one is recreated by restarting Remote Desktop Services after \
                        deleting it."
                .into();
            out.push(d);
        } else if now < c.not_before {
            let mut d = base(Code::TlsCertNotYetValid, Severity::Error, at);
            d.summary = format!(
                "The server certificate {who} is valid only from {}, after this capture ({when})",
                rfc3339(c.not_before * 1_000_000_000)
            );
            d.cause =
                "The certificate is not valid yet, or the server's or client's clock is wrong."
                    .into();
            d.remedy = "Check the clocks of client and server (w32tm /query /status); reissue the \
                        certificate with a correct start date."
                .into();
            out.push(d);
        }
        if c.self_signed && n == 1 && gateway {
            let mut d = base(Code::TlsCertSelfSigned, Severity::Warning, at);
            d.summary = format!("The RD Gateway presented a self-signed certificate {who}");
            d.cause = "Clients must trust a gateway's certificate: mstsc refuses an untrusted \
                       gateway (it cannot be accepted at a prompt), unless the self-signed \
                       certificate was installed in the client's trusted root store."
                .into();
            d.remedy = "Give the gateway a certificate from a CA the clients trust (RD Gateway \
                        Manager > Properties > SSL Certificate), or deploy this one to the \
                        clients' Trusted Root Certification Authorities."
                .into();
            out.push(d);
        } else if c.self_signed && n == 1 {
            let mut d = base(Code::TlsCertSelfSigned, Severity::Info, at);
            d.summary = format!("The server presented a self-signed certificate {who}");
            d.cause =
                "Normal for an RDP host (Windows creates one); mstsc asks the user to trust it."
                    .into();
            d.remedy = "Nothing to do for a direct RDP host unless policy requires trusted \
                        certificates; then deploy one from your CA (Group Policy \"Server \
                        authentication certificate template\")."
                .into();
            out.push(d);
        }
        let mut names: Vec<&str> = c.san.iter().map(String::as_str).collect();
        if let Some(cn) = c.cn.as_deref().filter(|cn| !names.contains(cn)) {
            names.push(cn);
        }
        if names.is_empty() {
            return;
        }
        let listed = names.join(", ");
        match target_name(cx) {
            Some(target) => {
                if !names.iter().any(|n| name_matches(n, &target)) {
                    let mut d = base(Code::TlsCertNameMismatch, Severity::Warning, at);
                    d.summary = format!(
                        "The client asked for {target}; the server certificate names {listed}"
                    );
                    d.cause = "Clients warn about (or, by policy, refuse) a certificate issued to \
                               another name."
                        .into();
                    d.remedy = format!(
                        "Connect with a name the certificate carries, or issue a certificate whose \
                         subject or SAN includes {target}."
                    )
                    .into();
                    out.push(d);
                }
            }
            None => {
                let ip = f.server.ip().to_string();
                if !names.iter().any(|n| *n == ip) && gateway {
                    let mut d = base(Code::TlsCertNameMismatch, Severity::Warning, at);
                    d.summary = format!(
                        "The client reached the RD Gateway by its address {ip}; the gateway's certificate names {listed}"
                    );
                    d.cause = "A gateway's certificate must carry the name the client uses for \
                               it; mstsc refuses a gateway whose certificate names another."
                        .into();
                    d.remedy = "Configure the client with the gateway's name as the certificate \
                                carries it (its SAN), not its address."
                        .into();
                    out.push(d);
                } else if !names.iter().any(|n| *n == ip) {
                    let mut d = base(Code::TlsCertNameMismatch, Severity::Info, at);
                    d.summary = format!(
                        "The client dialled the address {ip}; the server certificate names {listed}"
                    );
                    d.cause = "Connecting by IP address never matches a certificate issued to a \
                               host name; mstsc warns. Normal on an RDP host."
                        .into();
                    d.remedy = "Connect by the host name the certificate carries to avoid the \
                                warning."
                        .into();
                    out.push(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, rdp_over_tls, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{C, CERT_EXPIRED, CERT_HOST};

    fn codes(cert: &[u8], cfg: &Config) -> Vec<String> {
        let mut out = vec![];
        let mut c = rdp_over_tls(&mut out, 0x2, cert);
        c.close(&mut out, C, MS);
        check(&Certificates, &out, cfg)
            .iter()
            .map(|d| d.code.to_string())
            .collect()
    }

    #[test]
    fn an_expired_certificate_and_a_healthy_one() {
        let cfg = Config::default();
        assert!(
            codes(CERT_EXPIRED, &cfg).contains(&"tls.cert.expired".to_string()),
            "{:?}",
            codes(CERT_EXPIRED, &cfg)
        );
        let healthy = codes(CERT_HOST, &cfg);
        assert!(
            !healthy.iter().any(|c| c == "tls.cert.expired"),
            "{healthy:?}"
        );
        // The SNI rdp-host.example.test is among the host certificate's names.
        assert!(
            !healthy.iter().any(|c| c == "tls.cert.name_mismatch"),
            "{healthy:?}"
        );
    }

    #[test]
    fn an_undecodable_certificate_is_malformed_never_expired() {
        let cfg = Config::default();
        // One byte changed: the outer SEQUENCE tag of the host certificate.
        let mut bad = CERT_HOST.to_vec();
        bad[0] = 0x31;
        let got = codes(&bad, &cfg);
        assert!(got.contains(&"tls.cert.malformed".to_string()), "{got:?}");
        for no in [
            "tls.cert.expired",
            "tls.cert.not_yet_valid",
            "tls.cert.self_signed",
        ] {
            assert!(!got.iter().any(|c| c == no), "{got:?}");
        }
        // Bytes that are no certificate at all.
        let got = codes(&[0xAB; 40], &cfg);
        assert_eq!(
            got.iter()
                .filter(|c| c.starts_with("tls.cert."))
                .collect::<Vec<_>>(),
            vec!["tls.cert.malformed"]
        );
        // One byte short: the last byte cut.
        let got = codes(&CERT_HOST[..CERT_HOST.len() - 1], &cfg);
        assert!(got.contains(&"tls.cert.malformed".to_string()), "{got:?}");
    }
}
