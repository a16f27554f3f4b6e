"""Servers under hostile clients: the limits `ctxlab serve` applies by default.
  - --max-conns defaults to 10000, bounded by the open-file limit (run under prlimit);
  - --header-timeout defaults to 10 s (a partial request alone is cut, no option given);
  - /work's cpu_us and mem are capped server-side (--work-max-cpu-us 1 s, --work-max-mem
    64 MiB by default): over a cap the answer is 400 naming it, and no work runs;
  - fork: at --max-children live children (default --max-conns) the server stops accepting:
    connections wait in the backlog instead of being forked for;
  - thread: a connection whose thread cannot be started is closed, the failure is logged once
    and accepting backs off (test seam CTXLAB_THREAD_FAIL_CREATE=N);
  - chat: --max-rooms bounds the rooms (an error line for the join over it), and an emptied
    room is freed (fork, prefork: its log file in the room directory is removed).
Each check runs against real engines over real sockets, ~25 s in all on 2 cores.
"""
import glob
import os
import socket
import time

import ctxlabtest as t


def internal_engines(proto):
    return [e for e in t.engines_speaking(proto) if e not in t.EXTERNAL and t.engine_usable(e)[0]]


def get(addr, path, timeout=5):
    c = t.connect(addr, timeout=timeout)
    try:
        c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _, body, _ = t.HttpReader(c).response()
        return st, body
    finally:
        c.close()


def wait_until(fn, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return fn()


def closed_within(sk, timeout):
    """True when the server closed sk (EOF or reset) within timeout, False when it stayed
    open and silent; AssertionError when it sent bytes."""
    sk.settimeout(timeout)
    try:
        data = sk.recv(4096)
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    assert data == b"", "unexpected bytes %r" % data[:60]
    return True


def test_max_conns_default_within_nofile():
    # under an open-file limit of 100 the default --max-conns is 100 - 50 = 50 (the reserve
    # is 64 descriptors, or half the limit when that is less)
    for e in ("epoll", "thread"):
        with t.Serve(e, "echo", prefix=["prlimit", "--nofile=100:100", "--"]) as s:
            conns = []
            for i in range(50):
                c = t.connect(s.addr, timeout=5)
                c.sendall(b"x%d\n" % i)
                assert t.recv_exact(c, len(b"x%d\n" % i)) == b"x%d\n" % i, (e, i)
                conns.append(c)
            extra = t.connect(s.addr, timeout=5)
            extra.sendall(b"over\n")
            assert closed_within(extra, 5), "%s served connection 51 over the default cap" % e
            extra.close()
            for c in conns:
                c.close()


def test_header_timeout_default():
    with t.Serve("epoll", "http") as s:
        part = t.connect(s.addr, timeout=15)
        part.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never completed
        t0 = time.monotonic()
        assert not closed_within(part, 8.5), "a partial request was cut before 8.5 s"
        assert closed_within(part, 4.5), "a partial request was not cut by the default 10 s"
        el = time.monotonic() - t0
        assert 9.5 <= el <= 13.0, "cut after %.1fs, want ~10s" % el
        part.close()


def test_work_caps():
    for e in ("epoll", "fork"):
        with t.Serve(e, "http") as s:
            t0 = time.monotonic()
            st, body = get(s.addr, "/work?cpu_us=10000000&mem=1g")
            assert st == 400 and b"--work-max-cpu-us" in body, (e, st, body)
            st, body = get(s.addr, "/work?cpu_us=1000001")
            assert st == 400 and b"up to 1000000 " in body, (e, st, body)
            st, body = get(s.addr, "/work?mem=65M")
            assert st == 400 and b"up to 67108864 bytes" in body, (e, st, body)
            assert time.monotonic() - t0 < 2.0, "%s ran refused work" % e
            assert get(s.addr, "/work?cpu_us=1000&mem=1M") == (200, b"ok\n"), e
        with t.Serve(e, "http", "--work-max-cpu-us", "5000", "--work-max-mem", "128M") as s:
            assert get(s.addr, "/work?cpu_us=5000") == (200, b"ok\n"), e
            st, body = get(s.addr, "/work?cpu_us=5001")
            assert st == 400 and b"up to 5000 " in body, (e, st, body)
            assert get(s.addr, "/work?mem=65M") == (200, b"ok\n"), e
    rc, out, err = run_serve("--work-max-cpu-us", "20000000")
    assert rc == 2 and "--work-max-cpu-us" in err, (rc, err)
    rc, out, err = run_serve("--work-max-mem", "2G")
    assert rc == 2 and "--work-max-mem" in err, (rc, err)


def run_serve(*args):
    import subprocess
    p = subprocess.run([t.CTXLAB, "serve", "--listen", "127.0.0.1:0"] + list(args),
                       capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_fork_max_children():
    for args in (["--max-conns", "2"], ["--max-conns", "0", "--max-children", "2"]):
        with t.Serve("fork", "echo", *args) as s:
            a, b = t.connect(s.addr), t.connect(s.addr)
            for c in (a, b):
                c.sendall(b"hi\n")
                assert t.recv_exact(c, 3) == b"hi\n"
            waiting = t.connect(s.addr, timeout=5)  # the kernel completes it: the backlog
            waiting.sendall(b"later\n")
            assert not closed_within(waiting, 1.0), "%s: the third was closed" % args
            # not forked for: the parent's children are the two connections (and, for chat,
            # nothing else)
            assert len(children(s.pid)) == 2, (args, children(s.pid))
            a.close()
            waiting.settimeout(5)
            assert t.recv_exact(waiting, 6) == b"later\n", args
            b.close()
            waiting.close()


def test_thread_create_failure_backs_off():
    prefix = ["env", "CTXLAB_THREAD_FAIL_CREATE=3"]
    s = t.Serve("thread", "http", prefix=prefix)
    try:
        socks = [t.connect(s.addr, timeout=5) for _ in range(3)]
        t0 = time.monotonic()
        for c in socks:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        closes = []
        for c in socks:
            assert closed_within(c, 5), "a connection without a thread was left open"
            closes.append(time.monotonic() - t0)
            c.close()
        # three failures: accepting paused ~100 ms after each, no spin through the backlog
        assert closes[-1] >= 0.15, "no back-off: closed at %s" % closes
        # then threads start again
        assert get(s.addr, "/") == (200, b"hello, world\n")
        rc = s.stop()
        assert rc == 0
        err = s.proc.stderr.read().decode()
        n = err.count("cannot start a thread for a connection")
        assert n == 1, "want the failure logged once, got %d: %r" % (n, err)
    finally:
        s.kill()
        for f in (s.proc.stdout, s.proc.stderr):
            f.close()


def chat_join(addr, room):
    c = t.connect(addr, timeout=5)
    c.sendall(b"/join " + room + b"\n")
    return c


def room_files(pid):
    """The room files of a fork/prefork server: its room directory is the one its janitor
    (a child) keeps a descriptor of, or the newest ctxlab-chat-* the server's tree has."""
    dirs = set()
    for p in t.proc_tree(pid):
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (p, fd))
                except OSError:
                    continue
                if "/ctxlab-chat-" in target:
                    d = target
                    while os.path.basename(d) and not os.path.basename(d).startswith(
                            "ctxlab-chat-"):
                        d = os.path.dirname(d)
                    dirs.add(d)
        except OSError:
            continue
    assert len(dirs) == 1, dirs
    d = dirs.pop()
    return sorted(os.path.basename(f) for f in glob.glob(d + "/*"))


def test_max_rooms_and_empty_rooms():
    for e in internal_engines("chat"):
        with t.Serve(e, "chat", "--max-rooms", "2") as s:
            lobby = t.connect(s.addr, timeout=5)  # the lobby is room 1
            a1 = chat_join(s.addr, b"a")  # room 2
            a2 = chat_join(s.addr, b"a")
            # both in room a (a join may take a moment under load: say it until heard)
            a2.settimeout(0.2)
            got = b""
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                a1.sendall(b"hello a\n")
                try:
                    got = a2.recv(100)
                except socket.timeout:
                    pass
            assert b": hello a\n" in got, (e, got)
            over = chat_join(s.addr, b"b")
            data = t.recv_until_close(over)
            assert data.startswith(b"* error: too many rooms (this server allows 2: "
                                   b"--max-rooms"), (e, data)
            over.close()
            if e in ("fork", "prefork"):
                files = room_files(s.pid)
                assert "r-61" in files and "r-6c6f626279" in files, (e, files)
            a1.close()
            a2.close()

            # room a emptied: its place (and, fork/prefork, its file) is free again
            def b_ok():
                socks = []
                try:
                    socks.append(chat_join(s.addr, b"b"))
                    socks.append(chat_join(s.addr, b"b"))
                    time.sleep(0.1)
                    socks[0].sendall(b"in b\n")
                    socks[1].settimeout(2)
                    return socks[1].recv(100).endswith(b": in b\n")
                except OSError:
                    return False
                finally:
                    for c in socks:
                        c.close()
            assert wait_until(b_ok, 5, 0.1), "%s: an emptied room did not free its place" % e
            if e in ("fork", "prefork"):
                assert wait_until(lambda: room_files(s.pid) == ["r-6c6f626279"], 5), (
                    e, room_files(s.pid))
            lobby.close()


if __name__ == "__main__":
    t.run_tests([
        ("default --max-conns within the open-file limit", test_max_conns_default_within_nofile),
        ("default --header-timeout 10 s", test_header_timeout_default),
        ("/work caps", test_work_caps),
        ("fork --max-children: backlog, no fork", test_fork_max_children),
        ("thread: pthread_create failure backs off", test_thread_create_failure_backs_off),
        ("chat --max-rooms and emptied rooms", test_max_rooms_and_empty_rooms),
    ])
