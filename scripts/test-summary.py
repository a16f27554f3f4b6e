#!/usr/bin/env python3
"""Lists what a ctest run skipped, and why: scripts/test-summary.py CTEST_CONSOLE_LOG LAST_TEST_LOG

A test that exits with SKIP_RETURN_CODE (77) is "Skipped" in ctest's console output; its
reason is the first "SKIP" line of its output in Testing/Temporary/LastTest.log. A test that
passed but printed SKIP lines skipped a part: those are listed too, so that nothing that did
not run is counted silently as run."""
import re
import sys


def outputs(last_test_log):
    """{test name: its output} from ctest's LastTest.log."""
    res, name, buf, inside = {}, None, [], False
    with open(last_test_log, errors="replace") as f:
        for line in f:
            m = re.match(r"^\d+/\d+ Test: (\S+)", line)
            if m:
                name, buf, inside = m.group(1), [], False
                continue
            if line.startswith("Output:"):
                inside = True
                continue
            if line.startswith("<end of output>"):
                inside = False
                if name:
                    res[name] = "".join(buf)
                continue
            if inside:
                buf.append(line)
    return res


def main():
    console, last = sys.argv[1], sys.argv[2]
    skipped = []
    with open(console, errors="replace") as f:
        for line in f:
            m = re.search(r"Test\s+#\d+: (\S+) \.*\s*\*+Skipped|^\s*\d+ - (\S+) \(Skipped\)", line)
            if m:
                n = m.group(1) or m.group(2)
                if n not in skipped:
                    skipped.append(n)
    try:
        out = outputs(last)
    except OSError:
        out = {}
    skip_re = re.compile(r"^.*\bSKIP\b:?\s*(.*)$", re.M | re.I)
    for n in skipped:
        m = skip_re.search(out.get(n, ""))
        print("ctxlab tests: SKIPPED %s: %s" % (n, m.group(1).strip() if m else "(no reason printed)"))
    for n, text in sorted(out.items()):
        if n in skipped:
            continue
        reasons = [r.strip() for r in skip_re.findall(text)]
        if reasons:
            print("ctxlab tests: partly skipped %s: %s" % (n, "; ".join(dict.fromkeys(reasons))))


if __name__ == "__main__":
    main()
