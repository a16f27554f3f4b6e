#!/usr/bin/env python3
"""ctxlab report: intervals everywhere (issue 12), on FIXTURE data (test_report_html.make_fixture):

1. trials.csv: each row carries its cell's median with the distribution-free 95% CI
   (order statistics, recomputed here from the rows) and its achieved confidence, and an
   `outliers` column naming the metrics outside the cell's Tukey fences;
2. report.md / report.html tables show "median [lo, hi] confidence" per metric;
3. findings carry intervals: the medians' CIs and, with enough trials, the ratio's CI;
   with n = 3 they say the CI is out of reach instead of printing one;
4. an outlying trial is listed (flagged), and kept in the mean (never dropped).
"""
import csv
import json
import math
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_report_html import make_fixture, run_report  # noqa: E402


def median_ci(vals, level=0.95):
    """(median, lo, hi, confidence, reached): the binomial order-statistic CI."""
    x = sorted(vals)
    n = len(x)
    med = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2

    def cover(l):
        return 1 - 2 * sum(math.comb(n, k) for k in range(l)) / 2 ** n

    l = 0
    for cand in range(1, n // 2 + 1):
        if cover(cand) >= level:
            l = cand
    if l == 0:
        return med, x[0], x[-1], cover(1), False
    return med, x[l - 1], x[n - l], cover(l), True


def close(a, b):
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12


def inject_outlier(d, trial, factor):
    """Multiplies one record's CPU per request by factor; returns its cell."""
    path = os.path.join(d, "trials.jsonl")
    recs = [json.loads(l) for l in open(path)]
    for r in recs:
        if r["trial"] == trial:
            r["server_cpu"]["us_per_request"] *= factor
            cell = r["cell"]
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return cell


def main():
    d = tempfile.mkdtemp(prefix="ctxlab-report-ci-")
    try:
        make_fixture(d, engines=["fork", "epoll"], repeat=10, connections=(4, 16),
                     failed_cell=("fork", "http", "1", "16"))
        recs = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
        victim = [r for r in recs if r["status"] == "ok" and r["params"]["engine"] == "epoll"
                  and r["params"]["connections"] == "4"][3]["trial"]
        vcell = inject_outlier(d, victim, 5.0)
        run_report(d)

        # 1. the CSV: recomputed medians and CIs, outlier column
        rows = list(csv.DictReader(open(os.path.join(d, "trials.csv"))))
        cells = {}
        for r in rows:
            cells.setdefault(tuple(r[k] for k in ("engine", "proto", "cpus", "connections")), []).append(r)
        checked = 0
        for key, rs in cells.items():
            ok = [r for r in rs if r["status"] == "ok"]
            for col in ("cpu_us_per_request", "cpu_cores", "p99_us"):
                med, lo, hi, conf, reached = median_ci([float(r[col]) for r in ok])
                for r in rs:
                    assert close(float(r[col + "_median"]), med), (key, col, r[col + "_median"], med)
                    assert close(float(r[col + "_ci_low"]), lo), (key, col, r[col + "_ci_low"], lo)
                    assert close(float(r[col + "_ci_high"]), hi), (key, col, r[col + "_ci_high"], hi)
                    assert abs(float(r[col + "_ci_confidence"]) - conf) < 1e-4
                checked += 1
                assert reached  # n = 9 or 10
        assert checked == 16 * 3, checked
        vrow = [r for r in rows if int(r["trial"]) == victim][0]
        assert "cpu_us_per_request:high" in vrow["outliers"].split(";"), vrow["outliers"]
        # flagged, not dropped: the cell's mean includes the outlying value
        vcells = [r for r in rows if r["engine"] == "epoll" and r["proto"] == vrow["proto"]
                  and r["cpus"] == vrow["cpus"] and r["connections"] == "4"]
        assert len(vcells) == 10

        # 2. report.md table: median [lo, hi] confidence; n = 10 reaches 97.9%
        md = open(os.path.join(d, "report.md")).read()
        assert "server CPU per request median [95% CI]" in md
        assert re.search(r"\| [\d.e+-]+ \[[\d.e+-]+, [\d.e+-]+\] 97\.9% \|", md), "no CI cell in report.md"
        html = open(os.path.join(d, "report.html")).read()
        assert "<th>server CPU per request median [95% CI]</th>" in html
        assert re.search(r"<td class=\"ci\">[\d.e+-]+ \[[\d.e+-]+, [\d.e+-]+\] 9\d\.\d%</td>", html)

        # 3. findings: medians with CIs and the ratio with its CI (n = 10 vs 9 or 10)
        fr = r"median server CPU per request \[95% CI\] — epoll [\d.]+ \[[\d.]+, [\d.]+\] us/request " \
             r"\(0\.\d\d× fork \[([\d.]+), ([\d.]+)\]\), fork [\d.]+ \[[\d.]+, [\d.]+\] us/request"
        found = re.findall(fr, md)
        assert len(found) == 4, (len(found), md[md.find("## Findings"):][:1500])
        for lo, hi in found:
            assert 0.3 < float(lo) < float(hi) < 0.6, (lo, hi)  # COST epoll/fork = 0.45
        assert len(re.findall(fr, html)) == 4
        assert "too few" not in md[md.find("## Findings"):md.find("## Results")]
        # the cpus finding: every ratio with its CI
        assert re.search(r"with cpus=2 instead of cpus=1 \(http, 16 connections\), server CPU per request "
                         r"\[95% CI\]: fork [\d.]+× \[[\d.]+, [\d.]+\], epoll [\d.]+× \[[\d.]+, [\d.]+\]\.", md), \
            md[md.find("## Findings"):][:3000]

        # 4. the outlier is listed in both reports
        line = "trial %d (%s): cpu_us_per_request high" % (victim, vcell)
        assert ("- " + line) in md, line
        assert re.search(r"<ul id=\"outliers\">\n(<li>[^\n]*</li>\n)*<li>" + re.escape(line), html)
        assert "error bars: the distribution-free 95% confidence interval of the median" in html
        assert "± one standard deviation" not in html
        assert "display:grid" in html

        # n = 3: no CI is claimed where none exists
        d3 = os.path.join(d, "n3")
        make_fixture(d3, engines=["fork", "epoll"], repeat=3, connections=(4,))
        run_report(d3)
        md3 = open(os.path.join(d3, "report.md")).read()
        assert "n=3: range, 75.0%" in md3
        assert "n=3 per cell, too few for a 95% CI of a median" in md3 or \
            "per cell, too few for a 95% CI of a median" in md3
        assert not re.search(r"× fork \[", md3), "a ratio CI printed for 3 vs 3"
        assert re.search(r"with cpus=2 [^\n]*: fork [\d.]+×, epoll [\d.]+× — a ratio without an interval "
                         r"has too few trials for one\.", md3)
        print("ok: %d cell x metric CIs match, outlier trial %d flagged, %d ratio CIs in findings"
              % (checked, victim, len(found)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
