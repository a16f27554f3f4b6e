"""The coro engine makes no more syscalls per keep-alive request than the epoll engine: one
read and one write (it used to read again after every request and get EAGAIN, ~2 reads per
request). Ground truth: strace -c -f attached to the server over 600 sequential keep-alive
requests on one connection, 1 ms apart. Also the paths the "no read after a short read" rule takes: a
request split over two segments (the second arrives after the first was read: the loop's
EV_READ must wake the coroutine), and a pipelined burst larger than the read buffer (a full
read must be followed by another read, not by a wait).
"""
import os
import re
import signal
import subprocess
import tempfile
import time

import ctxlabtest as t

N = 600
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def strace_counts(engine):
    """{syscall: calls} of the server over N sequential keep-alive GETs."""
    with t.Serve(engine, "http") as s, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "strace.txt")
        st = subprocess.Popen(["strace", "-c", "-f", "-p", str(s.pid), "-o", out],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # strace says "Process N attached" once it is in
            line = st.stderr.readline().decode(errors="replace")
            if "attached" not in line:
                st.wait(5)
                t.skip("strace cannot attach here: %s" % line.strip())
            time.sleep(0.2)  # every thread attached
            with t.connect(s.addr) as c:
                r = t.HttpReader(c)
                for _ in range(N):
                    c.sendall(REQ)
                    status, _, _, _ = r.response()
                    assert status == 200, status
                    time.sleep(0.001)  # the server is idle again when the next one comes
                time.sleep(0.1)
        finally:
            st.send_signal(signal.SIGINT)
            try:
                st.wait(10)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait(5)
            st.stderr.close()
        counts = {}
        with open(out) as f:
            for ln in f:
                m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", ln)
                if m and m.group(2) != "total":
                    counts[m.group(2)] = int(m.group(1))
        return counts


def test_syscalls_per_request():
    if subprocess.run(["which", "strace"], capture_output=True).returncode:
        t.skip("strace not installed (scripts/setup.sh)")
    per = {}
    for e in ("coro", "epoll"):
        c = strace_counts(e)
        reads = c.get("read", 0) + c.get("recvfrom", 0)
        total = sum(v for k, v in c.items() if k not in ("restart_syscall",))
        per[e] = (reads / N, total / N)
        t.log("%s: %.3f reads, %.3f syscalls per request (%s)" % (e, reads / N, total / N, c))
    assert per["coro"][0] <= 1.05, "coro reads %.3f per request (1 expected)" % per["coro"][0]
    assert per["coro"][1] <= per["epoll"][1] + 0.05, per


def test_split_and_burst():
    with t.Serve("coro", "http") as s, t.connect(s.addr) as c:
        r = t.HttpReader(c)
        # split: the first half is read (a short read), the rest comes later
        c.sendall(REQ[:10])
        time.sleep(0.2)
        c.sendall(REQ[10:])
        assert r.response()[0] == 200
        # burst: 2000 pipelined requests (> 3 read buffers of 16 KiB)
        n = 2000
        c.sendall(REQ * n)
        for _ in range(n):
            assert r.response()[0] == 200
        c.sendall(REQ)
        assert r.response()[0] == 200


if __name__ == "__main__":
    t.run_tests([("syscalls_per_request", test_syscalls_per_request),
                 ("split_and_burst", test_split_and_burst)])
