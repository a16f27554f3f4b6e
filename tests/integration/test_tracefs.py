"""tracefs: off-CPU profiling and the syscall counter need tracepoint ids from tracefs, which
many machines do not mount. As root, ctxlab mounts it itself before giving up; with the mount
turned off (CTXLAB_NO_TRACEFS_MOUNT=1) it says the figure is unavailable and why. Both paths
run in a private mount namespace where tracefs and debugfs are unmounted first, so the
machine's own mounts are untouched."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest as t  # noqa: E402

UNMOUNT = ("for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do "
           "umount $m 2>/dev/null; done; "
           "if [ -e /sys/kernel/tracing/events/sched ] || "
           "[ -e /sys/kernel/debug/tracing/events/sched ]; then echo STILL-MOUNTED; exit 3; fi; ")


def in_ns(script, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           UNMOUNT + script], capture_output=True, text=True, env=e,
                          timeout=60)


def test_unavailable_when_mount_is_off():
    p = in_ns('"$CTXLAB" profile --off-cpu -d 0.4 -- sleep 0.3',
              {"CTXLAB": t.CTXLAB, "CTXLAB_NO_TRACEFS_MOUNT": "1"})
    if p.returncode == 3:
        t.skip("cannot unmount tracefs in a private mount namespace here")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "off-CPU profile skipped" in p.stderr and "mount -t tracefs" in p.stderr, p.stderr
    p = in_ns('"$CTXLAB" watch --json --quiet -i 0.2 -- sleep 0.5',
              {"CTXLAB": t.CTXLAB, "CTXLAB_NO_TRACEFS_MOUNT": "1"})
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "sys_enter" in p.stdout and "tracefs" in p.stdout, p.stdout[-2000:]


def test_mounted_by_ctxlab_as_root():
    p = in_ns('"$CTXLAB" profile --off-cpu -d 0.6 -- sh -c "sleep 0.2; sleep 0.2"; '
              'stat -f -c "fs=%T" /sys/kernel/tracing /sys/kernel/debug',
              {"CTXLAB": t.CTXLAB})
    if p.returncode == 3:
        t.skip("cannot unmount tracefs in a private mount namespace here")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "off-CPU profile skipped" not in p.stderr, p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("off-CPU:")]
    assert line, p.stdout
    switches = int(line[0].split(" over ")[1].split()[0])
    assert switches >= 2, line  # the two sleeps at least
    assert "fs=tracefs" in p.stdout or "fs=debugfs" in p.stdout, p.stdout


def main():
    if os.geteuid() != 0:
        t.skip("needs root (mounting tracefs, mount namespaces)")
    if not shutil.which("unshare"):
        t.skip("unshare (util-linux) not installed")
    t.run_tests([("off-CPU and syscalls say unavailable when the mount is off",
                  test_unavailable_when_mount_is_off),
                 ("tracefs mounted by ctxlab as root", test_mounted_by_ctxlab_as_root)])


if __name__ == "__main__":
    main()
