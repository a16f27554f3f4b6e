#!/usr/bin/env python3
"""ctxlab report on results directories others hand you (issue 9): the report must not crash
or emit an active link whatever trials.jsonl holds.

- 100 distinct engines (findings used to write past a 64-entry stack array: exit 139);
- a record's "flame" path that is not a relative flame/... path (javascript:, data:, a path
  with a scheme or a backslash) is not linked, even when a file of that name exists.
The results directories are FIXTURES written here (schema of docs/metrics.md).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import run_tests  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "ctxlab")


def write_env(d):
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump({"fixture": True, "experiment": {"name": "hostile", "repeat": 1}}, f)


def record(k, engine, conns, ok=True, flame=None):
    params = {"engine": engine, "proto": "http", "connections": str(conns)}
    rec = {"trial": k, "repeat": 0, "cell": " ".join("%s=%s" % kv for kv in params.items()),
           "params": params, "status": "ok" if ok else "failed",
           "reason": None if ok else "fixture: failed", "warnings": []}
    if ok:
        rec["server_cpu"] = {"total_cores": 0.1 + k * 0.001, "us_per_request": 5.0 + k}
        rec["throughput"] = {"requests": 1000, "requests_per_s": 1000.0}
        rec["ctxsw"] = {"per_s": 10.0, "per_request": 0.01}
    if flame is not None:
        rec["profiled"] = True
        rec["flame"] = flame
    return rec


def report(d):
    p = subprocess.run([CTXLAB, "report", "--quiet", d], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, "ctxlab report exited %d: %s" % (p.returncode, p.stderr)
    return p


def test_many_engines():
    """100 engines; at the largest connection count every other engine failed, so the
    engine index runs past 64 while fewer than 64 have a value (the old overflow)."""
    d = tempfile.mkdtemp(prefix="ctxlab-hostile-")
    try:
        write_env(d)
        k = 0
        with open(os.path.join(d, "trials.jsonl"), "w") as f:
            for conns in (1, 2):
                for e in range(100):
                    ok = conns == 1 or e % 2 == 0
                    f.write(json.dumps(record(k, "e%03d" % e, conns, ok)) + "\n")
                    k += 1
        report(d)
        md = open(os.path.join(d, "report.md")).read()
        m = re.search(r"^- at 2 connections, .*$", md, re.M)
        assert m, "engine finding missing:\n" + md[:2000]
        # every engine with a value at 2 connections is ranked, none of the failed ones
        for e in range(100):
            present = (" e%03d " % e) in m.group(0)
            assert present == (e % 2 == 0), "e%03d present=%s in %s" % (e, present, m.group(0)[:300])
    finally:
        shutil.rmtree(d)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "href":
                self.hrefs.append(v)


def test_flame_links():
    """Only relative flame/... paths to an existing file are linked."""
    d = tempfile.mkdtemp(prefix="ctxlab-hostile-")
    bad = ["javascript:alert(1)", "JavaScript:alert(1)//flame/x.svg", "data:text/html,x",
           "flame/../../etc/passwd", "flame/x\\..\\y.svg", "http:flame/x.svg", "flame//x.svg",
           "./flame/x.svg", "flame/x.svg?", "flame/a b.svg"]
    good = ["flame/c1/flame.svg", "flame/c1-r1/flame.svg"]
    try:
        write_env(d)
        # the files exist: a hostile directory can hold a file named javascript:alert(1)
        for p in bad + good:
            full = os.path.join(d, p)
            if p in bad and p.startswith("flame/") and p != "flame//x.svg":
                continue  # never outside the temp dir; DIR/flame/*.svg are listed apart
            try:
                os.makedirs(os.path.dirname(full) or d, exist_ok=True)
                with open(full, "w") as f:
                    f.write("<svg/>")
            except OSError:
                pass
        with open(os.path.join(d, "trials.jsonl"), "w") as f:
            k = 0
            for i, p in enumerate(bad + good):
                f.write(json.dumps(record(k, "e%d" % i, 1, True, p)) + "\n")
                k += 1
        report(d)
        html = open(os.path.join(d, "report.html")).read()
        lk = Links()
        lk.feed(html)
        for h in lk.hrefs:
            if h in ("trials.jsonl", "trials.csv", "report.md", "env.json"):
                continue
            assert re.fullmatch(r"flame/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", h) and \
                ".." not in h.split("/"), "unsafe link %r in report.html" % h
        for p in bad:
            assert p not in lk.hrefs, "%r linked in report.html" % p
        assert "javascript:" not in html.lower(), "javascript: text in report.html"
        for p in good:
            assert p in lk.hrefs, "%s not linked (links: %s)" % (p, lk.hrefs)
        md = open(os.path.join(d, "report.md")).read()
        assert "javascript:" not in md.lower(), "javascript: text in report.md"
        for p in good:
            assert "(%s)" % p in md, "%s not linked in report.md" % p
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run_tests([("report: 100 engines", test_many_engines),
               ("report: only flame/... paths are linked", test_flame_links)])
