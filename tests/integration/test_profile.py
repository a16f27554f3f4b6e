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
Skips (not fails) when perf_event_open is not permitted here.
"""
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

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
    sys.exit(0)


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([CTXLAB] + args, capture_output=True, text=True, timeout=timeout, env=e)


def read_folded(path):
    stacks = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
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


def test_burn(tmp):
    out = os.path.join(tmp, "burn")
    p = run(["profile", "-F", "499", "-o", out, "--", BURN, "1.5"])
    check(p.returncode == 0, "profile -- profile_burn exits 0 (rc %d: %s)" % (p.returncode, p.stderr.strip()))
    if p.returncode:
        return None
    print(p.stdout)
    first = p.stdout.splitlines()[0]
    nsamples = int(first.split()[1])
    stacks = read_folded(os.path.join(out, "profile.folded"))
    check(sum(stacks.values()) == nsamples,
          "folded counts sum to the %d samples printed (%d)" % (nsamples, sum(stacks.values())))
    check(nsamples >= 50, "enough samples to judge shares (%d)" % nsamples)
    a, b = share(stacks, "burn_a", "main"), share(stacks, "burn_b", "main")
    check(60 <= a <= 80, "burn_a (under main) has 70 +- 10%% of the samples: %.1f%%" % a)
    check(20 <= b <= 40, "burn_b (under main) has 30 +- 10%% of the samples: %.1f%%" % b)
    check(all(s.startswith("profile_burn;") for s in stacks), "every stack starts with the comm")
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
    check(p.returncode == 2 and "unknown event 'bogus'" in p.stderr, "an unknown event is refused")


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


def main():
    if not os.access(BURN, os.X_OK):
        skip("helper %s not built" % BURN)
    probe = run(["profile", "-q", "-d", "0.2", "--", BURN, "0.2"])
    if probe.returncode == 3 or "permission denied" in probe.stderr.lower():
        skip("perf_event_open not permitted here: " + probe.stderr.strip())
    with tempfile.TemporaryDirectory(prefix="ctxlab-profile-") as tmp:
        out = test_burn(tmp)
        if out:
            test_pprof(out)
        test_cycles(tmp)
        test_offcpu(tmp)
        test_flame(tmp, out)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
