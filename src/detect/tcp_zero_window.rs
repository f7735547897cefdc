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
