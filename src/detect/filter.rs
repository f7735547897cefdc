//! Wireshark display filters (valid in 4.0+) that select the frames a
//! finding cites: tests/filters.rs runs each one through tshark.

use crate::flow::{Flow, Transport};
use std::net::{IpAddr, SocketAddr};

/// The Wireshark field of an address of this family.
pub fn addr_field(ip: &IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "ipv6.addr"
    } else {
        "ip.addr"
    }
}

/// The flow's packets. A connection tunnelled through a gateway travels
/// in its legs (the OUT and IN channels have their own client ports): all
/// the client host's traffic to the gateway's port.
pub fn conversation_filter(f: &Flow) -> String {
    if f.tunnel_of.is_some() {
        return hosts_filter(f.client.ip(), f.server);
    }
    endpoints_filter(f.client, f.server, f.key.transport)
}

/// The packets between two endpoints.
pub fn endpoints_filter(a: SocketAddr, b: SocketAddr, t: Transport) -> String {
    let af = addr_field(&a.ip());
    let pf = match t {
        Transport::Tcp => "tcp.port",
        Transport::Udp => "udp.port",
    };
    let addrs = if a.ip() == b.ip() {
        format!("{af}=={}", a.ip())
    } else {
        format!("{af}=={} && {af}=={}", a.ip(), b.ip())
    };
    let ports = if a.port() == b.port() {
        format!("{pf}=={}", a.port())
    } else {
        format!("{pf}=={} && {pf}=={}", a.port(), b.port())
    };
    format!("{addrs} && {ports}")
}

/// Everything between a client host and a server port (all the client's
/// connections there).
pub fn hosts_filter(client: IpAddr, server: SocketAddr) -> String {
    let af = addr_field(&client);
    format!(
        "{af}=={client} && {af}=={} && tcp.port=={}",
        server.ip(),
        server.port()
    )
}

/// Conversation plus an extra condition.
pub fn filter_with(f: &Flow, extra: &str) -> String {
    format!("{} && {extra}", conversation_filter(f))
}

/// `frame.number==A || frame.number==B` for the given frames (0 skipped,
/// sorted, deduplicated).
pub fn frame_set(frames: &[u64]) -> String {
    let mut v: Vec<u64> = frames.iter().copied().filter(|&n| n > 0).collect();
    v.sort_unstable();
    v.dedup();
    v.iter()
        .map(|n| format!("frame.number=={n}"))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The conversation, narrowed to the given frames.
pub fn frames_filter(f: &Flow, frames: &[u64]) -> String {
    filter_with(f, &format!("({})", frame_set(frames)))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn filters_for_v4_and_v6() {
        let a: SocketAddr = "198.18.0.1:50000".parse().unwrap();
        let b: SocketAddr = "198.18.0.2:3389".parse().unwrap();
        assert_eq!(
            endpoints_filter(a, b, Transport::Tcp),
            "ip.addr==198.18.0.1 && ip.addr==198.18.0.2 && tcp.port==50000 && tcp.port==3389"
        );
        let a: SocketAddr = "[::1]:50000".parse().unwrap();
        let b: SocketAddr = "[::1]:3389".parse().unwrap();
        assert_eq!(
            endpoints_filter(a, b, Transport::Udp),
            "ipv6.addr==::1 && udp.port==50000 && udp.port==3389"
        );
        assert_eq!(
            frame_set(&[9, 0, 3, 9]),
            "frame.number==3 || frame.number==9"
        );
    }
}
