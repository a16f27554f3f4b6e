#!/usr/bin/env python3
"""run: experiments of kind = pingpong (issue 11, async) end to end.

- a two-mode experiment (coro, unix-thread) on CPU 0: records of kind pingpong with pingpong's
  own figures; the no-switch check is made for the in-process mode only; ground truth: the
  blocking mode makes about 2 voluntary switches per round trip (getrusage inside pingpong),
  and the monitor's count of the process's switches (over its whole life) is at least
  pingpong's over its timed run; every key of the record is defined in docs/metrics.md;
- the report shows pingpong's figures (its own table, async-vs-blocking findings), not server
  CPU per request;
- a record whose check failed (blocked) is flagged in report.md and report.html;
- experiments/async.ini: --dry-run estimates within the budgets (full <= 10 min, --quick
  <= 2 min).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ctxlabtest as t  # noqa: E402
from test_metrics_keys import check_documented, keys_of  # noqa: E402

SPEC = """[experiment]
name = pp
kind = pingpong
repeat = 1
warmup = 100ms
duration = 300ms
precision = off
[pingpong]
mode = unix-thread coro
cpus = "0"
pin = same
size = 64
"""


def run_spec(d, text):
    spec = os.path.join(d, "pp.ini")
    with open(spec, "w") as f:
        f.write(text)
    out = os.path.join(d, "out")
    p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, "run failed: %s" % p.stderr[-2000:]
    recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl")) if l.strip()]
    return out, recs


def test_records_and_report():
    d = tempfile.mkdtemp(prefix="ctxlab-run-pp-")
    try:
        out, recs = run_spec(d, SPEC)
        by = {r["params"]["mode"]: r for r in recs}
        assert set(by) == {"unix-thread", "coro"}, by.keys()
        for mode, r in by.items():
            assert r["status"] == "ok", r
            assert r["kind"] == "pingpong", r
            pp = r["pingpong"]
            assert pp["mode"] == mode and pp["ns_per_round_trip"]["mean"] > 0, pp
            assert pp["affinity_ok"] and pp["cpu_a"] == 0, pp
            assert r["placement"]["server_cpus"] == "0", r["placement"]
            assert "system_cpu" in r and r["system_cpu"]["server"]["cpus"] == "0", r
        ut, co = by["unix-thread"], by["coro"]
        # the check is the in-process modes' only
        assert "switch_check" not in ut, ut.get("switch_check")
        assert co["switch_check"] in ("ok", "blocked", "preempted"), co["switch_check"]
        # a coroutine round trip never waits in the kernel
        assert co["switch_check"] != "blocked", co["pingpong"]
        assert co["pingpong"]["ctxsw_vol_per_round_trip"] < 0.001, co["pingpong"]
        # ground truth: blocking ping-pong on one CPU = 2 voluntary switches per round trip
        v = ut["pingpong"]["ctxsw_vol_per_round_trip"]
        assert 1.8 <= v <= 2.3, "unix-thread: %.3f voluntary switches per round trip" % v
        # the monitor saw the process's whole life: at least pingpong's timed run
        rep = ut["pingpong"]["repeats"][0]
        assert ut["ctxsw"]["voluntary"] >= 0.95 * rep["ctxsw_vol"], (ut["ctxsw"], rep)
        cpu_s = ut["server_cpu"]["user_s"] + ut["server_cpu"]["sys_s"]
        assert cpu_s >= 0.9 * (rep["user_ns"] + rep["sys_ns"]) / 1e9, (ut["server_cpu"], rep)
        rk = set()
        for r in recs:
            keys_of(r, rk)
        check_documented("pingpong trial record", rk)

        md = open(os.path.join(out, "report.md")).read()
        assert "time per round trip (ns) median [95% CI]" in md, md[-2000:]
        assert "server CPU per request" not in md, "a pingpong report shows server figures"
        assert "a user-space switch (coro) vs a kernel one (futex-thread)" not in md
        html = open(os.path.join(out, "report.html")).read()
        assert '<table id="pingpong">' in html and 'id="results"' not in html
        # its chart: time per round trip over pairs, a point per mode (2 modes x 1 pairs value)
        i = html.index('data-metric="pp_ns_per_round_trip"')
        fig = html[i:html.index("</figure>", i)]
        assert fig.count('circle class="pt"') == 2, fig.count('circle class="pt"')
        assert 'data-metric="cpu_us_per_request"' not in html

        # a failed check is flagged: the same records, coro's check made to say "blocked"
        co2 = dict(co)
        co2["switch_check"] = "blocked"
        with open(os.path.join(out, "trials.jsonl"), "w") as f:
            f.write(json.dumps(ut) + "\n" + json.dumps(co2) + "\n")
        p = subprocess.run([t.CTXLAB, "report", out], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        md = open(os.path.join(out, "report.md")).read()
        assert "no-switch check FAILED in 1 cell(s)" in md, md
        assert re.search(r"\| coro \|.*\| FAILED in 1 of 1 \(blocked 1, preempted 0\) \|", md), md
        html = open(os.path.join(out, "report.html")).read()
        assert '<td class="warn">FAILED in 1 of 1' in html
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_async_ini_budgets():
    ini = os.path.join(t.SRC, "experiments", "async.ini")
    for args, limit in (([], 10.0), (["--quick"], 2.0)):
        p = subprocess.run([t.CTXLAB, "run", "--dry-run"] + args + [ini], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        est = float(re.search(r"estimated duration: \S+ = ([\d.]+) min", p.stdout).group(1))
        assert est <= limit, "%s: %.1f min > %.1f" % (args, est, limit)
        b = re.search(r"within a budget of (\S+) for the whole run", p.stdout)
        if b:
            m = re.match(r"(\d+)m(?:(\d+)s)?$|(\d+)s$", b.group(1))
            secs = int(m.group(1)) * 60 + int(m.group(2) or 0) if m.group(1) else int(m.group(3))
            assert secs <= 600, b.group(1)
        assert "kind" not in p.stderr


if __name__ == "__main__":
    t.run_tests([("pingpong records and report", test_records_and_report),
                 ("experiments/async.ini budgets", test_async_ini_budgets)])
