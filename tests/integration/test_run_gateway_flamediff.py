#!/usr/bin/env python3
"""ctxlab run of a small gateway experiment (proxy vs fdpass, keepalive=off, hello, closed
loop, 1 repeat of 1 s, both cells profiled; about 10 s): each profiled trial writes
flame/ID/front.folded, the front process's own stacks (the server's root pid), beside the
whole tree's profile.folded, and the report writes flame-diff/front-proxy-vs-fdpass.svg and
links it with the right numbers.

Ground truth: the front's samples x 1/99 s per request agree with the record's
front_cpu.us_per_request (the front's /proc utime+stime over the window) within a factor of 2,
and the samples of the rest of the tree with workers_cpu (both sides); the front's samples are
fewer than the tree's (the workers are not in front.folded). Skipped where perf_event_open is
not permitted or the gateway engine is missing."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

CTXLAB = os.path.abspath(t.CTXLAB)

SPEC = """[experiment]
name = gwflame
repeat = 1
warmup = 200ms
duration = 1s
precision = off
profile = cells:engine=gateway
[server]
engine = gateway
proto = http
cpus = 1
workers = 2
handoff = proxy fdpass
balance = rr
[load]
connections = 16
function = hello
rate = closed
keepalive = off
"""


def samples(path):
    n = 0
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        n += int(line.rsplit(" ", 1)[1])
    return n


def main():
    p = subprocess.run([CTXLAB, "profile", "-q", "-d", "200ms", "--", "sleep", "0.3"],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        t.skip("perf_event_open not permitted here: %s" % p.stderr.strip())
    if "gateway" not in t.list_engines():
        t.skip("no gateway engine")
    base = tempfile.mkdtemp(prefix="ctxlab-gwflame-")
    try:
        spec = os.path.join(base, "gw.ini")
        open(spec, "w").write(SPEC)
        out = os.path.join(base, "out")
        p = subprocess.run([CTXLAB, "run", "-o", out, spec], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl"))]
        assert len(recs) == 2, recs
        us = {}
        for r in recs:
            h = r["params"]["handoff"]
            assert r["status"] == "ok" and r["profiled"], r
            fd = os.path.join(out, os.path.dirname(r["flame"]))
            front, whole = (samples(os.path.join(fd, f)) for f in ("front.folded",
                                                                    "profile.folded"))
            req = r["throughput"]["requests"]
            assert 0 < front < whole, (h, front, whole)
            f_us = front * 1e6 / 99 / req
            w_us = (whole - front) * 1e6 / 99 / req
            f_rec = r["front_cpu"]["us_per_request"]
            w_rec = r["workers_cpu"]["us_per_request"]
            t.log("%s: %d requests, front %d samples = %.2f us/request (record %.2f), "
                  "workers %d samples = %.2f us/request (record %.2f)"
                  % (h, req, front, f_us, f_rec, whole - front, w_us, w_rec))
            assert 0.5 < f_us / f_rec < 2, (h, f_us, f_rec)
            assert 0.5 < w_us / w_rec < 2, (h, w_us, w_rec)
            us[h] = (front, f_us)
        svg = os.path.join(out, "flame-diff", "front-proxy-vs-fdpass.svg")
        assert os.path.getsize(svg) > 0, os.listdir(out)
        assert os.path.exists(os.path.join(out, "flame-diff", "handoff-proxy-vs-fdpass.svg"))
        md = open(os.path.join(out, "report.md")).read()
        line = [l for l in md.splitlines() if "](flame-diff/front-proxy-vs-fdpass.svg)" in l]
        assert len(line) == 1, md
        want = "proxy %.2f us CPU per request (%d samples, 1 trial) → fdpass %.2f us " \
               "(%d samples, 1 trial)" % (us["proxy"][1], us["proxy"][0], us["fdpass"][1],
                                          us["fdpass"][0])
        assert want in line[0], (want, line[0])
        html = open(os.path.join(out, "report.html")).read()
        assert '<a href="flame-diff/front-proxy-vs-fdpass.svg">' in html
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
