#!/usr/bin/env python3
"""Trial records carry a schema version (lab/record.h): `run --resume` and `report` read older
records (none = 1.0) and refuse a directory holding a record of a newer major version, with a
message that says so, and append nothing to it."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ctxlabtest as t  # noqa: E402

SPEC = """[experiment]
name = schema
repeat = 1
precision = off
warmup = 100ms
duration = 200ms
[server]
engine = epoll
proto = echo
cpus = 1
[load]
connections = 1
"""

NEWER = ('{"schema": "2.0", "trial": 0, "of": 1, "repeat": 0, '
         '"cell": "engine=epoll proto=echo cpus=1 connections=1", "status": "ok"}\n')


def make_dir(d, line):
    os.makedirs(d)
    with open(os.path.join(d, "spec.ini"), "w") as f:
        f.write(SPEC)
    with open(os.path.join(d, "trials.jsonl"), "w") as f:
        f.write(line)


def test_newer_major_refused():
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "r")
        make_dir(d, NEWER)
        p = subprocess.run([t.CTXLAB, "run", "-q", "--resume", d], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "schema 2.0, newer than this ctxlab reads" in p.stderr, p.stderr
        assert "cannot resume" in p.stderr, p.stderr
        assert open(os.path.join(d, "trials.jsonl")).read() == NEWER  # nothing appended
        p = subprocess.run([t.CTXLAB, "report", d], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, p.stdout
        assert "schema 2.0" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(d, "report.md"))


def test_unversioned_record_resumed():
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "r")
        old = NEWER.replace('"schema": "2.0", ', "")  # written before the key existed: 1.0
        make_dir(d, old)
        p = subprocess.run([t.CTXLAB, "run", "-q", "--resume", d], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stderr)
        lines = open(os.path.join(d, "trials.jsonl")).read().splitlines()
        assert len(lines) == 1, lines  # the trial counts as done: nothing ran again


if __name__ == "__main__":
    t.run_tests([("newer major refused", test_newer_major_refused),
                 ("unversioned record resumed", test_unversioned_record_resumed)])
