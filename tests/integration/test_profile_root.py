#!/usr/bin/env python3
"""ctxlab profile on a process in another mount namespace (as a container is): the ELF files
its /proc/PID/maps names are read through /proc/PID/map_files, as that process sees them, not
by their paths in the host's namespace (issue 9).

The known workload profile_burn (70% of its CPU in burn_a, 30% in burn_b) runs from a tmpfs
mounted in a private mount namespace (unshare -m) over a host directory where the same path
holds another program (a copy of `true`). Before the fix the profiler opened the host's file
and named no burn_a; now burn_a and burn_b are named, under main. Also a chroot (maps paths
are then the host's paths to the same files): still resolved.
Skips (not fails) when perf_event_open, unshare -m or mount is not permitted here.
"""
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import run_tests  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
BUILD = os.environ.get("CTXLAB_BUILD", os.path.dirname(os.path.abspath(CTXLAB)))
BURN = os.path.join(BUILD, "profile_burn")


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(0)


def make_root(root, name):
    """Copies profile_burn to root/name and its shared libraries (ldd) to their paths."""
    shutil.copy2(BURN, os.path.join(root, name))
    out = subprocess.run(["ldd", BURN], capture_output=True, text=True, timeout=30).stdout
    for lib in re.findall(r"(/\S+)", out):
        if not os.path.exists(lib):
            continue
        dst = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dst)


def count_burn(folded, prefix):
    """(samples with burn_a, with burn_b, unresolved frames of the binary) in stacks whose
    root (comm) starts with one of prefix."""
    a = b = unresolved = 0
    for line in folded.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not frames[0].startswith(prefix):
            continue
        if "burn_a" in frames:
            a += int(n)
            assert "main" in frames, line
        elif "burn_b" in frames:
            b += int(n)
        if any(re.match(r"(burn|ctxlab-burn-\w+)\+0x", f) for f in frames):
            unresolved += int(n)
    return a, b, unresolved


def check(folded, prefix):
    a, b, unresolved = count_burn(folded, prefix)
    assert a + b > 50, "too few burn samples (a=%d b=%d):\n%s" % (a, b, folded[:2000])
    assert a > b, (a, b)
    assert unresolved * 10 < a + b, "frames of the binary left unresolved (%d):\n%s" % (
        unresolved, folded[:2000])


def profile(tmp, cmd):
    out = os.path.join(tmp, "out")
    p = subprocess.run([CTXLAB, "profile", "-q", "-F", "499", "-o", out, "--"] + cmd,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "profile exited %d: %s" % (p.returncode, p.stderr[-1000:])
    return open(os.path.join(out, "profile.folded")).read()


def test_mount_ns():
    tmp = tempfile.mkdtemp(prefix="ctxlab-profile-root-")
    try:
        mnt = os.path.join(tmp, "mnt")
        os.makedirs(mnt)
        # the host's file at that path: another program (no burn_a in it)
        shutil.copy2(shutil.which("true"), os.path.join(mnt, "burn"))
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                "mount -t tmpfs none '%s'" % mnt], capture_output=True,
                               text=True, timeout=30)
        if probe.returncode != 0:
            print("SKIP: mount namespace: unshare -m / mount not permitted here: " +
                  probe.stderr.strip())
            return
        folded = profile(tmp, ["unshare", "-m", "--propagation", "private", "sh", "-c",
                               "mount -t tmpfs none '%s' && cp '%s' '%s/burn' && exec '%s/burn' 1.0"
                               % (mnt, BURN, mnt, mnt)])
        check(folded, ("sh", "burn"))  # comm: sh until the exec is seen, then burn
        assert os.path.getsize(os.path.join(mnt, "burn")) == os.path.getsize(shutil.which("true"))
    finally:
        shutil.rmtree(tmp)


def test_chroot():
    tmp = tempfile.mkdtemp(prefix="ctxlab-profile-root-")
    try:
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        name = "ctxlab-burn-" + secrets.token_hex(4)
        make_root(root, name)
        check(profile(tmp, ["chroot", root, "/" + name, "1.0"]), "ctxlab-burn")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    if not os.access(BURN, os.X_OK):
        skip("helper %s not built" % BURN)
    if os.geteuid() != 0 or not shutil.which("chroot") or not shutil.which("unshare"):
        skip("needs root, chroot and unshare")
    probe = subprocess.run([CTXLAB, "profile", "-q", "-d", "0.2", "--", BURN, "0.2"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode == 3 or "permission denied" in probe.stderr.lower():
        skip("perf_event_open not permitted here: " + probe.stderr.strip())
    run_tests([("profile: a process in another mount namespace: its own ELF files", test_mount_ns),
               ("profile: a chrooted process: its ELF files", test_chroot)])
