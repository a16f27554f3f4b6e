#!/usr/bin/env python3
"""The fork and prefork engines over real sockets: protocol bytes, chat fan-out through the
shared log (20 clients x 50 lines, exactly once, per-sender order), process lifetime (no
child outlives a SIGKILLed server, no zombies after 1000 connections, dead prefork workers
are restarted), timeouts and the graceful stop.

Needs $CTXLAB (the built binary); skips when it or its `serve` command is missing."""
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

CTXLAB = os.environ.get("CTXLAB", "")
READY_RE = re.compile(rb"^listening on (\S+):(\d+) engine=(\S+) proto=(\S+) pid=(\d+)")
ENGINES = ("fork", "prefork")


def have_serve():
    if not CTXLAB or not os.access(CTXLAB, os.X_OK):
        return False
    try:
        out = subprocess.run([CTXLAB, "serve", "--list-engines"], capture_output=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    names = {line.split()[0] for line in out.decode(errors="replace").splitlines() if line.strip()}
    return all(e in names for e in ENGINES)


def proc_state(pid):
    """'R', 'S', 'Z', ... or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3].decode()


def children(ppid):
    """Live (non-zombie) and zombie children of ppid, from /proc."""
    live, zombies = [], []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2:].split()
        if int(rest[1]) != ppid:
            continue
        (zombies if rest[0] == b"Z" else live).append(int(name))
    return live, zombies


def cpu_s(pid):
    """utime + stime of one process, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rest = data[data.rindex(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(cond, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


class Server:
    def __init__(self, engine, proto, *extra, preexec_fn=None):
        self.args = [CTXLAB, "serve", "--engine", engine, "--proto", proto,
                     "--listen", "127.0.0.1:0", *extra]
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  preexec_fn=preexec_fn)
        line = self._ready_line(10)
        m = READY_RE.match(line)
        if not m:
            self.kill()
            raise AssertionError(f"no ready line from {self.args}: {line!r} "
                                 f"stderr={self.p.stderr.read()!r}")
        self.port = int(m.group(2))
        self.pid = int(m.group(5))
        assert self.pid == self.p.pid, (self.pid, self.p.pid)
        assert m.group(3).decode() == engine and m.group(4).decode() == proto

    def _ready_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b""
        return self.p.stdout.readline()

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self, timeout=5):
        """SIGTERM; returns (exit code, seconds it took)."""
        t = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout)
        took = time.monotonic() - t
        self.p.stdout.close()
        err = self.p.stderr.read()
        self.p.stderr.close()
        # sanitizer builds: a report from the parent or any child fails the test
        assert b"Sanitizer" not in err and b"runtime error" not in err, err.decode(errors="replace")
        return rc, took

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self.p.stdout.close()
        self.p.stderr.close()


def recv_exact(s, n, timeout=10):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def recv_until_eof(s, timeout=10):
    s.settimeout(timeout)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk


@unittest.skipUnless(have_serve(), "needs $CTXLAB with `serve` and the fork/prefork engines")
class ForkEngines(unittest.TestCase):
    def run_engines(self, fn, *extra_workers):
        for engine in ENGINES:
            with self.subTest(engine=engine):
                fn(engine)

    # ---- protocol bytes -----------------------------------------------------------------

    def test_echo_bytes(self):
        def check(engine):
            srv = Server(engine, "echo", *(["--workers", "2"] if engine == "prefork" else []))
            try:
                conns = [srv.connect() for _ in range(10)]
                for i, s in enumerate(conns):
                    msg = f"line {i}\n".encode()
                    s.sendall(msg)
                    self.assertEqual(recv_exact(s, len(msg)), msg)
                big = bytes(range(256)) * 400 + b"\n"  # 100 KiB in one line
                conns[0].sendall(big)
                self.assertEqual(recv_exact(conns[0], len(big)), big)
                for s in conns:
                    s.close()
            finally:
                rc, took = srv.stop()
            self.assertEqual(rc, 0)
            self.assertLess(took, 2.5)
        self.run_engines(check)

    def test_http_keepalive_pipelined(self):
        def check(engine):
            srv = Server(engine, "http")
            try:
                s = srv.connect()
                req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                s.sendall(req * 3)
                s.settimeout(10)
                data = b""
                deadline = time.monotonic() + 10
                while data.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.assertEqual(data.count(b"HTTP/1.1 200"), 3, data)
                # Connection: close ends the connection after the answer
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                rest = recv_until_eof(s)
                self.assertEqual(rest.count(b"HTTP/1.1 200"), 1, rest)
                s.close()
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
        self.run_engines(check)

    def test_sink_reads_and_answers_nothing(self):
        def check(engine):
            srv = Server(engine, "sink")
            try:
                s = srv.connect()
                s.sendall(b"x" * (1 << 20) + b"\n")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"")  # all read, nothing sent, closed
                s.close()
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
        self.run_engines(check)

    # ---- chat -----------------------------------------------------------------------------

    def test_chat_20_clients_50_lines_exactly_once(self):
        def check(engine):
            srv = Server(engine, "chat", *(["--workers", "2"] if engine == "prefork" else []))
            try:
                self.chat_round(srv, 20, 50)
            finally:
                rc, took = srv.stop()
            self.assertEqual(rc, 0)
            self.assertLess(took, 2.5)
        self.run_engines(check)

    def chat_round(self, srv, nclients, nlines):
        conns = [srv.connect() for _ in range(nclients)]
        bufs = [b""] * nclients
        for s in conns:
            s.setblocking(False)
        sel = selectors.DefaultSelector()
        for i, s in enumerate(conns):
            sel.register(s, selectors.EVENT_READ, i)

        def pump(timeout):
            got = []
            for key, _ in sel.select(timeout):
                i = key.data
                try:
                    chunk = conns[i].recv(65536)
                except BlockingIOError:
                    continue
                self.assertTrue(chunk, f"client {i} was disconnected")
                bufs[i] += chunk
                *lines, bufs[i] = bufs[i].split(b"\n")
                got.extend((i, line) for line in lines)
            return got

        # Phase 1: client 0 pings until every other client got one, so all have joined.
        joined = set()
        deadline = time.monotonic() + 15
        k = 0
        while len(joined) < nclients - 1:
            self.assertLess(time.monotonic(), deadline, f"only {len(joined)} clients joined")
            conns[0].sendall(f"ping {k}\n".encode())
            k += 1
            for i, line in pump(0.05):
                if b": ping " in line:
                    joined.add(i)
        # Phase 2: every client sends nlines; every other client must get each exactly once.
        for n in range(nlines):
            for i, s in enumerate(conns):
                s.setblocking(True)
                s.sendall(f"m {i} {n}\n".encode())
                s.setblocking(False)
        want = (nclients - 1) * nlines
        seen = [dict() for _ in range(nclients)]  # receiver -> sender -> next expected seq
        count = [0] * nclients
        deadline = time.monotonic() + 20
        while min(count) < want and time.monotonic() < deadline:
            for i, line in pump(0.2):
                m = re.match(rb"^(\d+): (.*)$", line)
                self.assertIsNotNone(m, line)
                body = m.group(2)
                if body.startswith(b"ping "):
                    continue
                _, sender, seq = body.split()
                sender, seq = int(sender), int(seq)
                self.assertNotEqual(sender, i, "a client received its own line")
                self.assertEqual(seq, seen[i].get(sender, 0),
                                 f"client {i}: from {sender} got {seq} (duplicate/order)")
                seen[i][sender] = seq + 1
                count[i] += 1
        self.assertEqual(count, [want] * nclients)
        # nothing more arrives (exactly once)
        time.sleep(0.2)
        extra = [line for _, line in pump(0.1) if b": ping " not in line]
        self.assertEqual(extra, [])
        for s in conns:
            s.close()

    def test_chat_slow_reader_overflow(self):
        # A member whose socket is full and that is more than --max-outbuf behind the room's
        # log gets the overflow line and is closed (the kernel's socket buffers, up to
        # tcp_wmem's maximum, come on top, as in every engine). A full-speed probe proves
        # every line was published before the slow client reads anything.
        nlines, size = 8000, 1000
        def check(engine):
            srv = Server(engine, "chat", "--max-outbuf", "65536")
            try:
                slow = socket.socket()
                slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                slow.settimeout(10)
                slow.connect(("127.0.0.1", srv.port))
                probe, fast = srv.connect(), srv.connect()
                time.sleep(0.3)  # all joined the lobby
                got = [0]
                def read_probe():
                    probe.settimeout(20)
                    while got[0] < nlines:
                        chunk = probe.recv(1 << 20)
                        if not chunk:
                            return
                        got[0] += chunk.count(b"\n")
                reader = threading.Thread(target=read_probe)
                reader.start()
                fast.sendall((b"y" * (size - 1) + b"\n") * nlines)
                reader.join(30)
                self.assertEqual(got[0], nlines, "the probe missed lines")
                data = recv_until_eof(slow, timeout=10)
                self.assertTrue(data.endswith(
                    b"* disconnected: output queue over 65536 bytes (slow reader)\n"), data[-200:])
                self.assertLess(len(data), nlines * (size + 8) // 2)
                for sock in (fast, slow, probe):
                    sock.close()
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
        self.run_engines(check)

    # ---- timeouts and bounds --------------------------------------------------------------

    def test_header_and_idle_timeouts(self):
        def check(engine):
            srv = Server(engine, "http", "--header-timeout", "300ms", "--idle-timeout", "1s")
            try:
                part = srv.connect()
                part.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never completed
                idle = srv.connect()
                t = time.monotonic()
                self.assertEqual(recv_until_eof(part, timeout=5), b"")
                took = time.monotonic() - t
                self.assertGreater(took, 0.2)
                self.assertLess(took, 1.0, "header timeout closed too late")
                self.assertEqual(recv_until_eof(idle, timeout=5), b"")
                took = time.monotonic() - t
                self.assertGreater(took, 0.8)
                self.assertLess(took, 3.0)
                part.close()
                idle.close()
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
        self.run_engines(check)

    def test_max_conns(self):
        def check(engine):
            srv = Server(engine, "echo", "--max-conns", "2")
            try:
                a, b = srv.connect(), srv.connect()
                for s in (a, b):
                    s.sendall(b"hi\n")
                    self.assertEqual(recv_exact(s, 3), b"hi\n")
                c = srv.connect()
                if engine == "fork":
                    # at the cap of live children the parent stops accepting: c waits in
                    # the backlog, neither closed nor served, until a child ends
                    c.sendall(b"wait\n")
                    c.settimeout(1.0)
                    self.assertRaises(socket.timeout, c.recv, 10)
                    a.close()
                    c.settimeout(5)
                    self.assertEqual(recv_exact(c, 5), b"wait\n")
                    c.close()
                    b.close()
                    return
                self.assertEqual(recv_until_eof(c, timeout=5), b"")  # accepted and closed
                c.close()
                a.close()
                # a slot frees up once a connection ends
                def fits():
                    d = srv.connect()
                    try:
                        d.sendall(b"ok\n")
                        return recv_exact(d, 3, timeout=2) == b"ok\n"
                    except OSError:
                        return False
                    finally:
                        d.close()
                self.assertTrue(wait_until(fits, 5, 0.1))
                b.close()
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
        self.run_engines(check)

    # ---- process lifetime -----------------------------------------------------------------

    def test_no_child_outlives_sigkill(self):
        def check(engine):
            extra = ["--workers", "2"] if engine == "prefork" else []
            srv = Server(engine, "echo", *extra)
            conns = [srv.connect() for _ in range(5)]
            for s in conns:
                s.sendall(b"a\n")
                self.assertEqual(recv_exact(s, 2), b"a\n")
            live, _ = children(srv.pid)
            self.assertEqual(len(live), 5 if engine == "fork" else 2, live)
            srv.p.kill()
            srv.p.wait(5)
            gone = wait_until(lambda: all(proc_state(p) in (None, "Z") for p in live), 2.0)
            self.assertTrue(gone, [(p, proc_state(p)) for p in live])
            for s in conns:
                s.close()
            srv.p.stdout.close()
            srv.p.stderr.close()
        self.run_engines(check)

    def test_sigkilled_chat_server_leaves_no_room_files(self):
        def check(engine):
            srv = Server(engine, "chat")
            conns = [srv.connect() for _ in range(3)]
            conns[0].sendall(b"hello\n")  # a room file with a record in it
            time.sleep(0.3)
            live, _ = children(srv.pid)
            dirs = set()
            for pid in live:
                try:
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if "/ctxlab-chat-" in target:
                            dirs.add(target.split("/ctxlab-chat-")[0] + "/ctxlab-chat-" +
                                     target.split("/ctxlab-chat-")[1].split("/")[0])
                except OSError:
                    pass
            self.assertEqual(len(dirs), 1, dirs)
            room_dir = dirs.pop()
            self.assertTrue(os.listdir(room_dir))
            srv.p.kill()
            srv.p.wait(5)
            self.assertTrue(wait_until(lambda: not os.path.exists(room_dir), 2.0), room_dir)
            self.assertTrue(wait_until(
                lambda: all(proc_state(p) in (None, "Z") for p in live), 2.0))
            for c in conns:
                c.close()
            srv.p.stdout.close()
            srv.p.stderr.close()
        self.run_engines(check)

    def test_1000_connections_leave_no_process(self):
        def check(engine):
            extra = ["--workers", "2"] if engine == "prefork" else []
            srv = Server(engine, "echo", *extra)
            try:
                base, _ = children(srv.pid)
                t = time.monotonic()
                for i in range(1000):
                    s = srv.connect()
                    s.sendall(b"z\n")
                    self.assertEqual(recv_exact(s, 2), b"z\n")
                    s.close()
                    self.assertLess(time.monotonic() - t, 60, f"only {i} cycles in 60 s")

                def settled():
                    live, zombies = children(srv.pid)
                    return not zombies and sorted(live) == sorted(base)
                self.assertTrue(wait_until(settled, 5), (base, children(srv.pid)))
            finally:
                rc, _ = srv.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(children(srv.pid), ([], []))
        self.run_engines(check)

    def test_prefork_restarts_a_dead_worker(self):
        srv = Server("prefork", "echo", "--workers", "2")
        try:
            live, _ = children(srv.pid)
            self.assertEqual(len(live), 2)
            victim = live[0]
            os.kill(victim, signal.SIGKILL)

            def restarted():
                now, zombies = children(srv.pid)
                return len(now) == 2 and victim not in now and not zombies
            self.assertTrue(wait_until(restarted, 5), children(srv.pid))
            for _ in range(20):  # both workers serve
                s = srv.connect()
                s.sendall(b"r\n")
                self.assertEqual(recv_exact(s, 2), b"r\n")
                s.close()
        finally:
            rc, took = srv.stop()
        self.assertEqual(rc, 0)
        self.assertLess(took, 2.5)

    def test_prefork_emfile_backs_off(self):
        # one worker with 64 descriptors and 100 connections: out of descriptors, it must
        # pause accepting rather than spin on the readable listener, and recover
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        # --max-conns 0: the default cap, bounded by the open-file limit, would close the
        # connections beyond it before the worker runs out of descriptors
        srv = Server("prefork", "echo", "--workers", "1", "--max-conns", "0", preexec_fn=limit)
        try:
            conns = [srv.connect(timeout=3) for _ in range(100)]
            time.sleep(0.3)
            conns[0].sendall(b"e\n")
            self.assertEqual(recv_exact(conns[0], 2), b"e\n")
            conns[-1].sendall(b"e\n")
            conns[-1].settimeout(0.3)
            with self.assertRaises(socket.timeout):  # beyond the limit: not served yet
                conns[-1].recv(10)
            (worker,), _ = children(srv.pid)
            before = cpu_s(worker)
            time.sleep(1.0)
            self.assertLess(cpu_s(worker) - before, 0.3, "worker spins while out of fds")
            for s in conns[:-1]:
                s.close()
            self.assertEqual(recv_exact(conns[-1], 2, timeout=5), b"e\n")  # served at last
            conns[-1].close()
        finally:
            rc, _ = srv.stop()
        self.assertEqual(rc, 0)

    def test_graceful_stop_with_open_connections(self):
        def check(engine):
            srv = Server(engine, "echo")
            conns = [srv.connect() for _ in range(5)]
            for s in conns:
                s.sendall(b"q\n")
                self.assertEqual(recv_exact(s, 2), b"q\n")
            live, _ = children(srv.pid)
            rc, took = srv.stop()
            self.assertEqual(rc, 0)
            self.assertLess(took, 2.5)
            for s in conns:
                self.assertEqual(recv_until_eof(s, timeout=3), b"")
                s.close()
            self.assertTrue(all(proc_state(p) is None for p in live),
                            [(p, proc_state(p)) for p in live])
        self.run_engines(check)


if __name__ == "__main__":
    if not have_serve():
        print("SKIP: needs $CTXLAB with `serve` and the fork/prefork engines")
        sys.exit(77)  # ctest's SKIP_RETURN_CODE
    unittest.main(verbosity=2)
