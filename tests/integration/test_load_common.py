"""Shared helpers for the ctxlab load integration tests. Run directly, it checks the fixture
itself: load_testsrv answers real bytes the way the other tests assume."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import parse_ready  # noqa: E402  the one ready-line parser of the tests

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
BUILD = os.environ.get("CTXLAB_BUILD", os.path.dirname(CTXLAB))
SRV = os.path.join(BUILD, "load_testsrv")


class Server:
    """Starts tests/helpers/load_testsrv (or any command printing 'listening on HOST:PORT')."""

    def __init__(self, *args, argv=None):
        self.argv = [str(a) for a in (argv or [SRV] + list(args))]
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        line = self.p.stdout.readline()
        r = parse_ready(line)
        if not r:
            self.stop()
            raise RuntimeError("server did not start: %r" % line)
        self.port = r["port"]
        self.addr = "127.0.0.1:%d" % self.port

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def load(*args, timeout=40, expect_rc=None):
    """Runs ctxlab load with --json - ; returns (json dict or None, rc, stderr, seconds)."""
    argv = [CTXLAB, "load", "-q", "--json", "-"] + [str(a) for a in args]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    dt = time.monotonic() - t0
    d = json.loads(p.stdout) if p.stdout.strip() else None
    if expect_rc is not None and p.returncode != expect_rc:
        raise AssertionError("rc %d != %d: %s\nstderr: %s" % (p.returncode, expect_rc,
                                                             " ".join(argv), p.stderr))
    return d, p.returncode, p.stderr, dt


def request_errors(d):
    e = d["errors"]
    return e["reset"] + e["timeout"] + e["parse"] + e["closed"]


def check_identity(d):
    """Every request sent ends in exactly one place."""
    lhs = d["messages_sent"]
    rhs = d["answered"] + request_errors(d) + d["unfinished"]
    assert lhs == rhs, "sent %d != answered %d + errors %d + unfinished %d" % (
        lhs, d["answered"], request_errors(d), d["unfinished"])


def run_tests(tests):
    failed = 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
            print("ok   %-40s %.1fs" % (t.__name__, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 -- report every failure
            failed += 1
            print("FAIL %-40s %s" % (t.__name__, e))
    sys.exit(1 if failed else 0)


def _recv_until(sock, n, deadline=5.0):
    sock.settimeout(deadline)
    data = b""
    while len(data) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_fixture_http_pipelined():
    import socket
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n"
    with Server("http") as s:
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        assert _recv_until(c, 3 * len(resp)) == resp * 3
        c.close()


def test_fixture_chat_fanout():
    import socket
    with Server("chat") as s:
        cs = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(3)]
        for c in cs:
            c.sendall(b"/join r\n")
        time.sleep(0.2)
        cs[0].sendall(b"hi\n")
        # sender ids are assigned in accept order from 1
        assert _recv_until(cs[1], 6) == b"1: hi\n"
        assert _recv_until(cs[2], 6) == b"1: hi\n"
        for c in cs:
            c.close()


if __name__ == "__main__":
    run_tests([test_fixture_http_pipelined, test_fixture_chat_fanout])
