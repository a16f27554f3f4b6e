"""ctxlab load: every error class produced and counted; bad conditions end cleanly."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_load_common import CTXLAB, Server, check_identity, load, run_tests  # noqa: E402


def run_class(opt, key):
    with Server("http", opt, 10) as s:
        d, rc, _, _ = load("-c", 4, "-n", 1000, s.addr, expect_rc=0)
    # every 10th request of the server's count fails: 100 of 1000
    assert d["errors"][key] == 100, (key, d["errors"])
    assert d["requests"] == 900
    check_identity(d)


def test_parse_errors():
    run_class("--garbage-every", "parse")


def test_resets():
    run_class("--reset-every", "reset")


def test_closed_mid_response():
    run_class("--close-every", "closed")


def test_timeout_counted_when_deadline_passes():
    with Server("http", "--silent-every", 50) as s:
        d, _, _, dt = load("-c", 4, "-n", 200, "--timeout", "300ms", s.addr, expect_rc=0)
    assert d["errors"]["timeout"] == 4, d["errors"]
    assert d["requests"] == 196
    check_identity(d)
    # the silent requests never get an answer: the run ends by the deadline, not by a reply
    assert dt < 5, dt


def test_server_absent():
    with Server("http") as s:
        port = s.port
    d, rc, err, dt = load("-c", 4, "-d", "5s", "127.0.0.1:%d" % port)
    assert rc == 1 and d is None
    assert "connection refused" in err and "is the server running" in err, err
    assert dt < 2, dt


def test_server_dies_mid_run():
    with Server("http", "--die-after-ms", 500) as s:
        d, rc, err, dt = load("-c", 4, "-d", "10s", s.addr)
    assert rc == 0 and d["requests"] > 0
    assert dt < 5, dt
    assert "went away" in d["stop_reason"], d["stop_reason"]
    assert d["errors"]["connect"] >= 1
    check_identity(d)


def test_ctrl_c_prints_summary():
    with Server("http") as s:
        p = subprocess.Popen([CTXLAB, "load", "-c", "4", "-d", "30s", s.addr],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    assert p.returncode == 0, p.returncode
    assert "requests in" in out and "Requests/sec" in out, out


run_tests([test_parse_errors, test_resets, test_closed_mid_response,
           test_timeout_counted_when_deadline_passes, test_server_absent,
           test_server_dies_mid_run, test_ctrl_c_prints_summary])
