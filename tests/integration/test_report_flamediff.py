#!/usr/bin/env python3
"""ctxlab report: differential flame graphs within one run, on a crafted results directory
with known answers (trials.jsonl and DIR/flame/ID/{profile,front}.folded written here).

Gateway cells, all profiled: proxy/rr (1 trial, 1000 requests: front relay 99 samples, whole
tree also worker serve 99), fdpass/rr (2 trials of 500 requests: front sendmsg_fd 33 + 33,
whole tree also serve 50 + 49) and proxy/least-conn (1 trial, 1000 requests, the same stacks
as proxy/rr but front relay 198). At 99 Hz one sample is 1/99 s:
 - proxy -> fdpass (differ in handoff only): front 1000 -> 666.67 us per request (-33.3 %),
   whole tree 2000 -> 1666.67 us (-16.7 %);
 - rr -> least-conn (differ in balance only): front 1000 -> 2000 us (+100 %);
 - fdpass/rr vs proxy/least-conn differ in two parameters: no graph;
 - the profiled epoll cell has other parameters (no handoff): no graph.
The report writes DIR/flame-diff/{handoff,front}-proxy-vs-fdpass.svg and
{balance,front}-rr-vs-least-conn.svg and links them with their numbers in report.md and
report.html. A run with no such pair has no section and no flame-diff/; a run with more than
48 such pairs draws 48 and says how many were left out."""
import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
SVG = "{http://www.w3.org/2000/svg}"


def write_run(d, trials):
    """trials: (params, repeat, requests, profile.folded text or None, front.folded or None)"""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "env.json"), "w") as f:
        json.dump({"fixture": True, "experiment": {"profile": "cells:engine=gateway"}}, f)
    with open(os.path.join(d, "trials.jsonl"), "w") as f:
        for k, (params, rep, req, folded, front) in enumerate(trials):
            cell = " ".join("%s=%s" % kv for kv in params.items())
            ident = "-".join(params.values()).replace("/", "_") + ("-r%d" % rep if rep else "")
            rec = {"schema": "1.1", "trial": k, "repeat": rep, "cell": cell, "params": params,
                   "status": "ok", "reason": None, "profiled": folded is not None,
                   "server_cpu": {"us_per_request": 10.0 + rep},
                   "throughput": {"requests": req, "requests_per_s": req / 1.0}}
            if folded is not None:
                rec["flame"] = "flame/%s/flame.svg" % ident
                fd = os.path.join(d, "flame", ident)
                os.makedirs(fd, exist_ok=True)
                open(os.path.join(fd, "profile.folded"), "w").write(folded)
                open(os.path.join(fd, "flame.svg"), "w").write("<svg/>")
                if front is not None:
                    open(os.path.join(fd, "front.folded"), "w").write(front)
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


def gw(handoff, balance):
    return {"engine": "gateway", "proto": "http", "handoff": handoff, "balance": balance,
            "keepalive": "off", "rate": "closed"}


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-rundiff-")
    try:
        d = os.path.join(base, "run")
        E = {"engine": "epoll", "proto": "http", "keepalive": "off", "rate": "closed"}
        P, F, L = gw("proxy", "rr"), gw("fdpass", "rr"), gw("proxy", "least-conn")
        relay = "ctxlab;main;front_relay %d\n"
        write_run(d, [
            (P, 0, 1000, relay % 99 + "ctxlab;main;worker_serve 99\n", relay % 99),
            (F, 0, 500, "ctxlab;main;front_sendmsg_fd 33\nctxlab;main;worker_serve 50\n",
             "ctxlab;main;front_sendmsg_fd 33\n"),
            (F, 1, 500, "ctxlab;main;front_sendmsg_fd 33\nctxlab;main;worker_serve 49\n",
             "ctxlab;main;front_sendmsg_fd 33\n"),
            (L, 0, 1000, relay % 198 + "ctxlab;main;worker_serve 99\n", relay % 198),
            (E, 0, 1000, "ctxlab;main;serve 99\n", None),
        ])
        p = subprocess.run([CTXLAB, "report", d], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        fdir = os.path.join(d, "flame-diff")
        assert sorted(os.listdir(fdir)) == sorted([
            "handoff-proxy-vs-fdpass.svg", "front-proxy-vs-fdpass.svg",
            "balance-rr-vs-least-conn.svg", "front-rr-vs-least-conn.svg"]), os.listdir(fdir)

        # the front alone, proxy -> fdpass, per request; the workers' stacks are not in it
        t = titles(os.path.join(fdir, "front-proxy-vs-fdpass.svg"))
        assert t["all"][0] == "all (A 1000000.0 ns/req, B 666666.7 ns/req, -33.3%)", t
        assert "front_relay" not in t, t   # B's shape: fdpass never relays
        assert t["front_sendmsg_fd"][0] == \
            "front_sendmsg_fd (A 0.0 ns/req, B 666666.7 ns/req, new)", t
        assert t["front_sendmsg_fd"][1] == "rgb(255,55,55)", t   # red: costs more in fdpass
        assert "worker_serve" not in t, t
        svgtext = open(os.path.join(fdir, "front-proxy-vs-fdpass.svg")).read()
        assert "proxy 1000.0 us (1 trial), fdpass 666.7 us (2 trials), -33.3%; red = more in " \
               "fdpass" in svgtext, svgtext[:3000]
        # the whole tree: workers included
        t = titles(os.path.join(fdir, "handoff-proxy-vs-fdpass.svg"))
        assert t["all"][0] == "all (A 2000000.0 ns/req, B 1666666.7 ns/req, -16.7%)", t
        assert t["worker_serve"][0] == \
            "worker_serve (A 1000000.0 ns/req, B 1000000.0 ns/req, +0.0%)", t
        t = titles(os.path.join(fdir, "front-rr-vs-least-conn.svg"))
        assert t["all"][0] == "all (A 1000000.0 ns/req, B 2000000.0 ns/req, +100.0%)", t

        md = open(os.path.join(d, "report.md")).read()
        assert "## Differential flame graphs" in md, md
        line = [l for l in md.splitlines() if "](flame-diff/front-proxy-vs-fdpass.svg)" in l]
        assert len(line) == 1, md
        assert "The front process alone" in line[0] and "handoff=proxy → fdpass" in line[0] \
            and "proxy 1000.00 us CPU per request (99 samples, 1 trial) → fdpass 666.67 us " \
                "(66 samples, 2 trials), -33.3%; red = costs more per request in fdpass" \
            in line[0], line
        assert " balance=rr " in line[0] and "engine=gateway" in line[0], line
        line = [l for l in md.splitlines() if "](flame-diff/handoff-proxy-vs-fdpass.svg)" in l]
        assert len(line) == 1 and "whole process tree" in line[0] and \
            "proxy 2000.00 us CPU per request (198 samples, 1 trial) → fdpass 1666.67 us " \
            "(165 samples, 2 trials), -16.7%" in line[0], line
        assert "engine-" not in md and "vs-epoll" not in md, md   # no pair with epoll
        html = open(os.path.join(d, "report.html")).read()
        assert '<a href="flame-diff/front-proxy-vs-fdpass.svg">' in html, html[-3000:]
        assert "fdpass 666.67 us (66 samples, 2 trials), -33.3%" in html, html[-3000:]
        assert html.count('<a href="flame-diff/') == 4, html[-3000:]

        # no pair differing in one parameter: no section, no directory
        d2 = os.path.join(base, "run2")
        write_run(d2, [(P, 0, 1000, relay % 99, relay % 99),
                       (gw("fdpass", "least-conn"), 0, 1000, relay % 99, relay % 99)])
        p = subprocess.run([CTXLAB, "report", d2], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert not os.path.exists(os.path.join(d2, "flame-diff"))
        assert "Differential flame graphs" not in open(os.path.join(d2, "report.md")).read()

        # many pairs (12 profiled cells along one axis: 66 pairs): at most 48 graphs, the
        # rest counted
        d3 = os.path.join(base, "run3")
        write_run(d3, [(dict(E, connections=str(c)), 0, 1000, "ctxlab;main;serve %d\n" % c,
                        None) for c in range(1, 13)])
        p = subprocess.run([CTXLAB, "report", d3], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert len(os.listdir(os.path.join(d3, "flame-diff"))) == 48
        md3 = open(os.path.join(d3, "report.md")).read()
        assert "- 18 more graphs not drawn (at most 48 per report)." in md3, md3[-2000:]
        assert "[flame-diff/connections-1-vs-2.svg]" in md3, md3[-3000:]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
