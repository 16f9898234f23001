#!/usr/bin/env bash
# CPU per request by function (kernel and user space), stackd against
# nginx or another build, in alternating rounds under wrk: where one proxy
# spends what another does not.
#
#   bench/symbols.sh                                     stackd and nginx, 1,000 connections
#   bench/symbols.sh --proxies stackd,stackd-alt --stackd-alt /tmp/stackd-old
#   bench/symbols.sh --conns 64 --rounds 4
#   bench/symbols.sh --conns 64 --json /tmp/at64.json    every function, for comparing runs
#
# Needs perf (linux-perf), wrk and nginx; builds stackd in release mode
# unless STACKD names a binary. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v perf >/dev/null || need+=(linux-perf)
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -z "${STACKD:-}" ]; then
  cargo build --release -p stackd >/dev/null
  STACKD=target/release/stackd
fi
exec python3 bench/lib/symbols.py --stackd "$STACKD" "$@"
