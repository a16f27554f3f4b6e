#!/usr/bin/env python3
"""Remote roles die with the run, with test_run_ssh.py's sshd (in a network namespace of its
own, reached from a second one where the runs start):

  sigkill      SIGKILL of the local `ctxlab run` mid-trial (server and load on ssh) leaves no
               process in the "remote" namespace but the test's own sshd listener
  host_dies    the remote load generator (then the remote server) killed mid-trial: that
               trial fails with the host named, the next trial runs and succeeds, nothing is
               left in the namespace
Skips as test_run_ssh.py does."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402
import test_run_ssh as ssh  # noqa: E402
from test_run_ssh import ADDR, CTXLAB, SPEC  # noqa: E402


def wait_roles(s, p, timeout=30):
    """Both roles up in the namespace (a serve and a load); their description."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline and p.poll() is None:
        seen = s.describe(s.pids())
        if " serve " in seen and " load " in seen:
            return seen
        time.sleep(0.1)
    raise AssertionError("roles not seen in the namespace: " + seen)


def test_sigkill(s):
    h = "ssh:root@" + ADDR
    out = os.path.join(s.dir, "kill")
    spec = out + ".ini"
    open(spec, "w").write(SPEC % (1, "20s", h, h, ADDR))
    p = subprocess.Popen(s.exec_local() + [CTXLAB, "run", "-q", "-o", out, spec], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        wait_roles(s, p)
        time.sleep(0.5)
        p.kill()
        p.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and s.pids():
            time.sleep(0.1)
        left = s.pids()
        assert not left, "left in the namespace after SIGKILL of the run: " + s.describe(left)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_host_dies(s, role="load"):
    h = "ssh:root@" + ADDR
    out = os.path.join(s.dir, "dies-" + role)
    spec = out + ".ini"
    open(spec, "w").write(SPEC % (2, "3s", h, h, ADDR))
    p = subprocess.Popen(s.exec_local() + [CTXLAB, "run", "-q", "-o", out, spec],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_roles(s, p)
        time.sleep(0.5)
        killed = 0
        for pid in s.pids():
            try:
                cmd = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
            except OSError:
                continue
            if len(cmd) > 1 and cmd[0].endswith(b"ctxlab") and cmd[1] == role.encode():
                os.kill(pid, 9)
                killed += 1
        assert killed == 1, "killed %d %s processes" % (killed, role)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    recs = ssh.records(out)
    assert len(recs) == 2, recs
    assert recs[0]["status"] == "failed", recs[0]
    why = recs[0]["reason"]
    who = "the load generator on '%s'" if role == "load" else "the server on '%s'"
    assert who % h in why, why
    assert recs[1]["status"] == "ok", recs[1]["reason"]
    time.sleep(0.5)
    assert not s.pids(), "left in the namespace: " + s.describe(s.pids())
    t.log("  trial 1: %s" % why)


if __name__ == "__main__":
    sys.exit(ssh.main([("sigkill", test_sigkill), ("load_host_dies", test_host_dies),
                       ("server_host_dies", lambda s: test_host_dies(s, "serve"))]))
