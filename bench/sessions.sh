#!/usr/bin/env bash
# Session load+save cost of `stackd demo-backend` against one Redis, next to
# redis-benchmark's SET/GET on the same Redis in the same run (the ceiling).
#
#   bench/sessions.sh [DURATION_SECS] [CONNECTIONS]      default: 10 s, 32 connections
#
# Starts its own redis-server and demo backend on free loopback ports and
# stops both on exit. Needs redis-server, redis-tools and wrk (installed with
# apt-get when missing) and builds the release binary when it is missing.
# Not part of CI: figures depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
CONNS="${2:-32}"
THREADS=2

# --- tools -------------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
BIN=target/release/stackd
if [ ! -x "$BIN" ]; then
  echo "==> cargo build --release --bin stackd"
  cargo build --release --bin stackd
fi

# --- processes (killed by PID on exit) ------------------------------------------
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  # Ask the kernel for an ephemeral port.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # wait_for DESCRIPTION COMMAND...
  local what="$1"; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for $what" >&2; exit 1
}

RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_for "redis-server" redis-cli -p "$RPORT" ping

BPORT="$(free_port)"
RUST_LOG=warn "$BIN" demo-backend --listen "127.0.0.1:$BPORT" --node-id bench1 \
  --redis "redis://127.0.0.1:$RPORT/" --session-ttl 1800s >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_for "demo backend" curl -fsS "http://127.0.0.1:$BPORT/healthz"

# One session, reused by every request (its cookie comes from the first answer).
COOKIE="$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$BPORT/session" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | tr -d '\r')"
[ -n "$COOKIE" ] || { echo "no session cookie from /session" >&2; exit 1; }

# --- measurements ----------------------------------------------------------------
run_wrk() { # run_wrk PATH [COOKIE] -> "req/s avg p99"
  local args=(-t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
  [ -n "${2:-}" ] && args+=(-H "Cookie: $2")
  wrk "${args[@]}" "http://127.0.0.1:$BPORT$1" >"$WORK/wrk.txt"
  local rps avg p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  avg=$(awk '/^ +Latency/ {print $2; exit}' "$WORK/wrk.txt")
  p99=$(awk '/^ +99%/ {print $2}' "$WORK/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")
  [ -z "$non2xx" ] || { echo "$1: $non2xx non-2xx answers" >&2; cat "$WORK/wrk.txt" >&2; exit 1; }
  total=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  echo "$rps $avg $p99 $total"
}

echo "==> ${DURATION}s per run, $CONNS connections, wrk -t$THREADS (machine: $(nproc) cores)"
read -r E_RPS E_AVG E_P99 _ < <(run_wrk /echo)
read -r S_RPS S_AVG S_P99 S_TOTAL < <(run_wrk /session "$COOKIE")
VISITS="$(curl -fsS -H "Cookie: $COOKIE" "http://127.0.0.1:$BPORT/session" | sed -n 's/.*"visits":\([0-9]*\).*/\1/p')"

# redis-benchmark: same Redis, same connection count, pipelining off (like the backend).
REQS=$(( ${S_RPS%.*} * DURATION * 2 + 100000 ))
redis-benchmark -p "$RPORT" -c "$CONNS" -n "$REQS" -t set,get -q --csv >"$WORK/rb.csv"
rb() { awk -F'","' -v t="$1" '$1 == "\"" t {print $2}' "$WORK/rb.csv"; }
rb_avg() { awk -F'","' -v t="$1" '$1 == "\"" t {print $3}' "$WORK/rb.csv"; }
rb_p99() { awk -F'","' -v t="$1" '$1 == "\"" t {print $7}' "$WORK/rb.csv"; }

echo
printf '%-46s %12s %10s %10s\n' "what (one request each)" "req/s" "avg" "p99"
printf '%-46s %12s %10s %10s\n' "GET /echo (HTTP only, no Redis)" "$E_RPS" "$E_AVG" "$E_P99"
printf '%-46s %12s %10s %10s\n' "GET /session (load+EXPIRE, HINCRBY save: 2 RTT)" "$S_RPS" "$S_AVG" "$S_P99"
printf '%-46s %12s %10s %10s\n' "redis-benchmark SET (ceiling)" "$(rb SET)" "$(rb_avg SET)ms" "$(rb_p99 SET)ms"
printf '%-46s %12s %10s %10s\n' "redis-benchmark GET (ceiling)" "$(rb GET)" "$(rb_avg GET)ms" "$(rb_p99 GET)ms"
echo
# 1 (cookie fetch) + every answered wrk request + the final check; wrk does not
# count requests still in flight when it stops, so there may be a few more.
if [ "$VISITS" -ge $((S_TOTAL + 2)) ]; then
  echo "visits on the benchmarked session: $VISITS >= 2 + $S_TOTAL answered /session requests: no increment lost"
else
  echo "LOST INCREMENTS: visits $VISITS < 2 + $S_TOTAL answered requests" >&2; exit 1
fi
