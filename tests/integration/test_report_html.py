#!/usr/bin/env python3
"""ctxlab report: report.html is self-contained and has every chart with its points.

The results directory used here is a FIXTURE: synthetic trial records written by
make_fixture() below in the schema of docs/metrics.md ("Experiment records"), so the report
can be tested without running servers. The other test_report_*.py files import it.
Rendered in headless Chromium when /usr/bin/chromium exists (skipped with a reason if not).
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
CHART_METRICS = ["cpu_cores", "cpu_us_per_request", "ctxsw_per_s", "requests_per_s", "p99_us"]
METRIC_PATHS = {
    "cpu_cores": "server_cpu.total_cores", "cpu_user_cores": "server_cpu.user_cores",
    "cpu_sys_cores": "server_cpu.sys_cores", "cpu_peak_cores": "server_cpu.peak_cores",
    "cpu_us_per_request": "server_cpu.us_per_request", "cpu_ms_per_mb": "server_cpu.ms_per_mb",
    "ctxsw_per_s": "ctxsw.per_s", "ctxsw_per_request": "ctxsw.per_request",
    "requests_per_s": "throughput.requests_per_s", "bytes_per_s": "throughput.bytes_per_s",
    "p50_us": "latency_us.p50", "p99_us": "latency_us.p99", "p99_9_us": "latency_us.p99_9",
    "p99_uncorrected_us": "latency_uncorrected_us.p99", "rss_bytes": "memory.rss_bytes",
    "pss_bytes": "memory.pss_bytes", "errors": "errors.total",
}
ENGINES = ["fork", "thread", "epoll", "coro", "go"]
COST = {"fork": 1.0, "thread": 0.8, "epoll": 0.45, "coro": 0.41, "go": 0.6}


def make_fixture(d, engines=ENGINES, seed=1, failed_cell=("fork", "http", "1", "256"),
                 scale=1.0, repeat=3, connections=(1, 4, 16, 64, 256)):
    """Writes a synthetic (FIXTURE) results directory: env.json and trials.jsonl."""
    rnd = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    env = {"fixture": True, "kernel": "Linux 6.1.0-fixture", "cpu_model": "fixture CPU",
           "cores": 2, "governor": "n/a", "versions": {"ctxlab": "0.1.0"},
           "experiment": {"name": "fixture", "question": "fixture question: which engine costs less?",
                          "repeat": repeat, "warmup_s": 0.5, "duration_s": 1.0}}
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump(env, f)
    cells = [(e, p, c, n) for p in ("sink", "http") for c in ("1", "2")
             for n in connections for e in engines]
    k = 0
    with open(os.path.join(d, "trials.jsonl"), "w") as f:
        for r in range(repeat):
            for (e, p, c, n) in cells:
                params = {"engine": e, "proto": p, "cpus": c, "connections": str(n)}
                if p == "sink":
                    params["bandwidth"] = "1Mbps"
                cell = " ".join("%s=%s" % kv for kv in params.items())
                rec = {"trial": k, "of": len(cells) * repeat, "repeat": r, "cell": cell,
                       "params": params, "status": "ok", "reason": None,
                       "placement": {"server_cpus": "0" if c == "1" else "0-1",
                                     "load_cpus": "1" if c == "1" else "0-1",
                                     "shared": c != "1"},
                       "accounting": "procwalk", "warnings": []}
                k += 1
                if (e, p, c, str(n)) == failed_cell and r == 1:
                    rec["status"] = "failed"
                    rec["reason"] = "fixture: load generator exited with status 1"
                    f.write(json.dumps(rec) + "\n")
                    continue
                if c != "1":
                    rec["warnings"] = ["load generator shared CPUs with the server"]
                rps = (n * 122.0 if p == "sink" else min(n * 9000.0, 60000.0)) * scale
                us_req = COST[e] * (8.0 if p == "http" else 20.0) * (1 + 0.1 * (c == "2"))
                us_req *= 1 + rnd.uniform(-0.05, 0.05)
                cores = rps * us_req / 1e6
                ctx = rps * (2.0 if e in ("fork", "thread") else 0.2) * (1 + rnd.uniform(-0.1, 0.1))
                p99 = (50 + n * 3.0 * COST[e]) * (1 + rnd.uniform(-0.1, 0.1))
                rec["server_cpu"] = {"user_cores": cores * 0.3, "sys_cores": cores * 0.7,
                                     "total_cores": cores, "peak_cores": cores * 1.2,
                                     "us_per_request": us_req,
                                     "ms_per_mb": cores / (rps * 128 / 1e6) * 1e3}
                rec["ctxsw"] = {"voluntary_per_s": ctx * 0.9, "involuntary_per_s": ctx * 0.1,
                                "per_s": ctx, "per_request": ctx / rps}
                rec["memory"] = {"rss_bytes": 4e6 * (n if e == "fork" else 1), "pss_bytes": 2e6}
                rec["throughput"] = {"requests": int(rps), "requests_per_s": rps,
                                     "bytes_per_s": rps * 128}
                lat = {"mean": p99 / 3, "p50": p99 / 4, "p99": p99, "p99_9": p99 * 1.5}
                rec["latency_us"] = lat
                rec["latency_uncorrected_us"] = dict((a, b * 0.9) for a, b in lat.items())
                rec["errors"] = {"total": 0}
                f.write(json.dumps(rec) + "\n")
    return cells


def get(rec, path):
    for part in path.split("."):
        if not isinstance(rec, dict) or part not in rec:
            return None
        rec = rec[part]
    return rec


def expected_points(d):
    """{(metric, panel key): number of cells with an ok value} from trials.jsonl."""
    exp = {}
    seen = set()
    for line in open(os.path.join(d, "trials.jsonl")):
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a truncated last line is skipped by the report too
        if rec["status"] != "ok":
            continue
        panel = " ".join("%s=%s" % (k, v) for k, v in rec["params"].items()
                         if k not in ("engine", "connections"))
        for m in CHART_METRICS:
            if get(rec, METRIC_PATHS[m]) is None or (m, rec["cell"]) in seen:
                continue
            seen.add((m, rec["cell"]))
            exp[(m, panel)] = exp.get((m, panel), 0) + 1
    return exp


class Charts(HTMLParser):
    """Collects figure[data-metric][data-panel] -> circle.pt count and titled circles."""

    def __init__(self):
        super().__init__()
        self.charts = {}
        self.cur = None
        self.in_circle = False
        self.titles = 0
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "figure" and "data-metric" in a:
            self.cur = (a["data-metric"], a["data-panel"])
            self.charts[self.cur] = 0
        elif tag == "circle" and "pt" in a.get("class", "").split():
            self.charts[self.cur] += 1
            self.in_circle = True
        elif tag == "title" and self.in_circle:
            self.titles += 1

    def handle_endtag(self, tag):
        if tag == "circle":
            self.in_circle = False
        if tag == "figure":
            self.cur = None


def run_report(d):
    p = subprocess.run([CTXLAB, "report", d], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "ctxlab report failed: %s" % p.stderr
    assert p.stdout.strip() == d + "/report.html", p.stdout
    return p


def check_static(d):
    html = open(os.path.join(d, "report.html")).read()
    # self-contained: no script, no external resource, no tmp files left behind
    assert "<script" not in html.lower()
    assert not re.search(r"<link|\ssrc=|url\(", html, re.I), "external resource in report"
    assert not re.search(r"(href)=\"(https?:)?//", html), "network link in report"
    assert not [f for f in os.listdir(d) if ".tmp" in f], os.listdir(d)
    ch = Charts()
    ch.feed(html)
    exp = expected_points(d)
    assert exp, "fixture produced no points"
    for key, n in exp.items():
        assert key in ch.charts, "chart %s missing (have %s)" % (key, sorted(ch.charts)[:5])
        assert ch.charts[key] == n, "chart %s: %d points, expected %d" % (key, ch.charts[key], n)
    assert len(ch.charts) == len(exp), "unexpected charts: %s" % (set(ch.charts) - set(exp))
    total = sum(exp.values())
    assert ch.titles == total, "%d points have a <title>, expected %d" % (ch.titles, total)
    # findings are computed: the fixture's coro/fork CPU ratio appears
    # (n = 3: the median's interval is the range, the ratio has too few trials for a CI)
    assert re.search(r"at 256 connections, [^<]*: median server CPU per request \[95% CI\] — [^<]*"
                     r"coro [\d.]+ \[[\d.]+, [\d.]+\] us/request \(0\.[34]\d× fork\)", html), "findings missing"
    assert "too few for a 95% CI of a median" in html
    assert "fixture question" in html
    assert "load generator shared CPUs with the server" in html
    return ch.charts


def check_chromium(d, charts):
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if not chromium:
        print("SKIP chromium part: chromium not installed")
        return
    prof = tempfile.mkdtemp(prefix="ctxlab-chromium-")
    try:
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", "--user-data-dir=" + prof,
                            "--enable-logging=stderr", "--v=0", "--dump-dom",
                            "file://" + os.path.abspath(os.path.join(d, "report.html"))],
                           capture_output=True, text=True, timeout=90)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    assert p.returncode == 0, "chromium failed: %s" % p.stderr[-2000:]
    bad = [l for l in p.stderr.splitlines() if "Uncaught" in l or "ERROR:CONSOLE" in l]
    assert not bad, "console errors: %s" % bad
    ch = Charts()
    ch.feed(p.stdout)
    assert ch.charts == charts, "rendered DOM differs from the file's charts"
    print("chromium rendered %d charts, %d points" % (len(ch.charts), sum(ch.charts.values())))


def main():
    d = tempfile.mkdtemp(prefix="ctxlab-report-")
    try:
        make_fixture(d)
        run_report(d)
        charts = check_static(d)
        check_chromium(d, charts)
        # a results dir with a truncated last line (a crash mid-append) still reports
        with open(os.path.join(d, "trials.jsonl"), "a") as f:
            f.write('{"trial": 999, "sta')
        run_report(d)
        assert check_static(d) == charts
        # a missing directory is an error naming it
        p = subprocess.run([CTXLAB, "report", d + "/nope"], capture_output=True, text=True)
        assert p.returncode == 1 and "nope/trials.jsonl" in p.stderr, p.stderr
        print("ok")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
