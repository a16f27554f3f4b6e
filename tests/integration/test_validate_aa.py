#!/usr/bin/env python3
"""Validation, A/A: the same small spec run twice, compared: compare flags no more than 5% of
the cell x metric rows significant (bounded to about 80 s).

Two epoll/http cells (2 and 8 connections, open loop at 1000 requests/s, so that the offered
load does not depend on the machine's), repeat 6 per side: enough that a row CAN be significant
after Holm over the metrics of a cell (compare's n warning is absent: the check can fail), and
rows are counted from `compare --json -`."""
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
        p = run(["compare", "--json", "-"] + dirs, 30)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["warnings"] == [], doc["warnings"]     # n allows significance at all
        rows = doc["rows"]
        cells = set(r["cell"] for r in rows)
        assert len(cells) == 2, cells
        assert all(r["n_a"] == 6 and r["n_b"] == 6 for r in rows), \
            [(r["cell"], r["metric"], r["n_a"], r["n_b"]) for r in rows]
        sig = [(r["cell"], r["metric"], r["shift_pct"], r["p_adjusted"]) for r in rows
               if r["significant"]]
        print("A/A: %d of %d rows significant: %s" % (len(sig), len(rows), sig))
        assert len(sig) <= 0.05 * len(rows), sig
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
