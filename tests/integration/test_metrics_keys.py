#!/usr/bin/env python3
"""docs/metrics.md defines every figure: every key that ctxlab's writers emit must appear in it
(as `key`, in backticks), like test_manpage.py's staleness check of the man page. The keys are
taken from real output, so a key added to a writer without its definition fails here:

- a trial record (trials.jsonl, lab/record.c + monitor/monout.c + the load's embedded objects)
  and env.json (lab/env.c) of a two-cell run of 300 ms trials (echo, and chat for the
  record's `chat` object);
- `watch --json` (monitor/monout.c), every interval object and the summary, with --top and
  --per-cpu so that their objects appear too.
Nested keys are checked by their own name (the docs name "server_cpu" {"user_s", ...}).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ctxlabtest as t  # noqa: E402

DOC = os.path.join(t.SRC, "docs", "metrics.md")

SPEC = """[experiment]
name = keys
repeat = 1
warmup = 100ms
duration = 300ms
[server]
engine = epoll
proto = echo chat
cpus = 1
[load]
connections = 2
[load.chat]
rate = 100/s
"""


def keys_of(v, out, under=""):
    """Every object key in v (recursively); the members of a parameters object are the spec's
    own keys, not the writer's, and are left out."""
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            if k in ("params",):
                continue
            keys_of(x, out, k)
    elif isinstance(v, list):
        for x in v:
            keys_of(x, out, under)


def documented():
    text = open(DOC, encoding="utf-8").read()
    return set(re.findall(r"`([A-Za-z0-9_.]+)`", text)) | set(
        p for w in re.findall(r"`([^`]+)`", text) for p in re.split(r"[^A-Za-z0-9_]+", w) if p)


def check_documented(what, keys):
    doc = documented()
    missing = sorted(k for k in keys if k not in doc)
    assert not missing, "%s keys not defined in docs/metrics.md: %s" % (what, ", ".join(missing))
    t.log("ok: %d %s keys, each defined in docs/metrics.md" % (len(keys), what))


def test_run_record_and_env():
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "keys.ini")
        with open(spec, "w") as f:
            f.write(SPEC)
        out = os.path.join(d, "out")
        p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, "run failed: %s" % p.stderr
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl")) if l.strip()]
        assert recs and recs[0]["status"] == "ok", recs
        assert recs[0]["schema"] == "1.4", recs[0].get("schema")
        chat = [r for r in recs if r["params"]["proto"] == "chat"]
        assert chat and "server_us_per_delivery" in chat[0].get("chat", {}), chat
        rk = set()
        for r in recs:
            keys_of(r, rk)
        # the figures of the record's own objects must be there (a run without a monitor
        # would check nothing of them)
        for k in ("server_cpu", "ctxsw", "memory", "throughput", "latency_us", "user_s",
                  "voluntary", "rss_bytes"):
            assert k in rk, "the record has no '%s': %s" % (k, sorted(rk))
        check_documented("trial record", rk)
        ek = set()
        keys_of(json.load(open(os.path.join(out, "env.json"))), ek)
        check_documented("env.json", ek)


def test_watch_json():
    p = subprocess.run([t.CTXLAB, "watch", "--json", "-i", "100ms", "--top", "2",
                        "--per-cpu", "--", "sleep", "0.5"], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0 and "--per-cpu" in p.stderr:
        p = subprocess.run([t.CTXLAB, "watch", "--json", "-i", "100ms", "--", "sleep",
                            "0.5"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "watch failed: %s" % p.stderr
    wk = set()
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    assert objs and "summary" in objs[-1], p.stdout[-500:]
    for o in objs:
        keys_of(o, wk)
    for k in ("cpu_user_s", "ctxsw_vol", "max_rss_bytes", "total"):
        assert k in wk, "watch --json has no '%s'" % k
    check_documented("watch --json", wk)


if __name__ == "__main__":
    t.run_tests([("trial record and env.json keys", test_run_record_and_env),
                 ("watch --json keys", test_watch_json)])
