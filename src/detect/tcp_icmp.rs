//! `tcp.icmp_unreachable`: a router or the host answered the connection with
//! an ICMP/ICMPv6 destination unreachable quoting it. Evidence: the ICMP
//! error, matched to the flow by the packet it quotes.

use super::{conversation_filter, Context, Detector, Draft};
use crate::finding::{Code, Phase, Severity};
use crate::flow::Transport;

pub struct IcmpUnreachable;

impl Detector for IcmpUnreachable {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpIcmpUnreachable]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Tcp {
            return;
        }
        let mut errs = f.icmp.iter().filter(|e| e.err.is_unreachable());
        let Some(first) = errs.next() else {
            return;
        };
        let last = errs.next_back().unwrap_or(first);
        let count = f.icmp_unreachable;
        let (who, icmp) = super::icmp_sender(f, first);
        let d = Draft::new(
            Code::TcpIcmpUnreachable,
            Severity::Error,
            Phase::Tcp,
            first.at.frame,
            first.at.ts,
        )
        .until(last.at.frame)
        .summary(format!(
            "{count} ICMP {} from {who} for the connection to {}",
            first.err.describe(),
            f.server
        ))
        .cause(match (first.err.v6, first.err.code) {
            (false, 9 | 10 | 13) | (true, 1 | 5 | 6) => format!(
                "A firewall ({}) forbids the connection and says so.",
                first.from
            ),
            (false, 0 | 1) | (true, 0 | 3) => format!(
                "No route to {}: it is down or not reachable from {}.",
                f.server.ip(),
                first.from
            ),
            _ => format!("{} reports the destination as unreachable.", first.from),
        })
        .remedy(format!(
            "Check routing and firewall rules on {} for TCP port {} toward {}.",
            first.from,
            f.server.port(),
            f.server.ip()
        ))
        .filter(format!("{icmp} && {}", conversation_filter(f)));
        out.push(d);
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{icmp_error, TcpConv};

    #[test]
    fn a_router_says_the_host_is_unreachable() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.syn(&mut out);
        let e = icmp_error(
            "198.18.0.254",
            "198.18.0.1".parse().unwrap(),
            1,
            0,
            &out[0],
            2_000_000_000,
        );
        out.push(e);
        let d = check(&IcmpUnreachable, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].code, d[0].first_frame), (Code::TcpIcmpUnreachable, 2));
        assert!(
            d[0].summary.contains("from router 198.18.0.254"),
            "{}",
            d[0].summary
        );
        assert!(
            d[0].cause.starts_with("No route to 198.18.0.2"),
            "{}",
            d[0].cause
        );
    }
}
