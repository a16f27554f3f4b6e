#!/usr/bin/env python3
"""Validation, A/A: the same small spec run twice, compared: compare flags no more than 5% of
the cell x metric rows significant (bounded to about 80 s).

Two epoll/http cells (2 and 8 connections, open loop at 1000 requests/s, so that the offered
load does not depend on the machine's), repeat 6 per side: enough that a row CAN be significant
after Holm over the metrics of a cell (compare's n warning is absent: the check can fail), and
rows are counted from `compare --json -`. The spec profiles one cell (`profile =
cells:connections=8`, the same in both runs): only that cell's first trial is profiled (where
perf_event_open is permitted; else it carries the profiler's warning), env.json records the
selector."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CTXLAB = os.environ.get("CTXLAB", "ctxlab")

SPEC = """[experiment]
name = aa
repeat = 6
warmup = 100ms
duration = 400ms
precision = off
seed = 5
profile = cells:connections=8
[server]
engine = epoll
proto = http
cpus = 1
[load]
connections = 2 8
rate = 1000/s
"""


def run(args, timeout):
    return subprocess.run([CTXLAB] + args, capture_output=True, text=True, timeout=timeout)


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-aa-")
    try:
        spec = os.path.join(base, "aa.ini")
        open(spec, "w").write(SPEC)
        dirs = []
        for name in ("a1", "a2"):
            d = os.path.join(base, name)
            p = run(["run", "-q", "-o", d, spec], 60)
            assert p.returncode == 0, p.stderr[-3000:]
            dirs.append(d)
            env = json.load(open(os.path.join(d, "env.json")))["experiment"]
            assert env["profile"] == "cells" and env["profile_cells"] == "connections=8", env
            recs = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
            for r in recs:
                chosen = r["params"]["connections"] == "8" and r["repeat"] == 0
                tried = r["profiled"] or any("not profiled" in w for w in r.get("warnings", []))
                assert tried == chosen, (r["cell"], r["repeat"], r["profiled"], r.get("warnings"))
        p = run(["compare", "--json", "-"] + dirs, 30)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        rows = doc["rows"]
        cells = set(r["cell"] for r in rows)
        assert len(cells) == 2, cells
        # a trial that failed (the machine's load can starve one) leaves its cell at n = 5,
        # where nothing can be significant (compare warns); the other cell must be at 6 + 6,
        # where a row can be: the check below can fail
        full = [c for c in cells if all(r["n_a"] == 6 and r["n_b"] == 6
                                        for r in rows if r["cell"] == c)]
        assert full, ([(r["cell"], r["n_a"], r["n_b"]) for r in rows], doc["warnings"])
        if not doc["warnings"]:
            assert len(full) == 2, doc
        sig = [(r["cell"], r["metric"], r["shift_pct"], r["p_adjusted"]) for r in rows
               if r["significant"]]
        print("A/A: %d of %d rows significant: %s" % (len(sig), len(rows), sig))
        assert len(sig) <= 0.05 * len(rows), sig
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
