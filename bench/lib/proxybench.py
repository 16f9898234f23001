#!/usr/bin/env python3
"""Proxy benchmark driver for bench/proxy.sh: stackd vs nginx vs HAProxy.

Everything runs on 127.0.0.1 on free ports, in front of the same two nginx
backends. Each proxy runs as its users would run it (issue #12):

- nginx: `worker_processes 2`, `keepalive 1024` to the upstream;
- HAProxy: `nbthread 2`, `http-reuse always`;
- stackd: its default config, i.e. only `listen`, the upstream, the route
  and `access_log = "off"` (access logs are off for all three).

Runs alternate between proxies (A B C, then B C A, ...), so drift on a
shared machine hits all of them. Reported per (connections, response):
requests/s, p50/p99/max latency (wrk), CPU per request (the proxy's
task-clock from `perf stat -p`, divided by the requests served), context
switches per request, peak RSS, medians with min/max over rounds, stackd's
ratios against nginx and HAProxy, and how busy the machine was with other
work during each run. Then where the machine's CPU went per request (the
proxy's user and system time, the backends', wrk's, the rest) and what
stackd would serve if its own code cost nothing: every process shares the
same two cores, so the proxy's CPU is only part of what sets requests/s.
Also the resident memory of 10,000 idle keep-alive client connections.

Options exist for development: `--proxies stackd,stackd-alt` with
`--stackd-alt PATH` runs two stackd builds against each other in the same
alternating run; `--stackd-conf 'workers = 1'` appends lines to stackd's
config (`--alt-conf` to stackd-alt's only, to compare two settings);
`--peers-forward` has nginx and HAProxy set the forwarding fields stackd
sets by default (X-Real-IP, X-Forwarded-For/-Proto/-Host), to compare like
with like. Results also go to a JSON file beside the report (bench/plot.py
draws them).
"""
import argparse
import datetime
import json
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

ALL_PROXIES = ["stackd", "nginx", "haproxy"]
# What each scenario's path answers.
SIZES = {"/": "6 B", "/1m": "1 MiB", "/1m-chunked": "1 MiB, 8 KiB chunks",
         "/upload": "64 KiB up, 4 KiB chunks"}
# The request of the upload scenario: wrk sends it as it is (its own body
# option would add a Content-Length beside the chunking).
UPLOAD_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upload.lua")
PEERS = ["nginx", "haproxy"]
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


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


def cpu_user_sys(pid):
    """(user, system) CPU of a process and its reaped children, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
        return fields[0] + fields[2], fields[1] + fields[3]
    except (OSError, ValueError):
        return 0, 0


def cpu_ticks(pid):
    """utime + stime of a process (and its reaped children), in clock ticks."""
    return sum(cpu_user_sys(pid))


def machine_ticks():
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


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

    def ticks(self):
        return sum(cpu_ticks(p) for p in self.tree())

    def user_sys(self):
        both = [cpu_user_sys(p) for p in self.tree()]
        return sum(u for u, _ in both), sum(s for _, s in both)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
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
events {{ worker_connections 10000; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  server {{ {listens} root {www};
    location = / {{ default_type text/plain; return 200 "hello\\n"; }}
    location = /1m {{ default_type application/octet-stream; }}
    # The same file as a chunked body of 8 KiB chunks, as Tomcat sends a page
    # it did not measure first (SSI drops the length; there is nothing to include).
    location = /1m-chunked {{
      default_type application/octet-stream; alias {www}/1m;
      ssi on; ssi_types *; output_buffers 1 8k;
    }}
    # An upload read whole before the answer, as an application reads a
    # form (`return` alone would answer first and leave the body unread):
    # nginx reads the body, then asks itself for the answer without it.
    location = /upload {{
      client_body_buffer_size 128k; proxy_pass_request_body off;
      proxy_set_header Content-Length ""; proxy_set_header Transfer-Encoding "";
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://self/;
    }}
  }}
  upstream self {{ server 127.0.0.1:{ports[0]}; keepalive 64; }}
}}""")
    p = Proc("backend", ["nginx", "-c", conf, "-p", wd], wd)
    for port in ports:
        if not wait_port(port):
            sys.exit(f"backend nginx did not start; see {wd}/backend.log")
    return p, ports


def stackd_conf(wd, name, port, backends, extra, listen=None):
    b1, b2 = backends
    listen = listen or f'["127.0.0.1:{port}"]'
    # What a user writes: listen, the upstream, the route, and logs off.
    return write(os.path.join(wd, f"{name}.toml"), f"""
[proxy]
listen = {listen}
access_log = "off"
{extra}
[[proxy.upstream]]
name = "b"
servers = [{{ addr = "127.0.0.1:{b1}" }}, {{ addr = "127.0.0.1:{b2}" }}]
[[proxy.route]]
path = "/"
upstream = "b"
""")


def nginx_conf(wd, port, backends, forward=False, status=None):
    """nginx as its users run it in front of `backends`: 2 workers,
    `keepalive 1024`. With `status` (a port): one process instead (what
    valgrind can follow) and a `stub_status` page there."""
    b1, b2 = backends
    procs = "master_process off; worker_processes 1;" if status else "worker_processes 2;"
    stub = f"server {{ listen 127.0.0.1:{status}; location / {{ stub_status; }} }}" if status else ""
    return write(os.path.join(wd, "nginx-proxy.conf"), f"""
{procs} daemon off; pid {wd}/proxy.pid; error_log {wd}/proxy.err warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 10240; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  proxy_temp_path {wd}/proxy_temp; client_body_temp_path {wd}/body_temp;
  upstream b {{ server 127.0.0.1:{b1}; server 127.0.0.1:{b2}; keepalive 1024; }}
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection "";{NGINX_FORWARD if forward else ""} }}
  }}
  {stub}
}}""")


# What start_proxy reads besides --stackd, and its value when a script
# (flame.py, symbols.py) has no such option: bench/proxy.sh's defaults.
PROXY_OPTIONS = {"stackd_alt": None, "stackd_conf": (), "alt_conf": (),
                 "peers_forward": False, "haproxy_maxconn": 9990}


def start_proxy(kind, wd, port, backends, args):
    b1, b2 = backends
    opt = lambda name: getattr(args, name, PROXY_OPTIONS[name])  # noqa: E731
    if kind.startswith("stackd"):
        binary = (opt("stackd_alt") or args.stackd) if kind == "stackd-alt" else args.stackd
        extra = [*opt("stackd_conf"), *(opt("alt_conf") if kind == "stackd-alt" else ())]
        conf = stackd_conf(wd, kind, port, backends, "\n".join(extra))
        env = dict(os.environ, RUST_LOG="warn")
        p = Proc(kind, [binary, "proxy", "--config", conf], wd, env)
    elif kind == "nginx":
        conf = nginx_conf(wd, port, backends, forward=opt("peers_forward"))
        p = Proc("nginx", ["nginx", "-c", conf, "-p", wd], wd)
    else:
        conf = write(os.path.join(wd, "haproxy.cfg"), f"""
global
  nbthread 2
  fd-hard-limit 20000
  maxconn {opt("haproxy_maxconn")}
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 60s
  timeout http-keep-alive 300s
  option http-keep-alive
  http-reuse always
frontend f
  bind 127.0.0.1:{port}
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:{b1}
  server s2 127.0.0.1:{b2}
{HAPROXY_FORWARD if opt("peers_forward") else ""}""")
        p = Proc("haproxy", ["haproxy", "-f", conf, "-db"], wd)
    if not wait_port(port):
        p.stop()
        return None
    return p


# --peers-forward: the forwarding fields stackd sets by default, as their
# users configure them (nginx's proxy module docs; HAProxy's forwardfor).
NGINX_FORWARD = """
      proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $host;"""
HAPROXY_FORWARD = """  option forwardfor
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
"""

UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else float("nan")


def wrk_start(port, path, conns, duration, url=None, script=None, extra=()):
    """wrk against `path` on the proxy's port, or against `url`; `script`
    (a Lua file) builds the requests, as UPLOAD_LUA does for /upload."""
    script = script or (UPLOAD_LUA if path == "/upload" else None)
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s",
         *(["-s", script] if script else []), *extra, url or f"http://127.0.0.1:{port}{path}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def wrk_result(w, duration):
    out, _ = w.communicate(timeout=duration + 60)
    r = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan"),
         "errors": 0, "requests": 0, "non2xx": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(parts[1])
        elif "requests in" in line:
            r["requests"] = int(parts[0])
        elif parts[:1] == ["Latency"] and len(parts) >= 4:
            r["max"] = ms(parts[3])
        elif parts[:1] == ["50%"]:
            r["p50"] = ms(parts[1])
        elif parts[:1] == ["99%"]:
            r["p99"] = ms(parts[1])
        elif "Socket errors" in line:
            r["errors"] += sum(int(x) for x in re.findall(r"\d+", line))
        elif "Non-2xx" in line:
            r["non2xx"] = int(parts[-1])
            r["errors"] += r["non2xx"]
    return r


def wrk(port, path, conns, duration, **how):
    return wrk_result(wrk_start(port, path, conns, duration, **how), duration)


def perf_start(pids, path):
    """perf stat (task-clock, context switches) over `pids` until stopped; None without perf."""
    try:
        return subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "task-clock,context-switches", "-o", path,
             "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def perf_stop(perf, path):
    """{event: value} perf counted (task-clock in ms), or {}."""
    if perf is None:
        return {}
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(timeout=10)
    except subprocess.TimeoutExpired:
        perf.kill()
        return {}
    out = {}
    try:
        for line in open(path):
            parts = line.split(",")
            if len(parts) > 2 and parts[0] and parts[0][0].isdigit():
                out[parts[2]] = float(parts[0])
    except (OSError, ValueError):
        pass
    return out


def perf_record(p, port, conns, duration, data, freq, extra=()):
    """wrk's result for a run while `perf record` samples the proxy's
    processes into `data` (`extra`: more perf options, e.g. call graphs)."""
    rec = subprocess.Popen(
        ["perf", "record", "-F", str(freq), *extra, "-o", data, "-p", ",".join(map(str, p.tree()))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    r = wrk(port, "/", conns, duration)
    rec.send_signal(signal.SIGINT)
    rec.wait(timeout=60)
    return r


def measure(p, port, path, conns, duration, wd, backend):
    """One measured wrk run against `p`; the machine's other load alongside."""
    wrk(port, path, conns, 1)  # warm up pools and connections
    perf_out = os.path.join(wd, "perf.txt")
    perf = perf_start(p.tree(), perf_out)
    busy0, total0 = machine_ticks()
    (user0, sys0), back0 = p.user_sys(), backend.ticks()
    w = wrk_start(port, path, conns, duration)
    wrk_ticks = 0
    while w.poll() is None:  # wrk's own CPU, sampled until it exits
        wrk_ticks = max(wrk_ticks, cpu_ticks(w.pid))
        time.sleep(0.2)
    r = wrk_result(w, duration)
    counts = perf_stop(perf, perf_out)
    busy1, total1 = machine_ticks()
    (user1, sys1), back1 = p.user_sys(), backend.ticks()
    own = (user1 - user0) + (sys1 - sys0) + (back1 - back0) + wrk_ticks
    served = r["requests"] or r["rps"] * duration
    cpu_ms = counts.get("task-clock", float("nan"))
    r["us_per_req"] = cpu_ms * 1000 / served if served else float("nan")
    r["cs_per_req"] = counts.get("context-switches", float("nan")) / served if served else float("nan")
    r["rss"] = p.mem_kb("VmHWM") / 1024
    # CPU time of everything else on the machine, as a share of its cores.
    r["other_load"] = max(0, (busy1 - busy0) - own) / max(1, total1 - total0)
    # Where the machine's CPU went, per request served (clock ticks from
    # /proc: coarser than perf's task clock, but taken for every process).
    per = lambda ticks: ticks * 1e6 / TICKS_PER_S / served if served else float("nan")
    r["split"] = {
        "proxy_user": per(user1 - user0), "proxy_sys": per(sys1 - sys0),
        "backends": per(back1 - back0), "wrk": per(wrk_ticks), "machine": per(busy1 - busy0),
    }
    return r


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
    if len(xs) == 1:
        return f.format(xs[0])
    return f"{f.format(statistics.median(xs))} ({f.format(min(xs))}–{f.format(max(xs))})"


def ratio(a, b):
    return f"{a / b:.2f}x" if a == a and b == b and b else "n/a"


def report(say, args, scenarios, results, proxies):
    say("Medians over rounds, (min–max). Latency in ms. CPU = the proxy's task-clock per request "
        "(perf stat), µs; cs = context switches per request. RSS = peak resident memory of the "
        "proxy's processes. other = CPU used by everything but the proxy, wrk and the backend "
        "during the run, as a share of the machine.")
    say()
    say("| conns | response | proxy | requests/s | p50 | p99 | max | CPU µs/req | cs/req | peak RSS MiB | errors | other |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for conns, path in scenarios:
        for kind in proxies:
            rs = results.get((conns, path, kind))
            if not rs:
                continue
            size = SIZES[path]
            say(f"| {conns} | {size} | {kind} | {fmt_range([r['rps'] for r in rs])} | "
                f"{fmt_range([r['p50'] for r in rs], '{:.2f}')} | {fmt_range([r['p99'] for r in rs], '{:.2f}')} | "
                f"{fmt_range([r['max'] for r in rs], '{:.1f}')} | {fmt_range([r['us_per_req'] for r in rs], '{:.1f}')} | "
                f"{fmt_range([r['cs_per_req'] for r in rs], '{:.2f}')} | {fmt_range([r['rss'] for r in rs], '{:.1f}')} | "
                f"{sum(r['errors'] for r in rs)} | {fmt_range([100 * r['other_load'] for r in rs], '{:.0f}%')} |")
    others = [p for p in proxies if p != "stackd"]
    if "stackd" not in proxies or not others:
        return
    say()
    say("stackd's ratios (medians): requests/s higher is better; p99, CPU per request and RSS lower is better.")
    say()
    head = " | ".join(f"{m} vs {o}" for m in ("rps", "p99", "CPU/req", "RSS") for o in others)
    say(f"| conns | response | {head} |")
    say("|---|---|" + "---|" * (4 * len(others)))
    for conns, path in scenarios:
        s = results.get((conns, path, "stackd"))
        if not s:
            continue
        cells = []
        for metric in ("rps", "p99", "us_per_req", "rss"):
            for other in others:
                o = results.get((conns, path, other))
                cells.append(ratio(med([r[metric] for r in s]), med([r[metric] for r in o])) if o else "n/a")
        size = SIZES[path]
        say(f"| {conns} | {size} | " + " | ".join(cells) + " |")
    budget(say, scenarios, results, proxies)


def budget(say, scenarios, results, proxies):
    """Where the machine's CPU went per request, and what that allows.

    The proxy, the backends and wrk share the cores and keep them busy, so
    requests/s is about cores / (CPU per request of all of them): a proxy
    that saves a microsecond gains only its share of the whole. The last
    table asks what stackd would serve if its own code cost nothing and
    everything else (its system calls included) stayed as measured."""
    say()
    say("Where the machine's CPU went, µs per request (medians; clock ticks from /proc, so coarser "
        "than the task clock above). rest = everything else on the machine.")
    say()
    say("| conns | response | proxy | proxy user | proxy system | backends | wrk | rest | all |")
    say("|---|---|---|---|---|---|---|---|---|")
    keys = ("proxy_user", "proxy_sys", "backends", "wrk")
    for conns, path in scenarios:
        size = SIZES[path]
        for kind in proxies:
            rs = [r["split"] for r in results.get((conns, path, kind), []) if "split" in r]
            if not rs:
                continue
            cells = [med([r[k] for r in rs]) for k in keys]
            all_ = med([r["machine"] for r in rs])
            rest = med([r["machine"] - sum(r[k] for k in keys) for r in rs])
            say(f"| {conns} | {size} | {kind} | " + " | ".join(f"{c:.2f}" for c in cells)
                + f" | {rest:.2f} | {all_:.2f} |")
    peers = [p for p in proxies if p in PEERS]
    if "stackd" not in proxies or not peers:
        return
    say()
    say("If stackd's own code cost nothing: each round's requests/s scaled by all / (all − proxy user), "
        "the median over rounds, against the better peer's median requests/s.")
    say()
    say("| conns | response | stackd requests/s | with its user space free | better peer | free over better peer |")
    say("|---|---|---|---|---|---|")
    for conns, path in scenarios:
        rs = [r for r in results.get((conns, path, "stackd"), []) if "split" in r]
        if not rs:
            continue
        free = med([r["rps"] * r["split"]["machine"] / (r["split"]["machine"] - r["split"]["proxy_user"])
                    for r in rs if r["split"]["machine"] > r["split"]["proxy_user"]])
        best = max(med([r["rps"] for r in results.get((conns, path, p), [])]) for p in peers)
        size = SIZES[path]
        say(f"| {conns} | {size} | {med([r['rps'] for r in rs]):.0f} | {free:.0f} | {best:.0f} | {ratio(free, best)} |")


def idle_memory(say, args, wd, bports, proxies):
    say()
    say(f"Idle keep-alive connections: resident memory of each proxy holding {args.idle} idle client "
        "connections that each made one request (HAProxy: see its row).")
    say()
    say("| proxy | connections | RSS before MiB | RSS with idle conns MiB | per connection KiB |")
    say("|---|---|---|---|---|")
    out = {}
    for kind in proxies:
        # HAProxy reserves two descriptors per connection (client and
        # server side) and this workplace caps a process at 20,000 open
        # files, so it is measured with fewer connections (--haproxy-maxconn).
        n = min(args.idle, args.haproxy_maxconn - 10) if kind == "haproxy" else args.idle
        port = free_port()
        p = start_proxy(kind, wd, port, bports, args)
        if p is None:
            continue
        time.sleep(0.5)
        before = p.mem_kb("VmRSS")
        try:
            socks = idle_connections(port, n)
            time.sleep(2)
            after = p.mem_kb("VmRSS")
            for s in socks:
                s.close()
            per = (after - before) / n
            out[kind] = {"conns": n, "before": before / 1024, "after": after / 1024, "per_conn_kib": per}
            say(f"| {kind} | {n} | {before / 1024:.1f} | {after / 1024:.1f} | {per:.2f} |")
        except OSError as e:
            say(f"| {kind} | {n} | {before / 1024:.1f} | failed: {e} | |")
        p.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackd", required=True)
    ap.add_argument("--stackd-build", default="", help="how --stackd was built, for the report")
    ap.add_argument("--stackd-alt", help="a second stackd build, run as proxy 'stackd-alt'")
    ap.add_argument("--stackd-conf", action="append", default=[], help="extra line for stackd's [proxy]")
    ap.add_argument("--alt-conf", action="append", default=[], help="extra line for stackd-alt's [proxy] only")
    ap.add_argument("--out", required=True)
    ap.add_argument("--proxies", default=os.environ.get("PROXIES", ",".join(ALL_PROXIES)))
    ap.add_argument("--conns", default=os.environ.get("CONNS", "64,256,1000"))
    ap.add_argument("--big", type=int, default=int(os.environ.get("BIG", 1)), help="also 1 MiB responses at 64 conns")
    ap.add_argument("--chunked", type=int, default=int(os.environ.get("CHUNKED", 0)),
                    help="also 1 MiB responses in 8 KiB chunks at 64 conns (the backend's SSI costs more than the proxy)")
    ap.add_argument("--upload", type=int, default=int(os.environ.get("UPLOAD", 0)),
                    help="also uploads at 64 conns: 64 KiB in 4 KiB chunks (Java's chunked streaming mode)")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
    ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 10)))
    ap.add_argument("--idle", type=int, default=int(os.environ.get("IDLE_CONNS", 10000)))
    ap.add_argument("--haproxy-maxconn", type=int, default=9990)
    ap.add_argument("--peers-forward", action="store_true",
                    help="nginx and HAProxy also set X-Real-IP and X-Forwarded-For/-Proto/-Host, as stackd does by default")
    args = ap.parse_args()
    proxies = args.proxies.split(",")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    wd = tempfile.mkdtemp(prefix="stackd-bench-")
    os.chmod(wd, 0o755)  # nginx workers run unprivileged and must read www/
    backend, bports = start_backends(wd)
    lines = []
    say = lambda s="": (print(s, flush=True), lines.append(s))
    scenarios = ([(int(c), "/") for c in args.conns.split(",") if c] + ([(64, "/1m")] if args.big else [])
                 + ([(64, "/1m-chunked")] if args.chunked else [])
                 + ([(64, "/upload")] if args.upload else []))
    results = {}
    idle = {}
    load_start = open("/proc/loadavg").read().split()[:3]
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        say(f"# Proxy benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC")
        say()
        say(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}. Command: `bench/proxy.sh` "
            f"(rounds={args.rounds}, duration={args.duration}s, wrk -t1). Backends: 2 nginx servers on loopback.")
        vers = [subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip(),
                subprocess.run(['haproxy', '-v'], capture_output=True, text=True).stdout.splitlines()[0],
                subprocess.run([args.stackd, '--version'], capture_output=True, text=True).stdout.strip()]
        built = f" ({args.stackd_build})" if args.stackd_build else ""
        say(f"Versions: {'; '.join(vers)}{built}")
        fwd = " with X-Real-IP and X-Forwarded-For/-Proto/-Host set" if args.peers_forward else ""
        say(f"Configs: nginx `worker_processes 2`, `keepalive 1024`{fwd}; HAProxy `nbthread 2`, `http-reuse always`{fwd}; "
            "stackd default config (listen, upstream, route, `access_log = \"off\"`)"
            + (f" plus `{'; '.join(args.stackd_conf)}`" if args.stackd_conf else "") + ".")
        for conns, path in scenarios:
            for rnd in range(args.rounds):
                order = proxies[rnd % len(proxies):] + proxies[:rnd % len(proxies)]
                for kind in order:
                    port = free_port()
                    p = start_proxy(kind, wd, port, bports, args)
                    if p is None:
                        print(f"{kind} failed to start; see {wd}/{kind}.log", file=sys.stderr)
                        continue
                    try:
                        r = measure(p, port, path, conns, args.duration, wd, backend)
                    finally:
                        p.stop()
                    results.setdefault((conns, path, kind), []).append(r)
                    print(f"  c={conns} {path} {kind}: {r['rps']:.0f} req/s p99 {r['p99']:.2f} ms "
                          f"{r['us_per_req']:.1f} us/req {r['cs_per_req']:.2f} cs/req {r['rss']:.1f} MiB "
                          f"other {100 * r['other_load']:.0f}%", file=sys.stderr, flush=True)
        say()
        report(say, args, scenarios, results, proxies)
        if args.idle:
            idle = idle_memory(say, args, wd, bports, [p for p in proxies if p in ALL_PROXIES])
        load_end = open("/proc/loadavg").read().split()[:3]
        say()
        say(f"Load average (1, 5, 15 min) at the start: {' '.join(load_start)}; at the end: {' '.join(load_end)}.")
    finally:
        backend.stop()
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M")
    path = os.path.join(args.out, f"proxy-{stamp}.md")
    write(path, "\n".join(lines) + "\n")
    data = {
        "rounds": args.rounds, "duration": args.duration,
        "runs": [{"conns": c, "path": p, "proxy": k, **r} for (c, p, k), rs in results.items() for r in rs],
        "idle": idle,
    }
    write(os.path.join(args.out, f"proxy-{stamp}.json"), json.dumps(data, indent=1))
    print(f"\nreport: {path} (+ .json); logs and configs: {wd}", file=sys.stderr)


if __name__ == "__main__":
    main()
