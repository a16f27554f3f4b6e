"""Shared helpers for ctxlab's integration tests (python3, standard library only).

    import ctxlabtest as t
    with t.Serve("epoll", "http") as s:          # port 0, parses the ready line
        reply = t.http_get(s.addr, "/")

Environment: CTXLAB (the binary), CTXLAB_SRC (source dir), CTXLAB_BUILD (build dir).
Skips: t.skip("reason") prints "SKIP: reason" and exits 77, which CMake declares as the
tests' SKIP_RETURN_CODE: ctest reports the test as skipped (never as passed), and
scripts/test.sh lists skipped tests with their reasons.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CTXLAB_SRC") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("CTXLAB_BUILD") or os.path.join(SRC, "build")
CTXLAB = os.environ.get("CTXLAB") or os.path.join(BUILD, "ctxlab")

# engines that run outside programs rather than ctxlab's protocol code: their bytes differ
# (headers), and they take only some of serve's options
EXTERNAL = {"go", "nginx"}

# The ready line (src/core/ready.h is the contract; tests/unit/test_core_ready.c pins the same
# examples): "listening on HOST:PORT engine=E proto=P pid=PID"; outside peers (load_testsrv)
# print only "listening on HOST:PORT". parse_ready is the one parser of the Python tests.
READY_PREFIX = "listening on "
READY_RE = re.compile(r"^listening on (\S+):(\d+) engine=(\S+) proto=(\S+) pid=(\d+)$")
_READY_ADDR_RE = re.compile(r"^(\[[^\]]+\]|[^\s\[\]]+):(\d+)$")


def parse_ready(line):
    """The fields of a ready line as a dict (host without brackets, port, engine, proto, pid;
    engine/proto "" and pid 0 when the line has only the address), or None when the line is
    not a well-formed ready line. Mirrors ready_parse in src/core/ready.c."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.rstrip("\n")
    if not line.startswith(READY_PREFIX):
        return None
    words = line[len(READY_PREFIX):].split(" ")
    if not words or "" in words:
        return None
    m = _READY_ADDR_RE.match(words[0])
    if not m or int(m.group(2)) > 65535:
        return None
    host = m.group(1)[1:-1] if m.group(1).startswith("[") else m.group(1)
    r = {"addr": words[0], "host": host, "port": int(m.group(2)), "engine": "", "proto": "",
         "pid": 0}
    for w in words[1:]:
        k, eq, v = w.partition("=")
        if not eq or not v:
            continue
        if k in ("engine", "proto"):
            r[k] = v
        elif k == "pid":
            if not v.isdigit() or int(v) <= 0:
                return None
            r["pid"] = int(v)
    return r


SKIP_RC = 77


_in_run_tests = False


class Skip(Exception):
    """Raised by skip() inside run_tests: that test is skipped, the others still run."""


def skip(reason):
    print("SKIP: " + reason, flush=True)
    if _in_run_tests:
        raise Skip(reason)
    sys.exit(SKIP_RC)


def sanitized():
    """True for an ASan+UBSan build (`ctxlab --version` says so): forking a sanitized process
    costs milliseconds, so tests whose load is fork-bound size it for that build."""
    out = subprocess.run([CTXLAB, "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    return "ASan" in out


def log(msg):
    print(msg, flush=True)


def list_engines():
    """{name: [protos]} as `ctxlab serve --list-engines` prints them."""
    out = subprocess.run([CTXLAB, "serve", "--list-engines"], check=True, capture_output=True,
                         text=True, timeout=10).stdout
    engines = {}
    for line in out.splitlines():
        parts = line.split()
        if parts:
            engines[parts[0]] = parts[1:]
    return engines


def engines_speaking(proto, exclude=()):
    return [e for e, ps in list_engines().items() if proto in ps and e not in exclude]


def go_peer_available():
    p = os.environ.get("CTXLAB_GO_PEER") or os.path.join(os.path.dirname(CTXLAB),
                                                         "ctxlab-peer-go")
    return os.access(p, os.X_OK)


_uring_probe = None


def uring_usable():
    """(ok, reason): whether `serve --engine uring` can set up io_uring here (it may be
    disabled by kernel.io_uring_disabled or a container's seccomp profile). Asked once."""
    global _uring_probe
    if _uring_probe is None:
        p = subprocess.Popen([CTXLAB, "serve", "--engine", "uring", "--proto", "sink",
                              "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        if line.startswith("listening on "):
            p.terminate()
            p.wait(5)
            _uring_probe = (True, "")
        else:
            p.wait(5)
            err = p.stderr.read().strip()
            _uring_probe = (False, "io_uring unusable here: " + (err or "exit %s" % p.returncode))
        p.stdout.close()
        p.stderr.close()
    return _uring_probe


def engine_usable(engine):
    """(ok, reason): external engines need their program; uring needs io_uring."""
    if engine == "uring":
        return uring_usable()
    if engine == "go" and not go_peer_available():
        return False, "go peer not built (run scripts/setup.sh, build target peer_go)"
    if engine == "nginx" and not os.access("/usr/sbin/nginx", os.X_OK):
        return False, "/usr/sbin/nginx missing (run scripts/setup.sh)"
    return True, ""


class Serve:
    """A `ctxlab serve` process on port 0; .host .port .addr .pid .proc."""

    def __init__(self, engine, proto, *args, preexec_fn=None, ready_timeout=15, prefix=None):
        self.engine, self.proto = engine, proto
        cmd = list(prefix or []) + [CTXLAB, "serve", "--engine", engine, "--proto", proto,
                                    "--listen", "127.0.0.1:0"] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        self.line = self._read_ready(ready_timeout)
        r = parse_ready(self.line)
        if not r or not r["pid"]:
            self.kill()
            raise AssertionError("bad ready line from %s/%s: %r (stderr: %s)" %
                                 (engine, proto, self.line, self.stderr_text()))
        self.host, self.port = r["host"], r["port"]
        self.addr = (self.host, self.port)
        assert r["engine"] == engine and r["proto"] == proto, self.line
        self.pid = r["pid"]
        assert self.pid == self.proc.pid, (self.pid, self.proc.pid)

    def _read_ready(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                self.kill()
                raise AssertionError("%s/%s: no ready line within %ss (stderr: %s)" %
                                     (self.engine, self.proto, timeout, self.stderr_text()))
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.proc.wait(5)
                raise AssertionError("%s/%s exited (%s) before its ready line: %s" %
                                     (self.engine, self.proto, self.proc.returncode,
                                      self.stderr_text()))
            buf += chunk
        sel.close()
        return buf.split(b"\n")[0].decode()

    def stderr_text(self):
        try:
            if self.proc.poll() is None:
                return "(still running)"
            return self.proc.stderr.read().decode(errors="replace").strip()
        except Exception:
            return "?"

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5):
        """SIGTERM; returns the exit code (asserts it stopped within timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s/%s did not stop within %ss of SIGTERM" %
                                 (self.engine, self.proto, timeout))
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            rc = self.stop()
            assert rc == 0, "%s/%s exited %s after SIGTERM: %s" % (
                self.engine, self.proto, rc, self.stderr_text())
        else:
            self.kill()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def connect(addr, timeout=10):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(min(1 << 20, n - len(out)))
        if not chunk:
            raise AssertionError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def recv_until_close(s, limit=1 << 24):
    out = bytearray()
    while len(out) < limit:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


class HttpReader:
    """Reads HTTP/1.1 responses from a socket (Content-Length or chunked framing)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.closed = False

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            self.closed = True
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head=False):
        """(status, {lowercase name: value}, body, raw bytes)"""
        raw = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        headtxt, self.buf = self.buf.split(b"\r\n\r\n", 1)
        raw += headtxt + b"\r\n\r\n"
        lines = headtxt.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                szl = self._line()
                raw += szl + b"\r\n"
                sz = int(szl.split(b";")[0], 16)
                if sz == 0:
                    while True:
                        t = self._line()
                        raw += t + b"\r\n"
                        if not t:
                            break
                    break
                data = self._take(sz + 2)
                raw += data
                body += data[:-2]
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
            raw += body
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            body, self.buf = self.buf, b""
            raw += body
        return status, headers, body, raw


def http_get(addr, path="/", timeout=10):
    with connect(addr, timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        st, hd, body, _ = HttpReader(s).response()
        return st, body


def proc_tree(pid):
    """pid and all its live descendants (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_s(pid):
    """utime+stime of every process in the tree plus their reaped children, in seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in proc_tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        # fields[0] is state (field 3): utime=14, stime=15, cutime=16, cstime=17
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / hz


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def tree_fd_count(pid):
    n = 0
    for p in proc_tree(pid):
        try:
            n += fd_count(p)
        except OSError:
            pass
    return n


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def run_tests(tests):
    """Runs [(name, fn)], prints each result; exits 1 if any failed, else 77 (skipped) if any
    called skip(), else returns."""
    global _in_run_tests
    failed = skipped = 0
    for name, fn in tests:
        t0 = time.monotonic()
        _in_run_tests = True
        try:
            fn()
            log("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        except Skip as e:
            skipped += 1
            log("skip %s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 (report every failure, keep going)
            failed += 1
            import traceback
            traceback.print_exc()
            log("FAIL %s: %s" % (name, e))
        finally:
            _in_run_tests = False
    if failed:
        log("%d failed" % failed)
        sys.exit(1)
    if skipped:
        log("%d skipped" % skipped)
        sys.exit(SKIP_RC)


if __name__ == "__main__":
    # Run as a test by ctest (the glob takes every *.py here): check the helpers against the
    # real binary: the engine list, the ready line, a GET, a clean SIGTERM stop.
    def selfcheck():
        engines = list_engines()
        assert "epoll" in engines and "http" in engines["epoll"], engines
        with Serve("epoll", "http") as s:
            assert s.host == "127.0.0.1" and s.port > 0, s.line
            st, body = http_get(s.addr, "/")
            assert (st, body) == (200, b"hello, world\n"), (st, body)
            assert s.pid in proc_tree(s.pid)
            assert tree_cpu_s(s.pid) >= 0
    def ready_parser():
        # the examples of tests/unit/test_core_ready.c: the two parsers agree
        r = parse_ready("listening on 127.0.0.1:7000 engine=epoll proto=http pid=42")
        assert r == {"addr": "127.0.0.1:7000", "host": "127.0.0.1", "port": 7000,
                     "engine": "epoll", "proto": "http", "pid": 42}, r
        r = parse_ready(b"listening on [::1]:65535 engine=go proto=echo pid=7\n")
        assert (r["host"], r["port"], r["pid"]) == ("::1", 65535, 7), r
        assert parse_ready("listening on 0.0.0.0:80")["port"] == 80
        assert parse_ready("listening on 1.2.3.4:80 engine=e proto=p pid=1 tls=no")["pid"] == 1
        for bad in ("ctxlab: warning: something", "listening on ",
                    "listening on 127.0.0.1 engine=x", "listening on 127.0.0.1:99999",
                    "listening on 1.2.3.4:80 pid=abc", "listening on 1.2.3.4:80 pid=-3",
                    "listening on [::1:80", "listening on  1.2.3.4:80"):
            assert parse_ready(bad) is None, bad
    run_tests([("ctxlabtest self-check", selfcheck), ("ready-line parser", ready_parser)])
