#!/usr/bin/env python3
"""ctxlab profile --alloc end to end, against the known workloads of tests/helpers/alloc_workload.c
(the ground truth is the helper's own code: what each function allocates and frees).

1. exact, `ab`: workload_a 1000 x 1000 B allocated and freed, workload_b 3000 x 1000 B kept:
   alloc_objects 1000 / 3000, alloc_space 1e6 / 3e6, in use only workload_b (3000, 3e6), from
   the folded files and from heap.pb.gz decoded here (protobuf, by hand); the summary counts
   4000 malloc + 1 calloc calls and 1000 frees.
2. sampled, `ab 20000` with --alloc-sample 4096: bytes within +-5% of the truth (workload_a
   2e7 allocated, workload_b 6e7 allocated and in use). Expected error (Horvitz-Thompson,
   p = 1 - exp(-1000/4096) per 1000 B block): sd 0.78% for workload_b, 1.34% for workload_a,
   so 5% is 6.4 and 3.7 sd; far fewer records than calls; marked as estimates.
3. realloc chain (malloc 100, 10 reallocs doubling): 11 allocations of 204700 B in all, one
   block of 102400 B in use; reallocarray twice: 2 allocations, 2000 B in use. memalign, posix_memalign, aligned_alloc, valloc, pvalloc, calloc:
   one call each, each function's bytes in use = what it asked for.
4. 8 threads x 10000 mallocs, freed by main after join: 80000 objects / 5120000 B allocated in
   thread_work, none in use, no unmatched free (nothing lost); each thread's first allocation
   is made inside pthread_getattr_np (no deadlock).
5. heap over time vs valgrind massif on `curve` (8 x 512 KiB, 6 freed, 2 more): the peak within
   5% of massif's, the sequence of heap sizes equal to massif's snapshots, the peak's stacks
   (peak.folded: grow_phase 4 MiB) as in massif's peak snapshot; heap-time.svg is well-formed with the peak
   marked (skipped without valgrind).
6. go tool pprof opens heap.pb.gz for each of the four sample types (skipped without go);
   heaptrack on the same `ab` run: its calls per function equal our alloc_objects (1000 /
   3000) and its peak for workload_b is within 5% of our peak.folded (3e6), workload_a none
   (skipped without heaptrack).
7. A process tree (sh running the helper twice) is followed through fork and exec; a command
   stopped by -d (SIGTERM) keeps what it recorded and counted; calls made before an exec
   are counted (sampled mode: counts, not records).
8. Clear errors: a static binary, a set-user-ID binary (root only), a program with its own
   malloc (compiled here with cc; skipped without it), --alloc with --pid.
"""
import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import ctxlabtest as t

HELPER = os.path.join(t.BUILD, "alloc_workload")
SANITIZED = False


def run(args, timeout=120):
    return subprocess.run([t.CTXLAB] + args, capture_output=True, text=True, timeout=timeout)


def prof(tmp, name, mode, sample="exact", extra=()):
    out = os.path.join(tmp, name)
    r = run(["profile", "--alloc", "--alloc-sample", sample, "-o", out] + list(extra) +
            ["--", HELPER] + mode)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return out, r.stdout


def folded_by_leaf(path):
    """{leaf function: bytes} summed over the stacks of a folded file."""
    d = {}
    for line in open(path):
        stack, n = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1]
        d[leaf] = d.get(leaf, 0) + int(n)
    return d


# ---- a minimal protobuf reader for profile.proto ------------------------------------------

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << s
        s += 7
        if not c & 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def packed(v, wt):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def pprof_by_leaf(path):
    """{sample type: {leaf function: value}} from a gzipped profile.proto."""
    data = gzip.open(path).read()
    strings, types, samples, locs, fns = [], [], [], {}, {}
    for f, wt, v in fields(data):
        if f == 6:
            strings.append(v.decode())
        elif f == 1:
            types.append(dict((ff, vv) for ff, _, vv in fields(v)))
        elif f == 2:
            ids, vals = [], []
            for ff, w, vv in fields(v):
                if ff == 1:
                    ids += packed(vv, w)
                elif ff == 2:
                    vals += packed(vv, w)
            samples.append((ids, vals))
        elif f == 4:
            lid = fid = 0
            for ff, _, vv in fields(v):
                if ff == 1:
                    lid = vv
                elif ff == 4:
                    fid = dict((a, c) for a, _, c in fields(vv)).get(1, 0)
            locs[lid] = fid
        elif f == 5:
            d = dict((ff, vv) for ff, _, vv in fields(v))
            fns[d[1]] = d.get(2, 0)
    names = [strings[ty[1]] for ty in types]
    out = {n: {} for n in names}
    for ids, vals in samples:
        leaf = strings[fns[locs[ids[0]]]]
        for n, v in zip(names, vals):
            if v:
                out[n][leaf] = out[n].get(leaf, 0) + v
    return out, [(strings[ty[1]], strings[ty[2]]) for ty in types]


def test_exact(tmp):
    out, so = prof(tmp, "ab", ["ab"])
    a = folded_by_leaf(os.path.join(out, "alloc.folded"))
    u = folded_by_leaf(os.path.join(out, "inuse.folded"))
    assert a.get("workload_a") == 1000000 and a.get("workload_b") == 3000000, a
    assert u.get("workload_b") == 3000000 and "workload_a" not in u, u
    p, types = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    assert types == [("alloc_objects", "count"), ("alloc_space", "bytes"),
                     ("inuse_objects", "count"), ("inuse_space", "bytes")], types
    assert p["alloc_objects"]["workload_a"] == 1000, p
    assert p["alloc_objects"]["workload_b"] == 3000, p
    assert p["alloc_space"]["workload_a"] == 1000000, p
    assert p["inuse_objects"]["workload_b"] == 3000, p
    assert p["inuse_space"]["workload_b"] == 3000000, p
    assert "workload_a" not in p["inuse_objects"] and "workload_a" not in p["inuse_space"], p
    # whole-program counts (an ASan build's runtime adds a malloc of its own)
    assert SANITIZED or "exact; 4001 calls (malloc 4000, calloc 1), 1000 frees" in so, so
    assert re.search(r"^\s*2\.86MiB .* workload_b$", so, re.M), so
    for f in ("alloc.svg", "inuse.svg", "heap-time.svg"):
        ET.parse(os.path.join(out, f))
    return out


def test_sampled(tmp):
    n = 20000
    out, so = prof(tmp, "sampled", ["ab", str(n)], sample="4096")
    a = folded_by_leaf(os.path.join(out, "alloc.folded"))
    u = folded_by_leaf(os.path.join(out, "inuse.folded"))
    for what, got, want in (("alloc workload_a", a.get("workload_a", 0), 1000 * n),
                            ("alloc workload_b", a.get("workload_b", 0), 3000 * n),
                            ("inuse workload_b", u.get("workload_b", 0), 3000 * n)):
        t.log("%s: %d, truth %d (%+.2f%%)" % (what, got, want, 100.0 * (got - want) / want))
        assert abs(got - want) <= 0.05 * want, (what, got, want)
    assert "workload_a" not in u, u
    m = re.search(r"(\d+) calls .* (\d+) records", so)
    assert m and int(m.group(2)) < int(m.group(1)) / 2, so
    assert "estimates" in so, so
    p, _ = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    ob = p["alloc_objects"]["workload_b"]
    assert abs(ob - 3 * n) <= 0.05 * 3 * n, ob


def test_realloc_align(tmp):
    out, so = prof(tmp, "realloc", ["realloc"])
    p, _ = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    assert p["alloc_objects"]["realloc_chain"] == 11, p
    assert p["alloc_space"]["realloc_chain"] == 100 * (2 ** 11 - 1), p
    assert p["inuse_objects"]["realloc_chain"] == 1, p
    assert p["inuse_space"]["realloc_chain"] == 102400, p
    assert p["alloc_objects"]["do_reallocarray"] == 2, p
    assert p["inuse_space"]["do_reallocarray"] == 2000, p
    assert SANITIZED or "malloc 1, calloc 1, realloc 12" in so, so
    out, so = prof(tmp, "align", ["align"])
    p, _ = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    want = {"do_memalign": 1000, "do_posix_memalign": 2000, "do_aligned_alloc": 4096,
            "do_valloc": 3000, "do_calloc": 5000, "do_pvalloc": 5000}
    for fn, b in want.items():
        assert p["inuse_space"].get(fn) == b and p["inuse_objects"].get(fn) == 1, (fn, p)
    assert ("calloc 2, memalign 1, posix_memalign 1, aligned_alloc 1, valloc 1, pvalloc 1"
            in so), so  # (ASan's runtime adds a malloc, not these)


def test_threads(tmp):
    out, so = prof(tmp, "threads", ["threads", "8", "10000"])
    p, _ = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    assert p["alloc_objects"]["thread_work"] == 80000, p
    assert p["alloc_space"]["thread_work"] == 80000 * 64, p
    assert "thread_work" not in p["inuse_objects"], p
    assert "note:" not in so, so  # no unmatched free, nothing dropped or damaged


def massif(tmp):
    mo = os.path.join(tmp, "massif.out")
    r = subprocess.run(["valgrind", "--tool=massif", "--massif-out-file=" + mo,
                        "--time-unit=B", HELPER, "curve"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    heaps, peak_tree = [], {}
    in_peak = False
    for line in open(mo):
        m = re.match(r"mem_heap_B=(\d+)", line)
        if m:
            heaps.append(int(m.group(1)))
        if line.startswith("heap_tree="):
            in_peak = line.strip() == "heap_tree=peak"
            continue
        # the peak tree's direct children: " n8: 4194304 0x...: grow_phase (file:line)"
        m = re.match(r"^ n\d+: (\d+) 0x[0-9A-Fa-f]+: (\w+) ", line)
        if in_peak and m:
            peak_tree[m.group(2)] = peak_tree.get(m.group(2), 0) + int(m.group(1))
        if line.startswith("snapshot="):
            in_peak = False
    return heaps, peak_tree


def test_massif(tmp):
    if not shutil.which("valgrind"):
        t.skip("valgrind not installed (apt-get install -y valgrind)")
    if SANITIZED:
        t.skip("the helper is built with ASan here: valgrind cannot run it")
    heaps, peak_tree = massif(tmp)
    out, so = prof(tmp, "curve", ["curve"])
    curve = [int(float(l.split("\t")[1])) for l in open(os.path.join(out, "heap-time.tsv"))
             if not l.startswith("#")]
    dedup = lambda xs: [x for i, x in enumerate(xs) if i == 0 or x != xs[i - 1]]
    mh = dedup([h for h in heaps if h > 0])
    t.log("massif heap sizes: %s" % mh)
    t.log("ctxlab heap sizes: %s" % dedup(curve))
    assert abs(max(curve) - max(heaps)) <= 0.05 * max(heaps), (max(curve), max(heaps))
    assert dedup(curve) == mh, (dedup(curve), mh)
    peak = folded_by_leaf(os.path.join(out, "peak.folded"))
    svg = ET.parse(os.path.join(out, "heap-time.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.find(".//%scircle[@id='peak']" % ns) is not None
    texts = " ".join("".join(e.itertext()) for e in svg.iter(ns + "text"))
    t.log("massif peak tree: %s" % peak_tree)
    assert peak_tree.get("grow_phase", 0) == 8 * 512 * 1024, peak_tree
    assert "grow_phase" in texts and "4.00 MiB" in texts, texts
    assert peak.get("grow_phase") == peak_tree["grow_phase"], peak


def heaptrack_split(tmp):
    """{function: (calls, peak bytes)} from heaptrack_print's "MOST CALLS" and "PEAK MEMORY"
    sections (the first line after each entry names the allocating function)."""
    base = os.path.join(tmp, "ht")
    r = subprocess.run(["heaptrack", "-o", base, HELPER, "ab"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    files = [f for f in os.listdir(tmp) if f.startswith("ht.")]
    assert files, r.stdout
    r = subprocess.run(["heaptrack_print", "-f", os.path.join(tmp, files[0])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    mult = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
    calls, peak = {}, {}
    lines = r.stdout.splitlines()
    for i, line in enumerate(lines[:-1]):
        m = re.match(r"^(\d+) calls to allocation functions with ([\d.]+)([KMG]?)B? peak", line)
        if m:
            calls[lines[i + 1].strip()] = int(m.group(1))
        m = re.match(r"^([\d.]+)([KMG]?)B? peak memory consumed over (\d+) calls from", line)
        if m:
            peak[lines[i + 1].strip()] = float(m.group(1)) * mult[m.group(2)]
    return calls, peak


def test_heaptrack(tmp, out):
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        t.skip("heaptrack not installed (apt-get install -y heaptrack)")
    if SANITIZED:
        t.skip("the helper is built with ASan here: heaptrack's preload would come first")
    calls, peak = heaptrack_split(tmp)
    t.log("heaptrack: calls %s, peak %s" % (
        {k: calls[k] for k in ("workload_a", "workload_b") if k in calls},
        {k: peak[k] for k in ("workload_b",) if k in peak}))
    p, _ = pprof_by_leaf(os.path.join(out, "heap.pb.gz"))
    pk = folded_by_leaf(os.path.join(out, "peak.folded"))
    for fn in ("workload_a", "workload_b"):
        assert calls.get(fn) == p["alloc_objects"][fn], (fn, calls, p["alloc_objects"])
    assert abs(peak["workload_b"] - pk["workload_b"]) <= 0.05 * pk["workload_b"], (peak, pk)
    assert "workload_a" not in pk and peak.get("workload_a", 0) == 0, (peak, pk)


def test_go_pprof(out):
    go = shutil.which("go")
    if not go:
        t.skip("go not installed: heap.pb.gz checked by the decoder above only")
    env = dict(os.environ, GOFLAGS="", GOPROXY="off", HOME=os.environ.get("HOME", "/tmp"))
    want = {"alloc_objects": "3000", "alloc_space": "2.86MB", "inuse_objects": "3000",
            "inuse_space": "2.86MB"}
    for st, v in want.items():
        r = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=" + st,
                            os.path.join(out, "heap.pb.gz")], capture_output=True, text=True,
                           timeout=120, env=env)
        assert r.returncode == 0, (st, r.stderr)
        assert ("Type: " + st) in r.stdout, r.stdout
        assert re.search(r"^\s*%s\s.*\sworkload_b$" % re.escape(v), r.stdout, re.M), \
            (st, r.stdout)


def test_tree_and_stop(tmp):
    sh = shutil.which("sh")
    out = os.path.join(tmp, "tree")
    r = run(["profile", "--alloc", "--alloc-sample", "exact", "-o", out, "--", sh, "-c",
             "%s ab; %s ab" % (HELPER, HELPER)])
    assert r.returncode == 0, r.stderr
    a = folded_by_leaf(os.path.join(out, "alloc.folded"))
    assert a.get("workload_b") == 6000000 and a.get("workload_a") == 2000000, a
    m = re.search(r"(\d+) process images", r.stdout)
    assert m and int(m.group(1)) >= 3, r.stdout  # sh, and each child after fork and exec
    out = os.path.join(tmp, "stopped")
    r = run(["profile", "--alloc", "--alloc-sample", "exact", "-d", "1s", "-o", out, "--",
             HELPER, "hold"])
    assert r.returncode == 0, r.stderr
    u = folded_by_leaf(os.path.join(out, "inuse.folded"))
    assert u.get("workload_b") == 3000000, u
    # every call counted though the process died by SIGTERM (the counters live in the file)
    assert SANITIZED or "exact; 4001 calls (malloc 4000, calloc 1), 1000 frees" in r.stdout, \
        r.stdout
    assert re.search(r"exact; \d+ calls \(malloc 400\d, calloc 1\), 1000 frees", r.stdout), r.stdout
    # sampled: few records, but the calls of sh and of both helpers counted, across exec
    r = run(["profile", "--alloc", "--top", "0", "--", sh, "-c", "%s ab; exec %s ab" % (
        HELPER, HELPER)])
    assert r.returncode == 0, r.stderr
    m = re.search(r"sampled; (\d+) calls \(malloc (\d+)", r.stdout)
    assert m and int(m.group(2)) >= 8000 and int(m.group(1)) >= 8002, r.stdout


def cc():
    return shutil.which("cc") or shutil.which("gcc")


def test_errors(tmp):
    r = run(["profile", "--alloc", "--pid", "1"])
    assert r.returncode == 2 and "-- CMD" in r.stderr, r.stderr
    r = run(["profile", "--alloc-sample", "exact", "--", HELPER])
    assert r.returncode == 2 and "needs --alloc" in r.stderr, r.stderr
    r = run(["profile", "--alloc", "--alloc-sample", "0", "--", HELPER])
    assert r.returncode == 2, r.stderr
    c = cc()
    if not c:
        t.skip("no C compiler to build a static and an own-allocator program")
    src = os.path.join(tmp, "s.c")
    open(src, "w").write("#include <stdlib.h>\nint main(void){free(malloc(10));return 0;}\n")
    exe = os.path.join(tmp, "static")
    b = subprocess.run([c, "-static", "-o", exe, src], capture_output=True, text=True)
    if b.returncode == 0:
        r = run(["profile", "--alloc", "--", exe])
        assert r.returncode == 1 and "statically linked" in r.stderr and \
            "LD_PRELOAD has no effect" in r.stderr, r.stderr
    else:
        t.log("no static libc: static-binary case not checked (%s)" % b.stderr.strip()[:200])
    own = os.path.join(tmp, "own.c")
    open(own, "w").write(r"""
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
static char *arena; static size_t used;
void *malloc(size_t n) {
    if (!arena) arena = mmap(0, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *p = arena + used; used += (n + 15) & ~(size_t)15; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t n, size_t s) { void *p = malloc(n * s); memset(p, 0, n * s); return p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (p) memcpy(q, p, n); return q; }
int main(void) { for (int i = 0; i < 20000; i++) memset(malloc(1000), 1, 1000); return 0; }
""")
    exe = os.path.join(tmp, "own")
    b = subprocess.run([c, "-O1", "-o", exe, own], capture_output=True, text=True)
    assert b.returncode == 0, b.stderr
    r = run(["profile", "--alloc", "--", exe])
    assert r.returncode == 1 and "no call to malloc" in r.stderr and "allocator of its own" \
        in r.stderr and "MiB of RSS" in r.stderr, r.stderr
    if os.geteuid() == 0:
        su = os.path.join(tmp, "suid")
        shutil.copy(HELPER, su)
        os.chown(su, 65534, 65534)
        os.chmod(su, 0o4755)
        r = run(["profile", "--alloc", "--", su, "ab"])
        assert r.returncode == 1 and "set-user-ID" in r.stderr, r.stderr


def main():
    if not os.access(HELPER, os.X_OK):
        t.skip("helper %s not built" % HELPER)
    global SANITIZED
    SANITIZED = t.sanitized()
    tmp = tempfile.mkdtemp(prefix="ctxlab-alloc-test-")
    os.chmod(tmp, 0o755)
    state = {}
    try:
        t.run_tests([
            ("exact counts (A freed, B kept)", lambda: state.update(ab=test_exact(tmp))),
            ("sampled within 5%", lambda: test_sampled(tmp)),
            ("realloc chain and aligned allocators", lambda: test_realloc_align(tmp)),
            ("threads lose nothing", lambda: test_threads(tmp)),
            ("heap curve and peak vs valgrind massif", lambda: test_massif(tmp)),
            ("go tool pprof reads every sample type", lambda: test_go_pprof(state["ab"])),
            ("per-function split vs heaptrack", lambda: test_heaptrack(tmp, state["ab"])),
            ("fork/exec tree, stop by -d", lambda: test_tree_and_stop(tmp)),
            ("clear errors", lambda: test_errors(tmp)),
        ])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
