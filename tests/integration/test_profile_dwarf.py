#!/usr/bin/env python3
"""ctxlab profile --call-graph fp|dwarf|auto (DWARF unwinding of a copied user stack), unwind
quality, line numbers in pprof, and ctxlab stack --pid.

1. A C workload built here with -O2 -fomit-frame-pointer -g, profiled at -F 999: main calls a_top -> b_mid ->
   c_leaf (burning 3 units) and x_top -> y_leaf (1 unit): with dwarf and auto >= 90%
   of the c_leaf samples hold main;a_top;b_mid;c_leaf and reach _start; with fp fewer than
   half do (the frame-pointer walk loses the callers: the comparison is real); the 3:1 split
   (c_leaf vs y_leaf samples, the same loop run 3:1; 4 s each) holds within +-5 points of 75% in every
   mode (-F 999: ~2000 samples, one standard deviation ~1 point); the summary's
   "unwind" line says 0% complete for fp and >= 90% for dwarf, and fp warns naming the binary.
2. The same program built with frame pointers: auto keeps most stacks from the frame-pointer
   walk (counted "fp" in the unwind line) and they are still right (b_mid present).
3. A stack copy too small: a 100-deep recursion (rec) with --stack-size 1024 is reported as
   truncated (the unwind line, and a warning naming --stack-size), and the stacks through rec
   hold only the real chain's frames (rec, leaf, main, libc's start), never garbage; with --stack-size 65528 they reach _start.
4. pprof: profile.pb.gz holds real addresses and line numbers: `go tool pprof -lines -top`
   names abc.c:LINE of c_leaf's loop (skipped without go); the flame graph's tooltip has
   abc.c:LINE.
5. Debian's nginx under `load -c 50`: with dwarf >= 90% of its samples contain an ngx_ frame
   and reach main; with fp fewer than half do (the issue measured 22/174 with perf -g).
6. Off-CPU with dwarf: a -fomit-frame-pointer program sleeping in main -> waiter -> nap: >= 90%
   of its blocked time is under main;waiter;nap. `stack --pid PID --all` on the nginx tree shows
   the worker's event loop (ngx_process_events_and_timers) and the master.
7. `ctxlab stack --pid` on a program blocked in a known chain (main -> wait_a -> wait_b ->
   pause) prints that chain for its thread, with file:line and its stop time; `--cgroup` (root,
   cgroup v2: a cgroup of the test's) dumps the same process; the program goes on afterwards.
8. `stack --pid` on `serve --engine coro` with 3 idle connections: the thread's event loop and
   each parked connection's coroutine (conn_main <- trampoline), from the coroutine registry.
9. Usage errors: an unknown --call-graph mode, a --stack-size outside 8..65528: exit 2.
Skips (not fails) when perf_event_open is not permitted or gcc is missing.
"""
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctxlabtest  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "build/ctxlab")
failures = []

ABC = r"""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void hook(void) { sink++; }
__attribute__((noinline)) void c_leaf(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		sink += i * i ^ (sink >> 3); /* C_LOOP */
		HOOK
	}
}
__attribute__((noinline)) void b_mid(unsigned long n) { char pad[64]; pad[n & 63] = 1; sink += pad[3]; c_leaf(n); sink++; }
__attribute__((noinline)) void a_top(unsigned long n) { b_mid(n); sink++; }
__attribute__((noinline)) void y_leaf(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		sink += i * i ^ (sink >> 3);
		HOOK
	}
}
__attribute__((noinline)) void x_top(unsigned long n) { char pad[32]; pad[n & 31] = 2; sink += pad[1]; y_leaf(n); sink++; }
int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		a_top(300000);
		x_top(100000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
	return 0;
}
"""

REC = r"""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void leaf(void) { for (int i = 0; i < 20000; i++) sink += i ^ (sink >> 2); }
__attribute__((noinline)) void rec(int d) { volatile char pad[40]; pad[d % 40] = 1; if (d) rec(d - 1); else leaf(); sink += pad[0]; }
int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		rec(100);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
	return 0;
}
"""

SLP = r"""
#include <time.h>
__attribute__((noinline)) void nap(void) { struct timespec t = {0, 20000000}; nanosleep(&t, 0); }
__attribute__((noinline)) void waiter(void) { for (int i = 0; i < 40; i++) nap(); }
int main(void) { waiter(); return 0; }
"""

BLOCK = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void wait_b(void) { puts("ready"); fflush(stdout); pause(); puts("b"); }
__attribute__((noinline)) void wait_a(void) { wait_b(); puts("a"); }
int main(void) { wait_a(); return 0; }
"""


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


def build(tmp, name, src, flags):
    c = os.path.join(tmp, name + ".c")
    with open(c, "w") as f:
        f.write(src)
    exe = os.path.join(tmp, name)
    subprocess.run(["gcc", "-g", "-o", exe, c] + flags, check=True, capture_output=True)
    return exe


def profile(out, args, timeout=120):
    p = subprocess.run([CTXLAB, "profile", "-o", out, "--top", "0"] + args,
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode == 3 or "not permitted" in p.stderr or "permission" in p.stderr.lower():
        skip("perf_event_open not permitted here: " + p.stderr.strip()[:300])
    assert p.returncode == 0, "profile %s exited %d: %s" % (args, p.returncode, p.stderr)
    return p


def read_folded(path):
    stacks = {}
    for line in open(path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        stack, _, n = line.rpartition(" ")
        stacks[stack] = stacks.get(stack, 0) + int(n)
    return stacks


def unwind_line(stdout):
    m = re.search(r"^unwind (\w+): (\d+) user stacks \((\d+) dwarf, (\d+) fp\), ([\d.]+)% "
                  r"complete, ([\d.]+)% truncated, ([\d.]+)% unresolved$", stdout, re.M)
    assert m, "no unwind line in: " + stdout
    g = m.groups()
    return {"mode": g[0], "stacks": int(g[1]), "dwarf": int(g[2]), "fp": int(g[3]),
            "complete": float(g[4]), "truncated": float(g[5]), "unresolved": float(g[6])}


def test_cli():
    for args, want in ((["--call-graph", "xyz"], "unknown call graph mode (use fp, dwarf or auto)"),
                       (["--stack-size", "70000"], "8..65528"), (["--stack-size", "4"], "8..65528")):
        p = subprocess.run([CTXLAB, "profile"] + args + ["--", "true"], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 2 and want in p.stderr, "profile %s: exit 2, %r (%d %s)"
              % (" ".join(args), want, p.returncode, p.stderr.strip()))


def test_abc(tmp):
    exe = build(tmp, "abc", ABC.replace("HOOK", ""), ["-O2", "-fomit-frame-pointer"])
    res = {}
    for mode in ("fp", "dwarf", "auto"):
        out = os.path.join(tmp, "abc-" + mode)
        p = profile(out, ["-F", "999", "--call-graph", mode, "--", exe, "4"])
        st = {s: c for s, c in read_folded(os.path.join(out, "profile.folded")).items()
              if s.startswith("abc;")}
        c_all = sum(c for s, c in st.items() if "c_leaf" in s.split(";"))
        y_all = sum(c for s, c in st.items() if "y_leaf" in s.split(";"))
        c_ok = sum(c for s, c in st.items() if "main;a_top;b_mid;c_leaf" in s)
        c_root = sum(c for s, c in st.items()
                     if "main;a_top;b_mid;c_leaf" in s and s.split(";")[1] == "_start")
        split = 100.0 * c_all / (c_all + y_all) if c_all + y_all else 0
        u = unwind_line(p.stdout)
        res[mode] = (c_all, c_ok, c_root, split, u, p.stderr)
        print("  %-5s c_leaf %d, with a_top;b_mid %d, reaching _start %d; split %.1f%%; %s"
              % (mode, c_all, c_ok, c_root, split, u), flush=True)
        check(c_all >= 300, "%s: enough c_leaf samples (%d)" % (mode, c_all))
        check(abs(split - 75) <= 5, "%s: 3:1 split holds (%.1f%% in c_leaf)" % (mode, split))
        with open(os.path.join(out, "profile.folded")) as f:
            check(f.readline().startswith("# ctxlab unwind " + mode + ":"),
                  "%s: profile.folded starts with the unwind quality line" % mode)
        svg = open(os.path.join(out, "flame.svg")).read()
        check("% of user stacks complete" in svg, "%s: flame graph shows the unwind quality" % mode)
    for mode in ("dwarf", "auto"):
        c_all, c_ok, c_root, _, u, _ = res[mode]
        check(c_ok >= 0.9 * c_all and c_root >= 0.9 * c_all,
              "%s: >= 90%% of c_leaf samples are main;a_top;b_mid;c_leaf from _start (%d, %d of %d)"
              % (mode, c_ok, c_root, c_all))
        check(u["complete"] >= 90 and u["dwarf"] > 0.9 * u["stacks"],
              "%s: unwind line says >= 90%% complete, by dwarf (%s)" % (mode, u))
    c_all, c_ok, _, _, u, err = res["fp"]
    check(c_ok < 0.5 * c_all, "fp: the frame-pointer walk loses the callers (%d of %d right)"
          % (c_ok, c_all))
    check(u["complete"] < 10 and u["fp"] == u["stacks"],
          "fp: unwind line says the stacks are incomplete (%s)" % u)
    check("incomplete" in err and "'abc'" in err and "--call-graph dwarf" in err,
          "fp: warning names the binary and what to do: " + err.strip()[-300:])
    return exe


def test_auto_fp(tmp):
    exe = build(tmp, "abcfp", ABC.replace("HOOK", "if (!(i & 0xfffff)) hook();"),
                ["-O2", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"])
    out = os.path.join(tmp, "abcfp-auto")
    p = profile(out, ["-F", "499", "--", exe, "2"])
    u = unwind_line(p.stdout)
    st = read_folded(os.path.join(out, "profile.folded"))
    leaf = sum(c for s, c in st.items() if s.startswith("abcfp;") and "c_leaf" in s.split(";"))
    right = sum(c for s, c in st.items() if s.startswith("abcfp;") and "main;a_top;b_mid;c_leaf" in s)
    print("  auto on a frame-pointer build: %s; c_leaf %d, right %d" % (u, leaf, right))
    check(u["mode"] == "auto" and u["fp"] >= 0.5 * u["stacks"],
          "auto keeps the frame-pointer walk for a binary built with frame pointers (%s)" % u)
    check(leaf > 50 and right >= 0.9 * leaf, "auto: its stacks are right (%d of %d)" % (right, leaf))


def test_truncated(tmp):
    exe = build(tmp, "rec", REC, ["-O2", "-fomit-frame-pointer"])
    out = os.path.join(tmp, "rec-small")
    p = profile(out, ["-F", "299", "--call-graph", "dwarf", "--stack-size", "1024", "--", exe, "1.5"])
    u = unwind_line(p.stdout)
    st = {s: c for s, c in read_folded(os.path.join(out, "profile.folded")).items()
          if s.startswith("rec;")}
    # the recursion's stacks (others, e.g. main;clock_gettime, are shallow and complete)
    # (the root, comm, is "rec" too: look below it) the truncated ones, not from _start
    trunc = [s.split(";")[1:] for s in st if "rec" in s.split(";")[1:]
             and s.split(";")[1] != "_start"]
    frames = set(f for fr in trunc for f in fr if not f.endswith("_[k]"))
    print("  --stack-size 1024: %s; user frames %s" % (u, sorted(frames)))
    check(u["truncated"] >= 80, "a 1 KiB copy of a 100-deep recursion is reported truncated (%s)" % u)
    # (main and libc's start too: a shallow recursion's copy may end just above them)
    check(frames <= {"rec", "leaf", "main", "__libc_start_call_main", "__libc_start_main"},
          "truncated stacks hold no garbage frames: %s" % sorted(frames))
    check("--stack-size" in p.stderr and "incomplete" in p.stderr,
          "the warning says to raise --stack-size: " + p.stderr.strip()[-300:])
    out = os.path.join(tmp, "rec-big")
    p = profile(out, ["-F", "299", "--call-graph", "dwarf", "--stack-size", "65528", "--", exe, "1.5"])
    u = unwind_line(p.stdout)
    print("  --stack-size 65528: %s" % u)
    check(u["complete"] >= 90, "with a 64 KiB copy they reach _start (%s)" % u)


def read_varint(b, i):
    v = s = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7f) << s
        s += 7
        if x < 0x80:
            return v, i


def pprof_fields(b):
    """[(field, wiretype, value)] of one message (value: int or bytes)."""
    out, i = [], 0
    while i < len(b):
        key, i = read_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise AssertionError("wire type %d" % wt)
        out.append((f, wt, v))
    return out


def test_pprof_lines(tmp, exe):
    out = os.path.join(tmp, "abc-dwarf")
    src_line = next(n for n, l in enumerate(ABC.lstrip("\n").splitlines(), 1) if "C_LOOP" in l)
    data = gzip.open(os.path.join(out, "profile.pb.gz")).read()
    top = pprof_fields(data)
    strings = [v.decode() for f, wt, v in top if f == 6]
    locs = [pprof_fields(v) for f, wt, v in top if f == 4]
    maps = [pprof_fields(v) for f, wt, v in top if f == 3]
    funcs = {}
    for fn in (pprof_fields(v) for f, wt, v in top if f == 5):
        d = {f: v for f, wt, v in fn}
        funcs[d.get(1)] = (strings[d.get(2, 0)], strings[d.get(4, 0)])
    addr = [d.get(3, 0) for d in ({f: v for f, wt, v in l} for l in locs)]
    check(sum(1 for a in addr if a) >= 0.9 * len(addr), "pprof locations carry real addresses "
          "(%d of %d)" % (sum(1 for a in addr if a), len(addr)))
    bid = [strings[{f: v for f, wt, v in m}.get(6, 0)] for m in maps]
    check(any(re.fullmatch(r"[0-9a-f]{40}", b or "") for b in bid),
          "pprof mappings carry build ids (%s)" % bid[:4])
    lines = []
    for l in locs:
        for f, wt, v in l:
            if f == 4:
                d = {ff: vv for ff, _, vv in pprof_fields(v)}
                lines.append((funcs.get(d.get(1), ("?", "?")), d.get(2, 0)))
    c_lines = [ln for (name, file), ln in lines if name == "c_leaf" and file.endswith("abc.c")]
    print("  c_leaf lines in pprof: %s (the loop is line %d)" % (sorted(set(c_lines)), src_line))
    check(src_line in c_lines, "pprof has c_leaf at abc.c:%d" % src_line)
    svg = open(os.path.join(out, "flame.svg")).read()
    check("abc.c:%d" % src_line in svg, "the flame graph's tooltip shows abc.c:%d" % src_line)
    go = shutil.which("go") or ("/usr/lib/go/bin/go" if os.access("/usr/lib/go/bin/go", os.X_OK) else None)
    if not go:
        print("SKIP: go tool pprof -lines: go not installed")
        return
    p = subprocess.run([go, "tool", "pprof", "-lines", "-top", os.path.join(out, "profile.pb.gz")],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=tmp, GOFLAGS="-mod=mod", GOPATH=tmp))
    check(p.returncode == 0 and ("abc.c:%d" % src_line) in p.stdout,
          "go tool pprof -lines names abc.c:%d: %s" % (src_line, (p.stdout + p.stderr)[:600]))


def test_nginx(tmp):
    ok, why = ctxlabtest.engine_usable("nginx")
    if not ok:
        print("SKIP: nginx: " + why)
        return
    with ctxlabtest.Serve("nginx", "http") as s:
        load = subprocess.Popen([CTXLAB, "load", "-c", "50", "-t", "1", "-d", "12s", "-q",
                                 "%s:%d" % s.addr], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for mode in ("dwarf", "fp"):
                out = os.path.join(tmp, "nginx-" + mode)
                p = profile(out, ["--call-graph", mode, "--pid", str(s.pid), "-d", "3"])
                st = {x: c for x, c in read_folded(os.path.join(out, "profile.folded")).items()
                      if x.startswith("nginx;")}
                tot = sum(st.values())
                ngx = sum(c for x, c in st.items() if any(f.startswith("ngx_") for f in x.split(";")))
                good = sum(c for x, c in st.items()
                           if "main" in x.split(";") and any(f.startswith("ngx_") for f in x.split(";")))
                print("  nginx %s: %d samples, %d with ngx_, %d with ngx_ and main; %s"
                      % (mode, tot, ngx, good, unwind_line(p.stdout)), flush=True)
                check(tot >= 30, "nginx %s: enough samples (%d)" % (mode, tot))
                if mode == "dwarf":
                    check(good >= 0.9 * tot, "nginx dwarf: >= 90%% of samples have ngx_ and reach "
                          "main (%d of %d)" % (good, tot))
                else:
                    check(good < 0.5 * tot, "nginx fp: the frame-pointer walk is mostly wrong "
                          "(%d of %d right)" % (good, tot))
            p = subprocess.run([CTXLAB, "stack", "--pid", str(s.pid), "--all"],
                               capture_output=True, text=True, timeout=60)
            print("  " + p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr)
            # (under load the worker may be anywhere in a request, not in epoll_wait: its event
            # loop function is on its stack whatever it does)
            check(p.returncode == 0 and "ngx_process_events_and_timers" in p.stdout
                  and "ngx_master_process_cycle" in p.stdout,
                  "stack --all on the nginx tree shows the worker's event loop "
                  "(ngx_process_events_and_timers) and the master: " + p.stdout[-600:])
        finally:
            load.kill()
            load.wait()


def test_offcpu(tmp):
    exe = build(tmp, "slp", SLP, ["-O2", "-fomit-frame-pointer"])
    out = os.path.join(tmp, "slp-dwarf")
    profile(out, ["--off-cpu", "--call-graph", "dwarf", "--", exe])
    st = {s: c for s, c in read_folded(os.path.join(out, "offcpu.folded")).items()
          if s.startswith("slp;")}
    tot = sum(st.values())
    good = sum(c for s, c in st.items() if "main;waiter;nap;" in s)
    print("  off-CPU dwarf: %d us blocked, %d us under main;waiter;nap" % (tot, good))
    check(tot >= 500000 and good >= 0.9 * tot,
          "off-CPU with dwarf: the blocked time is under main;waiter;nap (%d of %d us)" % (good, tot))


def cgroup2_dir():
    """A fresh cgroup v2 directory (root only), or None."""
    if os.geteuid() != 0:
        return None
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            d = os.path.join(left.split()[4], "ctxlab-test-stack-%d" % os.getpid())
            try:
                os.mkdir(d)
                return d
            except OSError:
                return None
    return None


def test_stack_coro(tmp):
    import socket
    with ctxlabtest.Serve("coro", "http") as s:
        conns = [socket.create_connection(s.addr) for _ in range(3)]
        try:
            time.sleep(0.3)  # each connection's coroutine is parked waiting for a request
            p = subprocess.run([CTXLAB, "stack", "--pid", str(s.pid)], capture_output=True,
                               text=True, timeout=60)
            print(p.stdout[-1500:] + p.stderr)
            blocks = re.findall(r"^coroutine 0x[0-9a-f]+ \(suspended[^\n]*\n((?:  #[^\n]*\n)*)",
                                p.stdout, re.M)
            ok = [b for b in blocks if "conn_main" in b and "trampoline" in b]
            check(p.returncode == 0 and len(ok) >= 3,
                  "stack on the coro engine shows each parked connection's coroutine "
                  "(conn_main <- trampoline): %d of %d" % (len(ok), len(blocks)))
            check(re.search(r"econn_loop_run", p.stdout) is not None,
                  "and the thread's event loop (econn_loop_run)")
        finally:
            for c in conns:
                c.close()


def test_stack(tmp):
    exe = build(tmp, "block", BLOCK, ["-O2", "-fomit-frame-pointer"])
    proc = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        p = subprocess.run([CTXLAB, "stack", "--pid", str(proc.pid)], capture_output=True,
                           text=True, timeout=60)
        print(p.stdout + p.stderr)
        check(p.returncode == 0, "stack --pid exits 0 (%d)" % p.returncode)
        names = re.findall(r"^\s*#\d+\s+0x[0-9a-f]+\s+(\S+)", p.stdout, re.M)
        chain = [n for n in names if n in ("pause", "wait_b", "wait_a", "main")]
        check(chain == ["pause", "wait_b", "wait_a", "main"],
              "the blocked chain pause <- wait_b <- wait_a <- main is printed (%s)" % names)
        check(re.search(r"block\.c:\d+", p.stdout) is not None, "frames carry file:line")
        check(re.search(r"stopped for [\d.]+ ms", p.stdout) is not None,
              "it says how long the thread was stopped")
        cg = cgroup2_dir()
        if cg:
            try:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(proc.pid))
                p = subprocess.run([CTXLAB, "stack", "--cgroup", cg], capture_output=True,
                                   text=True, timeout=60)
                names = re.findall(r"^\s*#\d+\s+0x[0-9a-f]+\s+(\S+)", p.stdout, re.M)
                check(p.returncode == 0 and ("pid %d (block)" % proc.pid) in p.stdout and
                      [n for n in names if n in ("wait_b", "wait_a", "main")] ==
                      ["wait_b", "wait_a", "main"],
                      "stack --cgroup dumps the cgroup's process (%s)" % (p.stdout + p.stderr)[:300])
            finally:
                with open(os.path.join(os.path.dirname(cg), "cgroup.procs"), "w") as f:
                    f.write(str(proc.pid))
                os.rmdir(cg)
        else:
            print("SKIP: stack --cgroup: no writable cgroup v2 here")
        proc.send_signal(signal.SIGUSR1)  # pause() returns: the process is alive and detached
        proc.wait(10)
        check(proc.returncode == -signal.SIGUSR1, "the process was detached, alive (%s)"
              % proc.returncode)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    if not shutil.which("gcc"):
        skip("gcc not installed")
    tmp = tempfile.mkdtemp(prefix="ctxlab-dwarf-")
    try:
        only = sys.argv[1:]
        tests = [("cli", test_cli), ("abc", lambda: test_abc(tmp)), ("auto_fp", lambda: test_auto_fp(tmp)),
                 ("truncated", lambda: test_truncated(tmp)),
                 ("pprof_lines", lambda: test_pprof_lines(tmp, None)),
                 ("nginx", lambda: test_nginx(tmp)), ("offcpu", lambda: test_offcpu(tmp)),
                 ("stack", lambda: test_stack(tmp)), ("stack_coro", lambda: test_stack_coro(tmp))]
        for name, fn in tests:
            if only and name not in only and not (name == "pprof_lines" and "abc" in only):
                continue
            print("== " + name, flush=True)
            try:
                fn()
            except AssertionError as e:
                check(False, "%s: %s" % (name, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failed" % len(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
