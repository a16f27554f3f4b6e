"""SIGTERM while many connections are open ends the server cleanly (exit 0, nothing on stderr
that a sanitizer would print). Regression for the thread engine: a connection thread used the
server state after counting itself out, while the stop path could already free it (a
use-after-free that ASan reports in the build with -DCTXLAB_SANITIZE=ON). Bounded: 8 rounds
of 40 connections per engine/protocol, a few seconds in all.
"""
import time

import ctxlabtest as t

ROUNDS = 8
CONNS = 40


def check(engine, proto):
    for _ in range(ROUNDS):
        s = t.Serve(engine, proto)
        socks = []
        try:
            for _ in range(CONNS):
                c = t.connect(s.addr)
                socks.append(c)
            if proto == "chat":
                time.sleep(0.2)  # every connection accepted and in the lobby
                socks[0].sendall(b"hi\n")
                # every other member of the lobby receives the line: the rooms are live
                got = t.recv_exact(socks[1], 1)
                assert got, "no chat delivery"
            else:
                socks[0].sendall(b"ping")
                assert t.recv_exact(socks[0], 4) == b"ping"
            rc = s.stop()
            err = s.stderr_text()
            assert rc == 0, "%s/%s exited %s on SIGTERM: %s" % (engine, proto, rc, err)
            assert "AddressSanitizer" not in err and "runtime error" not in err, err
        finally:
            for c in socks:
                try:
                    c.close()
                except OSError:
                    pass
            s.kill()
            s.proc.stdout.close()
            s.proc.stderr.close()


def main():
    tests = []
    for engine in ("thread", "epoll", "coro"):
        for proto in ("echo", "chat"):
            if t.engine_usable(engine)[0]:
                tests.append(("stop with %d open %s connections: %s" % (CONNS, proto, engine),
                              lambda e=engine, p=proto: check(e, p)))
    t.run_tests(tests)


main()
