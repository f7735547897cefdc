//! `dns.nxdomain` / `dns.no_response`: the names an attempt used (SNI,
//! routing token, certificate names, `--target`) that DNS never resolved.
//! For an attempt that still reached an address it is context (a warning);
//! for a `--target` name that never got as far as a connection, the
//! failed lookup is the attempt (an error). Evidence: the queries and
//! answers on port 53 (`session::dns`).

use super::{AttemptContext, AttemptDetector, Placed};
use crate::finding::{Code, Draft, Outcome, Phase, Severity};
use crate::proto::dns::rcode_name;
use crate::session::dns::{unresolved, Unresolved};

pub struct Lookups;

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
        if cx.dns.is_empty() || cx.outcome == Outcome::Connected {
            return;
        }
        let lookup = cx.attempt.lookup.as_ref();
        let names = match lookup {
            Some(l) => vec![l.name.clone()],
            None => cx.attempt.names(cx.conns, cx.cfg),
        };
        let Some(u) = unresolved(&names, cx.dns, cx.end) else {
            return;
        };
        let first = u.lookups[0];
        let mut d = draft(&u);
        if lookup.is_none() {
            // The client still reached an address: context, a warning.
            d.severity = Severity::Warning;
            d.summary
                .push_str("; the client connected to an address nevertheless");
        }
        out.push(Placed {
            ends: Some((first.client, first.server)),
            draft: d,
        });
    }
}
