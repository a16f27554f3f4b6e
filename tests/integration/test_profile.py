#!/usr/bin/env python3
"""ctxlab profile and ctxlab flame end to end, against the known workload profile_burn
(70% of its CPU in burn_a, 30% in burn_b, both under main).

1. `profile -F 499 -o DIR -- profile_burn 1.5`: burn_a 70 +- 10 points and burn_b 30 +- 10 of
   the samples, with main in their stacks; profile.folded parses and its counts sum to the
   sample count printed; the top table starts with burn_a.
2. flame.svg is well-formed XML (xml.etree) with one <g class="f"> (title + rect) per frame of
   the folded stacks wide enough to draw.
3. profile.pb.gz opens in `go tool pprof -top` and lists burn_a at ~70% (skipped without go).
4. `--event cycles`: a clear "not supported here" error where there is no PMU (forced with
   CTXLAB_PERF_NO_HW=1 elsewhere); the default cpu-clock works (1).
5. `--off-cpu -- profile_burn --sleep 1`: offcpu.folded holds the clock_nanosleep stack with
   most of the second.
6. `flame` renders a folded file; `flame --diff` colours the frame that grew red and the one
   that shrank blue; a malformed file fails naming the line.
7. Cgroup mode (root with cgroup v2 only; skipped with the reason elsewhere). 1 and 5 already run
   in it there (`-- CMD` starts CMD in a cgroup of ctxlab's own): the summary names the cgroup,
   which is removed afterwards. Short-lived tasks (`profile_burn --threads` / `--forks`, each
   thread or child 1-3 ms of CPU, under one period at 99 Hz): `-F 999 -- CMD` gets samples
   for the CPU the target used (+-30%), keeps burn_a at 70 +- 10 points of burn_a + burn_b,
   and forked children that exited long before the profiler read anything resolve through
   their parent's image (burn_a under main); `--pid` (per task, 99 Hz) on the same workload
   gets next to nothing and says so (printed). A thread-per-connection server
   (`serve --engine thread`, 200 keep-alive connections from `load -c 200`) in a cgroup of the
   test's: `--cgroup` samples = the cgroup's cpu.stat usage over the profiler's window ("the
   target used", within the test's own reading) x 99 Hz, at most 30% under and 20% + 2 over
   (plus CPU 0's steal/irq time); `--pid` on it is printed for comparison. Held 400 ms between
   opening its events and its window (CTXLAB_PROFILE_ATTACH_DELAY_MS), the samples still match
   the CPU the profiler reports. A missing cgroup path is refused naming the path.
Skips (not fails) when perf_event_open is not permitted here.
"""
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "build/ctxlab")
BUILD = os.environ.get("CTXLAB_BUILD", os.path.dirname(CTXLAB))
BURN = os.path.join(BUILD, "profile_burn")
SVG = "{http://www.w3.org/2000/svg}"
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)  # ctest's SKIP_RETURN_CODE


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([CTXLAB] + args, capture_output=True, text=True, timeout=timeout, env=e)


def read_folded(path):
    stacks = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):  # blank, or metadata (unwind quality)
                continue
            stack, _, count = line.rpartition(" ")
            assert stack and count.isdigit(), "%s line %d malformed: %r" % (path, n, line)
            stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def share(stacks, frame, also=None):
    total = sum(stacks.values())
    n = sum(c for s, c in stacks.items()
            if frame in s.split(";") and (also is None or also in s.split(";")))
    return 100.0 * n / total if total else 0.0


def frames_expected(stacks, width=1200, pad=10, min_w=0.1):
    """The frames flame.svg must draw: every distinct stack prefix wide enough, plus 'all'."""
    total = sum(stacks.values())
    widths = {}
    for s, c in stacks.items():
        parts = [p for p in s.split(";") if p]
        for i in range(1, len(parts) + 1):
            k = tuple(parts[:i])
            widths[k] = widths.get(k, 0) + c
    scale = (width - 2 * pad) / total
    # a frame is drawn when it and all its ancestors are wide enough (ancestors are wider)
    return 1 + sum(1 for k, c in widths.items() if c * scale >= min_w)


def cgroup2_mount():
    """(path, "") of the cgroup v2 hierarchy where this process may sample per cgroup, or
    (None, why not)."""
    if os.geteuid() != 0:
        return None, "not root (per-CPU cgroup events and making cgroups need it)"
    mnt = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                mnt = left.split()[4]
                break
    if not mnt:
        return None, "cgroup v2 not mounted"
    with open("/proc/cgroups") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "perf_event" and parts[1] != "0":
                return None, "perf_event is bound to a cgroup v1 hierarchy"
    return mnt, ""


CG2, CG2_WHY = None, ""


def summary(stdout):
    """(samples, duration s, scope text) from the summary line."""
    first = stdout.splitlines()[0]
    parts = first.split(", ")
    dur = [x for x in first.split() if x.endswith("s,") and x[:-2].replace(".", "").isdigit()]
    return int(first.split()[1]), float(dur[0][:-2]) if dur else 0.0, first


def folded_share(stacks, a="burn_a", b="burn_b"):
    na = sum(c for s, c in stacks.items() if a in s.split(";"))
    nb = sum(c for s, c in stacks.items() if b in s.split(";"))
    return (100.0 * na / (na + nb) if na + nb else 0.0), na + nb


def test_burn(tmp):
    out = os.path.join(tmp, "burn")
    p = run(["profile", "-F", "499", "-o", out, "--", BURN, "1.5"])
    check(p.returncode == 0, "profile -- profile_burn exits 0 (rc %d: %s)" % (p.returncode, p.stderr.strip()))
    if p.returncode:
        return None
    print(p.stdout)
    first = p.stdout.splitlines()[0]
    if CG2:
        m = [w for w in first.split(", ") if w.startswith("cgroup ")]
        check(len(m) == 1, "as root with cgroup v2, -- CMD is sampled per cgroup (%s)" % first)
        if m:
            path = m[0][len("cgroup "):]
            check(path.startswith(CG2 + "/ctxlab-profile-") and not os.path.exists(path),
                  "its cgroup %s is removed afterwards" % path)
    else:
        check("thread" in first and "attached" in first and "per task" in p.stderr,
              "without a cgroup, -- CMD is sampled per task with a note (%s)" % p.stderr.strip())
    nsamples = int(first.split()[1])
    stacks = read_folded(os.path.join(out, "profile.folded"))
    check(sum(stacks.values()) == nsamples,
          "folded counts sum to the %d samples printed (%d)" % (nsamples, sum(stacks.values())))
    check(nsamples >= 50, "enough samples to judge shares (%d)" % nsamples)
    a, b = share(stacks, "burn_a", "main"), share(stacks, "burn_b", "main")
    check(60 <= a <= 80, "burn_a (under main) has 70 +- 10%% of the samples: %.1f%%" % a)
    check(20 <= b <= 40, "burn_b (under main) has 30 +- 10%% of the samples: %.1f%%" % b)
    # the tree also holds the spawn keeper (comm "ctxlab", which waits in sigtimedwait and wakes
    # when the command exits): a sample or two of it is real and allowed, nothing else
    other = {s: c for s, c in stacks.items() if not s.startswith("profile_burn;")}
    keeper = sum(c for s, c in other.items() if s.startswith("ctxlab;"))
    check(sum(other.values()) == keeper and keeper <= max(2, nsamples // 50),
          "every stack starts with the comm, but for the keeper's few (%s)" % list(other)[:3])
    rows = [l.split() for l in p.stdout.splitlines() if l.strip().endswith("burn_a") or l.strip().endswith("burn_b")]
    table = [l for l in p.stdout.splitlines() if "%" in l and not l.startswith("profile:")]
    check(len(table) >= 3 and table[1].split()[-1] == "burn_a", "the top table starts with burn_a")
    check(len(rows) == 2, "the table lists burn_a and burn_b")

    # 2. the SVG
    try:
        root = ET.parse(os.path.join(out, "flame.svg")).getroot()
        ok = True
    except ET.ParseError as e:
        ok = False
        print("parse error:", e)
    check(ok, "flame.svg is well-formed XML")
    if ok:
        frames = [g for g in root.iter(SVG + "g") if g.get("class") == "f"]
        want = frames_expected(stacks)
        check(len(frames) == want, "one frame group per drawable frame (%d, want %d)" % (len(frames), want))
        check(all(g.find(SVG + "title") is not None and g.find(SVG + "rect") is not None
                  for g in frames), "every frame has a <title> tooltip and a <rect>")
        names = {g.get("data-n") for g in frames}
        check({"all", "profile_burn", "main", "burn_a", "burn_b"} <= names,
              "frames all/profile_burn/main/burn_a/burn_b drawn")
        script = "".join(s.text or "" for s in root.iter(SVG + "script"))
        check("function zoom(" in script and "function search(" in script,
              "inline JavaScript for zoom and search")
    return out


def test_pprof(out):
    path = os.path.join(out, "profile.pb.gz")
    with gzip.open(path) as f:
        data = f.read()
    check(len(data) > 50 and b"burn_a" in data, "profile.pb.gz is gzip holding burn_a (%d bytes)" % len(data))
    go = shutil.which("go")
    if not go:
        print("SKIP: go tool pprof check (no go in PATH)")
        return
    env = {"HOME": os.environ.get("HOME") or tempfile.gettempdir(),
           "GOCACHE": os.path.join(tempfile.gettempdir(), "ctxlab-gocache"), "GOFLAGS": "", "GOPROXY": "off"}
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run([go, "tool", "pprof", "-top", path], capture_output=True, text=True,
                       timeout=120, env=e)
    print(p.stdout[:1500])
    check(p.returncode == 0, "go tool pprof -top reads it (rc %d: %s)" % (p.returncode, p.stderr.strip()[:300]))
    line = [l for l in p.stdout.splitlines() if l.split() and l.split()[-1] == "burn_a"]
    check(len(line) == 1, "go tool pprof -top lists burn_a")
    if line:
        flat_pct = float(line[0].split()[1].rstrip("%"))
        check(60 <= flat_pct <= 80, "pprof's flat%% of burn_a is 70 +- 10 (%.1f)" % flat_pct)


def test_cycles(tmp):
    p = run(["profile", "--event", "cycles", "-d", "0.3", "--", BURN, "0.3"])
    if p.returncode == 0:
        print("note: this machine has a hardware PMU: cycles works")
    else:
        check("not supported here" in p.stderr and "cpu-clock" in p.stderr,
              "--event cycles without a PMU: a clear error (%s)" % p.stderr.strip())
    p = run(["profile", "--event", "cycles", "--", BURN, "0.3"], env={"CTXLAB_PERF_NO_HW": "1"})
    check(p.returncode == 1 and "not supported here" in p.stderr,
          "--event cycles with hardware events unsupported: exit 1, 'not supported here'")
    p = run(["profile", "--event", "bogus", "--", BURN, "0.3"])
    check(p.returncode == 2 and "bad value 'bogus' for --event: unknown event" in p.stderr,
          "an unknown event is refused")


def test_offcpu(tmp):
    out = os.path.join(tmp, "off")
    p = run(["profile", "--off-cpu", "-o", out, "--", BURN, "--sleep", "1"])
    check(p.returncode == 0, "profile --off-cpu exits 0 (rc %d: %s)" % (p.returncode, p.stderr.strip()))
    if "off-CPU profile skipped" in p.stderr:
        print("SKIP: off-CPU unavailable here: " + p.stderr.strip())
        return
    print(p.stdout)
    stacks = read_folded(os.path.join(out, "offcpu.folded"))
    us = sum(c for s, c in stacks.items() if any("clock_nanosleep" in f for f in s.split(";")))
    check(600000 <= us <= 1500000, "clock_nanosleep stacks hold most of the 1 s asleep (%d us)" % us)
    check(any("main" in s.split(";") and "clock_nanosleep" in s for s in stacks),
          "the nanosleep stack goes up to main")
    ET.parse(os.path.join(out, "offcpu.svg"))
    check(True, "offcpu.svg is well-formed XML")


def test_flame(tmp, burn_out):
    a = os.path.join(tmp, "a.folded")
    b = os.path.join(tmp, "b.folded")
    with open(a, "w") as f:
        f.write("p;main;grow 10\np;main;shrink 90\np;main;same 100\n")
    with open(b, "w") as f:
        f.write("p;main;grow 90\np;main;shrink 10\np;main;same 100\n")
    svg = os.path.join(tmp, "d.svg")
    p = run(["flame", "--diff", a, b, "-o", svg, "--title", "A vs B"])
    check(p.returncode == 0, "flame --diff exits 0 (%s)" % p.stderr.strip())
    root = ET.parse(svg).getroot()
    fills = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "f":
            fills[g.get("data-n")] = g.find(SVG + "rect").get("fill")
    check(fills.get("grow", "").startswith("rgb(255,"), "grown frame is red (%s)" % fills.get("grow"))
    check(fills.get("shrink", "").endswith(",255)") and not fills["shrink"].startswith("rgb(255"),
          "shrunk frame is blue (%s)" % fills.get("shrink"))
    check(fills.get("same") == "rgb(250,250,250)", "unchanged frame is white (%s)" % fills.get("same"))
    if burn_out:
        p = run(["flame", os.path.join(burn_out, "profile.folded"), "--title", "re-rendered"])
        check(p.returncode == 0 and p.stdout.startswith("<?xml"), "flame FILE writes the SVG to stdout")
        ET.fromstring(p.stdout)
        check("re-rendered" in p.stdout, "flame --title is used")
    bad = os.path.join(tmp, "bad.folded")
    with open(bad, "w") as f:
        f.write("a;b 1\na;b;c\n")
    p = run(["flame", bad])
    check(p.returncode == 1 and "line 2" in p.stderr, "a malformed folded file fails naming the line (%s)" % p.stderr.strip())
    p = run(["flame", os.path.join(tmp, "missing.folded")])
    check(p.returncode == 1 and "cannot open" in p.stderr, "a missing file fails with 'cannot open'")


def test_short_lived(tmp):
    """Many threads / forked children each running far less than one period."""
    for mode in ("threads", "forks"):
        out = os.path.join(tmp, "short-" + mode)
        p = run(["profile", "-F", "999", "-o", out, "--", BURN, "--" + mode, "1.5"])
        check(p.returncode == 0, "profile -- profile_burn --%s exits 0 (%s)" % (mode, p.stderr.strip()))
        if p.returncode:
            continue
        n, dur, first = summary(p.stdout)
        print(first)
        stacks = read_folded(os.path.join(out, "profile.folded"))
        a, nab = folded_share(stacks)
        # what the target used comes from the cgroup's cpu.stat, not from the samples; on a
        # busy machine it is well under the 1.5 s of one core, so the counts are relative
        used = float(first.split("the target used ")[1].split("s)")[0])
        check(used >= 0.1 and abs(n - used * 999) <= 0.3 * used * 999,
              "--%s per cgroup: %d samples for the %.2f s of CPU the cgroup used (~%.0f at "
              "999 Hz, within 30%%)" % (mode, n, used, used * 999))
        check(nab >= 100, "--%s: enough burn_a/burn_b samples to judge shares (%d)" % (mode, nab))
        check(60 <= a <= 80, "--%s: burn_a holds 70 +- 10%% of burn_a + burn_b: %.1f%%" % (mode, a))
        # comms: profile_burn, the keeper (ctxlab) that started it, "[exiting]" for the
        # kernel's pid -1 in a task's last steps of exit; "[pid N]" (not resolved: a child
        # gone before its records were linked, seen on a loaded machine) at most 2%
        other = [s for s in stacks if s.split(";")[0] not in ("profile_burn", "ctxlab", "[exiting]")]
        nother = sum(stacks[s] for s in other)
        check(nother <= max(1, 0.02 * sum(stacks.values())),
              "--%s: stacks start with a known comm but %d samples %s" % (mode, nother, other[:2]))
        if mode == "forks":
            procs = int(first.split(" process")[0].split()[-1])
            check(procs >= 50, "--forks: samples from %d processes (short-lived children)" % procs)
            # the children's burn_a/burn_b frames resolve through their parent's image: each
            # such sample has main below it. (As a share of ALL samples this depends on the
            # build: under ASan, fork and the children's exit (LSan) take most of the CPU.)
            under_main = share(stacks, "burn_a", "main") + share(stacks, "burn_b", "main")
            burns = share(stacks, "burn_a") + share(stacks, "burn_b")
            check(burns > 0 and under_main >= 0.95 * burns,
                  "--forks: children gone before being read resolve through their parent's "
                  "image: %.1f%% of the samples in burn_a/burn_b, %.1f%% with main under them"
                  % (burns, under_main))
        # the same workload per task: documented, and the note must say it misses it
        burn = subprocess.Popen([BURN, "--" + mode, "2.5"])
        try:
            time.sleep(0.2)
            q = run(["profile", "-F", "99", "-d", "1.5s", "--pid", str(burn.pid)])
        finally:
            burn.wait(10)
        if q.returncode == 0:
            qn, _, qfirst = summary(q.stdout)
            print("per task, same workload: " + qfirst)
            print("  " + q.stderr.strip())
            check(qn * 2 < 99 * 1.5 and "per-task sampling misses" in q.stderr,
                  "--%s per task: %d samples at 99 Hz, with the note suggesting --cgroup" % (mode, qn))
        else:
            check(False, "profile --pid on profile_burn --%s (%s)" % (mode, q.stderr.strip()))


def cpu_usage_us(cg):
    with open(os.path.join(cg, "cpu.stat")) as f:
        for line in f:
            k, v = line.split()
            if k == "usage_usec":
                return int(v)
    raise AssertionError("no usage_usec in %s/cpu.stat" % cg)


def unsched_cpu0_s():
    """Seconds of CPU 0 that cpu-clock may count while a task is current but cpu.stat
    (the scheduler's run time) leaves out: steal (PARAVIRT_TIME_ACCOUNTING takes it out of the
    task clock), plus irq and softirq when IRQ_TIME_ACCOUNTING is, or may be, on (without it
    an interrupt's time is the interrupted task's in both). From /proc/stat."""
    irq_acct = True
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            irq_acct = "CONFIG_IRQ_TIME_ACCOUNTING=y" in f.read()
    except OSError:
        try:
            with open("/boot/config-" + os.uname().release) as f:
                irq_acct = "CONFIG_IRQ_TIME_ACCOUNTING=y" in f.read()
        except OSError:
            pass
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu0 "):
                v = [int(x) for x in line.split()[1:]]
                ticks = v[7] + ((v[5] + v[6]) if irq_acct else 0)
                return ticks / os.sysconf("SC_CLK_TCK")
    return 0.0


def test_cgroup_server(tmp):
    """serve --engine thread with 200 keep-alive connections, in a cgroup made here."""
    cg = os.path.join(CG2, "ctxlab-test-profile-%d" % os.getpid())
    os.mkdir(cg)

    def enter():
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write("0\n")
    srv = load = None
    try:
        srv = ctxlabtest.Serve("thread", "http", "--cpus", "0", preexec_fn=enter)
        load = subprocess.Popen(["taskset", "-c", "1", CTXLAB, "load", "-q", "-c", "200", "-d",
                                 "6s", "%s:%d" % srv.addr], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(1.0)  # connections up, threads running
        u0, t0, x0 = cpu_usage_us(cg), time.monotonic(), unsched_cpu0_s()
        out = os.path.join(tmp, "cgsrv")
        p = run(["profile", "-d", "1.5s", "-o", out, "--cgroup", cg])
        u1, t1, x1 = cpu_usage_us(cg), time.monotonic(), unsched_cpu0_s()
        q = run(["profile", "-d", "1s", "--pid", str(srv.pid)])
        check(p.returncode == 0, "profile --cgroup on the thread server exits 0 (%s)" % p.stderr.strip())
        if p.returncode == 0:
            n, dur, first = summary(p.stdout)
            print(first)
            # The prediction is the cgroup's cpu.stat over the sampling window itself, which
            # the profiler reads when it enables its events and after it disables them ("the
            # target used"). The test's own reading spans the whole command: the profiler's
            # start-up, symbolization and file writing (seconds for the ASan build on a busy
            # guest), during which the server's rate differs (the profiler competes for CPU 0;
            # the load's 6 s can run out): scaling that rate to the window gave 0.64-1.25x
            # here (ASan), and likely the 1.6-1.8x over of the ASan CI runs.
            used = float(first.split("the target used ")[1].split("s)")[0]) \
                if "the target used " in first else -1.0
            whole = (u1 - u0) / 1e6
            unsched = x1 - x0
            print("  cpu.stat: %.3f s in the sampling window, %.3f s over the %.2f s command "
                  "(%.0f samples at its mean rate); cpu0 steal/irq meanwhile %.3f s"
                  % (used, whole, t1 - t0, whole / (t1 - t0) * dur * 99, unsched))
            check(0 <= used <= whole + 0.005,
                  "the profiler's cpu.stat reading over its window (%.3f s) lies within the "
                  "test's over the whole command (%.3f s)" % (used, whole))
            want = used * 99
            check(want > 20, "the server is busy: %.2f s of CPU in the %.2f s window" % (used, dur))
            # Samples fall only while a task of the cgroup is on the CPU, one per 10.1 ms of
            # it: the blind spot this mode fixes is too FEW samples (at most 30% under). Over:
            # cpu-clock also counts the steal (and, with IRQ_TIME_ACCOUNTING, irq/softirq)
            # time that passes while the server is current, which cpu.stat leaves out: allowed
            # as all of CPU 0's over the command. Beyond that 20% + 2 samples (cpu.stat lags
            # by the running slice, <= 1 tick per reading): measured 0.97-1.01x here, while a
            # window mismatch (1.1-1.8x) or a timer firing early would exceed it.
            hi = 1.2 * (used + unsched) * 99 + 2
            check(0.7 * want <= n <= hi,
                  "--cgroup: %d samples vs %.0f from cpu.stat (%.3f s x 99 Hz): at most 30%% "
                  "under, at most %.0f over (+20%% + 2, with %.3f s steal/irq)"
                  % (n, want, used, hi, unsched))
            stacks = read_folded(os.path.join(out, "profile.folded"))
            check(all(s.startswith("ctxlab;") for s in stacks),
                  "every stack is the server's (comm ctxlab)")
        if q.returncode == 0:
            qn, qdur, qfirst = summary(q.stdout)
            print("per task, same server: " + qfirst)
            print("  " + q.stderr.strip())
        else:
            print("per task, same server: profile --pid failed: " + q.stderr.strip())
    finally:
        if load:
            load.kill()
            load.wait(10)
            load.stderr.close()
        if srv:
            srv.kill()
            for f in (srv.proc.stdout, srv.proc.stderr):
                f.close()
        for _ in range(100):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.05)
    check(not os.path.exists(cg), "the test's cgroup %s is removed" % cg)


def test_window_held(tmp):
    """Per cgroup, samples count only inside the window whose cpu.stat the profiler reports:
    held 400 ms after opening its events (CTXLAB_PROFILE_ATTACH_DELAY_MS, as a preemption on a
    loaded machine), events opened enabled counted ~1.8x the CPU it reported."""
    p = run(["profile", "-F", "999", "-d", "0.5s", "--", BURN, "2"],
            env={"CTXLAB_PROFILE_ATTACH_DELAY_MS": "400"})
    check(p.returncode == 0, "profile -- profile_burn held 400 ms exits 0 (%s)" % p.stderr.strip())
    if p.returncode:
        return
    n, dur, first = summary(p.stdout)
    print(first)
    used = float(first.split("the target used ")[1].split("s)")[0]) \
        if "the target used " in first else -1.0
    want = used * 999
    check(want >= 100 and 0.7 * want <= n <= 1.2 * want + 2,
          "held 400 ms before its %.2f s window: %d samples for the %.3f s the cgroup used "
          "there (~%.0f at 999 Hz, -30%%..+20%%)" % (dur, n, used, want))


def test_cgroup_refused(tmp):
    missing = os.path.join(CG2 or "/sys/fs/cgroup", "ctxlab-no-such-cgroup-%d" % os.getpid())
    p = run(["profile", "-d", "0.2", "--cgroup", missing])
    check(p.returncode == 1 and missing in p.stderr and "cannot open cgroup" in p.stderr,
          "a missing cgroup is refused naming the path (rc %d: %s)" % (p.returncode, p.stderr.strip()))
    if CG2:
        p = run(["profile", "-d", "0.2", "--cgroup", tmp])
        check(p.returncode == 1 and "not a cgroup of the perf_event hierarchy" in p.stderr,
              "a directory that is not a cgroup is refused (%s)" % p.stderr.strip())
    p = run(["profile", "--cgroup", missing, "--pid", "1"])
    check(p.returncode == 2 and "more than one target" in p.stderr, "--cgroup with --pid is refused")


def main():
    if not os.access(BURN, os.X_OK):
        skip("helper %s not built" % BURN)
    probe = run(["profile", "-q", "-d", "0.2", "--", BURN, "0.2"])
    if probe.returncode == 3 or "permission denied" in probe.stderr.lower():
        skip("perf_event_open not permitted here: " + probe.stderr.strip())
    global CG2, CG2_WHY
    CG2, CG2_WHY = cgroup2_mount()
    with tempfile.TemporaryDirectory(prefix="ctxlab-profile-") as tmp:
        out = test_burn(tmp)
        if out:
            test_pprof(out)
        test_cycles(tmp)
        test_offcpu(tmp)
        test_flame(tmp, out)
        test_cgroup_refused(tmp)
        if CG2:
            test_short_lived(tmp)
            test_window_held(tmp)
            test_cgroup_server(tmp)
        else:
            print("SKIP: cgroup sampling tests: " + CG2_WHY)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
