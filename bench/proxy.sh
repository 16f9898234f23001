#!/usr/bin/env bash
# Benchmarks `stackd proxy` against nginx and HAProxy on loopback, in the same
# run, alternating A B C, B C A, C A B so drift on a shared machine hits all
# three, at 64, 256 and 1,000 connections (and 1 MiB responses at 64), each
# proxy as its users run it: nginx 2 workers with `keepalive 1024`, HAProxy
# `nbthread 2` with `http-reuse always`, stackd with its default config.
#
#   bench/proxy.sh                 full run (about 12 minutes)
#   ROUNDS=1 DURATION=5 bench/proxy.sh   quick look
#   PGO=0 bench/proxy.sh           the plain release build, not the packaged one
#   CONNS= BIG=0 CHUNKED=1 bench/proxy.sh 1 MiB responses in 8 KiB chunks only
#   CONNS= BIG=0 UPLOAD=1 bench/proxy.sh  uploads of 64 KiB in 4 KiB chunks only
#   CONNS=256 PROXIES=stackd,stackd-alt bench/proxy.sh --stackd-alt /tmp/old-stackd
#                                  two stackd builds in one alternating run
#
# Installs nginx, haproxy and wrk from Debian when missing, builds stackd as
# the package does (scripts/pgo, about six minutes the first time), and
# writes a Markdown report to bench/out/ (and stdout).
# Not part of CI: benchmarks are not tests.
# Idle-connection memory: 10,000 connections (IDLE_CONNS). This workplace
# caps a process at 20,000 open files and HAProxy reserves two per
# connection (client and server side) when it sizes maxconn, so HAProxy is
# measured with 9,980 (maxconn 9990); its per-connection figure is what counts.
# Results also go to bench/out/proxy-*.json; bench/plot.py draws them.
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
# stackd as the package ships it: built with profile-guided optimisation
# (scripts/pgo). PGO=0 measures the plain release build instead.
if [ "${PGO:-1}" = 1 ]; then
  ./scripts/pgo >/dev/null
  stackd=(--stackd target/pgo/release/stackd --stackd-build "profile-guided, scripts/pgo")
else
  cargo build --release -p stackd >/dev/null
  stackd=(--stackd target/release/stackd --stackd-build "plain release build, PGO=0")
fi
mkdir -p bench/out
exec python3 bench/lib/proxybench.py "${stackd[@]}" --out bench/out "$@"
