#!/usr/bin/env python3
"""ctxlab compare: benchstat's method on crafted results directories (trials.jsonl written here).

A/B with a clear CPU-per-request shift: significant, with the median and Hodges-Lehmann shift
computed here; A/A (same figures, other noise): nothing significant; n = 3 per side: the
warning with the repeats needed; --noise: an A/A pair that moved 5% raises the floor; --json -:
the row keys; --engines: two engines of one run."""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

CTXLAB = os.environ.get("CTXLAB", "ctxlab")

ROW_KEYS = {"cell", "metric", "n_a", "n_b", "median_a", "median_b", "ci_a", "ci_b", "shift",
            "shift_pct", "ci_low", "ci_high", "p_value", "p_adjusted", "significant", "why_not"}


def write_run(d, cells, seed):
    """cells: list of (params dict, [us_per_request per repeat]); requests_per_s fixed, p99
    with 1% noise."""
    rnd = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump({"fixture": True}, f)
    k = 0
    with open(os.path.join(d, "trials.jsonl"), "w") as f:
        for params, vals in cells:
            cell = " ".join("%s=%s" % kv for kv in params.items())
            for r, v in enumerate(vals):
                rec = {"schema": "1.1", "trial": k, "repeat": r, "cell": cell, "params": params,
                       "status": "ok", "reason": None,
                       "server_cpu": {"us_per_request": v},
                       "throughput": {"requests_per_s": 1000.0},
                       "latency_us": {"p99": 200 * (1 + rnd.uniform(-0.01, 0.01))}}
                f.write(json.dumps(rec) + "\n")
                k += 1


def noisy(rnd, base, n, rel=0.01):
    return [base * (1 + rnd.uniform(-rel, rel)) for _ in range(n)]


def compare(*args):
    p = subprocess.run([CTXLAB, "compare"] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, (args, p.stderr)
    return p


def rows_of(p):
    doc = json.loads(p.stdout)
    return {(r["cell"], r["metric"]): r for r in doc["rows"]}, doc


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-compare-")
    try:
        rnd = random.Random(12)
        P = {"engine": "fork", "proto": "http", "connections": "16"}
        cell = "engine=fork proto=http connections=16"
        a_vals = noisy(rnd, 10.0, 8)
        a2_vals = noisy(rnd, 10.0, 8)
        b_vals = noisy(rnd, 12.0, 8)            # +20%
        a, a2, b = (os.path.join(base, x) for x in ("a", "a2", "b"))
        write_run(a, [(P, a_vals)], 1)
        write_run(a2, [(P, a2_vals)], 2)
        write_run(b, [(P, b_vals)], 3)

        # A/B: CPU per request significant, the figures as computed here
        out = compare(a, b).stdout
        sig, rest = out.split("NO SIGNIFICANT DIFFERENCE (~)")
        assert "SIGNIFICANT (1)" in sig and "cpu_us_per_request" in sig, out
        assert "cpu_us_per_request" not in rest and "requests_per_s" in rest, out
        rows, doc = rows_of(compare(a, b, "--json", "-"))
        assert len(rows) == 3, rows            # the three metrics the records hold
        r = rows[(cell, "cpu_us_per_request")]
        assert set(r) >= ROW_KEYS, set(r)
        assert r["significant"] is True and r["why_not"] == [], r
        assert r["n_a"] == 8 and r["n_b"] == 8
        assert abs(r["median_a"] - statistics.median(a_vals)) < 1e-9
        assert abs(r["median_b"] - statistics.median(b_vals)) < 1e-9
        hl = statistics.median([y - x for x in a_vals for y in b_vals])
        assert abs(r["shift"] - hl) < 1e-9, (r["shift"], hl)
        assert abs(r["shift_pct"] - 100 * hl / statistics.median(a_vals)) < 1e-6
        assert r["ci_low"] <= hl <= r["ci_high"] and r["ci_low"] > 0
        assert r["ci_a"][0] <= r["median_a"] <= r["ci_a"][1]
        assert r["p_adjusted"] >= r["p_value"] and r["p_adjusted"] < 0.05
        t = rows[(cell, "requests_per_s")]
        assert t["significant"] is False and "p" in t["why_not"], t
        assert doc["rows"][0]["significant"] is True   # significant rows first
        assert doc["warnings"] == []

        # A/A: nothing significant
        out = compare(a, a2).stdout
        assert "SIGNIFICANT (0)" in out, out
        rows, _ = rows_of(compare(a, a2, "--json", "-"))
        assert not any(x["significant"] for x in rows.values()), rows

        # --noise: A/A2 moved 5% on CPU per request; B moved 3%: significant over the 2%
        # floor, not over the measured 5%
        a3, b3 = os.path.join(base, "a3"), os.path.join(base, "b3")
        write_run(a3, [(P, noisy(rnd, 10.5, 8, 0.001))], 4)
        write_run(b3, [(P, noisy(rnd, 10.3, 8, 0.001))], 5)
        a4 = os.path.join(base, "a4")
        write_run(a4, [(P, noisy(rnd, 10.0, 8, 0.001))], 6)
        rows, _ = rows_of(compare(a4, b3, "--json", "-"))
        assert rows[(cell, "cpu_us_per_request")]["significant"] is True
        rows, doc = rows_of(compare(a4, b3, "--noise", a3, "--json", "-"))
        r = rows[(cell, "cpu_us_per_request")]
        assert r["significant"] is False and r["why_not"] == ["noise floor"], r
        assert 4.9 < r["noise_floor_pct"] < 5.1, r
        assert doc["noise_floor_pct"]["requests_per_s"] == 2
        out = compare(a4, b3, "--noise", a3).stdout
        assert "|shift| of A against the --noise run" in out, out
        # --noise-floor: 4% hides the 3% shift too
        rows, _ = rows_of(compare(a4, b3, "--noise-floor", "4", "--json", "-"))
        assert rows[(cell, "cpu_us_per_request")]["why_not"] == ["noise floor"]

        # n = 3 per side: never significant, and the warning says so (stdout, or stderr with
        # --json -)
        s3a, s3b = os.path.join(base, "s3a"), os.path.join(base, "s3b")
        write_run(s3a, [(P, [10.0, 10.1, 10.2])], 7)
        write_run(s3b, [(P, [20.0, 20.1, 20.2])], 8)
        p = compare(s3a, s3b)
        assert "SIGNIFICANT (0)" in p.stdout, p.stdout
        want = ("with 3 repeats per side no difference can be significant at 0.05 after Holm "
                "over 3 metrics: use at least 5 repeats; decide n in advance, do not rerun "
                "until significant")
        assert "warning: " + want in p.stdout, p.stdout
        p = compare(s3a, s3b, "--json", "-")
        assert want in p.stderr, p.stderr
        assert json.loads(p.stdout)["warnings"] == [want]

        # --json FILE: the same document in a file, the text on stdout
        jf = os.path.join(base, "cmp.json")
        p = compare(a, b, "--json", jf)
        assert "A/B COMPARISON" in p.stdout
        assert len(json.load(open(jf))["rows"]) == 3

        # two engines of one run
        c = os.path.join(base, "c")
        Q = dict(P, engine="epoll")
        write_run(c, [(P, noisy(rnd, 10.0, 6)), (Q, noisy(rnd, 4.5, 6))], 9)
        rows, _ = rows_of(compare(c, "--engines", "fork,epoll", "--json", "-"))
        r = rows[(cell, "cpu_us_per_request")]
        assert r["cell_b"] == "engine=epoll proto=http connections=16", r
        assert r["significant"] is True and r["shift_pct"] < -50, r
        p = subprocess.run([CTXLAB, "compare", c, "--engines", "fork,nope"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "'nope'" in p.stderr, p.stderr
        p = subprocess.run([CTXLAB, "compare", c], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p.stderr
        p = subprocess.run([CTXLAB, "compare", a, b, "--noise-floor", "x"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p.stderr
        empty = os.path.join(base, "empty")
        os.makedirs(empty)
        open(os.path.join(empty, "trials.jsonl"), "w").close()
        p = subprocess.run([CTXLAB, "compare", a, empty], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 1 and "'%s' has no trials" % empty in p.stderr, p.stderr
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
