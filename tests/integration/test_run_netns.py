#!/usr/bin/env python3
"""ctxlab run with hosts netns:A (server) and netns:B (load): two network namespaces joined
by a veth pair, addresses from 192.0.2.0/24 (TEST-NET-1) used only inside them. The trial
completes with the server address on the veth. Skips when `ip netns` is not permitted."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CTXLAB = os.environ.get("CTXLAB", "ctxlab")


def ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def main():
    if not shutil.which("ip"):
        print("SKIP: iproute2 'ip' not installed")
        return 77  # ctest's SKIP_RETURN_CODE
    tag = "cl%d" % os.getpid()
    a, b = tag + "a", tag + "b"
    base = tempfile.mkdtemp(prefix="ctxlab-run-netns-")
    try:
        p = ip("netns", "add", a, check=False)
        if p.returncode != 0:
            print("SKIP: 'ip netns add' is not permitted here: %s" % p.stderr.strip())
            return 0
        ip("netns", "add", b)
        ip("link", "add", tag + "x", "type", "veth", "peer", "name", tag + "y")
        ip("link", "set", tag + "x", "netns", a)
        ip("link", "set", tag + "y", "netns", b)
        for ns, dev, addr in ((a, tag + "x", "192.0.2.1/24"), (b, tag + "y", "192.0.2.2/24")):
            ip("-n", ns, "addr", "add", addr, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        spec = os.path.join(base, "netns.ini")
        open(spec, "w").write(
            "[experiment]\nrepeat = 1\nwarmup = 100ms\nduration = 400ms\nprecision = off\n"
            "[server]\nengine = epoll\nproto = http\ncpus = 1\n"
            "[load]\nconnections = 4\n"
            "[hosts]\nserver = netns:%s\nload = netns:%s\nserver_address = 192.0.2.1\n" % (a, b))
        d = os.path.join(base, "res")
        p = subprocess.run([CTXLAB, "run", "-q", "-o", d, spec], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr[-2000:]
        recs = [json.loads(l) for l in open(os.path.join(d, "trials.jsonl"))]
        assert len(recs) == 1
        r = recs[0]
        assert r["status"] == "ok", r.get("reason")
        assert r["hosts"]["server"] == "netns:" + a and r["hosts"]["load"] == "netns:" + b
        assert r["hosts"]["server_address"].startswith("192.0.2.1:"), r["hosts"]
        assert r["load"]["config"]["target"].startswith("http://192.0.2.1:"), r["load"]["config"]
        assert r["throughput"]["requests_per_s"] > 0 and r["errors"]["total"] == 0
        assert r["accounting"] != "none"  # the monitor sees the server's tree across netns
        print("ok: %d req/s across the veth" % r["throughput"]["requests_per_s"])
    finally:
        ip("netns", "del", a, check=False)
        ip("netns", "del", b, check=False)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
