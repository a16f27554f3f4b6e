"""The command-line skeleton: help, version, unknown-command suggestions, per-command help."""
import os
import re
import subprocess
import sys

CTXLAB = os.environ.get("CTXLAB", "build/ctxlab")
failures = 0
passes = 0


def run(*args):
    return subprocess.run([CTXLAB, *args], capture_output=True, text=True, timeout=30)


def check(cond, what):
    global failures, passes
    print(("ok   " if cond else "FAIL ") + what)
    if cond:
        passes += 1
    else:
        failures += 1


r = run()
check(r.returncode == 0 and "usage: ctxlab" in r.stdout, "bare ctxlab prints usage and exits 0")
cmds = re.findall(r"^   (\w+) ", r.stdout, re.M)
check(len(cmds) >= 0, "commands listed: " + " ".join(cmds))

r = run("--version")
check(r.returncode == 0 and re.match(r"ctxlab version \d+\.\d+\.\d+", r.stdout), "--version")

r = run("help")
check(r.returncode == 0 and "commands:" in r.stdout, "ctxlab help lists commands")

for c in cmds:
    a, b = run("help", c), run(c, "--help")
    check(a.returncode == 0 and a.stdout.strip() != "", f"help {c}")
    check(a.stdout == b.stdout, f"'help {c}' equals '{c} --help'")
    check(("usage: ctxlab " + c) in a.stdout, f"help {c} starts with its usage line")

r = run("nosuchthing")
check(r.returncode == 2 and "'nosuchthing' is not a ctxlab command" in r.stderr, "unknown command exits 2")
if cmds:
    typo = cmds[0][:-1] + ("x" if cmds[0][-1] != "x" else "y")
    r = run(typo)
    check(r.returncode == 2 and f"did you mean '{cmds[0]}'?" in r.stderr, f"'{typo}' suggests '{cmds[0]}'")
r = run("help", "nosuchthing")
check(r.returncode == 2, "help of an unknown command exits 2")

print(f"{passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
