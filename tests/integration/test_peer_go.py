#!/usr/bin/env python3
"""The Go peer (peers/go -> <build>/ctxlab-peer-go) speaks ctxlab's four protocols.

Starts the binary on port 0 for each protocol, parses its listening line and checks the
bytes on the wire: http (GET /, /work with a measured CPU burn, 404, 405, HEAD, keep-alive,
pipelining), echo round trip, sink (accepts, never answers), chat (exactly-once delivery
to every other client, one order per room, rooms, slow-reader disconnect), and that
SIGTERM ends it with status 0 within 2 s. Skips (exit 0) when the binary is not built.
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

BUILD = os.environ.get("CTXLAB_BUILD", "")
PEER = os.path.join(BUILD, "ctxlab-peer-go") if BUILD else ""
LINE_RE = re.compile(r"^listening on (\S+):(\d+) engine=go proto=(\w+) pid=(\d+)\n$")
TIMEOUT = 10.0

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return cond


class Peer:
    def __init__(self, proto, *extra):
        self.proto = proto
        self.p = subprocess.Popen([PEER, "-listen", "127.0.0.1:0", "-proto", proto] + list(extra),
                                  stdout=subprocess.PIPE, stderr=sys.stderr)
        r, _, _ = select.select([self.p.stdout], [], [], TIMEOUT)
        if not r:
            self.p.kill()
            raise RuntimeError("ctxlab-peer-go -proto %s printed no listening line in %gs" % (proto, TIMEOUT))
        line = self.p.stdout.readline().decode()
        m = LINE_RE.match(line)
        if not m:
            self.p.kill()
            raise RuntimeError("unexpected listening line %r" % line)
        check(m.group(1) == "127.0.0.1", "listening host %r" % m.group(1))
        check(m.group(3) == proto, "listening line proto %r, wanted %r" % (m.group(3), proto))
        check(int(m.group(4)) == self.p.pid, "listening line pid %s, real pid %d" % (m.group(4), self.p.pid))
        self.port = int(m.group(2))
        check(self.port != 0, "listening line shows the real port, not 0")

    def connect(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", self.port))
        return s

    def cpu_s(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            check(False, "%s: SIGTERM did not end the peer within 5 s" % self.proto)
            return
        took = time.monotonic() - t0
        check(rc == 0, "%s: exit status after SIGTERM %d, wanted 0" % (self.proto, rc))
        check(took < 2.0, "%s: exit took %.2fs after SIGTERM, wanted < 2 s" % (self.proto, took))


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            break
        out += b
    return out


class Reader:
    """Buffered reads of lines and HTTP responses from a socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def line(self):
        while b"\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head=False):
        status = self.line()
        m = re.match(rb"^HTTP/1\.1 (\d{3}) [^\r]*\r\n$", status)
        if not m:
            raise ValueError("bad status line %r" % status)
        headers = {}
        while True:
            h = self.line()
            if h == b"\r\n":
                break
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        body = b"" if head else self.take(n)
        return int(m.group(1)), headers, body


def test_http():
    peer = Peer("http")
    try:
        s = peer.connect()
        r = Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = r.response()
        check(st == 200 and body == b"hello, world\n", "http GET /: %d %r" % (st, body))
        check(h.get("content-type") == "text/plain", "http GET / content-type %r" % h.get("content-type"))
        check(h.get("connection", "keep-alive").lower() != "close", "http keep-alive")

        # /work burns CPU in the server: 300 ms asked, at least 200 ms of its CPU time spent.
        cpu0 = peer.cpu_s()
        s.sendall(b"GET /work?cpu_us=300000&mem=1M&stride=64 HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = r.response()
        cpu1 = peer.cpu_s()
        check(st == 200 and body == b"ok\n", "http GET /work: %d %r" % (st, body))
        check(cpu1 - cpu0 >= 0.2, "http /work?cpu_us=300000 burnt %.3fs of server CPU, wanted >= 0.2" % (cpu1 - cpu0))

        s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = r.response()
        check(st == 404 and body.startswith(b"not found"), "http 404: %d %r" % (st, body))

        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        st, h, body = r.response()
        check(st == 405 and h.get("allow") == "GET, HEAD", "http POST -> 405 with Allow: %d %r" % (st, h))

        s.sendall(b"GET /work?cpu_us=x HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = r.response()
        check(st == 400 and b"cpu_us" in body, "http bad /work query -> 400: %d %r" % (st, body))

        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body = r.response(head=True)
        check(st == 200 and h.get("content-length") == "13", "http HEAD /: %d %r" % (st, h))

        # pipelined: two requests in one write, two responses in order
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st1, _, _ = r.response()
        st2, _, body2 = r.response()
        check((st1, st2, body2) == (404, 200, b"hello, world\n"), "http pipelined: %d %d %r" % (st1, st2, body2))
        s.close()
    finally:
        peer.stop()


def test_echo():
    peer = Peer("echo")
    try:
        s = peer.connect()
        data = bytes((i * 131 + 7) % 256 for i in range(300000))
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = recv_exact(s, len(data))
        t.join()
        check(got == data, "echo: %d of %d bytes came back identical" % (len(got), len(data)))
        s.sendall(b"line one\nline two\n")
        check(recv_exact(s, 18) == b"line one\nline two\n", "echo small lines")
        s.close()
    finally:
        peer.stop()


def test_sink():
    peer = Peer("sink")
    try:
        s = peer.connect()
        s.sendall(b"x" * 1000000 + b"\n" * 1000)
        s.shutdown(socket.SHUT_WR)
        # the sink reads everything, answers nothing and closes on our EOF
        check(s.recv(1) == b"", "sink: sent nothing back and closed after EOF")
        s.close()
    finally:
        peer.stop()


def drain_lines(s, until, quiet=0.3):
    """Lines received on s until `until` returns True for the list, then `quiet` s of silence."""
    buf, lines = b"", []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        wait = quiet if until(lines) else deadline - time.monotonic()
        r, _, _ = select.select([s], [], [], max(wait, 0))
        if not r:
            if until(lines):
                break
            continue
        b = s.recv(65536)
        if not b:
            break
        buf += b
        *done, buf = buf.split(b"\n")
        lines += [x.decode() for x in done]
    return lines


def test_chat():
    peer = Peer("chat")
    try:
        names = ["A", "B", "C", "D"]  # A, B, C talk; D only listens
        socks = {}
        for n in names:
            socks[n] = peer.connect()
            time.sleep(0.02)
        # barrier: each talker repeats a sync line until all three others have seen one,
        # so every client is in the lobby before the counted messages start
        for n in "ABC":
            seen = set()
            for _ in range(100):
                socks[n].sendall(("sync " + n + "\r\n").encode())  # "\r\n" works too
                for o in names:
                    if o == n or o in seen:
                        continue
                    r, _, _ = select.select([socks[o]], [], [], 0.05)
                    if r:
                        seen.add(o)
                if len(seen) == 3:
                    break
            check(len(seen) == 3, "chat: %s's sync reached %s" % (n, sorted(seen)))
        time.sleep(0.2)

        N = 50
        for i in range(N):
            for n in "ABC":
                socks[n].sendall(("msg %s %d\n\n" % (n, i)).encode())  # the empty line is ignored
        want_other = 2 * N  # every talker gets the other two talkers' lines

        got = {}
        for n in names:
            k = want_other if n != "D" else 3 * N
            lines = drain_lines(socks[n], lambda ls, k=k: sum(" msg " in x for x in ls) >= k)
            got[n] = [x for x in lines if " sync " not in x]
        ids = {}
        for n in names:
            for x in got[n]:
                m = re.match(r"^(\d+): msg ([ABC]) (\d+)$", x)
                if not check(m is not None, "chat: %s got a malformed line %r" % (n, x)):
                    continue
                ids.setdefault(m.group(2), set()).add(int(m.group(1)))
        # sender ids: a per-server counter from 1, in accept order (A, B, C were accepted first)
        check(ids == {"A": {1}, "B": {2}, "C": {3}}, "chat: sender ids %r, wanted A=1 B=2 C=3" % ids)
        for n in names:
            expect = {"%d: msg %s %d" % ("ABC".index(o) + 1, o, i) for o in "ABC" if o != n for i in range(N)}
            check(len(got[n]) == len(expect) and set(got[n]) == expect,
                  "chat: %s got %d lines, wanted the %d lines of the other talkers, each exactly once"
                  % (n, len(got[n]), len(expect)))
            for o in "ABC":
                seq = [x for x in got[n] if (" msg %s " % o) in x]
                check(seq == sorted(seq, key=lambda x: int(x.rsplit(" ", 1)[1])),
                      "chat: %s got %s's lines out of order" % (n, o))
        # one order per room: A and D both got B's and C's lines, in the same interleaving
        bc_a = [x for x in got["A"] if " msg A " not in x]
        bc_d = [x for x in got["D"] if " msg A " not in x]
        check(bc_a == bc_d, "chat: A and D saw B's and C's lines in different orders")

        # rooms: E moves to "other"; its lines stay there and lobby lines do not reach it
        e = peer.connect()
        f = peer.connect()
        e.sendall(b"/join other\n")
        f.sendall(b"/join other\n")
        time.sleep(0.3)
        e.sendall(b"in other\n")
        flines = drain_lines(f, lambda ls: len(ls) >= 1)
        check(flines == ["5: in other"], "chat: room 'other' got %r, wanted ['5: in other']" % flines)
        socks["A"].sendall(b"lobby only\n")
        dl = drain_lines(socks["D"], lambda ls: len(ls) >= 1)
        check(dl == ["1: lobby only"], "chat: lobby listener got %r" % dl)
        r, _, _ = select.select([e, f], [], [], 0.3)
        check(not r, "chat: a lobby line leaked into room 'other'")
        for s in list(socks.values()) + [e, f]:
            s.close()
    finally:
        peer.stop()


def wait_drained(server_port, client_port, timeout=TIMEOUT):
    """True once no byte from client_port waits in the kernel, unsent or unread by the server."""
    want_local = "0100007F:%04X" % server_port
    want_remote = "0100007F:%04X" % client_port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        unread = unsent = None
        with open("/proc/net/tcp") as f:
            for row in f.readlines()[1:]:
                col = row.split()
                if col[1] == want_local and col[2] == want_remote:
                    unread = int(col[4].split(":")[1], 16)  # server side rx_queue
                elif col[1] == want_remote and col[2] == want_local:
                    unsent = int(col[4].split(":")[0], 16)  # client side tx_queue
        if unread == 0 and unsent == 0:
            return True
        time.sleep(0.05)
    return False


def test_chat_slow_reader():
    bound = 65536
    peer = Peer("chat", "-max-outbuf", str(bound))
    try:
        slow = peer.connect(rcvbuf=4096)
        fast = peer.connect()
        time.sleep(0.2)
        # the slow client reads nothing while the sender floods the lobby
        line = b"y" * 1000 + b"\n"
        block = line * 256
        # 16 MiB: well over what the kernel buffers between the server and the slow client
        # (tcp_wmem's max is 4 MiB by default) plus the 64 KiB bound
        sent = 0
        while sent < 16 * 1024 * 1024:
            fast.sendall(block)
            sent += len(block)
        # now read the slow client to the end: whole lines, then the reason line, then EOF
        data = b""
        while True:
            b = slow.recv(65536)
            if not b:
                break
            data += b
        lines = data.split(b"\n")
        check(lines[-1] == b"", "chat slow reader: stream ends with a newline")
        reason = ("* disconnected: output queue over %d bytes (slow reader)" % bound).encode()
        check(len(lines) >= 2 and lines[-2] == reason,
              "chat slow reader: last line %r, wanted %r" % (lines[-2][:80] if len(lines) >= 2 else b"", reason))
        body = lines[:-2]
        check(all(x == b"2: " + b"y" * 1000 for x in body), "chat slow reader: lines before the reason are intact")
        check(len(body) * 1004 < sent, "chat slow reader: it was cut off before getting everything")
        # the sender is still connected and served: once the server has read the whole flood,
        # a new client gets the sender's next line and nothing else
        check(wait_drained(peer.port, fast.getsockname()[1]), "chat: the server reads the sender's flood")
        third = peer.connect()
        time.sleep(0.2)
        fast.sendall(b"still here\n")
        tl = drain_lines(third, lambda ls: len(ls) >= 1)
        check(tl == ["2: still here"], "chat: sender still served after the slow reader left: %r" % tl[:3])
        for s in (slow, fast, third):
            s.close()
    finally:
        peer.stop()


def main():
    if not PEER or not os.access(PEER, os.X_OK):
        print("SKIP: %s not built (needs golang-go; build target peer_go)" % (PEER or "ctxlab-peer-go"))
        return 77  # ctest's SKIP_RETURN_CODE
    for t in (test_http, test_echo, test_sink, test_chat, test_chat_slow_reader):
        t0 = time.monotonic()
        n = len(failures)
        try:
            t()
        except Exception as e:  # a crash in one check is a failure, the others still run
            check(False, "%s raised %r" % (t.__name__, e))
        print("%s %s (%.2fs)" % ("ok  " if len(failures) == n else "FAIL", t.__name__, time.monotonic() - t0), flush=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
