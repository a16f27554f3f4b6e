#!/usr/bin/env python3
"""ctxlab run with profiling (spec `profile = first`, `run --profile[=MODE]`), bounded to 30 s.

1. A tiny spec (2 engines, http, 1 connection count, repeat 2, 1 s trials, profile = first):
   --dry-run says profiling is on and adds its cost to the estimate; the run succeeds; every
   cell has DIR/flame/ID/flame.svg, non-empty, well-formed XML with at least one frame below
   "all"; the records of repeat 0 carry profiled:true and that flame path, those of repeat 1
   profiled:false and no flame; report.html's flame table links each of them (targets exist)
   and report.md too; env.json records profile = first.
2. Profiling refused (the profile child run with an impossible option, through --bin: the
   event `cycles` with hardware events disabled): the trial is still ok, profiled:false, with
   a warning naming the profiler's reason; the report has no flame table.
3. Option errors: --profile=sometimes, --resume with --profile, a bad `profile` in a spec
   (FILE:LINE and the allowed values).
Where perf_event_open is not permitted here, (1) checks the warning instead of the flame graphs.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

CTXLAB = os.path.abspath(t.CTXLAB)
SVG = "{http://www.w3.org/2000/svg}"

SPEC = """[experiment]
name = prof
repeat = %(repeat)d
warmup = 200ms
duration = 1s
profile = first
precision = off
[server]
engine = %(engines)s
proto = http
cpus = 1
[load]
connections = 4
"""


class Links(HTMLParser):
    """The hrefs inside <table id="flames">."""

    def __init__(self):
        super().__init__()
        self.in_table = False
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "flames":
            self.in_table = True
        elif tag == "a" and self.in_table:
            self.hrefs.append(a.get("href"))

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = False


def run(args, timeout=60):
    return subprocess.run([CTXLAB] + args, capture_output=True, text=True, timeout=timeout)


def perf_permitted():
    p = run(["profile", "-q", "-d", "200ms", "--", "sleep", "0.3"], timeout=20)
    return p.returncode == 0, p.stderr.strip()


def records(out):
    return [json.loads(l) for l in open(os.path.join(out, "trials.jsonl"))]


def two_engines():
    have = t.engines_speaking("http", exclude=t.EXTERNAL)
    pick = [e for e in ("epoll", "coro", "thread", "fork") if e in have][:2]
    assert len(pick) == 2, have
    return pick


def test_profile_first(tmp):
    engines = two_engines()
    spec = os.path.join(tmp, "prof.ini")
    open(spec, "w").write(SPEC % {"repeat": 2, "engines": " ".join(engines)})
    dry = run(["run", "--dry-run", spec])
    assert dry.returncode == 0, dry.stderr
    assert "profiling: first (the first repeat of every cell): 2 of 4 trials" in dry.stdout, dry.stdout
    assert "profiled: + ~" in dry.stdout, dry.stdout
    off = run(["run", "--dry-run", "--profile=off", spec])
    assert "profiling: off" in off.stdout, off.stdout
    est = lambda s: float(re.search(r"estimated duration: ([\d.]+)s = ", s).group(1))
    # 2 profiled trials, each adding the cost the dry run states (SPEC_PROFILE_OVERHEAD_NS)
    per = re.search(r"profiled: \+ ~(\d+)ms", dry.stdout)
    assert per and int(per.group(1)) > 0, dry.stdout
    assert abs(est(dry.stdout) - est(off.stdout) - 2 * int(per.group(1)) / 1000) <= 0.051, (
        dry.stdout, off.stdout)
    allp = run(["run", "--dry-run", "--profile=all", spec])
    assert "profiling: all (every trial): 4 of 4 trials" in allp.stdout, allp.stdout

    permitted, why = perf_permitted()
    out = os.path.join(tmp, "res")
    p = run(["run", "-q", "-o", out, spec])
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().splitlines()[-1] == out + "/report.html", p.stdout
    recs = records(out)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs), \
        [(r["cell"], r["reason"]) for r in recs]
    env = json.load(open(os.path.join(out, "env.json")))
    assert env["experiment"]["profile"] == "first", env["experiment"]
    # the command line as typed, though the option parser moves the operand (SPEC) in argv
    assert env["experiment"]["command"] == "ctxlab run -q -o %s %s" % (out, spec), \
        env["experiment"].get("command")
    for r in recs:
        if r["repeat"] != 0:
            assert r["profiled"] is False and "flame" not in r, r
            assert not any("profile" in w for w in r["warnings"]), r["warnings"]
    first = [r for r in recs if r["repeat"] == 0]
    if not permitted:
        for r in first:
            assert r["profiled"] is False, r
            assert any(w.startswith("not profiled: the profiler exited") for w in r["warnings"]), r
        t.skip("perf_event_open not permitted here (%s): checked the warnings only" % why)
    flames = set()
    for r in first:
        assert r["profiled"] is True, r
        f = r["flame"]
        assert re.fullmatch(r"flame/[A-Za-z0-9._-]+/flame\.svg", f), f
        assert r["params"]["engine"] in f and "c4" in f and "cpus1" in f, f
        path = os.path.join(out, f)
        assert os.path.getsize(path) > 0, path
        root = ET.parse(path).getroot()  # well-formed XML
        frames = [g for g in root.iter(SVG + "g") if g.get("class") == "f"]
        names = [g.find(SVG + "title").text for g in frames if g.find(SVG + "title") is not None]
        assert len(frames) >= 2 and any(not n.startswith("all ") for n in names), names[:5]
        folded = open(os.path.join(os.path.dirname(path), "profile.folded")).read()
        assert folded.startswith("ctxlab;") or "\nctxlab;" in folded, folded[:300]
        flames.add(f)
    assert len(flames) == 2, flames  # one per cell
    html = open(os.path.join(out, "report.html")).read()
    links = Links()
    links.feed(html)
    assert set(links.hrefs) == flames, (links.hrefs, flames)
    for h in links.hrefs:
        assert os.path.isfile(os.path.join(out, h)), h
    for e in engines:
        assert re.search(r"<td class=\"p\">http</td><td class=\"p\">%s</td><td class=\"p\">1</td>"
                         r"<td class=\"p\">4</td><td class=\"p\"><a href=\"flame/" % e, html), e
    md = open(os.path.join(out, "report.md")).read()
    for f in flames:
        assert "[repeat 0](%s)" % f in md, md[-800:]


def test_profile_refused(tmp):
    # the profile child with an impossible option: what a machine refusing perf looks like
    wrap = os.path.join(tmp, "ctxlab-wrap")
    open(wrap, "w").write('#!/bin/sh\nif [ "$1" = profile ]; then shift; '
                          'CTXLAB_PERF_NO_HW=1 exec "%s" profile --event cycles "$@"; fi\n'
                          'exec "%s" "$@"\n' % (CTXLAB, CTXLAB))
    os.chmod(wrap, stat.S_IRWXU)
    spec = os.path.join(tmp, "refused.ini")
    open(spec, "w").write(SPEC % {"repeat": 1, "engines": two_engines()[0]})
    out = os.path.join(tmp, "refused")
    p = run(["run", "-q", "--bin", wrap, "-o", out, spec])
    assert p.returncode == 0, p.stderr[-3000:]
    (r,) = records(out)
    assert r["status"] == "ok" and r["reason"] is None, r
    assert r["profiled"] is False and "flame" not in r, r
    w = [w for w in r["warnings"] if w.startswith("not profiled:")]
    assert len(w) == 1 and "exited with status 1" in w[0] and "not supported here" in w[0], \
        r["warnings"]
    html = open(os.path.join(out, "report.html")).read()
    assert 'id="flames"' not in html and "not profiled: the profiler exited" in html


def test_option_errors(tmp):
    p = run(["run", "--dry-run", "--profile=sometimes"])
    assert p.returncode == 2 and "--profile=all" in p.stderr, p.stderr
    p = run(["run", "--resume", tmp, "--profile"])
    assert p.returncode == 2 and "takes no --profile" in p.stderr, p.stderr
    spec = os.path.join(tmp, "bad.ini")
    open(spec, "w").write(SPEC.replace("profile = first", "profile = often")
                          % {"repeat": 1, "engines": "epoll"})
    p = run(["run", "--dry-run", spec])
    assert p.returncode == 1, p
    assert "%s:6: bad profile 'often' (allowed: off, first, all" % spec in p.stderr, p.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="ctxlab-run-profile-")
    try:
        t.run_tests([("option errors", lambda: test_option_errors(tmp)),
                     ("profiling refused", lambda: test_profile_refused(tmp)),
                     ("profile = first", lambda: test_profile_first(tmp))])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
