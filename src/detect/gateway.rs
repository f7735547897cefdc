//! One RD Gateway leg (PROTOCOLS.md §4, §9): what its HTTP, WebSocket and
//! MS-TSGU said, read in plaintext or with keys; without keys, what the
//! shapes of a named gateway's TLS still tell (`gateway.encrypted`).
//!
//! - `gateway.http.status.<code>`: the last answer to a leg's request is an
//!   error status (not 401/407): the gateway, or a front end, refused.
//! - `gateway.http.auth_failed` / `gateway.http.auth_loop`: the leg ended
//!   on a 401 (the credentials were refused, or no offered scheme fitted);
//!   a loop when it took four or more 401 rounds (NTLM is
//!   connection-bound: a proxy that does not keep the connection makes
//!   the rounds start over).
//! - `gateway.http.proxy_auth`: a 407 that was the last word.
//! - `gateway.http.bad_framing`: a response whose framing cannot work for
//!   its role. A 200 on the OUT channel without Content-Length is normal
//!   (its body runs until the connection closes) and never flagged.
//! - `gateway.http.proxy_interference`: the OUT channel re-framed as
//!   chunked (clients since FreeRDP #6731 cope; a warning).
//! - `gateway.ws.upgrade_refused`: the WebSocket upgrade answered with a
//!   status a front end without WebSocket or custom-method support gives
//!   (400, 405, 426, 501).
//! - `gateway.tsg.<step>_failed`: a HANDSHAKE, TUNNEL, TUNNEL_AUTH or
//!   CHANNEL response with a failing HRESULT, named (E_PROXY_*), in either
//!   form; `gateway.tsg.closed`: the gateway closed the channel with one.
//! - `gateway.idle_cut`: a tunnel that carried RDP ended by a TCP close or
//!   reset, with no CLOSE_CHANNEL and no WebSocket close from the gateway,
//!   after a silence longer than the gateway's keep-alive gaps seen before
//!   it (at least two keep-alives seen), or than the idle timeout it
//!   announced, or (closed from the gateway's side) of 5 s or more:
//!   something between cut an idle tunnel. A gateway ending a tunnel says
//!   so first (CLOSE_CHANNEL, or a WebSocket close).
//! - `gateway.kdcproxy.failed`: a `POST /KdcProxy` answered with an error
//!   status.
//! - RPC over HTTP (its RTS, bind and fault PDUs travel in plaintext
//!   inside the channels; the calls are sealed): `gateway.rpc.no_conn_a3`,
//!   the OUT channel answered 200 but the virtual connection never
//!   completed (no CONN/A3; FreeRDP's "Expected CONN/A3");
//!   `gateway.rpc.bind_refused`, a bind_nak or a rejecting bind_ack;
//!   `gateway.rpc.fault`, a fault answering a TsProxy call, its status
//!   named.

use super::{frames_filter, Context, Detector, Draft};
use crate::finding::{ClientError, Code, Dir, Family, Phase, Severity};
use crate::flow::Flow;
use crate::proto::gateway::{Exchange, Kind, Leg, Response};
use crate::proto::{http, rts, tsgu};
use crate::session::moment::ending;

pub struct Gateway;

/// 401 rounds on one connection from which on the leg is a loop (NTLM
/// needs two, Kerberos one; FreeRDP gives up after the second).
pub const AUTH_LOOP_ROUNDS: usize = 4;

/// A tunnel silent this long, then closed from the gateway's side with no
/// CLOSE_CHANNEL or WebSocket close, was cut by something in between.
pub const IDLE_MIN_NS: i64 = 5_000_000_000;

impl Detector for Gateway {
    fn codes(&self) -> Vec<Code> {
        let mut v = vec![
            Code::GatewayHttpAuthFailed,
            Code::GatewayHttpAuthLoop,
            Code::GatewayHttpProxyAuth,
            Code::GatewayHttpNoResponse,
            Code::GatewayHttpBadFraming,
            Code::GatewayHttpProxyInterference,
            Code::GatewayWsUpgradeRefused,
            Code::GatewayTsgHandshakeFailed,
            Code::GatewayTsgTunnelFailed,
            Code::GatewayTsgTunnelAuthFailed,
            Code::GatewayTsgChannelFailed,
            Code::GatewayTsgClosed,
            Code::GatewayKdcproxyFailed,
            Code::GatewayRpcNoConnA3,
            Code::GatewayRpcBindRefused,
            Code::GatewayRpcFault,
            Code::GatewayIdleCut,
            Code::GatewayEncrypted,
        ];
        v.extend(
            http::STATUSES
                .iter()
                .filter(|s| s.0 != 401 && s.0 != 407)
                .map(|s| Code::member(Family::GatewayHttpStatus, Some(s.1))),
        );
        v.push(Code::member(Family::GatewayHttpStatus, None));
        v
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.tunnel_of.is_some() {
            return;
        }
        let Some(g) = f.app.gateway_leg() else {
            if f.named_gateway {
                encrypted(f, out);
            }
            return;
        };
        http_answers(f, g, out);
        kdc_errors(f, g, out);
        if let Some((dir, at, why)) = &g.bad_framing {
            out.push(
                Draft::new(
                    Code::GatewayHttpBadFraming,
                    Severity::Error,
                    Phase::GatewayHttp,
                    at.frame,
                    at.ts,
                )
                .summary(format!("frame {} ({dir}): {why}", at.frame))
                .cause(
                    "The HTTP framing of a gateway leg is broken for its role: a proxy or the \
                     gateway sent a message the client cannot delimit. The tunnel cannot work \
                     over it.",
                )
                .remedy(
                    "Find the device that rewrote the response (a reverse proxy, WAF or load \
                     balancer in front of the gateway: compare with a capture taken on the \
                     gateway) and let the gateway's responses through unchanged.",
                )
                .filter(frames_filter(f, &[at.frame])),
            );
        }
        if let Some((at, why)) = &g.interference {
            out.push(
                Draft::new(
                    Code::GatewayHttpProxyInterference,
                    Severity::Warning,
                    Phase::GatewayHttp,
                    at.frame,
                    at.ts,
                )
                .summary(format!("frame {}: {why}", at.frame))
                .cause(
                    "An intermediary re-encoded the gateway's OUT channel (FreeRDP #6730/#6731: \
                     nginx does this unless told not to); current clients cope, older ones and \
                     buffering proxies stall the tunnel.",
                )
                .remedy(
                    "In the reverse proxy: no buffering and no re-encoding for the gateway \
                     (nginx: proxy_buffering off, proxy_http_version 1.1, chunked_transfer_encoding \
                     off for this location), or pass TLS through to the gateway.",
                )
                .filter(frames_filter(f, &[at.frame])),
            );
        }
        tsg(f, g, out);
        rpc(f, g, out);
        idle_cut(f, g, out);
    }
}

/// The words of a result: `E_PROXY_RAP_ACCESSDENIED (0x800759DA)`.
pub fn result_words(code: u32) -> String {
    match tsgu::result_constant(code) {
        Some(n) => format!("{n} (0x{code:08X})"),
        None => format!("0x{code:08X}"),
    }
}

/// Cause, remedy and the client's dialog code (PROTOCOLS.md §9, inferred
/// from the E_PROXY code) of a gateway's failing result.
fn result_meaning(code: u32) -> (&'static str, &'static str, Option<u32>) {
    match tsgu::result_name(code) {
        Some("rap_access_denied") => (
            "The gateway's resource authorization policy (RD RAP) does not let this user reach \
             this target. A frequent cause: the policy's computer group lists the NetBIOS name \
             and the client asks for the FQDN (or the reverse).",
            "In RD Gateway Manager, check the RD RAP: the user's group, and a computer group \
             that names the target exactly as the client asks for it (FQDN and NetBIOS name, or \
             allow any network resource).",
            Some(0x0300001B),
        ),
        Some("nap_access_denied" | "quarantine_access_denied") => (
            "The gateway's connection authorization policy (RD CAP, or its NAP/health check) \
             refused the user or the device.",
            "Check the RD CAP in RD Gateway Manager: the user's groups, the device groups, the \
             authentication method (password or smart card) and any NAP health policy.",
            Some(0x0300001C),
        ),
        Some("ts_connect_failed") => (
            "The gateway could not open a connection to the target RDP server: the target is \
             down, its name does not resolve from the gateway, or a firewall between the gateway \
             and the target blocks TCP 3389.",
            "From the gateway, test the target (Test-NetConnection TARGET -Port 3389), its DNS \
             name from the gateway, and the target's firewall for the gateway's address.",
            None,
        ),
        Some("capability_mismatch") => (
            "The client and the gateway disagree on capabilities: the gateway requires a feature \
             (a health statement, consent or service messages) the client does not offer.",
            "Check the gateway's RD CAP requirements (NAP, device redirection enforcement) and \
             use a client that supports them.",
            Some(0x03000024),
        ),
        Some("max_connections_reached") => (
            "The gateway has reached its maximum number of connections.",
            "Raise the limit in RD Gateway Manager (Properties > General) or add gateway \
             capacity.",
            Some(0x03000022),
        ),
        Some("session_timeout") => (
            "The gateway's session time-out ended the tunnel.",
            "Check the RD CAP's session time-out (Timeouts tab) if sessions end too early.",
            None,
        ),
        Some(
            "unsupported_authentication_method"
            | "cookie_bad_packet"
            | "cookie_authentication_access_denied",
        ) => (
            "The gateway refused the client's authentication method (the pluggable \
             authentication cookie or the method itself).",
            "Check the authentication methods the RD CAP allows and the client's gateway \
             authentication setting.",
            None,
        ),
        Some("no_cert_available") => (
            "The gateway has no server certificate registered for its tunnels.",
            "Import and select an SSL certificate in RD Gateway Manager (Properties > SSL \
             Certificate).",
            None,
        ),
        _ => (
            "The gateway refused this step of the tunnel with the HRESULT named in the summary.",
            "Read the gateway's Microsoft-Windows-TerminalServices-Gateway/Operational log at \
             this time: it names the user, the target and the policy involved.",
            None,
        ),
    }
}

fn dialog(d: Option<u32>) -> String {
    d.map_or(String::new(), |c| {
        format!(
            "; the client's dialog code for it is {} (inferred from the E_PROXY code)",
            ClientError::inferred(c).hex()
        )
    })
}

/// The draft with the client's dialog code, when the E_PROXY code gives one.
fn with_dialog(d: Draft, code: Option<u32>) -> Draft {
    match code {
        Some(c) => d.client_error(ClientError::inferred(c)),
        None => d,
    }
}

fn request_words(e: &Exchange) -> String {
    if e.method.is_empty() {
        "a request that is not in the capture".to_string()
    } else {
        format!("{} {}", e.method, e.target)
    }
}

fn reason_words(r: &Response) -> String {
    if r.reason.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", r.reason)
    }
}

/// What the HTTP answers said: the last answer decides.
fn http_answers(f: &Flow, g: &Leg, out: &mut Vec<Draft>) {
    if let Some(d) = unanswered(f, g) {
        out.push(d);
        return;
    }
    let Some((e, r)) = g.answered().last() else {
        return;
    };
    // A 401 or 407 the client answered with its next request, still
    // unanswered (its body streams: the RPC IN channel's 1 GiB, which is
    // answered only when the channel ends), was a step, not the last word.
    let went_on = g
        .exchanges
        .last()
        .is_some_and(|x| x.response.is_none() && !x.method.is_empty() && x.at.frame > r.at.frame);
    if went_on && matches!(r.status, 401 | 407) {
        return;
    }
    let rounds = g.answered().filter(|(_, r)| r.status == 401).count();
    let frames: Vec<u64> = std::iter::once(e.at.frame).chain([r.at.frame]).collect();
    let filter = frames_filter(f, &frames);
    // The request (when captured) to its answer.
    let from = if e.method.is_empty() { r.at } else { e.at };
    let new = |code: Code| {
        Draft::new(
            code,
            Severity::Error,
            Phase::GatewayHttp,
            from.frame,
            from.ts,
        )
        .until(r.at.frame)
    };
    let kdc = g.kind == Some(Kind::KdcProxy);
    match r.status {
        401 => {
            let offered = if r.challenges.is_empty() {
                "no scheme".to_string()
            } else {
                r.challenges.join(", ")
            };
            let sent = e
                .authorization
                .as_deref()
                .map_or("no credentials".to_string(), |a| format!("{a} credentials"));
            let first = g.exchanges.first().map(|x| x.ntlm) == Some(Some(3));
            let last_word = g.exchanges.last().is_some_and(|x| x.response.as_ref() == Some(r));
            if (r.ntlm_challenge && last_word) || (first && rounds == 1) {
                out.push(ntlm_broken(f, e, r, first, new(Code::GatewayHttpAuthLoop)));
                return;
            }
            let (code, cause) = if rounds >= AUTH_LOOP_ROUNDS {
                (
                    Code::GatewayHttpAuthLoop,
                    "Authentication to the gateway went round without progress: NTLM is bound to \
                     one TCP connection, and a proxy or load balancer that does not keep the \
                     client's connection to the gateway (or spreads it over several gateways) \
                     makes every round start over.",
                )
            } else {
                (
                    Code::GatewayHttpAuthFailed,
                    "The gateway refused the credentials (wrong password, locked or expired \
                     account, a user outside the RD CAP's groups), or the client had no scheme \
                     in common with it. Behind a TLS-terminating proxy, an NTLM handshake whose \
                     AUTHENTICATE reached the gateway on another connection than its NEGOTIATE \
                     is refused the same way (a capture on the proxy's gateway side shows it).",
                )
            };
            out.push(
                new(code)
                    .summary(format!(
                        "{} answered 401{} in frame {} after the client sent {sent}; {rounds} 401 round{} on this connection; the gateway offers {offered}",
                        request_words(e),
                        reason_words(r),
                        r.at.frame,
                        if rounds == 1 { "" } else { "s" }
                    ))
                    .cause(cause)
                    .remedy(if code == Code::GatewayHttpAuthLoop {
                        "Keep the client's connection to the gateway end to end (no HTTP \
                         keep-alive termination, session persistence on the load balancer, \
                         HAProxy without http-server-close), or pass TLS through to the gateway."
                    } else {
                        "Check the gateway credentials (the same account as the RD CAP expects, \
                         DOMAIN\\user), the account's state on the domain controller, and the \
                         gateway's TerminalServices-Gateway log for the refusal."
                    })
                    .filter(filter),
            );
        }
        407 => out.push(
            new(Code::GatewayHttpProxyAuth)
            .summary(format!(
                "the proxy answered {} with 407{} in frame {}, asking for {}; the client's dialog code for it is 0x03000020 (inferred)",
                request_words(e),
                reason_words(r),
                r.at.frame,
                if r.challenges.is_empty() {
                    "credentials".to_string()
                } else {
                    r.challenges.join(", ")
                }
            ))
            .cause(
                "A forward proxy between the client and the gateway wants credentials the client \
                 did not give (mstsc cannot answer every proxy scheme).",
            )
            .remedy(
                "Exempt the gateway's host name from proxy authentication, or from the proxy \
                 (a PAC/bypass list entry), or configure the client's proxy credentials.",
            )
            .filter(filter)
            .client_error(ClientError::inferred(0x0300_0020)),
        ),
        s if s >= 400 => {
            let ws = e
                .upgrade
                .as_deref()
                .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"));
            let phrase = http::status_phrase(s).unwrap_or("");
            if kdc {
                out.push(
                    new(Code::GatewayKdcproxyFailed)
                    .summary(format!(
                        "{} was answered {s}{} in frame {}: Kerberos through the gateway's KDC proxy failed",
                        request_words(e),
                        reason_words(r),
                        r.at.frame
                    ))
                    .cause(
                        "The gateway's KDC proxy (MS-KKDCP) is not there or cannot reach a domain \
                         controller; the client falls back to NTLM for the gateway (FreeRDP \
                         #11974).",
                    )
                    .remedy(
                        "Enable the KDC proxy on the gateway (KPSSVC, the /KdcProxy URL \
                         reservation) and check that it reaches a domain controller, or publish \
                         a KDC for the clients.",
                    )
                    .filter(filter),
                );
                return;
            }
            if ws && matches!(s, 400 | 405 | 426 | 501) {
                out.push(
                    new(Code::GatewayWsUpgradeRefused)
                    .summary(format!(
                        "{} with Upgrade: websocket was answered {s}{} in frame {}, neither 101 nor a usable 200",
                        request_words(e),
                        reason_words(r),
                        r.at.frame
                    ))
                    .cause(
                        "A front end (CDN, HTTP/2 load balancer, WAF) does not accept the gateway's \
                         custom method with a WebSocket upgrade (rdpgw #76).",
                    )
                    .remedy(
                        "Let RDG_OUT_DATA, RDG_IN_DATA (and RPC_IN_DATA, RPC_OUT_DATA) and the \
                         WebSocket upgrade through the front end over HTTP/1.1, or bypass it for \
                         the gateway.",
                    )
                    .filter(filter),
                );
                return;
            }
            let (cause, remedy) = if e.method.starts_with("RPC_") && matches!(s, 404 | 410) {
                (
                    "RPC over HTTP is not offered at this URL: the gateway's RPC proxy \
                     (/rpc/rpcproxy.dll) is not published there.",
                    "Check that the RD Gateway's RPC over HTTP proxy is installed and that the \
                     load balancer or reverse proxy routes /rpc/ to it.",
                )
            } else {
                status_meaning(s)
            };
            let via = r
                .via
                .as_ref()
                .map_or(String::new(), |v| format!(" (Via: {v})"));
            out.push(
                new(Code::member(Family::GatewayHttpStatus, http::status_member(s)))
                .summary(format!(
                    "{} was answered {s}{}{} in frame {}{via}",
                    request_words(e),
                    if r.reason.is_empty() { phrase } else { "" },
                    reason_words(r),
                    r.at.frame
                ))
                .cause(cause)
                .remedy(remedy)
                .filter(filter),
            );
        }
        _ => {}
    }
}

/// A KRB-ERROR inside a KDC proxy's answer (MS-KKDCP 2.2.2), other than
/// the PREAUTH_REQUIRED (25) that starts every exchange.
fn kdc_errors(f: &Flow, g: &Leg, out: &mut Vec<Draft>) {
    if g.kind != Some(Kind::KdcProxy) {
        return;
    }
    let Some((m, code)) = g.krb.messages.iter().find_map(|m| match m.kind {
        crate::proto::krb::Kind::Error(c) if c != 25 && m.dir == Dir::Server => Some((m, c)),
        _ => None,
    }) else {
        return;
    };
    let name = crate::proto::krb::error_name(code).map_or(format!("error {code}"), |(_, rfc)| {
        format!("{rfc} ({code})")
    });
    let who = g
        .krb
        .messages
        .iter()
        .find_map(|x| x.cname.clone().map(|c| format!("{c}@{}", x.realm)))
        .unwrap_or_default();
    out.push(
        Draft::new(
            Code::GatewayKdcproxyFailed,
            Severity::Error,
            Phase::GatewayHttp,
            m.at.frame,
            m.at.ts,
        )
        .summary(format!(
            "the KDC proxy's answer in frame {} carries a KRB-ERROR {name}{}{}",
            m.at.frame,
            if who.is_empty() {
                String::new()
            } else {
                format!(" for {who}")
            },
            m.etext
                .as_ref()
                .map_or(String::new(), |t| format!(" (\"{t}\")"))
        ))
        .cause(
            "The KDC behind the gateway's KDC proxy refused the Kerberos request: the \
             KRB-ERROR names why (a wrong password is PREAUTH_FAILED, an unknown account \
             C_PRINCIPAL_UNKNOWN, a clock difference SKEW).",
        )
        .remedy(
            "Act on the Kerberos error for the account named (password, account state, clock \
             of the client); the KDC proxy itself works.",
        )
        .filter(frames_filter(f, &[m.at.frame])),
    );
}

/// The leg's last request waited for an answer until the connection
/// ended. Not a request whose body was still streaming (the IN channel's
/// chunked RDG_IN_DATA, RPC_IN_DATA's 1 GiB: no answer is awaited), nor one
/// the capture's end cut off.
fn unanswered(f: &Flow, g: &Leg) -> Option<Draft> {
    let e = g.exchanges.last()?;
    if e.response.is_some() || e.method.is_empty() || !e.body_done {
        return None;
    }
    let (dir, end, how) = ending(f)?;
    let waited = end.ts - e.at.ts;
    let s = format!("{:.1} s", waited as f64 / 1e9);
    Some(
        Draft::new(
            Code::GatewayHttpNoResponse,
            Severity::Error,
            Phase::GatewayHttp,
            e.at.frame,
            e.at.ts,
        )
        .until(end.frame)
        .summary(format!(
            "{} in frame {} got no answer: {s} later the {dir} {how} the connection in frame {}{}",
            request_words(e),
            e.at.frame,
            end.frame,
            if e.method == "RDG_OUT_DATA" {
                " (the OUT channel's answer has no length: a buffering proxy holds it back)"
            } else {
                ""
            }
        ))
        .cause(
            "The gateway, or a reverse proxy in front of it, never answered the request: a \
             buffering proxy waits for the end of the OUT channel's 200, which has no length \
             and does not end while the tunnel lives (nginx proxy_buffering, FreeRDP #6730), or \
             the gateway behind the proxy does not answer.",
        )
        .remedy(
            "Turn response and request buffering off for the gateway on the reverse proxy \
             (nginx: proxy_buffering off, proxy_request_buffering off, proxy_http_version 1.1), \
             or pass TLS through to the gateway; check the gateway answers behind the proxy.",
        )
        .filter(frames_filter(f, &[e.at.frame, end.frame])),
    )
}

/// An NTLM handshake split over connections: the CHALLENGE was the last
/// word on this one, or its first request was an AUTHENTICATE.
fn ntlm_broken(f: &Flow, e: &Exchange, r: &Response, first: bool, d: Draft) -> Draft {
    let end = ending(f).map_or("the capture ended".to_string(), |(dir, m, how)| {
        format!("the {dir} {how} it in frame {}", m.frame)
    });
    let what = if first {
        format!(
            "the first request on this connection ({} in frame {}) carries an NTLM AUTHENTICATE, answered 401{} in frame {}: its NEGOTIATE and CHALLENGE went over another connection",
            request_words(e),
            e.at.frame,
            reason_words(r),
            r.at.frame
        )
    } else {
        format!(
            "the gateway's NTLM CHALLENGE in frame {} (401 to {}) was the last word on this connection, then {end}: the AUTHENTICATE did not follow on it",
            r.at.frame,
            request_words(e)
        )
    };
    d.summary(what)
        .cause(
            "NTLM is bound to one TCP connection: its NEGOTIATE, CHALLENGE and AUTHENTICATE \
             must travel over the same connection to the gateway. A proxy or load balancer in \
             front of the gateway that opens a new upstream connection per request (nginx \
             without upstream keep-alive, HAProxy with http-server-close, an ingress) splits \
             the handshake, and every round starts over (rdpgw #30, FreeRDP #7756).",
        )
        .remedy(
            "Pass TLS through to the gateway (TCP mode), or make the proxy keep one upstream \
             connection per client connection (HAProxy: option http-keep-alive and no \
             http-server-close; nginx has no reliable NTLM support without its commercial \
             ntlm directive); or use Kerberos (a KDC proxy) for the gateway.",
        )
        .filter(frames_filter(f, &[e.at.frame, r.at.frame]))
}

fn status_meaning(s: u16) -> (&'static str, &'static str) {
    match s {
        403 => (
            "The gateway (or a front end) forbids the request: the gateway's web server denies \
             it, or a WAF or reverse proxy blocks the gateway's methods.",
            "Check the front end's rules for /remoteDesktopGateway/ and the custom methods, and \
             the gateway's IIS/HTTP.sys configuration.",
        ),
        404 | 410 => (
            "The HTTP transport is not offered at this URL: no RD Gateway answers there, or \
             another application owns /remoteDesktopGateway/; clients then try RPC over HTTP.",
            "Check that the RD Gateway role serves this host name and port, and that the load \
             balancer or reverse proxy routes /remoteDesktopGateway/ (and /rpc/) to it.",
        ),
        400 | 405 | 501 => (
            "A front end (CDN, HTTP/2 load balancer, WAF) does not accept the gateway's custom \
             methods RDG_OUT_DATA / RDG_IN_DATA (rdpgw #76).",
            "Let the custom methods through over HTTP/1.1, or bypass the front end for the \
             gateway.",
        ),
        502 | 504 => (
            "A reverse proxy in front of the gateway could not reach it (502) or gave up waiting \
             for it (504).",
            "Check the reverse proxy's upstream (the gateway's address, port and TLS settings) \
             and its timeouts.",
        ),
        503 => (
            "The gateway service is unavailable: stopped, overloaded, or (RPC over HTTP, RPC \
             error 6ba) no RPC proxy backend.",
            "Check the TSGateway service and the gateway's event log; for RPC over HTTP, the \
             RPC proxy's backend configuration.",
        ),
        _ => (
            "The gateway, or something in front of it, refused the request with this status.",
            "Read the status's reason and the gateway's (or proxy's) log at this time.",
        ),
    }
}

/// The tunnel's steps: the first failing response names the step.
/// How long after the OUT channel's 200 a missing CONN/A3 is judged
/// (when the connection did not end before): a gateway sends it at once.
pub const CONN_A3_WAIT_NS: i64 = 2_000_000_000;

/// What the RPC-over-HTTP PDUs of a leg said.
fn rpc(f: &Flow, g: &Leg, out: &mut Vec<Draft>) {
    if g.kind != Some(Kind::Rpc) {
        return;
    }
    let r = &g.rpc;
    let ok_200 = g
        .answered()
        .find(|(e, x)| e.method == "RPC_OUT_DATA" && x.status == 200);
    if let (Some((e, x)), None) = (ok_200, r.rts("CONN/A3")) {
        let end = ending(f);
        let waited = end.map_or(f.last.ts, |e| e.1.ts) - x.at.ts;
        if end.is_some() || waited >= CONN_A3_WAIT_NS {
            let last = end.map_or(f.last, |e| e.1);
            let how = end.map_or("the capture ends".to_string(), |(d, m, how)| {
                format!("the {d} {how} the connection in frame {}", m.frame)
            });
            out.push(
                Draft::new(
                    Code::GatewayRpcNoConnA3,
                    Severity::Error,
                    Phase::GatewayTunnel,
                    e.at.frame,
                    e.at.ts,
                )
                .until(last.frame)
                .summary(format!(
                    "RPC_OUT_DATA was answered 200 in frame {} but no CONN/A3 followed on the OUT channel: {:.1} s later {how}{}",
                    x.at.frame,
                    waited as f64 / 1e9,
                    r.rts("CONN/A1")
                        .map(|(_, m)| format!(" (the client's CONN/A1: frame {})", m.frame))
                        .unwrap_or_default()
                ))
                .cause(
                    "The RPC proxy accepted the OUT channel but never completed the virtual                      connection (FreeRDP logs \"Expected CONN/A3\", #1723): the IN and OUT                      channels reached different gateway servers (a load balancer without session                      affinity), so neither server sees both; or the gateway's RPC service behind                      rpcproxy.dll does not answer.",
                )
                .remedy(
                    "Give the load balancer affinity for /rpc/rpcproxy.dll (by source address) so                      both channels of a client reach the same gateway server, and check the                      gateway's RPC over HTTP service; or let clients use the HTTP transport                      (RDG_OUT_DATA), which gateways since Windows Server 2008 R2 SP1 offer.",
                )
                .filter(frames_filter(f, &[e.at.frame, x.at.frame, last.frame])),
            );
        }
    }
    let refused = r
        .bind_nak
        .map(|(reason, at)| {
            (
                at,
                format!(
                    "bind_nak: {}",
                    reason.map_or("its reason cut off".to_string(), |n| format!(
                        "{} ({n})",
                        rts::nak_reason(n)
                    ))
                ),
            )
        })
        .or_else(|| {
            r.bind_ack
                .filter(|(res, _)| res.is_some_and(|n| n != 0))
                .map(|(res, at)| {
                    (
                        at,
                        format!(
                            "a bind_ack rejecting the TsProxy interface (result {})",
                            res.unwrap_or(0)
                        ),
                    )
                })
        });
    if let Some((at, what)) = refused {
        let mut frames: Vec<u64> = r.bind.map(|b| b.frame).into_iter().collect();
        frames.push(at.frame);
        out.push(
            Draft::new(
                Code::GatewayRpcBindRefused,
                Severity::Error,
                Phase::GatewayTunnel,
                frames[0],
                r.bind.unwrap_or(at).ts,
            )
            .until(at.frame)
            .summary(format!(
                "the client's bind{} was answered with {what} in frame {}",
                r.bind.map_or(" (sent on the IN channel)".to_string(), |b| format!(
                    " (frame {})",
                    b.frame
                )),
                at.frame
            ))
            .cause(
                "The gateway's RPC service refused the client's bind to the TsProxy interface:                  the authentication the bind carries (NTLM) or its version is not accepted, or                  the service is overloaded.",
            )
            .remedy(
                "Check the gateway's TerminalServices-Gateway and System logs at that time, the                  client's gateway credentials, and that the client is a supported version; or                  use the HTTP transport.",
            )
            .filter(frames_filter(f, &frames)),
        );
    }
    if let Some((status, call, at)) = r.fault {
        let name = status.and_then(rts::fault_name);
        let status_words = match (status, name) {
            (Some(s), Some(n)) => format!("{n} (0x{s:08X})"),
            (Some(s), None) => format!("status 0x{s:08X}"),
            (None, _) => "a status that was cut off".to_string(),
        };
        let op = call.and_then(|(op, _)| op);
        let call_words = match call {
            Some((op, m)) => format!(
                "{} (its request on the IN channel in frame {})",
                op.and_then(rts::opnum_name)
                    .map_or_else(|| format!("opnum {}", op.unwrap_or(0)), str::to_string),
                m.frame
            ),
            None => "a call".to_string(),
        };
        let cause = match (status, op) {
            (Some(s), _) if tsgu::result_name(s).is_some() => {
                "The gateway refused the call with its own reason (an E_PROXY code): the same                  reasons as on the HTTP transport (RD CAP or RD RAP denial, the target                  unreachable, …)."
            }
            (Some(5), Some(1 | 2)) => {
                "The gateway refused the RPC tunnel: access denied to the tunnel call means the                  identity the client proved at the RPC bind (NTLM) is not allowed through: wrong                  gateway credentials, or a user outside every RD CAP."
            }
            (Some(0x6BA), _) => {
                "The RPC proxy could not reach the gateway's RPC service                  (RPC_S_SERVER_UNAVAILABLE, FreeRDP #6103): no backend behind rpcproxy.dll."
            }
            _ => {
                "The gateway's RPC service answered a TsProxy call with a fault: the call was                  refused or failed on the gateway."
            }
        };
        // The request travelled on the IN channel, another connection:
        // named in the summary, cited by the IN channel's own report.
        out.push(
            Draft::new(
                Code::GatewayRpcFault,
                Severity::Error,
                Phase::GatewayTunnel,
                at.frame,
                at.ts,
            )
            .summary(format!(
                "the gateway answered {call_words} with a DCE/RPC fault: {status_words} in frame {}",
                at.frame
            ))
            .cause(cause)
            .remedy(
                "Check the gateway credentials and the RD CAP / RD RAP that should admit this                  user and target, and the gateway's TerminalServices-Gateway log at that time                  (it names the refusal).",
            )
            .filter(frames_filter(f, &[at.frame])),
        );
    }
}

fn tsg(f: &Flow, g: &Leg, out: &mut Vec<Draft>) {
    let t = &g.tsg;
    let steps = [
        (
            Code::GatewayTsgHandshakeFailed,
            "HANDSHAKE_RESPONSE",
            t.handshake,
        ),
        (Code::GatewayTsgTunnelFailed, "TUNNEL_RESPONSE", t.tunnel),
        (
            Code::GatewayTsgTunnelAuthFailed,
            "TUNNEL_AUTH_RESPONSE",
            t.tunnel_auth,
        ),
        (Code::GatewayTsgChannelFailed, "CHANNEL_RESPONSE", t.channel),
    ];
    let target = t
        .target
        .as_ref()
        .map_or(String::new(), |(n, p, _)| format!(" for {n}:{p}"));
    for (code, what, v) in steps {
        let Some((res, at)) = v else {
            continue;
        };
        if !tsgu::failed(res) {
            continue;
        }
        let (cause, remedy, d) = result_meaning(res);
        out.push(with_dialog(
            Draft::new(code, Severity::Error, Phase::GatewayTunnel, at.frame, at.ts)
                .summary(format!(
                    "the gateway's {what} in frame {} carries {}{}{}",
                    at.frame,
                    result_words(res),
                    if code == Code::GatewayTsgChannelFailed {
                        target.as_str()
                    } else {
                        ""
                    },
                    dialog(d)
                ))
                .cause(cause)
                .remedy(remedy)
                .filter(frames_filter(f, &[at.frame])),
            d,
        ));
        return;
    }
    if let Some((Dir::Server, res, at)) = t.close {
        if tsgu::failed(res) {
            let (cause, remedy, d) = result_meaning(res);
            out.push(with_dialog(
                Draft::new(
                    Code::GatewayTsgClosed,
                    Severity::Warning,
                    Phase::GatewayTunnel,
                    at.frame,
                    at.ts,
                )
                .summary(format!(
                    "the gateway closed the channel in frame {} with {}{}",
                    at.frame,
                    result_words(res),
                    dialog(d)
                ))
                .cause(cause)
                .remedy(remedy)
                .filter(frames_filter(f, &[at.frame])),
                d,
            ));
        }
    }
}

/// A tunnel cut after a silence, by something other than the gateway.
fn idle_cut(f: &Flow, g: &Leg, out: &mut Vec<Draft>) {
    let t = &g.tsg;
    if !g.carried() || t.close.is_some() || g.ws.close.is_some() {
        return;
    }
    let Some((dir, end, how)) = ending(f) else {
        return;
    };
    let last = Dir::BOTH
        .iter()
        .filter_map(|&d| t.last_packet[d])
        .filter(|m| m.frame < end.frame)
        .max_by_key(|m| m.frame);
    let Some(last) = last else {
        return;
    };
    let silence = end.ts - last.ts;
    // Keep-alives had come, then stopped for longer than their gaps.
    let by_keepalive = t.keepalives >= 2 && silence > t.keepalive_gap + t.keepalive_gap / 2;
    let by_timeout = t
        .idle_timeout
        .is_some_and(|m| silence >= i64::from(m) * 60_000_000_000);
    // The gateway's side (as the client sees it) closed an idle tunnel
    // without telling the client at the MS-TSGU or WebSocket level: a
    // device in between timed it out before the gateway's next keep-alive.
    let by_server = dir == Dir::Server && silence >= IDLE_MIN_NS;
    if !(by_keepalive || by_timeout || by_server) {
        return;
    }
    let s = |ns: i64| format!("{:.1} s", ns as f64 / 1e9);
    out.push(
        Draft::new(
            Code::GatewayIdleCut,
            Severity::Warning,
            Phase::GatewayTunnel,
            last.frame,
            last.ts,
        )
        .until(end.frame)
        .summary(format!(
            "the tunnel was silent for {} after frame {}, then {dir} {how} it in frame {} without a CLOSE_CHANNEL or WebSocket close from the gateway; {}",
            s(silence),
            last.frame,
            end.frame,
            if by_keepalive {
                format!(
                    "the gateway's keep-alives had come at most {} apart ({} seen)",
                    s(t.keepalive_gap),
                    t.keepalives
                )
            } else if by_timeout {
                format!(
                    "the gateway announced an idle timeout of {} min",
                    t.idle_timeout.unwrap_or(0)
                )
            } else if t.keepalives == 0 {
                "no keep-alive from the gateway came before it (its interval is longer than the silence)"
                    .to_string()
            } else {
                format!(
                    "{} keep-alive{} had come before it",
                    t.keepalives,
                    if t.keepalives == 1 { "" } else { "s" }
                )
            }
        ))
        .cause(
            "Something between the client and the gateway (a proxy, load balancer or firewall) \
             cut a tunnel it thought idle: its timeout is shorter than the gateway's keep-alive \
             interval.",
        )
        .remedy(
            "Raise the idle or tunnel timeout of the device in between above the gateway's \
             keep-alive interval (HAProxy timeout tunnel, nginx proxy_read_timeout, the load \
             balancer's idle timeout).",
        )
        .filter(frames_filter(f, &[last.frame, end.frame])),
    );
}

/// A gateway's TLS without keys: what the shapes show.
fn encrypted(f: &Flow, out: &mut Vec<Draft>) {
    let x = f.app.facts();
    let t = &x.tls;
    let Some((_, first)) = t.client_hello else {
        return;
    };
    let version = t
        .server_hello
        .map_or("no ServerHello".to_string(), |(h, _)| {
            format!(
                "{}, {}",
                crate::proto::tls::version_name(h.version),
                crate::proto::tls::cipher_name(h.cipher)
            )
        });
    let sizes = |d: Dir| -> String {
        let v: Vec<String> = t
            .records
            .iter()
            .filter(|r| r.dir == d)
            .take(4)
            .map(|r| r.len.to_string())
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    let end = ending(f).map_or(
        "still open at the end of the capture".to_string(),
        |(d, m, how)| format!("{d} {how} in frame {}", m.frame),
    );
    out.push(
        Draft::new(
            Code::GatewayEncrypted,
            Severity::Info,
            Phase::GatewayHttp,
            first.frame,
            first.ts,
        )
        .until(f.last.frame)
        .summary(format!(
            "a gateway leg to {} in TLS ({version}): {} client / {} server records (first sizes client {}; server {}); {end}",
            f.server,
            t.app[Dir::Client].records,
            t.app[Dir::Server].records,
            sizes(Dir::Client),
            sizes(Dir::Server),
        ))
        .cause(
            "The gateway's HTTP, its status codes and the MS-TSGU results travel inside TLS; \
             without the session's keys only sizes, timing and who closed can be seen.",
        )
        .remedy(
            "Capture with the client's TLS key log (SSLKEYLOGFILE, or a pcapng with Decryption \
             Secrets) and give it with --keylog to read the gateway's answers.",
        )
        .filter(frames_filter(f, &[first.frame, f.last.frame])),
    );
}
