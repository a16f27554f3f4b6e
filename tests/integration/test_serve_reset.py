"""Clients that reset mid-response: a large echo in flight, or a pile of pipelined http
requests, then close with SO_LINGER 0 (RST). Every engine stays up, still answers correctly,
and holds no more descriptors than before once the dust settles.
"""
import socket
import struct
import threading
import time

import ctxlabtest as t

ROUNDS = 20


def rst_close(sk):
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sk.close()


def settle_fds(pid, want, timeout=5):
    deadline = time.monotonic() + timeout
    n = t.tree_fd_count(pid)
    while n > want and time.monotonic() < deadline:
        time.sleep(0.05)
        n = t.tree_fd_count(pid)
    return n


def echo_resets(engine):
    with t.Serve(engine, "echo") as s:
        with t.connect(s.addr) as c:  # warm: the first connection may allocate
            c.sendall(b"warm\n")
            t.recv_exact(c, 5)
        time.sleep(0.2)
        base = t.tree_fd_count(s.pid)
        payload = b"z" * (4 << 20)
        for i in range(ROUNDS):
            c = t.connect(s.addr)
            c.settimeout(2)

            def send():
                try:
                    c.sendall(payload)
                except OSError:
                    pass
            th = threading.Thread(target=send, daemon=True)
            th.start()
            got = c.recv(65536)  # the echo is flowing back
            assert got, "no echo before the reset"
            time.sleep(0.01 * (i % 4))
            rst_close(c)
            th.join(5)
            assert s.alive(), "%s died after a reset mid-echo" % engine
        with t.connect(s.addr) as c:
            msg = b"after the resets\n" * 1000
            threading.Thread(target=c.sendall, args=(msg,), daemon=True).start()
            assert t.recv_exact(c, len(msg)) == msg
        n = settle_fds(s.pid, base)
        assert n <= base, "%s: %d fds after %d resets, %d before" % (engine, n, ROUNDS, base)


def http_resets(engine):
    with t.Serve(engine, "http") as s:
        assert t.http_get(s.addr) == (200, b"hello, world\n")
        time.sleep(0.2)
        base = t.tree_fd_count(s.pid)
        reqs = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5000
        for i in range(ROUNDS):
            c = t.connect(s.addr)
            c.settimeout(2)
            try:
                c.sendall(reqs)
            except OSError:
                pass
            c.recv(1000 * (i + 1))
            rst_close(c)
            assert s.alive(), "%s died after a reset mid-response" % engine
        assert t.http_get(s.addr) == (200, b"hello, world\n")
        n = settle_fds(s.pid, base)
        assert n <= base, "%s: %d fds after %d resets, %d before" % (engine, n, ROUNDS, base)


def main():
    tests = []
    for e, protos in t.list_engines().items():
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip resets on %s: %s" % (e, why))
            continue
        if "echo" in protos:
            tests.append(("reset mid-echo on %s" % e, lambda e=e: echo_resets(e)))
        if "http" in protos:
            tests.append(("reset mid-http on %s" % e, lambda e=e: http_resets(e)))
    t.run_tests(tests)


if __name__ == "__main__":
    main()
