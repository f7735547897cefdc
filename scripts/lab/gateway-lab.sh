#!/usr/bin/env bash
# A real FreeRDP client through a scripted RD Gateway (scripts/lab/rdg.py)
# to a real xrdp server, captured for samples/ (not CI).
#
#   scripts/lab/gateway-lab.sh OUTDIR [RUN...]     (Debian; run as root)
#
# Needs Debian packages: iproute2 tcpdump xrdp freerdp2-x11 xvfb xdotool
# openssl gcc python3 wireshark-common (editcap). Two network namespaces
# joined by one veth pair, addresses from 198.18.0.0/15 (RFC 2544) only:
#
#   rdpc (client 198.18.2.2) -- rdps (gateway 198.18.2.3:443,
#                                     xrdp 198.18.2.4:3389)
#
# Captured with tcpdump on the client's interface: the client sees only
# the gateway. Each run writes OUTDIR/lab-gw-RUN.pcapng: the capture with
# both key logs injected as a Decryption Secrets Block (the gateway's TLS
# from Python's keylog_filename, the inner RDP TLS from keylog.so on
# xfreerdp), and OUTDIR/lab-gw-RUN.pcap without them.
#
# Runs (all by default, or those named):
#   ws-ok          /gt:http (FreeRDP 2.11 asks for the WebSocket upgrade:
#                  101), a session of 6 s, the user closes the window
#   http-ok        /gt:http,no-websockets: OUT channel 200 without length,
#                  seed, IN channel chunked
#   no-ws          the gateway answers the upgrade with a 200: legacy OUT
#                  channel (FreeRDP then opens the IN channel)
#   ntlm-reject    a 401 after the client's NTLM AUTHENTICATE
#   403 404 502    error statuses to RDG_OUT_DATA (FreeRDP then tries RPC
#                  over HTTP on 404 with /gt:auto)
#   rap-denied     CHANNEL_RESPONSE E_PROXY_RAP_ACCESSDENIED
#   capability     TUNNEL_RESPONSE E_PROXY_CAPABILITYMISMATCH
#   connect-failed xrdp is not running: E_PROXY_TS_CONNECTFAILED
#   bad-framing    a 403 without Content-Length that keeps the connection
#
# Every process is started with `timeout` and stopped by its PID; the
# namespaces are deleted at the end (also on error). Nothing leaves them.
set -euo pipefail
OUT=${1:?usage: gateway-lab.sh OUTDIR [RUN...]}
shift
RUNS=${*:-ws-ok http-ok no-ws ntlm-reject 403 404 502 rap-denied capability connect-failed bad-framing}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/rdpsift-gwlab.XXXXXX)
PIDS=()
C=198.18.2.2 G=198.18.2.3 S=198.18.2.4

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${HOSTS_MADE:-}" ] && rm -rf /etc/netns/rdpc
  [ -n "${KEEP:-}" ] && cp "$WORK"/*.log "$KEEP"/ 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

setup() {
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
  ip link add vc netns rdpc type veth peer name vs netns rdps
  ip -n rdpc addr add $C/24 dev vc
  ip -n rdps addr add $G/24 dev vs
  ip -n rdps addr add $S/24 dev vs
  for x in "rdpc vc" "rdps vs"; do
    set -- $x
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  done
}

wait_port() { # netns addr port log
  for _ in $(seq 150); do
    ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on $2:$3:"; cat "$4"; return 1
}

# A lab CA signs the gateway's and the RDP server's certificates, each
# naming the host the client asks for (no certificate finding in a healthy
# run); the client finds the gateway by name through the namespace's hosts
# file (ip netns exec binds /etc/netns/rdpc/hosts over /etc/hosts).
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=rdpsift lab CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" >/dev/null 2>&1
issue() { # name keyfile certfile
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$2" -out "$WORK/req.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:%s\n' "$1" > "$WORK/ext.cnf"
  openssl x509 -req -in "$WORK/req.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 30 -extfile "$WORK/ext.cnf" -out "$3" >/dev/null 2>&1
}
issue target.rdpsift.test "$WORK/key.pem" "$WORK/cert.pem"
issue gw.rdpsift.test "$WORK/gwkey.pem" "$WORK/gwcert.pem"
mkdir -p /etc/netns/rdpc
HOSTS_MADE=/etc/netns/rdpc/hosts
printf '127.0.0.1 localhost\n%s gw.rdpsift.test\n' "$G" > "$HOSTS_MADE"
cc -shared -fPIC -O2 -o "$WORK/keylog.so" "$HERE/keylog.c" -ldl -lssl

start_xrdp() {
  sed -e "s|^security_layer=.*|security_layer=tls|" \
      -e "s|^certificate=.*|certificate=$WORK/cert.pem|" \
      -e "s|^key_file=.*|key_file=$WORK/key.pem|" \
      -e "s|^port=3389|port=tcp://$S:3389|" \
      /etc/xrdp/xrdp.ini > "$WORK/xrdp.ini"
  mkdir -p /run/xrdp/sockdir
  ip netns exec rdps timeout 120 xrdp --nodaemon --config "$WORK/xrdp.ini" >"$WORK/xrdp.log" 2>&1 &
  PIDS+=($!)
  wait_port rdps $S 3389 "$WORK/xrdp.log"
}

start_gateway() { # mode
  rm -f "$WORK/gw.keys"
  ip netns exec rdps timeout 120 python3 "$HERE/rdg.py" --listen $G:443 \
    --cert "$WORK/gwcert.pem" --key "$WORK/gwkey.pem" --backend $S:3389 \
    --keylog "$WORK/gw.keys" --mode "$1" --keepalive 2 --idle-timeout 30 >"$WORK/gw.log" 2>&1 &
  PIDS+=($!)
  wait_port rdps $G 443 "$WORK/gw.log"
}

start_capture() { # name
  ip netns exec rdpc timeout 120 tcpdump -i vc -s 0 -U -w "$WORK/$1.pcap" 'tcp port 443' >/dev/null 2>&1 &
  CAP=$!
  PIDS+=($CAP)
  sleep 1
}

stop_capture() {
  sleep 1
  kill -INT "$CAP" 2>/dev/null || true
  wait "$CAP" 2>/dev/null || true
}

client() { # seconds transport
  local secs=$1 gt=$2
  rm -f "$WORK/client.keys"
  ip netns exec rdpc timeout 60 Xvfb :78 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
  local x=$!
  PIDS+=($x)
  sleep 1
  ip netns exec rdpc env DISPLAY=:78 HOME="$WORK" LD_PRELOAD="$WORK/keylog.so" \
    RDPSIFT_KEYLOG="$WORK/client.keys" timeout "$((secs + 10))" xfreerdp \
    /v:target.rdpsift.test /u:lab /p:lab /g:gw.rdpsift.test:443 /gu:alice /gp:labpass1 /gd:LAB \
    /gt:"$gt" /cert:ignore /sec:tls /log-level:ERROR >>"$WORK/client.log" 2>&1 &
  local f=$!
  PIDS+=($f)
  sleep "$secs"
  local ids
  ids=$(ip netns exec rdpc env DISPLAY=:78 timeout 5 xdotool search --class xfreerdp 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && ip netns exec rdpc env DISPLAY=:78 timeout 5 /usr/bin/python3 "$HERE/wm-close.py" $ids || true
  sleep 2
  kill "$f" 2>/dev/null || true
  wait "$f" 2>/dev/null || true
  kill "$x" 2>/dev/null || true
  wait "$x" 2>/dev/null || true
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
}

for run in $RUNS; do
  echo "== $run"
  setup
  mode=$run gt=http secs=8
  case $run in
    ws-ok) mode=ok ;;
    http-ok) mode=ok gt=http,no-websockets ;;
    404) gt=auto ;;
  esac
  [ "$run" = connect-failed ] || start_xrdp
  [ "$run" = connect-failed ] && mode=ok
  start_gateway "$mode"
  name=lab-gw-$run
  start_capture "$name"
  client "$secs" "$gt"
  stop_capture
  cat "$WORK/gw.keys" "$WORK/client.keys" 2>/dev/null > "$WORK/$name.keys" || true
  cp "$WORK/$name.pcap" "$OUT/$name.pcap"
  if [ -s "$WORK/$name.keys" ]; then
    editcap --inject-secrets "tls,$WORK/$name.keys" "$WORK/$name.pcap" "$OUT/$name.pcapng"
  fi
  echo "   $(tcpdump -r "$OUT/$name.pcap" 2>/dev/null | wc -l) packets; gateway log:"
  sed 's/^/   | /' "$WORK/gw.log" | tail -12
  stop_all
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; done
done
