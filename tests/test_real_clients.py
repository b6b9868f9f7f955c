"""Real clients over real sockets against `anomalyd serve`: the official Python client (9.x in
process, 8.x in a subprocess), curl's framings, and the store across SIGTERM and kill -9."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import es_driver
from conftest import ANOMALYD, POST_DATA_JOB, Server, es8_path, free_port, http_json, job_stats

BASE = "/_ml/anomaly_detectors"

# MlBasicMultiNodeIT.testMiniFarequote: 2 lines, 177 bytes, no trailing newline.
MINI_FAREQUOTE = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}'
)
# testMiniFarequoteReopen: 5 records (446 bytes), then after a reopen 5 more 1000 h later (442 bytes).
REOPEN_1 = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}\n'
    b'{"airline":"JBU","responsetime":"877.5927","sourcetype":"farequote","time":"1403481800"}\n'
    b'{"airline":"KLM","responsetime":"1355.4812","sourcetype":"farequote","time":"1403481900"}\n'
    b'{"airline":"NKS","responsetime":"9991.3981","sourcetype":"farequote","time":"1403482000"}'
)
REOPEN_2 = (
    b'{"airline":"AAL","responsetime":"136.2361","sourcetype":"farequote","time":"1407081600"}\n'
    b'{"airline":"VRD","responsetime":"282.9847","sourcetype":"farequote","time":"1407082000"}\n'
    b'{"airline":"JAL","responsetime":"493.0338","sourcetype":"farequote","time":"1407082000"}\n'
    b'{"airline":"UAL","responsetime":"8.4275","sourcetype":"farequote","time":"1407082000"}\n'
    b'{"airline":"FFT","responsetime":"221.8693","sourcetype":"farequote","time":"1407082000"}'
)
NDJSON = {"Content-Type": "application/x-ndjson"}


def job_body(job_id: str) -> dict:
    return {**POST_DATA_JOB, "job_id": job_id}


def put_open(server: Server, job_id: str, open_: bool = True) -> None:
    status, body = http_json(f"{server.url}{BASE}/{job_id}", "PUT", job_body(job_id))
    assert status == 200, body
    if open_:
        status, body = http_json(f"{server.url}{BASE}/{job_id}/_open", "POST")
        assert (status, body["opened"]) == (200, True), body


def post(server: Server, job_id: str, data: bytes) -> dict:
    status, body = http_json(f"{server.url}{BASE}/{job_id}/_data", "POST", data, NDJSON)
    assert status == 202, body
    return body


def counts(d: dict, *keys: str) -> tuple:
    return tuple(d.get(k) for k in keys)


# -- the official Python client ----------------------------------------------------------------


def check_client_report(r: dict) -> None:
    assert r["info"] == {"tagline": "You Know, for Search", "version": r["info"]["version"]}
    assert r["health"] in ("green", "yellow")
    assert r["sniffed"] == "You Know, for Search"
    assert r["put_job_id"] == es_driver.JOB
    assert r["get_jobs"] == {"count": 1, "ids": [es_driver.JOB]}
    assert r["open"] is True

    array_bytes = len(json.dumps(es_driver.DOCS, separators=(",", ":")).encode())
    p = r["post_list"]
    assert counts(p, "processed_record_count", "input_field_count", "processed_field_count", "input_bytes",
                  "earliest_record_timestamp", "latest_record_timestamp", "bucket_count") == \
        (2, 6, 4, array_bytes, 1403481600000, 1403481700000, 0)
    p = r["post_ndjson"]
    assert counts(p, "processed_record_count", "input_field_count", "processed_field_count", "input_bytes",
                  "latest_record_timestamp", "bucket_count") == \
        (3, 9, 6, len(es_driver.NDJSON.encode()), 1403485400000, 1)
    assert "earliest_record_timestamp" not in p  # only in the response that processed the first record

    assert r["flush"] == {"flushed": True, "last_finalized_bucket_end": 1403485200000}
    total = (5, 15, 10, array_bytes + len(es_driver.NDJSON.encode()), 1403481600000, 1403485400000, 5)
    keys = ("processed_record_count", "input_field_count", "processed_field_count", "input_bytes",
            "earliest_record_timestamp", "latest_record_timestamp", "input_record_count")
    assert r["stats_open"]["state"] == "opened"
    assert counts(r["stats_open"]["data_counts"], *keys) == total
    assert r["buckets"] == {"count": 1, "first": [[1403481600000, 2, False]]}
    assert r["records"] == {"count": 0, "records": []}
    assert r["influencers"] == {"count": 0, "influencers": []}
    assert r["bucket_mixed_error"] == {"status": 400, "class": "BadRequestError"}
    assert r["close"] == {"closed": True}
    assert r["stats_closed"]["state"] == "closed"
    assert counts(r["stats_closed"]["data_counts"], *keys) == total
    assert r["post_closed_error"] == {"status": 409, "class": "ConflictError", "type": "status_exception"}
    assert r["delete"] == {"acknowledged": True}
    assert r["get_deleted_error"] == {"status": 404, "class": "NotFoundError", "type": "resource_not_found_exception"}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "http_compress"])
def test_python_client_9x(server: Server, compress: bool) -> None:
    """With `http_compress=True` the client gzips every request body, the job's config too."""
    report = es_driver.run(server.url, compress)
    assert report["client_version"][0] == "9"
    check_client_report(report)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "http_compress"])
def test_python_client_8x(server: Server, compress: bool) -> None:
    path = es8_path()
    env = {**os.environ, "PYTHONPATH": str(path)}
    r = subprocess.run([sys.executable, str(Path(es_driver.__file__)), server.url, *(["gzip"] if compress else [])],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["client_version"][:2] == ["8", "19"]
    check_client_report(report)


# -- curl --------------------------------------------------------------------------------------

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str, stdin: int | None = None) -> tuple[int, dict, str]:
    """curl -v; the status, the JSON body and curl's trace of the request headers (stderr)."""
    r = subprocess.run(["curl", "-sS", "-v", "-w", "\n%{http_code}", *args], stdin=stdin,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    out, _, code = r.stdout.decode().rpartition("\n")
    return int(code), (json.loads(out) if out.strip() else {}), r.stderr.decode()


@needs_curl
def test_curl_mini_farequote_exact_values(server: Server, tmp_path: Path) -> None:
    """MlBasicMultiNodeIT.testMiniFarequote, byte for byte, from curl with Content-Length."""
    put_open(server, "farequote")
    body = tmp_path / "mini.ndjson"
    body.write_bytes(MINI_FAREQUOTE)
    assert len(MINI_FAREQUOTE) == 177
    url = f"{server.url}{BASE}/farequote"
    status, resp, trace = curl("-X", "POST", "-H", "Expect:", "-H", "Content-Type: application/x-ndjson",
                               "--data-binary", f"@{body}", f"{url}/_data")
    assert "> Content-Length: 177" in trace and "Expect: 100" not in trace
    assert status == 202
    assert counts(resp, "processed_record_count", "processed_field_count", "input_field_count", "input_bytes",
                  "bucket_count") == (2, 4, 6, 177, 0)
    status, resp, _ = curl("-X", "POST", f"{url}/_flush")
    assert (status, resp) == (200, {"flushed": True, "last_finalized_bucket_end": 1403481600000})
    assert list(resp) == ["flushed", "last_finalized_bucket_end"]
    status, resp, _ = curl("-X", "POST", f"{url}/_close")
    assert (status, resp) == (200, {"closed": True})


@needs_curl
def test_curl_chunked_stream_from_pipe(server: Server) -> None:
    """`producer | curl -T -`: chunked, Expect: 100-continue, lines arriving over time."""
    put_open(server, "stream")
    n = 300
    lines = [
        json.dumps({"airline": "AAL", "responsetime": 100 + i % 7, "time": 1403481600 + 60 * i}, separators=(",", ":"))
        for i in range(n)
    ]
    producer_code = (
        "import sys, time\n"
        "lines = sys.argv[1:]\n"
        "for i, l in enumerate(lines):\n"
        "    sys.stdout.write(l + '\\n'); sys.stdout.flush()\n"
        "    if i % 50 == 0: time.sleep(0.02)\n"
    )
    producer = subprocess.Popen([sys.executable, "-c", producer_code, *lines], stdout=subprocess.PIPE)
    try:
        status, resp, trace = curl("-X", "POST", "-T", "-", "-H", "Content-Type: application/x-ndjson",
                                   f"{server.url}{BASE}/stream/_data", stdin=producer.stdout)
    finally:
        assert producer.stdout is not None
        producer.stdout.close()
        producer.wait(timeout=10)
    assert "> Transfer-Encoding: chunked" in trace
    assert "> Expect: 100-continue" in trace and "< HTTP/1.1 100 Continue" in trace
    assert status == 202, resp
    expected_bytes = sum(len(line) + 1 for line in lines)
    assert counts(resp, "processed_record_count", "input_field_count", "processed_field_count", "input_bytes",
                  "out_of_order_timestamp_count") == (n, 2 * n, 2 * n, expected_bytes, 0)
    assert job_stats(server, "stream")["data_counts"]["input_bytes"] == expected_bytes


@needs_curl
def test_curl_gzip_body(server: Server, tmp_path: Path) -> None:
    """`Content-Encoding: gzip`: decoded on the way in; input_bytes counts the decompressed body."""
    put_open(server, "gz")
    many = MINI_FAREQUOTE + b"\n" + b"".join(
        b'{"airline":"AAL","responsetime":"1.5","sourcetype":"farequote","time":"%d"}\n' % (1403481800 + i)
        for i in range(1000)
    )
    packed = gzip.compress(many)
    assert len(packed) < len(many) // 5
    (tmp_path / "body.gz").write_bytes(packed)
    status, resp, trace = curl("-X", "POST", "-H", "Expect:", "-H", "Content-Type: application/x-ndjson",
                               "-H", "Content-Encoding: gzip", "--data-binary", f"@{tmp_path / 'body.gz'}",
                               f"{server.url}{BASE}/gz/_data")
    assert f"> Content-Length: {len(packed)}" in trace
    assert status == 202, resp
    assert counts(resp, "processed_record_count", "input_field_count", "processed_field_count", "input_bytes") == \
        (1002, 3 * 1002, 2 * 1002, len(many))

    # gzip and chunked together (curl -T with a compressed file streams it chunked)
    with open(tmp_path / "body.gz", "rb") as f:
        status, resp, trace = curl("-X", "POST", "-T", "-", "-H", "Content-Type: application/x-ndjson",
                                   "-H", "Content-Encoding: gzip", f"{server.url}{BASE}/gz/_data", stdin=f.fileno())
    assert "> Transfer-Encoding: chunked" in trace
    assert status == 202, resp
    # the same timestamps again: all inside the latest record's bucket, so all accepted
    assert counts(resp, "processed_record_count", "out_of_order_timestamp_count", "input_bytes") == \
        (1002, 0, len(many))
    total = job_stats(server, "gz")["data_counts"]
    assert counts(total, "processed_record_count", "input_bytes") == (2004, 2 * len(many))


# -- restarts ----------------------------------------------------------------------------------

COUNT_KEYS = ("processed_record_count", "processed_field_count", "input_bytes", "input_field_count",
              "invalid_date_count", "missing_field_count", "out_of_order_timestamp_count", "empty_bucket_count",
              "sparse_bucket_count", "earliest_record_timestamp", "latest_record_timestamp", "last_data_time",
              "input_record_count")


def test_sigterm_restart_keeps_jobs_states_and_counts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = Server(data_dir).start()
    try:
        put_open(srv, "live")                       # stays open across the restart
        post(srv, "live", MINI_FAREQUOTE)
        put_open(srv, "reopen")                     # MlBasicMultiNodeIT.testMiniFarequoteReopen, session 1
        first = post(srv, "reopen", REOPEN_1)
        assert counts(first, "processed_record_count", "input_bytes", "input_field_count",
                      "processed_field_count") == (5, 446, 15, 10)
        assert http_json(f"{srv.url}{BASE}/reopen/_flush", "POST")[0] == 200
        assert http_json(f"{srv.url}{BASE}/reopen/_close", "POST") == (200, {"closed": True})
        put_open(srv, "never-opened", open_=False)
        before = {j: job_stats(srv, j) for j in ("live", "reopen", "never-opened")}
        configs = {j["job_id"]: j for j in http_json(f"{srv.url}{BASE}")[1]["jobs"]}
    finally:
        rc = srv.stop(signal.SIGTERM)
    assert rc == 0, "SIGTERM must exit cleanly"

    srv = Server(data_dir).start()
    try:
        status, body = http_json(f"{srv.url}{BASE}")
        assert status == 200 and body["count"] == 3
        assert {j["job_id"]: j for j in body["jobs"]} == configs
        after = {j: job_stats(srv, j) for j in before}
        assert {j: s["state"] for j, s in after.items()} == {"live": "opened", "reopen": "closed", "never-opened": "closed"}
        for j in before:
            b, a = before[j]["data_counts"], after[j]["data_counts"]
            keys = [k for k in COUNT_KEYS if k != "processed_field_count"]
            assert counts(a, *keys) == counts(b, *keys), j
        # the closed job's persisted document is reported as it was
        assert after["reopen"]["data_counts"]["processed_field_count"] == 10
        # the open job was reassigned on start: Elasticsearch's `A = 1` quirk until its first post
        # (post-data.md §1.3: 2 records × 1 − 0 missing)
        assert after["live"]["data_counts"]["processed_field_count"] == 2

        # the job that was open takes data at once, and its lifetime totals add up
        more = post(srv, "live", REOPEN_2)
        assert more["processed_record_count"] == 5
        live = job_stats(srv, "live")["data_counts"]
        assert counts(live, "processed_record_count", "input_bytes", "input_field_count", "processed_field_count",
                      "earliest_record_timestamp", "latest_record_timestamp") == \
            (7, 177 + 442, 6 + 15, 14, 1403481600000, 1407082000000)

        # testMiniFarequoteReopen, session 2, after a server restart in between
        status, body = http_json(f"{srv.url}{BASE}/reopen/_open", "POST")
        assert (status, body["opened"]) == (200, True)
        second = post(srv, "reopen", REOPEN_2)
        assert counts(second, "processed_record_count", "input_bytes", "input_field_count", "processed_field_count",
                      "bucket_count") == (5, 442, 15, 10, 1000)
        assert "earliest_record_timestamp" not in second
        assert http_json(f"{srv.url}{BASE}/reopen/_flush", "POST")[0] == 200
        assert http_json(f"{srv.url}{BASE}/reopen/_close", "POST") == (200, {"closed": True})
        total = job_stats(srv, "reopen")["data_counts"]
        assert counts(total, "input_bytes", "input_field_count", "processed_field_count", "processed_record_count",
                      "earliest_record_timestamp", "latest_record_timestamp") == \
            (888, 30, 20, 10, 1403481600000, 1407082000000)
    finally:
        assert srv.stop(signal.SIGTERM) == 0


def test_sigkill_restart_goes_on_after_the_stored_results(tmp_path: Path) -> None:
    """Killed, the server restarts from the job's last periodic model snapshot, which lacks the
    buckets finalised since. Their stored results stay as they were: not finalised again (as
    empty buckets) nor written twice; the analysis goes on after them."""
    data_dir = tmp_path / "data"
    t0 = 1403481600

    def hour(h: int) -> bytes:
        return b"".join(json.dumps({"airline": "AAL", "responsetime": 100 + k, "time": t0 + h * 3600 + k * 900}).encode()
                        + b"\n" for k in range(4))

    def buckets(srv: Server) -> list[dict]:
        status, body = http_json(f"{srv.url}{BASE}/crash/results/buckets?size=1000")
        assert status == 200, body
        return body["buckets"]

    srv = Server(data_dir, "--snapshot-interval", "1s").start()
    try:
        put_open(srv, "crash")
        for h in range(5):
            post(srv, "crash", hour(h))
        time.sleep(1.1)
        post(srv, "crash", hour(5))  # the periodic snapshot follows this request
        db = sqlite3.connect(data_dir / "anomalyd.sqlite3")
        deadline = time.monotonic() + 10
        while not db.execute("SELECT count(*) FROM models WHERE job_id = 'crash'").fetchone()[0]:
            assert time.monotonic() < deadline, "no snapshot"
            time.sleep(0.05)
        db.close()
        for h in range(6, 10):
            post(srv, "crash", hour(h))
        before = buckets(srv)
        assert [b["event_count"] for b in before] == [4] * 9  # hours 0-8 final, 9 open
        time.sleep(0.3)  # the counts' group commit
    finally:
        srv.stop(signal.SIGKILL)

    srv = Server(data_dir, "--snapshot-interval", "1s").start()
    try:
        for h in range(10, 13):
            post(srv, "crash", hour(h))
        after = buckets(srv)
        hours = [(b["timestamp"] // 1000 - t0) // 3600 for b in after]
        assert hours == list(range(12)), hours
        assert after[:9] == before
        assert after[9]["event_count"] == 0  # hour 9 was open: its records were lost with the model
        assert [b["event_count"] for b in after[10:]] == [4, 4]
        # the counts were persisted as acknowledged
        assert job_stats(srv, "crash")["data_counts"]["processed_record_count"] == 52
    finally:
        srv.stop(signal.SIGTERM)


def test_sigterm_waits_for_a_delete_in_the_background(tmp_path: Path) -> None:
    """A `wait_for_completion=false` delete still running when SIGTERM comes finishes before
    shutdown persists the other open jobs, whose models are all saved."""
    data_dir = tmp_path / "data"
    rows = b"".join(b'{"airline":"AAL","responsetime":%d,"time":%d}\n' % (100 + i % 7, 1403481600 + 600 * i)
                    for i in range(5000))
    srv = Server(data_dir).start()
    try:
        for j in ("gone", "kept-1", "kept-2"):
            put_open(srv, j)
            post(srv, j, rows)
        status, body = http_json(f"{srv.url}{BASE}/gone?force=true&wait_for_completion=false", "DELETE")
        assert status == 200 and "task" in body
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    db = sqlite3.connect(data_dir / "anomalyd.sqlite3")
    assert sorted(r[0] for r in db.execute("SELECT job_id FROM models")) == ["kept-1", "kept-2"]
    assert sorted(r[0] for r in db.execute("SELECT job_id FROM jobs")) == ["kept-1", "kept-2"]
    db.close()


def open_stream(server: Server, job_id: str, processed_after: int = 1) -> socket.socket:
    """A chunked `_data` post that has sent one record, read by the job (whose processed count
    is then `processed_after`), and goes on holding it."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(f"POST {BASE}/{job_id}/_data HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    line = b'{"airline":"AAL","responsetime":"1.5","time":"1403481600"}\n'
    sock.sendall(b"%x\r\n%s\r\n" % (len(line), line))
    deadline = time.monotonic() + 10
    while job_stats(server, job_id)["data_counts"]["processed_record_count"] != processed_after:
        assert time.monotonic() < deadline, "the first record was never read"
        time.sleep(0.02)
    return sock


def metrics_text(server: Server) -> str:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        return r.read().decode()


def stats_after_restart(data_dir: Path, *job_ids: str) -> list[dict]:
    """The jobs' `_stats` from a server started again on `data_dir` (then stopped cleanly)."""
    srv = Server(data_dir).start()
    try:
        return [job_stats(srv, j) for j in job_ids]
    finally:
        assert srv.stop(signal.SIGTERM) == 0


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """The status, JSON body and head (lowercase) of the one answer `sock` gets (bodies here
    are small)."""
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(65536)
        if not piece:
            break
        answer += piece
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head.lower()


def test_sigterm_lets_a_stream_under_way_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    """SIGTERM winds down first: a chunked stream under way goes on being read and is answered
    202 with all its records (a shipper would otherwise resend a batch half counted); a post
    arriving meanwhile, and a job's queued post, get 503 with nothing read; /readyz says
    stopping. Then the server exits cleanly and everything acknowledged is persisted."""
    data_dir = tmp_path / "data"
    srv = Server(data_dir).start()
    try:
        put_open(srv, "batch")
        put_open(srv, "other")
        sock = open_stream(srv, "batch")
        queued = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        line = b'{"airline":"AAL","responsetime":"2.5","time":"1403481700"}\n'
        queued.sendall(b"POST %s/batch/_data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (BASE.encode(), len(line), line))
        deadline = time.monotonic() + 10
        while 'anomalyd_job_queue_depth{job_id="batch"} 1.0' not in metrics_text(srv):  # queued behind the stream
            assert time.monotonic() < deadline, "the second post never queued"
            time.sleep(0.02)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        status, _, head = read_answer(queued)
        assert status == 503 and b"connection: close" in head
        assert queued.recv(1) == b""  # closed: a retry goes to a new connection
        queued.close()
        status, body = http_json(f"{srv.url}{BASE}/other/_data", "POST", b'{"time":"1403481600"}',
                                {"Content-Type": "application/json"})
        assert status == 503 and body["error"]["reason"] == "anomalyd is shutting down; nothing of this request was read or done"
        assert http_json(f"{srv.url}/readyz")[0] == 503
        time.sleep(0.5)  # the stream is not cut meanwhile
        rest = b"".join(b'{"airline":"AAL","responsetime":"1.5","time":"%d"}\n' % (1403481600 + 60 * i) for i in range(1, 5))
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        status, counts, _ = read_answer(sock)
        sock.close()
        assert status == 202 and counts["processed_record_count"] == 5, counts
        assert srv.proc.wait(timeout=30) == 0
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
    batch, other = stats_after_restart(data_dir, "batch", "other")
    assert (batch["data_counts"]["processed_record_count"], other["data_counts"]["processed_record_count"]) == (5, 0)


def test_sigterm_cuts_a_stream_that_outlasts_the_shutdown_timeout(tmp_path: Path) -> None:
    """A stream still arriving when `--shutdown-timeout` runs out cannot go on (aiohttp reads no
    more body bytes once its own shutdown begins): it gets a 503 then, not later, and the
    records read before are persisted."""
    data_dir = tmp_path / "data"
    srv = Server(data_dir, "--shutdown-timeout", "1s").start()
    try:
        put_open(srv, "cut")
        sock = open_stream(srv, "cut")
        started = time.monotonic()
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        status, body, _ = read_answer(sock)
        sock.close()
        assert 1 <= time.monotonic() - started < 10, "the stream was not given the shutdown timeout, or more"
        assert status == 503, body
        assert body["error"]["type"] == "status_exception" and "cut short" in body["error"]["reason"]
        assert srv.proc.wait(timeout=30) == 0
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
    [stats] = stats_after_restart(data_dir, "cut")
    assert (stats["state"], stats["data_counts"]["processed_record_count"]) == ("opened", 1)


def test_a_second_sigterm_does_not_wait(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        put_open(srv, "held")
        sock = open_stream(srv, "held")
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        assert read_answer(sock)[0] == 503
        sock.close()
        assert srv.proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 10  # not the default 30 s
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()


def test_shutdown_takes_the_timeout_not_twice_and_a_late_second_signal_is_harmless(tmp_path: Path) -> None:
    """A request that never ends (here a PUT whose body stalls) holds the wind-down for
    `--shutdown-timeout`, and aiohttp's shutdown after it only briefly (not the timeout again).
    A second SIGTERM once the wind-down is over is ignored: the jobs are persisted, the exit is
    clean."""
    srv = Server(tmp_path / "data", "--shutdown-timeout", "3s").start()
    try:
        put_open(srv, "kept")
        post(srv, "kept", b'{"airline":"AAL","responsetime":"1.5","time":"1403481600"}')
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        sock.sendall(f"PUT {BASE}/stalled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())
        time.sleep(0.3)
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        while "shutdown_timeout_passed" not in srv.log.read_text():  # the wind-down gave up
            assert srv.proc.poll() is None and time.monotonic() - started < 20
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=30) == 0
        assert 3 <= time.monotonic() - started < 5.5  # a second timeout would make it 6
        sock.close()
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
    events = [json.loads(line) for line in srv.log.read_text().splitlines() if line.startswith("{")]
    assert not [e for e in events if e.get("level") in ("error", "critical")], events
    assert any(e["event"] == "shutdown_timeout_passed" for e in events)
    [kept] = stats_after_restart(tmp_path / "data", "kept")
    assert kept["data_counts"]["processed_record_count"] == 1


def test_a_stalled_stream_is_cut_and_counted_apart_from_disconnects(tmp_path: Path) -> None:
    """Over `anomalyd serve` (aiohttp's test server cancels handlers on a disconnect, which
    production does not): a stream that stalls past `--read-timeout` loses its connection, what
    it sent stays counted, and /metrics counts it as 408, a client that leaves as 499."""
    srv = Server(tmp_path / "data", "--read-timeout", "300ms").start()
    try:
        put_open(srv, "slow")
        stalled = open_stream(srv, "slow")
        assert stalled.recv(65536) == b""  # cut by the server
        stalled.close()
        gone = open_stream(srv, "slow", processed_after=2)
        gone.close()
        deadline = time.monotonic() + 10
        while 'status="499"' not in (text := urllib.request.urlopen(f"{srv.url}/metrics").read().decode()):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
        assert 'anomalyd_http_requests_total{method="POST",route="/_ml/anomaly_detectors/{job_id}/_data",status="408"} 1.0' in text
        assert 'anomalyd_http_requests_total{method="POST",route="/_ml/anomaly_detectors/{job_id}/_data",status="499"} 1.0' in text
        assert job_stats(srv, "slow")["data_counts"]["processed_record_count"] == 2
    finally:
        assert srv.stop(signal.SIGTERM) == 0


def test_one_data_dir_one_server(server: Server, tmp_path: Path) -> None:
    """A second server on the same data directory refuses to start (it would overwrite what the
    first acknowledged), as does one whose port is taken, before it touches any store."""
    env = {**os.environ, "ANOMALYD_DATA_DIR": str(server.data_dir), "ANOMALYD_PORT": str(free_port())}
    r = subprocess.run([str(ANOMALYD), "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"failed to lock the data directory [{server.data_dir}]: another anomalyd is using it" in r.stderr
    other = tmp_path / "other"
    env = {**os.environ, "ANOMALYD_DATA_DIR": str(other), "ANOMALYD_PORT": str(server.port)}
    r = subprocess.run([str(ANOMALYD), "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{server.port}" in r.stderr
    assert "url=" not in r.stderr and not other.exists()  # never said it was ready
    assert http_json(server.url + "/")[0] == 200  # the first goes on serving


def test_access_log_on_request(tmp_path: Path) -> None:
    """`--access-log` logs each request with its status; off by default."""
    for flag, logged in (("--access-log", True), ("--no-access-log", False)):
        srv = Server(tmp_path / flag, flag).start()
        assert http_json(f"{srv.url}/_ml/anomaly_detectors/nope/_stats")[0] == 404
        assert srv.stop(signal.SIGTERM) == 0
        lines = [json.loads(line) for line in srv.log.read_text().splitlines() if line.startswith("{")]
        hits = [e for e in lines if e.get("logger") == "aiohttp.access"]
        assert bool(hits) == logged, lines
        if logged:
            assert '"GET /_ml/anomaly_detectors/nope/_stats HTTP/1.1" 404' in hits[0]["event"]


def test_headers_up_to_16kb_as_elasticsearch(server: Server) -> None:
    """A 16,000-byte header is accepted (Elasticsearch's http.max_header_size is 16 KB; aiohttp's
    default would refuse anything over 8 KB); a larger one is refused with 400."""
    for size, status in ((16_000, b"200"), (17_000, b"400")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * size}\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(65536).split(b" ")[1] == status, size


@pytest.mark.parametrize(("raw", "reason"), [
    (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n", "Got more than 16384 bytes when reading"),
    (b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "Duplicate Content-Length"),
])
def test_requests_that_cannot_be_parsed_get_elasticsearchs_envelope(server: Server, raw: bytes, reason: str) -> None:
    """Answered before any handler, as Elasticsearch answers its HTTP decoder's failures: 400
    illegal_argument_exception in the error envelope (not aiohttp's plain text), then closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"X-Elastic-Product: Elasticsearch" in head
    error = {"type": "illegal_argument_exception", "reason": reason}
    assert json.loads(body) == {"error": {"root_cause": [error], **error}, "status": 400}
    with urllib.request.urlopen(f"{server.url}/metrics") as r:
        assert re.search(r'anomalyd_http_requests_total\{method="-",route="-",status="400"\} [1-9]', r.read().decode())


def test_waiters_whose_clients_left_do_not_fill_the_queue(server: Server) -> None:
    """100 queued posts whose clients disconnect give their places up: the next post queues
    instead of getting 429. (Over `anomalyd serve`, where aiohttp does not cancel a handler
    whose client goes, unlike its test server.)"""
    put_open(server, "q")
    path = f"{BASE}/q/_data"
    holder = open_stream(server, "q")

    def raw_post(body: bytes, timeout: float) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return s

    body = b'{"airline":"AAL","responsetime":"1.5","time":"1403481700"}\n'
    gone = [raw_post(body, 20) for _ in range(100)]
    time.sleep(0.5)
    full = raw_post(body, 20)
    assert full.recv(65536).startswith(b"HTTP/1.1 429"), "the queue is full while they wait"
    full.close()
    for s in gone:
        s.close()
    time.sleep(0.3)
    queued = raw_post(body, 0.5)
    with pytest.raises(socket.timeout):
        queued.recv(65536)  # no 429: it waits for the job
    queued.settimeout(20)
    holder.sendall(b"0\r\n\r\n")
    assert holder.recv(65536).startswith(b"HTTP/1.1 202")
    assert queued.recv(65536).startswith(b"HTTP/1.1 202")
    holder.close()
    queued.close()


def test_lifetime_bucket_count_is_sum_of_responses(server: Server) -> None:
    """_stats' lifetime bucket_count is the sum of the per-request bucket counts (it was once counted twice)."""
    put_open(server, "bc")
    a = post(server, "bc", MINI_FAREQUOTE)                            # bucket 1403481600, current
    b = post(server, "bc", REOPEN_2)                                  # 1000 buckets later
    total = job_stats(server, "bc")["data_counts"]["bucket_count"]
    assert (a["bucket_count"], b["bucket_count"]) == (0, 1000)
    assert total == a["bucket_count"] + b["bucket_count"]


def test_disconnects_and_bad_encodings_are_not_server_errors(server: Server) -> None:
    """Under `anomalyd serve` (no handler cancellation, unlike the test server): a client that
    drops mid-body, or sends gzip that is not gzip, is logged as what it is, never as an error,
    and keeps its counts true."""
    put_open(server, "drop")
    lines = b"".join(b'{"time":%d}\n' % (1403481600 + k) for k in range(10))
    for framing, piece in ((b"Content-Length: 100000", lines), (b"Transfer-Encoding: chunked", b"%x\r\n%s\r\n" % (len(lines), lines))):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST " + f"{BASE}/drop/_data".encode() + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-ndjson\r\n" + framing + b"\r\n\r\n" + piece)
            time.sleep(0.3)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1000) == b""  # no answer owed to a request that never ended
    status, body = http_json(f"{server.url}{BASE}/drop/_data", "POST", gzip.compress(lines)[3:],
                             {**NDJSON, "Content-Encoding": "gzip"})
    assert (status, body["error"]["type"]) == (400, "parse_exception")
    assert post(server, "drop", b'{"time":1403481700}')["processed_record_count"] == 1
    assert job_stats(server, "drop")["data_counts"]["processed_record_count"] == 21
    assert server.stop(signal.SIGTERM) == 0
    events = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] == "client_disconnected"] == ["client_disconnected"] * 2
    assert [e for e in events if e["level"] in ("error", "critical")] == []


def test_kill_9_mid_traffic_leaves_a_clean_store(tmp_path: Path) -> None:
    """kill -9 while jobs are being created, opened and fed: the store opens cleanly, every
    acknowledged job is there and complete, no half-created job exists."""
    data_dir = tmp_path / "data"
    srv = Server(data_dir).start()
    created: list[str] = []          # PUT answered 200
    attempted: list[str] = []        # PUT sent
    acked_records: dict[str, int] = {}
    stop = threading.Event()

    def creator(k: int) -> None:
        i = 0
        while not stop.is_set():
            job = f"crash-{k}-{i}"
            i += 1
            attempted.append(job)
            try:
                status, _ = http_json(f"{srv.url}{BASE}/{job}", "PUT", job_body(job), timeout=5)
                if status != 200:
                    return
                created.append(job)
                http_json(f"{srv.url}{BASE}/{job}/_open", "POST", timeout=5)
                status, body = http_json(f"{srv.url}{BASE}/{job}/_data", "POST", MINI_FAREQUOTE, NDJSON, timeout=5)
                if status == 202:
                    acked_records[job] = body["processed_record_count"]
            except Exception:  # noqa: BLE001 - the server dies under us: refused, reset, truncated
                return

    threads = [threading.Thread(target=creator, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    # Enough traffic to prove something (a slow machine takes longer to get there), then more.
    deadline = time.monotonic() + 20
    while (len(created) <= 10 or not acked_records) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(created) > 10 and acked_records, "too little traffic before the kill to prove anything"

    db = sqlite3.connect(data_dir / "anomalyd.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()

    srv = Server(data_dir).start()
    try:
        status, body = http_json(f"{srv.url}{BASE}")
        assert status == 200
        found = {j["job_id"]: j for j in body["jobs"]}
        assert set(created) <= set(found), "a job whose PUT was acknowledged is missing"
        assert set(found) <= set(attempted)
        for job_id, config in found.items():
            assert config["analysis_config"]["detectors"][0]["field_name"] == "responsetime", job_id
            assert config["data_description"]["time_field"] == "time", job_id
            stats = job_stats(srv, job_id)
            assert stats["state"] in ("opened", "closed"), (job_id, stats["state"])
            dc = stats["data_counts"]
            # one 2-record post per job; its counts may or may not have reached the disk before the kill
            assert dc["processed_record_count"] in (0, 2), (job_id, dc)
            assert dc["input_record_count"] == dc["processed_record_count"] + dc["out_of_order_timestamp_count"] \
                + dc["invalid_date_count"]
        # every job is usable: open ones take data, closed ones open, all delete
        for job_id in list(found)[:20]:
            if job_stats(srv, job_id)["state"] == "closed":
                assert http_json(f"{srv.url}{BASE}/{job_id}/_open", "POST")[0] == 200
            status, _ = http_json(f"{srv.url}{BASE}/{job_id}/_data", "POST",
                                  b'{"airline":"AAL","responsetime":"1","time":"1407081600"}', NDJSON)
            assert status == 202
        for job_id in found:
            assert http_json(f"{srv.url}{BASE}/{job_id}?force=true", "DELETE") == (200, {"acknowledged": True})
        assert http_json(f"{srv.url}{BASE}")[1]["count"] == 0
    finally:
        assert srv.stop(signal.SIGTERM) == 0


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_one_gigabyte_chunked_stream_keeps_memory_flat(server: Server) -> None:
    """1 GB sent chunked (no Content-Length) into one job: the server's peak memory barely moves."""
    import http.client

    put_open(server, "big")
    line = b'{"airline":"AAL","responsetime":132.2046,"sourcetype":"farequote","time":1403@@@@%05d}\n'
    template = b"".join(line % j for j in range((1 << 20) // len(line)))
    chunks = -(-(1 << 30) // len(template))
    assert server.proc is not None
    before = _peak_rss_bytes(server.proc.pid)

    def body():
        for i in range(chunks):
            yield template.replace(b"@@@@", b"%04d" % i)

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    conn.request("POST", f"{BASE}/big/_data", body=body(), headers=NDJSON, encode_chunked=True)
    resp = conn.getresponse()
    result = json.loads(resp.read())
    conn.close()
    assert resp.status == 202, result
    assert result["input_bytes"] == chunks * len(template) >= 1 << 30
    assert result["processed_record_count"] == chunks * template.count(b"\n")
    growth = _peak_rss_bytes(server.proc.pid) - before
    assert growth < 64 << 20, f"peak RSS grew by {growth >> 20} MiB"
