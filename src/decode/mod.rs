//! decode: frame bytes → IP and transport headers (link types, IPv4/IPv6,
//! TCP, UDP, ICMP errors with their quoted packet) and IP reassembly.

pub mod defrag;
pub mod link;
pub mod packet;

pub use packet::{decode, IcmpError, Ip, Packet, Quoted, Tcp, Udp, L4};
