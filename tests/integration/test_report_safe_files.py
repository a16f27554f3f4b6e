#!/usr/bin/env python3
"""ctxlab report as root on a results directory someone else prepared (issue 9): a link or a
device planted at an output name (trials.csv -> /dev/full, report.html -> a victim file) is
refused with an error naming the file, and the victim is left untouched; links planted at the
temporary names the old writer used (trials.csv.tmp.PID) are never written through.
FIXTURE data (test_report_html.make_fixture)."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_report_html import CTXLAB, make_fixture, run_report  # noqa: E402


def report(d):
    return subprocess.run([CTXLAB, "report", d], capture_output=True, text=True, timeout=60)


def main():
    base = tempfile.mkdtemp(prefix="ctxlab-report-safe-")
    try:
        victim = os.path.join(base, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")

        # report.html -> victim: refused, the victim keeps its bytes, the link stays a link
        d = os.path.join(base, "r1")
        make_fixture(d)
        os.symlink(victim, os.path.join(d, "report.html"))
        p = report(d)
        assert p.returncode != 0, p.stdout
        assert "cannot write '%s/report.html'" % d in p.stderr, p.stderr
        assert "symbolic link" in p.stderr, p.stderr
        assert open(victim).read() == "precious\n"
        assert os.path.islink(os.path.join(d, "report.html"))

        # trials.csv -> /dev/full: refused (the old writer wrote into the device)
        d = os.path.join(base, "r2")
        make_fixture(d)
        os.symlink("/dev/full", os.path.join(d, "trials.csv"))
        p = report(d)
        assert p.returncode != 0 and "cannot write '%s/trials.csv'" % d in p.stderr, p.stderr
        assert "symbolic link" in p.stderr, p.stderr
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)

        # a FIFO at report.md: refused at once (no hang), named in the message
        d = os.path.join(base, "r3")
        make_fixture(d)
        os.mkfifo(os.path.join(d, "report.md"))
        p = report(d)
        assert p.returncode != 0 and "cannot write '%s/report.md'" % d in p.stderr, p.stderr
        assert "not a regular file" in p.stderr, p.stderr

        # links planted at every temporary name the old writer could pick (NAME.tmp.PID for
        # the next pids, NAME.tmp): the report is written fresh, the victim untouched
        d = os.path.join(base, "r4")
        make_fixture(d)
        nxt = subprocess.Popen(["true"])
        nxt.wait()
        for name in ("trials.csv", "report.md", "report.html"):
            os.symlink(victim, os.path.join(d, name + ".tmp"))
            for pid in range(nxt.pid + 1, nxt.pid + 64):
                os.symlink(victim, os.path.join(d, "%s.tmp.%d" % (name, pid)))
        run_report(d)
        assert open(victim).read() == "precious\n", open(victim).read()[:200]
        for name in ("trials.csv", "report.md", "report.html"):
            st = os.lstat(os.path.join(d, name))
            assert stat.S_ISREG(st.st_mode) and st.st_size > 0, name
        assert not [f for f in os.listdir(d) if f.startswith(".")], os.listdir(d)

        # a regular file is replaced as before (and the run is repeatable)
        run_report(d)
        print("ok")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
