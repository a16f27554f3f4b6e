#!/usr/bin/env python3
"""ctxlab flame on folded files others hand you (issue 9): a 400,000-frame line renders
(frames past the depth limit are cut and marked "[deeper frames truncated]", it used to
segfault), and names with multi-byte or broken UTF-8 never make the SVG ill-formed XML (a
label was cut inside a UTF-8 sequence). The SVG is parsed with xml.etree."""
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctxlabtest import run_tests  # noqa: E402

CTXLAB = os.environ.get("CTXLAB", "ctxlab")
NS = "{http://www.w3.org/2000/svg}"
MAX_DEPTH = 1024  # FLAMESVG_MAX_DEPTH


def flame(data, *args):
    d = tempfile.mkdtemp(prefix="ctxlab-flame-hostile-")
    try:
        src, out = os.path.join(d, "in.folded"), os.path.join(d, "out.svg")
        with open(src, "wb") as f:
            f.write(data)
        p = subprocess.run([CTXLAB, "flame", "-o", out, *args, src], capture_output=True,
                           timeout=120)
        assert p.returncode == 0, "ctxlab flame exited %d: %s" % (p.returncode, p.stderr[-500:])
        with open(out, "rb") as f:
            svg = f.read()
        return svg, ET.fromstring(svg)  # raises on ill-formed XML
    finally:
        shutil.rmtree(d)


def frames(root):
    return [g for g in root.iter(NS + "g") if g.get("class") == "f"]


def test_deep():
    line = "comm;" + ";".join("f%d" % i for i in range(400000)) + " 5\n"
    _, root = flame(line.encode())
    fr = frames(root)
    depth = {g.get("data-n"): int(g.get("data-d")) for g in fr}
    assert len(fr) == MAX_DEPTH + 2, len(fr)  # all + MAX_DEPTH frames + the marker
    assert depth.get("[deeper frames truncated]") == MAX_DEPTH + 1, sorted(depth.items())[-3:]
    assert "f%d" % (MAX_DEPTH - 2) in depth and "f%d" % (MAX_DEPTH - 1) not in depth


def test_utf8():
    name = "é€🔥" * 20  # 2-, 3- and 4-byte characters
    data = ("main;wide 100000\nmain;%s 1500\n" % name).encode()
    data += b"main;bad\x80x;cut\xe2\x82 40000\nmain;sur\xed\xa0\x80;ff\xef\xbf\xbf;b\xff 40000\n"
    for width in (200, 347, 601, 1200, 1999):
        svg, root = flame(data, "--width", str(width))
        svg.decode("utf-8")  # strict
        for g in frames(root):
            n = g.get("data-n")
            label = g.find(NS + "text").text or ""
            if label.endswith(".."):
                label = label[:-2]
            assert n.startswith(label), "width %d: label %r is not a prefix of %r" % (width, label, n)
        names = [g.get("data-n") for g in frames(root)]
        assert name in names, names
        assert "bad?x" in names and "b?" in names, names


if __name__ == "__main__":
    run_tests([("flame: a 400,000-frame line is cut at the depth limit", test_deep),
               ("flame: UTF-8 names never cut, broken bytes replaced", test_utf8)])
