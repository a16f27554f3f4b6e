"""Outside HTTP clients against every engine's http: curl, `ab -k -n 2000 -c 10`,
`hey -n 2000 -c 10`, `wrk -t1 -c10 -d1s` all get correct 200 answers (no failures, no non-2xx,
no socket errors). A tool that is not installed is skipped with a printed reason.
"""
import re
import shutil
import subprocess

import ctxlabtest as t


def run(cmd, timeout=60):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "%s exited %d: %s %s" % (cmd[0], p.returncode, p.stdout[-500:],
                                                        p.stderr[-500:])
    return p.stdout + p.stderr


def curl(url):
    out = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", url], capture_output=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/1.1 200"), out.stdout[:200]
    assert out.stdout.endswith(b"\r\n\r\nhello, world\n"), out.stdout[-100:]
    # keep-alive reuse: two URLs, one connection
    out = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", url, url],
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello, world\n" * 2, out.stdout
    assert b"Re-using existing connection" in out.stderr or \
        b"Reusing existing connection" in out.stderr, out.stderr[-500:]


def ab(url):
    out = run(["ab", "-q", "-k", "-n", "2000", "-c", "10", url])
    assert re.search(r"Complete requests:\s+2000\b", out), out
    assert re.search(r"Failed requests:\s+0\b", out), out
    assert "Non-2xx" not in out, out
    assert re.search(r"Keep-Alive requests:\s+2000\b", out), out


def hey(url):
    out = run(["hey", "-n", "2000", "-c", "10", url])
    m = re.search(r"\[200\]\s+(\d+) responses", out)
    assert m and int(m.group(1)) == 2000, out
    assert "Error distribution" not in out, out


def wrk(url):
    out = run(["wrk", "-t1", "-c10", "-d1s", url])
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 100, out
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out


TOOLS = [("curl", curl), ("ab", ab), ("hey", hey), ("wrk", wrk)]


def main():
    engines = []
    for e in t.engines_speaking("http"):
        ok, why = t.engine_usable(e)
        if not ok:
            t.log("skip tools on %s: %s" % (e, why))
        else:
            engines.append(e)
    tools = []
    for name, fn in TOOLS:
        if shutil.which(name):
            tools.append((name, fn))
        else:
            t.log("skip %s: not installed (run scripts/setup.sh)" % name)
    if not tools:
        t.skip("none of curl, ab, hey, wrk is installed")

    def check(e):
        with t.Serve(e, "http") as s:
            url = "http://%s:%d/" % s.addr
            for name, fn in tools:
                try:
                    fn(url)
                except AssertionError as err:
                    raise AssertionError("%s against %s: %s" % (name, e, err))
    t.run_tests([("%s against %s" % (" ".join(n for n, _ in tools), e),
                  lambda e=e: check(e)) for e in engines])


if __name__ == "__main__":
    main()
