//! session: connection attempts and their verdicts. An attempt is what one
//! client did to reach one server: its TCP connection, plus the retries
//! that followed a failed one within the attempt window (e.g. a new
//! connection with other protocols after RDP_NEG_FAILURE). A failure
//! followed by a connected retry is `rdp.fallback`, not the root cause.

use crate::config::Config;
use crate::detect::{cert::server_cert, Draft};
use crate::flow::table::DnsLookup;
use crate::flow::{Flow, Mark, Transport};
use crate::proto::tls::{cipher_name, version_name};
use crate::proto::x224::{failure_name, NegResult};
use crate::proto::{AppClass, Via};
use crate::report::model::{rfc3339, Attempt, Confidence, Finding, Outcome, Phase, Severity};

/// A finished flow with what the detectors found on it.
pub struct Judged {
    pub flow: Flow,
    pub drafts: Vec<Draft>,
}

/// Codes `rdp.fallback` adds at the session level (for the catalog test).
pub const SESSION_CODES: &[&str] = &[
    "rdp.fallback",
    "dns.nxdomain",
    "dns.no_response",
    "udp.fallback_tcp",
];

/// A query unanswered this long before the end of the capture counts as
/// never answered (Windows' resolver retries after 1 s, gives up after ~10).
pub const DNS_TIMEOUT_NS: i64 = 2_000_000_000;

/// Names an attempt used that DNS could have resolved.
fn dns_names(f: &Flow, fx: &Facts, cfg: &Config) -> Vec<String> {
    let mut v = Vec::new();
    v.push(fx.target.clone());
    if let Some((c, _, _)) = server_cert(f) {
        v.extend(c.san);
        v.extend(c.cn);
    }
    v.extend(cfg.target.clone());
    let mut v: Vec<String> = v
        .into_iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| {
            !n.is_empty()
                && n.contains('.')
                && !n.contains(['=', ' ', '/', ':', '*'])
                && n.parse::<std::net::IpAddr>().is_err()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// `dns.nxdomain` / `dns.no_response` for the first of `names` whose
/// lookups all failed; with the DNS flow's endpoints.
fn dns_finding(
    names: &[String],
    dns: &[DnsLookup],
    end: Mark,
) -> Option<(std::net::SocketAddr, std::net::SocketAddr, Draft)> {
    use crate::proto::dns::rcode_name;
    for name in names {
        let qs: Vec<&DnsLookup> = dns.iter().filter(|d| &d.query.name == name).collect();
        let Some(first) = qs.first() else {
            continue;
        };
        let resolved = qs
            .iter()
            .any(|d| d.query.answer.is_some_and(|a| a.rcode == 0 && a.count > 0));
        if resolved {
            continue;
        }
        let failed = qs
            .iter()
            .find(|d| d.query.answer.is_some_and(|a| a.rcode != 0));
        let nodata = qs.iter().find(|d| d.query.answer.is_some());
        let waited = qs
            .iter()
            .all(|d| d.query.answer.is_some() || end.ts - d.query.at.ts >= DNS_TIMEOUT_NS);
        let last = qs.last().map_or(first.query.at, |d| {
            d.query.answer.map_or(d.query.at, |a| a.at)
        });
        let servers: Vec<String> = {
            let mut s: Vec<String> = qs.iter().map(|d| d.server.ip().to_string()).collect();
            s.dedup();
            s
        };
        let (code, summary, cause, remedy) = if let Some(d) = failed.or(nodata) {
            let a = d.query.answer.unwrap_or(crate::proto::dns::Answer {
                rcode: 0,
                count: 0,
                at: d.query.at,
            });
            let what = if a.rcode == 0 {
                "NOERROR without address records".to_string()
            } else {
                rcode_name(a.rcode)
            };
            (
                "dns.nxdomain",
                format!(
                    "The DNS server {} answered {what} for {name} in frame {} ({} quer{} for the name, none resolved)",
                    d.server.ip(),
                    a.at.frame,
                    qs.len(),
                    if qs.len() == 1 { "y" } else { "ies" }
                ),
                if a.rcode == 2 {
                    "The DNS server could not resolve the name (SERVFAIL: its upstream or the zone's servers failed)."
                } else {
                    "The name does not exist in DNS as the client asked for it (a typo, a missing record, or a search suffix not applied)."
                },
                "Check the name (nslookup NAME SERVER); add the A/AAAA record or fix the client's DNS suffix; meanwhile connect by IP address.",
            )
        } else if waited {
            (
                "dns.no_response",
                format!(
                    "{} quer{} for {name} to {} got no answer",
                    qs.len(),
                    if qs.len() == 1 { "y" } else { "ies" },
                    servers.join(", ")
                ),
                "The DNS server is unreachable or does not answer (firewall on UDP 53, a VPN DNS server that is down).",
                "Check the client's DNS servers (ipconfig /all) and that UDP/TCP 53 reaches them; meanwhile connect by IP address.",
            )
        } else {
            continue;
        };
        let draft = Draft {
            code: code.into(),
            severity: Severity::Error,
            phase: Phase::Dns,
            first_frame: first.query.at.frame,
            last_frame: last.frame.max(first.query.at.frame),
            ts: first.query.at.ts,
            summary,
            cause: cause.into(),
            remedy: remedy.into(),
            filter: format!("dns.qry.name==\"{name}\""),
            confidence: Confidence::high(),
        };
        return Some((first.client, first.server, draft));
    }
    None
}

fn order(a: &Draft, b: &Draft) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then(a.phase.cmp(&b.phase))
        .then(a.first_frame.cmp(&b.first_frame))
}

/// The primary finding: most severe, then earliest phase, then earliest frame.
pub fn primary(drafts: &[Draft]) -> Option<&Draft> {
    drafts.iter().min_by(|a, b| order(a, b))
}

fn outcome(f: &Flow, drafts: &[Draft]) -> (Outcome, Option<Phase>) {
    let failing = drafts
        .iter()
        .filter(|d| {
            d.severity >= Severity::Error
                || d.code == "tcp.stalled"
                || (f.key.transport == Transport::Udp
                    && d.phase == Phase::Udp
                    && d.severity >= Severity::Warning)
        })
        .min_by(|a, b| order(a, b));
    let both_ways = f.dirs[0].payload > 0 && f.dirs[1].payload > 0;
    if let Some(d) = failing {
        // A stall in a session that then exchanged data both ways and ended
        // cleanly is not a failure by itself.
        if d.severity >= Severity::Error || !both_ways || f.closed() {
            return (Outcome::Failed, Some(d.phase));
        }
    }
    let connected = match f.key.transport {
        Transport::Tcp => (f.established.is_some() || f.mid_stream) && both_ways,
        Transport::Udp => {
            let u = &f.app.facts().udp;
            if u.syn.is_some() {
                u.established()
            } else {
                both_ways
            }
        }
    };
    if connected {
        (Outcome::Connected, None)
    } else {
        (Outcome::Incomplete, None)
    }
}

fn app_name(f: &Flow) -> String {
    match f.app.class {
        AppClass::Rdp { via, .. } => match via {
            Via::Direct => "rdp".into(),
            Via::Socks4 => "rdp via socks4".into(),
            Via::Socks5 => "rdp via socks5".into(),
            Via::HttpConnect => "rdp via http connect".into(),
            Via::Preconnection => "rdp with preconnection pdu".into(),
        },
        AppClass::Tls => "tls".into(),
        AppClass::Http => "http".into(),
        AppClass::Other => "other".into(),
        AppClass::Unknown => {
            let u = &f.app.facts().udp;
            match (u.version(), u.syn.is_some(), u.dtls.is_some()) {
                (Some(2), _, _) => "rdpeudp2".into(),
                (Some(_), _, _) => "rdpeudp v1".into(),
                (None, true, _) => "rdpeudp".into(),
                (None, false, true) => "gateway dtls".into(),
                _ => String::new(),
            }
        }
    }
}

/// Does the evidence fit the client's 0x904 ("socket closed") / 0x7
/// ("server denied"): the server side (or a device in its name) ended the
/// connection without a protocol message that the client would name.
fn fits_0x904(outcome: Outcome, verdict: &str, f: &Flow) -> &'static str {
    if outcome == Outcome::Connected {
        return "no";
    }
    let server_ended = crate::detect::ending(f).is_some_and(|e| e.0 == crate::flow::SERVER);
    match verdict {
        "tcp.closed_by_server"
        | "tcp.reset_by_server"
        | "tcp.reset_by_middlebox"
        | "rdp.server_denied"
        | "nla.stalled" => "yes",
        "x224.no_confirm" | "tls.no_server_hello" | "x224.legacy_rejected" if server_ended => "yes",
        v if v.starts_with("x224.neg_failure")
            || v.starts_with("tls.alert.")
            || v.starts_with("tls.cert.")
            || matches!(
                v,
                "tcp.syn_unanswered"
                    | "tcp.refused"
                    | "tcp.icmp_unreachable"
                    | "tcp.reset_by_client"
                    | "x224.client_aborted"
                    | "x224.unrequested_protocol"
                    | "tls.version_mismatch"
            ) =>
        {
            "no"
        }
        _ => "unknown",
    }
}

/// One group of flows: one client trying one server.
struct Group {
    /// The connections of the try (TCP, or a UDP flow of its own).
    flows: Vec<usize>,
    /// UDP side channels (RDPEUDP, gateway DTLS) linked to those.
    side: Vec<usize>,
}

/// The TCP connection a UDP flow belongs to: same client host and server
/// host, the UDP flow starting while the TCP connection was up (or within
/// the attempt window after it); a correlation id carried by both wins.
fn link_udp(judged: &[Judged], u: usize, window: i64) -> Option<usize> {
    let uf = &judged[u].flow;
    let ucorr = uf.app.facts().udp.syn.and_then(|(s, _)| s.correlation_id);
    let mut best: Option<usize> = None;
    for (i, j) in judged.iter().enumerate() {
        let f = &j.flow;
        if f.key.transport != Transport::Tcp
            || f.client.ip() != uf.client.ip()
            || f.server.ip() != uf.server.ip()
        {
            continue;
        }
        let tcorr = f
            .app
            .facts()
            .cr
            .as_ref()
            .and_then(|(r, _)| r.correlation_id);
        if ucorr.is_some() && ucorr == tcorr {
            return Some(i);
        }
        if uf.first.ts >= f.first.ts && uf.first.ts <= f.last.ts + window {
            best = Some(i); // the latest TCP connection before it
        }
    }
    best
}

/// Per-flow protocol facts for the attempt row.
#[derive(Default)]
struct Facts {
    target: String,
    user: String,
    requested: String,
    selected: String,
    tls_version: String,
    tls_cipher: String,
    cert_subject: String,
    cert_not_after: String,
    client_name: String,
    client_build: String,
    channels: String,
    rdp_encryption: String,
}

/// The connection's timeline in frames: `tcp 1-3; x224 4-6 SSL|HYBRID→HYBRID;
/// tls 8-16 TLS 1.2; nla 3c/2s records; data c18 s20; server FIN 60`.
pub fn timeline(f: &Flow) -> String {
    use crate::proto::Step;
    let x = &f.app.facts();
    let mut v: Vec<String> = Vec::new();
    let syn = f.dirs[0].syn;
    if syn.count > 0 {
        match f.established {
            Some(e) => v.push(format!("tcp {}-{}", syn.first.frame, e.frame)),
            None if f.syn_ack.count > 0 => {
                v.push(format!("tcp {}-{}", syn.first.frame, f.syn_ack.first.frame))
            }
            None => v.push(format!("tcp syn {}x from {}", syn.count, syn.first.frame)),
        }
    } else if f.mid_stream {
        v.push("tcp mid-stream".into());
    }
    if let Some((cr, at)) = &x.cr {
        let req = cr
            .neg
            .map_or("none".to_string(), |n| n.protocols.to_string());
        match &x.cc {
            Some((cc, cat)) => {
                let ans = match cc {
                    NegResult::None => "RDP".to_string(),
                    NegResult::Rsp { selected, .. } => selected.to_string(),
                    NegResult::Failure { code } => {
                        failure_name(*code).map_or(format!("failure {code}"), |n| n.0.to_string())
                    }
                };
                v.push(format!("x224 {}-{} {req}→{ans}", at.frame, cat.frame));
            }
            None => v.push(format!("x224 {} {req}→(none)", at.frame)),
        }
    }
    if let Some(m) = x.when(Step::McsConnectInitial) {
        let r = x
            .when(Step::McsConnectResponse)
            .map_or(String::new(), |r| format!("-{}", r.frame));
        v.push(format!("mcs {}{r}", m.frame));
    }
    if let Some((_, ch)) = &x.tls.client_hello {
        let end = x
            .tls
            .done
            .or(x.tls.server_hello.map(|s| s.1))
            .map_or(String::new(), |m| format!("-{}", m.frame));
        let ver = x.tls.server_hello.map_or(String::new(), |(h, _)| {
            format!(" {}", version_name(h.version))
        });
        let state = if x.tls.done.is_some() {
            ""
        } else {
            " (incomplete)"
        };
        v.push(format!("tls {}{end}{ver}{state}", ch.frame));
    }
    let t = &x.tls;
    if t.done.is_some() {
        v.push(format!(
            "encrypted {}c/{}s records, {}/{} bytes",
            t.app[0].records, t.app[1].records, t.app[0].bytes, t.app[1].bytes
        ));
    }
    let u = &x.udp;
    if let Some((_, first)) = u.syn {
        let mut t = format!("rdpeudp syn {}x from {}", u.syns, first.frame);
        if let Some((_, sa)) = u.syn_ack {
            t.push_str(&format!(
                ", syn+ack {} v{}",
                sa.frame,
                u.version().unwrap_or(1)
            ));
        }
        v.push(t);
    }
    if let Some(d) = u.dtls {
        v.push(format!("dtls {}x from {}", u.dtls_count, d.frame));
    }
    if let (Some(c), Some(s)) = (f.dirs[0].first_data, f.dirs[1].first_data) {
        v.push(format!("data c{} s{}", c.frame, s.frame));
    }
    if let Some((d, m, how)) = crate::detect::ending(f) {
        let phase = crate::detect::rdp_moment(f, m.frame).map_or("tcp", |p| p.0.name());
        let how = if how == "reset" { "RST" } else { "FIN" };
        v.push(format!(
            "{} {how} {} ({phase})",
            crate::detect::SIDE[d],
            m.frame
        ));
    }
    v.join("; ")
}

fn facts(f: &Flow) -> Facts {
    let x = &f.app.facts();
    let mut r = Facts::default();
    if let Some((cr, _)) = &x.cr {
        r.user = cr.cookie.clone().unwrap_or_default();
        r.target = cr.routing_token.clone().unwrap_or_default();
        r.requested = cr
            .neg
            .map_or("none".to_string(), |n| n.protocols.to_string());
    }
    if let Some((h, _)) = &x.tls.client_hello {
        if let Some(sni) = &h.sni {
            r.target = sni.clone();
        }
    }
    if let Some((cc, _)) = &x.cc {
        r.selected = match cc {
            NegResult::None => "RDP (no negotiation)".into(),
            NegResult::Rsp { selected, .. } => selected.to_string(),
            NegResult::Failure { code } => format!(
                "failure {}",
                failure_name(*code).map_or(code.to_string(), |n| n.0.to_string())
            ),
        };
    }
    if let Some((h, _)) = &x.tls.server_hello {
        r.tls_version = version_name(h.version);
        r.tls_cipher = cipher_name(h.cipher);
    }
    if let Some((c, _, _)) = server_cert(f) {
        r.cert_subject = c.subject;
        r.cert_not_after = rfc3339(c.not_after.saturating_mul(1_000_000_000));
    }
    if let Some((c, _)) = &x.client_data {
        r.client_name = c.name.trim_end().to_string();
        r.client_build = c.build.to_string();
        r.channels = c.channels.join(";");
    }
    if let Some((sd, _)) = &x.server_data {
        if let (Some(m), Some(l)) = (sd.encryption_method, sd.encryption_level) {
            r.rdp_encryption = format!(
                "{}, {}",
                crate::proto::mcs::method_name(m),
                crate::proto::mcs::level_name(l)
            );
        }
    }
    r
}

/// Does `--target` name this flow's server?
fn targeted(f: &Flow, target: &str) -> bool {
    if let Ok(ip) = target.parse::<std::net::IpAddr>() {
        return f.server.ip() == ip;
    }
    let fx = facts(f);
    let mut names = vec![fx.target.clone()];
    if let Some((c, _, _)) = server_cert(f) {
        names.extend(c.san);
        names.extend(c.cn);
    }
    names
        .iter()
        .any(|n| crate::proto::tls::name_matches(n, target) || n.eq_ignore_ascii_case(target))
}

/// Groups flows into attempts, numbers them by first frame and turns
/// drafts into findings.
pub fn build(
    capture: &str,
    mut judged: Vec<Judged>,
    dns: &[DnsLookup],
    end: Mark,
    cfg: &Config,
) -> (Vec<Attempt>, Vec<Finding>) {
    judged.sort_by(|a, b| {
        (a.flow.first.frame, a.flow.client, a.flow.server).cmp(&(
            b.flow.first.frame,
            b.flow.client,
            b.flow.server,
        ))
    });
    if let Some(t) = &cfg.target {
        judged.retain(|j| targeted(&j.flow, t));
    }
    let outcomes: Vec<(Outcome, Option<Phase>)> =
        judged.iter().map(|j| outcome(&j.flow, &j.drafts)).collect();
    let udp_link: Vec<Option<usize>> = (0..judged.len())
        .map(|i| {
            let f = &judged[i].flow;
            let side = f.key.transport == Transport::Udp
                && (f.app.facts().udp.syn.is_some() || f.app.facts().udp.dtls.is_some());
            if side {
                link_udp(&judged, i, cfg.attempt_window_ns)
            } else {
                None
            }
        })
        .collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: Vec<Option<usize>> = vec![None; judged.len()];
    // The newest group per (client host, server, transport): a retry can
    // only continue the latest try of that pair.
    let mut latest: rustc_hash::FxHashMap<
        (std::net::IpAddr, std::net::SocketAddr, Transport),
        usize,
    > = Default::default();
    for (i, j) in judged.iter().enumerate() {
        if udp_link[i].is_some() {
            continue;
        }
        let f = &j.flow;
        let key = (f.client.ip(), f.server, f.key.transport);
        let open = latest.get(&key).copied().filter(|&g| {
            let last = *groups[g].flows.last().unwrap_or(&i);
            let p = &judged[last].flow;
            outcomes[last].0 != Outcome::Connected
                && f.first.ts - p.last.ts <= cfg.attempt_window_ns
                && f.first.ts >= p.first.ts
        });
        match open {
            Some(g) => {
                groups[g].flows.push(i);
                group_of[i] = Some(g);
            }
            None => {
                latest.insert(key, groups.len());
                group_of[i] = Some(groups.len());
                groups.push(Group {
                    flows: vec![i],
                    side: Vec::new(),
                });
            }
        }
    }
    for (u, link) in udp_link.iter().enumerate() {
        if let Some(g) = link.and_then(|t| group_of[t]) {
            groups[g].side.push(u);
        }
    }
    let mut attempts = Vec::with_capacity(groups.len());
    let mut findings = Vec::new();
    for (n, g) in groups.iter().enumerate() {
        let id = format!("#{}", n + 1);
        let first = &judged[g.flows[0]].flow;
        let last_i = *g.flows.last().unwrap_or(&g.flows[0]);
        let last = &judged[last_i].flow;
        let (mut outcome, mut failed_phase) = outcomes[last_i];
        let mut fx = facts(last);
        // (flow, draft); the session-level rdp.fallback belongs to the last.
        let mut drafts: Vec<(usize, Draft)> = Vec::new();
        let retried = g.flows.len() > 1;
        for &i in &g.flows {
            let superseded = retried && i != last_i && outcome == Outcome::Connected;
            for d in &judged[i].drafts {
                let mut d = d.clone();
                if superseded && d.severity >= Severity::Warning {
                    d.severity = Severity::Info;
                    d.summary.push_str(&format!(
                        " (superseded: the retry from port {} connected)",
                        last.client.port()
                    ));
                }
                drafts.push((i, d));
            }
        }
        // UDP side channels: their findings, and udp.fallback_tcp when the
        // UDP transport failed while TCP carried on.
        for &u in &g.side {
            let uf = &judged[u].flow;
            for d in &judged[u].drafts {
                drafts.push((u, d.clone()));
            }
            let ux = &uf.app.facts().udp;
            let failed = judged[u]
                .drafts
                .iter()
                .find(|d| d.phase == Phase::Udp && d.severity >= Severity::Warning);
            if let (Some(fd), Outcome::Connected) = (failed, outcome) {
                drafts.push((
                    u,
                    Draft {
                        code: "udp.fallback_tcp".into(),
                        severity: Severity::Info,
                        phase: Phase::Udp,
                        first_frame: fd.first_frame,
                        last_frame: fd.last_frame,
                        ts: fd.ts,
                        summary: format!(
                            "The UDP transport to {} failed ({}); the session carried on over TCP from port {}{}",
                            uf.server,
                            fd.code,
                            last.client.port(),
                            ux.syn
                                .and_then(|(s, _)| s.correlation_id)
                                .filter(|c| {
                                    last.app.facts().cr.as_ref().and_then(|(r, _)| r.correlation_id)
                                        == Some(*c)
                                })
                                .map_or(String::new(), |_| " (same correlation id)".into())
                        ),
                        cause: "RDP uses UDP for better interactivity when it can, and TCP otherwise."
                            .into(),
                        remedy: "Performance, not connectivity: allow UDP 3389 end to end to get \
                                 the UDP transport."
                            .into(),
                        filter: crate::detect::conversation_filter(uf),
                        confidence: Confidence::high(),
                    },
                ));
            }
        }
        // A connected attempt's verdict names only a warning or worse.
        let mut verdict = drafts
            .iter()
            .map(|(_, d)| d)
            .filter(|d| outcome != Outcome::Connected || d.severity >= Severity::Warning)
            .min_by(|a, b| order(a, b))
            .map(|d| d.code.clone())
            .unwrap_or_default();
        if retried && outcome == Outcome::Connected {
            let failed: Vec<&Flow> = g.flows[..g.flows.len() - 1]
                .iter()
                .map(|&i| &judged[i].flow)
                .collect();
            let why: Vec<String> = g.flows[..g.flows.len() - 1]
                .iter()
                .filter_map(|&i| primary(&judged[i].drafts).map(|d| d.code.clone()))
                .collect();
            let mut frames: Vec<u64> = failed.iter().map(|f| f.first.frame).collect();
            frames.push(last.first.frame);
            let set = crate::detect::frame_set(&frames);
            drafts.push((last_i, Draft {
                code: "rdp.fallback".into(),
                severity: Severity::Info,
                phase: Phase::Rdp,
                first_frame: first.first.frame,
                last_frame: last.first.frame,
                ts: last.first.ts,
                summary: format!(
                    "{} failed connection{} ({}), then the retry from port {} in frame {} connected{}",
                    failed.len(),
                    crate::detect::plural(failed.len()),
                    if why.is_empty() { "no finding".to_string() } else { why.join(", ") },
                    last.client.port(),
                    last.first.frame,
                    if fx.requested.is_empty() {
                        String::new()
                    } else {
                        format!(" requesting {} (selected {})", fx.requested, fx.selected)
                    }
                ),
                cause: "The client retried with other security protocols after the server refused \
                        the first offer; the first failure is not the root cause."
                    .into(),
                remedy: "Nothing is broken; to save the round trip, align the client's offer with \
                         the server's security layer."
                    .into(),
                filter: format!(
                    "{} && ({set})",
                    crate::detect::hosts_filter(first.client.ip(), first.server)
                ),
                confidence: Confidence::high(),
            }));
            verdict = "rdp.fallback".into();
            outcome = Outcome::Connected;
            failed_phase = None;
        }
        // The attempt's facts come from the connection that decided it,
        // completed by the earlier ones.
        for &i in g.flows.iter().rev().skip(1) {
            let o = facts(&judged[i].flow);
            for (a, b) in [
                (&mut fx.target, o.target),
                (&mut fx.user, o.user),
                (&mut fx.cert_subject, o.cert_subject),
                (&mut fx.cert_not_after, o.cert_not_after),
            ] {
                if a.is_empty() {
                    *a = b;
                }
            }
        }
        if fx.target.is_empty() {
            fx.target = cfg.target.clone().unwrap_or_default();
        }
        let dns_names = if outcome != Outcome::Connected && !dns.is_empty() {
            dns_names(last, &fx, cfg)
        } else {
            Vec::new()
        };
        let flows = || g.flows.iter().chain(&g.side).map(|&i| &judged[i].flow);
        attempts.push(Attempt {
            capture: capture.to_string(),
            attempt: id.clone(),
            client: fmt_ep(first.client),
            server: fmt_ep(first.server),
            transport: if g.side.is_empty() {
                first.key.transport.name().to_string()
            } else {
                format!("{}+udp", first.key.transport.name())
            },
            start: first.first.ts,
            end: flows().map(|f| f.last.ts).max().unwrap_or(first.last.ts),
            packets: flows().map(|f| f.dirs[0].packets + f.dirs[1].packets).sum(),
            bytes: flows().map(|f| f.dirs[0].bytes + f.dirs[1].bytes).sum(),
            fits_0x904: fits_0x904(outcome, &verdict, last),
            outcome,
            failed_phase,
            verdict,
            app: app_name(last),
            first_frame: first.first.frame,
            last_frame: flows().map(|f| f.last.frame).max().unwrap_or(0),
            connections: (g.flows.len() + g.side.len()) as u32,
            target: fx.target,
            user: fx.user,
            requested: fx.requested,
            selected: fx.selected,
            tls_version: fx.tls_version,
            tls_cipher: fx.tls_cipher,
            cert_subject: fx.cert_subject,
            cert_not_after: fx.cert_not_after,
            client_name: fx.client_name,
            client_build: fx.client_build,
            channels: fx.channels,
            rdp_encryption: fx.rdp_encryption,
            timeline: flows().map(timeline).collect::<Vec<_>>().join(" | "),
        });
        for (i, d) in drafts {
            let f = &judged[i].flow;
            findings.push(finding(
                capture,
                &id,
                &fmt_ep(f.client),
                &fmt_ep(f.server),
                d,
            ));
        }
        // A name of this attempt that DNS never resolved: context for a
        // failed attempt (the client still reached an address), a warning.
        if outcome != Outcome::Connected {
            if let Some((c, s, mut d)) = dns_finding(&dns_names, dns, end) {
                d.severity = Severity::Warning;
                d.summary
                    .push_str("; the client connected to an address nevertheless");
                findings.push(finding(capture, &id, &fmt_ep(c), &fmt_ep(s), d));
            }
        }
    }
    // `--target NAME` that never got as far as a connection: the lookup
    // is the attempt.
    if let Some(t) = cfg.target.as_ref().filter(|_| attempts.is_empty()) {
        let name = t.trim_end_matches('.').to_ascii_lowercase();
        if let Some((c, s, d)) = dns_finding(std::slice::from_ref(&name), dns, end) {
            let id = "#1".to_string();
            attempts.push(Attempt {
                capture: capture.to_string(),
                attempt: id.clone(),
                client: fmt_ep(c),
                server: fmt_ep(s),
                transport: "udp".into(),
                start: d.ts,
                end: d.ts,
                outcome: Outcome::Failed,
                failed_phase: Some(Phase::Dns),
                verdict: d.code.clone(),
                app: "dns".into(),
                first_frame: d.first_frame,
                last_frame: d.last_frame,
                target: name,
                fits_0x904: "no",
                ..Default::default()
            });
            findings.push(finding(capture, &id, &fmt_ep(c), &fmt_ep(s), d));
        }
    }
    (attempts, findings)
}

pub fn finding(capture: &str, attempt: &str, client: &str, server: &str, d: Draft) -> Finding {
    Finding {
        capture: capture.to_string(),
        attempt: attempt.to_string(),
        code: d.code,
        severity: d.severity,
        phase: d.phase,
        client: client.to_string(),
        server: server.to_string(),
        first_frame: d.first_frame,
        last_frame: d.last_frame,
        ts: d.ts,
        summary: d.summary,
        cause: d.cause,
        remedy: d.remedy,
        filter: d.filter,
        confidence: d.confidence,
    }
}

/// `addr:port`, IPv6 as `[addr]:port` (what `SocketAddr` prints).
pub fn fmt_ep(a: std::net::SocketAddr) -> String {
    a.to_string()
}
