#!/usr/bin/env python3
"""The per-interval timeline (issue 12, "Intervals everywhere") and `load --intervals`.

- `load --intervals`: one HDR per interval of the window; merged bucket by bucket they equal
  the whole window's histogram exactly (every bucket, every count), and the counts add up to
  latency_us.count; the merged histogram's p99 is the window's p99;
- `run` with `timeline = engine=epoll connections=4`: only that cell's trial writes
  DIR/timeline/ID.json and .csv and names it in its record; its rows carry the load's counts
  (adding up to the record's latency count) and the monitor's server CPU, whose mean over the
  intervals matches the record's server_cpu.total_cores; report.html draws the three charts
  with one point per interval and series; report.md lists it;
- a bad selector is a spec error with the line.
"""
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ctxlabtest as t  # noqa: E402
from test_metrics_keys import check_documented, keys_of  # noqa: E402


def pct_of(buckets, p):
    """HDR percentile over [[value, count]] sorted by value: the smallest value with at least
    p% of the counts at or below it."""
    total = sum(c for _, c in buckets)
    need = p / 100.0 * total
    cum = 0
    for v, c in sorted(buckets):
        cum += c
        if cum >= need and cum > 0:
            return v
    return 0


def test_load_intervals_merge_exactly():
    with t.Serve("epoll", "http") as s:
        p = subprocess.run([t.CTXLAB, "load", "-q", "-c", "4", "-d", "1s", "--warmup", "200ms",
                            "--intervals", "100ms", "--json", "-",
                            "http://%s:%d/" % (s.host, s.port)],
                           capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    iv = d["intervals"]
    assert iv["interval_s"] == 0.1 and len(iv["rows"]) == 10, (iv["interval_s"], len(iv["rows"]))
    merged = collections.Counter()
    for r in iv["rows"]:
        assert r["count"] == sum(c for _, c in r["buckets"]), r["count"]
        for v, c in r["buckets"]:
            merged[v] += c
    window = collections.Counter({v: c for v, c in iv["window_buckets"]})
    assert merged == window, "merged interval HDRs differ from the window's"
    assert sum(merged.values()) == d["latency_us"]["count"] > 0
    # percentiles of the merge are the window's (HDR: reported as the bucket's value)
    w99 = pct_of(list(window.items()), 99) / 1e3
    assert abs(w99 - d["latency_us"]["p99"]) <= 0.002 * w99 + 0.001, (w99, d["latency_us"])
    t.log("load --intervals: %d intervals, %d latencies, merge == window" %
          (len(iv["rows"]), sum(merged.values())))
    # too many intervals: widened to at most 128
    with t.Serve("epoll", "http") as s:
        p = subprocess.run([t.CTXLAB, "load", "-q", "-c", "1", "-d", "2s", "--intervals",
                            "10ms", "--json", "-", "http://%s:%d/" % (s.host, s.port)],
                           capture_output=True, text=True, timeout=60)
    d = json.loads(p.stdout)
    assert len(d["intervals"]["rows"]) <= 128, len(d["intervals"]["rows"])


SPEC = """[experiment]
repeat = 1
warmup = 200ms
duration = 2s
precision = off
timeline = engine=epoll connections=4
[server]
engine = epoll thread
proto = http
cpus = 1
[load]
connections = 4
"""


def test_run_timeline():
    d = tempfile.mkdtemp(prefix="ctxlab-run-tl-")
    try:
        spec = os.path.join(d, "tl.ini")
        open(spec, "w").write(SPEC)
        out = os.path.join(d, "out")
        p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl"))]
        by = {r["params"]["engine"]: r for r in recs}
        assert "timeline" not in by["thread"], "a cell the selector does not match"
        r = by["epoll"]
        assert r["status"] == "ok" and r["timeline"] == "timeline/http-epoll-c4-cpus1.json", r
        tl = json.load(open(os.path.join(out, r["timeline"])))
        rows = tl["rows"]
        assert tl["cell"] == r["cell"] and tl["interval_s"] == 0.2 and len(rows) == 10, tl
        assert sum(x["count"] for x in rows) == r["latency_us"]["count"], \
            (sum(x["count"] for x in rows), r["latency_us"])
        ts = [x["t_s"] for x in rows]
        assert ts == sorted(ts) and abs(ts[1] - ts[0] - 0.2) < 1e-6, ts
        assert -0.5 < ts[0] < 0.5, "the load's window starts near the monitor's: %s" % ts[0]
        cores = [x["server_cpu_cores"] for x in rows if x["server_cpu_cores"] is not None]
        assert len(cores) >= 8, rows
        mean = sum(cores) / len(cores)
        tot = r["server_cpu"]["total_cores"]
        assert abs(mean - tot) <= 0.15 * tot + 0.02, (mean, tot)
        vol = sum(x["ctxsw_vol_per_s"] for x in rows if x["ctxsw_vol_per_s"] is not None)
        assert vol > 0, rows
        for x in rows:
            assert x["p50_us"] <= x["p90_us"] <= x["p99_us"] <= x["max_us"], x
        c = list(csv.DictReader(open(os.path.join(out, "timeline",
                                                  "http-epoll-c4-cpus1.csv"))))
        assert len(c) == 10 and int(c[3]["count"]) == rows[3]["count"], c[3]
        k = set()
        keys_of(tl, k)
        keys_of(r, k)
        check_documented("timeline", k)
        html = open(os.path.join(out, "report.html")).read()
        assert "<h2>Timeline</h2>" in html
        for name, series in (("latency", 3), ("cpu", 1), ("ctxsw", 2)):
            i = html.index('data-timeline="timeline-1-%s"' % name)
            fig = html[i:html.index("</figure>", i)]
            assert fig.count('circle class="pt"') == series * 10, (name, fig.count("circle"))
        md = open(os.path.join(out, "report.md")).read()
        assert "## Timeline" in md and "timeline/http-epoll-c4-cpus1.json" in md
        # hostile: a record naming a file outside timeline/, or a link planted there, is not read
        lines = open(os.path.join(out, "trials.jsonl")).read().splitlines()
        bad = [json.loads(l) for l in lines]
        for b in bad:
            if "timeline" in b:
                b["timeline"] = "timeline/../../../../etc/passwd.json"
        open(os.path.join(out, "trials.jsonl"), "w").write(
            "".join(json.dumps(b) + "\n" for b in bad))
        p = subprocess.run([t.CTXLAB, "report", out], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "<h2>Timeline</h2>" not in open(os.path.join(out, "report.html")).read()
        open(os.path.join(out, "trials.jsonl"), "w").write("\n".join(lines) + "\n")
        f = os.path.join(out, "timeline", "http-epoll-c4-cpus1.json")
        os.rename(f, f + ".real")
        os.symlink(f + ".real", f)
        p = subprocess.run([t.CTXLAB, "report", out], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "<h2>Timeline</h2>" not in open(os.path.join(out, "report.html")).read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_bad_selector():
    d = tempfile.mkdtemp(prefix="ctxlab-run-tl-")
    try:
        spec = os.path.join(d, "bad.ini")
        open(spec, "w").write(SPEC.replace("engine=epoll connections=4", "epoll"))
        p = subprocess.run([t.CTXLAB, "run", "--dry-run", spec], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and "bad.ini:6: bad timeline selector 'epoll'" in p.stderr, \
            p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    t.run_tests([("load --intervals: per-interval HDRs merge exactly", test_load_intervals_merge_exactly),
                 ("run timeline = cell: files, record, report", test_run_timeline),
                 ("a bad timeline selector", test_bad_selector)])
