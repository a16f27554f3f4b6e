"""bench/benchstats.py: the benches' figures, computed by `ctxlab stats` (one implementation, in C).

No statistics are computed here: every median, CI and achieved confidence comes from
`ctxlab stats --json -` (src/cmd/stats.c over src/core/stats.h), run on the per-round values.
This module only feeds it the values, formats the answer and judges targets on the CI.

    import benchstats as bs
    s = bs.summary(ctxlab, [10.1, 9.8, ...])      # one figure over the rounds
    r = bs.ratio(ctxlab, ours, peers)             # ours[i] / peers[i], paired by round
    print(bs.fmt(s), bs.fmt(r, "%.3f", "x"))       # 'median [lo, hi]' (+ achieved confidence)
    bs.judge_at_most(r, 0.85)                     # 'met' / 'not met' / 'inconclusive'

summary() returns None for no usable value, else a dict with n, median, ci_low, ci_high,
ci_confidence (what the order-statistics CI achieves: >= 0.95 from n = 6; below, the CI is the
full range and says how confident it is), ci_reached, and dropped (values that were not finite
numbers: left out, counted). A ratio is the median of the per-round ratios with the one-sample
CI of those ratios: the rounds are paired (ours and the peer's measured back to back in the
same round), so each round gives one ratio. Errors of ctxlab stats raise RuntimeError.
Standard library only.
"""
import json
import math
import subprocess

ROUNDS_DEFAULT = 7  # >= 7 alternating rounds: the 95% CI of a median needs n >= 6


def summary(ctxlab, values):
    """Median of values with its distribution-free 95% CI, from `ctxlab stats --json -`."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    dropped = len(values) - len(vals)
    if not vals:
        return None
    p = subprocess.run([ctxlab, "stats", "--json", "-"], input="".join(repr(v) + "\n" for v in vals),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("ctxlab stats failed (%d): %s" % (p.returncode, p.stderr.strip()))
    d = json.loads(p.stdout)
    d["dropped"] = dropped
    return d


def ratio(ctxlab, ours, peers):
    """Per-round ratios ours[i] / peers[i] (rounds paired) and their summary (see summary());
    rounds where the peer's value is 0 or not finite are dropped. Returns (summary, ratios)."""
    per = []
    for x, y in zip(ours, peers):
        if x is None or y is None or not math.isfinite(x) or not math.isfinite(y) or y == 0:
            per.append(float("nan"))
        else:
            per.append(x / y)
    return summary(ctxlab, per), per


def fmt(s, spec="%.2f", unit=""):
    """'median [lo, hi]' with spec for each number and unit right after the bracket; the
    achieved confidence follows in parentheses when it is below 95% ('1.0 [0.5, 2.0]% (75% CI)'),
    and the count of values left out when there were any ('(7 dropped)')."""
    if s is None:
        return "n/a"
    out = ("%s [%s, %s]" % (spec, spec, spec)) % (s["median"], s["ci_low"], s["ci_high"]) + unit
    notes = []
    if s["ci_confidence"] < s.get("level", 0.95):
        notes.append("%g%% CI" % round(100 * s["ci_confidence"], 1))
    if s.get("dropped"):
        notes.append("%d dropped" % s["dropped"])
    return out + (" (%s)" % ", ".join(notes) if notes else "")


def judge_at_most(s, target):
    """A target 'figure <= target' judged on the CI: 'met' when its upper end is below the
    target, 'not met' when its lower end is above, else 'inconclusive' (also for no figure, or
    a CI that does not reach 95%)."""
    if s is None or not s.get("ci_reached", False):
        return "inconclusive"
    if s["ci_high"] < target:
        return "met"
    if s["ci_low"] > target:
        return "not met"
    return "inconclusive"


def judge_at_least(s, target):
    """A target 'figure >= target': 'met' when the CI's lower end is above it, 'not met' when its
    upper end is below, else 'inconclusive'."""
    if s is None or not s.get("ci_reached", False):
        return "inconclusive"
    if s["ci_low"] > target:
        return "met"
    if s["ci_high"] < target:
        return "not met"
    return "inconclusive"


def judge_within(s, lo, hi):
    """A target 'lo <= figure <= hi': 'met' when the whole CI lies strictly inside, 'not met' when
    it lies wholly outside (above hi or below lo), else 'inconclusive'."""
    if s is None or not s.get("ci_reached", False):
        return "inconclusive"
    if lo < s["ci_low"] and s["ci_high"] < hi:
        return "met"
    if s["ci_low"] > hi or s["ci_high"] < lo:
        return "not met"
    return "inconclusive"


def combine(verdicts):
    """Several targets at once: 'not met' if any is, else 'met' if all are, else 'inconclusive'."""
    if "not met" in verdicts:
        return "not met"
    if all(v == "met" for v in verdicts):
        return "met"
    return "inconclusive"
