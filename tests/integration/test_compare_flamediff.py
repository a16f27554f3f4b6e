#!/usr/bin/env python3
"""ctxlab compare -o DIR: differential flame graphs per request, on crafted results directories
with known answers (trials.jsonl and DIR/flame/ID/profile.folded written here).

A's epoll cell: one profiled trial, 1000 requests, work 99 + io 198 samples at 99 Hz:
work 1000 us/request, io 2000. B: work 198 + io 99 samples over 2 profiled trials of 500
requests each (1000 in all): work 2000 us (+100%, red), io 1000 (-50%, blue), total 3000 in
both. The fork cell is profiled in A only: no graph, compare.md says none for it. A record
whose flame path climbs out of the directory ("../") is ignored. Also `ctxlab flame --diff
--per-request` on the same folded files gives the same figures."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
SVG = "{http://www.w3.org/2000/svg}"


def write_run(d, trials):
    """trials: (params, repeat, requests, folded text or None, flame path override)"""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump({"fixture": True}, f)
    with open(os.path.join(d, "trials.jsonl"), "w") as f:
        for k, (params, rep, req, folded, flame) in enumerate(trials):
            cell = " ".join("%s=%s" % kv for kv in params.items())
            ident = "http-%s-c16-cpus1%s" % (params["engine"], "-r%d" % rep if rep else "")
            rec = {"schema": "1.1", "trial": k, "repeat": rep, "cell": cell, "params": params,
                   "status": "ok", "reason": None, "profiled": folded is not None,
                   "server_cpu": {"us_per_request": 10.0 + rep},
                   "throughput": {"requests": req, "requests_per_s": req / 1.0}}
            if folded is not None:
                rec["flame"] = flame or "flame/%s/flame.svg" % ident
                fd = os.path.join(d, "flame", ident)
                os.makedirs(fd, exist_ok=True)
                open(os.path.join(fd, "profile.folded"), "w").write(folded)
            f.write(json.dumps(rec) + "\n")


def titles(svg):
    root = ET.parse(svg).getroot()
    out = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "f":
            t = g.find(SVG + "title").text
            r = g.find(SVG + "rect")
            out[g.get("data-n")] = (t, r.get("fill"), float(r.get("width")))
    return out


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-flamediff-")
    try:
        E = {"engine": "epoll", "proto": "http", "connections": "16", "cpus": "1"}
        F = {"engine": "fork", "proto": "http", "connections": "16", "cpus": "1"}
        a, b, out = (os.path.join(base, x) for x in ("a", "b", "out"))
        write_run(a, [(E, 0, 1000, "srv;main;work 99\nsrv;main;io 198\n", None),
                      (E, 1, 1000, None, None), (E, 2, 1000, None, None),
                      (F, 0, 1000, "srv;main;fork_[k] 495\n", None),
                      (F, 1, 1000, None, None), (F, 2, 1000, None, None)])
        write_run(b, [(E, 0, 500, "srv;main;work 99\nsrv;main;io 50\n", None),
                      (E, 1, 500, "srv;main;work 99\nsrv;main;io 49\n", None),
                      (E, 2, 1000, "srv;main;work 9999\n", "../../x/flame.svg"),
                      (F, 0, 1000, None, None), (F, 1, 1000, None, None),
                      (F, 2, 1000, None, None)])
        p = subprocess.run([CTXLAB, "compare", "-o", out, a, b], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        svg = os.path.join(out, "flame-diff", "http-epoll-c16-cpus1.svg")
        want = "differential flame graph per request: %s (A 3000.00 us, B 3000.00 us per " \
               "request, +0.0%%)" % (out + "/flame-diff/http-epoll-c16-cpus1.svg")
        assert want in p.stdout, p.stdout
        assert os.listdir(os.path.join(out, "flame-diff")) == ["http-epoll-c16-cpus1.svg"]
        t = titles(svg)
        assert t["work"][0] == "work (A 1000000.0 ns/req, B 2000000.0 ns/req, +100.0%)", t
        assert t["io"][0] == "io (A 2000000.0 ns/req, B 1000000.0 ns/req, -50.0%)", t
        assert t["all"][0] == "all (A 3000000.0 ns/req, B 3000000.0 ns/req, +0.0%)", t
        assert t["work"][1] == "rgb(255,55,55)" and t["io"][1] == "rgb(55,55,255)", t
        assert abs(t["work"][2] - 2 * t["io"][2]) < 0.05, t     # width = B's cost
        md = open(os.path.join(out, "compare.md")).read()
        assert "## Differential flame graphs, CPU per request" in md, md
        row = [l for l in md.splitlines() if "flame-diff/http-epoll-c16-cpus1.svg" in l]
        assert len(row) == 1 and "| 3000.00 (1 trial) | 3000.00 (2 trials) | +0.0% |" in row[0] \
            and "](flame-diff/http-epoll-c16-cpus1.svg)" in row[0], md
        assert "cpu_us_per_request" in md and "engine=fork" in md, md   # the report itself
        assert "http-fork" not in md, md                   # B did not profile fork
        html = open(os.path.join(out, "compare.html")).read()
        assert '<a href="flame-diff/http-epoll-c16-cpus1.svg">' in html, html[-2000:]
        assert "<td>3000.00 (1)</td><td>3000.00 (2)</td><td>+0.0%</td>" in html, html[-2000:]
        assert "cpu_us_per_request" in html and html.count("<table") == 1, html[-2000:]

        # the same figures from `ctxlab flame --diff --per-request` (1 trial of 1000 requests
        # against B's two merged: 1000 requests)
        fb = os.path.join(base, "b.folded")
        open(fb, "w").write("srv;main;work 198\nsrv;main;io 99\n")
        svg2 = os.path.join(base, "cli.svg")
        p = subprocess.run([CTXLAB, "flame", "--diff", "--per-request", "1000,1000", "-o", svg2,
                            os.path.join(a, "flame", "http-epoll-c16-cpus1", "profile.folded"),
                            fb], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        t2 = titles(svg2)
        assert t2["work"][0] == t["work"][0] and t2["io"][0] == t["io"][0], (t2, t)

        # nothing profiled on one side: compare.md says so, no graph, still exit 0
        out2 = os.path.join(base, "out2")
        p = subprocess.run([CTXLAB, "compare", "-o", out2, "--engines", "epoll,fork", b],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "No cell has flame graphs on both sides" in open(
            os.path.join(out2, "compare.md")).read()
        assert os.listdir(os.path.join(out2, "flame-diff")) == []
        # --engines in A: epoll vs fork, both profiled: one graph named after both cells
        out3 = os.path.join(base, "out3")
        p = subprocess.run([CTXLAB, "compare", "-o", out3, "--engines", "epoll,fork", a],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert os.listdir(os.path.join(out3, "flame-diff")) == [
            "http-epoll-c16-cpus1--http-fork-c16-cpus1.svg"], os.listdir(out3)
        assert "(A 3000.00 us, B 5000.00 us per request, +66.7%)" in p.stdout, p.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
