#!/usr/bin/env python3
"""Hostile clients against a real stackd proxy, by hand before a stop.

A raw-socket backend on loopback logs every request it sees, so the last
line can say whether any reached it twice. Nine cases, each printed
with how it ended and when: half a head, the HTTP/2 preface, a client
that never reads 64 MiB, a body one byte every 3 s, Content-Length with
Transfer-Encoding, two Host headers, a body part ending in CRLFCRLF that
the upstream answers early, 30 WebSocket upgrades over
`max_connections = 20`, and a body of 2,000 one-byte chunks (how many
chunks the upstream got it in). Not part of CI: the tests in crates/proxy/tests
assert these; this runs the release binary as an operator would.

    python3 bench/hostile.py target/release/stackd      (WORKERS=0: the process runtime)
"""
import os, socket, subprocess, sys, tempfile, threading, time, collections

BIN = sys.argv[1]
WORKERS = os.environ.get("WORKERS", '"auto"')
seen = collections.Counter()
log = []
ws_open = 0
ws_max = 0
big_end = {}
tiny = {}
lock = threading.Lock()


def backend_conn(c):
    global ws_open, ws_max
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n")[0].decode()
            path = line.split()[1]
            with lock:
                seen[path] += 1
                log.append(line)
            hdrs = {h.split(b":")[0].strip().lower(): h.split(b":", 1)[1].strip() for h in head.split(b"\r\n")[1:] if b":" in h}
            if path.startswith("/early"):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
                time.sleep(1)
                return
            if path.startswith("/tiny"):
                # A chunked body: how many chunks it came in.
                while not buf.endswith(b"\r\n0\r\n\r\n"):
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                with lock:
                    tiny[path] = (buf.count(b"\r\n") - 2) // 2
                buf = b""
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                continue
            n = int(hdrs.get(b"content-length", b"0"))
            while len(buf) < n:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[n:]
            if path.startswith("/big"):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                t = time.time()
                try:
                    chunk = b"x" * (1 << 20)
                    for _ in range(64):
                        c.sendall(chunk)
                    big_end[path] = ("sent all", time.time() - t)
                except OSError as e:
                    big_end[path] = (f"released: {e.__class__.__name__}", time.time() - t)
                return
            if path.startswith("/ws"):
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                with lock:
                    ws_open += 1
                    ws_max = max(ws_max, ws_open)
                try:
                    while c.recv(4096):
                        pass
                finally:
                    with lock:
                        ws_open -= 1
                return
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass
    finally:
        c.close()


be = socket.socket()
be.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
be.bind(("127.0.0.1", 0))
be.listen(512)
threading.Thread(target=lambda: [threading.Thread(target=backend_conn, args=(be.accept()[0],), daemon=True).start() for _ in iter(int, 1)], daemon=True).start()

port = 18490
cfg = f'''[proxy]
listen = ["127.0.0.1:{port}"]
access_log = "off"
workers = {WORKERS}
max_connections = 20
client_header_timeout = "2s"
client_body_timeout = "2s"
client_send_timeout = "2s"
keepalive_timeout = "3s"
read_timeout = "3s"
[[proxy.upstream]]
name = "app"
servers = [ {{ addr = "127.0.0.1:{be.getsockname()[1]}" }} ]
[[proxy.route]]
path = "/"
upstream = "app"
'''
d = tempfile.mkdtemp()
path = os.path.join(d, "p.toml")
open(path, "w").write(cfg)
p = subprocess.Popen([BIN, "proxy", "--config", path], stderr=open(os.path.join(d, "proxy.log"), "w"))


def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(15)
    return s


def answer(s):
    """Everything until the proxy closes (or 15 s), and when it closed."""
    out, t = b"", time.time()
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    return out, time.time() - t


try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)

    s = conn(); s.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\n"); out, t = answer(s)
    print(f"1 half a head, then silence: {out[:12]!r}, closed after {t:.2f}s")

    s = conn(); s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); out, t = answer(s)
    print(f"2 HTTP/2 preface, then silence: {len(out)} bytes (h2 frames), closed after {t:.2f}s")

    s = conn(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); time.sleep(8)
    print(f"3 never reads 64 MiB: upstream {big_end.get('/big')}")
    s.close()

    s = conn(); s.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    t0 = time.time(); status = b""
    try:
        for _ in range(10):
            s.sendall(b"a"); s.settimeout(3)
            try:
                status = s.recv(100)
                if status:
                    break
            except socket.timeout:
                pass
    except OSError as e:
        status = str(e).encode()
    print(f"4 body one byte every 3 s: {status[:12]!r} after {time.time() - t0:.2f}s")

    s = conn(); s.sendall(b"POST /clte HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    print(f"5 Content-Length with Transfer-Encoding: {answer(s)[0][:12]!r}")

    s = conn(); s.sendall(b"GET /twohost HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    print(f"6 two Host headers: {answer(s)[0][:12]!r}")

    s = conn()
    body = b"x\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:3])
    time.sleep(0.5); s.sendall(body[3:]); out, t = answer(s)
    print(f"7 body part ending in CRLFCRLF, answered early: {out.count(b'HTTP/1.1')} response(s), {out[:12]!r}")

    socks, t0 = [], time.time()
    for i in range(30):
        try:
            w = conn(); w.settimeout(0.5)
            w.sendall(b"GET /ws%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" % i)
            socks.append(w)
        except OSError:
            pass
    time.sleep(1)
    print(f"8 30 WebSocket upgrades, max_connections 20: {ws_max} open at once upstream")
    closed = 0
    deadline = time.time() + 15
    for w in socks:
        w.settimeout(max(0.1, deadline - time.time()))
        try:
            while w.recv(4096):
                pass
        except (socket.timeout, OSError):
            continue
        closed += 1
    print(f"  {closed} of {len(socks)} closed by {time.time() - t0:.1f}s (read_timeout 3s; waiting ones served after)")
    print(f"  upstream saw {ws_max} at most at once")

    s = conn()
    s.sendall(b"POST /tiny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              + b"1\r\nx\r\n" * 2000 + b"0\r\n\r\n")
    status = answer(s)[0][:12]
    print(f"9 a body of 2,000 one-byte chunks: {status!r}; upstream got it as {tiny.get('/tiny')} chunk(s)")

    twice = {k: v for k, v in seen.items() if v > 1}
    print(f"nothing twice upstream: {not twice} {twice or ''}; smuggled seen: {seen.get('/smuggled', 0)}")
finally:
    p.terminate()
    print("proxy exit", p.wait(15))
