#!/usr/bin/env python3
"""ctxlab run on results directories others may have written (issue 9):

- `run -o DIR` refuses an existing non-empty directory (--resume is the way to continue);
- --resume never deletes a byte of trials.jsonl: a corrupt line in the middle, or a line cut
  short at the end, is skipped with a warning and kept, and the valid records after it count;
- --resume matches done trials by cell key and repeat, not by trial number;
- --resume keeps the effective matrix of the run (env.json "engines": engines the start-up
  probe dropped stay out even though spec.ini lists them);
- one run per directory: a second run or resume of a directory in use fails at once;
- files of the directory are never written through a planted link (spec.ini, flame/);
- a cgroup ctxlab-run-PID left by a killed run (PID gone, no process in it) is swept.
"""
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CTXLAB = os.environ.get("CTXLAB", "ctxlab")

SPEC = """[experiment]
name = safe
repeat = 2
warmup = 100ms
duration = 200ms
precision = off
[server]
engine = %s
proto = http
cpus = 1
[load]
connections = 1 2
"""


def run(*args, timeout=120):
    return subprocess.run([CTXLAB, "run", "-q"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def lines(d):
    return open(os.path.join(d, "trials.jsonl"), "rb").read().splitlines(keepends=True)


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def cgroup_mounts():
    """(version, mount point) of the cgroup2 hierarchy and the v1 cpuacct one."""
    out = []
    for l in open("/proc/self/mounts"):
        f = l.split()
        if f[2] == "cgroup2":
            out.append((2, f[1]))
        elif f[2] == "cgroup" and "cpuacct" in f[3].split(","):
            out.append((1, f[1]))
    return out


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-run-safe-")
    try:
        spec = os.path.join(base, "safe.ini")
        open(spec, "w").write(SPEC % "epoll")

        # a fresh run: 2 cells x 2 repeats; env.json holds the effective engines
        a = os.path.join(base, "a")
        p = run("-o", a, spec)
        assert p.returncode == 0, p.stderr[-2000:]
        first = lines(a)
        assert len(first) == 4, first
        env = json.load(open(os.path.join(a, "env.json")))
        assert env["experiment"]["engines"] == ["epoll"], env["experiment"]

        # -o on an existing non-empty directory: refused, nothing in it touched
        p = run("-o", a, spec)
        assert p.returncode == 1, p.stderr
        assert "'%s' exists and is not empty" % a in p.stderr and "--resume" in p.stderr, p.stderr
        assert lines(a) == first
        other = os.path.join(base, "other")
        os.mkdir(other)
        open(os.path.join(other, "notes.txt"), "w").write("mine\n")
        p = run("-o", other, spec)
        assert p.returncode == 1 and "is not empty" in p.stderr, p.stderr
        assert os.listdir(other) == ["notes.txt"]

        # a corrupt line in the middle: kept byte for byte, the records after it count, only
        # the corrupted trial runs again
        c = copy(a, os.path.join(base, "corrupt"))
        lost = json.loads(first[1])
        kept = first[0] + b'{"trial": 1, "cell": "engine=ep\x00\xff garbage\n' + first[2] + first[3]
        open(os.path.join(c, "trials.jsonl"), "wb").write(kept)
        p = run("--resume", c)
        assert p.returncode == 0, p.stderr[-2000:]
        assert "line 2 is not a valid trial record" in p.stderr, p.stderr
        now = open(os.path.join(c, "trials.jsonl"), "rb").read()
        assert now.startswith(kept), "resume changed recorded bytes"
        new = [json.loads(l) for l in now[len(kept):].splitlines()]
        assert [(r["cell"], r["repeat"]) for r in new] == [(lost["cell"], lost["repeat"])], new

        # a line cut short at the end (a crash mid-write): kept, ended with a newline; every
        # trial is recorded so nothing runs
        c = copy(a, os.path.join(base, "cut"))
        cut = b"".join(first) + b'{"trial": 3, "status": "o'
        open(os.path.join(c, "trials.jsonl"), "wb").write(cut)
        p = run("--resume", c)
        assert p.returncode == 0, p.stderr[-2000:]
        assert "line 5 is not a valid trial record (cut short)" in p.stderr, p.stderr
        assert open(os.path.join(c, "trials.jsonl"), "rb").read() == cut + b"\n"

        # matched by cell key + repeat, not by trial number: records renumbered and reordered,
        # one (cell, repeat) missing -> exactly that one runs
        c = copy(a, os.path.join(base, "keyed"))
        recs = [json.loads(l) for l in first]
        missing = recs.pop(2)
        for r in recs:
            r["trial"] = 0
        recs.reverse()
        text = "".join(json.dumps(r) + "\n" for r in recs).encode()
        open(os.path.join(c, "trials.jsonl"), "wb").write(text)
        p = run("--resume", c)
        assert p.returncode == 0, p.stderr[-2000:]
        now = open(os.path.join(c, "trials.jsonl"), "rb").read()
        assert now.startswith(text)
        new = [json.loads(l) for l in now[len(text):].splitlines()]
        assert [(r["cell"], r["repeat"]) for r in new] == [(missing["cell"], missing["repeat"])], new

        # the effective matrix: spec.ini names an engine the run left out (as the default
        # experiment's probe does); resume keeps it out
        c = copy(a, os.path.join(base, "effective"))
        open(os.path.join(c, "spec.ini"), "w").write(SPEC % "epoll thread")
        p = run("--resume", c)
        assert p.returncode == 0, p.stderr[-2000:]
        assert lines(c) == first, "resume ran cells the run had left out"

        # one run per directory: a held lock makes --resume and -o fail at once
        c = copy(a, os.path.join(base, "locked"))
        fd = os.open(c, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        p = run("--resume", c, timeout=30)
        assert p.returncode == 1, p.stderr
        assert "'%s' is in use by another 'ctxlab run'" % c in p.stderr, p.stderr
        assert time.monotonic() - t0 < 10
        os.close(fd)
        assert lines(c) == first
        # two real resumes of one directory: the second fails fast, the first completes
        open(os.path.join(c, "trials.jsonl"), "wb").write(b"")
        one = subprocess.Popen([CTXLAB, "run", "-q", "--resume", c], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not lines(c) and time.monotonic() < deadline and one.poll() is None:
            time.sleep(0.05)
        assert one.poll() is None, "the first resume ended before the second started"
        p = run("--resume", c, timeout=30)
        assert p.returncode == 1 and "is in use by another 'ctxlab run'" in p.stderr, p.stderr
        out, err = one.communicate(timeout=120)
        assert one.returncode == 0, err[-2000:]
        got = [json.loads(l) for l in lines(c)]
        assert sorted((r["cell"], r["repeat"]) for r in got) == sorted(
            (json.loads(l)["cell"], json.loads(l)["repeat"]) for l in first), got

        # a link planted at spec.ini of a fresh (empty) directory is not written through
        victim = os.path.join(base, "victim")
        open(victim, "w").write("precious\n")
        d = os.path.join(base, "planted")
        os.mkdir(d)
        open(spec, "w").write(SPEC.replace("repeat = 2", "repeat = 1").replace("1 2", "1") % "epoll")
        # (the directory is not empty once planted, so run refuses it outright)
        os.symlink(victim, os.path.join(d, "spec.ini"))
        p = run("-o", d, spec)
        assert p.returncode == 1 and "is not empty" in p.stderr, p.stderr
        assert open(victim).read() == "precious\n"

        # a link planted at flame/ (resuming a profiled run): nothing is created through it
        f = os.path.join(base, "flame")
        p = run("--profile", "-o", f, spec)
        assert p.returncode == 0, p.stderr[-2000:]
        open(os.path.join(f, "trials.jsonl"), "w").close()
        shutil.rmtree(os.path.join(f, "flame"), ignore_errors=True)
        elsewhere = os.path.join(base, "elsewhere")
        os.mkdir(elsewhere)
        os.symlink(elsewhere, os.path.join(f, "flame"))
        p = run("--resume", f)
        assert p.returncode == 0, p.stderr[-2000:]
        assert os.listdir(elsewhere) == [], os.listdir(elsewhere)
        rec = json.loads(lines(f)[0])
        assert rec["profiled"] is False, rec
        assert any("not profiled: cannot create" in w and "symbolic link" in w
                   for w in rec["warnings"]), rec["warnings"]

        # a stale cgroup of a killed run: swept at start
        if os.geteuid() != 0:
            print("SKIP part: cgroup sweep (needs root)")
        else:
            true = subprocess.Popen(["true"])
            true.wait()
            dead = true.pid
            planted = []
            for v, mnt in cgroup_mounts():
                g = os.path.join(mnt, "ctxlab-run-%d" % dead)
                try:
                    os.mkdir(g)
                    planted.append(g)
                except OSError as e:
                    print("cannot plant %s: %s" % (g, e))
            if not planted:
                print("SKIP part: cgroup sweep (no writable cgroup hierarchy)")
            else:
                p = run("-o", os.path.join(base, "sweep"), spec)
                assert p.returncode == 0, p.stderr[-2000:]
                for g in planted:
                    assert not os.path.exists(g), "stale cgroup %s left" % g
                    assert "removed '%s'" % g in p.stderr, p.stderr
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
