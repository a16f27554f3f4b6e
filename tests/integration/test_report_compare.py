#!/usr/bin/env python3
"""ctxlab compare: the A/B report of two FIXTURE runs (test_report_html.make_fixture) and of two
engines in one run; every % change equals (B - A) / A computed here from trials.jsonl."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_report_html import CTXLAB, make_fixture  # noqa: E402


def mean_of(d, path, engine=None, cell=None):
    vals = []
    for line in open(os.path.join(d, "trials.jsonl")):
        rec = json.loads(line)
        if rec["status"] != "ok" or (cell and rec["cell"] != cell):
            continue
        if engine and rec["params"]["engine"] != engine:
            continue
        v = rec
        for p in path.split("."):
            v = v[p]
        vals.append(v)
    return sum(vals) / len(vals)


def changes(text, title):
    block = text.split(title + ":")[1].split("\n\n")[0]
    return [float(x) for x in re.findall(r"([+-]\d+\.\d)%", block.split("-> change:")[1])]


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-compare-")
    try:
        a, b = os.path.join(base, "a"), os.path.join(base, "b")
        # two one-cell runs: A = fork, B = coro at 64 connections (scale makes B busier)
        make_fixture(a, engines=["fork"], connections=(64,), seed=3)
        make_fixture(b, engines=["coro"], connections=(64,), seed=4, scale=1.1)
        p = subprocess.run([CTXLAB, "compare", a, b], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        assert out.count("A/B COMPARISON") == 4, out  # paired by params without engine: 2 protos x 2 cpus
        first = out.split("A/B COMPARISON")[1]
        cell_a = re.search(r"A: \S+  \[(.*)\]", first).group(1)
        cell_b = re.search(r"B: \S+  \[(.*)\]", first).group(1)
        for title, path in (("CPU USAGE (server, cores)", "server_cpu.total_cores"),
                            ("SYSTEM CPU (server, cores)", "server_cpu.sys_cores"),
                            ("CONTEXT SWITCHES (server)", "ctxsw.per_s"),
                            ("THROUGHPUT", "throughput.requests_per_s"),
                            ("LATENCY (p99)", "latency_us.p99")):
            ma, mb = mean_of(a, path, cell=cell_a), mean_of(b, path, cell=cell_b)
            want = (mb - ma) / abs(ma) * 100
            got = changes(first, title)[0]
            assert abs(got - want) <= 0.051, (title, got, want)
        assert "avg" in first and "peak" in first
        # two engines in one run
        c = os.path.join(base, "c")
        make_fixture(c, engines=["fork", "epoll"], connections=(16,), seed=5)
        p = subprocess.run([CTXLAB, "compare", c, "--engines", "fork,epoll"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("A/B COMPARISON") == 4
        blk = p.stdout.split("A/B COMPARISON")[1]
        cell_a = re.search(r"A: \S+  \[(.*)\]", blk).group(1)
        cell_b = re.search(r"B: \S+  \[(.*)\]", blk).group(1)
        assert "engine=fork" in cell_a and "engine=epoll" in cell_b
        ma = mean_of(c, "server_cpu.total_cores", cell=cell_a)
        mb = mean_of(c, "server_cpu.total_cores", cell=cell_b)
        got = changes(blk, "CPU USAGE (server, cores)")[0]
        assert abs(got - (mb - ma) / ma * 100) <= 0.051 and got < 0, got
        # an engine absent from the run is an error that says so
        p = subprocess.run([CTXLAB, "compare", c, "--engines", "fork,nope"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "'nope'" in p.stderr, p.stderr
        p = subprocess.run([CTXLAB, "compare", c], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p.stderr
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
