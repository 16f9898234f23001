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

A second table asks whether a median ratio could be 1.00x by chance: how
many rounds stackd was ahead in, and a 95 % interval for the median
ratio from the rounds' order statistics (the binomial sign-test
interval: it assumes nothing about the ratios' spread, only that rounds
are independent). An interval that holds 1.00x means the rounds cannot
tell stackd from the peer.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from proxybench import SIZES, fmt_range  # noqa: E402


def pairs(paths):
    """{(conns, size, peer): [(rps ratio, CPU ratio, p99 ratio), ...]} over every round."""
    out = {}
    for path in paths:
        runs = json.load(open(path))["runs"]
        proxies = {r["proxy"] for r in runs} - {"stackd"}
        for conns, size in sorted({(r["conns"], r["path"]) for r in runs}):
            # Each proxy's runs in one scenario are stored in round order.
            here = [r for r in runs if r["conns"] == conns and r["path"] == size]
            ours = [r for r in here if r["proxy"] == "stackd"]
            for peer in sorted(proxies):
                theirs = [r for r in here if r["proxy"] == peer]
                out.setdefault((conns, SIZES[size], peer), []).extend(
                    (a["rps"] / b["rps"], a["us_per_req"] / b["us_per_req"], a["p99"] / b["p99"])
                    for a, b in zip(ours, theirs)
                )
            # The targets: the better peer of the round in each column.
            peers = [[r for r in here if r["proxy"] == p] for p in sorted(proxies & {"nginx", "haproxy"})]
            if peers:
                out.setdefault((conns, SIZES[size], "the better peer"), []).extend(
                    (a["rps"] / max(b["rps"] for b in rnd), a["us_per_req"] / min(b["us_per_req"] for b in rnd),
                     a["p99"] / min(b["p99"] for b in rnd))
                    for a, *rnd in zip(ours, *peers)
                )
    return out


def median_interval(xs, level=0.95):
    """The innermost pair of order statistics (x_k, x_(n+1-k)) that still
    holds the true median with at least `level`: the largest k with
    P(Binomial(n, 1/2) < k) <= (1 - level) / 2. None when even the lowest
    and highest round do not reach `level` (five rounds or fewer)."""
    xs = sorted(xs)
    n = len(xs)
    tail, k = 0.0, 0
    while k < n // 2:
        tail_next = tail + math.comb(n, k) / 2**n
        if tail_next > (1 - level) / 2:
            break
        tail, k = tail_next, k + 1
    if k == 0:
        return None
    return xs[k - 1], xs[n - k]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: paired.py REPORT.json [REPORT.json ...]")
    table = sorted(pairs(sys.argv[1:]).items())
    print("| conns | response | peer | rounds | requests/s | CPU per request | p99 |")
    print("|---|---|---|---|---|---|---|")
    for (conns, size, peer), rows in table:
        cols = [fmt_range([r[i] for r in rows], "{:.2f}x") for i in range(3)]
        print(f"| {conns} | {size} | {peer} | {len(rows)} | " + " | ".join(cols) + " |")
    print()
    print("| conns | response | peer | rounds | requests/s: ahead in, 95 % interval of the median | "
          "CPU per request: leaner in, interval |")
    print("|---|---|---|---|---|---|")
    for (conns, size, peer), rows in table:
        cells = []
        for i, better in ((0, lambda x: x > 1), (1, lambda x: x < 1)):
            xs = [r[i] for r in rows]
            span = median_interval(xs)
            shown = f"{span[0]:.2f}x–{span[1]:.2f}x" if span else "too few rounds"
            cells.append(f"{sum(map(better, xs))} of {len(xs)}, {shown}")
        print(f"| {conns} | {size} | {peer} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
