"""ctxlab load against ctxlab serve: exact counts over http, echo and chat (skips, with a
reason, when this build has no working `ctxlab serve`)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_load_common import CTXLAB, Server, check_identity, load, run_tests  # noqa: E402


def serve(proto, engine="epoll"):
    return Server(argv=[CTXLAB, "serve", "--engine", engine, "--proto", proto, "--listen",
                        "127.0.0.1:0"])


def test_http_exact():
    with serve("http") as s:
        d, _, _, _ = load("-c", 8, "-t", 2, "--pipeline", 4, "-n", 4000, "http://" + s.addr + "/",
                          expect_rc=0)
    assert d["requests"] == 4000 and d["errors"]["total"] == 0, d["errors"]
    check_identity(d)


def test_http_no_keepalive():
    with serve("http") as s:
        d, _, _, _ = load("-c", 2, "-n", 200, "--no-keepalive", s.addr, expect_rc=0)
    assert d["requests"] == 200 and d["connections_opened"] >= 200


def test_echo_exact():
    with serve("echo") as s:
        d, _, _, _ = load("--proto", "echo", "-c", 4, "--size", 64, "-n", 2000, s.addr, expect_rc=0)
    assert d["requests"] == 2000 and d["bytes_received"] == 2000 * 64


def test_chat_delivery():
    with serve("chat") as s:
        d, _, _, _ = load("--proto", "chat", "-c", 4, "--rate", 400, "-d", "1s", s.addr,
                          expect_rc=0)
    c = d["chat"]
    assert c["sent"] == 400 and c["expected"] == 3 * 400, c
    assert c["delivered"] == c["expected"], c


p = subprocess.run([CTXLAB, "serve", "--help"], capture_output=True, text=True)
if p.returncode != 0:
    print("SKIP: this build has no 'ctxlab serve' (%s)" % p.stderr.strip()[:200])
    sys.exit(77)  # ctest's SKIP_RETURN_CODE
run_tests([test_http_exact, test_http_no_keepalive, test_echo_exact, test_chat_delivery])
