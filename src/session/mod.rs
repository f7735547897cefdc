//! session: what happened, connection by connection and attempt by attempt;
//! it judges nothing. A finished flow becomes a [`Conn`] (endpoints, facts,
//! timeline, and what the per-flow detectors said of it); [`group`] makes
//! attempts of them: what one client did to reach one server, its TCP
//! connection plus the retries that followed a failed one within the
//! attempt window, with the UDP side channels (RDPEUDP, gateway DTLS)
//! joined to the TCP connection they belong to. [`moment`] says where in
//! the connection sequence a frame falls; [`dns`] what DNS did for a name.

pub mod conn;
pub mod dns;
pub mod moment;
pub mod scan;

pub use conn::{Conn, Facts, GatewayUse, InsideUse, KeyUse, Redirected};

use crate::capture::Mark;
use crate::config::Config;
use crate::finding::Outcome;
use crate::flow::table::DnsLookup;
use crate::flow::Transport;
use std::net::{IpAddr, SocketAddr};

/// A `--target NAME` that never got as far as a connection: its failed
/// lookups are the attempt.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub name: String,
    /// The first lookup's client and DNS server.
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// One attempt: indexes into the capture's [`Conn`]s.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based, in order of the first frame.
    pub number: usize,
    /// The connections of the try, in order; the last one decided it.
    pub conns: Vec<usize>,
    /// UDP side channels linked to those.
    pub side: Vec<usize>,
    /// Set for an attempt that is only a failed lookup (no `conns`).
    pub lookup: Option<Lookup>,
    /// The facts of the deciding connection, completed by the earlier
    /// ones and `--target`.
    pub facts: Facts,
    /// Connections that joined because a Server Redirection PDU sent the
    /// client there (a connection broker), not as retries.
    pub redirected: usize,
    /// Tunnelled RDP connections that joined the gateway leg carrying
    /// them (not retries either).
    pub tunnelled: usize,
    /// KDC proxy calls among `conns` (each MIT or Windows call is a
    /// connection of its own; not retries).
    pub companions: usize,
}

impl Attempt {
    /// The connection that decided the attempt.
    pub fn last(&self) -> Option<usize> {
        self.conns.last().copied()
    }

    /// Was it retried (more connections than the first and those a
    /// redirection sent the client to)?
    pub fn retried(&self) -> bool {
        self.conns.len() > 1 + self.redirected + self.tunnelled + self.companions
    }

    /// The gateway connections of the attempt (tunnel legs, companion
    /// channels, KDC proxy calls).
    pub fn legs(&self, conns: &[Conn]) -> usize {
        self.conns
            .iter()
            .chain(&self.side)
            .filter(|&&i| conns[i].gateway().is_some_and(|g| g.carried_by.is_none()))
            .count()
    }

    /// The names DNS could have resolved for it: the target, the last
    /// connection's certificate names, `--target`.
    pub fn names(&self, conns: &[Conn], cfg: &Config) -> Vec<String> {
        let cert = self.last().map(|l| &conns[l].cert_names[..]).unwrap_or(&[]);
        dns::lookup_names(
            std::iter::once(&self.facts.target)
                .chain(cert)
                .chain(cfg.target.as_ref()),
        )
    }
}

/// Report order of connections (and of attempts, by their first
/// connection): first frame, then endpoints.
pub fn order(c: &Conn) -> (u64, SocketAddr, SocketAddr) {
    (c.first.frame, c.client, c.server)
}

/// The TCP connection a UDP side channel belongs to: same client host and
/// server host, a TCP connection that began before the UDP flow (in
/// capture order) and was up when it started or ended within the attempt
/// window before (the latest such); a correlation id carried by both wins
/// (the first connection with it).
fn link_udp(conns: &[Conn], links: &UdpLinks, u: usize, window: i64) -> Option<usize> {
    let uc = &conns[u];
    let pair = (uc.client.ip(), uc.server.ip());
    if let Some(id) = uc.correlation_id {
        if let Some(&i) = links.by_id.get(&(pair.0, pair.1, id)) {
            return Some(i);
        }
    }
    let (list, tree) = links.by_pair.get(&pair)?;
    let t = uc.first.ts;
    // The latest that began before it and was still up (or recently so):
    // a search over the largest ends, not a walk over every connection of
    // the pair (a million side channels were quadratic).
    let mut end = list.partition_point(|&i| i < u);
    while let Some(k) = tree.rightmost_at_least(end, t.saturating_sub(window)) {
        if conns[list[k]].first.ts <= t {
            return Some(list[k]);
        }
        end = k;
    }
    None
}

/// The TCP connections of each host pair (in order, with a tree of their
/// last times) and the first of each correlation id, for [`link_udp`].
#[derive(Default)]
struct UdpLinks {
    by_pair: rustc_hash::FxHashMap<(IpAddr, IpAddr), (Vec<usize>, MaxTree)>,
    by_id: rustc_hash::FxHashMap<(IpAddr, IpAddr, [u8; 16]), usize>,
}

impl UdpLinks {
    fn new(conns: &[Conn]) -> UdpLinks {
        let mut l = UdpLinks::default();
        if !conns.iter().any(|c| c.udp_side) {
            return l;
        }
        let mut lists: rustc_hash::FxHashMap<(IpAddr, IpAddr), Vec<usize>> = Default::default();
        for (i, c) in conns.iter().enumerate() {
            if c.transport != Transport::Tcp {
                continue;
            }
            let pair = (c.client.ip(), c.server.ip());
            lists.entry(pair).or_default().push(i);
            if let Some(id) = c.correlation_id {
                l.by_id.entry((pair.0, pair.1, id)).or_insert(i);
            }
        }
        for (pair, list) in lists {
            let last: Vec<i64> = list.iter().map(|&i| conns[i].last.ts).collect();
            l.by_pair.insert(pair, (list, MaxTree::new(&last)));
        }
        l
    }
}

/// A max segment tree: the rightmost position before `end` whose value is
/// at least `x`, in O(log n).
struct MaxTree {
    size: usize,
    max: Vec<i64>,
}

impl MaxTree {
    fn new(values: &[i64]) -> MaxTree {
        let size = values.len().next_power_of_two().max(1);
        let mut max = vec![i64::MIN; 2 * size];
        max[size..size + values.len()].copy_from_slice(values);
        for n in (1..size).rev() {
            max[n] = max[2 * n].max(max[2 * n + 1]);
        }
        MaxTree { size, max }
    }

    fn rightmost_at_least(&self, end: usize, x: i64) -> Option<usize> {
        self.find(1, 0, self.size, end, x)
    }

    /// In node `n` covering `lo..hi`.
    fn find(&self, n: usize, lo: usize, hi: usize, end: usize, x: i64) -> Option<usize> {
        if lo >= end || self.max[n] < x {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.find(2 * n + 1, mid, hi, end, x)
            .or_else(|| self.find(2 * n, lo, mid, end, x))
    }
}

/// The OUT channel an RPC-over-HTTP IN channel belongs to. RPC clients
/// open the IN channel first (FreeRDP rpc.c, MS-RPCH 3.2.2.4.1), so it
/// cannot wait for an earlier OUT channel: the OUT channel of the same
/// client host and gateway with the same virtual connection cookie (both
/// channels carry it, CONN/A1 and CONN/B1), else the nearest one opened
/// within [`LEG_PAIR_NS`] of it either way that no other IN channel took.
fn rpc_in_links(conns: &[Conn]) -> Vec<Option<usize>> {
    use crate::proto::gateway::{Channel, Kind};
    let rpc = |c: &Conn, ch: Channel| {
        c.gateway().is_some_and(|g| {
            g.kind == Some(Kind::Rpc) && g.channel == Some(ch) && g.carried_by.is_none()
        })
    };
    let mut links = vec![None; conns.len()];
    let mut taken = vec![false; conns.len()];
    // The OUT channels of each client host and gateway, in order.
    let mut out_channels: rustc_hash::FxHashMap<(IpAddr, SocketAddr), Vec<usize>> =
        Default::default();
    for (k, o) in conns.iter().enumerate() {
        if rpc(o, Channel::Out) {
            out_channels
                .entry((o.client.ip(), o.server))
                .or_default()
                .push(k);
        }
    }
    for (i, c) in conns.iter().enumerate() {
        if !rpc(c, Channel::In) {
            continue;
        }
        let id = c.gateway().and_then(|g| g.connection_id.as_ref());
        let pair = out_channels
            .get(&(c.client.ip(), c.server))
            .map_or(&[][..], Vec::as_slice);
        let outs = || {
            pair.iter()
                .map(|&k| (k, &conns[k]))
                .filter(|(k, _)| !taken[*k])
        };
        let by_id = id.and_then(|id| {
            outs()
                .find(|(_, o)| o.gateway().and_then(|g| g.connection_id.as_ref()) == Some(id))
                .map(|(k, _)| k)
        });
        let by_time = || {
            outs()
                .filter(|(_, o)| {
                    o.gateway().and_then(|g| g.connection_id.as_ref()).is_none() || id.is_none()
                })
                .map(|(k, o)| (k, (o.first.ts - c.first.ts).abs()))
                .filter(|&(_, d)| d <= LEG_PAIR_NS)
                .min_by_key(|&(_, d)| d)
                .map(|(k, _)| k)
        };
        if let Some(k) = by_id.or_else(by_time) {
            links[i] = Some(k);
            taken[k] = true;
        }
    }
    links
}

/// Groups the (selected, ordered) connections into attempts, numbered by
/// first frame. A connection continues the latest try of its client host
/// and server when that try's last connection did not connect and ended
/// within the attempt window before it started. With `--target NAME` and
/// no connection at all, a failed lookup of the name is an attempt.
pub fn group(conns: &[Conn], dns: &[DnsLookup], end: Mark, cfg: &Config) -> Vec<Attempt> {
    let mut attempts = group_bare(conns, dns, end, cfg);
    for a in attempts.iter_mut().filter(|a| a.lookup.is_none()) {
        complete(a, conns, cfg);
    }
    attempts
}

/// [`group`] without the attempts' facts, for a caller that holds many
/// attempts before judging them: each is [`complete`]d when its turn
/// comes (the facts' strings copied for every attempt waiting were most
/// of what the waiting cost).
pub fn group_bare(conns: &[Conn], dns: &[DnsLookup], end: Mark, cfg: &Config) -> Vec<Attempt> {
    let links = UdpLinks::new(conns);
    let udp_link: Vec<Option<usize>> = (0..conns.len())
        .map(|i| {
            if conns[i].udp_side {
                link_udp(conns, &links, i, cfg.attempt_window_ns)
            } else {
                None
            }
        })
        .collect();
    let rpc_in = rpc_in_links(conns);
    let mut ix = GatewayIndex::new(conns);
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut attempt_of: Vec<Option<usize>> = vec![None; conns.len()];
    // The newest attempt per (client host, server, transport): a retry can
    // only continue the latest try of that pair.
    let mut latest: rustc_hash::FxHashMap<(IpAddr, SocketAddr, Transport), usize> =
        Default::default();
    // Open redirections: client host, the redirecting connection's end,
    // where to, and the attempt.
    // (Per client host: an attempt's connections share it.)
    let mut redirects: rustc_hash::FxHashMap<IpAddr, Vec<(i64, &Redirected, usize)>> =
        Default::default();
    for (i, c) in conns.iter().enumerate() {
        if udp_link[i].is_some() || rpc_in[i].is_some() {
            continue;
        }
        let key = (c.client.ip(), c.server, c.transport);
        if let Some((a, how)) = gateway_joins(c, &attempts, conns, &attempt_of, &ix, cfg) {
            let counted = !matches!(how, Join::Side);
            match how {
                Join::Tunnelled => {
                    attempts[a].conns.push(i);
                    attempts[a].tunnelled += 1;
                }
                Join::Side => attempts[a].side.push(i),
                // A KDC proxy call after others, or the tunnel leg after
                // the KDC proxy calls it authenticated with.
                Join::Kdc => {
                    attempts[a].conns.push(i);
                    attempts[a].companions += 1;
                }
                Join::AfterKdc => {
                    attempts[a].companions = attempts[a].conns.len();
                    attempts[a].conns.push(i);
                }
            }
            attempt_of[i] = Some(a);
            ix.joined(conns, i, a, counted);
            latest.insert(key, a);
            continue;
        }
        // Where a broker's Server Redirection PDU sent this client host.
        let host_redirects = redirects.entry(c.client.ip()).or_default();
        let sent = host_redirects
            .iter()
            .rev()
            .find(|(last, r, _)| {
                c.first.ts >= r.at.ts && c.first.ts - last <= cfg.attempt_window_ns && r.leads_to(c)
            })
            .map(|x| x.2);
        if let Some(a) = sent {
            attempts[a].conns.push(i);
            attempts[a].redirected += 1;
            attempt_of[i] = Some(a);
            ix.joined(conns, i, a, true);
            latest.insert(key, a);
            host_redirects.retain(|x| x.2 != a);
            if let Some(r) = c.redirect() {
                host_redirects.push((c.last.ts, r, a));
            }
            continue;
        }
        let open = latest.get(&key).copied().filter(|&a| {
            let last = attempts[a].last().unwrap_or(i);
            let p = &conns[last];
            p.outcome != Outcome::Connected
                && c.first.ts - p.last.ts <= cfg.attempt_window_ns
                && c.first.ts >= p.first.ts
        });
        let a = match open {
            Some(a) => {
                attempts[a].conns.push(i);
                a
            }
            None => {
                latest.insert(key, attempts.len());
                attempts.push(Attempt {
                    number: attempts.len() + 1,
                    conns: vec![i],
                    side: Vec::new(),
                    lookup: None,
                    facts: Facts::default(),
                    redirected: 0,
                    tunnelled: 0,
                    companions: 0,
                });
                attempts.len() - 1
            }
        };
        attempt_of[i] = Some(a);
        ix.joined(conns, i, a, true);
        if let Some(r) = c.redirect() {
            redirects
                .entry(c.client.ip())
                .or_default()
                .push((c.last.ts, r, a));
        }
    }
    for (u, link) in udp_link.iter().enumerate() {
        if let Some(a) = link.and_then(|t| attempt_of[t]) {
            attempts[a].side.push(u);
        }
    }
    for (k, link) in rpc_in.iter().enumerate() {
        if let Some(a) = link.and_then(|o| attempt_of[o]) {
            attempts[a].side.push(k);
            attempt_of[k] = Some(a);
        }
    }
    if let Some(t) = cfg.target.as_ref().filter(|_| attempts.is_empty()) {
        let name = t.trim_end_matches('.').to_ascii_lowercase();
        if let Some(u) = dns::unresolved(std::slice::from_ref(&name), dns, i64::MAX, end.ts) {
            let first = u.lookups[0];
            attempts.push(Attempt {
                number: 1,
                conns: Vec::new(),
                side: Vec::new(),
                lookup: Some(Lookup {
                    name: name.clone(),
                    client: first.client,
                    server: first.server,
                }),
                facts: Facts {
                    target: name,
                    ..Facts::default()
                },
                redirected: 0,
                tunnelled: 0,
                companions: 0,
            });
        }
    }
    attempts
}

/// How long after a tunnel leg opened its companion leg may open (the IN
/// channel after the OUT channel, a second connection to a gateway whose
/// content cannot be read): FreeRDP opens the IN channel as soon as the
/// OUT channel's 200 is in, well within a second on a working network;
/// NTLM rounds on a slow link can add a few.
pub const LEG_PAIR_NS: i64 = 10_000_000_000;

/// The attempt a gateway connection belongs to without starting one:
/// the tunnelled connection joins the leg that carried it; an IN channel
/// its OUT channel (same `RDG-Connection-Id`, else the latest tunnel leg
/// of the client host to that gateway opened at most [`LEG_PAIR_NS`]
/// before it and still open); a KDC proxy call the latest attempt of the
/// client host at the gateway within the attempt window; a leg whose
/// content cannot be read the open tunnel leg it overlaps (the IN
/// channel beside the OUT channel).
/// What [`gateway_joins`] looks up, kept as the grouping goes instead of
/// walked over every connection for each (a busy gateway's capture made
/// that quadratic): per client host and gateway, the newest attempt with
/// a connection there and the tunnel legs already placed; each leg's
/// first connection by its endpoints.
struct GatewayIndex {
    carriers: rustc_hash::FxHashMap<(SocketAddr, SocketAddr), usize>,
    newest: rustc_hash::FxHashMap<(IpAddr, SocketAddr), usize>,
    legs: rustc_hash::FxHashMap<(IpAddr, SocketAddr), Vec<usize>>,
}

impl GatewayIndex {
    fn new(conns: &[Conn]) -> GatewayIndex {
        let mut carriers: rustc_hash::FxHashMap<(SocketAddr, SocketAddr), usize> =
            Default::default();
        for (k, o) in conns.iter().enumerate() {
            if o.gateway().is_some_and(|g| g.carried_by.is_none()) {
                carriers.entry((o.client, o.server)).or_insert(k);
            }
        }
        GatewayIndex {
            carriers,
            newest: Default::default(),
            legs: Default::default(),
        }
    }

    /// Connection `i` was placed in attempt `a` (`counted`: among its
    /// connections, not a side one).
    fn joined(&mut self, conns: &[Conn], i: usize, a: usize, counted: bool) {
        let c = &conns[i];
        let pair = (c.client.ip(), c.server);
        if counted {
            let n = self.newest.entry(pair).or_insert(a);
            *n = (*n).max(a);
        }
        if c.gateway().is_some_and(|g| g.opens_tunnel()) {
            self.legs.entry(pair).or_default().push(i);
        }
    }
}

fn gateway_joins(
    c: &Conn,
    attempts: &[Attempt],
    conns: &[Conn],
    attempt_of: &[Option<usize>],
    ix: &GatewayIndex,
    cfg: &Config,
) -> Option<(usize, Join)> {
    let g = c.gateway()?;
    if let Some(carrier) = g.carried_by {
        return ix
            .carriers
            .get(&carrier)
            .and_then(|&k| attempt_of[k])
            .map(|a| (a, Join::Tunnelled));
    }
    let pair = (c.client.ip(), c.server);
    let kdc = |k: usize| {
        conns[k]
            .gateway()
            .is_some_and(|g| g.kind == Some(crate::proto::gateway::Kind::KdcProxy))
    };
    // The latest attempt of this host at this gateway, within the window.
    let recent = ix
        .newest
        .get(&pair)
        .copied()
        .filter(|&a| c.first.ts - a_last_ts(&attempts[a], conns) <= cfg.attempt_window_ns);
    let kdc_only = |a: usize| attempts[a].conns.iter().all(|&k| kdc(k));
    if g.opens_tunnel() && g.kind != Some(crate::proto::gateway::Kind::KdcProxy) {
        // The tunnel after the KDC proxy calls it authenticated with.
        if let Some(a) = recent.filter(|&a| kdc_only(a)) {
            return Some((a, Join::AfterKdc));
        }
    }
    let side = |a: Option<usize>| a.map(|a| (a, Join::Side));
    // The tunnel legs before it, newest first.
    let legs = ix
        .legs
        .get(&pair)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .rev()
        .map(|&k| (k, &conns[k]))
        .filter(|(_, o)| o.first.frame < c.first.frame);
    match (g.kind, g.channel) {
        (_, Some(crate::proto::gateway::Channel::In)) => {
            let mut by_time = None;
            for (k, o) in legs {
                let og = o.gateway()?;
                if g.connection_id.is_some() && og.connection_id.is_some() {
                    if g.connection_id == og.connection_id {
                        return side(attempt_of[k]);
                    }
                    continue;
                }
                if by_time.is_none()
                    && c.first.ts - o.first.ts <= LEG_PAIR_NS
                    && c.first.ts <= o.last.ts
                {
                    by_time = attempt_of[k];
                }
            }
            side(by_time)
        }
        (Some(crate::proto::gateway::Kind::KdcProxy), _) => {
            let a = recent?;
            Some((a, if kdc_only(a) { Join::Kdc } else { Join::Side }))
        }
        (None, _) => {
            let (k, o) = legs.into_iter().next()?;
            let paired = attempts[attempt_of[k]?]
                .side
                .iter()
                .any(|&s| conns[s].gateway().is_some());
            side(
                (!paired && c.first.ts - o.first.ts <= LEG_PAIR_NS && c.first.ts <= o.last.ts)
                    .then(|| attempt_of[k])
                    .flatten(),
            )
        }
        _ => None,
    }
}

/// How a gateway connection joins an attempt.
enum Join {
    /// The RDP connection a leg carried: it decides the attempt.
    Tunnelled,
    /// A companion channel (IN channel, a KDC proxy call beside a tunnel).
    Side,
    /// A KDC proxy call after others, before any tunnel.
    Kdc,
    /// The tunnel's first leg after KDC proxy calls.
    AfterKdc,
}

fn a_last_ts(a: &Attempt, conns: &[Conn]) -> i64 {
    a.conns
        .iter()
        .chain(&a.side)
        .map(|&k| conns[k].last.ts)
        .max()
        .unwrap_or(i64::MIN)
}

/// An attempt of [`group_bare`] (with connections) gets its facts.
pub fn complete(a: &mut Attempt, conns: &[Conn], cfg: &Config) {
    a.facts = merged_facts(a, conns, cfg);
}

/// The attempt's facts come from the connection that decided it,
/// completed by the earlier ones (target, user, certificate) and
/// `--target`.
fn merged_facts(a: &Attempt, conns: &[Conn], cfg: &Config) -> Facts {
    let Some(last) = a.last() else {
        return Facts::default();
    };
    let mut fx = conns[last].facts.clone();
    for &i in a.conns.iter().rev().skip(1) {
        let o = &conns[i].facts;
        for (x, y) in [
            (&mut fx.target, &o.target),
            (&mut fx.user, &o.user),
            (&mut fx.cert_subject, &o.cert_subject),
            (&mut fx.cert_not_after, &o.cert_not_after),
        ] {
            if x.is_empty() {
                *x = y.clone();
            }
        }
    }
    if fx.target.is_empty() {
        fx.target = cfg.target.clone().unwrap_or_default();
    }
    fx
}

#[cfg(test)]
mod test {
    use super::*;
    use Outcome::{Connected, Failed, Incomplete};
    use Transport::{Tcp, Udp};

    /// `c` = (client host's last octet, client port, server's last octet).
    fn conn(c: (u8, u16, u8), t: Transport, span: (u64, u64), o: Outcome) -> Conn {
        let client = format!("198.18.0.{}:{}", c.0, c.1);
        let server = format!("198.18.0.{}:3389", c.2);
        Conn::test(&client, &server, t, span.0, span.1, o)
    }

    #[test]
    fn a_failed_connection_and_its_retry_are_one_attempt() {
        let cfg = Config::default();
        let conns = vec![
            conn((1, 50000, 2), Tcp, (1, 2), Failed),
            conn((1, 50001, 2), Tcp, (3, 9), Connected),
            // The UDP side channel starts while the retry is up.
            conn((1, 50002, 2), Udp, (4, 5), Incomplete),
            // After a connected one, a new connection is a new attempt.
            conn((1, 50003, 2), Tcp, (10, 11), Failed),
            // Beyond the attempt window: a new attempt too.
            conn((1, 50004, 2), Tcp, (60, 61), Failed),
        ];
        let a = group(&conns, &[], Mark::default(), &cfg);
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].conns.clone(), a[0].side.clone()),
            (vec![0, 1], vec![2])
        );
        assert!(a[0].retried());
        assert_eq!(a[1].conns, vec![3]);
        assert_eq!(a[2].conns, vec![4]);
        let numbers: Vec<usize> = a.iter().map(|x| x.number).collect();
        assert_eq!(numbers, vec![1, 2, 3]);
    }

    #[test]
    fn other_servers_and_hosts_are_other_attempts() {
        let cfg = Config::default();
        let conns = vec![
            conn((1, 50000, 2), Tcp, (1, 2), Failed),
            conn((1, 50001, 3), Tcp, (3, 4), Failed),
            conn((9, 50001, 2), Tcp, (3, 4), Failed),
        ];
        assert_eq!(group(&conns, &[], Mark::default(), &cfg).len(), 3);
    }

    #[test]
    fn a_redirection_joins_the_connection_it_sends_the_client_to() {
        let cfg = Config::default();
        let mut broker = conn((1, 50000, 2), Tcp, (1, 5), Connected);
        broker.inside = Some(Box::new(InsideUse {
            key_use: None,
            redirect: Some(Redirected {
                target: "198.18.0.7".into(),
                lb_info: Some("Cookie: msts=1".into()),
                at: broker.last,
            }),
        }));
        let conns = vec![
            broker,
            // To the target: joins, and is no retry.
            conn((1, 50001, 7), Tcp, (6, 9), Connected),
            // Another host to the target: its own attempt.
            conn((9, 50001, 7), Tcp, (6, 9), Connected),
        ];
        let a = group(&conns, &[], Mark::default(), &cfg);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].conns, vec![0, 1]);
        assert_eq!(a[0].redirected, 1);
        assert!(!a[0].retried());
        // The routing token alone also leads there.
        let mut by_token = conns[2].clone();
        by_token.client = "198.18.0.1:50002".parse().unwrap();
        by_token.server = "198.18.0.8:3389".parse().unwrap();
        by_token.facts.target = "Cookie: msts=1".into();
        let r = conns[0].redirect().unwrap();
        assert!(r.leads_to(&by_token));
        by_token.facts.target = "Cookie: msts=2".into();
        assert!(!r.leads_to(&by_token));
    }
}

#[cfg(test)]
mod max_tree_test {
    use super::MaxTree;

    #[test]
    fn rightmost_at_least_is_what_a_walk_finds() {
        // A small deterministic generator: every prefix and threshold of a
        // few hundred values, against walking back from the end.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 2, 3, 7, 8, 9, 100, 257] {
            let values: Vec<i64> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 50) as i64 - 10
                })
                .collect();
            let t = MaxTree::new(&values);
            for end in 0..=len {
                for min in -12..42 {
                    let walk = (0..end).rev().find(|&k| values[k] >= min);
                    assert_eq!(
                        t.rightmost_at_least(end, min),
                        walk,
                        "{values:?} {end} {min}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod gateway_test {
    use super::*;
    use crate::proto::gateway::{Channel, Kind};
    use Outcome::{Connected, Failed};

    fn leg(port: u16, span: (u64, u64), o: Outcome, g: GatewayUse) -> Conn {
        let mut c = Conn::test(
            &format!("198.18.2.2:{port}"),
            "198.18.2.3:443",
            Transport::Tcp,
            span.0,
            span.1,
            o,
        );
        c.gateway = Some(Box::new(g));
        c
    }

    fn g(kind: Kind, channel: Option<Channel>, id: Option<&str>) -> GatewayUse {
        GatewayUse {
            kind: Some(kind),
            channel,
            connection_id: id.map(str::to_string),
            carried_by: None,
            channel_open: false,
            upgrade_declined: None,
        }
    }

    #[test]
    fn kdc_calls_channels_and_the_tunnel_are_one_attempt() {
        let cfg = Config::default();
        let out_leg: SocketAddr = "198.18.2.2:50002".parse().unwrap();
        let gw: SocketAddr = "198.18.2.3:443".parse().unwrap();
        let mut tunnel = g(Kind::Http, None, None);
        tunnel.carried_by = Some((out_leg, gw));
        let conns = vec![
            // Two KDC proxy calls (MIT opens a connection per call).
            leg(50000, (1, 2), Connected, g(Kind::KdcProxy, None, None)),
            leg(50001, (3, 4), Failed, g(Kind::KdcProxy, None, None)),
            // The OUT channel, then its IN channel (same id), then another
            // client's IN channel of another tunnel (other id): not paired.
            leg(
                50002,
                (5, 60),
                Connected,
                g(Kind::Http, Some(Channel::Out), Some("{A}")),
            ),
            leg(
                50003,
                (6, 60),
                Connected,
                g(Kind::Http, Some(Channel::In), Some("{A}")),
            ),
            leg(
                50004,
                (7, 60),
                Connected,
                g(Kind::Http, Some(Channel::In), Some("{B}")),
            ),
            // The tunnelled connection the OUT channel carried.
            leg(50002, (8, 59), Connected, tunnel),
        ];
        let a = group(&conns, &[], Mark::default(), &cfg);
        assert_eq!(a[0].conns, vec![0, 1, 2, 5]);
        assert_eq!(a[0].side, vec![3]);
        assert!(!a[0].retried(), "KDC calls and the tunnel are no retries");
        assert_eq!(a[0].legs(&conns), 4);
        // The IN channel of another tunnel is an attempt of its own.
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].conns, vec![4]);
    }

    #[test]
    fn a_refused_leg_then_a_working_one_is_a_retry() {
        let cfg = Config::default();
        let conns = vec![
            leg(
                50000,
                (1, 2),
                Failed,
                g(Kind::WebSocket, Some(Channel::Out), None),
            ),
            leg(
                50001,
                (3, 9),
                Connected,
                g(Kind::Rpc, Some(Channel::Out), None),
            ),
        ];
        let a = group(&conns, &[], Mark::default(), &cfg);
        assert_eq!(a.len(), 1);
        assert!(a[0].retried());
    }

    #[test]
    fn an_rpc_in_channel_opened_first_joins_its_out_channel() {
        let cfg = Config::default();
        let conns = vec![
            // The HTTP transport refused (404): the client falls back.
            leg(
                50000,
                (1, 2),
                Failed,
                g(Kind::WebSocket, Some(Channel::Out), None),
            ),
            // RPC over HTTP opens the IN channel first, then the OUT
            // channel; both carry the virtual connection cookie.
            leg(
                50001,
                (3, 60),
                Connected,
                g(Kind::Rpc, Some(Channel::In), Some("aa")),
            ),
            // A second tunnel's IN channel in the same second, its OUT
            // channel opened last: each IN goes with its own OUT.
            leg(
                50002,
                (4, 60),
                Connected,
                g(Kind::Rpc, Some(Channel::In), Some("bb")),
            ),
            leg(
                50003,
                (5, 60),
                Failed,
                g(Kind::Rpc, Some(Channel::Out), Some("aa")),
            ),
            leg(
                50004,
                (6, 60),
                Failed,
                g(Kind::Rpc, Some(Channel::Out), Some("bb")),
            ),
        ];
        assert_eq!(
            rpc_in_links(&conns),
            vec![None, Some(3), Some(4), None, None]
        );
        let a = group(&conns, &[], Mark::default(), &cfg);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].conns, vec![0, 3, 4], "the OUT channels decide");
        assert_eq!(a[0].side, vec![1, 2]);
        // Without cookies (no keys), the nearest OUT channel in time.
        let mut c2 = conns.clone();
        for c in &mut c2 {
            if let Some(g) = c.gateway.as_mut() {
                g.connection_id = None;
            }
        }
        assert_eq!(rpc_in_links(&c2), vec![None, Some(3), Some(4), None, None]);
        // Too far apart: no pair.
        let mut c3 = conns.clone();
        c3[3].first.ts += 30_000_000_000;
        c3[3].gateway.as_mut().unwrap().connection_id = None;
        assert_eq!(rpc_in_links(&c3)[1], None);
    }
}
