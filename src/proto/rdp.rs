//! The RDP PDUs of the connection sequence and the session's end, inside
//! MCS domain PDUs (T.125 Send Data Request / Indication, the Disconnect
//! Provider Ultimatum): read from a decrypted TLS stream, or in the clear
//! under Standard RDP Security with encryption level NONE.
//!
//! Where the security header is: under Enhanced RDP Security (TLS, NLA)
//! and at encryption level NONE, only the Client Info PDU and the
//! licensing PDUs carry a basic security header (MS-RDPBCGR 5.3.8,
//! 2.2.8.1.1.2.1); every other slow-path PDU starts with its Share Control
//! Header. A user-data block is read as a Share Control Header when its
//! first field is its own length (or the flow-control marker) and its type
//! carries the protocol version (0x10); else as a security header, whose
//! SEC_ENCRYPT flag means RC4-encrypted (unreadable here).

use super::credssp::text;
use super::error::{Error, Layer};

/// MS-RDPBCGR 2.2.8.1.1.2.1 basic security header flags.
pub mod sec {
    pub const ENCRYPT: u16 = 0x0008;
    pub const INFO_PKT: u16 = 0x0040;
    pub const LICENSE_PKT: u16 = 0x0080;
    pub const REDIRECTION_PKT: u16 = 0x0400;
}

/// Share Control pduType (2.2.8.1.1.1.1), low 4 bits.
pub mod pdu_type {
    pub const DEMAND_ACTIVE: u16 = 0x1;
    pub const CONFIRM_ACTIVE: u16 = 0x3;
    pub const DEACTIVATE_ALL: u16 = 0x6;
    pub const DATA: u16 = 0x7;
    pub const SERVER_REDIR: u16 = 0xA;
}

/// Share Data pduType2 (2.2.8.1.1.1.2).
pub mod pdu_type2 {
    pub const SHUTDOWN_REQUEST: u8 = 0x24;
    pub const SHUTDOWN_DENIED: u8 = 0x25;
    pub const SAVE_SESSION_INFO: u8 = 0x26;
    pub const SET_ERROR_INFO: u8 = 0x2F;
}

/// A Server Redirection PDU's facts (2.2.13.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirect {
    pub session_id: u32,
    pub flags: u32,
    /// LB_TARGET_NET_ADDRESS, else the FQDN, else the NetBIOS name.
    pub target: Option<String>,
    pub fqdn: Option<String>,
    /// The load-balance info / routing token, as text (cookies are ASCII).
    pub lb_info: Option<String>,
    pub user: Option<String>,
    pub domain: Option<String>,
}

/// What one MCS domain PDU says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// The T.125 reason: 0 domain-disconnected, 1 provider-initiated,
    /// 2 token-purged, 3 user-requested, 4 channel-purged.
    Ultimatum(u8),
    ClientInfo {
        user: String,
        domain: String,
    },
    /// A licensing PDU; for ERROR_ALERT (0xFF) the error code and state
    /// transition.
    License {
        msg: u8,
        error: Option<(u32, u32)>,
    },
    DemandActive,
    ConfirmActive,
    DeactivateAll,
    ErrorInfo(u32),
    /// Save Session Info: the info type, and a logon error notification
    /// (ErrorNotificationType, ErrorNotificationData) when present.
    SaveSessionInfo {
        info: u32,
        logon_error: Option<(u32, u32)>,
    },
    ShutdownRequest,
    ShutdownDenied,
    Redirect(Redirect),
    /// Another share data PDU.
    Data(u8),
    /// RC4-encrypted (Standard RDP Security) or compressed.
    Unreadable,
    /// Another MCS PDU (Erect Domain, Attach User, Channel Join …) or a
    /// virtual channel's data.
    Other,
}

fn u16le(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|x| u16::from_le_bytes([x[0], x[1]]))
}

fn u32le(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// An MCS domain PDU (the bytes after the X.224 Data header).
pub fn domain_pdu(b: &[u8]) -> Result<Pdu, Error> {
    let short = |n| Err(Error::need_more(Layer::Rdp, n));
    let Some(&first) = b.first() else {
        return short(1);
    };
    match first >> 2 {
        // DisconnectProviderUltimatum: 3 bits of reason after the choice.
        8 => {
            let Some(&second) = b.get(1) else {
                return short(2);
            };
            Ok(Pdu::Ultimatum(((first & 0x03) << 1) | (second >> 7)))
        }
        // SendDataRequest (25) / SendDataIndication (26).
        25 | 26 => {
            if b.len() < 7 {
                return short(7);
            }
            let (len, at) = if b[6] & 0x80 != 0 {
                let Some(&lo) = b.get(7) else {
                    return short(8);
                };
                ((((b[6] & 0x3f) as usize) << 8) | lo as usize, 8)
            } else {
                (b[6] as usize, 7)
            };
            let Some(data) = b.get(at..at + len) else {
                return Err(Error::malformed(
                    Layer::Rdp,
                    6,
                    format!("MCS user data of {len} bytes in {} left", b.len() - at),
                ));
            };
            Ok(user_data(data))
        }
        _ => Ok(Pdu::Other),
    }
}

fn is_share_control(d: &[u8]) -> bool {
    match (u16le(d, 0), u16le(d, 2)) {
        (Some(total), Some(typ)) => {
            (total as usize == d.len() || total == 0x8000) && typ & 0xF0 == 0x10
        }
        _ => false,
    }
}

fn user_data(d: &[u8]) -> Pdu {
    if is_share_control(d) {
        return share_control(d);
    }
    let Some(flags) = u16le(d, 0) else {
        return Pdu::Other;
    };
    if flags & sec::ENCRYPT != 0 {
        return Pdu::Unreadable;
    }
    let body = &d[4.min(d.len())..];
    if flags & sec::LICENSE_PKT != 0 {
        let msg = body.first().copied().unwrap_or(0);
        let error = if msg == 0xFF {
            u32le(body, 4).zip(u32le(body, 8))
        } else {
            None
        };
        return Pdu::License { msg, error };
    }
    if flags & sec::INFO_PKT != 0 {
        return client_info(body);
    }
    if flags & sec::REDIRECTION_PKT != 0 {
        return redirect(body).map_or(Pdu::Other, Pdu::Redirect);
    }
    if is_share_control(body) {
        return share_control(body);
    }
    Pdu::Other
}

/// TS_INFO_PACKET (2.2.1.11.1.1): code page, flags, five lengths, then the
/// domain and user name, each with its terminator.
fn client_info(b: &[u8]) -> Pdu {
    let flags = u32le(b, 4).unwrap_or(0);
    let unicode = flags & 0x10 != 0;
    let nul = if unicode { 2 } else { 1 };
    let (Some(cd), Some(cu)) = (u16le(b, 8), u16le(b, 10)) else {
        return Pdu::Other;
    };
    let (cd, cu) = (cd as usize, cu as usize);
    let domain = b.get(18..18 + cd).map(|x| text(x, unicode, 256));
    let user = b
        .get(18 + cd + nul..18 + cd + nul + cu)
        .map(|x| text(x, unicode, 256));
    Pdu::ClientInfo {
        user: user.unwrap_or_default(),
        domain: domain.unwrap_or_default(),
    }
}

fn share_control(d: &[u8]) -> Pdu {
    if u16le(d, 0) == Some(0x8000) {
        return Pdu::Other;
    }
    let typ = u16le(d, 2).unwrap_or(0) & 0x0F;
    match typ {
        pdu_type::DEMAND_ACTIVE => Pdu::DemandActive,
        pdu_type::CONFIRM_ACTIVE => Pdu::ConfirmActive,
        pdu_type::DEACTIVATE_ALL => Pdu::DeactivateAll,
        pdu_type::SERVER_REDIR => d
            .get(8..)
            .and_then(redirect)
            .map_or(Pdu::Other, Pdu::Redirect),
        pdu_type::DATA => {
            // Share Data Header: shareId(4) pad(1) streamId(1)
            // uncompressedLength(2) pduType2(1) compressedType(1)
            // compressedLength(2), after the 6-byte control header.
            let (Some(&t2), Some(&comp)) = (d.get(14), d.get(15)) else {
                return Pdu::Other;
            };
            if comp & 0x20 != 0 {
                return Pdu::Unreadable;
            }
            let p = &d[18.min(d.len())..];
            match t2 {
                pdu_type2::SET_ERROR_INFO => u32le(p, 0).map_or(Pdu::Data(t2), Pdu::ErrorInfo),
                pdu_type2::SAVE_SESSION_INFO => save_session_info(p).unwrap_or(Pdu::Data(t2)),
                pdu_type2::SHUTDOWN_REQUEST => Pdu::ShutdownRequest,
                pdu_type2::SHUTDOWN_DENIED => Pdu::ShutdownDenied,
                _ => Pdu::Data(t2),
            }
        }
        _ => Pdu::Other,
    }
}

/// 2.2.10.1.1: infoType; INFOTYPE_LOGON_EXTENDED_INFO (3) holds Length,
/// FieldsPresent, then the auto-reconnect cookie (1) and the logon errors
/// (2), each after a cbFieldData.
fn save_session_info(p: &[u8]) -> Option<Pdu> {
    let info = u32le(p, 0)?;
    let mut logon_error = None;
    if info == 3 {
        let present = u32le(p, 6)?;
        let mut o = 10;
        if present & 1 != 0 {
            o += 4 + u32le(p, o)? as usize;
        }
        if present & 2 != 0 {
            logon_error = u32le(p, o + 4).zip(u32le(p, o + 8));
        }
    }
    Some(Pdu::SaveSessionInfo { info, logon_error })
}

/// RDP_SERVER_REDIRECTION_PACKET: Flags, Length, SessionID, RedirFlags,
/// then the fields the flags announce, in order, each a u32 length and
/// its bytes (LB_TARGET_NET_ADDRESS 0x1, LB_LOAD_BALANCE_INFO 0x2,
/// LB_USERNAME 0x4, LB_DOMAIN 0x8, LB_PASSWORD 0x10, LB_TARGET_FQDN 0x100,
/// LB_TARGET_NETBIOS_NAME 0x200).
fn redirect(b: &[u8]) -> Option<Redirect> {
    if u16le(b, 0)? != sec::REDIRECTION_PKT {
        return None;
    }
    let mut r = Redirect {
        session_id: u32le(b, 4)?,
        flags: u32le(b, 8)?,
        ..Default::default()
    };
    let mut o = 12;
    let take = |o: &mut usize| -> Option<&[u8]> {
        let n = u32le(b, *o)? as usize;
        let v = b.get(*o + 4..(*o + 4).checked_add(n)?)?;
        *o += 4 + n;
        Some(v)
    };
    let mut netbios = None;
    for bit in [0x1u32, 0x2, 0x4, 0x8, 0x10, 0x100, 0x200] {
        if r.flags & bit == 0 {
            continue;
        }
        let Some(v) = take(&mut o) else { break };
        match bit {
            0x1 => r.target = Some(text(v, true, 256)),
            0x2 => {
                let s = text(v, false, 256);
                r.lb_info = Some(s.trim_end().to_string());
            }
            0x4 => r.user = Some(text(v, true, 256)),
            0x8 => r.domain = Some(text(v, true, 256)),
            0x100 => r.fqdn = Some(text(v, true, 256)),
            0x200 => netbios = Some(text(v, true, 256)),
            _ => {}
        }
    }
    if r.target.is_none() {
        r.target = r.fqdn.clone().or(netbios);
    }
    Some(r)
}

/// Set Error Info codes (MS-RDPBCGR 2.2.5.1.1, FreeRDP errinfo.c), named
/// after the ERRINFO_ constant, lower case.
pub const ERRINFO: &[(u32, &str)] = &[
    (0x0000, "none"),
    (0x0001, "rpc_initiated_disconnect"),
    (0x0002, "rpc_initiated_logoff"),
    (0x0003, "idle_timeout"),
    (0x0004, "logon_timeout"),
    (0x0005, "disconnected_by_otherconnection"),
    (0x0006, "out_of_memory"),
    (0x0007, "server_denied_connection"),
    (0x0009, "server_insufficient_privileges"),
    (0x000A, "server_fresh_credentials_required"),
    (0x000B, "rpc_initiated_disconnect_byuser"),
    (0x000C, "logoff_by_user"),
    (0x000F, "close_stack_on_driver_not_ready"),
    (0x0010, "server_dwm_crash"),
    (0x0011, "close_stack_on_driver_failure"),
    (0x0012, "close_stack_on_driver_iface_failure"),
    (0x0017, "server_winlogon_crash"),
    (0x0018, "server_csrss_crash"),
    (0x0019, "server_shutdown"),
    (0x001A, "server_reboot"),
    (0x0100, "license_internal"),
    (0x0101, "license_no_license_server"),
    (0x0102, "license_no_license"),
    (0x0103, "license_bad_client_msg"),
    (0x0104, "license_hwid_doesnt_match_license"),
    (0x0105, "license_bad_client_license"),
    (0x0106, "license_cant_finish_protocol"),
    (0x0107, "license_client_ended_protocol"),
    (0x0108, "license_bad_client_encryption"),
    (0x0109, "license_cant_upgrade_license"),
    (0x010A, "license_no_remote_connections"),
    (0x0400, "cb_destination_not_found"),
    (0x0402, "cb_loading_destination"),
    (0x0404, "cb_redirecting_to_destination"),
    (0x0405, "cb_session_online_vm_wake"),
    (0x0406, "cb_session_online_vm_boot"),
    (0x0407, "cb_session_online_vm_no_dns"),
    (0x0408, "cb_destination_pool_not_free"),
    (0x0409, "cb_connection_cancelled"),
    (0x0410, "cb_connection_error_invalid_settings"),
    (0x0411, "cb_session_online_vm_boot_timeout"),
    (0x0412, "cb_session_online_vm_sessmon_failed"),
    (0x10C9, "unknownpdutype2"),
    (0x10CA, "unknownpdutype"),
    (0x10CB, "datapdusequence"),
    (0x10CD, "controlpdusequence"),
    (0x10CE, "invalidcontrolpduaction"),
    (0x10CF, "invalidinputpdutype"),
    (0x10D0, "invalidinputpduflags"),
    (0x10D1, "connectfailed"),
    (0x10D2, "createuserdatafailed"),
    (0x10D3, "invalidpduflags"),
    (0x10D4, "shareruledtimeout"),
    (0x10D5, "synchronizeerrorpdutype"),
    (0x10DA, "decompressfailed"),
    (0x10E0, "securitydatatooshort"),
    (0x10E1, "badsupplementalcapsetlength"),
    (0x10EA, "badcapabilities"),
    (0x10EB, "virtualchanneldecompressionerr"),
    (0x10EC, "invalidvcompressiontype"),
    (0x10ED, "invalidchannelid"),
    (0x10EE, "vchannelstoomany"),
    (0x10F3, "remoteappsnotenabled"),
    (0x10F4, "cachecapnotset"),
    (0x10F5, "bitmapcachenotset"),
    (0x1104, "invalidrefreshrectpdu"),
    (0x1105, "invalidsuppressoutputpdu"),
    (0x1106, "bitmapcapabilitiesnotset"),
    (0x112F, "graphicssubsystemfailed"),
    (0x1130, "badmonitordata"),
    (0x1131, "vcdecompressedreassemblefailed"),
    (0x1132, "vcdataoolong"),
    (0x1133, "badframeackdata"),
    (0x1134, "graphicsmodenotsupported"),
    (0x1135, "graphicssubsystemresetfailed"),
    (0x1136, "graphicssubsystemfailed"),
    (0x1191, "update_session_key_failed"),
    (0x1192, "decrypt_failed"),
    (0x1193, "encrypt_failed"),
    (0x1194, "encpkgmismatch"),
    (0x1195, "decrypt_failed2"),
];

pub fn errinfo_name(code: u32) -> Option<&'static str> {
    ERRINFO.iter().find(|e| e.0 == code).map(|e| e.1)
}

/// ERRINFO codes that are ordinary endings of a session (the list:
/// disconnect and logoff by the user or an administrator, idle and logon
/// timeouts).
pub fn errinfo_ordinary(code: u32) -> bool {
    matches!(code, 0x0 | 0x1 | 0x2 | 0x3 | 0x4 | 0xB | 0xC)
}

/// License error codes (MS-RDPBCGR 2.2.1.12.1.3, MS-RDPELE 2.2.2.7.1).
pub const LICENSE_ERRORS: &[(u32, &str)] = &[
    (0x01, "invalid_server_certificate"),
    (0x02, "no_license"),
    (0x03, "invalid_mac"),
    (0x04, "invalid_scope"),
    (0x06, "no_license_server"),
    (0x07, "valid_client"),
    (0x08, "invalid_client"),
    (0x0B, "invalid_productid"),
    (0x0C, "invalid_message_len"),
];

/// STATUS_VALID_CLIENT: the normal "no licence needed" answer.
pub const STATUS_VALID_CLIENT: u32 = 0x07;

pub fn license_name(code: u32) -> Option<&'static str> {
    LICENSE_ERRORS.iter().find(|e| e.0 == code).map(|e| e.1)
}

/// Logon notification types (2.2.10.1.1.4.1.1) other than NTSTATUS codes.
pub const LOGON_MSGS: &[(u32, &str)] = &[
    (0xFFFF_FFF9, "disconnect_refused"),
    (0xFFFF_FFFA, "no_permission"),
    (0xFFFF_FFFB, "bump_options"),
    (0xFFFF_FFFC, "reconnect_options"),
    (0xFFFF_FFFD, "session_terminate"),
    (0xFFFF_FFFE, "session_continue"),
];

pub fn logon_error_name(typ: u32) -> Option<&'static str> {
    LOGON_MSGS
        .iter()
        .find(|e| e.0 == typ)
        .map(|e| e.1)
        .or_else(|| super::credssp::error_name(typ))
}

#[cfg(test)]
mod test {
    use super::*;

    /// MCS SendDataIndication (initiator 1002, channel 1003) around `d`.
    fn sdi(d: &[u8]) -> Vec<u8> {
        let mut b = vec![0x68, 0x00, 0x01, 0x03, 0xeb, 0x70];
        if d.len() < 0x80 {
            b.push(d.len() as u8);
        } else {
            b.extend([0x80 | (d.len() >> 8) as u8, d.len() as u8]);
        }
        b.extend_from_slice(d);
        b
    }

    /// A Share Data PDU with `t2` and `body`.
    fn data_pdu(t2: u8, body: &[u8]) -> Vec<u8> {
        let total = 18 + body.len();
        let mut d = (total as u16).to_le_bytes().to_vec();
        d.extend([0x17, 0x00, 0xea, 0x03]); // DATAPDU | version, source 1002
        d.extend([0xea, 0x03, 0x01, 0x00, 0, 1, 0, 0, t2, 0, 0, 0]);
        d.extend_from_slice(body);
        d
    }

    #[test]
    fn set_error_info_under_tls() {
        let b = sdi(&data_pdu(0x2f, &7u32.to_le_bytes()));
        assert_eq!(b.len(), 7 + 22);
        assert_eq!(domain_pdu(&b).unwrap(), Pdu::ErrorInfo(7));
        assert_eq!(errinfo_name(7), Some("server_denied_connection"));
        // One byte short of its MCS length.
        assert!(domain_pdu(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn ultimatum_reason() {
        assert_eq!(domain_pdu(&[0x21, 0x80]).unwrap(), Pdu::Ultimatum(3));
        assert_eq!(domain_pdu(&[0x20, 0x80]).unwrap(), Pdu::Ultimatum(1));
        assert!(domain_pdu(&[0x21]).unwrap_err().is_need_more());
    }

    #[test]
    fn license_error_valid_client() {
        // SEC_LICENSE_PKT, ERROR_ALERT, STATUS_VALID_CLIENT, ST_NO_TRANSITION.
        let mut d = vec![0x80, 0x00, 0x00, 0x00, 0xff, 0x03, 0x10, 0x00];
        d.extend(7u32.to_le_bytes());
        d.extend(2u32.to_le_bytes());
        d.extend([0x04, 0x00, 0x00, 0x00]);
        assert_eq!(
            domain_pdu(&sdi(&d)).unwrap(),
            Pdu::License {
                msg: 0xff,
                error: Some((7, 2))
            }
        );
        d[8] = 6;
        assert!(matches!(
            domain_pdu(&sdi(&d)).unwrap(),
            Pdu::License {
                error: Some((6, 2)),
                ..
            }
        ));
    }

    #[test]
    fn client_info_user_and_domain() {
        let w = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect() };
        let mut d = vec![0x40, 0x00, 0x00, 0x00]; // SEC_INFO_PKT
        d.extend(0u32.to_le_bytes());
        d.extend(0x10u32.to_le_bytes()); // INFO_UNICODE
        for n in [6u16, 10, 0, 0, 0] {
            d.extend(n.to_le_bytes());
        }
        d.extend(w("LAB"));
        d.extend([0, 0]);
        d.extend(w("alice"));
        d.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        let mut mcs = vec![0x64, 0x00, 0x06, 0x03, 0xeb, 0x70, d.len() as u8];
        mcs.extend(&d);
        assert_eq!(
            domain_pdu(&mcs).unwrap(),
            Pdu::ClientInfo {
                user: "alice".into(),
                domain: "LAB".into()
            }
        );
    }

    #[test]
    fn logon_errors_and_redirection() {
        let mut p = 3u32.to_le_bytes().to_vec();
        p.extend([14, 0]);
        p.extend(2u32.to_le_bytes());
        p.extend(8u32.to_le_bytes());
        p.extend(0xFFFF_FFFAu32.to_le_bytes());
        p.extend(0u32.to_le_bytes());
        let b = sdi(&data_pdu(0x26, &p));
        assert_eq!(
            domain_pdu(&b).unwrap(),
            Pdu::SaveSessionInfo {
                info: 3,
                logon_error: Some((0xFFFF_FFFA, 0))
            }
        );
        assert_eq!(logon_error_name(0xFFFF_FFFA), Some("no_permission"));
        // Enhanced security redirection to "host2" with a routing token.
        let w: Vec<u8> = "host2"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let tok = b"Cookie: msts=1234\r\n";
        let mut r = vec![0x00, 0x04, 0, 0];
        r.extend(5u32.to_le_bytes());
        r.extend(3u32.to_le_bytes());
        r.extend((w.len() as u32).to_le_bytes());
        r.extend(&w);
        r.extend((tok.len() as u32).to_le_bytes());
        r.extend(tok);
        let mut d = ((8 + r.len()) as u16).to_le_bytes().to_vec();
        d.extend([0x1a, 0x00, 0xea, 0x03, 0, 0]);
        d.extend(&r);
        let Pdu::Redirect(x) = domain_pdu(&sdi(&d)).unwrap() else {
            panic!()
        };
        assert_eq!(x.target.as_deref(), Some("host2"));
        assert_eq!(x.lb_info.as_deref(), Some("Cookie: msts=1234"));
        // A length one past the end: the field is dropped, nothing panics.
        let n = d.len();
        d[n - tok.len() - 4] += 1;
        let _ = domain_pdu(&sdi(&d));
    }
}
