"""uring engine specifics (the cross-engine tests cover its protocol bytes):
- io_uring blocked (a seccomp filter makes io_uring_setup fail with EPERM, as a container's
  profile or kernel.io_uring_disabled would): serve exits 1 before its ready line with a
  message naming io_uring, the reason and what to do (--engine epoll);
- --workers 2: two rings on two threads (SO_REUSEPORT), 300 connections sending at once
  (more than the 128 provided read buffers of a ring) all answered;
- chat with --workers 3 runs one worker (warning) and passes the chat conformance script;
- a client that sends but never reads: the server stops receiving (bounded buffering), and
  answers everything once the client reads;
- 200 clients connecting at the same moment are all accepted and answered; a stop with
  connections open ends every one of them and exits 0;
- the single-shot accept of kernels without multishot accept (before 5.19), forced here by
  the engine's test seam CTXLAB_URING_NO_MULTISHOT=1: the server says it falls back, and the
  checks above, the http/echo/sink/chat conformance scripts and the EMFILE pause (the accept
  error path) pass on it too.
Skips when io_uring is unusable here.
"""
import contextlib
import ctypes
import os
import platform
import socket
import struct
import subprocess
import threading
import time

import ctxlabtest as t
import test_serve_conformance as conf
import test_serve_emfile as emfile

NR_IO_URING_SETUP = 425  # the same number on every architecture since Linux 5.1
NO_MULTISHOT = "CTXLAB_URING_NO_MULTISHOT"
FALLBACK_NOTE = "no multishot accept here"
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = (200, b"hello, world\n")


@contextlib.contextmanager
def single_shot():
    """Servers started inside accept one connection at a time (the engine's seam)."""
    old = os.environ.get(NO_MULTISHOT)
    os.environ[NO_MULTISHOT] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ[NO_MULTISHOT]
        else:
            os.environ[NO_MULTISHOT] = old


def block_io_uring():
    """preexec_fn: a seccomp filter making io_uring_setup fail with EPERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}
    prog = [
        (0x20, 0, 0, 0),                        # ld [nr]
        (0x15, 0, 1, NR_IO_URING_SETUP),        # jeq #425 ? next : skip 1
        (0x06, 0, 0, 0x00050000 | 1),           # ret ERRNO(EPERM)
        (0x06, 0, 0, 0x7fff0000),               # ret ALLOW
    ]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog), ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        os._exit(97)
    if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        os._exit(98)


def test_blocked():
    if platform.machine() not in ("x86_64", "aarch64"):
        t.log("skip the seccomp check on %s" % platform.machine())
        return
    p = subprocess.run([t.CTXLAB, "serve", "--engine", "uring", "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10, preexec_fn=block_io_uring)
    if p.returncode in (97, 98):
        t.log("skip the seccomp check: cannot install a seccomp filter here")
        return
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stdout == "", "printed a ready line while io_uring is blocked: %r" % p.stdout
    err = p.stderr
    for want in ("io_uring", "Operation not permitted", "seccomp", "io_uring_disabled",
                 "--engine epoll"):
        assert want in err, "message %r lacks %r" % (err, want)
    t.log("blocked io_uring: %s" % err.strip())


def test_workers_many_conns():
    with t.Serve("uring", "http", "--workers", "2") as s:
        assert t.thread_count(s.pid) >= 2, t.thread_count(s.pid)
        n = 300
        socks = [t.connect(s.addr, timeout=10) for _ in range(n)]
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):  # three rounds of everyone at once
            for c in socks:
                c.sendall(req)
            for c in socks:
                st, _, body, _ = t.HttpReader(c).response()
                assert (st, body) == (200, b"hello, world\n"), (st, body)
        for c in socks:
            c.close()
        for _ in range(20):
            assert t.http_get(s.addr) == (200, b"hello, world\n")


def test_chat_one_worker():
    orig = t.Serve.__init__

    def with_workers(self, engine, proto, *args, **kw):
        orig(self, engine, proto, "--workers", "3", *args, **kw)
    t.Serve.__init__ = with_workers
    try:
        conf.check_chat_engine("uring")
    finally:
        t.Serve.__init__ = orig
    s = t.Serve("uring", "chat", "--workers", "3")
    assert t.thread_count(s.pid) == 1, "chat ran %d threads" % t.thread_count(s.pid)
    assert s.stop() == 0
    err = s.stderr_text()
    s.proc.stdout.close()
    s.proc.stderr.close()
    assert "one worker" in err, "no warning about --workers for chat: %r" % err


def test_backpressure():
    with t.Serve("uring", "echo") as s:
        c = t.connect(s.addr, timeout=10)
        c.setblocking(False)
        chunk = b"x" * 65536
        sent, idle_since = 0, None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and sent < (256 << 20):
            try:
                sent += c.send(chunk)
                idle_since = None
            except BlockingIOError:
                if idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > 0.5:
                    break
                time.sleep(0.01)
        assert idle_since is not None, "the server took %d bytes without being read" % sent
        assert sent < (64 << 20), "the server buffered %d bytes for a client that does not " \
            "read" % sent
        # now read everything back
        c.setblocking(True)
        got = 0
        reader_done = threading.Event()

        def reader():
            nonlocal got
            while got < sent:
                b = c.recv(1 << 20)
                if not b:
                    break
                got += len(b)
            reader_done.set()
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        assert reader_done.wait(20), "echo stalled at %d of %d bytes" % (got, sent)
        assert got == sent, (got, sent)
        c.close()
        t.log("a non-reading client could push %d bytes before the server stopped" % sent)


def test_concurrent_connects_and_stop(n=200, nidle=20):
    """n clients connect at the same moment (a thread each, released by a barrier), each
    gets its answer; then nidle connections stay open, one request answered each, across a
    SIGTERM: the server exits 0 and every one of them sees the end of the stream. Returns
    the server's stderr."""
    s = t.Serve("uring", "http")
    try:
        barrier = threading.Barrier(n)
        got = [None] * n

        def client(i):
            try:
                barrier.wait(10)
                with t.connect(s.addr, timeout=10) as c:
                    c.sendall(REQ)
                    st, _, body, _ = t.HttpReader(c).response()
                    got[i] = (st, body)
            except Exception as e:  # noqa: BLE001 (reported below, per client)
                got[i] = repr(e)
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        bad = [(i, g) for i, g in enumerate(got) if g != HELLO]
        assert not bad, "%d of %d concurrent clients failed, e.g. %r" % (len(bad), n, bad[:3])
        idle = [t.connect(s.addr, timeout=10) for _ in range(nidle)]
        for c in idle:
            c.sendall(REQ)
            st, _, body, _ = t.HttpReader(c).response()
            assert (st, body) == HELLO, (st, body)
        t0 = time.monotonic()
        rc = s.stop()
        assert rc == 0, "uring exited %s after SIGTERM: %s" % (rc, s.stderr_text())
        for c in idle:
            c.settimeout(5)
            assert t.recv_until_close(c) == b"", "bytes after the stop"
            c.close()
        t.log("%d concurrent connects answered; stop with %d open connections took %.2fs" %
              (n, nidle, time.monotonic() - t0))
        return s.stderr_text()
    finally:
        s.kill()
        s.proc.stdout.close()
        s.proc.stderr.close()


def test_multishot_connects_and_stop():
    err = test_concurrent_connects_and_stop()
    t.log("without %s: %s" % (NO_MULTISHOT, "fell back to single-shot accept (an old kernel)"
                              if FALLBACK_NOTE in err else "multishot accept"))


def test_single_shot_fallback():
    """The seam takes the fallback path (the server says so), and the accept checks pass."""
    with single_shot():
        err = test_concurrent_connects_and_stop()
        assert FALLBACK_NOTE in err, "CTXLAB_URING_NO_MULTISHOT=1 but no fallback: %r" % err
        test_workers_many_conns()


def test_single_shot_conformance():
    with single_shot():
        conf.check_http(["uring"])
        conf.check_echo(["uring"])
        conf.check_sink(["uring"])
        conf.check_chat_engine("uring")
        conf.check_chat_overflow("uring")
        test_chat_one_worker()
        test_backpressure()


def test_single_shot_emfile():
    with single_shot():
        emfile.check("uring")


def main():
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    if "uring" not in t.list_engines():
        t.skip("no uring engine in this build")
    tests = [("io_uring blocked: clear error", test_blocked)]
    ok, why = t.uring_usable()
    if not ok:
        t.log("SKIP the rest: %s" % why)
    else:
        tests += [("--workers 2, 300 connections at once", test_workers_many_conns),
                  ("chat with --workers 3 runs one worker", test_chat_one_worker),
                  ("backpressure on a non-reading client", test_backpressure),
                  ("200 concurrent connects, stop with connections open",
                   test_multishot_connects_and_stop),
                  ("single-shot accept (CTXLAB_URING_NO_MULTISHOT=1): fallback, 200 "
                   "concurrent connects, stop, --workers 2", test_single_shot_fallback),
                  ("single-shot accept: http, echo, sink, chat conformance, backpressure",
                   test_single_shot_conformance),
                  ("single-shot accept: EMFILE pause and recovery", test_single_shot_emfile)]
    t.run_tests(tests)


if __name__ == "__main__":
    main()
