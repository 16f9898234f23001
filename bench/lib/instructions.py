#!/usr/bin/env python3
"""User-space instructions per proxied request, for bench/instructions.sh.

Runs each stackd build under callgrind with its default config in front of
the two nginx backends bench/proxy.sh uses and loads it with one `wrk` run:
the counters are zeroed after a warm-up and dumped before the run ends, so
opening the connections is not in the window, and the requests served in
it are read from the proxy's own counter (admin `/metrics`). Unlike
requests/s or task-clock on this shared machine, instructions per request
hardly move from run to run (about ±0.3 %), so a change of 1 % in our own
code shows; the kernel's share (loopback TCP, most of a request's CPU) is
not in it. `--top N` also lists the functions that cost the most per request.
`nginx` in place of a build measures the peer the same way (one process:
the figures are per request, so its worker count does not matter; the
served count comes from its `stub_status`).

`--cache` also simulates the caches, with a 2 MiB last level (this
machine's L2; what misses it is served from L3 at several times the cost),
and reports its misses per request: at 1,000 connections (`--conns 1000`)
they show what a connection's state costs when a thousand others ran
since it last did. valgrind runs one thread at a time; with its fair
scheduling both workers take turns (without it one could hold the CPU
for most of the window and serve only its half of the connections,
which halved the misses in some runs). Use builds made with `--cfg stackd_no_park`
(bench/instructions.sh does that for `--cache`): under valgrind each of
a thousand connections sends about one request a second and would
otherwise park between them.

`--locked` also counts the locked instructions (atomic read-modify-writes:
`lock`-prefixed, and `xchg` with memory) executed per request, with the
functions they were inlined into. Callgrind counts each as one
instruction, but here one back to back costs 8.3 ns against 2.7 for a
plain add, and on lines that miss the L2 it waits for the miss where a
plain access overlaps it with other work: 3 ns more at a 4 MiB working
set, 12 ns more at 64 MiB (`bench/atomic-cost.sh`). The count is what
instructions per request do not show.

`--branches` also simulates branch prediction (callgrind's simple
model: two-bit counters for conditional branches, a small table for
indirect ones) and reports the mispredictions per request, with the
functions they are in. It is a model, not this processor's predictor:
use it to compare builds and peers, not as a count of stalls.
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
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import proxybench as pb  # noqa: E402


def served(admin):
    """Requests the proxy has answered, from its admin `/metrics`."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=30).read().decode()
    return sum(float(m) for m in re.findall(r"^stackd_proxy_requests_total\{[^}]*\} (\S+)$", text, re.M))


def nginx_served(status):
    """Requests nginx has answered, from its `stub_status` page."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{status}/", timeout=30).read().decode()
    return float(text.splitlines()[2].split()[2])


def measure(binary, label, wd, bports, args):
    port, admin = pb.free_port(), pb.free_port()
    if binary == "nginx":
        cmd, count = ["nginx", "-c", pb.nginx_conf(wd, port, bports, status=admin), "-p", wd], nginx_served
    else:
        conf = pb.stackd_conf(wd, label, port, bports, f'admin = "127.0.0.1:{admin}"')
        cmd, count = [binary, "proxy", "--config", conf], served
    out = os.path.join(wd, f"cg.{label}")
    cache = ["--cache-sim=yes", "--LL=2097152,16,64"] if args.cache else []
    cache += ["--dump-instr=yes"] if args.locked else []
    cache += ["--branch-sim=yes"] if args.branches else []
    p = pb.Proc(label, ["valgrind", "--tool=callgrind", "--fair-sched=yes", *cache, f"--callgrind-out-file={out}.%p",
                        *cmd], wd, dict(os.environ, RUST_LOG="warn"))
    warm = 6 if args.conns > 100 else 3
    try:
        if not pb.wait_port(port, timeout=60):
            sys.exit(f"{label} did not start; see {wd}/{label}.log")
        w = pb.wrk_start(port, "/", args.conns, warm + args.duration + 4)
        time.sleep(warm)
        subprocess.run(["callgrind_control", "-z", str(p.p.pid)], check=True, capture_output=True)
        before = count(admin)
        time.sleep(args.duration)
        subprocess.run(["callgrind_control", "-d", str(p.p.pid)], check=True, capture_output=True)
        requests = count(admin) - before
        pb.wrk_result(w, warm + args.duration + 4)
        time.sleep(1)
    finally:
        p.stop()
    dump = f"{out}.{p.p.pid}.1"
    text = subprocess.run(["callgrind_annotate", "--tree=none", "--auto=no", "--threshold=100", dump],
                          capture_output=True, text=True, check=True).stdout
    events = re.search(r"^Events shown:\s+(.*)$", text, re.M).group(1).split()
    totals = re.search(r"^(.*)PROGRAM TOTALS", text, re.M).group(1)
    counts = dict(zip(events, (int(v.replace(",", "")) if v != "." else 0
                               for v in re.findall(r"([\d,]+|\.)(?: \(\s*[\d.]+%\))?(?=\s)", totals))))
    funcs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r" \[[^\]]+\]$", "", m.group(2)).split(":", 1)[-1]
        if not name.startswith(("clone", "start_thread", "<std::sys::thread", "core::ops::function::FnOnce::call_once{{vtable")):
            funcs[name] += int(m.group(1).replace(",", ""))
    n = max(requests, 1)
    misses = (counts.get("DLmr", 0) + counts.get("DLmw", 0)) / n if args.cache else None
    locked = locked_per_request(dump, n) if args.locked else None
    branches = mispredicts_per_request(dump, counts, n) if args.branches else None
    return counts["Ir"] / n, misses, int(requests), funcs, locked, branches


def mispredicts_per_request(dump, counts, n):
    """(conditional, indirect, {function: both}) branch mispredictions per
    request, as callgrind's simple predictor model has them (`--branch-sim`):
    a guide to where a pipeline stalls, not this processor's own count."""
    by_fn = collections.Counter()
    for event in ("Bcm", "Bim"):
        text = subprocess.run(["callgrind_annotate", "--tree=none", "--auto=no", "--threshold=100",
                               f"--show={event}", f"--sort={event}", dump],
                              capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
            if m and "PROGRAM TOTALS" not in line:
                name = re.sub(r" \[[^\]]+\]$", "", m.group(2)).split(":", 1)[-1]
                by_fn[name] += int(m.group(1).replace(",", ""))
    # Entry points (a thread's start, `main`) carry the whole run: not a place.
    whole = 0.9 * (counts.get("Bcm", 0) + counts.get("Bim", 0))
    return (counts.get("Bcm", 0) / n, counts.get("Bim", 0) / n,
            {f: c / n for f, c in by_fn.items() if c < whole})


LOCKED = re.compile(r"lock |xchg\s.*\(")


def locked_instructions(obj):
    """Addresses of `obj`'s locked instructions (objdump's disassembly)."""
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], capture_output=True, text=True).stdout
    found = set()
    for line in dis.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(.*)$", line)
        if m and LOCKED.match(m.group(2)):
            found.add(int(m.group(1), 16))
    return found


def locked_per_request(dump, n):
    """(total, {function: count}) of locked instructions per request, from a
    callgrind dump made with `--dump-instr=yes`: each cost line's address
    (absolute, or relative to the last) is looked up in its object's
    disassembly. A call's cost line carries the callee's inclusive cost, so
    only its address counts."""
    names, executed = {}, collections.Counter()
    obj = fn = None
    addr, call, npos = 0, False, 1
    for line in open(dump):
        if line.startswith("positions:"):
            npos = len(line.split()) - 1
            continue
        m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, key, ident, name = m.groups()
            if name:
                names[(key, ident)] = name
            if not kind:
                obj, fn = (names[(key, ident)], fn) if key == "ob" else (obj, names[(key, ident)])
            continue
        if line.startswith("calls="):
            call = True
            continue
        if not line[:1] or line[0] not in "+-*0123456789":
            continue
        parts = line.split()
        pos = parts[0]
        if pos.startswith(("+", "-")):
            addr += int(pos, 0) if pos[0] == "+" else -int(pos[1:], 0)
        elif pos != "*":
            addr = int(pos, 0)
        if call:
            call = False
        elif len(parts) > npos:
            executed[(obj, fn, addr)] += int(parts[npos])  # Ir: the first event
    total, by_fn, tables = 0, collections.Counter(), {}
    for (o, f, a), c in executed.items():
        if o not in tables:
            tables[o] = locked_instructions(o) if o and o.startswith("/") else set()
        if a in tables[o]:
            total += c
            by_fn[f"{os.path.basename(o)}: {f}"] += c
    return total / n, {f: c / n for f, c in by_fn.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+",
                    help="stackd builds (label=path or path), or `nginx` for the peer as bench/proxy.sh runs it")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--cache", action="store_true", help="also L2 (2 MiB) misses per request")
    ap.add_argument("--locked", action="store_true", help="also locked (atomic) instructions per request")
    ap.add_argument("--branches", action="store_true",
                    help="also branch mispredictions per request (callgrind's model)")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "wrk", "nginx", "objdump"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (apt-get install valgrind nginx-light wrk)")
    builds = [b.split("=", 1) if "=" in b else (os.path.basename(b), b) for b in args.binaries]
    wd = tempfile.mkdtemp(prefix="stackd-instructions-")
    os.chmod(wd, 0o755)
    backend, bports = pb.start_backends(wd)
    results = collections.defaultdict(list)
    missed = collections.defaultdict(list)
    locks = collections.defaultdict(list)
    mispredicts = collections.defaultdict(list)
    last = {}
    try:
        for _ in range(args.rounds):
            for label, path in builds:
                per, miss, n, funcs, locked, branches = measure(path, label, wd, bports, args)
                results[label].append(per)
                missed[label].append(miss)
                locks[label].append(locked)
                mispredicts[label].append(branches)
                last[label] = (n, funcs, locked, branches)
                also = f", {miss:,.1f} L2 misses" if args.cache else ""
                also += f", {locked[0]:,.1f} locked" if args.locked else ""
                also += f", {branches[0]:,.1f} + {branches[1]:,.1f} mispredicted (conditional + indirect)" \
                    if args.branches else ""
                print(f"{label}: {per:,.0f} instructions{also} per request ({n} requests)", file=sys.stderr)
    finally:
        backend.stop()
    cols = " L2 misses per request | vs first |" if args.cache else ""
    cols += " locked instructions per request |" if args.locked else ""
    cols += " mispredicted branches per request (conditional + indirect) |" if args.branches else ""
    print(f"\n| build | user-space instructions per request (median of {args.rounds}) | vs first |{cols}")
    print("|---|---|---|" + ("---|---|" if args.cache else "") + ("---|" if args.locked else "")
          + ("---|" if args.branches else ""))
    base = base_miss = None
    for label, _ in builds:
        v = pb.med(results[label])
        base = base or v
        row = f"| {label} | {v:,.0f} | {v / base:.3f}x |"
        if args.cache:
            m = pb.med(missed[label])
            base_miss = base_miss or m
            row += f" {m:,.1f} | {m / base_miss:.3f}x |"
        if args.locked:
            row += f" {pb.med([t for t, _ in locks[label]]):,.1f} |"
        if args.branches:
            c, i = (pb.med([b[k] for b in mispredicts[label]]) for k in (0, 1))
            row += f" {c:,.1f} + {i:,.1f} |"
        print(row)
    for label, _ in builds if args.locked else []:
        print(f"\n{label}: locked instructions per request, by function (last round; 0.5 or more)")
        for name, c in sorted(last[label][2][1].items(), key=lambda kv: -kv[1]):
            if c >= 0.5:
                print(f"{c:6.2f}  {name[:140]}")
    for label, _ in builds if args.branches else []:
        print(f"\n{label}: mispredicted branches per request, by function (last round; top 15)")
        for name, c in sorted(last[label][3][2].items(), key=lambda kv: -kv[1])[:15]:
            print(f"{c:6.1f}  {name[:140]}")
    for label, _ in builds if args.top else []:
        n, funcs, _, _ = last[label]
        print(f"\n{label}: top {args.top} functions, instructions per request (self)")
        for name, c in funcs.most_common(args.top):
            print(f"{c / n:8.0f}  {name[:140]}")
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
