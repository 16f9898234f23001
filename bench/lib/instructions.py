#!/usr/bin/env python3
"""User-space instructions per proxied request, for bench/instructions.sh.

Runs each stackd build under callgrind with its default config in front of
the two nginx backends bench/proxy.sh uses, warms it up, zeroes the
counters, loads it with `wrk -c16` and divides the instructions executed
by the requests served. Unlike requests/s or task-clock on this shared
machine, the figure hardly moves from run to run (about ±0.2 %), so a
change of 1 % in our own code shows; the kernel's share (loopback TCP,
most of a request's CPU) is not in it. `--top N` also lists the functions
that cost the most per request.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import proxybench as pb  # noqa: E402


def measure(binary, label, wd, bports, args):
    port = pb.free_port()
    conf = pb.stackd_conf(wd, label, port, bports, "")
    out = os.path.join(wd, f"cg.{label}")
    p = pb.Proc(label, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                        binary, "proxy", "--config", conf], wd, dict(os.environ, RUST_LOG="warn"))
    try:
        if not pb.wait_port(port, timeout=60):
            sys.exit(f"{label} did not start; see {wd}/{label}.log")
        pb.wrk(port, "/", args.conns, 3)
        subprocess.run(["callgrind_control", "-z", str(p.p.pid)], check=True, capture_output=True)
        r = pb.wrk(port, "/", args.conns, args.duration)
        subprocess.run(["callgrind_control", "-d", str(p.p.pid)], check=True, capture_output=True)
        time.sleep(1)
    finally:
        p.stop()
    dump = f"{out}.{p.p.pid}.1"
    text = subprocess.run(["callgrind_annotate", "--tree=none", "--auto=no", "--threshold=100", dump],
                          capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
    funcs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r" \[[^\]]+\]$", "", m.group(2)).split(":", 1)[-1]
        if not name.startswith(("clone", "start_thread", "<std::sys::thread", "core::ops::function::FnOnce::call_once{{vtable")):
            funcs[name] += int(m.group(1).replace(",", ""))
    return total / max(r["requests"], 1), r["requests"], funcs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+", help="stackd builds (label=path or path)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--top", type=int, default=0)
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (apt-get install valgrind nginx-light wrk)")
    builds = [b.split("=", 1) if "=" in b else (os.path.basename(b), b) for b in args.binaries]
    wd = tempfile.mkdtemp(prefix="stackd-instructions-")
    os.chmod(wd, 0o755)
    backend, bports = pb.start_backends(wd)
    results = collections.defaultdict(list)
    last = {}
    try:
        for _ in range(args.rounds):
            for label, path in builds:
                per, n, funcs = measure(path, label, wd, bports, args)
                results[label].append(per)
                last[label] = (n, funcs)
                print(f"{label}: {per:,.0f} instructions per request ({n} requests)", file=sys.stderr)
    finally:
        backend.stop()
    print(f"\n| build | user-space instructions per request (median of {args.rounds}) | vs first |")
    print("|---|---|---|")
    base = None
    for label, _ in builds:
        v = sorted(results[label])[len(results[label]) // 2]
        base = base or v
        print(f"| {label} | {v:,.0f} | {v / base:.3f}x |")
    for label, _ in builds if args.top else []:
        n, funcs = last[label]
        print(f"\n{label}: top {args.top} functions, instructions per request (self)")
        for name, c in funcs.most_common(args.top):
            print(f"{c / n:8.0f}  {name[:140]}")
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
