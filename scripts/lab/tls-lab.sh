#!/usr/bin/env bash
# TLS sessions of every suite and version rdpsift decrypts, made by real
# OpenSSL (s_server -rev / s_client -keylogfile) on loopback and captured
# with tcpdump, for samples/ (not CI):
#
#   scripts/lab/tls-lab.sh OUTDIR        (Debian: openssl tcpdump wireshark-common)
#
# Writes:
#   lab-tls-suites.pcap + .keys   one session per case below, on port 4433;
#                                 the client sends "ping <case>" (and, for
#                                 the KeyUpdate case, "ping after" after the
#                                 update), s_server -rev answers each line
#                                 reversed; the client's key log
#   lab-tls-suites-dsb.pcapng     the same capture with the key log injected
#                                 as a Decryption Secrets Block (editcap)
#   lab-tls-rsa.pcap + .key.pem   TLS_RSA_* sessions (RSA key exchange, with
#                                 and without extended master secret) and the
#                                 server's RSA private key, no key log
#
# Everything listens on 127.0.0.1 only, runs under timeout and is stopped by
# its PID.
set -euo pipefail
OUT=${1:?usage: tls-lab.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/rdpsift-tls.XXXXXX)
PIDS=()
PORT=4433
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tls-lab.rdpsift.test" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
# OpenSSL 3.0's s_client has no flag for it: a config that turns EMS off.
cat > "$WORK/noems.cnf" <<'EOF'
openssl_conf = conf
[conf]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
Options = -ExtendedMasterSecret
EOF

capture() { # file
  timeout 120 tcpdump -i lo -s 0 -U -w "$1" "tcp port $PORT" >/dev/null 2>&1 &
  CAP=$!
  PIDS+=($CAP)
  sleep 1
}
stop_capture() {
  sleep 0.5
  kill -INT "$CAP" 2>/dev/null || true
  wait "$CAP" 2>/dev/null || true
}

# One session: case name, then "server options" and "client options";
# CLIENT_ENV is put before the client (the EMS-off config).
session() {
  local name=$1 sopts=$2 copts=$3
  # shellcheck disable=SC2086
  timeout 20 openssl s_server -accept "127.0.0.1:$PORT" -cert "$WORK/cert.pem" \
    -key "$WORK/key.pem" -rev -naccept 1 -quiet $sopts >>"$WORK/server.log" 2>&1 &
  local s=$!
  PIDS+=($s)
  sleep 0.4
  {
    echo "ping $name"
    sleep 0.3
    if [ -n "${KEYUPDATE:-}" ]; then
      echo K
      sleep 0.3
      echo "ping after"
      sleep 0.3
    fi
    sleep 0.3
  } | env ${CLIENT_ENV:-} timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
      -servername tls-lab.rdpsift.test -keylogfile "$KEYLOG" $copts >>"$WORK/client.log" 2>&1 || true
  wait "$s" 2>/dev/null || true
}

L0="-cipher DEFAULT@SECLEVEL=0"
KEYLOG="$OUT/lab-tls-suites.keys"
rm -f "$KEYLOG"
capture "$OUT/lab-tls-suites.pcap"
session tls12-aes128-gcm "" "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"
session tls12-aes256-gcm "" "-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384"
session tls12-chacha20 "" "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"
session tls12-aes128-sha-etm "" "-tls1_2 -cipher ECDHE-RSA-AES128-SHA"
session tls12-aes128-sha-noetm "" "-tls1_2 -no_etm -cipher ECDHE-RSA-AES128-SHA"
session tls12-aes128-sha256 "" "-tls1_2 -cipher ECDHE-RSA-AES128-SHA256"
session tls12-aes256-sha384 "" "-tls1_2 -no_etm -cipher ECDHE-RSA-AES256-SHA384"
CLIENT_ENV="OPENSSL_CONF=$WORK/noems.cnf" session tls12-no-ems "" "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"
session tls11-aes128-sha "$L0" "-tls1_1 $L0 -no_etm -cipher ECDHE-RSA-AES128-SHA:@SECLEVEL=0"
session tls10-aes256-sha "$L0" "-tls1 $L0 -no_etm -cipher ECDHE-RSA-AES256-SHA:@SECLEVEL=0"
session tls13-aes128-gcm "" "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
session tls13-aes256-gcm "" "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"
session tls13-chacha20 "" "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"
KEYUPDATE=1 session tls13-keyupdate "" "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
stop_capture
editcap --inject-secrets "tls,$KEYLOG" "$OUT/lab-tls-suites.pcap" "$OUT/lab-tls-suites-dsb.pcapng"

# TLS_RSA: the pre-master secret from the server's private key.
KEYLOG="$WORK/rsa.keys"
capture "$OUT/lab-tls-rsa.pcap"
session tls12-rsa-aes128-gcm "" "-tls1_2 -cipher AES128-GCM-SHA256"
CLIENT_ENV="OPENSSL_CONF=$WORK/noems.cnf" session tls12-rsa-aes256-sha256-no-ems "" "-tls1_2 -cipher AES256-SHA256"
stop_capture
cp "$WORK/key.pem" "$OUT/lab-tls-rsa.key.pem"
grep -c "CLIENT_RANDOM\|TRAFFIC_SECRET" "$OUT/lab-tls-suites.keys" || true
ls -l "$OUT"/lab-tls-*
