//! The DCE/RPC PDUs of the RD Gateway's RPC-over-HTTP transport, as far as
//! they travel in plaintext: the connection-oriented common header (C706
//! 12.6.3.1, MS-RPCE 2.2.2.13), the RTS PDUs that build the virtual
//! connection (MS-RPCH 2.2.3.5–2.2.3.6, 2.2.4), the bind / bind_ack /
//! bind_nak of the TsProxy interface, the requests' operation numbers and
//! the faults' status codes. The TsProxy* calls themselves are sealed with
//! NTLM and stay opaque (their stubs are never read).
//!
//! No crate decodes captured RTS PDUs (the DCE/RPC crates on crates.io are
//! clients or NDR marshallers), so this is ours; layouts from the specs
//! named above and PROTOCOLS.md §4.
//!
//! Lax like the other parsers: only the common header is strict (version
//! 5.0, a PDU length of at least 16); a body shorter than its fixed part
//! keeps what it has.

use super::error::{Error, Layer};

/// Byte layouts (offsets from the PDU's start).
pub mod field {
    use std::ops::Range;
    /// The common header (C706 12.6.3.1): rpc_vers, rpc_vers_minor,
    /// PTYPE, pfc_flags, packed_drep[4], frag_length, auth_length, call_id.
    pub const VERS: usize = 0;
    pub const VERS_MINOR: usize = 1;
    pub const PTYPE: usize = 2;
    pub const DREP: usize = 4;
    pub const FRAG_LENGTH: Range<usize> = 8..10;
    pub const CALL_ID: Range<usize> = 12..16;
    pub const HEADER_LEN: usize = 16;
    /// RTS (MS-RPCH 2.2.3.6.1): Flags, NumberOfCommands, then commands.
    pub const RTS_FLAGS: Range<usize> = 16..18;
    pub const RTS_COUNT: Range<usize> = 18..20;
    pub const RTS_COMMANDS: usize = 20;
    /// request (C706 12.6.4.9): alloc_hint, p_cont_id, opnum.
    pub const REQ_OPNUM: Range<usize> = 22..24;
    /// fault (C706 12.6.4.7): alloc_hint, p_cont_id, cancel_count,
    /// reserved, status.
    pub const FAULT_STATUS: Range<usize> = 24..28;
    /// bind_nak (C706 12.6.4.6): provider_reject_reason.
    pub const NAK_REASON: Range<usize> = 16..18;
    /// bind_ack (C706 12.6.4.4): max_xmit_frag, max_recv_frag,
    /// assoc_group_id, then sec_addr (length u16 + bytes), padding to 4,
    /// n_results, 3 reserved, then results (result u16, reason u16,
    /// transfer syntax 20 bytes).
    pub const ACK_SEC_ADDR: usize = 24;
}

/// The packet types (C706 12.6.4; MS-RPCE 2.2.2.13 adds RTS).
pub const REQUEST: u8 = 0;
pub const RESPONSE: u8 = 2;
pub const FAULT: u8 = 3;
pub const BIND: u8 = 11;
pub const BIND_ACK: u8 = 12;
pub const BIND_NAK: u8 = 13;
pub const ALTER_CONTEXT: u8 = 14;
pub const ALTER_CONTEXT_RESP: u8 = 15;
pub const AUTH3: u8 = 16;
pub const SHUTDOWN: u8 = 17;
pub const CO_CANCEL: u8 = 18;
pub const ORPHANED: u8 = 19;
pub const RTS: u8 = 20;

/// The longest PDU: frag_length is a u16.
pub const MAX_PDU: usize = u16::MAX as usize;

/// RTS command types (MS-RPCH 2.2.3.5) and their sizes after the type.
const COMMANDS: &[(u32, usize)] = &[
    (0, 4),   // ReceiveWindowSize
    (1, 24),  // FlowControlAck
    (2, 4),   // ConnectionTimeout
    (3, 16),  // Cookie
    (4, 4),   // ChannelLifetime
    (5, 4),   // ClientKeepalive
    (6, 4),   // Version
    (7, 0),   // Empty
    (8, 4),   // Padding (+ ConformanceCount bytes)
    (9, 0),   // NegativeANCE
    (10, 0),  // ANCE
    (11, 4),  // ClientAddress (+ 4 or 16 + 12 bytes)
    (12, 16), // AssociationGroupId
    (13, 4),  // Destination
    (14, 4),  // PingTrafficSentNotify
];
const COOKIE: u32 = 3;

/// The TsProxy operations by number (MS-TSGU 3.1.4).
pub const OPNUMS: &[(u16, &str)] = &[
    (1, "TsProxyCreateTunnel"),
    (2, "TsProxyAuthorizeTunnel"),
    (3, "TsProxyMakeTunnelCall"),
    (4, "TsProxyCreateChannel"),
    (6, "TsProxyCloseChannel"),
    (7, "TsProxyCloseTunnel"),
    (8, "TsProxySetupReceivePipe"),
    (9, "TsProxySendToServer"),
];

pub fn opnum_name(op: u16) -> Option<&'static str> {
    OPNUMS.iter().find(|o| o.0 == op).map(|o| o.1)
}

/// Fault statuses (MS-RPCE 2.3.1, C706 appendix E, Win32 codes seen in
/// faults); a gateway's own E_PROXY codes are named by
/// [`super::tsgu::result_constant`].
pub const FAULTS: &[(u32, &str)] = &[
    (0x0000_0001, "nca_s_fault_other"),
    (0x0000_0005, "access_denied"),
    (0x0000_06BA, "rpc_s_server_unavailable"),
    (0x0000_06D8, "rpc_s_cannot_support"),
    (0x0000_06F7, "rpc_x_bad_stub_data"),
    (0x0000_0721, "rpc_s_sec_pkg_error"),
    (0x1C00_0006, "nca_s_fault_invalid_tag"),
    (0x1C00_001A, "nca_s_fault_context_mismatch"),
    (0x1C01_0002, "nca_s_op_rng_error"),
    (0x1C01_0003, "nca_s_unk_if"),
    (0x1C01_000B, "nca_s_proto_error"),
];

/// The status's name: an RPC or Win32 status, else a gateway's E_PROXY
/// code.
pub fn fault_name(status: u32) -> Option<&'static str> {
    FAULTS
        .iter()
        .find(|f| f.0 == status)
        .map(|f| f.1)
        .or_else(|| super::tsgu::result_constant(status))
}

/// bind_nak reasons (C706 12.6.3.5 p_reject_reason_t; MS-RPCE 2.2.2.5).
pub fn nak_reason(r: u16) -> &'static str {
    match r {
        0 => "reason not specified",
        1 => "temporary congestion",
        2 => "local limit exceeded",
        3 => "called address unknown",
        4 => "protocol version not supported",
        5 => "default context not supported",
        6 => "user data not readable",
        7 => "no PSAP available",
        8 => "authentication type not recognized",
        9 => "invalid checksum",
        _ => "an unknown reason",
    }
}

/// What one PDU says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Rts {
        /// CONN/A1, CONN/B1, … when the commands match one (MS-RPCH 2.2.4).
        name: Option<&'static str>,
        /// The virtual connection cookie (CONN/A1, CONN/B1: the first
        /// Cookie command).
        cookie: Option<[u8; 16]>,
    },
    Bind,
    /// The first presentation result: 0 acceptance, 1 user rejection, 2
    /// provider rejection.
    BindAck {
        result: Option<u16>,
    },
    BindNak {
        reason: Option<u16>,
    },
    Request {
        opnum: Option<u16>,
    },
    Response,
    Fault {
        status: Option<u32>,
    },
    Auth3,
    Other,
}

/// The parsed common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub len: usize,
    pub call_id: u32,
    /// packed_drep's integer representation is little-endian.
    pub little: bool,
}

fn u16_at(b: &[u8], r: std::ops::Range<usize>, little: bool) -> Option<u16> {
    let x = b.get(r)?;
    let a = [x[0], x[1]];
    Some(if little {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    })
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>, little: bool) -> Option<u32> {
    let x = b.get(r)?;
    let a = [x[0], x[1], x[2], x[3]];
    Some(if little {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

/// The common header at the start of `b`.
pub fn header(b: &[u8]) -> Result<Header, Error> {
    if b.len() < field::HEADER_LEN {
        return Err(Error::need_more(Layer::Rpc, field::HEADER_LEN));
    }
    if b[field::VERS] != 5 || b[field::VERS_MINOR] != 0 {
        return Err(Error::malformed(
            Layer::Rpc,
            field::VERS,
            format!(
                "version {}.{}, not a connection-oriented DCE/RPC PDU (5.0)",
                b[field::VERS],
                b[field::VERS_MINOR]
            ),
        ));
    }
    let little = b[field::DREP] & 0x10 != 0;
    let len = u16_at(b, field::FRAG_LENGTH, little).unwrap_or(0) as usize;
    if len < field::HEADER_LEN {
        return Err(Error::malformed(
            Layer::Rpc,
            field::FRAG_LENGTH.start,
            format!("frag_length {len} is shorter than the 16-byte header"),
        ));
    }
    Ok(Header {
        ptype: b[field::PTYPE],
        len,
        call_id: u32_at(b, field::CALL_ID, little).unwrap_or(0),
        little,
    })
}

/// The RTS PDU's commands: (type, value offset) each, and whether they
/// all fitted.
fn commands(p: &[u8], little: bool) -> (Vec<(u32, usize)>, bool) {
    let n = u16_at(p, field::RTS_COUNT, little).unwrap_or(0);
    let mut out = Vec::new();
    let mut o = field::RTS_COMMANDS;
    for _ in 0..n {
        let Some(t) = u32_at(p, o..o + 4, little) else {
            return (out, false);
        };
        let Some(&(_, size)) = COMMANDS.iter().find(|c| c.0 == t) else {
            return (out, false);
        };
        let extra = match t {
            8 => u32_at(p, o + 4..o + 8, little).unwrap_or(0) as usize,
            11 => match u32_at(p, o + 4..o + 8, little) {
                Some(0) => 4 + 12,
                Some(_) => 16 + 12,
                None => 0,
            },
            _ => 0,
        };
        out.push((t, o + 4));
        o = o.saturating_add(4 + size).saturating_add(extra);
        if o > p.len() {
            return (out, false);
        }
    }
    (out, true)
}

/// The name MS-RPCH 2.2.4 gives an RTS PDU of these commands.
fn rts_name(flags: u16, types: &[u32]) -> Option<&'static str> {
    Some(match (flags, types) {
        (0, [6, 3, 3, 0]) => "CONN/A1",
        (0, [2]) => "CONN/A3",
        (0, [6, 3, 3, 4, 5, 12]) => "CONN/B1",
        (0, [6, 0]) => "CONN/B2",
        (0, [6, 0, 2]) => "CONN/C2",
        (1, []) => "Ping",
        (2, [13, 1]) | (2, [1]) => "FlowControlAck",
        (0x10, [14]) => "PingTrafficSentNotify",
        (f, _) if f & 0x8 != 0 => "OUT_R1/A",
        _ => return None,
    })
}

/// One whole PDU (exactly `header`'s length of bytes, or more: the rest
/// is ignored).
pub fn parse(b: &[u8]) -> Result<(Header, Pdu), Error> {
    let h = header(b)?;
    if b.len() < h.len {
        return Err(Error::need_more(Layer::Rpc, h.len));
    }
    let p = &b[..h.len];
    let l = h.little;
    let pdu = match h.ptype {
        RTS => {
            let flags = u16_at(p, field::RTS_FLAGS, l).unwrap_or(0);
            let (cmds, whole) = commands(p, l);
            let types: Vec<u32> = cmds.iter().map(|c| c.0).collect();
            let name = if whole { rts_name(flags, &types) } else { None };
            let cookie = cmds
                .iter()
                .find(|c| c.0 == COOKIE)
                .and_then(|c| p.get(c.1..c.1 + 16))
                .filter(|_| matches!(name, Some("CONN/A1" | "CONN/B1")))
                .map(|c| {
                    let mut k = [0u8; 16];
                    k.copy_from_slice(c);
                    k
                });
            Pdu::Rts { name, cookie }
        }
        BIND => Pdu::Bind,
        BIND_ACK => {
            // After sec_addr (its length, the bytes) and padding to 4:
            // n_results, 3 reserved, the first result.
            let result = u16_at(p, field::ACK_SEC_ADDR..field::ACK_SEC_ADDR + 2, l).and_then(|n| {
                let o = field::ACK_SEC_ADDR + 2 + n as usize;
                let o = o + (4 - o % 4) % 4;
                (p.get(o).copied()? > 0)
                    .then(|| u16_at(p, o + 4..o + 6, l))
                    .flatten()
            });
            Pdu::BindAck { result }
        }
        BIND_NAK => Pdu::BindNak {
            reason: u16_at(p, field::NAK_REASON, l),
        },
        REQUEST => Pdu::Request {
            opnum: u16_at(p, field::REQ_OPNUM, l),
        },
        RESPONSE => Pdu::Response,
        FAULT => Pdu::Fault {
            status: u32_at(p, field::FAULT_STATUS, l),
        },
        AUTH3 => Pdu::Auth3,
        _ => Pdu::Other,
    };
    Ok((h, pdu))
}

/// A cookie as the report shows it (the GUID's bytes in hex, as sent).
pub fn cookie_hex(c: &[u8; 16]) -> String {
    c.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod test {
    use super::*;

    fn pdu(ptype: u8, call: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
        v.extend_from_slice(&((16 + body.len()) as u16).to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&call.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn cmd(t: u32, v: &[u8]) -> Vec<u8> {
        let mut c = t.to_le_bytes().to_vec();
        c.extend_from_slice(v);
        c
    }

    fn rts(flags: u16, cmds: &[Vec<u8>]) -> Vec<u8> {
        let mut b = flags.to_le_bytes().to_vec();
        b.extend_from_slice(&(cmds.len() as u16).to_le_bytes());
        for c in cmds {
            b.extend_from_slice(c);
        }
        pdu(RTS, 0, &b)
    }

    /// CONN/A1 as FreeRDP sends it on the OUT channel (MS-RPCH 2.2.4.2):
    /// Version 1, the virtual connection cookie, the OUT channel cookie,
    /// ReceiveWindowSize 65536. 76 bytes, the OUT request's Content-Length.
    fn conn_a1() -> Vec<u8> {
        rts(
            0,
            &[
                cmd(6, &1u32.to_le_bytes()),
                cmd(3, &[0xAA; 16]),
                cmd(3, &[0xBB; 16]),
                cmd(0, &65536u32.to_le_bytes()),
            ],
        )
    }

    #[test]
    fn conn_a1_names_the_virtual_connection() {
        let a1 = conn_a1();
        assert_eq!(a1.len(), 76);
        let (h, p) = parse(&a1).unwrap();
        assert_eq!((h.ptype, h.len), (RTS, 76));
        assert_eq!(
            p,
            Pdu::Rts {
                name: Some("CONN/A1"),
                cookie: Some([0xAA; 16])
            }
        );
        // One byte short: more is needed, nothing is made up.
        assert!(parse(&a1[..75]).unwrap_err().is_need_more());
        // A command type changed to one MS-RPCH does not define: no name,
        // no cookie.
        let mut bad = a1.clone();
        bad[20] = 0x7F;
        assert_eq!(
            parse(&bad).unwrap().1,
            Pdu::Rts {
                name: None,
                cookie: None
            }
        );
    }

    #[test]
    fn conn_b1_and_the_servers_answers() {
        let b1 = rts(
            0,
            &[
                cmd(6, &1u32.to_le_bytes()),
                cmd(3, &[0xAA; 16]),
                cmd(3, &[0xCC; 16]),
                cmd(4, &0x4000_0000u32.to_le_bytes()),
                cmd(5, &300_000u32.to_le_bytes()),
                cmd(12, &[0xDD; 16]),
            ],
        );
        assert_eq!(b1.len(), 104);
        assert_eq!(
            parse(&b1).unwrap().1,
            Pdu::Rts {
                name: Some("CONN/B1"),
                cookie: Some([0xAA; 16])
            }
        );
        let a3 = rts(0, &[cmd(2, &120_000u32.to_le_bytes())]);
        assert!(matches!(
            parse(&a3).unwrap().1,
            Pdu::Rts {
                name: Some("CONN/A3"),
                cookie: None
            }
        ));
        let c2 = rts(
            0,
            &[
                cmd(6, &1u32.to_le_bytes()),
                cmd(0, &65536u32.to_le_bytes()),
                cmd(2, &120_000u32.to_le_bytes()),
            ],
        );
        assert!(matches!(
            parse(&c2).unwrap().1,
            Pdu::Rts {
                name: Some("CONN/C2"),
                ..
            }
        ));
        // A command count past the PDU's end: what fitted, no name.
        let mut short = a3.clone();
        short[18] = 2;
        assert!(matches!(
            parse(&short).unwrap().1,
            Pdu::Rts { name: None, .. }
        ));
    }

    #[test]
    fn faults_naks_requests_and_bind_acks() {
        // fault: alloc_hint, p_cont_id, cancel_count, reserved, status 5.
        let f = pdu(FAULT, 3, &[0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        let (h, p) = parse(&f).unwrap();
        assert_eq!(h.call_id, 3);
        assert_eq!(p, Pdu::Fault { status: Some(5) });
        assert_eq!(fault_name(5), Some("access_denied"));
        assert_eq!(fault_name(0x8007_59DA), Some("E_PROXY_RAP_ACCESSDENIED"));
        // Cut before the status: kept as unknown, not invented.
        let cut = pdu(FAULT, 3, &[0; 6]);
        assert_eq!(parse(&cut).unwrap().1, Pdu::Fault { status: None });
        let nak = pdu(BIND_NAK, 2, &[2, 0]);
        assert_eq!(parse(&nak).unwrap().1, Pdu::BindNak { reason: Some(2) });
        let req = pdu(REQUEST, 4, &[0, 0, 0, 0, 0, 0, 1, 0, 0xEE, 0xEE]);
        assert_eq!(parse(&req).unwrap().1, Pdu::Request { opnum: Some(1) });
        assert_eq!(opnum_name(1), Some("TsProxyCreateTunnel"));
        // bind_ack: max_xmit, max_recv, assoc, sec_addr "3388\0" (5 bytes),
        // padding to 4, one result: provider rejection (2).
        let mut body = vec![0xD0, 0x16, 0xD0, 0x16, 0x34, 0x12, 0, 0, 5, 0];
        body.extend_from_slice(b"3388\0");
        body.push(0); // to offset 32
        body.extend_from_slice(&[1, 0, 0, 0, 2, 0, 1, 0]);
        body.extend_from_slice(&[0; 20]);
        let ack = pdu(BIND_ACK, 2, &body);
        assert_eq!(parse(&ack).unwrap().1, Pdu::BindAck { result: Some(2) });
    }

    #[test]
    fn the_header_is_strict() {
        let mut a1 = conn_a1();
        a1[0] = 4;
        assert!(!header(&a1).unwrap_err().is_need_more());
        let mut a1 = conn_a1();
        a1[8] = 15;
        a1[9] = 0;
        assert!(!header(&a1).unwrap_err().is_need_more());
        assert!(header(&conn_a1()[..15]).unwrap_err().is_need_more());
        // Big-endian drep: the same PDU, lengths read the other way.
        let mut be = conn_a1();
        be[4] = 0;
        be[8] = 0;
        be[9] = 76;
        assert_eq!(header(&be).unwrap().len, 76);
    }
}
