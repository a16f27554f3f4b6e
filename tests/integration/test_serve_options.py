"""`ctxlab serve` options and lifecycle: --list-engines, --help, bad values (exit 2 naming the
option and the value), --cpus, --workers, --max-conns, --idle-timeout, port in use, a missing
go peer, and SIGINT/SIGTERM: stop accepting, finish in-flight work, exit 0.
"""
import os
import signal
import socket
import subprocess
import time

import ctxlabtest as t


def serve_rc(*args, env=None):
    p = subprocess.run([t.CTXLAB, "serve"] + list(args), capture_output=True, text=True,
                       timeout=20, env=env)
    return p.returncode, p.stdout, p.stderr


def test_list_engines():
    rc, out, err = serve_rc("--list-engines")
    assert rc == 0, err
    lines = out.splitlines()
    names = [ln.split()[0] for ln in lines]
    assert "epoll" in names and "thread" in names, out
    protos = {"sink", "echo", "http", "chat"}
    for ln in lines:
        parts = ln.split()
        assert len(parts) >= 2 and set(parts[1:]) <= protos, ln
    assert len(set(names)) == len(names), out


def test_help():
    rc, out, _ = serve_rc("--help")
    assert rc == 0
    for opt in ("--engine", "--proto", "--listen", "--workers", "--cpus", "--max-conns",
                "--idle-timeout", "--header-timeout", "--work-cpu-us", "--work-mem",
                "--work-stride", "--max-body", "--max-header-bytes", "--max-request-line",
                "--max-headers", "--max-line", "--max-outbuf", "--list-engines", "example",
                "--max-children", "--max-rooms", "--work-max-cpu-us", "--work-max-mem"):
        assert opt in out, "usage lacks %s" % opt


def test_bad_values():
    cases = [
        (["--workers", "0"], "--workers", "0"),
        (["--workers", "many"], "--workers", "many"),
        (["--idle-timeout", "10x"], "--idle-timeout", "10x"),
        (["--header-timeout=-1s"], "--header-timeout", "-1s"),
        (["--cpus", "9999"], "--cpus", "9999"),
        (["--listen", "nowhere:port"], "--listen", "nowhere:port"),
        (["--max-body", "1Q"], "--max-body", "1Q"),
        (["--work-mem", ""], "--work-mem", ""),
        (["--engine", "nope"], "--engine", "nope"),
        (["--proto", "gopher"], "--proto", "gopher"),
        (["--engine", "nginx", "--proto", "chat"], "nginx", "chat"),
        (["--frobnicate"], "--frobnicate", ""),
        (["--workers"], "--workers", ""),
        (["--max-rooms", "-1"], "--max-rooms", "-1"),
        (["--max-children", "lots"], "--max-children", "lots"),
        (["--work-max-mem", "1T"], "--work-max-mem", "1T"),
    ]
    for args, opt, val in cases:
        rc, out, err = serve_rc(*args, "--listen" if "--listen" not in args else "--backlog",
                                "127.0.0.1:0" if "--listen" not in args else "16")
        assert rc == 2, "%s: exit %d, want 2 (%s)" % (args, rc, err)
        assert opt in err and (val in err), "%s: message %r does not name %s %r" % (
            args, err, opt, val)
        assert out == "", "%s printed on stdout: %r" % (args, out)


def test_cpus_workers():
    with t.Serve("epoll", "http", "--cpus", "0", "--workers", "3") as s:
        with open("/proc/%d/status" % s.pid) as f:
            st = f.read()
        line = [ln for ln in st.splitlines() if ln.startswith("Cpus_allowed_list")][0]
        assert line.split()[-1] == "0", line
        assert t.thread_count(s.pid) >= 3, t.thread_count(s.pid)
        for _ in range(30):
            assert t.http_get(s.addr) == (200, b"hello, world\n")


def internal_engines(proto="http"):
    return [e for e in t.engines_speaking(proto) if e not in t.EXTERNAL]


def test_max_conns():
    for e in internal_engines():
        with t.Serve(e, "http", "--max-conns", "2") as s:
            a, b = t.connect(s.addr), t.connect(s.addr)
            for c in (a, b):
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert t.HttpReader(c).response()[0] == 200
            c3 = t.connect(s.addr, timeout=5)
            c3.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if e == "fork":
                # fork stops accepting at the cap (--max-children = --max-conns): c3 waits
                # in the backlog and is served once a connection ends
                c3.settimeout(1.0)
                try:
                    got = c3.recv(100)
                    assert False, "fork answered %r to a third connection with --max-conns 2" % got
                except socket.timeout:
                    pass
                a.close()
                c3.settimeout(5)
                assert t.HttpReader(c3).response()[0] == 200, "fork: c3 not served after a slot freed"
            else:
                got = t.recv_until_close(c3)
                assert got == b"", "%s served a third connection with --max-conns 2" % e
            a.close()
            b.close()
            c3.close()
            deadline = time.monotonic() + 5
            while True:  # slots free again once the server saw the closes
                try:
                    if t.http_get(s.addr, timeout=2) == (200, b"hello, world\n"):
                        break
                except (OSError, EOFError):
                    pass
                assert time.monotonic() < deadline, "%s: slots not freed" % e
                time.sleep(0.05)


def test_idle_timeout():
    for e in internal_engines() + (["nginx"] if "nginx" in t.engines_speaking("http") else []):
        with t.Serve(e, "http", "--idle-timeout", "300ms") as s:
            c = t.connect(s.addr, timeout=5)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = t.HttpReader(c)
            assert r.response()[0] == 200
            t0 = time.monotonic()
            rest = r.buf + t.recv_until_close(c)
            el = time.monotonic() - t0
            assert rest == b"", rest
            assert 0.2 <= el <= 3.0, "%s closed an idle connection after %.2fs" % (e, el)
            c.close()


def test_stop_in_flight():
    for e in internal_engines():
        s = t.Serve(e, "http")
        c = t.connect(s.addr, timeout=5)
        c.sendall(b"GET /work?cpu_us=300000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        st, _, body, _ = t.HttpReader(c).response()
        assert (st, body) == (200, b"ok\n"), "%s dropped the in-flight request" % e
        rc = s.proc.wait(5)
        el = time.monotonic() - t0
        assert rc == 0, "%s exited %d on SIGTERM" % (e, rc)
        assert el < 2.5, "%s took %.1fs to stop" % (e, el)
        # no longer accepting
        try:
            socket.create_connection(s.addr, timeout=1).close()
            accepted = True
        except OSError:
            accepted = False
        assert not accepted, "%s still accepts after stopping" % e
        s.proc.stdout.close()
        s.proc.stderr.close()
        c.close()


def test_sigint_every_engine():
    for e in t.engines_speaking("http"):
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip SIGINT on %s: %s" % (e, why))
            continue
        s = t.Serve(e, "http")
        keep = t.connect(s.addr)  # an idle keep-alive connection must not hold the stop
        s.proc.send_signal(signal.SIGINT)
        rc = s.proc.wait(5)
        assert rc == 0, "%s exited %d on SIGINT: %s" % (e, rc, s.stderr_text())
        assert not os.path.exists("/proc/%d" % s.pid) or \
            open("/proc/%d/stat" % s.pid).read().split()[2] == "Z"
        keep.close()
        s.proc.stdout.close()
        s.proc.stderr.close()


def test_port_in_use():
    with t.Serve("epoll", "http") as s:
        for e in internal_engines():
            rc, out, err = serve_rc("--engine", e, "--listen", "127.0.0.1:%d" % s.port)
            assert rc == 1, (e, rc, err)
            assert "127.0.0.1:%d" % s.port in err and "in use" in err, err


def test_go_peer_missing():
    if "go" not in t.list_engines():
        t.log("no go engine here")
        return
    env = dict(os.environ, CTXLAB_GO_PEER="/nonexistent/ctxlab-peer-go")
    rc, out, err = serve_rc("--engine", "go", "--listen", "127.0.0.1:0", env=env)
    assert rc == 2, (rc, err)
    assert "scripts/setup.sh" in err and "/nonexistent/ctxlab-peer-go" in err, err


def main():
    t.run_tests([(f.__name__, f) for f in (
        test_list_engines, test_help, test_bad_values, test_cpus_workers, test_max_conns,
        test_idle_timeout, test_stop_in_flight, test_sigint_every_engine, test_port_in_use,
        test_go_peer_missing)])


if __name__ == "__main__":
    main()
