"""The malformed-HTTP corpus (tests/data/http-malformed/, expected.tsv: name, status, close)
sent over real sockets to every engine that speaks http: ctxlab's own engines answer the
expected status and close (or keep) the connection as expected.tsv says; every engine,
outside peers included, stays up and keeps answering GET / (never a crash).
"""
import os
import socket

import ctxlabtest as t

CORPUS = os.path.join(t.SRC, "tests", "data", "http-malformed")


def load_corpus():
    path = os.path.join(CORPUS, "expected.tsv")
    if not os.path.exists(path):
        t.skip("no corpus at %s" % path)
    cases = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, status, close = line.split("\t")[:3]
            with open(os.path.join(CORPUS, name), "rb") as g:
                cases.append((name, int(status), close.strip() == "1", g.read()))
    assert len(cases) >= 10, "corpus too small: %d" % len(cases)
    return cases


def first_status(data):
    line = data.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    return int(parts[1])


def check_engine(engine, cases):
    external = engine in t.EXTERNAL
    with t.Serve(engine, "http") as s:
        for name, status, close, data in cases:
            with t.connect(s.addr, timeout=5) as c:
                try:
                    c.sendall(data)
                except OSError:
                    pass  # closed early: acceptable for a large bad request
                if external:
                    c.settimeout(0.5)
                    try:
                        c.recv(65536)
                    except (OSError, socket.timeout):
                        pass
                else:
                    r = t.HttpReader(c)
                    try:
                        st, hd, body, raw = r.response(head=data.startswith(b"HEAD"))
                    except EOFError:
                        raise AssertionError("%s on %s: closed without the %d answer" %
                                             (name, engine, status))
                    assert st == status, "%s on %s: status %d, want %d (%r)" % (
                        name, engine, st, status, raw[:200])
                    if close:
                        rest = r.buf + t.recv_until_close(c)
                        assert b"HTTP/1.1" not in rest, "%s on %s: more answers after the " \
                            "error: %r" % (name, engine, rest[:100])
                    else:
                        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        st2, _, body2, _ = r.response()
                        assert (st2, body2) == (200, b"hello, world\n"), (
                            "%s on %s: connection not usable after %d" % (name, engine, st))
            assert s.alive(), "%s killed %s" % (name, engine)
        # still serving
        assert t.http_get(s.addr, "/") == (200, b"hello, world\n")


def main():
    cases = load_corpus()
    tests = []
    for e in t.engines_speaking("http"):
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip malformed corpus on %s: %s" % (e, why))
            continue
        tests.append(("malformed corpus (%d cases) on %s" % (len(cases), e),
                      lambda e=e: check_engine(e, cases)))
    t.run_tests(tests)


if __name__ == "__main__":
    main()
