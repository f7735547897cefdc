//! `tcp.closed_by_server`: the server hung up first with a FIN (the 0x904
//! "socket closed" case). Evidence: the server's FIN before any FIN or RST
//! from the client, and how many bytes each way came before it.

use super::{filter_with, tcp_moment, Context, Detector, Draft};
use crate::finding::{Code, Confidence, Dir, Level, Severity};
use crate::flow::Transport;
use crate::proto::AppClass;

pub struct ServerClose;

/// Both directions above this many bytes: a session that was used; its end
/// may be an ordinary logoff (confidence drops).
const SESSION_BYTES: u64 = 64 << 10;

impl Detector for ServerClose {
    fn codes(&self) -> Vec<Code> {
        vec![Code::TcpClosedByServer]
    }

    fn check(&self, cx: &Context<'_>, out: &mut Vec<Draft>) {
        let f = cx.flow;
        let Some(sfin) = f.tcp().dirs[Dir::Server].fin else {
            return;
        };
        if f.key.transport != Transport::Tcp {
            return;
        }
        let client_first = f.tcp().dirs[Dir::Client]
            .fin
            .is_some_and(|c| c.frame < sfin.frame);
        let reset_first = f.tcp().rst.is_some_and(|r| r.at.frame < sfin.frame);
        if client_first || reset_first {
            return;
        }
        if f.app.gateway_leg().is_some_and(|g| {
            g.carried() || g.exchanges.last().is_some_and(|e| e.response.is_some())
        }) {
            // A gateway leg that carried the tunnel (how it closed is the
            // tunnelled session's ending, told by that connection), or whose
            // server closed after answering (HTTP/1.0, MIT's KDC proxy
            // client): an ordinary close.
            return;
        }
        let end = super::rdp_end::session_end(f);
        if end.as_ref().is_some_and(|e| e.ordinary) {
            return;
        }
        let cut = end.as_ref().map(|e| e.cut()).unwrap_or_default();
        let bytes = f.payload();
        let confidence = if let Some(c) = end.as_ref().and_then(|e| e.confidence()) {
            c
        } else if bytes[0] > SESSION_BYTES && bytes[1] > SESSION_BYTES {
            Confidence::lowered(
                Level::Low,
                "the session had carried data both ways; this may be an ordinary logoff or disconnect",
            )
        } else {
            Confidence::high()
        };
        let (phase, moment) = tcp_moment(f, bytes, sfin.frame);
        // TLS never shown to be RDP (`--port` on another TLS service):
        // after an exchange both ways, the server closing is how such
        // services end a connection, not an RDP failure.
        let t = &f.app.facts().tls;
        let plain_tls = matches!(f.app.class, AppClass::Tls)
            && !crate::session::moment::shown_rdp(f)
            && t.done.is_some_and(|d| d.frame < sfin.frame)
            && t.app[Dir::Client].records > 0
            && t.app[Dir::Server].records > 0;
        if plain_tls {
            out.push(
                Draft::new(Code::TcpClosedByServer, Severity::Info, phase, sfin.frame, sfin.ts)
                    .summary(format!(
                        "The server {} closed the connection (FIN) {moment}; the connection is TLS never shown to be RDP (no X.224 exchange, no RDP-shaped records)",
                        f.server
                    ))
                    .cause("A TLS service that closes after an exchange both ways ends connections this way; nothing here says RDP failed.")
                    .remedy("If this port should carry RDP, check what listens there (netstat -abno on the server); a reverse proxy or another service answers.")
                    .filter(filter_with(f, "tcp.flags.fin==1"))
                    .confidence(Confidence::lowered(Level::Medium, "the application over TLS is unknown")),
            );
            return;
        }
        out.push(
            Draft::new(
                Code::TcpClosedByServer,
                Severity::Error,
                phase,
                sfin.frame,
                sfin.ts,
            )
            .until(
                f.tcp().dirs[Dir::Client]
                    .fin
                    .map_or(sfin.frame, |m| m.frame.max(sfin.frame)),
            )
            .summary(format!(
                "The server {} closed the connection (FIN) {}{cut}",
                f.server, moment
            ))
            .cause(
                "The server hung up: the client reports 0x904 \"socket closed\". Without the \
                    protocol exchange, the reason is the server's.",
            )
            .remedy(
                "Check the server's TerminalServices-RemoteConnectionManager and \
                     RemoteDesktopServices-RdpCoreTS event logs at this time (licensing, security \
                     layer, certificate, connection limits).",
            )
            .filter(filter_with(f, "tcp.flags.fin==1"))
            .confidence(confidence),
        );
    }
}

#[cfg(test)]
mod test {
    use super::super::fixture::check;
    use super::*;
    use crate::config::Config;
    use crate::synth::{x224_cr, TcpConv, C, S};

    #[test]
    fn the_server_hangs_up_first() {
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, 1_000_000);
        c.send(&mut out, C, &x224_cr("alice", 3), 1_000_000);
        c.fin(&mut out, S);
        let d = check(&ServerClose, &out, &Config::default());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::TcpClosedByServer);
        assert_eq!(d[0].first_frame, out.len() as u64);
        assert!(
            d[0].summary.contains("after the X.224 Connection Request"),
            "{}",
            d[0].summary
        );
        // The client closing first is not the server's doing.
        let mut out = vec![];
        let mut c = TcpConv::new("198.18.0.1:50000", "198.18.0.2:3389", 1_000_000_000);
        c.handshake(&mut out, 1_000_000)
            .close(&mut out, C, 1_000_000);
        assert!(check(&ServerClose, &out, &Config::default()).is_empty());
    }
}
