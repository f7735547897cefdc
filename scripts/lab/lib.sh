# Shared by the lab scripts (sourced, not run): stopping what a run
# started, two network namespaces joined by a veth pair, waiting for a port,
# xrdp on one address. The caller keeps the PIDs it starts in PIDS and its
# scratch directory in WORK.

# Stops every process in PIDS (TERM, then KILL half a second later).
stop_pids() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
}

# Two fresh namespaces joined by a veth pair, both ends and loopback up,
# offloads off (frames as the wire carries them): client-ns client-if
# server-ns server-if. Addresses are the caller's.
veth_pair() {
  for n in "$1" "$3"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  for x in "$1 $2" "$3 $4"; do
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

# xrdp in namespace rdps on ADDR:3389 with TLS security and the given
# certificate; its PID in XRDP (and PIDS): addr cert key.
run_xrdp() {
  sed -e "s|^security_layer=.*|security_layer=tls|" \
      -e "s|^certificate=.*|certificate=$2|" \
      -e "s|^key_file=.*|key_file=$3|" \
      -e "s|^port=3389|port=tcp://$1:3389|" \
      /etc/xrdp/xrdp.ini > "$WORK/xrdp.ini"
  mkdir -p /run/xrdp/sockdir
  ip netns exec rdps timeout 120 xrdp --nodaemon --config "$WORK/xrdp.ini" >"$WORK/xrdp.log" 2>&1 &
  XRDP=$!
  PIDS+=($XRDP)
  wait_port rdps "$1" 3389 "$WORK/xrdp.log"
}
