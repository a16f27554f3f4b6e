#!/usr/bin/env python3
"""Several load hosts merged exactly: a server in netns S and two load hosts, netns A and B,
joined by a bridge in S (198.51.100.0/24, TEST-NET-2, only inside the namespaces).

The server is a counting HTTP server (this file, run through a --bin wrapper that hands every
other command to the real ctxlab): its own count of the requests it received is the ground
truth. With warmup = 0 every request the load hosts sent lies in their windows, so
  server's count == sum of the hosts' messages_sent                    (exactly)
  merged latency count == sum of the hosts' requests == throughput     (exactly)
  each host: requests + unfinished + errors == messages_sent
and the connections and the open-loop rate are split over the hosts (load_hosts[].rate: the
rate each host's load generator reports it ran).
Skips when not root or when `ip netns` is not permitted."""
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

CTXLAB = os.path.realpath(t.CTXLAB) if os.path.sep in t.CTXLAB else shutil.which(t.CTXLAB)
SRV = "198.51.100.1"


def ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def count_server(countfile, argv):
    """`serve --engine E --proto P --listen H:0 ...`: answers every HTTP request head with
    200, counts them; at SIGTERM drains what is left and writes the count."""
    opts = dict(zip(argv[1::2], argv[2::2]))
    host = opts["--listen"].rsplit(":", 1)[0]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, 0))
    ls.listen(128)
    ls.setblocking(False)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    print("listening on %s:%d engine=%s proto=%s pid=%d" % (
        host, ls.getsockname()[1], opts.get("--engine", "x"), opts.get("--proto", "http"),
        os.getpid()), flush=True)
    count = 0
    bufs = {}
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    quiet_since = None
    while True:
        ev = sel.select(0.05)
        if stop:
            if ev:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.3:
                break
        for key, _ in ev:
            if key.data is None:
                try:
                    c, _ = ls.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, 1)
                bufs[c] = b""
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(c)
                c.close()
                del bufs[c]
                continue
            b = bufs[c] + d
            n = b.count(b"\r\n\r\n")
            count += n
            bufs[c] = b[b.rfind(b"\r\n\r\n") + 4:] if n else b
            if n:
                try:
                    c.sendall(resp * n)
                except OSError:
                    pass
    open(countfile, "a").write("%d\n" % count)
    return 0


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--count-server":
        return count_server(sys.argv[2], sys.argv[3:])
    # a bad item of the host list is named (no namespace needed)
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "bad.ini")
        open(spec, "w").write("[experiment]\nrepeat = 1\n[server]\nengine = epoll\nproto = http\n"
                              "[hosts]\nload = local, netns:a/b\n")
        p = subprocess.run([CTXLAB, "run", "--dry-run", spec], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0 and "bad load host 'netns:a/b' in 'local, netns:a/b'" in \
            p.stderr, p.stderr
        open(spec, "w").write("[experiment]\nrepeat = 1\n[server]\nengine = epoll\nproto = http\n"
                              "[hosts]\nload = local, netns:x\n")
        p = subprocess.run([CTXLAB, "run", "--dry-run", spec], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0 and "load local, netns:x" in p.stdout, p.stdout + p.stderr
    if os.geteuid() != 0 or not shutil.which("ip"):
        t.skip("needs root and iproute2 (network namespaces)")
    tag = "cm%d" % os.getpid()
    S, A, B = tag + "s", tag + "a", tag + "b"
    base = tempfile.mkdtemp(prefix="ctxlab-multiload-")
    made = []
    try:
        p = ip("netns", "add", S, check=False)
        if p.returncode != 0:
            t.skip("'ip netns add' is not permitted here: %s" % p.stderr.strip())
        made.append(S)
        ip("netns", "add", A), made.append(A)
        ip("netns", "add", B), made.append(B)
        ip("-n", S, "link", "add", "br0", "type", "bridge")
        ip("-n", S, "addr", "add", SRV + "/24", "dev", "br0")
        ip("-n", S, "link", "set", "br0", "up")
        for ns, n, addr in ((A, "a", "198.51.100.2/24"), (B, "b", "198.51.100.3/24")):
            ip("link", "add", tag + n + "0", "type", "veth", "peer", "name", tag + n + "1")
            ip("link", "set", tag + n + "0", "netns", S)
            ip("link", "set", tag + n + "1", "netns", ns)
            ip("-n", S, "link", "set", tag + n + "0", "master", "br0")
            ip("-n", S, "link", "set", tag + n + "0", "up")
            ip("-n", ns, "addr", "add", addr, "dev", tag + n + "1")
            ip("-n", ns, "link", "set", tag + n + "1", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", S, "link", "set", "lo", "up")
        countfile = os.path.join(base, "count")
        wrapper = os.path.join(base, "ctxlab-counting")
        open(wrapper, "w").write(
            "#!/bin/sh\nif [ \"$1\" = serve ] && [ \"$2\" != --list-engines ]; then\n"
            "  exec %s %s --count-server %s \"$@\"\nfi\nexec %s \"$@\"\n" % (
                sys.executable, os.path.abspath(__file__), countfile, CTXLAB))
        os.chmod(wrapper, 0o755)

        def run(name, rate_line, conns):
            spec = os.path.join(base, name + ".ini")
            open(spec, "w").write(
                "[experiment]\nrepeat = 1\nwarmup = 0s\nduration = 1s\nprecision = off\n"
                "[server]\nengine = epoll\nproto = http\ncpus = 1\n"
                "[load]\nconnections = %d\n%s"
                "[hosts]\nserver = netns:%s\nload = netns:%s, netns:%s\nserver_address = %s\n"
                % (conns, rate_line, S, A, B, SRV))
            if os.path.exists(countfile):
                os.unlink(countfile)
            d = os.path.join(base, name)
            p = subprocess.run([CTXLAB, "run", "-q", "--bin", wrapper, "-o", d, spec],
                               capture_output=True, text=True, timeout=80)
            assert p.returncode == 0, p.stderr[-2000:]
            recs = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
            assert len(recs) == 1, recs
            r = recs[0]
            assert r["status"] == "ok", r.get("reason")
            served = int(open(countfile).read().split()[-1])
            return r, served

        def check(r, served, conns):
            lh = r["load_hosts"]
            assert [h["host"] for h in lh] == ["netns:" + A, "netns:" + B], lh
            assert [h["connections"] for h in lh] == [conns - conns // 2, conns // 2], lh
            sent = sum(h["messages_sent"] for h in lh)
            req = sum(h["requests"] for h in lh)
            for h in lh:
                assert h["requests"] > 0 and h["client_cpu_s"] > 0, h
                assert h["requests"] + h["unfinished"] + h["errors"] == h["messages_sent"], h
            assert served == sent, "server counted %d, the hosts sent %d (%s)" % (served, sent,
                                                                               lh)
            assert r["latency_us"]["count"] == req == r["throughput"]["requests"], (
                r["latency_us"], req, r["throughput"])
            assert r["load"]["config"]["connections"] == conns, r["load"]["config"]
            return lh, req

        r, served = run("closed", "", 5)
        lh, req = check(r, served, 5)
        assert all(h["rate"] == 0 for h in lh), lh
        t.log("closed loop: server counted %d = sent %s; requests %s = latency count %d" % (
            served, [h["messages_sent"] for h in lh], [h["requests"] for h in lh], req))
        r, served = run("open", "rate = 600\n", 8)
        lh, req = check(r, served, 8)
        # each load generator reports the rate it ran (its own config): half of the spec's;
        # whether it held it is the load generator's own test (test_load_openloop.py)
        assert [h["rate"] for h in lh] == [300, 300], lh
        assert abs(r["load"]["config"]["rate"] - 600) < 1e-6, r["load"]["config"]
        assert abs(r["load"]["target_rate_per_s"] - 600) < 1e-6, r["load"]
        t.log("open loop 600/s over 2 hosts: server counted %d = sent %s; requests %s" % (
            served, [h["messages_sent"] for h in lh], [h["requests"] for h in lh]))
        print("ok")
    finally:
        for ns in made:
            for p in ip("netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
            ip("netns", "del", ns, check=False)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
