#!/usr/bin/env bash
# Client-visible VIP unavailability: stackd ha vs keepalived, same settings.
#
#   sudo bench/failover.sh            # REPEAT=5 (v3) / REPEAT_V2=3 runs per case
#   REPEAT=10 REPEAT_V2=5 STACKD=target/release/stackd bench/failover.sh
#
# Lab: namespaces px1 (.133, priority 100), px2 (.135, priority 99), cl (.10)
# on a bridge, VIP 192.0.2.88. Each px runs a tiny TCP/HTTP service on :18080.
# The client connects to VIP:18080 every 2 ms (10 ms timeout); unavailability
# is the longest gap between two successful connects around the event.
#
# Cases (each on a fresh pair of daemons):
#   crash   : host death of the master = kill -9 the daemon + px1 eth0 down
#   term    : planned switchover = SIGTERM the master's daemon
#   track   : the master's tracked service dies (HTTP check, 1 s interval,
#             fall 2, weight 0 -> FAULT), the VIP must move
# Settings: v2 = VRRPv2, PASS auth, advert 1 s; v3 = VRRPv3, advert 100 ms.
# Needs root, iproute2, perl, curl, keepalived. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
STACKD=${STACKD:-target/debug/stackd}
REPEAT=${REPEAT:-5}
REPEAT_V2=${REPEAT_V2:-3}
[ -x "$STACKD" ] || cargo build -q -p stackd
P="fb$$-"
W=$(mktemp -d)
VIP=192.0.2.88
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for n in px1 px2 cl br; do
    for p in $(ip netns pids "$P$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$P$n" 2>/dev/null || true
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "${P}br"
ip -n "${P}br" link add br0 type bridge
ip -n "${P}br" link set br0 type bridge forward_delay 0 mcast_snooping 0
ip -n "${P}br" link set br0 up
for h in px1:133 px2:135 cl:10; do
  n=${h%%:*}
  ip netns add "$P$n"
  ip -n "${P}br" link add "v$n" type veth peer name eth0 netns "$P$n"
  ip -n "${P}br" link set "v$n" master br0 up
  ip -n "$P$n" addr add "192.0.2.${h#*:}/24" dev eth0
  ip -n "$P$n" link set eth0 up
  ip -n "$P$n" link set lo up
done
nsx() { local n=$1; shift; ip netns exec "$P$n" "$@"; }
has_vip() { ip -n "$P$1" -4 -o addr show dev eth0 | grep -q "$VIP/"; }

SERVICE='use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0:18080", Listen => 64, ReuseAddr => 1) or die; while (my $c = $s->accept) { $c->syswrite("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"); close $c }'
# Prints the longest gap (ms) between successful connects during $1 seconds.
PROBE='use IO::Socket::INET; use Time::HiRes qw(time sleep); my ($dur) = @ARGV; my $end = time + $dur; my ($last, $gap) = (time, 0);
while (time < $end) { my $c = IO::Socket::INET->new(PeerAddr => "192.0.2.88:18080", Timeout => 0.01); my $t = time;
  if ($c) { close $c; $gap = $t - $last if $t - $last > $gap; $last = $t; } sleep 0.002; }
printf "%.0f\n", $gap * 1000;'

declare -A SVC
start_services() { for n in px1 px2; do ip netns exec "$P$n" perl -e "$SERVICE" & SVC[$n]=$!; PIDS+=("${SVC[$n]}"); done; }

ha_conf() { # prio version
  local int=100ms auth=""
  [ "$2" = 2 ] && int=1s && auth='auth_pass = "1111"'
  cat <<EOT
[[ha.instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $1
advert_int = "$int"
version = $2
$auth
virtual_ipaddress = ["$VIP/24"]
track = [ { http = "http://127.0.0.1:18080/", interval = "1s", timeout = "500ms", fall = 2, rise = 2, weight = 0 } ]
EOT
}
k_conf() { # prio version
  local int=0.1 auth=""
  [ "$2" = 2 ] && int=1 && auth="authentication { auth_type PASS
 auth_pass 1111 }"
  cat <<EOT
global_defs { vrrp_version $2
 script_user root
 enable_script_security }
vrrp_script chk { script "/usr/bin/curl -sf -m 0.5 http://127.0.0.1:18080/"
 interval 1
 timeout 1
 fall 2
 rise 2
 weight 0 }
vrrp_instance VI_1 { state BACKUP
 interface eth0
 virtual_router_id 51
 priority $1
 advert_int $int
 $auth
 virtual_ipaddress { $VIP/24 }
 track_script { chk } }
EOT
}

declare -A DPID
start_daemon() { # impl host prio version
  local impl=$1 n=$2
  if [ "$impl" = stackd ]; then
    ha_conf "$3" "$4" > "$W/$n.toml"
    ip netns exec "$P$n" "$STACKD" --log-level warn ha --config "$W/$n.toml" >"$W/$n.log" 2>&1 &
  else
    k_conf "$3" "$4" > "$W/$n.conf"
    ip netns exec "$P$n" keepalived -n -l --vrrp -f "$W/$n.conf" -p "$W/$n.p" -r "$W/$n.r" -c "$W/$n.c" >"$W/$n.log" 2>&1 &
  fi
  DPID[$n]=$!; PIDS+=("${DPID[$n]}")
}
stop_all() {
  for n in px1 px2; do
    kill -9 "${DPID[$n]}" 2>/dev/null || true
    for p in $(ip netns pids "$P$n"); do kill -9 "$p" 2>/dev/null || true; done
    ip -n "$P$n" link set eth0 up
    ip -n "$P$n" addr del "$VIP/24" dev eth0 2>/dev/null || true
  done
  rm -f "$W"/*.p "$W"/*.r "$W"/*.c
  sleep 0.3
}
wait_until() { # seconds, command...
  local t=$1; shift
  for _ in $(seq 1 $((t * 50))); do "$@" && return 0; sleep 0.02; done
  return 1
}
px1_master() { has_vip px1 && ! has_vip px2; }

run_once() { # impl version case -> prints ms or FAIL
  local impl=$1 v=$2 case=$3 window
  start_services
  start_daemon "$impl" px2 99 "$v"
  start_daemon "$impl" px1 100 "$v"
  if ! wait_until 20 px1_master; then echo "no initial master ($impl v$v $case)" >&2; echo FAIL; stop_all; return; fi
  sleep 2
  # Fresh ARP on the client: an entry updated less than locktime (1 s) ago
  # ignores gratuitous ARP, so startup flapping could leave it stale.
  ip -n "${P}cl" neigh flush all
  window=$([ "$v" = 2 ] && echo 7 || echo 4)
  nsx cl perl -e "$PROBE" "$window" > "$W/gap" &
  local probe=$!
  # More than ARP locktime (1 s) after the client resolved the VIP, so the
  # gratuitous ARP of the new master is not ignored.
  # Random phase against the advert timer, so neither side is favoured by the
  # moment of the trigger (outage = Master_Down_Interval - time since last advert).
  sleep "$(awk -v r="$RANDOM" -v v="$v" 'BEGIN { printf "%.3f", 1.2 + (v == 2 ? 1 : 0.1) * r / 32768 }')"
  px1_master || echo "warning: px1 lost the VIP before the trigger ($impl v$v $case)" >&2
  case $case in
    # Link first, so nothing (not even a dying daemon's priority-0 advert) leaves the host.
    crash) ip -n "${P}px1" link set eth0 down
           for p in $(ip netns pids "${P}px1"); do [ "$p" = "${SVC[px1]}" ] || kill -9 "$p" 2>/dev/null || true; done ;;
    term)  kill -TERM "${DPID[px1]}" ;;
    track) kill -9 "${SVC[px1]}" || echo "warning: the tracked service was not running ($impl v$v $case)" >&2 ;;
  esac
  wait "$probe" || true
  [ "$case" = crash ] || ! has_vip px1 || echo "warning: px1 still holds the VIP after the window ($impl v$v $case)" >&2
  if has_vip px2; then cat "$W/gap"; else echo "px2 never took the VIP ($impl v$v $case)" >&2; tail -n 5 "$W/px1.log" "$W/px2.log" >&2; echo FAIL; fi
  stop_all
}

stats() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} printf "min %4d  median %4d  max %4d  (n=%d)", a[1], a[int((NR+1)/2)], a[NR], NR}'; }

echo "# client-visible unavailability of $VIP:18080 in ms (lower is better)"
for v in ${VERSIONS:-3 2}; do
  n=$([ "$v" = 2 ] && echo "$REPEAT_V2" || echo "$REPEAT")
  for case in ${CASES:-crash term track}; do
    for impl in stackd keepalived; do
      res=()
      for _ in $(seq 1 "$n"); do res+=("$(run_once "$impl" "$v" "$case")"); done
      fails=$(printf '%s\n' "${res[@]}" | grep -c FAIL || true)
      line=$( (printf '%s\n' "${res[@]}" | grep -v FAIL || true) | stats)
      printf "v%s %-5s %-10s %s%s\n" "$v" "$case" "$impl" "$line" "$([ "$fails" = 0 ] || echo "  FAILED $fails")"
    done
  done
done
