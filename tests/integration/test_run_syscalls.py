#!/usr/bin/env python3
"""Syscalls per request by name in every trial record (issue 11), against ground truth: an HTTP
keep-alive request costs the epoll engine exactly one read and one send (strace -c -f agrees:
bench/syscalls-vs-strace), the gateway's proxy handoff three of each (the front reads the
client and the worker's answer and writes both ways; the worker reads and writes once), the
fdpass handoff one of each. The record's per-request figures must say so within 15 % (the
load's window and the counters' differ by milliseconds), the names must not exceed the total,
and front_cpu/workers_cpu must be there. Needs root (a cgroup and perf counters per cgroup):
otherwise the record must carry syscalls.unavailable with a reason."""
import json
import os
import subprocess
import tempfile

import ctxlabtest as t

SPEC = """[experiment]
name = sc
repeat = 1
precision = off
warmup = 200ms
duration = 1s
[server]
engine = epoll gateway
proto = http
cpus = 1
handoff = proxy fdpass
[load]
connections = 4
"""


def sends(pr):
    return pr.get("sendto", 0) + pr.get("write", 0) + pr.get("writev", 0)


def test_records():
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "sc.ini")
        with open(spec, "w") as f:
            f.write(SPEC)
        out = os.path.join(d, "out")
        p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                           text=True, timeout=180)
        assert p.returncode == 0, p.stderr
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl")) if l.strip()]
        assert len(recs) == 3, len(recs)
        for r in recs:
            assert r["status"] == "ok", r.get("reason")
            sc = r["syscalls"]
            if "unavailable" in sc:
                assert os.geteuid() != 0, "root, yet: %s" % sc["unavailable"]
                assert sc["unavailable"], sc
                continue
            pr = sc["per_request"]
            want = 3 if r["params"].get("handoff") == "proxy" else 1
            for name, v in (("read", pr.get("read", 0)), ("send", sends(pr))):
                assert abs(v - want) <= 0.15 * want, "%s: %s per request %.3f, want %d (%s)" % (
                    r["cell"], name, v, want, pr)
            counts = sc["counts"]
            assert sum(v for k, v in counts.items() if k != "total") == counts["total"], counts
            assert sc["total_per_request"] >= pr.get("read", 0) + sends(pr)
            for k in ("front_cpu", "workers_cpu"):
                assert r[k]["total_cores"] >= 0 and "us_per_request" in r[k], r.get(k)
            t.log("%s: read %.2f send %.2f total %.2f /request" % (
                r["cell"], pr.get("read", 0), sends(pr), sc["total_per_request"]))


if __name__ == "__main__":
    if not os.access(t.CTXLAB, os.X_OK):
        t.skip("ctxlab binary %s not built" % t.CTXLAB)
    t.run_tests([("syscalls per request in records", test_records)])
