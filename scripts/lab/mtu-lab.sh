#!/usr/bin/env bash
# Real RDP across a path with a small MTU, captured for samples/ (not CI).
#
#   sudo scripts/lab/mtu-lab.sh OUTDIR        (Debian; run as root)
#
# Needs Debian packages: iproute2 iptables tcpdump ethtool xrdp freerdp2-x11
# xvfb python3. Builds three network namespaces joined by veth pairs, with
# addresses from the benchmarking range 198.18.0.0/15 (RFC 2544) only:
#
#   rdpc (client 198.18.1.2) -- rdpr (router 198.18.1.1 | 198.19.2.1) -- rdps (server 198.19.2.2)
#
# The router's port toward the client has MTU 1400; everything else 1500. Segmentation
# offloads are off on every veth, so the capture shows wire-size packets.
# xrdp (security_layer=tls, a 4096-bit RSA certificate so that the TLS
# server flight needs full-size segments) listens in rdps; FreeRDP's
# xfreerdp runs under Xvfb in rdpc. Three runs, each captured by tcpdump:
#
#   1. lab-blackhole.pcap: the router drops the ICMP "fragmentation needed"
#      it generates (its OUTPUT chain): the server's full-size segments are
#      resent and never arrive. Captured at the router's server-side port;
#      lab-blackhole-client.pcap is the same session captured on the client.
#   2. lab-icmp-frag-needed.pcap: the ICMP is allowed: PMTU discovery works.
#      Captured at the router's server-side port.
#   4. lab-security-mismatch.pcap: xrdp with security_layer=rdp, the client
#      with /sec:tls (x224.unrequested_protocol). See run 4 below.
#   3. lab-udp-blocked.pcap: MTU 1500 everywhere, the router drops UDP to
#      port 3389; a small sender (rdpeudp-syn.py, MS-RDPEUDP 2.2.2.5) emits
#      three RDPEUDP SYNs next to the TCP session (FreeRDP 2 has no UDP
#      transport). Captured at the router's client-side port.
#
# Every process is started with `timeout` and stopped by its PID; the
# namespaces are deleted at the end (also on error). Nothing leaves them.
set -euo pipefail
OUT=${1:?usage: mtu-lab.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/rdpsift-lab.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for n in rdpc rdpr rdps; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

C=198.18.1.2 RC=198.18.1.1 RS=198.19.2.1 S=198.19.2.2

setup() {
  local mtu_client_link=$1
  for n in rdpc rdpr rdps; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
  ip link add vc netns rdpc type veth peer name vrc netns rdpr
  ip link add vs netns rdps type veth peer name vrs netns rdpr
  ip -n rdpc addr add $C/24 dev vc
  ip -n rdpr addr add $RC/24 dev vrc
  ip -n rdpr addr add $RS/24 dev vrs
  ip -n rdps addr add $S/24 dev vs
  # Only the router's side of the client link is small: the client still
  # announces MSS 1460, so the server sends full-size segments that the
  # router cannot forward (the small link is in the middle of the path).
  ip -n rdpr link set vrc mtu "$mtu_client_link"
  for x in "rdpc vc" "rdpr vrc" "rdpr vrs" "rdps vs"; do
    set -- $x
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  done
  ip -n rdpc route add default via $RC
  ip -n rdps route add default via $RS
  ip netns exec rdpr sysctl -qw net.ipv4.ip_forward=1
  # PMTU discovery on (DF set) on both endpoints; no cached PMTU.
  for n in rdpc rdps; do ip netns exec "$n" sysctl -qw net.ipv4.ip_no_pmtu_disc=0; done
}

start_xrdp() { # [security_layer]
  local layer=${1:-tls}
  # A 4096-bit RSA certificate: ServerHello + Certificate + ServerKeyExchange
  # are larger than one segment.
  openssl req -x509 -newkey rsa:4096 -nodes -days 30 -subj "/CN=rdp-lab.example.test" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
  sed -e "s|^security_layer=.*|security_layer=$layer|" \
      -e "s|^certificate=.*|certificate=$WORK/cert.pem|" \
      -e "s|^key_file=.*|key_file=$WORK/key.pem|" \
      -e "s|^port=3389|port=tcp://$S:3389|" \
      /etc/xrdp/xrdp.ini > "$WORK/xrdp.ini"
  mkdir -p /run/xrdp/sockdir
  ip netns exec rdps timeout 120 xrdp --nodaemon --config "$WORK/xrdp.ini" >"$WORK/xrdp.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do
    ip netns exec rdps bash -c "exec 3<>/dev/tcp/$S/3389" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "xrdp did not start:"; cat "$WORK/xrdp.log"; return 1
}

capture() { # netns iface file
  ip netns exec "$1" timeout 60 tcpdump -i "$2" -s 0 -U -w "$3" \
    'tcp port 3389 or udp port 3389 or icmp' >/dev/null 2>&1 &
  CAP=$!
  PIDS+=($CAP)
  sleep 1
}

stop_capture() {
  sleep 1
  kill -INT "$CAP" 2>/dev/null || true
  wait "$CAP" 2>/dev/null || true
}

client() { # seconds [security]
  local sec=${2:-tls}
  ip netns exec rdpc timeout 60 Xvfb :77 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
  local x=$!
  PIDS+=($x)
  sleep 1
  ip netns exec rdpc env DISPLAY=:77 timeout "$1" xfreerdp /v:$S /u:lab /p:lab \
    /cert:ignore /sec:$sec /log-level:ERROR >"$WORK/client.log" 2>&1 || true
  kill "$x" 2>/dev/null || true
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  PIDS=()
}

# 1. Black hole: MTU 1400 toward the client, the router's ICMP dropped.
setup 1400
ip netns exec rdpr iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP
start_xrdp
# The client's own view too: holes that are never filled, no ICMP.
capture rdpc vc "$OUT/lab-blackhole-client.pcap"
CLIENT_CAP=$CAP
capture rdpr vrs "$OUT/lab-blackhole.pcap"
client 15
kill -INT "$CLIENT_CAP" 2>/dev/null || true
stop_capture
stop_all

# 2. The same path with the ICMP allowed.
setup 1400
start_xrdp
capture rdpr vrs "$OUT/lab-icmp-frag-needed.pcap"
client 8
stop_capture
stop_all

# 3. UDP 3389 dropped by the router; RDPEUDP SYNs beside the TCP session.
setup 1500
ip netns exec rdpr iptables -A FORWARD -p udp --dport 3389 -j DROP
start_xrdp
capture rdpr vrc "$OUT/lab-udp-blocked.pcap"
( sleep 2; ip netns exec rdpc timeout 20 python3 "$HERE/rdpeudp-syn.py" $S 3389 ) &
PIDS+=($!)
client 10
sleep 1
stop_capture
stop_all
# 4. Security-layer mismatch: xrdp allows only Standard RDP Security, the
#    client insists on TLS. xrdp 0.9 answers with RDP_NEG_RSP selecting RDP
#    (not RDP_NEG_FAILURE, PROTOCOLS.md §7) and the client hangs up.
setup 1500
start_xrdp rdp
capture rdpr vrs "$OUT/lab-security-mismatch.pcap"
client 8 tls
stop_capture
stop_all
ls -l "$OUT"/lab-*.pcap
