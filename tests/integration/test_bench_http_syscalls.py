"""bench/http-vs-nginx's system call columns (issue 14), on a short run (3 rounds of 1 s;
entries uring, uring@CTXLAB (the same build, through the @ form) and nginx):
- nginx makes at least the recvfrom + writev of every keep-alive request and at most one
  epoll_wait more: 2 <= syscalls/req < 3.2, and no io_uring_enter, no SQE;
- uring: one SQE per request (its send; the recv is multishot): 0.95 <= SQEs/req < 1.2, and its
  system calls are io_uring_enter calls, under one and a half per request;
- the @CTXLAB row runs and reports the same kind of figures.
These are counts of what each server does per request, not timings. strace -c agrees with the
counts (checked by hand: README, issue 14). Skipped without wrk, nginx, taskset, perf or root.
"""
import os
import re
import shutil
import subprocess
import sys

import ctxlabtest as t

FIG = r"([\d.]+) \[([\d.]+), ([\d.]+)\]"


def main():
    for tool in ("wrk", "taskset", "perf"):
        if not shutil.which(tool):
            t.skip("%s not found" % tool)
    if os.geteuid() != 0:
        t.skip("not root: perf cannot count the server's tracepoints")
    ok, why = t.engine_usable("nginx")
    if not ok:
        t.skip(why)
    ok, why = t.uring_usable()
    if not ok:
        t.skip(why)
    if os.cpu_count() < 2:
        t.skip("needs 2 CPUs (server on 0, wrk on 1)")

    def run():
        p = subprocess.run([sys.executable, os.path.join(t.SRC, "bench", "http-vs-nginx"),
                            "--rounds", "3", "--duration", "1", "--warmup", "1", "--ctxlab",
                            t.CTXLAB, "--engines", "uring,uring@%s,nginx" % t.CTXLAB],
                           capture_output=True, text=True, timeout=300)
        t.log(p.stdout[-2500:])
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        table = p.stdout[p.stdout.index("system calls per request"):]
        rows = {}
        for ln in table.splitlines()[2:]:
            m = re.match(r"^(\S+)\s+" + FIG + r".*?\s+" + FIG + r".*?\s+" + FIG, ln)
            if m:
                rows[m.group(1)] = [float(m.group(i)) for i in (2, 5, 8)]
        assert set(rows) == {"uring", "uring@" + t.CTXLAB, "nginx"}, (rows, table)
        sysn, enter, sqe = rows["nginx"]
        assert 2.0 <= sysn < 3.2 and enter == 0 and sqe == 0, ("nginx", rows["nginx"])
        for name in ("uring", "uring@" + t.CTXLAB):
            sysn, enter, sqe = rows[name]
            assert 0.95 <= sqe < 1.2, (name, "SQEs/req", sqe)
            assert 0 < enter <= sysn < 1.5, (name, "syscalls/req", sysn, "enter/req", enter)
            assert sysn - enter < 0.05, (name, "calls other than io_uring_enter", sysn - enter)
    t.run_tests([("http-vs-nginx: syscalls, io_uring_enter and SQEs per request", run)])


if __name__ == "__main__":
    main()
