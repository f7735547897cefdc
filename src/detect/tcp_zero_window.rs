//! `tcp.zero_window`: a side advertised a zero receive window: it could not
//! keep up. Evidence: the zero-window episodes (open → zero transitions).

use super::{filter_with, plural, Context, Detector, Draft};
use crate::finding::{Code, Dir, Phase, Severity};
use crate::flow::Transport;

pub struct ZeroWindow;

impl Detector for ZeroWindow {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpZeroWindow]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Tcp {
            return;
        }
        for dir in Dir::BOTH {
            let z = f.tcp().dirs[dir].zero_window;
            if z.count == 0 {
                continue;
            }
            let ep = f.endpoint(dir);
            out.push(
                Draft::new(Code::TcpZeroWindow, Severity::Warning, Phase::Tcp, z.first.frame, z.first.ts)
                    .until(z.last.frame)
                    .summary(format!(
                        "The {dir} {ep} advertised a zero window {} time{}",
                        z.count,
                        plural(z.count)
                    ))
                    .cause(format!(
                        "The {dir} stopped reading from the connection: it is overloaded or hung."
                    ))
                    .remedy(format!(
                        "Check CPU, memory and disk on the {dir}, and its RDP service or client process."
                    ))
                    .filter(filter_with(f, "tcp.analysis.zero_window")),
            );
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::{check, MS};
    use super::*;
    use crate::config::Config;
    use crate::synth::{x224_cr, TcpConv, C, S};

    #[test]
    fn zero_window_episodes_are_counted_per_side() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, MS);
        c.send(&mut out, C, &x224_cr("alice", 3), MS);
        // Two episodes from the server: zero, open, zero.
        c.window[S] = 0;
        c.ack(&mut out, S);
        c.window[S] = 8192;
        c.ack(&mut out, S);
        c.window[S] = 0;
        c.ack(&mut out, S).ack(&mut out, S);
        let d = check(&ZeroWindow, &out, &Config::default());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].summary
                .contains("server 198.18.0.2:3389 advertised a zero window 2 times"),
            "{}",
            d[0].summary
        );
    }
}
