"""EMFILE: the server runs with RLIMIT_NOFILE 64 and gets 100 connections at once. While it is
out of descriptors it must not spin (its tree's CPU time over 2 s stays under 0.5 s), the
connections it did accept keep working, and once the clients close it answers new ones again.
Every engine that speaks http.
"""
import resource
import time

import ctxlabtest as t

NOFILE = 64
NCONN = 100
CPU_LIMIT_S = 0.5


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def check(engine):
    # --max-conns 0: the default cap (bounded by the open-file limit) would keep the server
    # from running out of descriptors, which is what this test is about
    with t.Serve(engine, "http", "--max-conns", "0", preexec_fn=limit_fds) as s:
        assert t.http_get(s.addr) == (200, b"hello, world\n")
        socks = []
        for _ in range(NCONN):
            c = t.connect(s.addr, timeout=3)  # the kernel backlog completes the handshake
            socks.append(c)
        time.sleep(0.3)
        # the first ones were accepted: they answer
        socks[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _, body, _ = t.HttpReader(socks[0]).response()
        assert (st, body) == (200, b"hello, world\n")
        # the last ones are beyond the limit: waiting in the backlog (or closed), not answered
        last = socks[-1]
        last.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        last.settimeout(0.3)
        try:
            over = last.recv(100)
        except OSError:
            over = b""
        reached = not over.startswith(b"HTTP/1.1 200")
        t.log("%s: descriptor limit reached: %s" % (engine, "yes" if reached else "no"))
        if engine in ("epoll", "thread"):
            assert reached, "%s answered connection %d under RLIMIT_NOFILE %d" % (
                engine, NCONN, NOFILE)
        cpu0 = t.tree_cpu_s(s.pid)
        time.sleep(2.0)
        cpu = t.tree_cpu_s(s.pid) - cpu0
        assert s.alive(), "%s died out of descriptors: %s" % (engine, s.stderr_text())
        assert cpu < CPU_LIMIT_S, "%s burnt %.2fs CPU in 2s out of descriptors (spinning)" % (
            engine, cpu)
        for c in socks:
            c.close()
        # recovers: new connections are served again (the backlog drains first)
        deadline = time.monotonic() + 10
        while True:
            try:
                if t.http_get(s.addr, timeout=2) == (200, b"hello, world\n"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "%s did not recover after EMFILE" % engine
            time.sleep(0.1)
        for _ in range(20):
            assert t.http_get(s.addr, timeout=2) == (200, b"hello, world\n")
        t.log("%s: %.3fs CPU over 2s out of descriptors" % (engine, cpu))


def main():
    tests = []
    for e in t.engines_speaking("http"):
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip emfile on %s: %s" % (e, why))
            continue
        tests.append(("emfile on %s" % e, lambda e=e: check(e)))
    t.run_tests(tests)


if __name__ == "__main__":
    main()
