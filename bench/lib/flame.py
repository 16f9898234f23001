#!/usr/bin/env python3
"""Flame graph of stackd's hot path, for bench/flame.sh.

Starts the two nginx backends and stackd with its default config (as
bench/proxy.sh does), loads it with wrk, records stackd with
`perf record --call-graph dwarf`, and folds the samples into an SVG with
inferno (`cargo install inferno`). Also prints the top functions by
self time, so a profile can be read without opening the SVG.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import proxybench as pb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackd", required=True)
    ap.add_argument("--proxy", default="stackd", help="stackd, nginx or haproxy")
    ap.add_argument("--haproxy-maxconn", type=int, default=9990)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--title", default="stackd proxy")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--freq", type=int, default=499)
    ap.add_argument("--folded", help="also keep the folded stacks here (large)")
    ap.add_argument("--stackd-conf", action="append", default=[])
    args = ap.parse_args()
    for tool in ("perf", "inferno-collapse-perf", "inferno-flamegraph", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (perf: linux-perf; inferno: cargo install inferno)")
    wd = tempfile.mkdtemp(prefix="stackd-flame-")
    os.chmod(wd, 0o755)
    backend, bports = pb.start_backends(wd)
    port = pb.free_port()
    p = pb.start_proxy(args.proxy, wd, port, bports, args)
    try:
        if p is None:
            sys.exit(f"{args.proxy} did not start; see {wd}/{args.proxy}.log")
        pb.wrk(port, "/", args.conns, 1)
        data = os.path.join(wd, "perf.data")
        r = pb.perf_record(p, port, args.conns, args.duration, data, args.freq,
                           ["--call-graph", "dwarf,32768"])
        print(f"{r['rps']:.0f} req/s while recording", file=sys.stderr)
    finally:
        if p:
            p.stop()
        backend.stop()
    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, check=True).stdout
    folded = subprocess.run(["inferno-collapse-perf"], input=script, capture_output=True, check=True).stdout
    svg = subprocess.run(
        ["inferno-flamegraph", "--title", args.title, "--minwidth", "0.2"],
        input=folded, capture_output=True, check=True,
    ).stdout
    with open(args.svg, "wb") as f:
        f.write(svg)
    if args.folded:
        with open(args.folded, "wb") as f:
            f.write(folded)
    dso = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
        capture_output=True, text=True,
    ).stdout
    print("\n".join(l for l in dso.splitlines() if l and not l.startswith("#")))
    top = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "-g", "none",
         "--percent-limit", "0.7"],
        capture_output=True, text=True,
    ).stdout
    print("\n".join(l for l in top.splitlines() if l and not l.startswith("#")))
    shutil.rmtree(wd, ignore_errors=True)
    print(f"flame graph: {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
