#!/usr/bin/env bash
# User-space instructions per proxied request (callgrind), for A/B runs of
# our own code that this noisy machine's requests/s cannot resolve.
#
#   bench/instructions.sh                         the working tree's build
#   bench/instructions.sh old=/tmp/stackd-old new=target/release/stackd --top 30
#
# Default config, two nginx backends, wrk -c16 for 8 s under valgrind. The
# kernel's share of a request is not in the figure. Not part of CI.
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
  cargo build --release -p stackd >/dev/null
  set -- "stackd=target/release/stackd" "$@"
fi
exec python3 bench/lib/instructions.py "$@"
