"""gateway engine: both handoffs (--handoff proxy|fdpass) pass the cross-engine conformance
script (http bytes equal to epoll's, echo 1 B .. 1 MiB, sink, chat 20 x 50 with one order, chat overflow);
with fdpass the client's socket really moves (it is in a worker's /proc/PID/fd and not in the
front's), with proxy the front holds it and no worker does; a killed worker is restarted and
the server keeps answering; with proxy, the EMFILE, --max-conns, --idle-timeout and
stop-in-flight checks of the cross-engine tests (which run the default, fdpass) pass too; a bad
--handoff value exits 2 naming it.
"""
import os
import signal
import socket
import subprocess
import time

import ctxlabtest as t
import test_serve_conformance as conf
import test_serve_emfile as emfile
import test_serve_options as options

MODES = ("fdpass", "proxy")


class with_handoff:
    """Makes every t.Serve of the gateway engine pass --handoff MODE (the conformance checks
    construct their servers themselves)."""

    def __init__(self, mode):
        self.mode = mode
        self.orig = t.Serve.__init__

    def __enter__(self):
        orig, mode = self.orig, self.mode

        def init(s, engine, proto, *args, **kw):
            extra = ("--handoff", mode) if engine == "gateway" else ()
            orig(s, engine, proto, *extra, *args, **kw)
        t.Serve.__init__ = init

    def __exit__(self, *exc):
        t.Serve.__init__ = self.orig


def conformance(mode):
    with with_handoff(mode):
        conf.check_http(["gateway"])
        conf.check_echo(["gateway"])
        conf.check_sink(["gateway"])
        conf.check_chat_engine("gateway")
        if hasattr(conf, "check_chat_overflow"):
            conf.check_chat_overflow("gateway")
    t.log("conformance ok with --handoff %s" % mode)


def proxy_limits():
    """The cross-engine EMFILE, --max-conns, --idle-timeout and stop-in-flight checks run
    the gateway with its default handoff (fdpass); here the same checks with proxy."""
    orig = t.engines_speaking
    t.engines_speaking = lambda proto, exclude=(): ["gateway"]
    try:
        with with_handoff("proxy"):
            emfile.check("gateway")
            options.test_max_conns()
            options.test_idle_timeout()
            options.test_stop_in_flight()
    finally:
        t.engines_speaking = orig


def workers_of(pid):
    return [p for p in t.proc_tree(pid) if p != pid]


def server_socket_inode(server_port, client_port):
    """inode of the server side of the loopback TCP connection client_port -> server_port."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fl = row.split()
            lport = int(fl[1].rsplit(":", 1)[1], 16)
            rport = int(fl[2].rsplit(":", 1)[1], 16)
            if lport == server_port and rport == client_port:
                return int(fl[9])
    return None


def holders(pids, inode):
    want = "socket:[%d]" % inode
    out = []
    for p in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % p)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (p, fd)) == want:
                    out.append(p)
                    break
            except OSError:
                pass
    return out


def fd_location(mode):
    with t.Serve("gateway", "http", "--handoff", mode, "--workers", "2") as s:
        workers = workers_of(s.pid)
        assert len(workers) == 2, "want 2 workers, found %s" % workers
        with t.connect(s.addr) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            st, _, body, _ = t.HttpReader(c).response()
            assert (st, body) == (200, b"hello, world\n")  # handed over and answered
            inode = server_socket_inode(s.port, c.getsockname()[1])
            assert inode, "no server-side socket for the client in /proc/net/tcp"
            in_front = holders([s.pid], inode)
            in_workers = holders(workers, inode)
            if mode == "fdpass":
                assert not in_front, "fdpass: the front still holds the client socket"
                assert len(in_workers) == 1, (
                    "fdpass: client socket held by workers %s (want exactly one)" % in_workers)
            else:
                assert in_front == [s.pid], "proxy: the front does not hold the client socket"
                assert not in_workers, "proxy: worker(s) %s hold the client socket" % in_workers
            # a second connection goes to the other worker (round-robin)
            with t.connect(s.addr) as c2:
                c2.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert t.HttpReader(c2).response()[0] == 200
                if mode == "fdpass":
                    inode2 = server_socket_inode(s.port, c2.getsockname()[1])
                    w2 = holders(workers, inode2)
                    assert len(w2) == 1 and w2 != in_workers, (
                        "round-robin: both connections in %s and %s" % (in_workers, w2))
        t.log("%s: client socket in front=%s workers=%s" % (mode, in_front, in_workers))


def restart(mode):
    with t.Serve("gateway", "http", "--handoff", mode, "--workers", "2") as s:
        before = workers_of(s.pid)
        assert len(before) == 2, before
        # an open connection on the victim dies with it; the server stays up
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            now = workers_of(s.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, "worker %d not restarted: %s" % (victim, now)
            time.sleep(0.05)
        assert s.alive()
        # both workers (round-robin) answer
        for _ in range(10):
            assert t.http_get(s.addr, timeout=5) == (200, b"hello, world\n")
        t.log("%s: worker %d killed, now %s" % (mode, victim, now))


def balance(how):
    """Three connections A, B, C (round-robin: workers 0, 1, 0), then A and C close: worker 0
    holds none, worker 1 one. The next connection D goes to worker 1 with rr (its turn) and to
    worker 0 with least-conn (fewest open)."""
    with t.Serve("gateway", "http", "--workers", "2", "--balance", how) as s:
        workers = workers_of(s.pid)
        assert len(workers) == 2, workers

        def opened():
            c = t.connect(s.addr)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert t.HttpReader(c).response()[0] == 200
            w = holders(workers, server_socket_inode(s.port, c.getsockname()[1]))
            assert len(w) == 1, w
            return c, w[0]

        a, wa = opened()
        b, wb = opened()
        c, wc = opened()
        assert wa == wc != wb, "not round-robin at first: %s %s %s" % (wa, wb, wc)
        a.close()
        c.close()
        time.sleep(0.3)  # the worker sees the EOFs and takes them off its count
        d, wd = opened()
        want = wb if how == "rr" else wa
        assert wd == want, "--balance %s: D went to %d, want %d (A, C: %d; B: %d)" % (
            how, wd, want, wa, wb)
        b.close()
        d.close()
        t.log("--balance %s: A,C on %d, B on %d, then D on %d" % (how, wa, wb, wd))


def bad_balance():
    p = subprocess.run([t.CTXLAB, "serve", "--engine", "gateway", "--balance", "random",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--balance" in p.stderr and "least-conn" in p.stderr, p.stderr


def bad_handoff():
    p = subprocess.run([t.CTXLAB, "serve", "--engine", "gateway", "--handoff", "splice",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--handoff" in p.stderr and "splice" in p.stderr and "proxy" in p.stderr, p.stderr
    assert p.stdout == "", p.stdout


def main():
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    if "gateway" not in t.list_engines():
        t.skip("no gateway engine in this build")
    tests = [("bad --handoff", bad_handoff), ("bad --balance", bad_balance),
             ("--balance rr", lambda: balance("rr")),
             ("--balance least-conn", lambda: balance("least-conn"))]
    for m in MODES:
        tests += [("conformance --handoff %s" % m, lambda m=m: conformance(m)),
                  ("client fd location --handoff %s" % m, lambda m=m: fd_location(m)),
                  ("worker restart --handoff %s" % m, lambda m=m: restart(m))]
    tests.append(("emfile, max-conns, idle timeout, stop in flight --handoff proxy",
                  proxy_limits))
    t.run_tests(tests)


if __name__ == "__main__":
    main()
