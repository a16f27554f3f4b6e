"""Layering: a module under src/ includes only its own headers and those of the modules it
declares as DEPS in CMakeLists.txt (transitively). The build enforces it (each module compiles
against build/include/NAME/, links to only those folders); this test checks the #include lines
against the declared DEPS, that no include escapes with '..', that the build's include trees
hold exactly the allowed folders, and that the checker itself reports a crossing."""
import os
import re
import sys

src = os.environ.get("CTXLAB_SRC", ".")
build = os.environ.get("CTXLAB_BUILD")
failures = 0
passes = 0


def check(cond, what):
    global failures, passes
    print(("ok   " if cond else "FAIL ") + what)
    if cond:
        passes += 1
    else:
        failures += 1


def declared(cmake_text):
    """{module: set of the modules it may include} from ctxlab_module(NAME DEPS ...) lines."""
    allowed = {}
    for name, deps in re.findall(r"^ctxlab_module\((\w+)\s+DEPS\s+([^)]*)\)", cmake_text, re.M):
        mods = {name}
        for d in deps.split():
            m = re.fullmatch(r"ctxlab_(\w+)", d)
            if m:
                mods |= {m.group(1)} | allowed[m.group(1)]  # declared before use, as CMake needs
        allowed[name] = mods
    return allowed


def crossings(module, text, allowed):
    """The #include lines of one file of `module` that cross a layer."""
    bad = []
    for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
        top = inc.split("/")[0] if "/" in inc else None
        if ".." in inc.split("/"):
            bad.append(inc)
        elif top is not None and top not in allowed[module]:
            bad.append(inc)
    return bad


allowed = declared(open(os.path.join(src, "CMakeLists.txt")).read())
check(len(allowed) >= 8 and allowed.get("core") == {"core"},
      "modules declared: " + ", ".join("%s->%s" % (m, "+".join(sorted(a - {m})) or "-")
                                       for m, a in allowed.items()))

# the checker itself must see a crossing (a check that cannot fail would prove nothing)
check(crossings("core", '#include "proto/proto.h"\n', allowed) == ["proto/proto.h"],
      "a core file including proto/ is reported")
check(crossings("engine", '#include "../lab/spec.h"\n', allowed) == ["../lab/spec.h"],
      "an include escaping with '..' is reported")
check(crossings("engine", '#include "proto/proto.h"\n#include "core/log.h"\n', allowed) == [],
      "engine including proto/ and core/ is allowed")

for module in sorted(allowed):
    d = os.path.join(src, "src", module)
    for f in sorted(os.listdir(d)):
        if not f.endswith((".c", ".h")):
            continue
        bad = crossings(module, open(os.path.join(d, f)).read(), allowed)
        check(not bad, "src/%s/%s includes only %s%s" % (
            module, f, "/".join(sorted(allowed[module])), (": crosses with " + ", ".join(bad)) if bad else ""))

# the build's include trees (what the compiler enforces) hold exactly the allowed folders
if build and os.path.isdir(os.path.join(build, "include")):
    for module, mods in sorted(allowed.items()):
        tree = os.path.join(build, "include", module)
        have = set(os.listdir(tree)) if os.path.isdir(tree) else set()
        check(have == mods, "build/include/%s holds %s (has %s)" % (
            module, sorted(mods), sorted(have)))

print(f"{passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
