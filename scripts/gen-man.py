#!/usr/bin/env python3
"""Generates docs/ctxlab.1 from the binary's own help texts, so `ctxlab help CMD` and the man
page cannot drift apart (tests/integration/test_manpage.py checks the committed page is current).

usage: scripts/gen-man.py BUILD/ctxlab > docs/ctxlab.1
"""
import re
import subprocess
import sys

def roff(text):
    out = []
    for line in text.rstrip("\n").split("\n"):
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def main():
    exe = sys.argv[1]
    top = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    # "ctxlab version X" (a sanitizer build adds "(ASan+UBSan build)": not part of the version)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[2]
    cmds = re.findall(r"^   (\w+) +(.*)$", top, re.M)
    names = [c for c, _ in cmds]  # in the command table's order (src/cmd/cmd.c)
    summary = dict(cmds)
    print(f'.TH CTXLAB 1 "" "ctxlab {version}" "ctxlab manual"')
    print(".SH NAME\nctxlab \\- measure what concurrency costs")
    print(".SH SYNOPSIS\n.B ctxlab\n[\\-\\-version] [help]\n.I command\n[\n.I args\n]")
    print(".SH DESCRIPTION")
    print("ctxlab runs the same protocols (sink, echo, HTTP, chat) under interchangeable concurrency")
    print("engines, generates load, watches the server's whole process tree and runs whole experiments")
    print("into a report. The section of each command below is exactly what")
    print(".B ctxlab help\n.I command\nprints.")
    print(".SH COMMANDS")
    for n in names:
        print(f".TP\n.B {n}\n{roff(summary[n])}")
    for n in names:
        text = subprocess.run([exe, "help", n], capture_output=True, text=True, check=True).stdout
        print(f".SH CTXLAB {n.upper()}")
        print(".nf")
        print(roff(text))
        print(".fi")
    print(".SH FILES")
    print("results/NAME-TIMESTAMP/ holds spec.ini, env.json, trials.jsonl, trials.csv, report.html, report.md.")
    print(".SH SEE ALSO")
    print("wrk(1), perf(1), pidstat(1), nginx(8); docs/metrics.md defines every figure.")


main()
