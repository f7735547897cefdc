#!/usr/bin/env python3
"""A scripted RD Gateway for the lab (not CI): enough of MS-TSGU's HTTP
transport to carry a real FreeRDP client (`xfreerdp /g:`) to a real RDP
server, and to fail the ways gateways fail in the field, by configuration.

    rdg.py --listen ADDR:PORT --cert C --key K --backend ADDR:PORT
           [--keylog FILE] [--mode MODE] [--keepalive S] [--idle-timeout M]

Transports: the WebSocket transport (RDG_OUT_DATA + Upgrade: websocket
answered 101, one connection) and the two-channel HTTP transport
(RDG_OUT_DATA answered 200 without Content-Length, a 10-byte seed, then
HTTP_PACKETs; RDG_IN_DATA re-sent with Transfer-Encoding: chunked, one
packet per chunk). Authentication: NTLM over HTTP 401 rounds (MS-NLMP
CHALLENGE built here; the client's AUTHENTICATE is accepted unread, or
refused in mode ntlm-reject).

NTLM is connection-bound here as on Windows: an AUTHENTICATE on a
connection that was sent no CHALLENGE is answered 401 again.

POST /KdcProxy is answered by the PyPI kdcproxy package (MS-KKDCP).

Modes: ok | no-ws (a 200 to the WebSocket upgrade) | ntlm-reject (401
after the AUTHENTICATE) | 403 | 404 | 502 (error statuses on RDG_OUT_DATA,
with Content-Length) | rap-denied (CHANNEL_RESPONSE
E_PROXY_RAP_ACCESSDENIED) | capability (TUNNEL_RESPONSE
E_PROXY_CAPABILITYMISMATCH) | connect-failed (the backend refuses: the
CHANNEL_RESPONSE says E_PROXY_TS_CONNECTFAILED) | bad-framing (a 403
without Content-Length that keeps the connection open) | rpc-fault (404 on
RDG_OUT_DATA, so the client falls back to RPC over HTTP; its RTS connection
is completed (CONN/A3, CONN/C2), its bind answered with a bind_ack carrying
an NTLM CHALLENGE, and its first call, TsProxyCreateTunnel, which is sealed
and never read here, answered with a fault nca access denied) | rpc-no-a3
(the same, but the OUT channel's 200 is never followed by CONN/A3: the
"Expected CONN/A3" of IN and OUT channels balanced to different servers) |
rpc-bind-nak (the bind answered with a bind_nak: local limit exceeded).

Layouts: MS-RPCH 2.2.3.5/2.2.3.6 and 2.2.4.2-2.2.4.5 (RTS PDUs), MS-RPCE
2.2.2.13 and C706 12.6 (bind_ack, fault); MS-TSGU 2.2.10 (HTTP_PACKET_HEADER and the packets),
PROTOCOLS.md §4; RFC 6455 (frames); MS-NLMP 2.2.1.2 (CHALLENGE_MESSAGE).
"""
import argparse
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import time

E_PROXY_RAP_ACCESSDENIED = 0x800759DA
E_PROXY_TS_CONNECTFAILED = 0x800759DD
E_PROXY_CAPABILITYMISMATCH = 0x800759E9
NCA_S_FAULT_ACCESS_DENIED = 0x00000005  # MS-RPCE 3.1.1.5.5 (a Win32 status in a fault)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ARGS = None
CHANNELS = {}  # RDG-Connection-Id -> Tunnel
RPC_OUT = {}  # RPC virtual connection cookie -> the OUT channel's writer
LOCK = threading.Lock()


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def av(t, v):
    return struct.pack("<HH", t, len(v)) + v


def ntlm_challenge():
    """MS-NLMP 2.2.1.2 CHALLENGE_MESSAGE with a target info list."""
    name = "LAB".encode("utf-16-le")
    ft = (int(time.time()) + 11644473600) * 10_000_000
    info = (av(2, "LAB".encode("utf-16-le")) + av(1, "GW".encode("utf-16-le"))
            + av(4, "lab.test".encode("utf-16-le")) + av(3, "gw.lab.test".encode("utf-16-le"))
            + av(7, struct.pack("<Q", ft)) + av(0, b""))
    flags = 0xE2898215
    head = 56
    msg = (b"NTLMSSP\0" + struct.pack("<I", 2)
           + struct.pack("<HHI", len(name), len(name), head)
           + struct.pack("<I", flags) + os.urandom(8) + b"\0" * 8
           + struct.pack("<HHI", len(info), len(info), head + len(name))
           + bytes([10, 0, 0x63, 0x45, 0, 0, 0, 15]))
    return msg + name + info


def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    if not lines:
        return None
    method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
    h = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        h[k.strip().lower()] = v.strip()
    return method, target, h


def send(conn, status, reason, headers=(), body=b"", length=True):
    out = f"HTTP/1.1 {status} {reason}\r\n"
    for k, v in headers:
        out += f"{k}: {v}\r\n"
    if length:
        out += f"Content-Length: {len(body)}\r\n"
    out += "Server: Microsoft-HTTPAPI/2.0\r\n\r\n"
    conn.sendall(out.encode() + body)


def packet(t, body=b""):
    return struct.pack("<HHI", t, 0, 8 + len(body)) + body


class Tunnel:
    """One tunnel: packets in from the client, out through `out`."""

    def __init__(self):
        self.out = None  # function(bytes) writing to the client
        self.ready = threading.Event()
        self.backend = None
        self.closed = False

    def send(self, p):
        self.ready.wait(10)
        if self.out and not self.closed:
            try:
                self.out(p)
            except OSError:
                self.closed = True

    def handle(self, p):
        t = struct.unpack_from("<H", p)[0]
        body = p[8:]
        if t == 0x1:  # HANDSHAKE_REQUEST
            self.send(packet(0x2, struct.pack("<IBBHH", 0, 1, 0, 0, 0)))
        elif t == 0x4:  # TUNNEL_CREATE
            code = E_PROXY_CAPABILITYMISMATCH if ARGS.mode == "capability" else 0
            self.send(packet(0x5, struct.pack("<HIHHII", 5, code, 0x3, 0, 1, 0x3F)))
        elif t == 0x6:  # TUNNEL_AUTH
            self.send(packet(0x7, struct.pack("<IHHII", 0, 0x3, 0, 0, ARGS.idle_timeout)))
        elif t == 0x8:  # CHANNEL_CREATE
            port = struct.unpack_from("<H", body, 2)[0]
            n = struct.unpack_from("<H", body, 6)[0]
            name = body[8:8 + n].decode("utf-16-le", "replace").rstrip("\0")
            log("channel create", name, port)
            code = 0
            if ARGS.mode == "rap-denied":
                code = E_PROXY_RAP_ACCESSDENIED
            else:
                host, bport = ARGS.backend.rsplit(":", 1)
                try:
                    self.backend = socket.create_connection((host, int(bport)), timeout=5)
                    self.backend.settimeout(None)
                except OSError as e:
                    log("backend", e)
                    code = E_PROXY_TS_CONNECTFAILED
            self.send(packet(0x9, struct.pack("<IHHI", code, 0x1, 0, 1)))
            if self.backend:
                threading.Thread(target=self.pump, daemon=True).start()
                threading.Thread(target=self.keepalive, daemon=True).start()
        elif t == 0xA:  # DATA
            n = struct.unpack_from("<H", body)[0]
            if self.backend:
                try:
                    self.backend.sendall(body[2:2 + n])
                except OSError:
                    pass
        elif t == 0x10:  # CLOSE_CHANNEL
            self.send(packet(0x11, struct.pack("<I", 0)))
            self.stop()

    def pump(self):
        while True:
            try:
                d = self.backend.recv(16384)
            except OSError:
                d = b""
            if not d:
                break
            for i in range(0, len(d), 8000):
                part = d[i:i + 8000]
                self.send(packet(0xA, struct.pack("<H", len(part)) + part))
        if not self.closed:
            self.send(packet(0x10, struct.pack("<I", 0)))

    def keepalive(self):
        while not self.closed and ARGS.keepalive > 0:
            time.sleep(ARGS.keepalive)
            self.send(packet(0xD))

    def stop(self):
        if self.backend:
            try:
                self.backend.close()
            except OSError:
                pass


def rts(flags, commands):
    """An RTS PDU (MS-RPCH 2.2.3.6.1): the common header with PTYPE 20."""
    body = struct.pack("<HH", flags, len(commands)) + b"".join(commands)
    return struct.pack("<BBBB4sHHI", 5, 0, 20, 3, b"\x10\0\0\0", 16 + len(body), 0, 0) + body


def rts_cmd(t, value=b""):
    return struct.pack("<I", t) + value


def rpc_pdus(f):
    """DCE/RPC PDUs from a raw byte stream (the IN channel's body)."""
    while True:
        h = f.read(16)
        if len(h) < 16:
            return
        n = struct.unpack_from("<H", h, 8)[0]
        rest = f.read(n - 16)
        if len(rest) < n - 16:
            return
        yield h + rest


def bind_ack(call_id, assoc, token):
    """bind_ack (C706 12.6.4.4) accepting the first context with NDR, and
    the NTLM CHALLENGE in its auth verifier (MS-RPCE 2.2.2.11)."""
    sec = b"3388\0"
    body = struct.pack("<HHI", 5840, 5840, assoc) + struct.pack("<H", len(sec)) + sec
    body += b"\0" * ((-(16 + len(body))) % 4)
    ndr = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + struct.pack("<I", 2)
    body += struct.pack("<BBH", 1, 0, 0) + struct.pack("<HH", 0, 0) + ndr
    pad = (-(16 + len(body))) % 4
    body += b"\0" * pad + struct.pack("<BBBBI", 10, 6, pad, 0, 0) + token
    return struct.pack("<BBBB4sHHI", 5, 0, 12, 3, b"\x10\0\0\0", 16 + len(body), len(token), call_id) + body


def fault(call_id, status):
    body = struct.pack("<IHBBII", 0, 0, 0, 0, status, 0)
    return struct.pack("<BBBB4sHHI", 5, 0, 3, 3, b"\x10\0\0\0", 16 + len(body), 0, call_id) + body


def rpc_in(f, cid_hint):
    """The RPC IN channel: CONN/B1 names the virtual connection; the bind
    and the calls are answered on that connection's OUT channel."""
    out = None
    for pdu in rpc_pdus(f):
        ptype, call_id = pdu[2], struct.unpack_from("<I", pdu, 12)[0]
        if ptype == 20:
            n = struct.unpack_from("<H", pdu, 18)[0]
            if n == 6:  # CONN/B1: Version, then the VirtualConnectionCookie
                cookie = pdu[32:48].hex()
                log("rpc in: CONN/B1 cookie", cookie)
                for _ in range(50):
                    with LOCK:
                        out = RPC_OUT.get(cookie)
                    if out:
                        break
                    time.sleep(0.1)
        elif ptype == 11 and out and ARGS.mode == "rpc-bind-nak":
            # bind_nak (C706 12.6.4.6): local limit exceeded, versions 5.0.
            log("rpc in: bind", call_id, "-> bind_nak")
            body = struct.pack("<HB", 2, 1) + bytes([5, 0]) + b"\0" * 3
            out(struct.pack("<BBBB4sHHI", 5, 0, 13, 3, b"\x10\0\0\0", 16 + len(body), 0, call_id) + body)
        elif ptype == 11 and out:  # bind: answer with an NTLM CHALLENGE
            log("rpc in: bind", call_id)
            out(bind_ack(call_id, 0x1234, ntlm_challenge()))
        elif ptype == 16:  # rpc_auth_3
            log("rpc in: auth3")
        elif ptype == 0 and out:  # a request: sealed, never read here
            opnum = struct.unpack_from("<H", pdu, 22)[0]
            log("rpc in: request opnum", opnum, "-> fault")
            out(fault(call_id, NCA_S_FAULT_ACCESS_DENIED))


def tunnel_of(cid):
    with LOCK:
        return CHANNELS.setdefault(cid, Tunnel())


def packets(stream):
    """HTTP_PACKETs from a byte iterator."""
    buf = b""
    for b in stream:
        buf += b
        while len(buf) >= 8:
            n = struct.unpack_from("<I", buf, 4)[0]
            if len(buf) < n:
                break
            yield buf[:n]
            buf = buf[n:]


def chunks(f):
    while True:
        line = f.readline(100)
        if not line:
            return
        n = int(line.strip().split(b";")[0], 16)
        if n == 0:
            return
        yield f.read(n)
        f.read(2)


def ws_frames(f):
    while True:
        h = f.read(2)
        if len(h) < 2:
            return
        op, ln = h[0] & 0x0F, h[1] & 0x7F
        if ln == 126:
            ln = struct.unpack(">H", f.read(2))[0]
        elif ln == 127:
            ln = struct.unpack(">Q", f.read(8))[0]
        key = f.read(4) if h[1] & 0x80 else b"\0\0\0\0"
        p = bytearray(f.read(ln))
        for i in range(len(p)):
            p[i] ^= key[i % 4]
        if op == 8:
            return
        if op in (0, 2):
            yield bytes(p)


def ws_frame(p):
    n = len(p)
    if n < 126:
        h = bytes([0x82, n])
    elif n < 65536:
        h = bytes([0x82, 126]) + struct.pack(">H", n)
    else:
        h = bytes([0x82, 127]) + struct.pack(">Q", n)
    return h + p


def serve(conn, peer):
    f = conn.makefile("rb")
    wlock = threading.Lock()
    challenged = False  # NTLM is connection-bound (MS-NLMP 3.1.5)

    def write(b):
        with wlock:
            conn.sendall(b)

    while True:
        req = read_head(f)
        if req is None:
            break
        method, target, h = req
        log(peer, method, target, h.get("authorization", "")[:12], h.get("upgrade", ""))
        if method == "POST" and target.lower().startswith("/kdcproxy"):
            kdc_proxy(conn, f, h)
            # MIT's client speaks HTTP/1.0 and reads the answer until close.
            break
        rpc = method in ("RPC_IN_DATA", "RPC_OUT_DATA") and ARGS.mode.startswith("rpc-")
        if method not in ("RDG_OUT_DATA", "RDG_IN_DATA") and not rpc:
            send(conn, 404, "Not Found", body=b"not here\r\n")
            continue
        body = b""
        if (not rpc and "content-length" in h and int(h["content-length"]) > 0
                and "chunked" not in h.get("transfer-encoding", "")):
            body = f.read(int(h["content-length"]))
        cid = h.get("rdg-connection-id", "?")
        auth = h.get("authorization", "")
        if method == "RDG_IN_DATA" and "chunked" in h.get("transfer-encoding", ""):
            t = tunnel_of(cid)
            for p in packets(chunks(f)):
                t.handle(p)
            break
        if ARGS.mode in ("403", "404", "502", "rpc-fault", "rpc-no-a3", "rpc-bind-nak") and method == "RDG_OUT_DATA":
            code = "404" if ARGS.mode.startswith("rpc-") else ARGS.mode
            reason = {"403": "Forbidden", "404": "Not Found", "502": "Bad Gateway"}[code]
            send(conn, int(code), reason, [("Content-Type", "text/html")],
                 f"<html><body>{reason}</body></html>".encode())
            continue
        if ARGS.mode == "bad-framing" and method == "RDG_OUT_DATA":
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n<html>denied</html>")
            time.sleep(3)
            break
        if not auth.startswith("NTLM "):
            send(conn, 401, "Unauthorized", [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")])
            continue
        token = base64.b64decode(auth[5:])
        if token[8] == 1:
            challenged = True
            send(conn, 401, "Unauthorized", [("WWW-Authenticate", "NTLM " + base64.b64encode(ntlm_challenge()).decode())])
            continue
        if ARGS.mode == "ntlm-reject" or not challenged:
            if not challenged:
                log(peer, "AUTHENTICATE without a CHALLENGE on this connection")
            send(conn, 401, "Unauthorized", [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")])
            continue
        if rpc and method == "RPC_IN_DATA":
            # MS-RPCH 3.2.2.5: the IN channel's body is the PDUs; no answer until it ends.
            rpc_in(f, cid)
            break
        if rpc:
            a1 = f.read(int(h.get("content-length", "0")))
            if len(a1) < 76 or a1[2] != 20:
                send(conn, 400, "Bad Request")
                continue
            cookie = a1[32:48].hex()
            log("rpc out: CONN/A1 cookie", cookie)
            conn.sendall(b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n"
                         b"Content-Length: 1073741824\r\nServer: Microsoft-HTTPAPI/2.0\r\n\r\n")
            if ARGS.mode != "rpc-no-a3":
                # CONN/A3 (ConnectionTimeout), then CONN/C2 (Version, ReceiveWindowSize, ConnectionTimeout).
                write(rts(0, [rts_cmd(2, struct.pack("<I", 120000))]))
                write(rts(0, [rts_cmd(6, struct.pack("<I", 1)), rts_cmd(0, struct.pack("<I", 65536)),
                              rts_cmd(2, struct.pack("<I", 120000))]))
                with LOCK:
                    RPC_OUT[cookie] = write
            while f.read(1):
                pass
            break
        if method == "RDG_IN_DATA":
            send(conn, 200, "OK")
            continue
        t = tunnel_of(cid)
        if "websocket" in h.get("upgrade", "").lower() and ARGS.mode != "no-ws":
            acc = base64.b64encode(hashlib.sha1(h.get("sec-websocket-key", "").encode() + WS_GUID).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {acc}\r\n\r\n").encode())
            t.out = lambda p: write(ws_frame(p))
            t.ready.set()
            for p in packets(ws_frames(f)):
                t.handle(p)
            break
        # The legacy OUT channel: a 200 without length, the seed, packets.
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Server: Microsoft-HTTPAPI/2.0\r\n\r\n" + b"\xab\xcd" * 5)
        t.out = write
        t.ready.set()
        while not t.closed and conn.fileno() >= 0:
            d = f.read(1)  # the client sends nothing more here
            if not d:
                break
        break
    try:
        conn.close()
    except OSError:
        pass


def kdc_proxy(conn, f, h):
    """MS-KKDCP through the PyPI kdcproxy package (its WSGI application),
    which finds the realm's KDCs in the krb5.conf KRB5_CONFIG names."""
    import io
    import kdcproxy
    body = f.read(int(h.get("content-length", "0")))
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/KdcProxy",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": h.get("content-type", "application/kerberos"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "SERVER_NAME": "gw", "SERVER_PORT": "443", "wsgi.url_scheme": "https",
    }
    out = {}

    def start(status, headers, exc_info=None):
        out["status"], out["headers"] = status, headers

    data = b"".join(kdcproxy.Application()(env, start))
    code, _, reason = out["status"].partition(" ")
    hs = [(k, v) for k, v in out["headers"] if k.lower() != "content-length"]
    log("kdcproxy", out["status"], len(data))
    send(conn, int(code), reason, hs, data)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--backend", required=True)
    ap.add_argument("--keylog")
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--keepalive", type=float, default=3.0)
    ap.add_argument("--idle-timeout", type=int, default=0)
    ap.add_argument("--plain", action="store_true",
                    help="plain HTTP (behind a TLS-terminating proxy)")
    ARGS = ap.parse_args()
    ctx = None
    if not ARGS.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
        if ARGS.keylog:
            ctx.keylog_filename = ARGS.keylog
    host, port = ARGS.listen.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(8)
    log("listening", ARGS.listen, "mode", ARGS.mode)
    while True:
        c, peer = s.accept()
        if ctx:
            try:
                c = ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log("tls", e)
                c.close()
                continue
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()


if __name__ == "__main__":
    main()
