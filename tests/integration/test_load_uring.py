"""ctxlab load --io uring against --io epoll: the same protocol and measurement logic on two
I/O mechanisms gives the same counts (http, echo, sink, chat; closed loop, --rate,
--no-keepalive, -n, --intervals); the JSON says which path ran; strace shows the uring path
really runs on io_uring_enter (no recv/send syscalls, fewer enters than requests); the
fallback seam CTXLAB_LOAD_NO_URING makes --io uring fail clearly and --io auto fall back."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import skip  # noqa: E402
from test_load_common import CTXLAB, Server, check_identity, load, run_tests  # noqa: E402

HTTP_RESP = len("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n")
_usable = None


def need_uring():
    global _usable
    if _usable is None:
        with Server("http") as s:
            d, rc, err, _ = load("--io", "uring", "-c", 1, "-n", 1, s.addr)
        _usable = (rc == 0 and d and d["io"] == "uring", err.strip())
    if not _usable[0]:
        skip("io_uring unusable here: " + _usable[1])


def both(*args, server=("http",)):
    """Runs the same load on both paths (each against a fresh server); returns {io: json}."""
    need_uring()
    out = {}
    for io in ("epoll", "uring"):
        with Server(*server) as s:
            d, _, _, _ = load("--io", io, *[s.addr if a == "ADDR" else a for a in args],
                              expect_rc=0)
        assert d["io"] == io, (io, d["io"])
        out[io] = d
    return out


def test_http_exact_counts():
    for io, d in both("-c", 8, "-t", 2, "--pipeline", 4, "-n", 4000, "ADDR").items():
        assert d["requests"] == 4000 and d["messages_sent"] == 4000, (io, d["requests"])
        assert d["status"] == {"200": 4000} and d["errors"]["total"] == 0, (io, d["errors"])
        assert d["bytes_received"] == 4000 * HTTP_RESP, (io, d["bytes_received"])
        assert d["latency_us"]["count"] == 4000 and d["latency_us"]["p50"] > 0, io
        check_identity(d)


def test_http_chunked_and_conn_close():
    for io, d in both("-c", 3, "--pipeline", 4, "-n", 999, "ADDR", server=("http", "--chunked")).items():
        assert d["requests"] == 999 and d["errors"]["total"] == 0, (io, d["errors"])
    for io, d in both("-c", 2, "-n", 200, "ADDR", server=("http", "--conn-close")).items():
        assert d["requests"] == 200 and d["connections_opened"] >= 200, (io, d["connections_opened"])


def test_no_keepalive():
    for io, d in both("-c", 4, "-t", 2, "-n", 600, "--no-keepalive", "ADDR").items():
        assert d["requests"] == 600 and d["errors"]["total"] == 0, (io, d["errors"])
        assert d["connections_opened"] >= 600, (io, d["connections_opened"])


def test_echo_exact_bytes():
    for io, d in both("--proto", "echo", "-c", 3, "--pipeline", 4, "--size", 100, "-n", 1200,
                      "ADDR", server=("echo",)).items():
        assert d["requests"] == 1200, (io, d["requests"])
        assert d["bytes_sent"] == 120000 and d["bytes_received"] == 120000, io
    # messages larger than one provided buffer (8 KiB): an answer spans several completions
    for io, d in both("--proto", "echo", "-c", 2, "--size", 40000, "-n", 100, "ADDR",
                      server=("echo",)).items():
        assert d["requests"] == 100 and d["bytes_received"] == 4000000, (io, d["bytes_received"])


def test_sink_paced_and_unpaced():
    for io, d in both("--proto", "sink", "-c", 2, "--size", 100, "--bandwidth", "800kbps",
                      "-d", "2s", "ADDR", server=("echo",)).items():
        assert abs(d["bytes_sent"] - 400000) <= 4000, (io, d["bytes_sent"])
    for io, d in both("--proto", "sink", "-c", 2, "--size", 1000, "-d", "1s", "ADDR",
                      server=("echo",)).items():
        assert d["bytes_sent"] > 1000000, (io, d["bytes_sent"])
        assert d["messages_sent"] == d["bytes_sent"] // 1000, io


def test_chat_deliveries():
    for io, d in both("--proto", "chat", "-c", 5, "-t", 2, "--rate", 500, "-d", "1s", "ADDR",
                      server=("chat",)).items():
        c = d["chat"]
        assert c["sent"] == 500, (io, c)
        assert c["expected"] == 4 * c["sent"] and c["delivered"] == c["expected"], (io, c)
        assert d["latency_us"]["count"] == c["delivered"], io
        assert d["latency_us"]["mean"] > d["latency_uncorrected_us"]["mean"], io


def test_rate_and_intervals():
    r = both("-c", 8, "-t", 2, "--rate", 2000, "-d", "2s", "--intervals", "500ms", "ADDR")
    for io, d in r.items():
        assert abs(d["rate_per_s"] - 2000) / 2000 < 0.02, (io, d["rate_per_s"])
        assert abs(d["messages_sent"] / d["duration_s"] - 2000) / 2000 < 0.02, io
        iv = d["intervals"]["rows"]
        assert len(iv) == 4, (io, len(iv))
        assert sum(x["count"] for x in iv) == d["latency_us"]["count"], io
        check_identity(d)
    # a stall shows in the corrected tail on both paths (coordinated omission unchanged)
    for io, d in both("-c", 10, "-t", 2, "--rate", 1000, "-d", "3s", "ADDR",
                      server=("http", "--stall-ms", 200, "--stall-after-ms", 1000)).items():
        assert d["latency_us"]["p99_9"] >= 150000, (io, d["latency_us"])
        assert d["latency_uncorrected_us"]["p50"] < 20000, io


class CountingServer:
    """A tiny HTTP server (a thread per connection) that counts every request it receives,
    also those that arrive after the load stopped reading."""

    def __init__(self):
        import socket
        import threading
        self.n = 0
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.threads = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import threading
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            th = threading.Thread(target=self.serve, args=(c,), daemon=True)
            th.start()
            self.threads.append(th)

    def serve(self, c):
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n"
        buf = b""
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    return
                buf += d
                k = buf.count(b"\r\n\r\n")
                if k:
                    buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
                    with self.lock:
                        self.n += k
                    try:
                        c.sendall(resp * k)
                    except OSError:
                        pass

    def total(self):
        self.ls.close()
        for th in self.threads:
            th.join(5)
        return self.n


def test_sent_reaches_the_server():
    """messages_sent counts what was written: at the end of a -d run the sends queued in the
    ring's last turn are submitted before the close, so the server gets every one of them."""
    need_uring()
    for io in ("uring", "epoll"):
        srv = CountingServer()
        d, _, _, _ = load("--io", io, "-c", 4, "-t", 2, "--pipeline", 4, "-d", "1s", srv.addr,
                          expect_rc=0)
        got = srv.total()
        assert d["messages_sent"] > 0 and d["config"]["warmup_s"] == 0, d
        assert got == d["messages_sent"], (io, got, d["messages_sent"], d["unfinished"])


def test_uring_path_uses_the_ring():
    """strace: the uring path sends and receives through io_uring_enter only (no recvfrom /
    sendto), and batches: fewer enters than requests with 32 connections."""
    need_uring()
    if not shutil.which("strace"):
        skip("no strace")
    with Server("http") as s, tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "st")
        # LeakSanitizer cannot run under ptrace: an ASan build is traced without it
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        p = subprocess.run(["strace", "-f", "-c", "-o", out, CTXLAB, "load", "-q", "--io",
                            "uring", "-c", "32", "-t", "1", "-n", "20000", s.addr],
                           capture_output=True, text=True, timeout=120, env=env)
        assert p.returncode == 0, p.stderr
        calls = {}
        for line in open(out):
            f = line.split()
            if len(f) >= 5 and f[-1].isidentifier() and f[3].isdigit():
                calls[f[-1]] = int(f[3])
    assert calls.get("io_uring_enter", 0) > 0, calls
    assert calls.get("io_uring_enter", 0) < 20000, calls
    for sc in ("recvfrom", "sendto", "recvmsg", "sendmsg", "read", "write", "epoll_wait",
               "epoll_pwait", "epoll_pwait2"):
        # the probe connect and the startup read a few files; no per-request syscalls
        assert calls.get(sc, 0) < 100, (sc, calls)


def test_fallback_seam():
    need_uring()
    env = dict(os.environ, CTXLAB_LOAD_NO_URING="1")
    with Server("http") as s:
        p = subprocess.run([CTXLAB, "load", "-q", "--io", "uring", "-n", "10", s.addr],
                           capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 1, p
        assert "--io uring: cannot set up io_uring" in p.stderr and "--io epoll" in p.stderr, \
            p.stderr
        p = subprocess.run([CTXLAB, "load", "--json", "-", "-q", "-n", "10", s.addr],
                           capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 0, p.stderr
        assert '"io":"epoll"' in p.stdout.replace(" ", ""), p.stdout
        assert "--io auto" in p.stderr and "using epoll" in p.stderr, p.stderr
        # without the seam, auto picks uring
        p = subprocess.run([CTXLAB, "load", "--json", "-", "-q", "-n", "10", s.addr],
                           capture_output=True, text=True, timeout=30)
        assert '"io":"uring"' in p.stdout.replace(" ", ""), p.stdout


def test_bad_io_value():
    p = subprocess.run([CTXLAB, "load", "--io", "kqueue", "127.0.0.1:1"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "bad value 'kqueue' for --io" in p.stderr, p.stderr


run_tests([test_http_exact_counts, test_http_chunked_and_conn_close, test_no_keepalive,
           test_echo_exact_bytes, test_sink_paced_and_unpaced, test_chat_deliveries,
           test_rate_and_intervals, test_sent_reaches_the_server, test_uring_path_uses_the_ring, test_fallback_seam,
           test_bad_io_value])
