#!/usr/bin/env python3
"""ctxlab run: a small real run answers its spec's questions, and measures the switch costs.

- --dry-run lists the questions of the [answer.*] sections;
- report.md and report.html have an "Answers" section near the top: the fork/epoll ratio of CPU
  per request with its 95% CI and its cells (4 trials per cell: enough for a CI), equal to the
  ratio of the cells' medians in trials.jsonl; a question about an engine the run does not have
  and one needing more CPUs than the machine has say why they cannot be answered;
- env.json has switch_cost_ns.kernel and .coro (coroutines cheaper than the kernel), and the
  kernel figure agrees with `ctxlab pingpong --mode pipe-proc --pin same` (CPU time per switch)
  and, when perf is installed, with `perf bench sched pipe` (within the spread of a shared
  machine: a factor 3);
- the report's switching share is context switches per request x that cost.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ctxlabtest as t  # noqa: E402

SPEC = """[experiment]
name = answers
repeat = 4
warmup = 100ms
duration = 300ms
precision = off
[server]
engine = fork epoll
proto = http
cpus = 1
[load]
connections = 4
[answer.fork_vs_epoll]
question = Is a process per connection more expensive than an event loop?
metric = cpu_us_per_request
compare = engine=fork / engine=epoll
where = connections=max
say = A process per connection needs {ratio} the server CPU per request of an event loop at {where}
[answer.go]
question = Is Go dearer?
metric = cpu_us_per_request
compare = engine=go / engine=epoll
[answer.cores]
question = Do more cores help?
metric = cpu_us_per_request
grow = cpus
needs_cpus = 4096
"""


def median_of(recs, engine, path):
    v = []
    for r in recs:
        if r["status"] == "ok" and r["params"]["engine"] == engine:
            o = r
            for k in path.split("."):
                o = o[k]
            v.append(o)
    return statistics.median(v), len(v)


def test_answers_and_switch_costs():
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "answers.ini")
        with open(spec, "w") as f:
            f.write(SPEC)
        dry = subprocess.run([t.CTXLAB, "run", "--dry-run", spec], capture_output=True,
                             text=True, timeout=30)
        assert dry.returncode == 0, dry.stderr
        assert "questions (3, answered in the report):" in dry.stdout, dry.stdout
        assert "  fork_vs_epoll: Is a process per connection more expensive" in dry.stdout

        out = os.path.join(d, "out")
        p = subprocess.run([t.CTXLAB, "run", "-q", "-o", out, spec], capture_output=True,
                           text=True, timeout=180)
        assert p.returncode == 0, p.stderr[-3000:]
        recs = [json.loads(l) for l in open(os.path.join(out, "trials.jsonl")) if l.strip()]
        env = json.load(open(os.path.join(out, "env.json")))
        md = open(os.path.join(out, "report.md"), encoding="utf-8").read()
        html = open(os.path.join(out, "report.html"), encoding="utf-8").read()

        # Answers: near the top (before Setup and Findings), a number with its CI and cells
        assert md.index("## Answers") < md.index("## Setup") < md.index("## Findings"), md[:2000]
        assert html.index("<h2>Answers</h2>") < html.index("<h2>Setup</h2>")
        sec = md[md.index("## Answers"):md.index("## Setup")]
        t.log(sec)
        fork, nf = median_of(recs, "fork", "server_cpu.us_per_request")
        epoll, ne = median_of(recs, "epoll", "server_cpu.us_per_request")
        if nf < 4 or ne < 4:
            t.skip("a trial failed here (%d fork, %d epoll ok): no CI to check" % (nf, ne))
        m = re.search(r"A process per connection needs ([\d.]+)× \(95% CI ([\d.]+)–([\d.]+)\) "
                      r"the server CPU per request of an event loop at 4 connections \(cells "
                      r"http-fork-c4-cpus1 vs http-epoll-c4-cpus1, n=4 each\)\.", sec)
        assert m, sec
        ratio, lo, hi = (float(x) for x in m.groups())
        assert abs(ratio - fork / epoll) <= 0.006 * max(1, ratio), (ratio, fork, epoll)
        assert lo <= ratio <= hi, (lo, ratio, hi)
        assert "Cannot be answered by this run: no cell of this run has engine=go" in sec, sec
        assert ("Cannot be answered here: needs ≥ 4096 CPUs (this machine has %d)"
                % env["cores"]) in sec, sec
        assert "Is a process per connection more expensive than an event loop?" in html

        # switch costs: measured, coroutines far cheaper than the kernel
        sw = env["switch_cost_ns"]
        kern, coro = sw["kernel"], sw["coro"]
        t.log("switch_cost_ns: kernel %.0f (elapsed %.0f), coro %.0f"
              % (kern, sw["kernel_elapsed"], coro))
        assert 50 < kern < 1e6 and 1 < coro < 1e5 and coro < kern, sw
        # ground truth 1: the pingpong command's own figure (CPU time per switch)
        pp = subprocess.run([t.CTXLAB, "pingpong", "--mode", "pipe-proc", "--pin", "same",
                             "-n", "20000", "--json", "-"], capture_output=True, text=True,
                            timeout=120)
        assert pp.returncode == 0, pp.stderr
        r0 = json.loads(pp.stdout.strip().splitlines()[-1])["modes"][0]
        cpu_per_switch = (r0["user_ns_per_round_trip"] + r0["sys_ns_per_round_trip"]) / 2.0
        t.log("pingpong pipe-proc: %.0f ns CPU per switch" % cpu_per_switch)
        assert 1 / 3 < kern / cpu_per_switch < 3, (kern, cpu_per_switch)
        # ground truth 2: perf bench sched pipe (elapsed per round trip / 2), when installed
        if shutil.which("perf") and shutil.which("taskset"):
            pb = subprocess.run(["taskset", "-c", "0", "perf", "bench", "sched", "pipe", "-l",
                                 "20000"], capture_output=True, text=True, timeout=120)
            mm = re.search(r"([\d.]+) usecs/op", pb.stdout)
            if pb.returncode == 0 and mm:
                perf_ns = float(mm.group(1)) * 1000 / 2
                t.log("perf bench sched pipe: %.0f ns per switch (elapsed); ours elapsed %.0f"
                      % (perf_ns, sw["kernel_elapsed"]))
                assert 1 / 3 < sw["kernel_elapsed"] / perf_ns < 3, (sw, perf_ns)

        # switching share = switches per request x the kernel cost, against CPU per request
        sws, _ = median_of(recs, "fork", "ctxsw.per_request")
        row = re.search(r"\| engine=fork proto=http cpus=1 connections=4 \| ([\d.e+]+) \| "
                        r"([\d.e+]+) \| ([\d.e+]+) \| (\d+)% \|", md)
        assert row, md[md.index("## Switching"):][:1500]
        est = float(row.group(3))
        assert abs(est - sws * kern / 1000) <= 0.01 * est + 1e-9, (est, sws, kern)
        assert "An estimate, not a measurement" in md


if __name__ == "__main__":
    t.run_tests([("answers and switch costs", test_answers_and_switch_costs)])
