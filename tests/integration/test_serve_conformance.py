"""Conformance: every engine x protocol driven with the same script of bytes.

http: single, pipelined, split (byte by byte and across requests), HEAD, 404, /work, HTTP/1.0,
Connection: close; ctxlab's own engines must return exactly the bytes the epoll engine returns;
the outside peers (go, nginx) the same statuses and bodies where they implement the route.
echo: round trips of 1 B .. 1 MiB return the same bytes. sink: accepts, sends nothing back,
stays up. chat: 20 clients x 50 lines: every client receives every other client's lines exactly
once, in per-sender order, and all receivers see the publishes in one order.
Engines = whatever `ctxlab serve --list-engines` prints.
"""
import os
import random
import re
import socket
import threading
import time

import ctxlabtest as t

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

# (name, [chunks], [(is_head)], server closes after, route set: "root" or "all")
HTTP_SCRIPT = [
    ("single", [REQ], [False], False, "root"),
    ("pipelined", [REQ * 3], [False] * 3, False, "root"),
    ("pipelined-mixed", [REQ + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
                         b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + REQ],
     [False, False, True, False], False, "all"),
    ("split-bytes", [bytes([b]) for b in REQ], [False], False, "root"),
    ("split-across", [REQ + b"GET / HT", b"TP/1.1\r\nHo", b"st: x\r\n", b"\r\n"],
     [False, False], False, "root"),
    ("work", [b"GET /work?cpu_us=50 HTTP/1.1\r\nHost: x\r\n\r\n"], [False], False, "all"),
    ("head", [b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"], [True], False, "root"),
    ("http10", [b"GET / HTTP/1.0\r\n\r\n"], [False], True, "root"),
    ("conn-close", [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], [False], True,
     "root"),
]


def run_http_case(addr, case):
    name, chunks, heads, closes, _ = case
    with t.connect(addr) as s:
        for i, c in enumerate(chunks):
            s.sendall(c)
            if len(chunks) > 1:
                time.sleep(0.002 if len(chunks) > 8 else 0.02)
        r = t.HttpReader(s)
        got = [r.response(head=h) for h in heads]
        if closes:
            s.settimeout(5)
            rest = r.buf + t.recv_until_close(s)
            assert rest == b"", "%s: bytes after the last response: %r" % (name, rest[:100])
        return got


def strip_date(raw):
    return re.sub(rb"\r\nDate: [^\r]*", b"", raw)


def check_http(engines):
    reference = {}
    with t.Serve("epoll", "http") as s:
        for case in HTTP_SCRIPT:
            reference[case[0]] = run_http_case(s.addr, case)
    # sanity of the reference itself
    assert [x[0] for x in reference["pipelined-mixed"]] == [200, 404, 200, 200]
    assert reference["single"][0][2] == b"hello, world\n"
    assert reference["work"][0][2] == b"ok\n"
    for e in engines:
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip http on %s: %s" % (e, why))
            continue
        with t.Serve(e, "http") as s:
            for case in HTTP_SCRIPT:
                if e == "nginx" and case[4] != "root":
                    continue  # nginx's config only has `location = /`
                got = run_http_case(s.addr, case)
                want = reference[case[0]]
                if e in t.EXTERNAL:
                    a = [(st, body) for st, _, body, _ in got]
                    b = [(st, body) for st, _, body, _ in want]
                else:
                    a = [strip_date(raw) for *_, raw in got]
                    b = [strip_date(raw) for *_, raw in want]
                assert a == b, "http %s on %s: got %r, want %r" % (case[0], e, a, b)
        t.log("http ok on %s" % e)


def check_echo(engines):
    rnd = random.Random(7)
    sizes = [1, 13, 1000, 16384, 65537, 300000, 1 << 20]
    for e in engines:
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip echo on %s: %s" % (e, why))
            continue
        with t.Serve(e, "echo") as s:
            with t.connect(s.addr, timeout=20) as c:
                for n in sizes:
                    data = bytes(rnd.getrandbits(8) for _ in range(min(n, 4096)))
                    data = (data * (n // len(data) + 1))[:n]
                    sender = threading.Thread(target=c.sendall, args=(data,))
                    sender.start()
                    back = t.recv_exact(c, n)
                    sender.join(20)
                    assert back == data, "echo %d bytes on %s: bytes differ" % (n, e)
            # a second connection after the first closed
            with t.connect(s.addr) as c:
                c.sendall(b"line one\nline two\n")
                assert t.recv_exact(c, 18) == b"line one\nline two\n"
        t.log("echo ok on %s" % e)


def check_sink(engines):
    for e in engines:
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip sink on %s: %s" % (e, why))
            continue
        with t.Serve(e, "sink") as s:
            for n in (1 << 20, 100):
                with t.connect(s.addr, timeout=20) as c:
                    c.sendall(b"x" * (n - 1) + b"\n")
                    c.shutdown(socket.SHUT_WR)
                    assert t.recv_until_close(c) == b"", "sink on %s sent bytes back" % e
            assert s.alive()
            # still accepting
            with t.connect(s.addr) as c:
                c.sendall(b"still up\n")
        t.log("sink ok on %s" % e)


DATA_RE = re.compile(r"^(\d+): c(\d\d) m(\d\d\d)$")


def check_chat_engine(e, nclients=20, nlines=50):
    with t.Serve(e, "chat") as s:
        socks = [t.connect(s.addr, timeout=30) for _ in range(nclients)]
        lines = [[] for _ in range(nclients)]
        lock = threading.Lock()

        def reader(i):
            buf = b""
            sk = socks[i]
            while True:
                try:
                    chunk = sk.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                *full, buf = buf.split(b"\n")
                with lock:
                    lines[i].extend(x.decode() for x in full)

        threads = [threading.Thread(target=reader, args=(i,), daemon=True)
                   for i in range(nclients)]
        for th in threads:
            th.start()
        # barrier: everyone says ready until client 0 has heard from all others (a client
        # that published has joined the room, and so has client 0, which heard it)
        deadline = time.monotonic() + 15
        while True:
            for sk in socks:
                sk.sendall(b"ready\n")
            time.sleep(0.1)
            with lock:
                ids = {ln.split(":")[0] for ln in lines[0] if ln.endswith(": ready")}
            if len(ids) >= nclients - 1:
                break
            assert time.monotonic() < deadline, "chat on %s: only %d clients joined" % (
                e, len(ids))
        # the data: interleaved across clients, some lines batched in one write
        for j in range(0, nlines, 5):
            for i, sk in enumerate(socks):
                batch = "".join("c%02d m%03d\n" % (i, k) for k in range(j, min(j + 5, nlines)))
                if i % 2:
                    sk.sendall(batch.encode())
                else:
                    for ln in batch.splitlines(True):
                        sk.sendall(ln.encode())
        want = (nclients - 1) * nlines
        deadline = time.monotonic() + 20
        while True:
            with lock:
                counts = [sum(1 for ln in ls if DATA_RE.match(ln)) for ls in lines]
            if min(counts) >= want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # anything extra (duplicates) would arrive now
        for sk in socks:
            sk.close()
        orders = []
        for r in range(nclients):
            with lock:
                data = [DATA_RE.match(ln) for ln in lines[r]]
            data = [m for m in data if m]
            per = {}
            ids = {}
            for m in data:
                c, k = int(m.group(2)), int(m.group(3))
                per.setdefault(c, []).append(k)
                ids.setdefault(c, set()).add(m.group(1))
            assert r not in per, "chat on %s: client %d got its own lines" % (e, r)
            assert sorted(per) == [c for c in range(nclients) if c != r], (
                "chat on %s: client %d heard from %s" % (e, r, sorted(per)))
            for c, ks in per.items():
                assert ks == list(range(nlines)), (
                    "chat on %s: client %d got client %d's lines as %s" % (e, r, c, ks[:60]))
                assert len(ids[c]) == 1, "chat on %s: sender id changed %s" % (e, ids[c])
            orders.append([(int(m.group(2)), int(m.group(3))) for m in data])
        # one order of publishes: any two receivers see their common messages in one order
        for a in range(nclients):
            for b in range(a + 1, nclients):
                sa = [x for x in orders[a] if x[0] != b]
                sb = [x for x in orders[b] if x[0] != a]
                assert sa == sb, "chat on %s: clients %d and %d saw different orders" % (e, a, b)


def check_chat_overflow(e):
    """A member that does not read is cut with the overflow line once its queue passes
    --max-outbuf; the talker is unaffected."""
    with t.Serve(e, "chat", "--max-outbuf", "64k") as s:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(20)
        slow.connect(s.addr)
        talker = t.connect(s.addr, timeout=20)
        time.sleep(0.3)  # both joined
        line = b"x" * 99 + b"\n"
        deadline = time.monotonic() + 15
        sent = 0
        # far more than 64k + the kernel's socket buffers (up to 4 MiB here)
        while sent < (8 << 20) and time.monotonic() < deadline:
            talker.sendall(line * 1000)
            sent += len(line) * 1000
        data = t.recv_until_close(slow, limit=64 << 20)
        tail = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        assert tail.startswith(b"* disconnected: output queue over 65536 bytes"), (
            "chat overflow on %s: last line %r after %d bytes" % (e, tail[:80], len(data)))
        # the talker was not cut: it gets no EOF (it is alone in the lobby now)
        talker.settimeout(0.3)
        try:
            got = talker.recv(4096)
            assert got, "chat on %s: the talker was disconnected too" % e
        except socket.timeout:
            pass
        assert s.alive()
        # the server still chats (in another room: the flood may still be in the lobby)
        a, b = t.connect(s.addr), t.connect(s.addr)
        a.sendall(b"/join fresh\n")
        b.sendall(b"/join fresh\n")
        b.settimeout(0.2)
        got = b""
        deadline = time.monotonic() + 15
        while b"hello again" not in got and time.monotonic() < deadline:
            a.sendall(b"hello again\n")  # until b has joined too
            try:
                got += b.recv(65536)
            except socket.timeout:
                pass
        assert b"hello again" in got, "chat on %s after an overflow: %r" % (e, got[:100])
        other = a
        b.close()
        for c in (slow, talker, other):
            c.close()


def check_chat(engines):
    for e in engines:
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip chat on %s: %s" % (e, why))
            continue
        t0 = time.monotonic()
        check_chat_engine(e)
        t1 = time.monotonic()
        check_chat_overflow(e)
        t.log("chat ok on %s (%.1fs), overflow ok (%.1fs)" % (e, t1 - t0, time.monotonic() - t1))
    # several epoll loops share the rooms across threads
    check_chat_engine_workers()


def check_chat_engine_workers():
    orig = t.Serve.__init__

    def with_workers(self, engine, proto, *args, **kw):
        orig(self, engine, proto, "--workers", "3", *args, **kw)
    t.Serve.__init__ = with_workers
    try:
        check_chat_engine("epoll")
    finally:
        t.Serve.__init__ = orig
    t.log("chat ok on epoll --workers 3")


def main():
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    engines = t.list_engines()
    t.log("engines: %s" % engines)
    by = lambda p: [e for e, ps in engines.items() if p in ps]  # noqa: E731
    t.run_tests([
        ("http conformance", lambda: check_http(by("http"))),
        ("echo conformance", lambda: check_echo(by("echo"))),
        ("sink conformance", lambda: check_sink(by("sink"))),
        ("chat conformance", lambda: check_chat(by("chat"))),
    ])


if __name__ == "__main__":
    main()
