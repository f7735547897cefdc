//! Where in its life a connection was at a given frame: how it ended, which
//! phase of the RDP connection sequence it had reached, how many encrypted
//! records each side had sent. Facts about a flow, read by the timeline and
//! by the detectors that word their findings.

use crate::capture::Mark;
use crate::finding::{plural, Dir, Phase};
use crate::flow::Flow;
use crate::proto::{AppClass, Step};

/// CredSSP takes at most this many client messages (negotiate,
/// authenticate + pubKeyAuth, credentials); more means NLA is over.
pub const NLA_CLIENT_RECORDS: u64 = 3;
/// Records each way after the Confirm Active-sized record for a session to
/// count as active: the finalization (Synchronize, Control ×2, Font List /
/// Font Map: 4 each way) and as many again of graphics and input.
pub const ACTIVE_AFTER: u64 = 8;
/// Without the sequence's shape (sizes outside the usual ones, a mid-stream
/// capture, Standard RDP Security): records (or PDUs) each way. The whole
/// connection sequence is about 20 each way with 7 channels; a denial comes
/// within it (PROTOCOLS.md §8).
pub const ACTIVE_BULK: u64 = 64;

/// The session reached the active phase: since when, and how that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    /// The Confirm Active-sized record (or the handshake's end, or the MCS
    /// Connect Response, when only the counts tell).
    pub since: Mark,
    /// From the Demand Active / Confirm Active exchange (else from counts).
    pub by_shape: bool,
    /// Records (PDUs) each way in all.
    pub records: [u64; 2],
}

/// Is this connection shown to be RDP (an X.224 exchange or the MCS
/// connection sequence was decoded; or, for a capture that began mid-way,
/// TLS on an RDP port)? A TLS connection that is not gets no RDP verdicts.
pub fn shown_rdp(f: &Flow) -> bool {
    match f.app.class {
        AppClass::Rdp { .. } => true,
        AppClass::Tls => f.tcp().mid_stream && f.app.rdp_port,
        _ => false,
    }
}

/// Did the session reach the active phase ([`ACTIVE_AFTER`],
/// [`ACTIVE_BULK`])?
pub fn active(f: &Flow) -> Option<Active> {
    if !shown_rdp(f) {
        return None;
    }
    let x = f.app.facts();
    let t = &x.tls;
    if let Some(c) = x.inside.as_deref().and_then(|i| i.active()) {
        // Decrypted: Demand Active and Confirm Active were read.
        return Some(Active {
            since: c,
            by_shape: false,
            records: [t.app[Dir::Client].records, t.app[Dir::Server].records],
        });
    }
    if let Some(done) = t.done {
        let records = [t.app[Dir::Client].records, t.app[Dir::Server].records];
        let seq = &t.sequence;
        if let Some(c) = seq.confirm {
            if seq.after.iter().all(|&n| n >= ACTIVE_AFTER) {
                return Some(Active {
                    since: c.at,
                    by_shape: true,
                    records,
                });
            }
        }
        return records.iter().all(|&n| n >= ACTIVE_BULK).then_some(Active {
            since: done,
            by_shape: false,
            records,
        });
    }
    let resp = x.when(Step::McsConnectResponse)?;
    x.pdus.iter().all(|&n| n >= ACTIVE_BULK).then_some(Active {
        since: resp,
        by_shape: false,
        records: x.pdus,
    })
}

/// How the connection ended: the first FIN or RST, with the side that did
/// it and how ("closed (FIN)" or "reset").
pub fn ending(f: &Flow) -> Option<(Dir, Mark, &'static str)> {
    let t = f.tcp();
    let fins = Dir::BOTH
        .into_iter()
        .filter_map(|d| t.dirs[d].fin.map(|m| (d, m, "closed (FIN)")));
    let rst = t.rst.map(|r| (r.dir, r.at, "reset"));
    // The earliest; on a tie the client's FIN, then the server's, then the RST.
    fins.chain(rst).min_by_key(|e| e.1.frame)
}

/// Encrypted records each way sent before `frame`.
pub fn records_before(f: &Flow, frame: u64) -> [u64; 2] {
    let t = &f.app.facts().tls;
    let full = t.records.len() >= crate::proto::tls::MAX_RECORDS;
    if full && t.records.last().is_some_and(|r| r.at.frame < frame) {
        // Past the remembered records: the totals.
        return [t.app[Dir::Client].records, t.app[Dir::Server].records];
    }
    let mut n = [0u64; 2];
    for r in t.records.iter().filter(|r| r.at.frame <= frame) {
        n[r.dir] += 1;
    }
    n
}

/// Where the RDP connection sequence stood at `frame` (inclusive).
pub fn rdp_moment(f: &Flow, frame: u64) -> Option<(Phase, String)> {
    let x = &f.app.facts();
    if !matches!(f.app.class, AppClass::Rdp { .. } | AppClass::Tls) || x.steps.is_empty() {
        return None;
    }
    let reached = |s: Step| x.when(s).is_some_and(|m| m.frame <= frame);
    let nla = x.selected().is_some_and(|p| p.nla());
    Some(if reached(Step::TlsDone) {
        let [c, s] = records_before(f, frame);
        if !shown_rdp(f) {
            (
                Phase::Tls,
                format!(
                    "after the TLS handshake, {c} encrypted record{} from the client and {s} from the server",
                    plural(c)
                ),
            )
        } else if nla && c <= NLA_CLIENT_RECORDS {
            (
                Phase::Nla,
                format!(
                    "during NLA (CredSSP) after the TLS handshake, {c} encrypted record{} from the client and {s} from the server",
                    plural(c)
                ),
            )
        } else {
            (
                Phase::Rdp,
                format!(
                    "after the TLS handshake{}, {c} encrypted record{} from the client and {s} from the server",
                    if nla { " and NLA" } else { "" },
                    plural(c)
                ),
            )
        }
    } else if reached(Step::ServerHello) {
        (
            Phase::Tls,
            "during the TLS handshake, after the server's ServerHello".into(),
        )
    } else if reached(Step::ClientHello) {
        (
            Phase::Tls,
            "after the TLS ClientHello, before any ServerHello".into(),
        )
    } else if reached(Step::McsConnectResponse) {
        (
            Phase::Rdp,
            "after the MCS Connect Response (Standard RDP Security)".into(),
        )
    } else if reached(Step::McsConnectInitial) {
        (
            Phase::Rdp,
            "after the client's MCS Connect Initial, before the server's Connect Response".into(),
        )
    } else if reached(Step::ConnectionConfirm) {
        let sel = x
            .selected()
            .map(|p| format!(" selecting {p}"))
            .unwrap_or_default();
        (
            Phase::X224,
            format!("after the X.224 Connection Confirm{sel}, before TLS or MCS"),
        )
    } else if reached(Step::ConnectionRequest) {
        (
            Phase::X224,
            "after the X.224 Connection Request, before any Connection Confirm".into(),
        )
    } else {
        return None;
    })
}

/// Human phrase for where in the connection something happened, and the
/// phase it interrupted: the RDP connection sequence when it was decoded,
/// else what TCP alone can see.
pub fn tcp_moment(f: &Flow, bytes: [u64; 2], frame: u64) -> (Phase, String) {
    if f.tcp().established.is_none() && !f.tcp().mid_stream {
        return (Phase::Tcp, "during the TCP handshake".to_string());
    }
    let counts = match bytes {
        [0, 0] => "before any data".to_string(),
        [c, s] => format!("after {c} bytes from the client and {s} bytes from the server"),
    };
    match rdp_moment(f, frame) {
        Some((p, what)) => (p, format!("{what} ({counts})")),
        None if bytes == [0, 0] => (
            Phase::Tcp,
            "after the TCP handshake, before any data".into(),
        ),
        None => (Phase::Tcp, counts),
    }
}
