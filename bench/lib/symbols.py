#!/usr/bin/env python3
"""CPU per request by function, proxy against proxy, for bench/symbols.sh.

Runs each proxy in turn (alternating, `--rounds` times) behind the two
nginx backends of bench/proxy.sh, loads it with wrk, samples it with
`perf record` (no call graphs: cheap enough not to move the figures), and
divides each function's samples by the requests served. What one proxy
spends per request that another does not shows up as a row with a large
difference, in the kernel as in user space, where a profile of one proxy
alone only says what is big.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import proxybench as pb  # noqa: E402


def samples(data):
    """{(dso, symbol): samples} of one recording; every stackd binary is
    the dso "stackd", so that two builds' functions line up."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
         "-F", "sample,dso,sym", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    got = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 2)
        if line.startswith("#") or len(parts) < 3 or not parts[0].isdigit():
            continue
        dso = "stackd" if parts[1].startswith("stackd") else parts[1]
        got[(dso, parts[2].strip())] += int(parts[0])
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackd", required=True)
    ap.add_argument("--stackd-alt", help="another stackd binary, run as the proxy 'stackd-alt'")
    ap.add_argument("--proxies", default="stackd,nginx", help="stackd, stackd-alt, nginx, haproxy")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--freq", type=int, default=1999)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--json", help="also write every function's ns per request, by proxy, to this file "
                    "(to set runs side by side, say at 64 and at 1,000 connections)")
    args = ap.parse_args()
    for tool in ("perf", "wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing")
    kinds = args.proxies.split(",")
    wd = tempfile.mkdtemp(prefix="stackd-symbols-")
    os.chmod(wd, 0o755)
    backend, bports = pb.start_backends(wd)
    got = {k: collections.Counter() for k in kinds}
    served = collections.Counter()
    try:
        for rnd in range(args.rounds):
            for kind in kinds:
                port = pb.free_port()
                p = pb.start_proxy(kind, wd, port, bports, args)
                if p is None:
                    sys.exit(f"{kind} did not start; see {wd}/{kind}.log")
                try:
                    pb.wrk(port, "/", args.conns, 2)
                    data = os.path.join(wd, "perf.data")
                    r = pb.perf_record(p, port, args.conns, args.duration, data, args.freq)
                finally:
                    p.stop()
                got[kind] += samples(data)
                served[kind] += r["requests"]
                print(f"round {rnd + 1}/{args.rounds} {kind}: {r['rps']:.0f} requests/s",
                      file=sys.stderr)
    finally:
        backend.stop()

    def ns(kind, n):
        return n / args.freq / max(served[kind], 1) * 1e9

    print(f"# CPU per request by function, ns (perf samples at {args.freq} Hz over the "
          f"requests served), {args.conns} connections, {args.rounds} rounds of {args.duration} s")
    for k in kinds:
        total = sum(got[k].values())
        kern = sum(v for (dso, _), v in got[k].items() if "kernel" in dso)
        print(f"{k}: {ns(k, total):.0f} in all, {ns(k, kern):.0f} in the kernel, "
              f"{ns(k, total - kern):.0f} in user space")
    keys = set().union(*(got[k].keys() for k in kinds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {f"{dso}|{sym}": ns(k, v) for (dso, sym), v in got[k].items()} for k in kinds}, f)
    rows = sorted(keys, key=lambda key: -max(abs(ns(kinds[0], got[kinds[0]][key]) - ns(k, got[k][key]))
                                              for k in kinds))
    print("| function | " + " | ".join(kinds) + " | first minus last |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for key in rows[:args.top]:
        vals = [ns(k, got[k][key]) for k in kinds]
        print(f"| `{key[1][:60]}` | " + " | ".join(f"{v:.0f}" for v in vals) + f" | {vals[0] - vals[-1]:+.0f} |")
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
