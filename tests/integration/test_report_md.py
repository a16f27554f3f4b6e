#!/usr/bin/env python3
"""ctxlab report: the Markdown report's table matches trials.csv (FIXTURE data, see
test_report_html.make_fixture): every cell's mean ± stddev (CV) recomputed here from the CSV
rows equals what report.md prints, and the CSV holds every record of trials.jsonl."""
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

# report.md columns (label) -> trials.csv column
COLUMNS = {"server CPU (cores)": "cpu_cores", "server system CPU (cores)": "cpu_sys_cores",
           "server CPU per request (us)": "cpu_us_per_request",
           "context switches (/s)": "ctxsw_per_s", "throughput (req/s)": "requests_per_s",
           "p99 latency (us)": "p99_us", "errors": "errors"}
PARAMS = ["engine", "proto", "cpus", "connections", "bandwidth"]


def stats(vals):
    n = len(vals)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    cv = sd / abs(mean) if mean else 0.0
    return mean, sd, cv


def close(a, b):
    return abs(a - b) <= 1e-3 * max(abs(a), abs(b)) + 1e-9


def parse_md_table(md):
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
    return header, rows


def main():
    d = tempfile.mkdtemp(prefix="ctxlab-report-md-")
    try:
        make_fixture(d)
        run_report(d)
        records = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
        rows = list(csv.DictReader(open(os.path.join(d, "trials.csv"))))
        assert len(rows) == len(records), (len(rows), len(records))
        for rec, row in zip(records, rows):
            assert int(row["trial"]) == rec["trial"] and row["status"] == rec["status"]
            for k, v in rec["params"].items():
                assert row[k] == v
            if rec["status"] == "ok":
                assert close(float(row["cpu_cores"]), rec["server_cpu"]["total_cores"])
            else:
                assert row["cpu_cores"] == "" and row["reason"] == rec["reason"]
        cells = {}
        for row in rows:
            key = tuple(row[p] for p in PARAMS)
            cells.setdefault(key, []).append(row)
        header, table = parse_md_table(open(os.path.join(d, "report.md")).read())
        assert len(table) == len(cells), (len(table), len(cells))
        checked = 0
        for trow in table:
            t = dict(zip(header, trow))
            key = tuple(t[p] for p in PARAMS)
            crow = cells[key]
            ok = [r for r in crow if r["status"] == "ok"]
            assert t["ok/trials"] == "%d/%d" % (len(ok), len(crow)), t["ok/trials"]
            for label, col in COLUMNS.items():
                m = re.fullmatch(r"(\S+) ± (\S+) \((\S+)%\)", t[label])
                assert m, "bad cell %r" % t[label]
                mean, sd, cv = stats([float(r[col]) for r in ok])
                assert close(float(m.group(1)), float("%.4g" % mean)), (label, key, m.group(1), mean)
                assert close(float(m.group(2)), float("%.4g" % sd)), (label, key, m.group(2), sd)
                assert abs(float(m.group(3)) - cv * 100) <= 0.051, (label, key, m.group(3), cv)
                checked += 1
        assert checked == len(cells) * len(COLUMNS)
        print("ok: %d cells x %d columns match trials.csv" % (len(cells), len(COLUMNS)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
