//! `tcp.closed_by_server`: the server hung up first with a FIN (the 0x904
//! "socket closed" case). Evidence: the server's FIN before any FIN or RST
//! from the client, and how many bytes each way came before it.

use super::{filter_with, tcp_moment, Context, Detector, Draft};
use crate::flow::{Transport, CLIENT, SERVER};
use crate::report::model::{Confidence, Level, Severity};

pub struct ServerClose;

/// Both directions above this many bytes: a session that was used; its end
/// may be an ordinary logoff (confidence drops).
const SESSION_BYTES: u64 = 64 << 10;

impl Detector for ServerClose {
    fn codes(&self) -> &'static [&'static str] {
        &["tcp.closed_by_server"]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let Some(sfin) = f.dirs[SERVER].fin else {
            return;
        };
        if f.key.transport != Transport::Tcp {
            return;
        }
        let client_first = f.dirs[CLIENT].fin.is_some_and(|c| c.frame < sfin.frame);
        let reset_first = f.rst.is_some_and(|r| r.at.frame < sfin.frame);
        if client_first || reset_first {
            return;
        }
        let bytes = f.payload();
        let confidence = if bytes[0] > SESSION_BYTES && bytes[1] > SESSION_BYTES {
            Confidence::lowered(
                Level::Low,
                "the session had carried data both ways; this may be an ordinary logoff or disconnect",
            )
        } else {
            Confidence::high()
        };
        let (phase, moment) = tcp_moment(f, bytes, sfin.frame);
        out.push(Draft {
            code: "tcp.closed_by_server".into(),
            severity: Severity::Error,
            phase,
            first_frame: sfin.frame,
            last_frame: f.dirs[CLIENT]
                .fin
                .map_or(sfin.frame, |m| m.frame.max(sfin.frame)),
            ts: sfin.ts,
            summary: format!(
                "The server {} closed the connection (FIN) {}",
                f.server, moment
            ),
            cause: "The server hung up: the client reports 0x904 \"socket closed\". Without the \
                    protocol exchange, the reason is the server's."
                .to_string(),
            remedy: "Check the server's TerminalServices-RemoteConnectionManager and \
                     RemoteDesktopServices-RdpCoreTS event logs at this time (licensing, security \
                     layer, certificate, connection limits)."
                .to_string(),
            filter: filter_with(f, "tcp.flags.fin==1"),
            confidence,
        });
    }
}
