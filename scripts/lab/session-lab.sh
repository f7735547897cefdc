#!/usr/bin/env bash
# Real session endings, NLA and Kerberos, captured for samples/ (not CI).
#
#   scripts/lab/session-lab.sh OUTDIR [RUN...]     (Debian; run as root)
#
# Needs Debian packages: iproute2 tcpdump xrdp freerdp2-x11
# freerdp2-shadow-x11 xvfb krb5-kdc krb5-admin-server krb5-user faketime
# openssl gcc python3. Two network namespaces joined by one veth pair,
# addresses from 198.18.0.0/15 (RFC 2544) only:
#
#   rdpc (client 198.18.1.2) -- rdps (server 198.18.1.3, KDC 198.18.1.88)
#
# Captured with tcpdump on the client's interface (TCP 3389 and port 88).
# Runs (all by default, or those named):
#
#   xrdp-fin       xfreerdp → xrdp (TLS), the client ends the session
#                  after 6 s (SIGTERM from `timeout`: FreeRDP closes with FIN)
#   xrdp-abortive  the same, xfreerdp under linger0.so (SO_LINGER 0): its
#                  close is a RST, as mstsc ends a finished session
#   xrdp-killed    the session's xrdp process is killed mid-session
#                  (a server crash: no ultimatum)
#   shadow-nla     xfreerdp → freerdp-shadow-cli /sec:nla with a SAM file
#                  (NTLM), the right password; the client ends it with RST
#   shadow-nla-wrong   the same with a wrong password
#   krb-wrong-password kinit with a wrong password (KRB-ERROR 24), then the
#                  same user's NLA logon with a wrong password
#   krb-tcp        the same over TCP (udp_preference_limit = 1)
#   keys-shadow-nla, keys-shadow-nla-wrong, keys-xrdp-fin, keys-shadow-nla-unknown
#                  (the last: a user the SAM file does not know; FreeRDP
#                  2.10's server sends no errorCode TSRequest for it either,
#                  only a close_notify: checked, not kept as a sample)
#                  the shadow-nla, shadow-nla-wrong and xrdp-fin runs with
#                  the client's TLS secrets written by keylog.so (an
#                  LD_PRELOAD shim over SSL_CTX_set_keylog_callback) to
#                  lab-keys-*.keys beside the capture
#   krb-errors     KRB-ERRORs 6 (unknown principal), 7 (kvno for a
#                  TERMSRV SPN that does not exist), 37 (clock skew:
#                  faketime +10 min, kdc_timesync = 0), 23 (expired
#                  password), then a good NLA session from the same address
#
# Neither server offers a server-side logoff or idle timeout here: xrdp's
# IdleTimeLimit applies to sesman sessions (an Xorg/Xvnc backend this lab
# does not run), FreeRDP's shadow server has none; "xrdp-killed" is the
# server-side end this lab can make.
#
# Every process is started with `timeout` and stopped by its PID; the
# namespaces are deleted at the end (also on error). Nothing leaves them.
set -euo pipefail
OUT=${1:?usage: session-lab.sh OUTDIR [RUN...]}
shift
RUNS=${*:-xrdp-fin xrdp-abortive xrdp-killed shadow-nla shadow-nla-wrong krb-wrong-password krb-tcp krb-errors keys-shadow-nla keys-shadow-nla-wrong keys-xrdp-fin keys-shadow-nla-unknown}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/rdpsift-slab.XXXXXX)
PIDS=()
C=198.18.1.2 S=198.18.1.3 KDC=198.18.1.88
REALM=RDPSIFT.TEST

# shellcheck source=scripts/lab/lib.sh
. "$HERE/lib.sh"

cleanup() {
  stop_pids
  for n in rdpc rdps; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && cp "$WORK"/*.log "$KEEP"/ 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

setup() {
  veth_pair rdpc vc rdps vs
  ip -n rdpc addr add $C/24 dev vc
  ip -n rdps addr add $S/24 dev vs
  ip -n rdps addr add $KDC/24 dev vs
}

start_xrdp() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=rdp-lab.rdpsift.test" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
  run_xrdp $S "$WORK/cert.pem" "$WORK/key.pem"
}

# NT hash (MD4 of the UTF-16LE password) for the WinPR SAM file; MD4 by
# hand, as OpenSSL 3 keeps it in the legacy provider.
nthash() {
  python3 - "$1" <<'EOF'
import struct, sys
def md4(m):
    f = lambda x, y, z: (x & y) | (~x & z)
    g = lambda x, y, z: (x & y) | (x & z) | (y & z)
    h = lambda x, y, z: x ^ y ^ z
    rol = lambda v, s: ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF
    n = len(m)
    m += b"\x80" + b"\0" * ((55 - n) % 64) + struct.pack("<Q", n * 8)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for i in range(0, len(m), 64):
        x = struct.unpack("<16I", m[i:i + 64])
        aa, bb, cc, dd = a, b, c, d
        for k in range(16):
            s = (3, 7, 11, 19)[k % 4]
            v = (a + f(b, c, d) + x[k]) & 0xFFFFFFFF
            a, b, c, d = d, rol(v, s), b, c
        for k in range(16):
            s = (3, 5, 9, 13)[k % 4]
            v = (a + g(b, c, d) + x[(k % 4) * 4 + k // 4] + 0x5A827999) & 0xFFFFFFFF
            a, b, c, d = d, rol(v, s), b, c
        for k in range(16):
            s = (3, 9, 11, 15)[k % 4]
            idx = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[k]
            v = (a + h(b, c, d) + x[idx] + 0x6ED9EBA1) & 0xFFFFFFFF
            a, b, c, d = d, rol(v, s), b, c
        a, b, c, d = (a + aa) & 0xFFFFFFFF, (b + bb) & 0xFFFFFFFF, (c + cc) & 0xFFFFFFFF, (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)
print(md4(sys.argv[1].encode("utf-16-le")).hex())
EOF
}

start_shadow() {
  echo "alice::aad3b435b51404eeaad3b435b51404ee:$(nthash labpass1):::" > "$WORK/sam"
  # A display of its own per run: the last run's Xvfb may still hold its lock.
  local disp=$((80 + RUN_NO))
  ip netns exec rdps timeout 120 Xvfb :$disp -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 1
  ip netns exec rdps env DISPLAY=:$disp HOME="$WORK" timeout 120 freerdp-shadow-cli \
    /bind-address:$S /port:3389 /sec:nla /sam-file:"$WORK/sam" >"$WORK/shadow.log" 2>&1 &
  PIDS+=($!)
  wait_port rdps $S 3389 "$WORK/shadow.log"
}

start_kdc() {
  rm -rf "$WORK/krb5kdc" "$WORK/ccache"
  mkdir -p "$WORK/krb5kdc"
  cat > "$WORK/krb5.conf" <<EOF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  kdc_timesync = 0
  udp_preference_limit = ${KRB_UDP_LIMIT:-1465}
[realms]
  $REALM = {
    kdc = $KDC
    admin_server = $KDC
  }
EOF
  cat > "$WORK/kdc.conf" <<EOF
[kdcdefaults]
  kdc_listen = $KDC
  kdc_tcp_listen = $KDC
[realms]
  $REALM = {
    database_name = $WORK/krb5kdc/principal
    key_stash_file = $WORK/krb5kdc/stash
    acl_file = $WORK/krb5kdc/kadm5.acl
    max_life = 10h
  }
[logging]
  kdc = FILE:$WORK/kdc.log
EOF
  export KRB5_CONFIG=$WORK/krb5.conf KRB5_KDC_PROFILE=$WORK/kdc.conf
  kdb5_util create -s -r $REALM -P masterpass >/dev/null 2>&1
  kadmin.local -q "addprinc +requires_preauth -pw labpass1 alice" >/dev/null 2>&1
  kadmin.local -q "addprinc +requires_preauth -pw labpass2 -pwexpire 2020-01-01 bob" >/dev/null 2>&1
  ip netns exec rdps env KRB5_CONFIG="$KRB5_CONFIG" KRB5_KDC_PROFILE="$KRB5_KDC_PROFILE" \
    timeout 120 krb5kdc -n >"$WORK/krb5kdc.out" 2>&1 &
  PIDS+=($!)
  sleep 1
}

# A Kerberos client command in the client namespace (bounded, stdin given).
krb() { # stdin-text command...
  local input=$1
  shift
  printf '%s\n' "$input" | ip netns exec rdpc env KRB5_CONFIG="$WORK/krb5.conf" \
    KRB5CCNAME="FILE:$WORK/ccache" timeout 10 "$@" >>"$WORK/krb.log" 2>&1 || true
  sleep 0.3
}

capture() { # file
  ip netns exec rdpc timeout 90 tcpdump -i vc -s 0 -U -w "$1" \
    'tcp port 3389 or port 88' >/dev/null 2>&1 &
  CAP=$!
  PIDS+=($CAP)
  sleep 1
}

stop_capture() {
  sleep 1
  kill -INT "$CAP" 2>/dev/null || true
  wait "$CAP" 2>/dev/null || true
}

client() { # seconds sec user password [env...]
  local secs=$1 sec=$2 user=$3 pass=$4
  shift 4
  ip netns exec rdpc timeout 60 Xvfb :77 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
  local x=$!
  PIDS+=($x)
  sleep 1
  ip netns exec rdpc env DISPLAY=:77 HOME="$WORK" "$@" timeout "$((secs + 10))" xfreerdp /v:$S \
    /u:"$user" /p:"$pass" /cert:ignore /sec:"$sec" /log-level:ERROR >>"$WORK/client.log" 2>&1 &
  local f=$!
  PIDS+=($f)
  sleep "$secs"
  if [ "${CLOSE:-window}" = window ]; then
    # The user closes the window (what ends a session in mstsc too).
    local ids
    ids=$(ip netns exec rdpc env DISPLAY=:77 timeout 5 xdotool search --class xfreerdp 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && ip netns exec rdpc env DISPLAY=:77 timeout 5 /usr/bin/python3 "$HERE/wm-close.py" $ids || true
    sleep 2
  fi
  kill "$f" 2>/dev/null || true
  wait "$f" 2>/dev/null || true
  kill "$x" 2>/dev/null || true
  wait "$x" 2>/dev/null || true
}

cc -shared -fPIC -O2 -o "$WORK/linger0.so" "$HERE/linger0.c" -ldl
LINGER="LD_PRELOAD=$WORK/linger0.so"
cc -shared -fPIC -O2 -o "$WORK/keylog.so" "$HERE/keylog.c" -ldl -lssl
# The client's secrets go to OUT/NAME.keys (a fresh file per run).
keys() { rm -f "$OUT/$1.keys"; echo "RDPSIFT_KEYLOG=$OUT/$1.keys"; }

RUN_NO=0
for run in $RUNS; do
  echo "== $run"
  RUN_NO=$((RUN_NO + 1))
  setup
  case $run in
    xrdp-fin)
      start_xrdp
      capture "$OUT/lab-xrdp-fin.pcap"
      client 6 tls lab lab
      ;;
    xrdp-abortive)
      start_xrdp
      capture "$OUT/lab-xrdp-abortive.pcap"
      client 6 tls lab lab "$LINGER"
      ;;
    xrdp-killed)
      start_xrdp
      capture "$OUT/lab-xrdp-killed.pcap"
      # xrdp forks a process per connection: kill the newest child 5 s in.
      ( sleep 6; pkill -KILL -n -x xrdp || true ) &
      PIDS+=($!)
      client 10 tls lab lab
      ;;
    shadow-nla)
      start_shadow
      capture "$OUT/lab-shadow-nla.pcap"
      client 6 nla alice labpass1 "$LINGER"
      ;;
    shadow-nla-wrong)
      start_shadow
      capture "$OUT/lab-shadow-nla-wrong.pcap"
      client 6 nla alice wrongpass
      ;;
    krb-wrong-password)
      start_kdc
      start_shadow
      capture "$OUT/lab-krb-wrong-password.pcap"
      krb wrongpass kinit alice
      client 6 nla alice wrongpass
      ;;
    krb-tcp)
      # Kerberos over TCP (RFC 4120 §7.2.2, the 4-byte length prefix):
      # udp_preference_limit = 1 makes every request go over TCP.
      KRB_UDP_LIMIT=1 start_kdc
      start_shadow
      capture "$OUT/lab-krb-tcp.pcap"
      krb wrongpass kinit alice
      client 6 nla alice wrongpass
      ;;
    krb-errors)
      start_kdc
      start_shadow
      capture "$OUT/lab-krb-errors.pcap"
      krb whatever kinit nobody
      krb labpass1 kinit alice
      krb "" kvno "TERMSRV/$(hostname)"
      krb labpass1 faketime -f +600s kinit alice
      krb labpass2 kinit bob
      client 6 nla alice labpass1 "$LINGER"
      ;;
    keys-shadow-nla)
      start_shadow
      capture "$OUT/lab-keys-shadow-nla.pcap"
      client 6 nla alice labpass1 "LD_PRELOAD=$WORK/linger0.so $WORK/keylog.so" "$(keys lab-keys-shadow-nla)"
      ;;
    keys-shadow-nla-wrong)
      start_shadow
      capture "$OUT/lab-keys-shadow-nla-wrong.pcap"
      client 6 nla alice wrongpass "LD_PRELOAD=$WORK/keylog.so" "$(keys lab-keys-shadow-nla-wrong)"
      ;;
    keys-shadow-nla-unknown)
      start_shadow
      capture "$OUT/lab-keys-shadow-nla-unknown.pcap"
      client 6 nla mallory labpass1 "LD_PRELOAD=$WORK/keylog.so" "$(keys lab-keys-shadow-nla-unknown)"
      ;;
    keys-xrdp-fin)
      start_xrdp
      capture "$OUT/lab-keys-xrdp-fin.pcap"
      client 6 tls lab lab "LD_PRELOAD=$WORK/keylog.so" "$(keys lab-keys-xrdp-fin)"
      ;;
    *) echo "unknown run $run"; exit 2 ;;
  esac
  stop_capture
  stop_pids
done
echo "--- client log"; tail -5 "$WORK/client.log" 2>/dev/null || true
echo "--- krb log"; cat "$WORK/krb.log" 2>/dev/null || true
ls -l "$OUT"/lab-*.pcap
