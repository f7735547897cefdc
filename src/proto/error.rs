//! Typed parser errors: which layer, at which byte offset of the unit being
//! parsed, and whether more bytes would help (a unit split across segments)
//! or the bytes are wrong (etherparse's `LenError` / `*HeaderError` habit).

use std::fmt;

/// The protocol layer a parser error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Tpkt,
    X224,
    /// RDP_NEG_REQ / RSP / FAILURE / CORRELATION_INFO.
    RdpNeg,
    FastPath,
    TlsRecord,
    TlsHandshake,
    Rdpeudp,
    Dns,
    Kerberos,
    Credssp,
    /// MCS domain PDUs and the RDP PDUs inside them.
    Rdp,
    /// MS-TSGU HTTP_PACKETs (RD Gateway).
    Tsgu,
    /// WebSocket frames (the RD Gateway's WebSocket transport).
    WebSocket,
    /// HTTP/1.x heads and body framing (RD Gateway legs, proxies).
    Http,
    /// DCE/RPC and RTS PDUs (the RD Gateway's RPC-over-HTTP transport).
    Rpc,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Tpkt => "TPKT",
            Layer::X224 => "X.224",
            Layer::RdpNeg => "RDP negotiation",
            Layer::FastPath => "fast-path",
            Layer::TlsRecord => "TLS record",
            Layer::TlsHandshake => "TLS handshake",
            Layer::Rdpeudp => "RDPEUDP",
            Layer::Dns => "DNS",
            Layer::Kerberos => "Kerberos",
            Layer::Credssp => "CredSSP",
            Layer::Rdp => "RDP",
            Layer::Tsgu => "MS-TSGU",
            Layer::WebSocket => "WebSocket",
            Layer::Http => "HTTP",
            Layer::Rpc => "DCE/RPC",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The unit is cut short: at least this many bytes in all are needed.
    NeedMore { need: usize },
    /// The bytes are not a valid unit: what is wrong, in words.
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub layer: Layer,
    /// Offset of the offending field from the start of the unit.
    pub offset: usize,
    pub kind: ErrorKind,
}

impl Error {
    pub fn malformed(layer: Layer, offset: usize, what: impl Into<String>) -> Error {
        Error {
            layer,
            offset,
            kind: ErrorKind::Malformed(what.into()),
        }
    }

    pub fn need_more(layer: Layer, need: usize) -> Error {
        Error {
            layer,
            offset: 0,
            kind: ErrorKind::NeedMore { need },
        }
    }

    /// More bytes could complete the unit.
    pub fn is_need_more(&self) -> bool {
        matches!(self.kind, ErrorKind::NeedMore { .. })
    }
}

impl fmt::Display for Error {
    /// The reason alone, as the `*.malformed` findings quote it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::NeedMore { need } => {
                write!(f, "{} cut short ({need} bytes needed)", self.layer.name())
            }
            ErrorKind::Malformed(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

/// `Err(Error::malformed(..))`, for parsers' early returns.
pub fn bad<T>(layer: Layer, offset: usize, what: impl Into<String>) -> Result<T, Error> {
    Err(Error::malformed(layer, offset, what))
}
