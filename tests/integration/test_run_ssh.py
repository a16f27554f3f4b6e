#!/usr/bin/env python3
"""ctxlab run over real ssh: OpenSSH's sshd started by this test inside a network namespace it
creates (its own config, host key, authorized key, pid file and known_hosts in a temporary
directory; no system configuration touched; nothing left running), reached over a veth pair
from a second namespace where `ctxlab run` itself runs (addresses from 198.51.100.0/24,
TEST-NET-2, only inside the two namespaces: nothing is added to this machine's own network). The ssh client gets its identity and
known_hosts through CTXLAB_SSH_OPTIONS.

  end_to_end   server = ssh:root@ADDR, load = ssh:root@ADDR: the trial completes; env.json
               has the ssh host's kernel, CPU, cores and ctxlab version
  errors       an unreachable load host, then server host (nothing listens on port 22 there:
               the server's engine list falls back to this machine's), a host without ctxlab
               (--remote-bin to a missing path) and a version mismatch each fail the trial
               with the host named, the run goes on (exit 0, one failed record per trial)
(test_run_ssh_kill.py: SIGKILL of the run, a host dying mid-trial, with the same sshd.)
Skips when not root, without sshd/ssh-keygen, or when `ip netns` is not permitted."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

CTXLAB = os.path.realpath(t.CTXLAB) if os.path.sep in t.CTXLAB else shutil.which(t.CTXLAB)
SSHD = "/usr/sbin/sshd"
ADDR, PEER = "198.51.100.1", "198.51.100.2"


def ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


class Sshd:
    """sshd -D in netns ns on ADDR:22; the veth's other end (PEER) in netns local, where the
    runs are started."""

    def __init__(self):
        self.tag = "cs%d" % os.getpid()
        self.ns = self.tag + "r"
        self.local = self.tag + "l"
        self.dir = tempfile.mkdtemp(prefix="ctxlab-ssh-")
        self.proc = None
        self.made_privsep = False
        self.netns_made = False

    def start(self):
        p = ip("netns", "add", self.ns, check=False)
        if p.returncode != 0:
            t.skip("'ip netns add' is not permitted here: %s" % p.stderr.strip())
        self.netns_made = True
        ip("netns", "add", self.local)
        ip("link", "add", self.tag + "x", "type", "veth", "peer", "name", self.tag + "y")
        ip("link", "set", self.tag + "x", "netns", self.ns)
        ip("link", "set", self.tag + "y", "netns", self.local)
        ip("-n", self.ns, "addr", "add", ADDR + "/24", "dev", self.tag + "x")
        ip("-n", self.ns, "link", "set", self.tag + "x", "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        ip("-n", self.local, "addr", "add", PEER + "/24", "dev", self.tag + "y")
        ip("-n", self.local, "link", "set", self.tag + "y", "up")
        ip("-n", self.local, "link", "set", "lo", "up")
        d = self.dir
        for name in ("hostkey", "id"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(d, name)], check=True, timeout=20)
        shutil.copy(os.path.join(d, "id.pub"), os.path.join(d, "authorized_keys"))
        hostpub = open(os.path.join(d, "hostkey.pub")).read().split()
        open(os.path.join(d, "known_hosts"), "w").write("%s %s %s\n" % (ADDR, hostpub[0],
                                                                        hostpub[1]))
        open(os.path.join(d, "sshd_config"), "w").write(
            "ListenAddress %s\nPort 22\nHostKey %s/hostkey\nPidFile %s/sshd.pid\n"
            "AuthorizedKeysFile %s/authorized_keys\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
            "AcceptEnv none\nMaxStartups 50\nMaxSessions 50\n" % (ADDR, d, d, d))
        # sshd's privilege separation directory (made by the Debian service at start)
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755)
            self.made_privsep = True
        # root's shell rc files (run by every ssh command: here pyenv's init took seconds)
        # are hidden in sshd's own mount namespace: nothing outside it sees the change
        empty = os.path.join(d, "empty-rc")
        open(empty, "w").close()
        hide = "".join('[ -f %s ] && mount --bind %s %s; ' % (f, empty, f) for f in (
            os.path.join(os.path.expanduser("~root"), x) for x in (".bashrc", ".profile")))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "-m", "--propagation", "private",
             "sh", "-c", hide + 'exec "$0" "$@"', SSHD, "-D", "-e", "-f",
             os.path.join(d, "sshd_config")], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "sshd.log"), "w"))
        os.environ["CTXLAB_SSH_OPTIONS"] = (
            "-i %s/id -o UserKnownHostsFile=%s/known_hosts -o StrictHostKeyChecking=yes "
            "-o LogLevel=ERROR" % (d, d))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = subprocess.run(self.exec_local() + ["ssh"] + os.environ["CTXLAB_SSH_OPTIONS"].split() +
                               ["-o", "BatchMode=yes", "root@" + ADDR, "true"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("sshd did not accept the test key: %s %s" % (
            r.stderr.strip(), open(os.path.join(d, "sshd.log")).read()[-1500:]))

    def exec_local(self):
        return ["ip", "netns", "exec", self.local]

    def pids(self):
        """Processes in the namespace, without the listener."""
        p = ip("netns", "pids", self.ns, check=False)
        out = set(int(x) for x in p.stdout.split())
        listener = self.listener()
        return sorted(x for x in out if x != listener)

    def listener(self):
        try:
            return int(open(os.path.join(self.dir, "sshd.pid")).read())
        except (OSError, ValueError):
            return -1

    def describe(self, pids):
        out = []
        for p in pids:
            try:
                out.append("%d %s" % (p, open("/proc/%d/cmdline" % p, "rb").read()
                                      .replace(b"\0", b" ").decode(errors="replace")))
            except OSError:
                pass
        return "; ".join(out)

    def stop(self):
        os.environ.pop("CTXLAB_SSH_OPTIONS", None)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.netns_made:
            # whatever is left in the namespaces (a failed test) goes with them
            for ns in (self.ns, self.local):
                for p in ip("netns", "pids", ns, check=False).stdout.split():
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except OSError:
                        pass
                ip("netns", "del", ns, check=False)
        if self.made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)


SPEC = ("[experiment]\nrepeat = %d\nwarmup = 100ms\nduration = %s\nprecision = off\n"
        "[server]\nengine = epoll\nproto = http\ncpus = 1\n[load]\nconnections = 4\n"
        "[hosts]\nserver = %s\nload = %s\nserver_address = %s\n")


SSHD_FIX = None


def run(spec_text, out, *extra, timeout=80):
    spec = out + ".ini"
    open(spec, "w").write(spec_text)
    return subprocess.run(SSHD_FIX.exec_local() + [CTXLAB, "run", "-q", "-o", out] + list(extra) + [spec],
                          capture_output=True, text=True, timeout=timeout)


def records(out):
    return [json.loads(l) for l in open(os.path.join(out, "trials.jsonl"))]


def test_end_to_end(s):
    h = "ssh:root@" + ADDR
    out = os.path.join(s.dir, "e2e")
    p = run(SPEC % (1, "1s", h, h, ADDR), out)
    assert p.returncode == 0, p.stderr[-2000:]
    r = records(out)
    assert len(r) == 1, r
    r = r[0]
    assert r["status"] == "ok", r["reason"]
    assert r["hosts"]["server"] == h and r["hosts"]["load"] == h, r["hosts"]
    assert r["throughput"]["requests"] > 0 and r["errors"]["total"] == 0, r["throughput"]
    lh = r["load_hosts"]
    assert len(lh) == 1 and lh[0]["host"] == h, lh
    assert r["latency_us"]["count"] == lh[0]["requests"] == r["throughput"]["requests"], r
    env = json.load(open(os.path.join(out, "env.json")))
    hosts = {x["host"]: x for x in env["hosts"]}
    ver = subprocess.run([CTXLAB, "--version"], capture_output=True, text=True).stdout.strip()
    assert hosts[h]["ctxlab_version"] == ver, hosts
    assert hosts[h]["kernel"] == os.uname().release and hosts[h]["cores"] >= 1, hosts
    assert "error" not in hosts[h], hosts
    assert not s.pids(), "left in the namespace: " + s.describe(s.pids())
    t.log("  %d requests over ssh, %.0f req/s" % (r["throughput"]["requests"],
                                                 r["throughput"]["requests_per_s"]))


def test_errors(s):
    h = "ssh:root@" + ADDR
    # nothing listens on port 22 at PEER (this namespace): connection refused
    out = os.path.join(s.dir, "unreach")
    p = run(SPEC % (2, "300ms", "local", "ssh:root@" + PEER, "127.0.0.1"), out)
    assert p.returncode == 0, p.stderr[-2000:]
    r = records(out)
    assert len(r) == 2 and all(x["status"] == "failed" for x in r), r
    why = r[0]["reason"]
    assert "host 'ssh:root@%s' cannot be reached" % PEER in why, why
    assert "Connection refused" in why, why
    out = os.path.join(s.dir, "unreach-server")
    p = run(SPEC % (1, "300ms", "ssh:root@" + PEER, "local", "127.0.0.1"), out)
    assert p.returncode == 0, p.stderr[-2000:]
    why = records(out)[0]["reason"]
    assert "host 'ssh:root@%s' cannot be reached" % PEER in why, why
    # no ctxlab at --remote-bin
    out = os.path.join(s.dir, "nobin")
    p = run(SPEC % (1, "300ms", "local", h, "127.0.0.1"), out, "--remote-bin",
            "/nonexistent/ctxlab")
    assert p.returncode == 0, p.stderr[-2000:]
    why = records(out)[0]["reason"]
    assert "host '%s' has no ctxlab at '/nonexistent/ctxlab'" % h in why, why
    # another version there
    fake = os.path.join(s.dir, "old-ctxlab")
    open(fake, "w").write("#!/bin/sh\necho 'ctxlab version 0.0.0-other'\n")
    os.chmod(fake, 0o755)
    out = os.path.join(s.dir, "mismatch")
    p = run(SPEC % (1, "300ms", "local", h, "127.0.0.1"), out, "--remote-bin", fake)
    assert p.returncode == 0, p.stderr[-2000:]
    why = records(out)[0]["reason"]
    assert "host '%s' runs 'ctxlab version 0.0.0-other'" % h in why, why
    assert not s.pids(), "left in the namespace: " + s.describe(s.pids())


def main(tests=None):
    if os.geteuid() != 0:
        t.skip("needs root (network namespaces, sshd)")
    for tool in (SSHD, shutil.which("ssh-keygen"), shutil.which("ssh"), shutil.which("ip")):
        if not tool or not os.path.exists(tool):
            t.skip("OpenSSH (openssh-server, openssh-client) or iproute2 not installed "
                   "(scripts/setup.sh installs them)")
    global SSHD_FIX
    s = SSHD_FIX = Sshd()
    try:
        s.start()
        t.run_tests([(n, (lambda f: lambda: f(s))(f)) for n, f in (tests or [
            ("end_to_end", test_end_to_end), ("errors", test_errors)])])
    finally:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
