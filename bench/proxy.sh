#!/usr/bin/env bash
# Benchmarks `stackd proxy` against nginx and HAProxy on loopback, in the same
# run, alternating A B C A B C so drift on a shared machine hits all three.
#
#   bench/proxy.sh                 full run (about 10 minutes)
#   ROUNDS=1 DURATION=5 bench/proxy.sh   quick look
#
# Installs nginx, haproxy and wrk from Debian when missing, builds stackd in
# release mode, and writes a Markdown report to bench/out/ (and stdout).
# Not part of CI: benchmarks are not tests.
# Idle-connection memory uses 9,000 connections (IDLE_CONNS) because this
# workplace caps open files at 20,000 per process and HAProxy needs two per
# client connection.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
fi
cargo build --release -p stackd >/dev/null
mkdir -p bench/out
exec python3 bench/lib/proxybench.py --stackd target/release/stackd --out bench/out "$@"
