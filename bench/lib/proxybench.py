#!/usr/bin/env python3
"""Proxy benchmark driver for bench/proxy.sh: stackd vs nginx vs HAProxy.

Everything runs on 127.0.0.1 on free ports. Each proxy runs with the same
number of worker threads/processes and upstream keep-alive, in front of the
same two nginx backends. Runs alternate between proxies (A B C A B C ...).
Reported: requests/s, p50/p99/max latency (wrk), CPU per request (the
proxy's task-clock from `perf stat -p`, divided by the requests served;
blank when perf is missing), peak RSS, medians with min/max over rounds,
and stackd's ratios against nginx and HAProxy.
"""
import argparse
import datetime
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PROXIES = ["stackd", "nginx", "haproxy"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except OSError:
            pass
    return out


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Proc:
    """A server process we started; measured and stopped by PID only."""

    def __init__(self, name, cmd, workdir, env=None):
        self.name = name
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def tree(self):
        return [self.p.pid] + children(self.p.pid)

    def mem_kb(self, key):
        return sum(status_kb(p, key) for p in self.tree())

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def start_backends(wd):
    ports = [free_port(), free_port()]
    www = os.path.join(wd, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    listens = "".join(f"listen 127.0.0.1:{p} backlog=4096;\n" for p in ports)
    conf = write(os.path.join(wd, "backend.conf"), f"""
worker_processes 1; daemon off; pid {wd}/backend.pid; error_log {wd}/backend.err warn;
events {{ worker_connections 20000; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  server {{ {listens} root {www};
    location = / {{ default_type text/plain; return 200 "ok\\n"; }}
    location = /1m {{ default_type application/octet-stream; }}
  }}
}}""")
    p = Proc("backend", ["nginx", "-c", conf, "-p", wd], wd)
    for port in ports:
        if not wait_port(port):
            sys.exit(f"backend nginx did not start; see {wd}/backend.log")
    return p, ports


def start_proxy(kind, wd, port, backends, workers, stackd):
    b1, b2 = backends
    if kind == "stackd":
        conf = write(os.path.join(wd, "stackd.toml"), f"""
[proxy]
listen = ["127.0.0.1:{port}"]
access_log = "off"
max_connections = 20000
upstream_keepalive = 64
workers = {workers}
[[proxy.upstream]]
name = "b"
servers = [{{ addr = "127.0.0.1:{b1}" }}, {{ addr = "127.0.0.1:{b2}" }}]
[[proxy.route]]
path = "/"
upstream = "b"
""")
        # `workers` threads serve (nginx's worker_processes); the main runtime
        # only runs reloads, health checks and signals, so one thread is plenty.
        env = dict(os.environ, TOKIO_WORKER_THREADS="1", RUST_LOG="warn")
        p = Proc("stackd", [stackd, "proxy", "--config", conf], wd, env)
    elif kind == "nginx":
        conf = write(os.path.join(wd, "nginx-proxy.conf"), f"""
worker_processes {workers}; daemon off; pid {wd}/proxy.pid; error_log {wd}/proxy.err warn;
events {{ worker_connections 20000; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  proxy_temp_path {wd}/proxy_temp; client_body_temp_path {wd}/body_temp;
  upstream b {{ server 127.0.0.1:{b1}; server 127.0.0.1:{b2}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}""")
        p = Proc("nginx", ["nginx", "-c", conf, "-p", wd], wd)
    else:
        conf = write(os.path.join(wd, "haproxy.cfg"), f"""
global
  nbthread {workers}
  fd-hard-limit 20000
  maxconn 9990
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend f
  bind 127.0.0.1:{port}
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:{b1}
  server s2 127.0.0.1:{b2}
""")
        p = Proc("haproxy", ["haproxy", "-f", conf, "-db"], wd)
    if not wait_port(port):
        p.stop()
        return None
    return p


UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else float("nan")


def wrk(port, path, conns, duration):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=duration + 60,
    ).stdout
    r = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan"), "errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(parts[1])
        elif parts[:1] == ["Latency"] and len(parts) >= 4:
            r["max"] = ms(parts[3])
        elif parts[:1] == ["50%"]:
            r["p50"] = ms(parts[1])
        elif parts[:1] == ["99%"]:
            r["p99"] = ms(parts[1])
        elif "Socket errors" in line:
            r["errors"] += sum(int(x) for x in re.findall(r"\d+", line))
        elif "Non-2xx" in line:
            r["errors"] += int(parts[-1])
    return r


def cpu_stat_start(pids, path):
    """perf stat's task-clock over `pids` until stopped; None without perf."""
    try:
        return subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "task-clock", "-o", path, "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def cpu_stat_stop(perf, path):
    """CPU milliseconds perf counted, or NaN."""
    if perf is None:
        return float("nan")
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(timeout=10)
    except subprocess.TimeoutExpired:
        perf.kill()
        return float("nan")
    try:
        for line in open(path):
            parts = line.split(",")
            if len(parts) > 2 and parts[2] == "task-clock":
                return float(parts[0])
    except (OSError, ValueError):
        pass
    return float("nan")


def idle_connections(port, n):
    """Opens n keep-alive connections, one request each, and leaves them idle."""
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(req)
        s.recv(4096)
        socks.append(s)
    return socks


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt_range(xs, f="{:.0f}"):
    xs = [x for x in xs if x == x]
    if not xs:
        return "n/a"
    return f"{f.format(statistics.median(xs))} ({f.format(min(xs))}–{f.format(max(xs))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 10)))
    ap.add_argument("--idle", type=int, default=int(os.environ.get("IDLE_CONNS", 9000)))
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    wd = tempfile.mkdtemp(prefix="stackd-bench-")
    os.chmod(wd, 0o755)  # nginx workers run unprivileged and must read www/
    backend, bports = start_backends(wd)
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        say(f"# Proxy benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC")
        say()
        say(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}. Command: `bench/proxy.sh` "
            f"(rounds={args.rounds}, duration={args.duration}s, wrk -t1). Backends: 2 nginx servers on loopback.")
        say(f"Versions: {subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}; "
            f"{subprocess.run(['haproxy', '-v'], capture_output=True, text=True).stdout.splitlines()[0]}; "
            f"{subprocess.run([args.stackd, '--version'], capture_output=True, text=True).stdout.strip()}")
        scenarios = [(1, 64, "/"), (1, 1000, "/"), (1, 64, "/1m"), (2, 64, "/"), (2, 1000, "/")]
        results = {}
        for workers, conns, path in scenarios:
            for rnd in range(args.rounds):
                order = PROXIES[rnd % 3:] + PROXIES[:rnd % 3]
                for kind in order + (["direct"] if workers == 1 else []):
                    port = bports[0] if kind == "direct" else free_port()
                    p = None if kind == "direct" else start_proxy(kind, wd, port, bports, workers, args.stackd)
                    if kind != "direct" and p is None:
                        print(f"{kind} failed to start; see {wd}/{kind}.log", file=sys.stderr)
                        continue
                    wrk(port, path, conns, 1)  # warm up pools
                    perf_out = os.path.join(wd, "perf.txt")
                    perf = cpu_stat_start(p.tree(), perf_out) if p else None
                    r = wrk(port, path, conns, args.duration)
                    cpu_ms = cpu_stat_stop(perf, perf_out)
                    r["us_per_req"] = cpu_ms * 1000 / (r["rps"] * args.duration) if r["rps"] > 0 else float("nan")
                    r["rss"] = p.mem_kb("VmHWM") / 1024 if p else float("nan")
                    if p:
                        p.stop()
                    results.setdefault((workers, conns, path, kind), []).append(r)
                    print(f"  w={workers} c={conns} {path} {kind}: {r['rps']:.0f} req/s p99 {r['p99']:.2f} ms "
                          f"{r['us_per_req']:.1f} us/req", file=sys.stderr, flush=True)
        say()
        say("Medians over rounds, (min–max). Latency in ms. CPU = the proxy's task-clock per request (perf stat), µs. "
            "RSS = peak resident memory of the proxy's processes.")
        say()
        say("| workers | conns | response | proxy | requests/s | p50 | p99 | max | CPU µs/req | peak RSS MiB | errors |")
        say("|---|---|---|---|---|---|---|---|---|---|---|")
        for workers, conns, path in scenarios:
            for kind in PROXIES + ["direct"]:
                rs = results.get((workers, conns, path, kind))
                if not rs:
                    continue
                size = "1 MiB" if path == "/1m" else "3 B"
                say(f"| {workers} | {conns} | {size} | {kind} | {fmt_range([r['rps'] for r in rs])} | "
                    f"{fmt_range([r['p50'] for r in rs], '{:.2f}')} | {fmt_range([r['p99'] for r in rs], '{:.2f}')} | "
                    f"{fmt_range([r['max'] for r in rs], '{:.1f}')} | {fmt_range([r.get('us_per_req', float('nan')) for r in rs], '{:.1f}')} | "
                    f"{fmt_range([r['rss'] for r in rs], '{:.1f}')} | {sum(r['errors'] for r in rs)} |")
        say()
        say("Ratios (stackd / other, medians): requests/s higher is better, p99 lower is better.")
        say()
        say("| workers | conns | response | rps vs nginx | rps vs HAProxy | p99 vs nginx | p99 vs HAProxy |")
        say("|---|---|---|---|---|---|---|")
        for workers, conns, path in scenarios:
            s = results.get((workers, conns, path, "stackd"))
            if not s:
                continue
            cells = []
            for metric in ("rps", "p99"):
                for other in ("nginx", "haproxy"):
                    o = results.get((workers, conns, path, other))
                    cells.append(f"{med([r[metric] for r in s]) / med([r[metric] for r in o]):.2f}x" if o else "n/a")
            size = "1 MiB" if path == "/1m" else "3 B"
            say(f"| {workers} | {conns} | {size} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
        if args.idle:
            say()
            say(f"Idle keep-alive connections: resident memory of each proxy (1 worker) holding {args.idle} idle client connections.")
            say()
            say("| proxy | RSS before MiB | RSS with idle conns MiB | per connection KiB |")
            say("|---|---|---|---|")
            for kind in PROXIES:
                port = free_port()
                p = start_proxy(kind, wd, port, bports, 1, args.stackd)
                if p is None:
                    continue
                time.sleep(0.5)
                before = p.mem_kb("VmRSS")
                try:
                    socks = idle_connections(port, args.idle)
                    time.sleep(1)
                    after = p.mem_kb("VmRSS")
                    for s in socks:
                        s.close()
                    say(f"| {kind} | {before / 1024:.1f} | {after / 1024:.1f} | {(after - before) / args.idle:.2f} |")
                except OSError as e:
                    say(f"| {kind} | {before / 1024:.1f} | failed: {e} | |")
                p.stop()
    finally:
        backend.stop()
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M")
    path = os.path.join(args.out, f"proxy-{stamp}.md")
    write(path, "\n".join(lines) + "\n")
    print(f"\nreport: {path}; logs and configs: {wd}", file=sys.stderr)


if __name__ == "__main__":
    main()
