//! `tcp.zero_window`: a side advertised a zero receive window: it could not
//! keep up. Evidence: the zero-window episodes (open → zero transitions).

use super::{filter_with, Context, Detector, Draft, SIDE};
use crate::flow::Transport;
use crate::report::model::{Confidence, Phase, Severity};

pub struct ZeroWindow;

impl Detector for ZeroWindow {
    fn codes(&self) -> &'static [&'static str] {
        &["tcp.zero_window"]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        if f.key.transport != Transport::Tcp {
            return;
        }
        for (dir, d) in f.dirs.iter().enumerate() {
            let z = d.zero_window;
            if z.count == 0 {
                continue;
            }
            let ep = if dir == 0 { f.client } else { f.server };
            out.push(Draft {
                code: "tcp.zero_window".into(),
                severity: Severity::Warning,
                phase: Phase::Tcp,
                first_frame: z.first.frame,
                last_frame: z.last.frame,
                ts: z.first.ts,
                summary: format!(
                    "The {} {ep} advertised a zero window {} time{}",
                    SIDE[dir],
                    z.count,
                    super::plural(z.count)
                ),
                cause: format!(
                    "The {} stopped reading from the connection: it is overloaded or hung.",
                    SIDE[dir]
                ),
                remedy: format!(
                    "Check CPU, memory and disk on the {}, and its RDP service or client process.",
                    SIDE[dir]
                ),
                filter: filter_with(f, "tcp.analysis.zero_window"),
                confidence: Confidence::high(),
            });
        }
    }
}
