#!/usr/bin/env python3
"""Draws bench/proxy.sh results: requests/s and CPU per request against
client connections, one line per proxy (medians over rounds, min–max band).
Given several runs, it pools their rounds, as the verdict in
docs/BENCHMARKS.md does (one run's medians move 20 % on this machine).

    python3 bench/plot.py bench/out/proxy-YYYYMMDD-HHMM.json [MORE.json ...] docs/bench/proxy.svg

Works offline: installs matplotlib from PyPI (wheel) on first use if it
is missing.
"""
import json
import statistics
import subprocess
import sys

try:
    import matplotlib
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)
    import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"stackd": "#d62728", "nginx": "#2ca02c", "haproxy": "#1f77b4", "stackd-alt": "#ff7f0e"}


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot.py RESULTS.json [MORE.json ...] OUT.svg")
    *inputs, out = sys.argv[1:]
    data = [json.load(open(f)) for f in inputs]
    # A line pools the same rounds as the others: a proxy missing from one
    # of the runs (an A/B build) is not drawn.
    common = set.intersection(*({r["proxy"] for r in d["runs"]} for d in data))
    runs = [r for d in data for r in d["runs"] if r["path"] == "/" and r["proxy"] in common]
    proxies = sorted(common, key=lambda p: list(COLORS).index(p) if p in COLORS else 9)
    conns = sorted({r["conns"] for r in runs})
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable files
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for p in proxies:
        for ax, key, scale in ((ax1, "rps", 1e-3), (ax2, "us_per_req", 1.0)):
            xs, med, lo, hi = [], [], [], []
            for c in conns:
                v = [r[key] * scale for r in runs if r["proxy"] == p and r["conns"] == c and r[key] == r[key]]
                if v:
                    xs.append(c)
                    med.append(statistics.median(v))
                    lo.append(min(v))
                    hi.append(max(v))
            ax.plot(xs, med, marker="o", label=p, color=COLORS.get(p))
            ax.fill_between(xs, lo, hi, alpha=0.15, color=COLORS.get(p))
    for ax, title in ((ax1, "requests/s (thousands), higher is better"),
                      (ax2, "proxy CPU per request (µs), lower is better")):
        ax.set_xscale("log")
        ax.set_xticks(conns)
        ax.set_xticklabels([str(c) for c in conns])
        ax.set_xlabel("client connections (wrk -t1)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ax1.legend()
    rounds = sum(d["rounds"] for d in data)
    of = f"{len(data)} runs, " if len(data) > 1 else ""
    fig.suptitle(f"6-byte responses over loopback, 2 cores; medians of {rounds} alternating rounds "
                 f"({of}{data[0]['duration']} s each), band = min–max", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, metadata={"Date": None})
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
