"""The command-line skeleton: help, version, unknown-command suggestions, per-command help, and
usage errors worded the same by every command (src/core/opt.c) with exit status 2."""
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

# The order `ctxlab help` lists is the command table's (src/cmd/cmd.c), every command in it.
check(cmds[:9] == ["serve", "load", "watch", "profile", "flame", "pingpong", "run", "report",
                   "compare"], "commands listed in the table's order")

# Usage errors: the same words, exit 2, nothing on stdout, for every command (each parses
# with its option table).
for c in cmds:
    r = run(c, "--no-such-option", "x")
    want = f"ctxlab: error: unknown option '--no-such-option' (see 'ctxlab {c} --help')\n"
    check(r.returncode == 2 and r.stderr == want and r.stdout == "",
          f"{c}: unknown option exits 2 with the common message (got {r.returncode} {r.stderr!r})")
# valued options: a missing value and a bad value, for each converted command
for args, want in [
        (["serve", "--workers"], "option '--workers' needs a value"),
        (["load", "-c", "x", "127.0.0.1:1"], "bad value 'x' for -c: a whole number"),
        (["load", "--rate"], "option '--rate' needs a value"),
        (["load", "--no-keepalive=1", "127.0.0.1:1"], "option '--no-keepalive' takes no value"),
        (["serve", "--workers", "0"], "bad value '0' for --workers: "),
        (["serve", "--list-engines=1"], "option '--list-engines' takes no value"),
        (["profile", "--pid", "x1"], "bad value 'x1' for --pid: a positive process id"),
        (["profile", "-p0"], "bad value '0' for -p: a positive process id"),
        (["profile", "-F"], "option '-F' needs a value"),
        (["flame", "--width", "5"], "bad value '5' for --width: "),
        (["pingpong", "--pin", "left"], "bad value 'left' for --pin: use same, split or none"),
        (["pingpong", "-r", "0"], "bad value '0' for -r: 1..100"),
        (["compare", "--engines"], "option '--engines' needs a value"),
        (["report", "-q=1"], "unknown option '-='"),
        (["run", "--out"], "option '--out' needs a value"),
        (["run", "-qo"], "option '-o' needs a value"),
        (["run", "--quick=1"], "option '--quick' takes no value"),
        (["run", "--profile=sometimes"], "bad value 'sometimes' for --profile: use --profile, "
         "--profile=first, --profile=all or --profile=off"),
        (["run", "--dry-run", "a.ini", "b.ini"], "too many arguments: 'b.ini'"),
        (["watch", "--pid", "x1"], "bad value 'x1' for --pid: a positive process id"),
        (["watch", "-p0"], "bad value '0' for -p: a positive process id"),
        (["watch", "-i", "0.0001", "--pid", "1"], "bad value '0.0001' for -i: too short"),
        (["watch", "--interval", "10x", "--pid", "1"], "bad value '10x' for --interval: "),
        (["watch", "-n"], "option '-n' needs a value"),
        (["watch", "--json=1", "--pid", "1"], "option '--json' takes no value"),
        (["watch", "--method", "cgroup3", "--", "true"],
         "bad value 'cgroup3' for --method: use auto, cgroup2, cgroup1 or procwalk"),
        (["watch", "--pid", "1", "sleep"], "unexpected argument 'sleep' (a command to watch goes "
         "after '--'"),
        (["watch"], "give one target: ")]:
    r = run(*args)
    check(r.returncode == 2 and r.stderr.startswith("ctxlab: error: " + want)
          and r.stderr.rstrip().endswith(f"(see 'ctxlab {args[0]} --help')") and r.stdout == "",
          f"{' '.join(args)}: exit 2, {want!r} (got {r.returncode} {r.stderr!r})")

# watch -- CMD: what follows '--' is CMD's, options included (exit status: CMD's)
r = run("watch", "-i", "50ms", "--csv", "--no-perf", "--", "sh", "-c", "exit 7", "--json")
check(r.returncode == 7 and r.stdout.startswith("t_s,interval_s,"),
      f"watch -- sh -c 'exit 7' --json: the --json is sh's, the output CSV, exit 7 "
      f"(got {r.returncode} {r.stdout[:40]!r} {r.stderr[-300:]!r})")
r = run("watch", "--pid", "1", "--")
check(r.returncode == 2 and r.stderr.startswith("ctxlab: error: '--' needs a command"),
      f"watch --: exit 2, '--' needs a command (got {r.returncode} {r.stderr!r})")

print(f"{passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
