//! HTTP/1.x on one direction of a reassembled stream, as an RD Gateway's
//! legs carry it (PROTOCOLS.md §4): message heads read with **httparse**,
//! then the body framed as the head says — Content-Length, chunked (chunk
//! sizes with httparse's `parse_chunk_size`), none (1xx, 204, 304, a
//! response to HEAD), or until the connection closes (a response with
//! neither, which is how the gateway's OUT channel 200 runs: normal
//! there). Pipelined messages follow one another; after a 101 the stream
//! belongs to the upgraded protocol. What the framing means for a leg is
//! judged elsewhere, by role; this only tells what was sent, where, and
//! what could not be framed. Every length is a number to report: a
//! 2^63-byte Content-Length or chunk is never an allocation, and a head is
//! read within [`MAX_HEAD`] bytes.

use super::error::{Error, Layer};

/// Bytes a message head may take (request/status line and headers).
pub const MAX_HEAD: usize = 16 << 10;
/// Headers read per head.
pub const MAX_HEADERS: usize = 64;
/// Characters kept of a header value (a scheme list, a reason phrase).
const MAX_VALUE: usize = 256;

/// Which side of the connection sent the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// How a message's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// Runs until the connection closes (a response without
    /// Content-Length and without chunking).
    UntilClose,
    /// After a 101 (or a 2xx to CONNECT): another protocol follows.
    Switched,
}

/// A message head, with the headers that matter for a gateway leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Request: method and target.
    pub method: Option<String>,
    pub target: Option<String>,
    /// Response: status and reason phrase.
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// HTTP/1.0 (0) or 1.1 (1).
    pub version: u8,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
    /// The `Upgrade` header's value.
    pub upgrade: Option<String>,
    /// The schemes of `WWW-Authenticate` / `Proxy-Authenticate`.
    pub challenges: Vec<String>,
    /// The scheme of `Authorization` / `Proxy-Authorization`.
    pub authorization: Option<String>,
    /// The NTLM message type its token carries (1 NEGOTIATE, 3
    /// AUTHENTICATE), raw or as `Negotiate` with a raw NTLM token.
    pub ntlm: Option<u8>,
    /// A `WWW-Authenticate` challenge carrying an NTLM CHALLENGE (type 2):
    /// the middle of a handshake that must go on on this connection.
    pub ntlm_challenge: bool,
    /// `RDG-Connection-Id` (pairs a gateway's IN and OUT channels).
    pub connection_id: Option<String>,
    /// `Host` (a request's), without its port.
    pub host: Option<String>,
    /// `Via` (a proxy on the way, RFC 9110 §7.6.3).
    pub via: Option<String>,
    /// Bytes of the head.
    pub len: usize,
}

fn text(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(&v[..v.len().min(MAX_VALUE)]);
    s.trim().replace(|c: char| c.is_control(), " ")
}

/// HTTP status codes with a name (RFC 9110 §15 and the IANA registry's
/// others): the members of `gateway.http.status.*`.
pub const STATUSES: &[(u16, &str, &str)] = &[
    (400, "400", "Bad Request"),
    (401, "401", "Unauthorized"),
    (402, "402", "Payment Required"),
    (403, "403", "Forbidden"),
    (404, "404", "Not Found"),
    (405, "405", "Method Not Allowed"),
    (406, "406", "Not Acceptable"),
    (407, "407", "Proxy Authentication Required"),
    (408, "408", "Request Timeout"),
    (409, "409", "Conflict"),
    (410, "410", "Gone"),
    (411, "411", "Length Required"),
    (412, "412", "Precondition Failed"),
    (413, "413", "Content Too Large"),
    (414, "414", "URI Too Long"),
    (415, "415", "Unsupported Media Type"),
    (416, "416", "Range Not Satisfiable"),
    (417, "417", "Expectation Failed"),
    (421, "421", "Misdirected Request"),
    (422, "422", "Unprocessable Content"),
    (426, "426", "Upgrade Required"),
    (428, "428", "Precondition Required"),
    (429, "429", "Too Many Requests"),
    (431, "431", "Request Header Fields Too Large"),
    (451, "451", "Unavailable For Legal Reasons"),
    (500, "500", "Internal Server Error"),
    (501, "501", "Not Implemented"),
    (502, "502", "Bad Gateway"),
    (503, "503", "Service Unavailable"),
    (504, "504", "Gateway Timeout"),
    (505, "505", "HTTP Version Not Supported"),
    (507, "507", "Insufficient Storage"),
    (508, "508", "Loop Detected"),
    (511, "511", "Network Authentication Required"),
];

/// The status's member name (`"404"`), `None` for an unregistered one.
pub fn status_member(code: u16) -> Option<&'static str> {
    STATUSES.iter().find(|s| s.0 == code).map(|s| s.1)
}

/// The status's registered reason phrase.
pub fn status_phrase(code: u16) -> Option<&'static str> {
    STATUSES.iter().find(|s| s.0 == code).map(|s| s.2)
}

/// The NTLM message type (MS-NLMP 2.2.1: "NTLMSSP\0", then the type) of
/// the token in an `NTLM` or `Negotiate` credentials or challenge value.
/// Only the first 16 base64 characters are decoded (12 bytes): a sniff,
/// not a decoder, so no crate for it.
pub fn ntlm_type(v: &str) -> Option<u8> {
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("NTLM") && !scheme.eq_ignore_ascii_case("Negotiate") {
        return None;
    }
    let t = token.trim().as_bytes();
    if t.len() < 16 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = [0u8; 12];
    for (i, q) in t[..16].chunks(4).enumerate() {
        let n = q
            .iter()
            .try_fold(0u32, |acc, &c| Some(acc << 6 | val(c)?))?;
        out[i * 3..i * 3 + 3].copy_from_slice(&n.to_be_bytes()[1..]);
    }
    (out.starts_with(b"NTLMSSP\0") && (1..=3).contains(&out[8])).then_some(out[8])
}

/// A Host value without its port (`[v6]:443` keeps the brackets' inside).
fn host_only(v: &str) -> String {
    let v = v.trim();
    if let Some(r) = v.strip_prefix('[') {
        return r.split(']').next().unwrap_or(r).to_ascii_lowercase();
    }
    v.rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(v, |(h, _)| h)
        .to_ascii_lowercase()
}

/// The head at the start of `b`; `Ok(None)` when more bytes are needed.
pub fn head(b: &[u8], role: Role) -> Result<Option<Head>, Error> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut h = Head::default();
    let parsed = match role {
        Role::Client => {
            let mut r = httparse::Request::new(&mut hs);
            let st = r.parse(b);
            if let Ok(httparse::Status::Complete(n)) = st {
                h.method = r.method.map(str::to_string);
                h.target = r.path.map(|p| p.chars().take(MAX_VALUE).collect());
                h.version = r.version.unwrap_or(1);
                h.len = n;
            }
            st.map(|s| (s.is_complete(), r.headers.to_vec()))
        }
        Role::Server => {
            let mut r = httparse::Response::new(&mut hs);
            let st = r.parse(b);
            if let Ok(httparse::Status::Complete(n)) = st {
                h.status = r.code;
                h.reason = r.reason.map(|x| text(x.as_bytes()));
                h.version = r.version.unwrap_or(1);
                h.len = n;
            }
            st.map(|s| (s.is_complete(), r.headers.to_vec()))
        }
    };
    let (complete, headers) = match parsed {
        Ok(x) => x,
        Err(e) => {
            return Err(Error::malformed(
                Layer::Http,
                0,
                format!(
                    "not an HTTP/1.x {}: {e}",
                    match role {
                        Role::Client => "request",
                        Role::Server => "response",
                    }
                ),
            ))
        }
    };
    if !complete {
        if b.len() > MAX_HEAD {
            return Err(Error::malformed(
                Layer::Http,
                MAX_HEAD,
                format!("a message head over {MAX_HEAD} bytes"),
            ));
        }
        return Ok(None);
    }
    for x in headers.iter().filter(|x| !x.name.is_empty()) {
        let v = text(x.value);
        let name = x.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let n = v.parse::<u64>().map_err(|_| {
                    Error::malformed(
                        Layer::Http,
                        0,
                        format!("Content-Length \"{v}\" is not a number"),
                    )
                })?;
                if h.content_length.is_some_and(|m| m != n) {
                    return Err(Error::malformed(
                        Layer::Http,
                        0,
                        "two different Content-Length headers",
                    ));
                }
                h.content_length = Some(n);
            }
            "transfer-encoding" => {
                h.chunked |= v
                    .rsplit(',')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
            }
            "connection" => {
                h.close |= v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
            "upgrade" => h.upgrade = Some(v),
            "www-authenticate" | "proxy-authenticate" => {
                // Each challenge starts with its scheme (RFC 9110 §11.6.1).
                let scheme: String = v.split([' ', ',']).next().unwrap_or("").to_string();
                h.ntlm_challenge |= ntlm_type(&v) == Some(2);
                if !scheme.is_empty() && h.challenges.len() < 8 && !h.challenges.contains(&scheme) {
                    h.challenges.push(scheme);
                }
            }
            "authorization" | "proxy-authorization" => {
                h.authorization = v.split(' ').next().map(str::to_string);
                h.ntlm = ntlm_type(&v);
            }
            "rdg-connection-id" => h.connection_id = Some(v),
            "host" => h.host = Some(host_only(&v)),
            "via" => h.via = Some(v),
            _ => {}
        }
    }
    if h.version == 0 && h.status.is_some() {
        // HTTP/1.0 closes unless told otherwise.
        h.close |= !headers.iter().any(|x| {
            x.name.eq_ignore_ascii_case("connection")
                && text(x.value).eq_ignore_ascii_case("keep-alive")
        });
    }
    Ok(Some(h))
}

/// How the body of `h` is framed; `request` is the method the response
/// answers (a response to HEAD has no body, a 2xx to CONNECT switches).
pub fn body(h: &Head, request: Option<&str>) -> Body {
    match h.status {
        None => {
            if h.chunked {
                Body::Chunked
            } else {
                h.content_length.map_or(Body::None, Body::Length)
            }
        }
        Some(101) => Body::Switched,
        Some(s) if (200..300).contains(&s) && request == Some("CONNECT") => Body::Switched,
        Some(s) if (100..200).contains(&s) || s == 204 || s == 304 => Body::None,
        Some(_) if request == Some("HEAD") => Body::None,
        Some(_) if h.chunked => Body::Chunked,
        Some(_) => h.content_length.map_or(Body::UntilClose, Body::Length),
    }
}

/// The chunk-size line at the start of `b`: (line length, chunk size);
/// `Ok(None)` when more bytes are needed. The size is a number to report:
/// httparse refuses sizes over 2^64 as malformed.
pub fn chunk_size(b: &[u8]) -> Result<Option<(usize, u64)>, Error> {
    match httparse::parse_chunk_size(b) {
        Ok(httparse::Status::Complete((n, size))) => Ok(Some((n, size))),
        Ok(httparse::Status::Partial) if b.len() > 1024 => Err(Error::malformed(
            Layer::Http,
            0,
            "a chunk-size line over 1 KiB",
        )),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(Error::malformed(
            Layer::Http,
            0,
            format!(
                "a chunk-size line that is not hex: \"{}\"",
                text(&b[..b.len().min(16)])
            ),
        )),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const OUT_REQ: &[u8] = b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n\
        Cache-Control: no-cache\r\nConnection: Keep-Alive\r\n\
        RDG-Connection-Id: {6a3c8f00-0000-4000-8000-000000000001}\r\n\
        Authorization: NTLM TlRMTVNTUAABAAAA\r\nContent-Length: 0\r\nHost: gw.example.test\r\n\r\n";

    #[test]
    fn the_gateways_out_request_and_its_200_without_length() {
        let h = head(OUT_REQ, Role::Client).unwrap().unwrap();
        assert_eq!(h.method.as_deref(), Some("RDG_OUT_DATA"));
        assert_eq!(h.target.as_deref(), Some("/remoteDesktopGateway/"));
        assert_eq!(
            h.connection_id.as_deref(),
            Some("{6a3c8f00-0000-4000-8000-000000000001}")
        );
        assert_eq!(h.authorization.as_deref(), Some("NTLM"));
        assert_eq!((h.len, body(&h, None)), (OUT_REQ.len(), Body::Length(0)));
        // One byte short: more is needed.
        assert_eq!(head(&OUT_REQ[..OUT_REQ.len() - 1], Role::Client), Ok(None));
        // The OUT channel's final answer: the body runs until close.
        let r = head(
            b"HTTP/1.1 200 OK\r\nServer: Microsoft-HTTPAPI/2.0\r\n\r\n\xab\xcd",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body(&r, Some("RDG_OUT_DATA")), Body::UntilClose);
    }

    #[test]
    fn challenges_statuses_and_upgrades() {
        let r = head(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n\
              WWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.status, Some(401));
        assert_eq!(r.reason.as_deref(), Some("Unauthorized"));
        assert_eq!(r.challenges, vec!["Negotiate", "NTLM"]);
        let p = head(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"squid\"\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.challenges, vec!["Basic"]);
        let u = head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (body(&u, None), u.upgrade.as_deref()),
            (Body::Switched, Some("websocket"))
        );
        let c = head(b"HTTP/1.0 200 Connection established\r\n\r\n", Role::Server)
            .unwrap()
            .unwrap();
        assert_eq!(body(&c, Some("CONNECT")), Body::Switched);
        assert!(c.close);
    }

    #[test]
    fn framing_of_bodies() {
        let chunked = head(
            b"RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            Role::Client,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body(&chunked, None), Body::Chunked);
        assert_eq!(chunk_size(b"1a\r\nxyz"), Ok(Some((4, 26))));
        assert_eq!(chunk_size(b"1a"), Ok(None));
        assert!(chunk_size(b"zz\r\n").is_err());
        // A 2^63 Content-Length is a number, not an allocation.
        let big = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body(&big, None), Body::Length(1 << 63));
        // Two Content-Lengths that disagree, and one that is not a number.
        assert!(head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            Role::Server
        )
        .is_err());
        assert!(head(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            Role::Server
        )
        .is_err());
        // No body for 204, 304, 1xx and a response to HEAD.
        let n = head(b"HTTP/1.1 204 No Content\r\n\r\n", Role::Server)
            .unwrap()
            .unwrap();
        assert_eq!(body(&n, None), Body::None);
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body(&h, Some("HEAD")), Body::None);
    }

    #[test]
    fn not_http_and_oversized_heads() {
        let e = head(b"\x16\x03\x01\x02\x00", Role::Client).unwrap_err();
        assert_eq!(e.layer, Layer::Http);
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD]);
        assert!(head(&long, Role::Client).is_err());
    }
}

#[cfg(test)]
mod ntlm_test {
    use super::*;

    #[test]
    fn ntlm_message_types_from_tokens() {
        // "NTLMSSP\0" + 01 / 02 / 03, base64.
        assert_eq!(ntlm_type("NTLM TlRMTVNTUAABAAAAB4IIog=="), Some(1));
        assert_eq!(ntlm_type("NTLM TlRMTVNTUAACAAAABgAGADgAAAA="), Some(2));
        assert_eq!(ntlm_type("Negotiate TlRMTVNTUAADAAAAGAAYAEgAAAA="), Some(3));
        // A SPNEGO (Kerberos) token, a short one, another scheme.
        assert_eq!(
            ntlm_type("Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu"),
            None
        );
        assert_eq!(ntlm_type("NTLM TlRMTVNT"), None);
        assert_eq!(ntlm_type("Basic YWxpY2U6bGFicGFzczE="), None);
        // One character changed in the magic.
        assert_eq!(ntlm_type("NTLM TlRMTVNUUAABAAAAB4IIog=="), None);
        let h = head(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAABgAGADgAAAA=\r\n\r\n",
            Role::Server,
        )
        .unwrap()
        .unwrap();
        assert!(h.ntlm_challenge);
    }
}
