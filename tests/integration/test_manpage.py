"""docs/ctxlab.1 must be exactly what scripts/gen-man.py makes from the binary's help texts,
so `ctxlab help CMD` always matches the man page. Regenerate with:
    scripts/gen-man.py build/ctxlab > docs/ctxlab.1"""
import os
import subprocess
import sys

src = os.environ.get("CTXLAB_SRC", ".")
exe = os.environ.get("CTXLAB", "build/ctxlab")
want = subprocess.run([sys.executable, os.path.join(src, "scripts/gen-man.py"), exe],
                      capture_output=True, text=True, check=True).stdout
have = open(os.path.join(src, "docs/ctxlab.1")).read()
if want != have:
    print("FAIL docs/ctxlab.1 is stale: run scripts/gen-man.py build/ctxlab > docs/ctxlab.1")
    print("0 passed, 1 failed")
    sys.exit(1)
# man itself must render it without warnings (when man is installed)
if subprocess.run(["which", "man"], capture_output=True).returncode == 0:
    r = subprocess.run(["man", "--warnings", "-l", os.path.join(src, "docs/ctxlab.1")],
                       capture_output=True, text=True, env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"})
    if r.returncode != 0 or r.stderr.strip():
        print("FAIL man reports:", r.stderr[:2000])
        print("0 passed, 1 failed")
        sys.exit(1)
print("ok   docs/ctxlab.1 matches every `ctxlab help CMD`")
print("1 passed, 0 failed")
