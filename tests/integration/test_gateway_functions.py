#!/usr/bin/env python3
"""Functions (issue 11): `serve --functions DIR` routes /api/NAME to the built-in hello or runs
DIR/NAME per request (fork+exec, request body on stdin, stdout as the body), with a timeout
(504), an output limit (502), a failing function (502), names [a-z0-9_-] only (400), unknown
or not executable (404) — in both gateway handoffs, and on a plain engine (epoll). After the
limits fired, the server's tree holds only its own processes: no zombie, and nothing a killed
function started (its process group is killed with it)."""
import os
import socket
import tempfile
import time

import ctxlabtest as t

FUNCS = {
    "echo": "#!/bin/sh\nexec cat\n",
    "slow": "#!/bin/sh\nsleep 30\n",          # a child of the shell: killed with its group
    "big": "#!/bin/sh\nhead -c 200000 /dev/zero\n",
    "fail": "#!/bin/sh\necho partial\nexit 3\n",
}


def request(addr, method, path, body=b"", timeout=10):
    with t.connect(addr, timeout) as s:
        head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (method, path,
                                                                              len(body))
        s.sendall(head.encode() + body)
        st, _, b, _ = t.HttpReader(s).response(head=(method == "HEAD"))
        return st, b


def tree_state(pid):
    """(pids of the tree, those that are zombies)"""
    pids = t.proc_tree(pid)
    zombies = []
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    zombies.append(p)
        except OSError:
            pass
    return pids, zombies


def check(engine, *args):
    with tempfile.TemporaryDirectory() as d:
        for name, text in FUNCS.items():
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        with open(os.path.join(d, "plain"), "w") as f:
            f.write("not executable\n")
        with t.Serve(engine, "http", "--functions", d, "--function-timeout", "200ms",
                     "--function-output", "64k", *args) as s:
            before = sorted(t.proc_tree(s.pid))
            assert request(s.addr, "GET", "/api/hello") == (200, b"hello\n")
            payload = bytes(range(256)) * 40  # 10 KiB, every byte value
            assert request(s.addr, "POST", "/api/echo", payload) == (200, payload)
            assert request(s.addr, "GET", "/api/echo") == (200, b"")
            t0 = time.monotonic()
            st, body = request(s.addr, "POST", "/api/slow", b"x")
            took = time.monotonic() - t0
            assert st == 504, (st, body)
            assert took < 3, "504 after %.1fs: the 200 ms limit was not applied" % took
            st, body = request(s.addr, "GET", "/api/big")
            assert st == 502 and b"output limit" in body, (st, body)
            st, body = request(s.addr, "GET", "/api/fail")
            assert st == 502 and b"exit status 3" in body, (st, body)
            for path in ("/api/unknown", "/api/plain"):
                st, _ = request(s.addr, "GET", path)
                assert st == 404, (path, st)
            for path in ("/api/../x", "/api/A", "/api/", "/api/a.b", "/api/x%2fy"):
                st, _ = request(s.addr, "GET", path)
                assert 400 <= st < 500, (path, st)
            st, _ = request(s.addr, "DELETE", "/api/echo")
            assert st == 405, st
            # the connection stays usable after a function's error
            with t.connect(s.addr) as c:
                r = t.HttpReader(c)
                for path in ("/api/fail", "/api/hello"):
                    c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
                    st, _, b, _ = r.response()
                assert (st, b) == (200, b"hello\n"), (st, b)
            deadline = time.monotonic() + 5
            while True:
                pids, zombies = tree_state(s.pid)
                if sorted(pids) == before and not zombies:
                    break
                assert time.monotonic() < deadline, (
                    "left behind: tree %s (was %s), zombies %s" % (pids, before, zombies))
                time.sleep(0.05)
            # nothing a killed function started survives anywhere (its `sleep 30`)
            assert not [p for p in os.listdir("/proc") if p.isdigit() and
                        _cmdline(int(p)).startswith(b"sleep\x0030\x00") and
                        _ppid_outside(int(p), d)], "a killed function's child survived"
        t.log("%s %s: hello, echo (10 KiB), 504 in %.2fs, 502 x2, 404 x2, 4xx names, "
              "no zombie" % (engine, " ".join(args), took))


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _ppid_outside(pid, d):
    """an orphan (re-parented to init): what a killed `slow` would leave if only the shell
    were killed"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == 1
    except OSError:
        return False


def bad_dir():
    import subprocess
    p = subprocess.run([t.CTXLAB, "serve", "--engine", "gateway", "--functions",
                        "/nonexistent-ctxlab-fn", "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "/nonexistent-ctxlab-fn" in p.stderr, (p.returncode, p.stderr)


def main():
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    t.run_tests([
        ("bad --functions", bad_dir),
        ("gateway --handoff fdpass", lambda: check("gateway", "--handoff", "fdpass")),
        ("gateway --handoff proxy", lambda: check("gateway", "--handoff", "proxy")),
        ("epoll", lambda: check("epoll")),
    ])


if __name__ == "__main__":
    main()
