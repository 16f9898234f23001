#!/usr/bin/env bash
# User-space instructions per proxied request (callgrind), for A/B runs of
# our own code that this noisy machine's requests/s cannot resolve.
#
#   bench/instructions.sh                         the working tree's build
#   bench/instructions.sh old=/tmp/stackd-old new=target/release/stackd --top 30
#   bench/instructions.sh --cache --conns 1000    L2 misses per request too
#   bench/instructions.sh stackd=target/release/stackd nginx   against nginx
#   bench/instructions.sh --branches              mispredicted branches too (callgrind's model)
#
# Default config, two nginx backends, wrk -c16 for 8 s under valgrind. The
# kernel's share of a request is not in the figure. With --cache the
# working tree is built with --cfg stackd_no_park into target/no-park
# (binaries given for an A/B must be built the same way; see
# bench/lib/instructions.py). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ $# -eq 0 ] || [[ $1 == --* ]]; then
  if [[ " $* " == *" --cache "* ]]; then
    RUSTFLAGS="--cfg stackd_no_park" CARGO_TARGET_DIR=target/no-park cargo build --release -p stackd >/dev/null
    set -- "stackd=target/no-park/release/stackd" "$@"
  else
    cargo build --release -p stackd >/dev/null
    set -- "stackd=target/release/stackd" "$@"
  fi
fi
exec python3 bench/lib/instructions.py "$@"
