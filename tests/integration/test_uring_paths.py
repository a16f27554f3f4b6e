"""uring engine: its fast paths are taken, and their fallbacks work (issue 14).

- multishot recv: over 2000 keep-alive requests on one connection the kernel takes about one
  SQE per request (the send; the recv stays armed), counted by perf stat on the tracepoint
  io_uring:io_uring_submit_req; under the seam CTXLAB_URING_NO_MULTISHOT_RECV=1 (a kernel
  before 6.0) the server says it falls back and takes about two (a recv and a send each);
- SINGLE_ISSUER|DEFER_TASKRUN: the ring's deferred task work runs (io_uring:
  io_uring_local_work_run fires); under CTXLAB_URING_NO_DEFER_TASKRUN=1 (a kernel before 6.1)
  the server says it falls back and that tracepoint never fires;
- each fallback (and both at once) passes the http, echo, sink and chat conformance scripts
  and the backpressure check (a client that does not read: the multishot recv is cancelled,
  then re-armed once the output drains);
- registered (direct) descriptors: 50 open connections add no descriptor to the server's
  /proc/PID/fd (they are slots of the ring's file table); under CTXLAB_URING_NO_DIRECT=1 (a
  kernel that refuses the table) the server says it falls back, each connection is an fd,
  and the conformance scripts and the backpressure check pass;
- --sqpoll: the conformance scripts pass; the kernel submission thread (iou-sqp-PID) is a
  thread of the server whose CPU time `ctxlab watch --pid` counts in the server's total;
  --sqpoll with another engine is a usage error (exit 2).
The counts need perf and root (else those checks are skipped, the rest run); a kernel that
lacks a fast path itself (the server says it falls back without the seam) skips its count.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import ctxlabtest as t
import test_serve_conformance as conf
import test_uring as tu

NREQ = 2000
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
NOTE_RECV = "no multishot recv here"
NOTE_DEFER = "no IORING_SETUP_DEFER_TASKRUN here"
SEAM_RECV = "CTXLAB_URING_NO_MULTISHOT_RECV"
SEAM_DEFER = "CTXLAB_URING_NO_DEFER_TASKRUN"
SEAM_DIRECT = "CTXLAB_URING_NO_DIRECT"
NOTE_DIRECT = "no registered (direct) descriptors here"
EV_SQE = "io_uring:io_uring_submit_req"
EV_LOCAL = "io_uring:io_uring_local_work_run"


@contextlib.contextmanager
def env(**kv):
    old = {k: os.environ.get(k) for k in kv}
    os.environ.update(kv)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


@contextlib.contextmanager
def serve_args(*extra):
    """Every uring t.Serve started inside gets extra arguments."""
    orig = t.Serve.__init__

    def with_args(self, engine, proto, *args, **kw):
        orig(self, engine, proto, *(extra if engine == "uring" else ()), *args, **kw)
    t.Serve.__init__ = with_args
    try:
        yield
    finally:
        t.Serve.__init__ = orig


_perf_ok = None


def perf_usable():
    """(ok, reason): perf stat can count the io_uring tracepoints on a process here."""
    global _perf_ok
    if _perf_ok is None:
        if not shutil.which("perf"):
            _perf_ok = (False, "perf not found")
        elif os.geteuid() != 0:
            _perf_ok = (False, "not root (perf tracepoints)")
        else:
            p = subprocess.run(["perf", "stat", "-x,", "-e", EV_SQE, "-e", EV_LOCAL, "--",
                                "true"], capture_output=True, text=True, timeout=30)
            _perf_ok = (p.returncode == 0, p.stderr.strip()[-200:])
    return _perf_ok


def count_events(pid, events, work):
    """Runs work() while perf stat counts events on pid (every thread); {event: count}."""
    fd, out = tempfile.mkstemp(prefix="uring-paths", suffix=".csv")
    os.close(fd)
    p = subprocess.Popen(["perf", "stat", "-x,", "--no-big-num", "-o", out] +
                         sum((["-e", e] for e in events), []) + ["-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # attached
        work()
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    counts = {}
    with open(out) as f:
        for ln in f:
            parts = ln.strip().split(",")
            if len(parts) >= 3 and parts[0].isdigit():
                counts[parts[2]] = int(parts[0])
    os.unlink(out)
    assert set(counts) == set(events), "perf stat counted %r of %r" % (counts, events)
    return counts


def keepalive(addr, n=NREQ):
    with t.connect(addr, timeout=10) as c:
        r = t.HttpReader(c)
        for _ in range(n):
            c.sendall(REQ)
            st, _, body, _ = r.response()
            assert (st, body) == tu.HELLO, (st, body)


def measure(seams):
    """{event: per request} over NREQ keep-alive requests, and the server's stderr."""
    with env(**seams):
        s = t.Serve("uring", "http")
    try:
        keepalive(s.addr, 10)  # the first recv is armed: out of the counted window
        counts = count_events(s.pid, [EV_SQE, EV_LOCAL], lambda: keepalive(s.addr))
        assert s.stop() == 0, s.stderr_text()
        return {k: v / NREQ for k, v in counts.items()}, s.stderr_text()
    finally:
        s.kill()


def test_fast_paths_taken():
    ok, why = perf_usable()
    if not ok:
        t.log("SKIP the counts: %s" % why)
        return
    fast, err = measure({})
    t.log("default: %.3f SQEs, %.3f local task-work runs per request" %
          (fast[EV_SQE], fast[EV_LOCAL]))
    if NOTE_RECV in err:
        t.log("SKIP the multishot recv count: this kernel has none (%s)" % err)
    else:
        assert fast[EV_SQE] < 1.3, "multishot recv not taken: %.2f SQEs per request" % \
            fast[EV_SQE]
    if NOTE_DEFER in err:
        t.log("SKIP the DEFER_TASKRUN count: this kernel has none (%s)" % err)
    else:
        assert fast[EV_LOCAL] > 0.25, "DEFER_TASKRUN not taken: %.3f local task-work runs " \
            "per request" % fast[EV_LOCAL]

    slow, err = measure({SEAM_RECV: "1"})
    t.log("%s=1: %.3f SQEs per request" % (SEAM_RECV, slow[EV_SQE]))
    assert NOTE_RECV in err and SEAM_RECV in err, "no multishot recv fallback note: %r" % err
    assert slow[EV_SQE] > 1.8, "the single-shot recv fallback took %.2f SQEs per request" % \
        slow[EV_SQE]

    coop, err = measure({SEAM_DEFER: "1"})
    t.log("%s=1: %.3f local task-work runs per request" % (SEAM_DEFER, coop[EV_LOCAL]))
    assert NOTE_DEFER in err and SEAM_DEFER in err, "no DEFER_TASKRUN fallback note: %r" % err
    assert coop[EV_LOCAL] == 0, "DEFER_TASKRUN still on under the seam (%.3f runs per " \
        "request)" % coop[EV_LOCAL]
    assert coop[EV_SQE] < 1.3, "multishot recv lost without DEFER_TASKRUN: %.2f" % coop[EV_SQE]


def check_behaviour():
    conf.check_http(["uring"])
    conf.check_echo(["uring"])
    conf.check_sink(["uring"])
    conf.check_chat_engine("uring")
    conf.check_chat_overflow("uring")
    tu.test_backpressure()
    tu.test_workers_many_conns()


def test_no_multishot_recv():
    with env(**{SEAM_RECV: "1"}):
        err = tu.test_concurrent_connects_and_stop()
        assert NOTE_RECV in err, "%s=1 but no fallback note: %r" % (SEAM_RECV, err)
        check_behaviour()


def test_no_defer_taskrun():
    with env(**{SEAM_DEFER: "1"}):
        err = tu.test_concurrent_connects_and_stop()
        assert NOTE_DEFER in err, "%s=1 but no fallback note: %r" % (SEAM_DEFER, err)
        check_behaviour()


def socket_fds(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def conns_fds(seams, n=50):
    """Socket descriptors of the server with n connections open, each answered once."""
    with env(**seams):
        s = t.Serve("uring", "http")
    try:
        socks = [t.connect(s.addr, timeout=10) for _ in range(n)]
        for c in socks:
            c.sendall(REQ)
            st, _, body, _ = t.HttpReader(c).response()
            assert (st, body) == tu.HELLO, (st, body)
        fds = socket_fds(s.pid)
        for c in socks:
            c.close()
        assert s.stop() == 0
        return fds, s.stderr_text()
    finally:
        s.kill()


def test_direct():
    fds, err = conns_fds({})
    t.log("default: %d socket descriptors with 50 connections open" % fds)
    if NOTE_DIRECT in err:
        t.log("SKIP the direct count: this kernel has no direct descriptors (%s)" % err)
    else:
        assert fds < 10, "direct descriptors not taken: %d socket fds for 50 connections" % fds
    fds, err = conns_fds({SEAM_DIRECT: "1"})
    t.log("%s=1: %d socket descriptors with 50 connections open" % (SEAM_DIRECT, fds))
    assert NOTE_DIRECT in err and SEAM_DIRECT in err, "no direct fallback note: %r" % err
    assert fds >= 50, "the fd fallback holds only %d socket fds for 50 connections" % fds
    with env(**{SEAM_DIRECT: "1"}):
        check_behaviour()


def test_all_fallbacks():
    """An old kernel: single-shot accept and recv, no DEFER_TASKRUN, no direct descriptors."""
    with env(**{SEAM_RECV: "1", SEAM_DEFER: "1", tu.NO_MULTISHOT: "1", SEAM_DIRECT: "1"}):
        err = tu.test_concurrent_connects_and_stop()
        for note in (NOTE_RECV, NOTE_DEFER, tu.FALLBACK_NOTE, NOTE_DIRECT):
            assert note in err, "no %r in %r" % (note, err)
        conf.check_http(["uring"])
        conf.check_chat_engine("uring")
        tu.test_backpressure()


def sq_thread(pid, wait_s=5):
    """The tid of pid's iou-sqp thread (it names itself when it first runs: waits for that)."""
    deadline = time.monotonic() + wait_s
    while True:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    if f.read().startswith("iou-sqp"):
                        return int(tid)
            except OSError:
                pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def thread_cpu_s(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        st = f.read()
    fl = st[st.rindex(")") + 2:].split()
    return (int(fl[11]) + int(fl[12])) / os.sysconf("SC_CLK_TCK")


def test_sqpoll():
    with serve_args("--sqpoll"):
        conf.check_http(["uring"])
        conf.check_echo(["uring"])
        conf.check_chat_engine("uring")
        tu.test_backpressure()
    with t.Serve("uring", "http", "--sqpoll") as s:
        tid = sq_thread(s.pid)
        assert tid, "no iou-sqp thread in the --sqpoll server's /proc/%d/task" % s.pid
        stop = threading.Event()

        def load():
            while not stop.is_set():
                keepalive(s.addr, 200)
        th = threading.Thread(target=load, daemon=True)
        th.start()
        try:
            time.sleep(0.3)
            sq0 = thread_cpu_s(s.pid, tid)
            w = subprocess.run([t.CTXLAB, "watch", "--pid", str(s.pid), "-n", "2", "-i",
                                "500ms", "--json", "--quiet", "--no-perf"],
                               capture_output=True, text=True, timeout=30)
            sq = thread_cpu_s(s.pid, tid) - sq0
        finally:
            stop.set()
            th.join(10)
        assert w.returncode == 0, w.stderr
        total = json.loads(w.stdout.strip().splitlines()[-1])["total"]
        cpu = total["cpu_user_s"] + total["cpu_sys_s"]
        t.log("--sqpoll: the iou-sqp thread used %.2fs over the watch window, watch counted "
              "%.2fs for the server (%d threads)" % (sq, cpu, total["max_threads"]))
        assert total["max_threads"] >= 2, total
        assert sq > 0.05, "the submission thread used only %.2fs under load" % sq
        # the watch window lies within [sq0, sq]: the thread's time is in the total
        assert cpu >= 0.7 * sq - 0.05, "watch counted %.2fs, the sq thread alone %.2fs" % (
            cpu, sq)
    p = subprocess.run([t.CTXLAB, "serve", "--engine", "epoll", "--sqpoll", "--listen",
                        "127.0.0.1:0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--sqpoll" in p.stderr and "uring" in p.stderr, \
        (p.returncode, p.stderr)


def main():
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    if "uring" not in t.list_engines():
        t.skip("no uring engine in this build")
    ok, why = t.uring_usable()
    if not ok:
        t.skip(why)
    t.run_tests([("fast paths taken (SQEs and local task work per request)",
                  test_fast_paths_taken),
                 ("no multishot recv (%s=1): fallback, conformance, backpressure" % SEAM_RECV,
                  test_no_multishot_recv),
                 ("no DEFER_TASKRUN (%s=1): fallback, conformance, backpressure" % SEAM_DEFER,
                  test_no_defer_taskrun),
                 ("direct descriptors; %s=1: fallback, conformance, backpressure" %
                  SEAM_DIRECT, test_direct),
                 ("every fallback at once (an old kernel)", test_all_fallbacks),
                 ("--sqpoll: conformance, its thread counted by watch", test_sqpoll)])


if __name__ == "__main__":
    main()
