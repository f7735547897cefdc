#!/usr/bin/env bash
# A real FreeRDP client through a scripted RD Gateway (scripts/lab/rdg.py)
# to a real xrdp server, captured for samples/ (not CI).
#
#   scripts/lab/gateway-lab.sh OUTDIR [RUN...]     (Debian; run as root)
#
# Needs Debian packages: iproute2 tcpdump xrdp freerdp2-x11 xvfb xdotool
# iptables nginx haproxy squid krb5-kdc krb5-admin-server krb5-user; PyPI kdcproxy
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
#   rpc-fault      404 to RDG_OUT_DATA, so FreeRDP (/gt:auto) falls back to
#                  RPC over HTTP: NTLM on both channels, CONN/A1 and CONN/B1
#                  answered with CONN/A3 and CONN/C2, the bind with a
#                  bind_ack, the sealed TsProxyCreateTunnel with a fault
#   rpc-no-a3      the same, but the OUT channel's 200 is never followed by
#                  CONN/A3 (IN and OUT balanced to different servers)
#   rpc-bind-nak   the same as rpc-fault, the bind answered with a bind_nak
#   rap-denied     CHANNEL_RESPONSE E_PROXY_RAP_ACCESSDENIED
#   capability     TUNNEL_RESPONSE E_PROXY_CAPABILITYMISMATCH
#   connect-failed xrdp is not running: E_PROXY_TS_CONNECTFAILED
#   bad-framing    a 403 without Content-Length that keeps the connection
#
# Behind real proxies (the gateway moves to 198.18.2.5; 198.18.2.3:443 is
# the proxy; runs with a plaintext upstream also write
# lab-gw-RUN-upstream.pcap, the proxy's HTTP to the gateway on :8080):
#   nginx-default  nginx terminating TLS with its defaults (HTTP/1.0 to the
#                  upstream, buffering, Upgrade not passed on)
#   nginx-tuned    proxy_http_version 1.1, no buffering, Upgrade passed on
#   nginx-buffered HTTP/1.1 and upstream keep-alive, but buffering on and
#                  Upgrade not passed on: the upgrade is answered 200, the
#                  OUT channel re-framed as chunked, the IN channel's
#                  chunked request held back
#   nginx-chunked  no buffering, but Upgrade not passed on and nginx's
#                  chunked encoding on: the legacy OUT channel's 200
#                  reaches the client re-framed as chunked
#   nginx-timeout  tuned, with proxy_read_timeout 8s and the gateway's
#                  keep-alives every 30 s: the idle tunnel is cut
#   haproxy-idle   HAProxy in TCP mode (TLS passed through) with `timeout
#                  tunnel 5s` and the gateway's keep-alives every 30 s:
#                  the idle tunnel is cut
#   haproxy-server-close  HAProxy terminating TLS with `option
#                  http-server-close`: each request reaches the gateway on
#                  a new connection, so its connection-bound NTLM fails
#   haproxy-ws     the same HAProxy, the client asking for the WebSocket
#                  upgrade on RDG_OUT_DATA: HAProxy answers 400 itself
#   kdcproxy-ok / kdcproxy-wrong / kdcproxy-down
#                  MIT kinit with `kdc = https://gw.rdpsift.test/KdcProxy`
#                  (MS-KKDCP) to the gateway, which answers with the PyPI
#                  kdcproxy package in front of an MIT KDC (198.18.2.88):
#                  the right password, a wrong one (KRB-ERROR 24 inside
#                  the proxy's answer), the KDC unreachable from the proxy
#   udp-dropped    a healthy WebSocket tunnel while `openssl s_client
#                  -dtls1_2` retries DTLS to UDP 3391, which the gateway's
#                  namespace drops (iptables)
#   squid-407      xfreerdp with https_proxy= a squid that wants Basic
#                  credentials: CONNECT answered 407 (capture: tcp 3128)
#
# Every process is started with `timeout` and stopped by its PID; the
# namespaces are deleted at the end (also on error). Nothing leaves them.
set -euo pipefail
OUT=${1:?usage: gateway-lab.sh OUTDIR [RUN...]}
shift
RUNS=${*:-ws-ok http-ok no-ws ntlm-reject 403 404 502 rpc-fault rpc-no-a3 rpc-bind-nak rap-denied capability connect-failed bad-framing nginx-default nginx-tuned nginx-buffered nginx-chunked nginx-timeout haproxy-idle haproxy-server-close haproxy-ws squid-407 kdcproxy-ok kdcproxy-wrong kdcproxy-down udp-dropped}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/rdpsift-gwlab.XXXXXX)
PIDS=()
C=198.18.2.2 G=198.18.2.3 S=198.18.2.4

# shellcheck source=scripts/lab/lib.sh
. "$HERE/lib.sh"

cleanup() {
  stop_pids
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${HOSTS_MADE:-}" ] && rm -rf /etc/netns/rdpc
  [ -n "${KEEP:-}" ] && cp "$WORK"/*.log "$KEEP"/ 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

setup() {
  veth_pair rdpc vc rdps vs
  ip -n rdpc addr add $C/24 dev vc
  ip -n rdps addr add $G/24 dev vs
  ip -n rdps addr add $S/24 dev vs
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
  run_xrdp $S "$WORK/cert.pem" "$WORK/key.pem"
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

start_gateway_at() { # addr:port mode extra-args...
  local at=$1 mode=$2
  shift 2
  rm -f "$WORK/gw.keys"
  ip netns exec rdps timeout 120 python3 "$HERE/rdg.py" --listen "$at" \
    --cert "$WORK/gwcert.pem" --key "$WORK/gwkey.pem" --backend $S:3389 \
    --keylog "$WORK/gw.keys" --mode "$mode" --keepalive "${KEEPALIVE:-2}" --idle-timeout 30 \
    "$@" >"$WORK/gw.log" 2>&1 &
  PIDS+=($!)
  wait_port rdps "${at%:*}" "${at#*:}" "$WORK/gw.log"
}

# The proxy's own side: plaintext HTTP to the gateway, captured on the
# server namespace's loopback (both addresses are local there).
start_upstream_capture() { # name
  ip netns exec rdps timeout 120 tcpdump -i lo -s 0 -U -w "$WORK/$1.pcap" 'tcp port 8080' >/dev/null 2>&1 &
  UCAP=$!
  PIDS+=($UCAP)
  sleep 1
}

start_nginx() { # default|tuned|buffered|timeout
  local extra="" pass=http://rdg
  case $1 in
    tuned|timeout)
      extra='proxy_http_version 1.1; proxy_buffering off; proxy_request_buffering off;
        chunked_transfer_encoding off; proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;'
      if [ "$1" = timeout ]; then extra="$extra proxy_read_timeout 8s;"; else extra="$extra proxy_read_timeout 1h;"; fi ;;
    buffered)
      extra='proxy_http_version 1.1; proxy_set_header Connection "";' ;;
    chunked)
      extra='proxy_http_version 1.1; proxy_set_header Connection "";
        proxy_buffering off; proxy_request_buffering off;' ;;
    default) pass="http://$GW2:8080" ;;
  esac
  # Upstream keep-alive (all but default): with one client and one
  # worker, the idle upstream connection is reused, so NTLM's rounds stay
  # on one connection (nginx promises no such affinity; it holds here by
  # luck of the lab).
  {
    echo "user root;"
    echo "worker_processes 1;"
    echo "pid $WORK/nginx.pid;"
    echo "error_log $WORK/nginx-error.log info;"
    echo "events { worker_connections 64; }"
    echo "http {"
    echo "  access_log $WORK/nginx-access.log;"
    echo "  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }"
    echo "  upstream rdg { server $GW2:8080; keepalive 4; }"
    echo "  server {"
    echo "    listen $G:443 ssl;"
    echo "    ssl_certificate $WORK/gwcert.pem;"
    echo "    ssl_certificate_key $WORK/gwkey.pem;"
    echo "    location / { proxy_pass $pass; $extra }"
    echo "  }"
    echo "}"
  } > "$WORK/nginx.conf"
  ip netns exec rdps timeout 120 nginx -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
  PIDS+=($!)
  wait_port rdps $G 443 "$WORK/nginx.out"
}

start_haproxy() { # idle|server-close
  if [ "$1" = idle ]; then
    printf '%s\n' defaults "  mode tcp" "  timeout connect 5s" "  timeout client 1h" \
      "  timeout server 1h" "  timeout tunnel 5s" "frontend gw" "  bind $G:443" \
      "  default_backend rdg" "backend rdg" "  server g1 $GW2:443" > "$WORK/haproxy.cfg"
  else
    cat "$WORK/gwcert.pem" "$WORK/gwkey.pem" > "$WORK/gw-both.pem"
    printf '%s\n' defaults "  mode http" "  option http-server-close" "  timeout connect 5s" \
      "  timeout client 1h" "  timeout server 1h" "frontend gw" \
      "  bind $G:443 ssl crt $WORK/gw-both.pem" "  default_backend rdg" "backend rdg" \
      "  server g1 $GW2:8080" > "$WORK/haproxy.cfg"
  fi
  ip netns exec rdps timeout 120 haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
  PIDS+=($!)
  wait_port rdps $G 443 "$WORK/haproxy.out"
}

start_squid() {
  # squid runs as the proxy user: its files in a directory it can enter.
  chmod 711 "$WORK"
  printf 'alice:%s\n' "$(openssl passwd -apr1 labpass1)" > "$WORK/htpasswd"
  chmod 644 "$WORK/htpasswd"
  printf '%s\n' "http_port $PX:3128" "pid_filename $WORK/squid.pid" "cache deny all" \
    "cache_log /dev/null" "access_log none" \
    "auth_param basic program /usr/lib/squid/basic_ncsa_auth $WORK/htpasswd" \
    "auth_param basic realm rdpsift-lab" "acl authed proxy_auth REQUIRED" \
    "http_access allow authed" "http_access deny all" > "$WORK/squid.conf"
  ip netns exec rdps timeout 120 squid -N -f "$WORK/squid.conf" >"$WORK/squid.out" 2>&1 &
  PIDS+=($!)
  wait_port rdps $PX 3128 "$WORK/squid.out"
}


# MS-KKDCP: a KDC behind the gateway's /KdcProxy, MIT kinit as the client.
start_kdc() {
  rm -rf "$WORK/krb5kdc" && mkdir -p "$WORK/krb5kdc"
  printf '%s\n' "[libdefaults]" "  default_realm = $REALM" "  dns_lookup_kdc = false" \
    "  dns_lookup_realm = false" "[realms]" "  $REALM = {" "    kdc = $KDC" "  }" \
    > "$WORK/krb5-kdc.conf"
  printf '%s\n' "[kdcdefaults]" "  kdc_listen = $KDC" "  kdc_tcp_listen = $KDC" "[realms]" \
    "  $REALM = {" "    database_name = $WORK/krb5kdc/principal" \
    "    key_stash_file = $WORK/krb5kdc/stash" "    acl_file = $WORK/krb5kdc/kadm5.acl" \
    "  }" "[logging]" "  kdc = FILE:$WORK/kdc.log" > "$WORK/kdc.conf"
  KRB5_CONFIG=$WORK/krb5-kdc.conf KRB5_KDC_PROFILE=$WORK/kdc.conf \
    kdb5_util create -s -r $REALM -P masterpass >/dev/null 2>&1
  KRB5_CONFIG=$WORK/krb5-kdc.conf KRB5_KDC_PROFILE=$WORK/kdc.conf \
    kadmin.local -q "addprinc +requires_preauth -pw labpass1 alice" >/dev/null 2>&1
  ip netns exec rdps env KRB5_CONFIG="$WORK/krb5-kdc.conf" KRB5_KDC_PROFILE="$WORK/kdc.conf" \
    timeout 120 krb5kdc -n >"$WORK/krb5kdc.out" 2>&1 &
  PIDS+=($!)
  sleep 1
}

kinit_via_proxy() { # password
  printf '%s\n' "[libdefaults]" "  default_realm = $REALM" "  dns_lookup_kdc = false" \
    "  dns_lookup_realm = false" "[realms]" "  $REALM = {" \
    "    kdc = https://gw.rdpsift.test/KdcProxy" "    http_anchors = FILE:$WORK/ca.pem" "  }" \
    > "$WORK/krb5-client.conf"
  printf '%s\n' "$1" | ip netns exec rdpc env KRB5_CONFIG="$WORK/krb5-client.conf" \
    KRB5CCNAME="FILE:$WORK/ccache" LD_PRELOAD="$WORK/keylog.so" RDPSIFT_KEYLOG="$WORK/client.keys" \
    timeout 20 kinit alice >>"$WORK/kinit.log" 2>&1 || true
}

GW2=198.18.2.5 PX=198.18.2.6 KDC=198.18.2.88 REALM=RDPSIFT.TEST
for run in $RUNS; do
  echo "== $run"
  setup
  ip -n rdps addr add $GW2/24 dev vs
  ip -n rdps addr add $PX/24 dev vs
  ip -n rdps addr add $KDC/24 dev vs
  mode=$run gt=http secs=8 upstream="" filter='tcp port 443'
  case $run in
    ws-ok) mode=ok ;;
    http-ok) mode=ok gt=http,no-websockets ;;
    404|rpc-*) gt=auto ;;
    nginx-*|haproxy-*|squid-*|kdcproxy-*) mode=ok ;;
  esac
  [ "$run" = connect-failed ] || start_xrdp
  [ "$run" = connect-failed ] && mode=ok
  name=lab-gw-$run
  case $run in
    nginx-*)
      # nginx-timeout: keep-alives rarer than proxy_read_timeout.
      KEEPALIVE=$([ "$run" = nginx-timeout ] && echo 30 || echo 2) start_gateway_at $GW2:8080 ok --plain
      [ "$run" = nginx-timeout ] && secs=14
      start_nginx "${run#nginx-}"
      upstream=1 ;;
    haproxy-idle)
      KEEPALIVE=30 start_gateway_at $GW2:443 ok
      start_haproxy idle
      secs=14 ;;
    haproxy-server-close|haproxy-ws)
      start_gateway_at $GW2:8080 ok --plain
      start_haproxy server-close
      [ "$run" = haproxy-server-close ] && gt=http,no-websockets
      upstream=1 ;;
    squid-407)
      start_gateway_at $G:443 ok
      start_squid
      filter='tcp port 3128' ;;
    kdcproxy-*)
      start_kdc
      # kdcproxy's own configuration names the KDC (kdcproxy-down: an
      # address where none listens).
      kdc_at=$KDC
      [ "$run" = kdcproxy-down ] && kdc_at=198.18.2.99
      printf '%s\n' "[global]" "[$REALM]" "kerberos = kerberos+tcp://$kdc_at:88" "use_dns = false" \
        > "$WORK/kdcproxy.conf"
      KDCPROXY_CONFIG=$WORK/kdcproxy.conf start_gateway_at $G:443 ok ;;
    udp-dropped)
      # The gateway's UDP transport port drops everything.
      ip netns exec rdps iptables -A INPUT -p udp --dport 3391 -j DROP
      start_gateway_at $G:443 ok
      filter='tcp port 443 or udp port 3391' ;;
    *) start_gateway_at $G:443 "$mode" ;;
  esac
  ip netns exec rdpc timeout 120 tcpdump -i vc -s 0 -U -w "$WORK/$name.pcap" "$filter" >/dev/null 2>&1 &
  CAP=$!
  PIDS+=($CAP)
  [ -n "$upstream" ] && start_upstream_capture "$name-upstream"
  sleep 1
  if [ "$run" = squid-407 ]; then
    https_proxy=http://$PX:3128 client "$secs" "$gt"
  elif [ "$run" = udp-dropped ]; then
    # DTLS to UDP 3391 beside the tunnel (FreeRDP 2.11 has no gateway UDP
    # transport; OpenSSL's client retries its ClientHello as a client would).
    # After the tunnel is up, as a client learns the UDP port from it.
    (sleep 3; ip netns exec rdpc timeout 8 openssl s_client -dtls1_2 -connect $G:3391 \
      -servername gw.rdpsift.test </dev/null >"$WORK/dtls.log" 2>&1) &
    PIDS+=($!)
    client "$secs" "$gt"
  elif [ "${run#kdcproxy-}" != "$run" ]; then
    rm -f "$WORK/client.keys"
    if [ "$run" = kdcproxy-wrong ]; then kinit_via_proxy wrongpass; else kinit_via_proxy labpass1; fi
  else
    client "$secs" "$gt"
  fi
  stop_capture
  if [ -n "$upstream" ]; then
    kill -INT "$UCAP" 2>/dev/null || true
    wait "$UCAP" 2>/dev/null || true
    cp "$WORK/$name-upstream.pcap" "$OUT/$name-upstream.pcap"
  fi
  cat "$WORK/gw.keys" "$WORK/client.keys" 2>/dev/null > "$WORK/$name.keys" || true
  if [ -n "$upstream" ] && [ -s "$WORK/$name.keys" ]; then
    # The tunnelled RDP's own TLS is in the upstream capture too.
    editcap --inject-secrets "tls,$WORK/$name.keys" "$WORK/$name-upstream.pcap" "$OUT/$name-upstream.pcapng"
  fi
  cp "$WORK/$name.pcap" "$OUT/$name.pcap"
  if [ -s "$WORK/$name.keys" ]; then
    editcap --inject-secrets "tls,$WORK/$name.keys" "$WORK/$name.pcap" "$OUT/$name.pcapng"
  fi
  echo "   $(tcpdump -r "$OUT/$name.pcap" 2>/dev/null | wc -l) packets; gateway log:"
  sed 's/^/   | /' "$WORK/gw.log" | tail -12
  if [ -s "$WORK/client.log" ]; then
    echo "   client log:"
    sed 's/^/   > /' "$WORK/client.log" | tail -6
    : >"$WORK/client.log"
  fi
  stop_pids
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; done
done
