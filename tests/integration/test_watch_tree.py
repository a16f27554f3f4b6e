#!/usr/bin/env python3
"""ctxlab watch end to end: the CLI against known CPU burns.

1. `watch --json -- monitor_burn ...`: the tree's CPU total matches the root's getrusage within
   2% (the truth monitor_burn prints), the split within 5%; every sample is a JSON object with no
   negative figure; the last object is a summary with mean/stddev/cv/min/max/p95.
2. `watch --pid` on a forking tree's root shows the children's CPU while `pidstat -p` on the root
   shows ~0 (the seeds' mistake); skipped without pidstat.
3. single process: watch's %usr/%sys agree with pidstat's within 5 points (skips without sysstat).
4. --csv has a header and one row per sample; bad options fail with a message.
5. `watch --pid` on a root that sleeps (its perf counters are then not re-read) while children it
   forks after the start burn: perf task-clock still matches the tree's CPU within 5%; the
   summary's monitor_overhead is watch's own CPU over a positive span.
"""
import json
import os
import shutil
import subprocess
import sys
import time

CTXLAB = os.environ.get("CTXLAB", "build/ctxlab")
BUILD = os.environ.get("CTXLAB_BUILD", os.path.dirname(CTXLAB))
BURN = os.path.join(BUILD, "monitor_burn")
failures = []


def unsched_s():
    """Seconds (all CPUs) the kernel may count in perf's task-clock but not in the tasks' run
    time: steal (with PARAVIRT_TIME_ACCOUNTING the scheduler's task clock skips the time the
    hypervisor took the vCPU; perf's task-clock, a wall clock while the task is current, does
    not), plus irq and softirq when IRQ_TIME_ACCOUNTING may be on. From /proc/stat."""
    irq_acct = True
    try:
        import gzip
        with gzip.open("/proc/config.gz", "rt") as f:
            irq_acct = "CONFIG_IRQ_TIME_ACCOUNTING=y" in f.read()
    except OSError:
        pass
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    ticks = v[7] + ((v[5] + v[6]) if irq_acct else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def harness_cpu_s():
    """CPU of `watch -- true`'s tree: the keeper ctxlab forks, and the exec. A few ms in a
    release build, tens in an ASan build (forking a sanitized process). Median of 3."""
    runs = []
    for _ in range(3):
        p = subprocess.run([CTXLAB, "watch", "--json", "-i", "250ms", "--", "true"],
                           capture_output=True, text=True, timeout=30)
        objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        if p.returncode == 0 and objs and "total" in objs[-1]:
            runs.append(objs[-1]["total"]["cpu_user_s"] + objs[-1]["total"]["cpu_sys_s"])
    return sorted(runs)[len(runs) // 2] if runs else 0.0


def test_cmd_tree():
    harness = harness_cpu_s()
    p = subprocess.run([CTXLAB, "watch", "--json", "-i", "250ms", "--", BURN, "--children", "6",
                        "--user-ms", "300", "--sys-ms", "300", "--stagger-ms", "80", "--nested",
                        "--exit"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "watch -- monitor_burn exits 0 (rc %d, %s)" % (p.returncode, p.stderr.strip()))
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    samples = [o for o in objs if "cpu_total_cores" in o]
    summary = [o for o in objs if "summary" in o]
    check(len(samples) >= 3, "at least 3 samples (%d)" % len(samples))
    check(len(summary) == 1, "one summary object at the end")
    neg = [(k, v) for s in samples for k, v in s.items() if isinstance(v, (int, float)) and v < 0]
    check(not neg, "no negative figure %s" % neg[:3])
    # monitor_burn's own stdout (the pid, then the truth) is the child's stdout: inherited
    truth = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{"children_user_s"')]
    check(len(truth) == 1, "the workload reported its getrusage truth")
    if not truth or not summary:
        return
    t = truth[0]
    # the root's tree, plus monitor_burn's main process above it (a sleeper, but its start-up
    # and the root's fork are CPU in the watched tree: tens of ms in an ASan build)
    tu = t["children_user_s"] + t["self_user_s"] + t.get("main_user_s", 0)
    ts = t["children_sys_s"] + t["self_sys_s"] + t.get("main_sys_s", 0)
    tot = summary[0]["total"]
    mu, ms = tot["cpu_user_s"], tot["cpu_sys_s"]
    method = summary[0]["summary"]["method"]
    print("# %s: watch user %.3f sys %.3f, getrusage user %.3f sys %.3f" % (method, mu, ms, tu, ts))
    # the tree also holds the keeper that ctxlab forks: measured by watch -- true
    check(abs((mu + ms) - (tu + ts + harness)) <= 0.02 * (tu + ts) + 0.02,
          "total within 2%% of getrusage + the keeper's %.3f s (%.3f vs %.3f)"
          % (harness, mu + ms, tu + ts + harness))
    check(abs(mu - tu) <= 0.05 * (tu + ts) + 0.02 and abs(ms - ts) <= 0.05 * (tu + ts) + 0.02,
          "user/sys split within 5%")
    s = summary[0]["summary"]["cpu_total_cores"]
    check(all(k in s for k in ("mean", "stddev", "cv", "min", "max", "p95")),
          "summary has mean stddev cv min max p95")
    check(summary[0]["total"]["perf"].get("hardware", "").startswith("not supported") or
          "cycles" in summary[0]["total"]["perf"], "hardware counters: a value or n/a with a reason")


def test_idle_root_perf():
    # root: idle 0.8 s, then 3 children burning 0.4 s each (staggered), idle 0.6 s, exit; plus
    # an idle sibling that never runs while watched
    code = ("import os,sys,time\nprint(os.getpid(),flush=True)\ntime.sleep(0.8)\nks=[]\n"
            "for i in range(3):\n  k=os.fork()\n  if k==0:\n    t=time.process_time()\n"
            "    while time.process_time()-t<0.4: pass\n    os._exit(0)\n  ks.append(k)\n"
            "  time.sleep(0.2)\n"
            "for k in ks: os.waitpid(k,0)\ntime.sleep(0.6)\nos._exit(0)\n")
    b = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    root = int(b.stdout.readline())
    unsched0 = unsched_s()
    w = subprocess.Popen([CTXLAB, "watch", "--pid", str(root), "-i", "100ms", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b.wait(timeout=30)  # reaped: watch sees the root gone
    out, err = w.communicate(timeout=30)
    unsched = unsched_s() - unsched0
    check(w.returncode == 0, "watch --pid on the idle root exits 0 (%s)" % err.strip())
    objs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if not objs or "summary" not in objs[-1]:
        check(False, "a summary object")
        return
    tot, summ = objs[-1]["total"], objs[-1]["summary"]
    cpu = tot["cpu_user_s"] + tot["cpu_sys_s"]
    check(cpu >= 1.1, "the children's burn is counted (%.3f s of 1.2)" % cpu)
    if "task_clock_ns" in tot["perf"]:
        tc = tot["perf"]["task_clock_ns"] / 1e9
        print("# idle root: cpu %.3f s, perf task-clock %.3f s, steal/irq meanwhile %.3f s"
              % (cpu, tc, unsched))
        # task-clock may exceed the run time by the time stolen from the vCPU meanwhile
        check(-0.05 * cpu - 0.03 <= tc - cpu <= 0.05 * cpu + 0.03 + unsched,
              "perf task-clock matches the CPU total while the root sleeps (%.3f vs %.3f, "
              "steal/irq %.3f)" % (tc, cpu, unsched))
    else:
        print("skip: perf counters n/a here (%s)" % tot["perf"])
    # per interval too: the children call clock_gettime(CLOCK_PROCESS_CPUTIME_ID) (a real
    # syscall) as they burn, so every interval with a child on the CPU counts syscalls
    busy = [o for o in objs[:-1] if o.get("cpu_total_cores", 0) > 0.5]
    if busy and busy[0].get("syscalls_per_s") is not None:
        low = [round(o["syscalls_per_s"]) for o in busy if o["syscalls_per_s"] < 1000]
        check(not low, "every busy interval counts the children's syscalls (%d busy; low %s)"
              % (len(busy), low))
    else:
        print("skip: no busy interval or syscall counter n/a")
    oh = summ.get("monitor_overhead")
    check(isinstance(oh, dict) and oh["span_s"] > 1.0 and 0 <= oh["cpu_s"] < oh["span_s"] and
          abs(oh["pct_of_core"] - 100 * oh["cpu_s"] / oh["span_s"]) < 1e-6,
          "summary monitor_overhead: own CPU over the span after the first sample (%s)" % oh)


def start_burn(args):
    p = subprocess.Popen([BURN] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    root = int(p.stdout.readline())
    return p, root


def test_pid_vs_pidstat():
    if not shutil.which("pidstat"):
        print("skip: pidstat not installed (apt install sysstat)")
        return
    # 2 children burning 1.2 s of user CPU each, staggered: the root itself is idle
    p, root = start_burn(["--children", "2", "--user-ms", "1200", "--sys-ms", "1200"])
    ps = subprocess.Popen(["pidstat", "-u", "-p", str(root), "1", "2"], stdout=subprocess.PIPE,
                          text=True, env=dict(os.environ, LC_ALL="C"))
    w = subprocess.run([CTXLAB, "watch", "--pid", str(root), "-i", "1s", "-n", "2", "--json",
                        "--no-perf"], capture_output=True, text=True, timeout=30)
    out = ps.communicate(timeout=30)[0]
    p.stdin.close()
    p.wait(timeout=30)
    samples = [json.loads(l) for l in w.stdout.splitlines() if l.startswith('{"t_s"')]
    wcores = max(s["cpu_total_cores"] for s in samples) if samples else 0
    rows = [l.split() for l in out.splitlines() if l and l[0].isdigit() and str(root) in l.split()]
    pid_pct = max((float(r[-3]) for r in rows), default=0.0)  # %CPU column (LC_ALL=C)
    print("# forking tree: watch %.2f cores, pidstat -p root %.1f%%" % (wcores, pid_pct))
    check(wcores > 0.3, "watch --pid sees the children's CPU (%.2f cores)" % wcores)
    check(pid_pct < 10, "pidstat -p on the idle root shows ~0 (%.1f%%)" % pid_pct)


def test_single_vs_pidstat():
    if not shutil.which("pidstat"):
        print("skip: pidstat not installed (apt install sysstat)")
        return
    # one process burning user and system time alternately: python
    code = ("import os,time\nf=os.open('/dev/zero',os.O_RDONLY)\nt=time.time()\n"
            "while time.time()-t<6:\n  x=sum(range(20000))\n  os.read(f,65536)\n")
    b = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)
    ps = subprocess.Popen(["pidstat", "-u", "-p", str(b.pid), "1", "3"], stdout=subprocess.PIPE,
                          text=True, env=dict(os.environ, LC_ALL="C"))
    w = subprocess.run([CTXLAB, "watch", "--pid", str(b.pid), "-i", "1s", "-n", "3", "--json",
                        "--no-perf"], capture_output=True, text=True, timeout=30)
    out = ps.communicate(timeout=30)[0]
    b.kill()
    b.wait()
    rows = [l.split() for l in out.splitlines() if l and l[0].isdigit() and str(b.pid) in l.split()]
    if not rows:
        check(False, "pidstat printed rows")
        return
    # columns: time UID PID %usr %system %guest %wait %CPU CPU Command
    hdr = [l.split() for l in out.splitlines() if "%usr" in l][0]
    iu, isy = hdr.index("%usr"), hdr.index("%system")
    pu = sum(float(r[iu]) for r in rows) / len(rows)
    psy = sum(float(r[isy]) for r in rows) / len(rows)
    samples = [json.loads(l) for l in w.stdout.splitlines() if l.startswith('{"t_s"')]
    wu = 100 * sum(s["cpu_user_cores"] for s in samples) / len(samples)
    ws = 100 * sum(s["cpu_sys_cores"] for s in samples) / len(samples)
    print("# single process: watch %%usr %.1f %%sys %.1f, pidstat %%usr %.1f %%system %.1f" %
          (wu, ws, pu, psy))
    check(abs(wu - pu) <= 5 and abs(ws - psy) <= 5, "agrees with pidstat within 5 points")


def test_csv_and_errors():
    p = subprocess.run([CTXLAB, "watch", "--csv", "-i", "100ms", "-n", "3", "--pid", str(os.getpid())],
                       capture_output=True, text=True, timeout=30)
    lines = p.stdout.strip().splitlines()
    check(p.returncode == 0 and len(lines) == 4 and lines[0].startswith("t_s,interval_s,cpu_user_cores"),
          "--csv: header + 3 rows")
    p = subprocess.run([CTXLAB, "watch", "-i", "10x", "--pid", "1"], capture_output=True, text=True)
    check(p.returncode != 0 and "10x" in p.stderr, "bad interval is refused with the text quoted")
    p = subprocess.run([CTXLAB, "watch"], capture_output=True, text=True)
    check(p.returncode != 0 and "target" in p.stderr, "no target is refused")
    p = subprocess.run([CTXLAB, "watch", "--pid", "999999999"], capture_output=True, text=True)
    check(p.returncode != 0 and "999999999" in p.stderr, "a missing pid is refused")


if not os.path.exists(BURN):
    print("SKIP: %s not built" % BURN)
    sys.exit(77)  # ctest's SKIP_RETURN_CODE
test_cmd_tree()
test_pid_vs_pidstat()
test_single_vs_pidstat()
test_idle_root_perf()
test_csv_and_errors()
sys.exit(1 if failures else 0)
