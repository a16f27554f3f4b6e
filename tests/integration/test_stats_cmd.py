#!/usr/bin/env python3
"""ctxlab stats: one-sample summary, two-sample comparison, --json keys and values, and the
errors for bad input (file and line named, exit 1; usage mistakes exit 2). Reference values are
the ones tests/unit/test_core_stats.c derives (R's wilcox.test, enumeration, hand work)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

passed = failed = 0


def stats(*args, stdin=None):
    return subprocess.run([t.CTXLAB, "stats"] + list(args), capture_output=True, text=True,
                          input=stdin, timeout=30)


def check(name, fn):
    global passed, failed
    try:
        fn()
        print("ok  ", name, flush=True)
        passed += 1
    except AssertionError as e:
        print("FAIL", name, e, flush=True)
        failed += 1


def write(d, name, values):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("".join(str(v) + "\n" for v in values))
    return p


def main():
    d = tempfile.mkdtemp(prefix="ctxlab-stats-")
    try:
        run_all(d)
    finally:
        shutil.rmtree(d)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run_all(d):
    # one sample: 8 values with an outlier at line 8 (a comment on line 1, a blank line 9)
    one = os.path.join(d, "one")
    with open(one, "w") as f:
        f.write("# cpu per request, us\n10.2\n11.5\n 9.8\n10.9\t\n12.1\n10.4\n25\n\n10.0\r\n")

    def one_text():
        p = stats(one)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        assert "n          8" in out, out
        # n = 8: CI = [x(1), x(8)], coverage 1 - 2/256 = 99.2 % (binomial table)
        assert "median     10.65" in out and "[9.8, 25]" in out and "99.2%" in out, out
        assert "25 (line 8)" in out and "flagged, not dropped" in out, out

    def one_json():
        p = stats("--json", one)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        for k in ("n", "median", "ci_low", "ci_high", "ci_confidence", "ci_reached", "mean",
                  "stddev", "min", "max", "q1", "q3", "fence_low", "fence_high", "outliers"):
            assert k in j, (k, j)
        vals = [10.2, 11.5, 9.8, 10.9, 12.1, 10.4, 25, 10.0]
        m = sum(vals) / 8
        sd = (sum((v - m) ** 2 for v in vals) / 7) ** 0.5
        assert j["n"] == 8 and abs(j["mean"] - m) < 1e-9 and abs(j["stddev"] - sd) < 1e-9, j
        assert j["median"] == 10.65 and j["ci_low"] == 9.8 and j["ci_high"] == 25, j
        assert j["ci_confidence"] == 1 - 2 / 256 and j["ci_reached"] is True, j
        assert j["outliers"] == [{"line": 8, "value": 25, "side": "high"}], j["outliers"]

    def one_stdin_small():
        # n = 4 cannot reach 95 %: full range, flagged in text and JSON
        p = stats("-", stdin="4\n1\n3\n2\n")
        assert p.returncode == 0, p.stderr
        assert "not reachable with n = 4 (needs n >= 6)" in p.stdout, p.stdout
        assert "[1, 4] covers 87.5%" in p.stdout, p.stdout
        j = json.loads(stats("--json", "-", stdin="4\n1\n3\n2\n").stdout)
        assert j["ci_reached"] is False and j["ci_confidence"] == 0.875, j

    check("one sample: text", one_text)
    check("one sample: --json keys and values", one_json)
    check("one sample: stdin, n too small for 95%", one_stdin_small)

    # two samples, exact: R's wilcox.test(1:5, 6:10) p = 0.007937 (2/252)
    a = write(d, "a", [1, 2, 3, 4, 5])
    b = write(d, "b", [6, 7, 8, 9, 10])
    a3 = write(d, "a3", [1, 2, 3])
    b3 = write(d, "b3", [4, 5, 6])
    # Hollander & Wolfe's permeability data (R's ?wilcox.test): two-sided p = 0.2544,
    # HL shift y - x = -0.305, CI [-0.76, 0.15]
    hx = write(d, "hx", [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46])
    hy = write(d, "hy", [1.15, 0.88, 0.90, 0.74, 1.21])

    keys = ("median_a", "median_b", "shift", "ci_low", "ci_high", "p_value", "p_adjusted",
            "significant")

    def two_significant():
        p = stats("--json", a, b)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        for k in keys + ("relative_shift", "u", "p_exact", "failed", "a", "b"):
            assert k in j, (k, j)
        assert j["median_a"] == 3 and j["median_b"] == 8 and j["shift"] == 5, j
        assert abs(j["p_value"] - 2 / 252) < 1e-12 and j["p_exact"] is True, j
        assert j["p_adjusted"] == j["p_value"], j
        assert j["ci_low"] > 0 and j["significant"] is True and j["failed"] == [], j
        assert abs(j["relative_shift"] - 5 / 3) < 1e-12, j
        out = stats(a, b).stdout
        assert "p = 0.007937 (exact, two-sided)" in out, out
        assert "significant      yes" in out, out

    def two_textbook():
        j = json.loads(stats("--json", hx, hy).stdout)
        assert abs(j["p_value"] - 0.2544122544122544) < 1e-12, j
        assert abs(j["shift"] + 0.305) < 1e-12, j
        assert abs(j["ci_low"] + 0.76) < 1e-12 and abs(j["ci_high"] - 0.15) < 1e-12, j
        assert j["significant"] is False and "p" in j["failed"] and "ci" in j["failed"], j

    def two_too_small():
        p = stats(a3, b3)
        assert p.returncode == 0, p.stderr
        assert "p = 0.1 (exact" in p.stdout, p.stdout
        assert "significant      no" in p.stdout, p.stdout
        assert "Use at least 4 values per side" in p.stdout, p.stdout
        assert "do not rerun until significant" in p.stdout, p.stdout
        j = json.loads(stats("--json", a3, b3).stdout)
        assert j["n_too_small"] is True and j["min_n_per_side"] == 4, j
        assert j["failed"] == ["p", "n"], j

    def two_ties_normal():
        # a = 1,2,2,3 / b = 2,3,4,5: tie-corrected normal approximation, p = 0.1366582477
        p = stats("--json", write(d, "ta", [1, 2, 2, 3]), "-", stdin="2\n3\n4\n5\n")
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout)
        assert j["p_exact"] is False and j["ties"] is True, j
        assert abs(j["p_value"] - 0.13665824773814753) < 1e-9, j

    def two_noise_floor():
        # b = a + 1 % of a: a clear shift, but within a 2 % floor; a 0.5 % floor accepts it
        base = [100 + i * 0.37 for i in range(10)]
        fa = write(d, "fa", base)
        fb = write(d, "fb", [v * 1.01 + 0.5 for v in base])
        j = json.loads(stats("--json", fa, fb).stdout)
        assert j["p_value"] < 0.05 and j["ci_low"] > 0, j
        assert j["significant"] is False and j["failed"] == ["noise floor"], j
        j = json.loads(stats("--json", "--noise-floor", "0.5", fa, fb).stdout)
        assert j["significant"] is True and j["noise_floor"] == 0.005, j

    check("two samples: exact p, significant, JSON keys", two_significant)
    check("two samples: Hollander & Wolfe example", two_textbook)
    check("two samples: n = 3 per side can never reach p < 0.05", two_too_small)
    check("two samples: ties use the corrected normal approximation", two_ties_normal)
    check("two samples: noise floor", two_noise_floor)

    def bad_data():
        cases = [("1\n2\nabc\n", "line 3: 'abc' is not a number"),
                 ("1\nnan\n", "line 2: 'nan' is not a number"),
                 ("inf\n", "line 1: 'inf' is not a number"),
                 ("1e999\n", "line 1: '1e999' is out of range"),
                 ("0x10\n", "line 1: '0x10' is not a number"),
                 ("1.5 2.5\n", "line 1: '1.5 2.5' is not a number"),
                 ("12abc\n", "line 1: '12abc' is not a number"),
                 ("# only a comment\n\n", "holds no numbers")]
        for text, want in cases:
            f = os.path.join(d, "bad")
            with open(f, "w") as fh:
                fh.write(text)
            p = stats(f)
            assert p.returncode == 1, (text, p.returncode, p.stderr)
            assert ("'%s' " % f + want) in p.stderr, (text, p.stderr)
            assert p.stdout == "", p.stdout
        with open(os.path.join(d, "nul"), "wb") as fh:
            fh.write(b"1\n2\x003\n")
        p = stats(os.path.join(d, "nul"))
        assert p.returncode == 1 and "line 2: holds a NUL byte" in p.stderr, p.stderr
        # the second file's error names the second file
        p = stats(a, "-", stdin="1\n\n x\n")
        assert p.returncode == 1 and "'standard input' line 3: 'x'" in p.stderr, p.stderr
        # too many pairs for the Hodges-Lehmann shift (2^24): refused, saying so
        big = write(d, "big", range(4097))
        p = stats(big, big)
        assert p.returncode == 1 and "more pairs than the Hodges-Lehmann shift takes" in p.stderr, \
            p.stderr
        p = stats(os.path.join(d, "missing"))
        assert p.returncode == 1 and "cannot open '%s'" % os.path.join(d, "missing") in p.stderr

    def bad_usage():
        for args in ([], [a, b, a], ["--bogus", a], ["--alpha", "2", a], ["--alpha", "x", a],
                     ["--noise-floor", "-1", a], ["-", "-"], [a, "--alpha"]):
            p = stats(*args)
            assert p.returncode == 2, (args, p.returncode, p.stderr)
            assert p.stderr.startswith("ctxlab: error: "), (args, p.stderr)
        p = stats("--help")
        assert p.returncode == 0 and p.stdout.startswith("usage: ctxlab stats"), p.stdout

    check("bad data: file and line named, exit 1", bad_data)
    check("bad usage: exit 2", bad_usage)


main()
