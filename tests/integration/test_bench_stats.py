#!/usr/bin/env python3
"""bench/benchstats.py: the benches' medians, CIs and paired ratios come from `ctxlab stats`
(no statistics in Python), print as `median [lo, hi]` (+ the achieved confidence below 95%), and
targets are judged on the CI. Then one bench, bench/pingpong-vs-perf --rounds 7 with few round
trips (a few seconds), checked for that format and for figures that agree with ctxlab stats run
on its own per-round lines (skipped when perf bench is not usable here)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

sys.path.insert(0, os.path.join(t.SRC, "bench"))
import benchstats as bs  # noqa: E402

# a comment-free copy of test_stats_cmd.py's sample: 8 trials, one outlier (25)
SAMPLE = [10.2, 11.5, 9.8, 10.9, 12.1, 10.4, 25, 10.0]


def stats_file(values):
    """`ctxlab stats --json FILE` on values written one per line: the reference."""
    d = tempfile.mkdtemp(prefix="ctxlab-benchstats-")
    try:
        p = os.path.join(d, "v")
        with open(p, "w") as f:
            f.write("".join("%r\n" % v for v in values))
        out = subprocess.run([t.CTXLAB, "stats", "--json", p], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    finally:
        shutil.rmtree(d)


def test_summary_is_ctxlab_stats():
    s = bs.summary(t.CTXLAB, SAMPLE)
    ref = stats_file(SAMPLE)
    for k in ("n", "median", "ci_low", "ci_high", "ci_confidence", "ci_reached", "outliers"):
        assert s[k] == ref[k], (k, s[k], ref[k])
    # known values: n = 8, median 10.65; the 95% order-statistics CI is [x(1), x(8)] with
    # confidence 1 - 2/256 ([x(2), x(7)] reaches only 1 - 18/256 = 0.93)
    assert s["n"] == 8 and abs(s["median"] - 10.65) < 1e-12, s
    assert (s["ci_low"], s["ci_high"]) == (9.8, 25.0), s
    assert abs(s["ci_confidence"] - (1 - 2 / 256)) < 1e-12 and s["ci_reached"], s
    assert s["dropped"] == 0
    assert bs.fmt(s) == "10.65 [9.80, 25.00]", bs.fmt(s)


def test_small_n_says_its_confidence():
    s = bs.summary(t.CTXLAB, [3.0, 1.0, 2.0])
    assert not s["ci_reached"] and s["ci_confidence"] == 0.75, s
    assert bs.fmt(s, "%.1f", "%") == "2.0 [1.0, 3.0]% (75% CI)", bs.fmt(s, "%.1f", "%")
    s5 = bs.summary(t.CTXLAB, [1.0, 2.0, 3.0, 4.0, 5.0])  # 1 - 2^-4 = 93.75%
    assert bs.fmt(s5, "%.0f") == "3 [1, 5] (93.8% CI)", bs.fmt(s5, "%.0f")
    # a CI short of 95% never decides a target, even one far away
    assert bs.judge_at_most(s, 100) == "inconclusive"
    assert bs.judge_at_least(s, -100) == "inconclusive"


def test_ratio_is_paired_per_round():
    ours = [8.0, 9.0, 7.5, 8.2, 8.8, 7.9, 8.1]
    peers = [10.0, 10.5, 9.0, 10.0, 11.0, 9.5, 10.0]
    s, per = bs.ratio(t.CTXLAB, ours, peers)
    assert per == [x / y for x, y in zip(ours, peers)], per
    ref = stats_file(per)
    for k in ("n", "median", "ci_low", "ci_high", "ci_confidence"):
        assert s[k] == ref[k], (k, s[k], ref[k])
    # the median of the per-round ratios (0.82), not the ratio of the medians (8.1/10 = 0.81)
    assert abs(s["median"] - 0.82) < 1e-12, s
    assert bs.fmt(s, "%.3f") == "0.820 [0.800, 0.857]", bs.fmt(s, "%.3f")
    # rounds where the peer gave 0 or nothing are dropped, and the count says so
    s, per = bs.ratio(t.CTXLAB, ours + [1.0, 2.0], peers + [0.0, float("nan")])
    assert s["n"] == 7 and s["dropped"] == 2, s
    assert bs.fmt(s, "%.3f").endswith("] (2 dropped)"), bs.fmt(s, "%.3f")
    assert bs.summary(t.CTXLAB, []) is None and bs.summary(t.CTXLAB, [float("nan")]) is None
    assert bs.fmt(None) == "n/a" and bs.judge_at_most(None, 1) == "inconclusive"


def test_targets_judged_on_the_ci():
    s = bs.summary(t.CTXLAB, [0.70, 0.72, 0.74, 0.75, 0.76, 0.78, 0.80])  # CI [0.70, 0.80]
    assert (s["ci_low"], s["ci_high"]) == (0.70, 0.80) and s["ci_reached"], s
    assert bs.judge_at_most(s, 0.85) == "met"
    assert bs.judge_at_most(s, 0.75) == "inconclusive"  # the median is below, the CI is not
    assert bs.judge_at_most(s, 0.80) == "inconclusive"  # the upper end must be below
    assert bs.judge_at_most(s, 0.65) == "not met"
    assert bs.judge_at_least(s, 0.65) == "met"
    assert bs.judge_at_least(s, 0.75) == "inconclusive"
    assert bs.judge_at_least(s, 0.85) == "not met"
    assert bs.judge_within(s, 0.6, 0.9) == "met"
    assert bs.judge_within(s, 0.6, 0.75) == "inconclusive"
    assert bs.judge_within(s, 0.85, 1.15) == "not met"
    assert bs.combine(["met", "met"]) == "met"
    assert bs.combine(["met", "inconclusive"]) == "inconclusive"
    assert bs.combine(["inconclusive", "not met"]) == "not met"


def test_stats_error_raises():
    try:
        bs.summary("/bin/false", [1.0, 2.0])
    except RuntimeError:
        return
    raise AssertionError("a failing ctxlab stats was not reported")


ROUND_RE = re.compile(r"^\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s")
FIG = r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]"


def test_pingpong_bench_prints_cis():
    perf = shutil.which("perf")
    if not perf:
        t.skip("perf not found (apt-get install linux-perf): bench/pingpong-vs-perf has no peer")
    if not shutil.which("taskset"):
        t.skip("taskset not found (apt-get install util-linux)")
    probe = subprocess.run([perf, "bench", "sched", "pipe", "-l", "100"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0 or "usecs/op" not in probe.stdout:
        t.skip("perf bench sched pipe does not run here: %s" % (probe.stderr.strip()[-200:]))
    out = subprocess.run([sys.executable, os.path.join(t.SRC, "bench", "pingpong-vs-perf"),
                          "--rounds", "7", "--loops", "2000", "--no-unpinned",
                          "--ctxlab", t.CTXLAB], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    t.log(text)
    rounds = [m.groups() for m in map(ROUND_RE.match, text.splitlines()) if m]
    assert len(rounds) == 7, rounds
    perf_m = re.search(r"^  perf us/rt\s+" + FIG + r"$", text, re.M)
    ctx_m = re.search(r"^  ctxlab us/rt\s+" + FIG + r"$", text, re.M)
    rat_m = re.search(r"^ratio ctxlab/perf \(pinned, paired rounds\): " + FIG + r"$", text, re.M)
    assert perf_m and ctx_m and rat_m, text
    # 7 rounds reach 95% (98.4%): no confidence note; each figure lies inside its CI
    for m in (perf_m, ctx_m, rat_m):
        med, lo, hi = map(float, m.groups())
        assert lo <= med <= hi, m.group(0)
    # the printed figures are ctxlab stats on the printed per-round values (order statistics
    # of rounded values are the rounded order statistics, so the strings agree exactly)
    for col, m, spec in ((0, perf_m, "%.2f"), (1, ctx_m, "%.2f"), (2, rat_m, "%.3f")):
        ref = stats_file([float(r[col]) for r in rounds])
        want = ("%s [%s, %s]" % (spec, spec, spec)) % (ref["median"], ref["ci_low"],
                                                        ref["ci_high"])
        assert " ".join(m.groups()[:1]) + " [%s, %s]" % m.groups()[1:] == want, (m.group(0), want)


if __name__ == "__main__":
    t.run_tests([
        ("summary is ctxlab stats", test_summary_is_ctxlab_stats),
        ("small n says its confidence", test_small_n_says_its_confidence),
        ("ratio is paired per round", test_ratio_is_paired_per_round),
        ("targets judged on the CI", test_targets_judged_on_the_ci),
        ("ctxlab stats error raises", test_stats_error_raises),
        ("pingpong-vs-perf prints CIs", test_pingpong_bench_prints_cis),
    ])
