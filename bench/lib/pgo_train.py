#!/usr/bin/env python3
"""The training run of scripts/pgo: an instrumented stackd proxy serves the
traffic it is built for, so the compiler learns which paths are hot.

Each kind of traffic stackd serves gets a few seconds, because a path the
training never takes is laid out as cold code: browser-like HTTP/1.1
requests at 64 and 1,000 connections (bench/lib/browser.lua: a dozen
fields, cookies, varied paths; not bench/proxy.sh's bare `GET /`, so that
its benchmark does not measure the training's own requests), 1 MiB
responses with a length and chunked, chunked uploads, TLS, and HTTP/2 over TLS and in
cleartext (h2load, if installed), in front of the same two nginx backends
as bench/proxy.sh; then `stackd demo-backend` against a real redis-server
(bench/sessions.sh's requests: a session loaded and saved, and /echo).
Each stackd is stopped with SIGTERM, so it writes its profile
(`-Cprofile-generate`) as it exits; the run fails if any load failed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import proxybench as pb  # noqa: E402

# (path, connections, seconds) for wrk over plain HTTP/1.1; "browser" is
# browser.lua's requests.
PLAIN = [("browser", 64, 5), ("browser", 1000, 5), ("/1m", 64, 3), ("/1m-chunked", 32, 3),
         ("/upload", 64, 3)]
BROWSER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser.lua")


def load(what, conns, seconds, port=None, path=None, any_status=False, **how):
    """One wrk run of bench/proxy.sh's (`path` on `port`, or `how` as
    pb.wrk takes it: /upload sends its chunked body); whether it served
    requests without errors. `any_status`: answers other than 2xx are part
    of the load (browser.lua's are mostly 404s)."""
    r = pb.wrk(port, path, conns, seconds, **how)
    errors = r["errors"] - (r["non2xx"] if any_status else 0)
    print(f"{what} c={conns}: {r['requests']} requests, {errors} errors", flush=True)
    return r["requests"] > 0 and errors == 0


def config(wd, plain, tls, backends):
    cert, key = os.path.join(wd, "cert.pem"), os.path.join(wd, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-days", "2", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    listen = f'["127.0.0.1:{plain}", {{ addr = "127.0.0.1:{tls}", tls = true }}]'
    return pb.stackd_conf(wd, "stackd", plain, backends,
                          f'[[proxy.tls]]\ncert = "{cert}"\nkey = "{key}"', listen=listen)


def h2load(url, seconds):
    """HTTP/2 load for `seconds`; None when h2load is not installed."""
    if shutil.which("h2load") is None:
        return None
    out = subprocess.run(
        ["h2load", "-c", "16", "-m", "8", "-D", str(seconds),
         "-H", "user-agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0",
         "-H", "cookie: JSESSIONID=8F3A2C1D9E7B6A5F4E3D2C1B0A9F8E7D.node1; theme=dark",
         "-H", "accept-language: en-GB,en;q=0.9", url + "?expand=lines&order=17"],
        capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("requests:")), "")
    return line


def sessions(stackd, wd):
    """`stackd demo-backend` on a redis-server of its own; what failed, if anything."""
    rport, bport = pb.free_port(), pb.free_port()
    redis = pb.Proc("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", wd], wd)
    backend = None
    try:
        if not pb.wait_port(rport):
            return "redis-server did not start"
        backend = pb.Proc("demo-backend", [stackd, "demo-backend", "--listen", f"127.0.0.1:{bport}",
                                           "--node-id", "pgo", "--redis", f"redis://127.0.0.1:{rport}/"],
                          wd, dict(os.environ, RUST_LOG="warn"))
        if not pb.wait_port(bport):
            return "the demo backend did not start"
        head = subprocess.run(["curl", "-fsS", "-D", "-", "-o", "/dev/null",
                               f"http://127.0.0.1:{bport}/session"],
                              capture_output=True, text=True, timeout=30).stdout
        cookie = next((l.split(":", 1)[1].split(";")[0].strip() for l in head.splitlines()
                       if l.lower().startswith("set-cookie:")), "")
        if not cookie:
            return "no session cookie from /session"
        for path, extra in (("/session", ["-H", f"Cookie: {cookie}"]), ("/echo", [])):
            if not load(f"demo-backend {path}", 32, 3, url=f"http://127.0.0.1:{bport}{path}",
                        extra=extra):
                return f"demo-backend {path}"
        return None
    finally:
        if backend:
            backend.stop()
        redis.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackd", required=True, help="the instrumented binary")
    args = ap.parse_args()
    wd = tempfile.mkdtemp(prefix="stackd-pgo-")
    os.chmod(wd, 0o755)
    backend, bports = pb.start_backends(wd)
    plain, tls = pb.free_port(), pb.free_port()
    conf = config(wd, plain, tls, bports)
    p = pb.Proc("stackd", [args.stackd, "proxy", "--config", conf], wd,
                dict(os.environ, RUST_LOG="warn"))
    failed = []
    try:
        if not (pb.wait_port(plain) and pb.wait_port(tls)):
            sys.exit(f"the instrumented stackd did not start; see {wd}/stackd.log")
        for path, conns, seconds in PLAIN:
            if path == "browser":
                ok = load("http browser", conns, seconds, any_status=True,
                          url=f"http://127.0.0.1:{plain}/", script=BROWSER)
            else:
                ok = load(f"http {path}", conns, seconds, port=plain, path=path)
            if not ok:
                failed.append(f"http {path} c={conns}")
        if not load("https browser", 64, 4, any_status=True, url=f"https://localhost:{tls}/",
                    script=BROWSER):
            failed.append("https")
        for url in (f"https://localhost:{tls}/", f"http://127.0.0.1:{plain}/"):
            line = h2load(url, 3)
            if line is None:
                print("h2load is not installed: HTTP/2 left out of the training", flush=True)
                break
            print(f"h2 {url}: {line}", flush=True)
            if " 0 failed, 0 errored" not in line:
                failed.append(f"h2 {url}")
    finally:
        p.stop()
        backend.stop()
    why = sessions(args.stackd, wd)
    if why:
        failed.append(why)
    if failed:
        sys.exit(f"training loads failed: {', '.join(failed)}; logs in {wd}")
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
