#!/usr/bin/env python3
"""What a trial costs beyond its window (issue 14), and that the cheap paths are taken: a tiny
profiled run (epoll, http, 16 connections, repeat 2, profile = all, 1 s windows) must give
every record a `timing` object whose phases add up (total_s = their sum, overhead_s = total_s -
warmup_s - window_s, the window phase near the spec's duration), and, as root:
- `counters_held` true in every trial (the run held the syscall tracepoints registered: a
  trial's counters open and close without the kernel's grace periods), with the syscalls still
  counted (as many reads as sends: one of each per request; their rate against the load's is
  checked by test_run_syscalls);
- the profiler's symbol cache: the run fills it before its first trial (from its own image:
  the servers run the same binaries), so every profiled trial reads it (hits, the kernel's
  table at least) and fills nothing (no miss), both flame graphs written;
- the run's private cache directory gone afterwards (TMPDIR is the test's own directory).
No figure here is timed: the phases' lengths are checked for consistency, not speed
(bench/trial-overhead measures them)."""
import json
import os
import subprocess
import tempfile

import ctxlabtest as t

SPEC = """[experiment]
name = cost
repeat = 2
precision = off
warmup = 200ms
duration = 1s
profile = all
[server]
engine = epoll
proto = http
cpus = 1
[load]
connections = 16
"""

PHASES = ("setup_s", "server_s", "counters_s", "load_s", "connect_s", "warmup_s", "window_s",
          "collect_s", "profile_s", "stop_s")


def perf_permitted():
    p = subprocess.run([t.CTXLAB, "profile", "-q", "-d", "200ms", "--", "sleep", "0.3"],
                       capture_output=True, text=True, timeout=30)
    return p.returncode == 0


def test_timing():
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "cost.ini")
        with open(spec, "w") as f:
            f.write(SPEC)
        tmp = os.path.join(d, "tmp")
        os.mkdir(tmp)
        out = os.path.join(d, "out")
        env = dict(os.environ, TMPDIR=tmp)
        p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                           text=True, timeout=180, env=env)
        assert p.returncode == 0, p.stderr
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl")) if l.strip()]
        assert len(recs) == 2, len(recs)
        root = os.geteuid() == 0
        profiling = perf_permitted()
        for r in recs:
            assert r["status"] == "ok", r.get("reason")
            tm = r["timing"]
            for k in PHASES:
                if k == "profile_s" and not r["profiled"]:
                    continue
                assert k in tm and tm[k] >= 0, (k, tm)
            total = sum(tm[k] for k in PHASES if k in tm)
            assert abs(tm["total_s"] - total) < 1e-6, tm
            assert abs(tm["overhead_s"] - (total - tm["warmup_s"] - tm["window_s"])) < 1e-6, tm
            assert 0.19 <= tm["warmup_s"] < 5, tm
            assert 0.9 <= tm["window_s"] < 5, tm
            t.log("trial %d: overhead %.3f s (%s)" % (r["trial"], tm["overhead_s"], ", ".join(
                "%s %.3f" % (k[:-2], tm[k]) for k in PHASES if k in tm)))
            if root and "unavailable" not in r["syscalls"]:
                assert tm.get("counters_held") is True, tm
                # counted under the hold: one read and one send per keep-alive request, so
                # the two counts agree (their rate against the load's is test_run_syscalls')
                n = r["syscalls"]["counts"]
                reads, sends = n.get("read", 0), n.get("sendto", 0) + n.get("write", 0)
                assert reads > 0 and abs(reads - sends) <= 0.02 * reads + 4, n
        if not profiling:
            t.log("perf_event_open not permitted here: the symbol cache is not exercised")
            return
        a, b = recs
        for r in recs:
            assert r["profiled"], r["warnings"]
            assert os.path.getsize(os.path.join(out, r["flame"])) > 0
            assert r["timing"]["profile_after_window_s"] > 0, r["timing"]
        ta, tb = a["timing"], b["timing"]
        t.log("symcache: first %d hits %d misses, second %d hits %d misses; profile after the "
              "window %.3f s, %.3f s" % (ta["symcache_hits"], ta["symcache_misses"],
                                         tb["symcache_hits"], tb["symcache_misses"],
                                         ta["profile_after_window_s"],
                                         tb["profile_after_window_s"]))
        if root:  # kernel addresses are visible: the kernel's table is cached
            for tm in (ta, tb):
                assert tm["symcache_hits"] >= 1 and tm["symcache_misses"] == 0, tm
        assert os.listdir(tmp) == [], os.listdir(tmp)


if __name__ == "__main__":
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    t.run_tests([("the record's timing, the held counters and the symbol cache", test_timing)])
