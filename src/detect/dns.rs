//! `dns.nxdomain` / `dns.no_response`: the names an attempt used (SNI,
//! routing token, certificate names, `--target`) that DNS never resolved.
//! For an attempt that still reached an address it is context (a warning);
//! for a `--target` name that never got as far as a connection, the
//! failed lookup is the attempt (an error). Without `--target`, a name the
//! client looked up in vain in the [`LEAD_NS`] before a failed attempt
//! (the name the user typed, say, before the client fell back to another)
//! is context too, unless one of its lookups in that time resolved (a
//! search suffix that did not apply, then one that did). Other failed
//! lookups are not reported. Evidence: the queries and answers on port 53
//! (`session::dns`).

use super::{AttemptContext, AttemptDetector, Placed};
use crate::finding::{Code, Draft, Outcome, Phase, Severity};
use crate::proto::dns::rcode_name;
use crate::session::dns::{unresolved, Unresolved};

pub struct Lookups;

/// How long before an attempt a client's failed lookup is taken as one it
/// made for this attempt.
pub const LEAD_NS: i64 = 5_000_000_000;

/// Lookups looked at before an attempt, at most (the nearest first): a
/// capture full of lookups costs each failed attempt this much, no more.
const LEAD_LOOKUPS: usize = 256;

/// The names the attempt's client host looked up in the [`LEAD_NS`] before
/// `start` (its first frame `frame`), in capture order, when none of those
/// lookups resolved. `cx.dns` is in capture order: the search starts at
/// the attempt's first frame and walks back.
fn lead_names(
    cx: &AttemptContext<'_>,
    client: std::net::IpAddr,
    frame: u64,
    start: i64,
) -> Vec<String> {
    let end = cx.dns.partition_point(|d| d.query.at.frame <= frame);
    let mut near: Vec<&crate::flow::table::DnsLookup> = cx.dns[..end]
        .iter()
        .rev()
        .take(LEAD_LOOKUPS)
        .take_while(|d| start.saturating_sub(d.query.at.ts) <= LEAD_NS)
        .filter(|d| d.client.ip() == client && d.query.at.ts <= start)
        .collect();
    near.reverse();
    if near
        .iter()
        .any(|d| d.query.answer.is_some_and(|a| a.rcode == 0 && a.count > 0))
    {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for d in near {
        if !names.contains(&d.query.name) {
            names.push(d.query.name.clone());
        }
    }
    names
}

fn draft(u: &Unresolved<'_>) -> Draft {
    let name = &u.name;
    let first = u.lookups[0];
    let n = u.lookups.len();
    let queries = if n == 1 { "query" } else { "queries" };
    let d = match u.answer {
        Some(l) => {
            let (rcode, at) = l.query.answer.map_or((0, l.query.at), |a| (a.rcode, a.at));
            let what = if rcode == 0 {
                "NOERROR without address records".to_string()
            } else {
                rcode_name(rcode)
            };
            Draft::new(
                Code::DnsNxdomain,
                Severity::Error,
                Phase::Dns,
                first.query.at.frame,
                first.query.at.ts,
            )
            .summary(format!(
                "The DNS server {} answered {what} for {name} in frame {} ({n} {queries} for the name, none resolved)",
                l.server.ip(),
                at.frame,
            ))
            .cause(if rcode == 2 {
                "The DNS server could not resolve the name (SERVFAIL: its upstream or the zone's servers failed)."
            } else {
                "The name does not exist in DNS as the client asked for it (a typo, a missing record, or a search suffix not applied)."
            })
            .remedy("Check the name (nslookup NAME SERVER); add the A/AAAA record or fix the client's DNS suffix; meanwhile connect by IP address.")
        }
        None => Draft::new(
            Code::DnsNoResponse,
            Severity::Error,
            Phase::Dns,
            first.query.at.frame,
            first.query.at.ts,
        )
        .summary(format!(
            "{n} {queries} for {name} to {} got no answer",
            u.servers.join(", ")
        ))
        .cause("The DNS server is unreachable or does not answer (firewall on UDP 53, a VPN DNS server that is down).")
        .remedy("Check the client's DNS servers (ipconfig /all) and that UDP/TCP 53 reaches them; meanwhile connect by IP address."),
    };
    d.until(u.last.frame)
        .filter(format!("dns.qry.name==\"{name}\""))
}

impl AttemptDetector for Lookups {
    fn codes(&self) -> Vec<Code> {
        vec![Code::DnsNxdomain, Code::DnsNoResponse]
    }

    fn check(&self, cx: &AttemptContext<'_>, out: &mut Vec<Placed>) {
        if cx.dns.is_empty() || cx.outcome() == Outcome::Connected {
            return;
        }
        let lookup = cx.attempt.lookup.as_ref();
        let names = match lookup {
            Some(l) => vec![l.name.clone()],
            None => cx.attempt.names(cx.conns, cx.cfg),
        };
        // The lookups made by the attempt's end, given until the attempt
        // window after it (or the capture's end) to be answered: nothing
        // later in the capture changes the verdict (attempts are judged as
        // the capture is read).
        let (before, until) = match lookup {
            Some(_) => (i64::MAX, cx.end.ts),
            None => {
                let last = cx
                    .attempt
                    .conns
                    .iter()
                    .chain(&cx.attempt.side)
                    .map(|&i| cx.conns[i].last.ts)
                    .max()
                    .unwrap_or(i64::MIN);
                (
                    last,
                    cx.end.ts.min(last.saturating_add(cx.cfg.attempt_window_ns)),
                )
            }
        };
        let mut lead = false;
        let u = unresolved(&names, cx.dns, before, until).or_else(|| {
            let first = cx.attempt.conns.first().map(|&i| &cx.conns[i])?;
            let names = lead_names(cx, first.client.ip(), first.first.frame, first.first.ts);
            lead = true;
            unresolved(&names, cx.dns, first.first.ts, until)
        });
        let Some(u) = u else {
            return;
        };
        let first = u.lookups[0];
        let mut d = draft(&u);
        if lookup.is_none() {
            // The client still reached an address: context, a warning.
            d.severity = Severity::Warning;
            if lead {
                d.summary.push_str(&format!(
                    "; the client looked it up {} before this attempt and tried an \
                     address nevertheless",
                    crate::finding::secs(
                        cx.attempt
                            .conns
                            .first()
                            .map_or(0, |&i| cx.conns[i].first.ts - first.query.at.ts)
                    )
                ));
            } else {
                d.summary
                    .push_str("; the client tried an address nevertheless");
            }
        }
        out.push(Placed {
            ends: Some((first.client, first.server)),
            draft: d,
        });
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::conn;
    use super::*;
    use crate::capture::Mark;
    use crate::config::Config;
    use crate::flow::table::DnsLookup;
    use crate::flow::Transport;
    use crate::proto::dns::{Answer, Query};
    use crate::session;

    fn lookup(frame: u64, rcode: Option<u8>) -> DnsLookup {
        let at = Mark {
            frame,
            ts: frame as i64 * 1_000_000_000,
        };
        DnsLookup {
            client: "198.18.0.1:53000".parse().unwrap(),
            server: "198.18.0.53:53".parse().unwrap(),
            query: Query {
                id: 1,
                name: "rdp.example.test".into(),
                qtype: 1,
                at,
                answer: rcode.map(|rcode| Answer {
                    rcode,
                    count: 0,
                    at: Mark {
                        frame: frame + 1,
                        ..at
                    },
                }),
            },
        }
    }

    fn judge(conns: Vec<crate::session::Conn>, dns: &[DnsLookup], target: &str) -> Vec<Placed> {
        let cfg = Config {
            target: (!target.is_empty()).then(|| target.into()),
            ..Config::default()
        };
        let end = Mark {
            frame: 99,
            ts: 99_000_000_000,
        };
        let attempts = session::group(&conns, dns, end, &cfg);
        let a = &attempts[0];
        let cx = AttemptContext::new(a, &conns, dns, &[], &cfg, end);
        let mut out = vec![];
        Lookups.check(&cx, &mut out);
        out
    }

    #[test]
    fn a_target_name_that_only_failed_dns_is_the_attempt() {
        let dns = [lookup(1, Some(3)), lookup(3, Some(3))];
        let out = judge(vec![], &dns, "rdp.example.test");
        assert_eq!(out.len(), 1);
        let d = &out[0].draft;
        assert_eq!((d.code, d.severity), (Code::DnsNxdomain, Severity::Error));
        assert_eq!((d.first_frame, d.last_frame), (1, 4));
        assert!(
            d.summary
                .contains("answered NXDOMAIN for rdp.example.test in frame 2"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn unanswered_lookups_beside_a_failed_connection_are_context() {
        let mut c = conn(Transport::Tcp, 50000, 10, 12);
        c.outcome = Outcome::Failed;
        c.facts.target = "rdp.example.test".into();
        let out = judge(vec![c.clone()], &[lookup(1, None)], "198.18.0.2");
        assert_eq!(out.len(), 1);
        let d = &out[0].draft;
        assert_eq!(
            (d.code, d.severity),
            (Code::DnsNoResponse, Severity::Warning)
        );
        assert!(
            d.summary
                .ends_with("the client tried an address nevertheless"),
            "{}",
            d.summary
        );
        // A connected attempt says nothing about DNS.
        c.outcome = Outcome::Connected;
        assert!(judge(vec![c], &[lookup(1, None)], "198.18.0.2").is_empty());
    }

    #[test]
    fn a_name_looked_up_in_vain_just_before_a_failed_attempt_is_context() {
        // Failed lookups at 4 s (NXDOMAIN) then a failed connection at 6 s
        // to an address, without --target: said, as a warning.
        let mut c = conn(Transport::Tcp, 50000, 6, 8);
        c.outcome = Outcome::Failed;
        let cfg_target = "";
        let out = judge(vec![c.clone()], &[lookup(4, Some(3))], cfg_target);
        assert_eq!(out.len(), 1, "{out:?}");
        let d = &out[0].draft;
        assert_eq!((d.code, d.severity), (Code::DnsNxdomain, Severity::Warning));
        assert!(
            d.summary
                .contains("looked it up 2.000 s before this attempt"),
            "{}",
            d.summary
        );
        // Longer ago than the lead: not this attempt's.
        assert!(judge(vec![c.clone()], &[lookup(0, Some(3))], cfg_target).is_empty());
        // One lookup in the lead resolved (another search suffix): quiet.
        let mut ok = lookup(5, Some(0));
        ok.query.name = "rdp.corp.example.test".into();
        if let Some(a) = &mut ok.query.answer {
            a.count = 1;
        }
        assert!(judge(vec![c.clone()], &[lookup(4, Some(3)), ok], cfg_target).is_empty());
        // Another client host's failed lookup: not this attempt's.
        let mut other = lookup(4, Some(3));
        other.client = "198.18.0.9:53000".parse().unwrap();
        assert!(judge(vec![c], &[other], cfg_target).is_empty());
    }
}
