#!/usr/bin/env python3
"""ctxlab run --dry-run on a spec whose matrix is absurdly large (issue 9): the size is
counted in 64 bits and refused with a message and exit 2 (it printed "= -198967296 trials"
and went on). A spec just under the bounds is still accepted."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import run_tests  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
AXES = ("[load]\nconnections = %s\nthreads = %s\n"
        % (" ".join(map(str, range(1, 33))), " ".join(map(str, range(1, 33)))))


def dry(text):
    d = tempfile.mkdtemp(prefix="ctxlab-spec-bounds-")
    try:
        p = os.path.join(d, "big.ini")
        with open(p, "w") as f:
            f.write(text)
        return subprocess.run([CTXLAB, "run", "--dry-run", p], capture_output=True, text=True,
                              timeout=60)
    finally:
        shutil.rmtree(d)


def test_refused():
    # 32 x 32 x 4 = 4096 cells x 1000000 repeats: 4096000000 trials, -198967296 in an int
    r = dry("[experiment]\nrepeat = 1000000\n[server]\nengine = epoll\nproto = http\n" + AXES +
            "pipeline = 1 2 3 4\n")
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr)
    assert "-198967296" not in r.stdout and "trials" not in r.stdout, r.stdout[-500:]
    assert re.search(r"big\.ini:2: repeat 1000000 x 4096 cells is more than 1000000 trials",
                     r.stderr), r.stderr
    # too many cells, whatever the repeat
    r = dry("[experiment]\nrepeat = 1\n[server]\nengine = epoll\nproto = http\n" + AXES +
            "pipeline = 1 2 3 4 5 6 7 8 9 10\n")
    assert r.returncode == 2 and "the matrix has 10240 cells, more than 10000" in r.stderr, \
        (r.returncode, r.stderr)


def test_accepted():
    r = dry("[experiment]\nrepeat = 2\n[server]\nengine = epoll\nproto = http\n" + AXES)
    assert r.returncode == 0, r.stderr
    assert "matrix: 1024 cells x 2 repeats = 2048 trials" in r.stdout, r.stdout[:500]


if __name__ == "__main__":
    run_tests([("run --dry-run: absurd matrix refused, exit 2", test_refused),
               ("run --dry-run: a large matrix under the bounds", test_accepted)])
