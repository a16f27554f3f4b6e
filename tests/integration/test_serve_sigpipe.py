"""SIGPIPE never kills the server: clients vanish while the server is writing to them (echo of
a large payload, pipelined http, a chat room publishing to departed members). Afterwards the
server still answers and exits 0 on SIGTERM (a SIGPIPE death would be -13).
"""
import socket
import threading
import time

import ctxlabtest as t


def vanish_echo(s):
    for _ in range(30):
        c = t.connect(s.addr)
        try:
            c.sendall(b"y" * (256 << 10))
        except OSError:
            pass
        c.shutdown(socket.SHUT_RDWR)  # FIN while the echo is still being written
        c.close()
    time.sleep(0.3)
    with t.connect(s.addr) as c:
        c.sendall(b"ping\n")
        assert t.recv_exact(c, 5) == b"ping\n"


def vanish_http(s):
    for _ in range(30):
        c = t.connect(s.addr)
        try:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3000)
        except OSError:
            pass
        c.close()
    time.sleep(0.3)
    assert t.http_get(s.addr) == (200, b"hello, world\n")


def vanish_chat(s):
    talker = t.connect(s.addr)
    for _ in range(5):
        gone = [t.connect(s.addr) for _ in range(10)]
        time.sleep(0.1)
        for g in gone:
            g.close()
        for i in range(200):
            talker.sendall(b"message %d to the departed\n" % i)
    time.sleep(0.3)
    listener = t.connect(s.addr)
    time.sleep(0.3)
    talker.sendall(b"hello\n")
    listener.settimeout(5)
    got = listener.recv(4096)
    assert got.endswith(b": hello\n"), got
    talker.close()
    listener.close()


def check(engine, proto, fn):
    s = t.Serve(engine, proto)
    try:
        fn(s)
        assert s.alive(), "%s/%s died" % (engine, proto)
    finally:
        rc = s.stop()
        s.proc.stdout.close()
        s.proc.stderr.close()
    assert rc == 0, "%s/%s exited %d after SIGTERM (-13 would be SIGPIPE)" % (engine, proto, rc)


def main():
    tests = []
    fns = {"echo": vanish_echo, "http": vanish_http, "chat": vanish_chat}
    for e, protos in t.list_engines().items():
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip sigpipe on %s: %s" % (e, why))
            continue
        for p in protos:
            if p in fns:
                tests.append(("sigpipe %s/%s" % (e, p), lambda e=e, p=p: check(e, p, fns[p])))
    t.run_tests(tests)


if __name__ == "__main__":
    main()
