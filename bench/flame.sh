#!/usr/bin/env bash
# Flame graph (SVG) of stackd's hot path under wrk, default config.
#
#   bench/flame.sh docs/bench/flame-after.svg            64 connections
#   CONNS=1000 bench/flame.sh /tmp/f.svg --title "..."   more connections
#   STACKD=/tmp/stackd-old bench/flame.sh /tmp/old.svg   another build
#
# Needs perf (linux-perf) and inferno (`cargo install inferno`); builds
# stackd in release mode unless STACKD names a binary. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/flame.sh OUT.svg [--title T] [--stackd-conf LINE]" >&2; exit 64; }
out=$1; shift
command -v perf >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
command -v inferno-flamegraph >/dev/null || cargo install inferno --no-default-features --features cli
if [ -z "${STACKD:-}" ]; then
  cargo build --release -p stackd >/dev/null
  STACKD=target/release/stackd
fi
exec python3 bench/lib/flame.py --stackd "$STACKD" --svg "$out" --conns "${CONNS:-64}" "$@"
