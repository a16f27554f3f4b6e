#!/usr/bin/env python3
"""ctxlab run: a failed trial is recorded with its reason and the run goes on; the server is
stopped even when the load fails; SIGINT stops every child and leaves valid files;
--resume continues from the last recorded trial (a line cut short by a crash is kept and
skipped); spec errors and --dry-run.

A wrapper passed with --bin makes every `serve --engine thread` fail (exit 3 with a message)
and every load at 3 connections fail, and delegates everything else to the real ctxlab.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

CTXLAB = os.environ.get("CTXLAB", "ctxlab")

SPEC = """[experiment]
name = resume
repeat = 2
warmup = 100ms
duration = 300ms
seed = 5
precision = off
[server]
engine = epoll thread
proto = http
cpus = 1
[load]
connections = 2 3
"""


def descendants(pid):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            st = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        f = st.rsplit(")", 1)[1].split()
        kids.setdefault(int(f[1]), []).append((int(p), f[19]))  # pid, starttime
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k[0])
    return out


def alive(pid, start):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[19] == start
    except OSError:
        return False


def records(d, partial=None):
    """Every record of trials.jsonl; the one line `partial` (a crash's cut line) is skipped."""
    out = []
    for l in open(os.path.join(d, "trials.jsonl")):
        if partial is not None and l == partial + "\n":
            partial = None
            continue
        out.append(json.loads(l))
    assert partial is None, "the cut line was not kept"
    return out


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-run-resume-")
    try:
        spec = os.path.join(base, "resume.ini")
        open(spec, "w").write(SPEC)
        wrap = os.path.join(base, "wrap.sh")
        open(wrap, "w").write(
            "#!/bin/sh\n"
            "case \" $* \" in\n"
            "  *' serve '*'--engine thread '*) echo 'wrapper: thread refused' >&2; exit 3;;\n"
            "  *' load '*'-c 3 '*) echo 'wrapper: load refused' >&2; exit 4;;\n"
            "esac\n"
            "exec \"%s\" \"$@\"\n" % os.path.abspath(shutil.which(CTXLAB) or CTXLAB))
        os.chmod(wrap, stat.S_IRWXU)

        # dry run: 2 engines x 2 connection counts, 2 repeats
        p = subprocess.run([CTXLAB, "run", "--dry-run", spec], capture_output=True, text=True)
        assert p.returncode == 0 and "matrix: 4 cells x 2 repeats = 8 trials" in p.stdout, p.stdout
        # the order of the seed, round by round (cell numbers of the listing)
        listed = re.findall(r"^\s+\d+  (engine=.*)$", p.stdout, re.M)
        rounds = re.findall(r"^  round \d+: ([\d ]+)$", p.stdout, re.M)
        assert "order (seed 5)" in p.stdout and len(rounds) == 2, p.stdout
        order = [listed[int(x) - 1] for r in rounds for x in r.split()]
        assert "precision: off" in p.stdout, p.stdout

        # a spec error: file:line and the allowed values, nothing run
        bad = os.path.join(base, "bad.ini")
        open(bad, "w").write(SPEC.replace("proto = http", "proto = gopher"))
        p = subprocess.run([CTXLAB, "run", "-o", os.path.join(base, "never"), bad],
                           capture_output=True, text=True)
        assert p.returncode == 1 and "bad.ini:10: unknown proto 'gopher' (allowed: sink echo http chat)" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(base, "never"))

        # interrupted run
        d = os.path.join(base, "res")
        proc = subprocess.Popen([CTXLAB, "run", "--bin", wrap, "-o", d, spec],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = set()
        deadline = time.monotonic() + 30
        # wait until at least two trials are recorded and a server is running
        while time.monotonic() < deadline:
            for k in descendants(proc.pid):
                seen.add(k)
            n = len(open(os.path.join(d, "trials.jsonl")).readlines()) if os.path.exists(
                os.path.join(d, "trials.jsonl")) else 0
            if n >= 2 and len(descendants(proc.pid)) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        seen.update(descendants(proc.pid))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (proc.returncode, err[-2000:])
        assert "--resume " + d in err, err[-1000:]
        left = [k for k in seen if alive(*k)]
        assert not left, "children survived the interrupt: %s" % left
        first = records(d)  # every line valid JSON
        assert 2 <= len(first) < 8, len(first)
        assert [r["trial"] for r in first] == list(range(len(first)))
        for f in ("report.html", "report.md", "trials.csv", "env.json", "spec.ini"):
            assert os.path.exists(os.path.join(d, f)), f
        assert not [f for f in os.listdir(d) if ".tmp" in f]

        # simulate a crash mid-append: the partial last line is kept (ended with a newline)
        # and skipped with a warning; no byte is removed
        cut = '{"trial": 7, "status": "o'
        with open(os.path.join(d, "trials.jsonl"), "a") as f:
            f.write(cut)
        p = subprocess.run([CTXLAB, "run", "--bin", wrap, "--resume", d], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr[-2000:]
        assert p.stdout.strip() == d + "/report.html"
        assert "is not a valid trial record (cut short): skipped" in p.stderr, p.stderr[-2000:]
        recs = records(d, cut)
        assert sorted(r["trial"] for r in recs) == list(range(8)), [r["trial"] for r in recs]
        assert recs[:len(first)] == first, "resume rewrote recorded trials"
        # rounds in order (every cell's repeat 0 before any repeat 1), each in the seed's order,
        # also across the interrupt and the resume; no extra round (precision = off)
        assert [r["repeat"] for r in recs] == [0] * 4 + [1] * 4
        assert [r["cell"] for r in recs] == order, ([r["cell"] for r in recs], order)
        assert json.load(open(os.path.join(d, "env.json")))["experiment"]["seed"] == "5"
        for r in recs:
            eng, conns = r["params"]["engine"], r["params"]["connections"]
            if eng == "thread":
                assert r["status"] == "failed", r
                assert "the server exited with status 3 before it listened: wrapper: thread refused" in r["reason"], r["reason"]
            elif conns == "3":
                assert r["status"] == "failed", r
                assert "the load generator exited with status 4: wrapper: load refused" in r["reason"], r["reason"]
                assert r["server_cpu"]["total_cores"] >= 0  # the server ran and was measured
            else:
                assert r["status"] == "ok", r
                assert r["throughput"]["requests_per_s"] > 0
        md = open(os.path.join(d, "report.md")).read()
        assert "6 trial(s) failed" in md, md[:3000]
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
