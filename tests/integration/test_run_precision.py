#!/usr/bin/env python3
"""ctxlab run: adaptive precision and the seeded order (bounded to about 40 s).

A tiny spec of 2 cells (HTTP at 20 requests/s: few requests, a noisy CPU per request; and at
5000 requests/s), repeat 3, max_repeat 8, precision 10 %. Timings decide which cell is noisy,
so the test asserts what the runner DECIDED against the data it had: for every extra round r, a
cell ran repeat r exactly when its decisive figure (CPU per request; throughput when most of
its trials were saturated) had not reached the precision over its repeats < r (n < 6: never
reached), rounds in order, each in the seed's order; env.json records seed, precision,
max_repeat, budget; the report's "precision reached" matches a recomputation from the records;
with a budget too small for any extra round, the run stops after the fixed rounds; --dry-run
with one seed prints one order twice, another seed another; a drawn seed is recorded and
--resume goes on with it.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

CTXLAB = os.environ.get("CTXLAB", "ctxlab")

SPEC = """[experiment]
name = precision
repeat = 3
warmup = 100ms
duration = 300ms
seed = %s
precision = 10%%
max_repeat = 8
budget = %s
[server]
engine = epoll
proto = http
cpus = 1
[load]
connections = 2
rate = 20/s 5000/s
"""


def binom_cdf(k, n):
    return sum(math.comb(n, i) for i in range(0, k + 1)) / 2.0 ** n


def precision(vals):
    """(relative half-width of the 95% median CI, reached) as core/stats.h computes it."""
    n = len(vals)
    if n == 0:
        return math.inf, False
    x = sorted(vals)
    med = x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2
    l, reached = 1, False
    for cand in range(1, n // 2 + 1):
        if 1 - 2 * binom_cdf(cand - 1, n) >= 0.95:
            l, reached = cand, True
    lo, hi = x[l - 1], x[n - l]
    rel = (hi - lo) / 2 / abs(med) if med else math.inf
    return rel, reached and math.isfinite(rel)


def decisive(recs):
    ok = [r for r in recs if r["status"] == "ok"]
    sat = sum(r["server_cpu"]["total_cores"] >= 0.9 * r["placement"]["server_ncpus"] for r in ok)
    if ok and 2 * sat > len(ok):
        return [r["throughput"]["requests_per_s"] for r in ok], "req/s"
    return [r["server_cpu"]["us_per_request"] for r in ok], "CPU/req"


def dry_order(spec):
    p = subprocess.run([CTXLAB, "run", "--dry-run", spec], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    listed = re.findall(r"^\s+\d+  (engine=.*)$", p.stdout, re.M)
    rounds = [[listed[int(x) - 1] for x in r.split()]
              for r in re.findall(r"^  round \d+: ([\d ]+)$", p.stdout, re.M)]
    return p.stdout, rounds


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-run-precision-")
    try:
        spec = os.path.join(base, "p.ini")
        open(spec, "w").write(SPEC % (31, "60s"))
        out1, rounds = dry_order(spec)
        out2, again = dry_order(spec)
        assert rounds == again and len(rounds) == 3, (rounds, again)
        assert "order (seed 31)" in out1 and "up to 5 extra rounds (max_repeat 8)" in out1, out1
        for r in rounds:
            assert len(r) == 2 and len(set(r)) == 2, r
        # the seed decides the order: over a few seeds, more than one order shows up
        orders = set()
        for seed in (1, 2, 3, 4, 5, 6):
            p = subprocess.run([CTXLAB, "run", "--dry-run", "--seed", str(seed), spec],
                               capture_output=True, text=True, timeout=30)
            assert "order (seed %d)" % seed in p.stdout, p.stdout
            orders.add(tuple(re.findall(r"^  round \d+: ([\d ]+)$", p.stdout, re.M)))
        assert len(orders) > 1, orders

        d = os.path.join(base, "res")
        p = subprocess.run([CTXLAB, "run", "-o", d, spec], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "plan: 3 fixed rounds in a random order (seed 31), then up to 5 extra" in p.stderr, p.stderr
        m = re.search(r"precision: (\d) of 2 cells reached \+-10%", p.stderr)
        assert m, p.stderr[-2000:]
        env = json.load(open(os.path.join(d, "env.json")))["experiment"]
        assert env["seed"] == "31" and abs(env["precision"] - 0.1) < 1e-9, env
        assert env["max_repeat"] == 8 and env["budget_s"] == 60, env
        recs = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
        assert [r["trial"] for r in recs] == list(range(len(recs)))
        # the fixed rounds: in the dry run's order
        assert [r["cell"] for r in recs[:6]] == rounds[0] + rounds[1] + rounds[2]
        assert [r["repeat"] for r in recs[:6]] == [0, 0, 1, 1, 2, 2]
        # rounds never go back; each cell at most max_repeat trials, repeats distinct
        reps = [r["repeat"] for r in recs]
        assert reps == sorted(reps), reps
        cells = sorted(set(r["cell"] for r in recs))
        assert len(cells) == 2
        for c in cells:
            rr = [r["repeat"] for r in recs if r["cell"] == c]
            assert rr == sorted(set(rr)) and len(rr) <= 8, rr
        # every extra round: a cell ran it exactly when it had not reached the precision
        for rnd in range(3, 8):
            for c in cells:
                before = [r for r in recs if r["cell"] == c and r["repeat"] < rnd]
                vals, _ = decisive(before)
                rel, reached = precision(vals)
                need = bool(vals) and not (reached and rel <= 0.1)
                ran = any(r["cell"] == c and r["repeat"] == rnd for r in recs)
                assert ran == need, (c, rnd, vals, rel, reached, ran)
        # the end line and the report: the precision each cell reached, from the records
        nreached = 0
        md = open(os.path.join(d, "report.md")).read()
        assert "precision reached" in md, md[:2000]
        for c in cells:
            vals, what = decisive([r for r in recs if r["cell"] == c])
            rel, reached = precision(vals)
            nreached += reached and rel <= 0.1
            rate = "20/s" if "rate=20/s" in c else "5000/s"
            row = [l for l in md.splitlines() if l.startswith("|") and "| %s |" % rate in l]
            assert len(row) == 1, (rate, row)
            mm = re.search(r"±([\d.]+)% (CPU/req|req/s) n=(\d+)(: range)?", row[0])
            assert mm, row[0]
            assert abs(float(mm.group(1)) - rel * 100) <= 0.051, (mm.group(0), rel)
            assert mm.group(2) == what and int(mm.group(3)) == len(vals), (mm.group(0), vals)
            assert bool(mm.group(4)) == (not reached), (mm.group(0), len(vals))
            print("%s: %d trials, precision reached %s" % (c, len(vals), mm.group(0)))
        assert int(m.group(1)) == nreached, (m.group(0), nreached)

        # a budget too small for any extra round: the fixed rounds only
        open(spec, "w").write(SPEC % (31, "1s"))
        d2 = os.path.join(base, "res2")
        p = subprocess.run([CTXLAB, "run", "-o", d2, spec], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-3000:]
        recs2 = [json.loads(l) for l in open(os.path.join(d2, "trials.jsonl"))]
        assert [r["cell"] for r in recs2] == rounds[0] + rounds[1] + rounds[2], recs2
        assert "0 extra trials by precision" in p.stderr, p.stderr[-1000:]
        # resuming it: its budget is spent (the recorded trials count), nothing more runs
        p = subprocess.run([CTXLAB, "run", "--resume", d2], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-3000:]
        assert len(open(os.path.join(d2, "trials.jsonl")).readlines()) == 6, p.stderr[-1000:]

        # no seed in the spec: one is drawn, recorded, and --resume goes on with it
        open(spec, "w").write(SPEC.replace("seed = %s\n", "").replace("budget = %s\n", "")
                              .replace("repeat = 3", "repeat = 1").replace("precision = 10%%",
                                                                           "precision = off"))
        d3 = os.path.join(base, "res3")
        p = subprocess.run([CTXLAB, "run", "-o", d3, spec], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-3000:]
        seed = json.load(open(os.path.join(d3, "env.json")))["experiment"]["seed"]
        assert re.fullmatch(r"\d+", seed), seed
        assert "in a random order (seed %s); precision off" % seed in p.stderr, p.stderr[-1000:]
        lines = open(os.path.join(d3, "trials.jsonl")).readlines()
        assert len(lines) == 2
        open(os.path.join(d3, "trials.jsonl"), "w").write(lines[0])
        p = subprocess.run([CTXLAB, "run", "--resume", d3], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "(seed %s)" % seed in p.stderr, (seed, p.stderr[-1000:])
        # the resumed trial is the one the seed put second, at the same position
        again = json.loads(open(os.path.join(d3, "trials.jsonl")).readlines()[1])
        lost = json.loads(lines[1])
        assert [again[k] for k in ("trial", "repeat", "cell")] == \
            [lost[k] for k in ("trial", "repeat", "cell")], (again["cell"], lost["cell"])
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
