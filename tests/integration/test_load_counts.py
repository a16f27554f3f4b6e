"""ctxlab load: exact counts, keep-alive off, pipelining, chunked bodies, status codes."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_load_common import Server, check_identity, load, run_tests  # noqa: E402


def test_exact_count_closed_loop():
    with Server("http") as s:
        d, _, _, _ = load("-c", 8, "-t", 2, "-n", 3000, s.addr, expect_rc=0)
    assert d["requests"] == 3000 and d["messages_sent"] == 3000, d
    assert d["errors"]["total"] == 0 and d["unfinished"] == 0
    assert d["status"] == {"200": 3000}
    assert d["bytes_received"] == 3000 * len("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n")
    assert d["latency_us"]["count"] == 3000 and d["latency_us"]["p50"] > 0


def test_pipeline():
    with Server("http") as s:
        d, _, _, _ = load("-c", 4, "-t", 1, "--pipeline", 16, "-n", 4000,
                          "http://" + s.addr + "/x", expect_rc=0)
    assert d["requests"] == 4000 and d["config"]["pipeline"] == 16
    assert d["connections_opened"] == 4
    check_identity(d)


def test_chunked_across_writes():
    with Server("http", "--chunked") as s:
        d, _, _, _ = load("-c", 3, "--pipeline", 4, "-n", 999, s.addr, expect_rc=0)
    assert d["requests"] == 999 and d["errors"]["total"] == 0


def test_no_keepalive_opens_a_connection_per_request():
    with Server("http") as s:
        d, _, _, _ = load("-c", 4, "-n", 400, "--no-keepalive", s.addr, expect_rc=0)
    assert d["requests"] == 400
    assert d["connections_opened"] >= 400, d["connections_opened"]


def test_server_connection_close():
    with Server("http", "--conn-close") as s:
        d, _, _, _ = load("-c", 2, "-n", 200, s.addr, expect_rc=0)
    assert d["requests"] == 200 and d["connections_opened"] >= 200


def test_non_2xx_counted_by_status():
    with Server("http", "--status", 503) as s:
        d, rc, err, _ = load("-c", 2, "-n", 150, s.addr)
    assert rc == 1 and "nothing succeeded" in err
    assert d["requests"] == 0 and d["answered"] == 150
    assert d["errors"]["status"] == {"503": 150} and d["errors"]["total"] == 150


def test_duration_run_identity():
    with Server("http") as s:
        d, _, _, _ = load("-c", 6, "-t", 2, "-d", "1s", "--warmup", "300ms", s.addr, expect_rc=0)
    assert 0.95 <= d["duration_s"] <= 1.5, d["duration_s"]
    assert d["config"]["warmup_s"] == 0.3
    check_identity(d)


run_tests([test_exact_count_closed_loop, test_pipeline, test_chunked_across_writes,
           test_no_keepalive_opens_a_connection_per_request, test_server_connection_close,
           test_non_2xx_counted_by_status, test_duration_run_identity])
