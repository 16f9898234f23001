#!/usr/bin/env python3
"""stackd against each peer, round by round, from bench/proxy.sh reports.

    python3 bench/paired.py docs/bench/proxy-20261127-0155.json [more.json ...]

The report's ratios divide medians taken over the rounds. On a shared
machine whose speed drifts by 20 % within minutes, a slow minute that
catches one proxy's run moves its median and every ratio with it. Here
each round's stackd run is divided by the same round's peer run (the
rounds alternate the order, so they ran minutes apart at most), and the
median of those ratios is printed, with their lowest and highest.
Given several reports, their rounds are pooled: more pairs, same question.
"the better peer" divides by the round's best of nginx and HAProxy in
each column (the issue's targets: requests/s at least the better peer's,
CPU per request and p99 at most).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from proxybench import fmt_range  # noqa: E402


def pairs(paths):
    """{(conns, peer): [(rps ratio, CPU ratio, p99 ratio), ...]} over every round."""
    out = {}
    for path in paths:
        runs = [r for r in json.load(open(path))["runs"] if r["path"] == "/"]
        proxies = {r["proxy"] for r in runs} - {"stackd"}
        for conns in sorted({r["conns"] for r in runs}):
            # Each proxy's runs at one concurrency are stored in round order.
            ours = [r for r in runs if r["conns"] == conns and r["proxy"] == "stackd"]
            for peer in sorted(proxies):
                theirs = [r for r in runs if r["conns"] == conns and r["proxy"] == peer]
                out.setdefault((conns, peer), []).extend(
                    (a["rps"] / b["rps"], a["us_per_req"] / b["us_per_req"], a["p99"] / b["p99"])
                    for a, b in zip(ours, theirs)
                )
            # The targets: the better peer of the round in each column.
            peers = [[r for r in runs if r["conns"] == conns and r["proxy"] == p]
                     for p in sorted(proxies & {"nginx", "haproxy"})]
            if peers:
                out.setdefault((conns, "the better peer"), []).extend(
                    (a["rps"] / max(b["rps"] for b in rnd), a["us_per_req"] / min(b["us_per_req"] for b in rnd),
                     a["p99"] / min(b["p99"] for b in rnd))
                    for a, *rnd in zip(ours, *peers)
                )
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: paired.py REPORT.json [REPORT.json ...]")
    print("| conns | peer | rounds | requests/s | CPU per request | p99 |")
    print("|---|---|---|---|---|---|")
    for (conns, peer), rows in sorted(pairs(sys.argv[1:]).items()):
        cols = [fmt_range([r[i] for r in rows], "{:.2f}x") for i in range(3)]
        print(f"| {conns} | {peer} | {len(rows)} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
