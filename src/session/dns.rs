//! What DNS did for the names an attempt used: the lookups of a name seen
//! on port 53 and whether any resolved. Facts only; `detect::dns` words
//! them as findings.

use crate::capture::Mark;
use crate::flow::table::DnsLookup;

/// A query unanswered this long before the end of the capture counts as
/// never answered (Windows' resolver retries after 1 s, gives up after ~10).
pub const DNS_TIMEOUT_NS: i64 = 2_000_000_000;

/// A name none of whose lookups resolved.
#[derive(Debug, Clone)]
pub struct Unresolved<'a> {
    pub name: String,
    /// Every lookup of the name, in capture order.
    pub lookups: Vec<&'a DnsLookup>,
    /// The answer that says why: the first error (NXDOMAIN, SERVFAIL, …),
    /// else the first answer without address records; `None` when no
    /// lookup was answered (each waited [`DNS_TIMEOUT_NS`]).
    pub answer: Option<&'a DnsLookup>,
    /// The last frame of the evidence (the last answer, or query).
    pub last: Mark,
    /// The DNS servers asked, in order (consecutive repeats folded).
    pub servers: Vec<String>,
}

/// The first of `names` whose lookups all failed (answered without an
/// address, or unanswered for [`DNS_TIMEOUT_NS`] of capture before
/// `until`), of the lookups made by `before` (capture time).
pub fn unresolved<'a>(
    names: &[String],
    dns: &'a [DnsLookup],
    before: i64,
    until: i64,
) -> Option<Unresolved<'a>> {
    for name in names {
        let qs: Vec<&DnsLookup> = dns
            .iter()
            .filter(|d| &d.query.name == name && d.query.at.ts <= before)
            .collect();
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
        let answer = failed.or(nodata).copied();
        let waited = qs.iter().all(|d| {
            d.query.answer.is_some() || until.saturating_sub(d.query.at.ts) >= DNS_TIMEOUT_NS
        });
        if answer.is_none() && !waited {
            continue;
        }
        let last = qs.last().map_or(first.query.at, |d| {
            d.query.answer.map_or(d.query.at, |a| a.at)
        });
        let mut servers: Vec<String> = qs.iter().map(|d| d.server.ip().to_string()).collect();
        servers.dedup();
        return Some(Unresolved {
            name: name.clone(),
            answer,
            last,
            servers,
            lookups: qs,
        });
    }
    None
}

/// The names of an attempt DNS could have resolved: host names only (no
/// addresses, no distinguished names or wildcards), lower case, sorted.
pub fn lookup_names<'n>(names: impl IntoIterator<Item = &'n String>) -> Vec<String> {
    let mut v: Vec<String> = names
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
