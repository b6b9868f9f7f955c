"""syslog-ng 3.38's `http()` destination tailing an NDJSON file into a job (wire-compat.md §4.1).

Needs Debian's `syslog-ng-core` and `syslog-ng-mod-http` (CI installs them); skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Server, http_json, job_stats

BASE = "/_ml/anomaly_detectors"
JOB = "syslog-job"
N_LINES = 2000
T0_MS = 1_700_000_000_000
JOB_CONFIG = {
    "analysis_config": {"bucket_span": "15m",
                        "detectors": [{"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}]},
    "data_description": {"time_field": "time", "time_format": "epoch_ms"},
}


def syslog_ng_binary() -> str | None:
    return shutil.which("syslog-ng") or next(
        (p for p in ("/usr/sbin/syslog-ng", "/usr/local/sbin/syslog-ng") if os.access(p, os.X_OK)), None)


def http_module_ok(binary: str) -> bool:
    try:
        r = subprocess.run([binary, "--module-registry"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(r"^Module: http\s*\n\s*Status: ok", r.stdout, re.MULTILINE) is not None


SYSLOG_NG = syslog_ng_binary()
pytestmark = [
    pytest.mark.skipif(SYSLOG_NG is None, reason="syslog-ng is not installed (apt-get install syslog-ng-core)"),
    pytest.mark.skipif(SYSLOG_NG is not None and not http_module_ok(SYSLOG_NG),
                       reason="syslog-ng's http() module is missing (apt-get install syslog-ng-mod-http)"),
]

CONFIG = """\
@version: 3.38
options {{ stats-freq(0); }};
source s_in {{ file("{infile}" flags(no-parse) follow-freq(0.2) log-msg-size(65536) log-iw-size(10000)); }};
destination d_ml {{
  http(
    url("{url}")
    method("POST")
    headers("Content-Type: application/x-ndjson")
    body("${{MESSAGE}}")
    delimiter("\\n")
    body-suffix("\\n")
    batch-lines(500) batch-bytes(262144) batch-timeout(1000)
    workers(1)
    retries(3) time-reopen(2)
    response-action(400 => drop, 409 => drop)
    persist-name("ml_{job}")
  );
}};
log {{ source(s_in); destination(d_ml); flags(flow-control); }};
"""


def request_counts(server: Server) -> dict[str, float]:
    """`anomalyd_http_requests_total` of `_data` by status, from /metrics."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    data = re.escape('method="POST",route="/_ml/anomaly_detectors/{job_id}/_data"')
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^anomalyd_http_requests_total\{' + data + r',status="(\d+)"\} (\S+)$', text, re.MULTILINE)}


@contextlib.contextmanager
def syslog_ng(tmp_path: Path, url: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """syslog-ng running CONFIG, tailing the file it yields, posting into `url`; it must exit
    cleanly on SIGTERM at the end."""
    infile = tmp_path / "in.ndjson"
    infile.touch()
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(CONFIG.format(infile=infile, url=url, job=JOB.replace("-", "_")))
    pidfile, ctl, persist = tmp_path / "syslog-ng.pid", tmp_path / "syslog-ng.ctl", tmp_path / "syslog-ng.persist"
    assert SYSLOG_NG is not None
    log = open(tmp_path / "syslog-ng.log", "wb")
    proc = subprocess.Popen([SYSLOG_NG, "-F", "-e", "-f", str(conf), "-R", str(persist), "-p", str(pidfile),
                             "-c", str(ctl), "--no-caps"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not pidfile.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"syslog-ng did not start: {(tmp_path / 'syslog-ng.log').read_text()}")
            time.sleep(0.05)
        yield proc, infile
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()
    assert proc.returncode == 0, (tmp_path / "syslog-ng.log").read_text()[-2000:]


def ndjson(first: int, n: int) -> bytes:
    lines = (json.dumps({"time": T0_MS + 1000 * i, "airline": ("AAL", "JZA", "KLM")[i % 3],
                         "responsetime": round(100 + (i * 37 % 101) / 7, 4), "seq": i}, separators=(",", ":"))
             for i in range(first, first + n))
    return "".join(line + "\n" for line in lines).encode()


def wait_processed(server: Server, proc: subprocess.Popen[bytes], n: int, tmp_path: Path, timeout: float = 30) -> dict:
    """The job's counts once `n` records are processed (or at the deadline)."""
    deadline = time.monotonic() + timeout
    dc = job_stats(server, JOB)["data_counts"]
    while dc["processed_record_count"] < n and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"syslog-ng exited: {(tmp_path / 'syslog-ng.log').read_text()}")
        time.sleep(0.1)
        dc = job_stats(server, JOB)["data_counts"]
    return dc


def test_syslog_ng_http_destination_feeds_a_job(server: Server, tmp_path: Path) -> None:
    assert http_json(f"{server.url}{BASE}/{JOB}", "PUT", JOB_CONFIG)[0] == 200
    assert http_json(f"{server.url}{BASE}/{JOB}/_open", "POST")[0] == 200
    with syslog_ng(tmp_path, f"{server.url}{BASE}/{JOB}/_data") as (proc, infile):
        payload = ndjson(0, N_LINES)
        with open(infile, "ab") as f:
            f.write(payload)
        dc = wait_processed(server, proc, N_LINES, tmp_path)
        assert dc["processed_record_count"] == N_LINES, (dc, (tmp_path / "syslog-ng.log").read_text()[-2000:])
        time.sleep(0.3)  # nothing more arrives: no batch was resent
        dc = job_stats(server, JOB)["data_counts"]
        assert (dc["processed_record_count"], dc["input_bytes"], dc["input_field_count"],
                dc["processed_field_count"], dc["invalid_date_count"], dc["missing_field_count"],
                dc["out_of_order_timestamp_count"]) == (N_LINES, len(payload), 3 * N_LINES, 2 * N_LINES, 0, 0, 0)
        assert (dc["earliest_record_timestamp"], dc["latest_record_timestamp"]) == \
            (T0_MS, T0_MS + 1000 * (N_LINES - 1))

        statuses = request_counts(server)
        errors = {s: n for s, n in statuses.items() if int(s) >= 300}
        assert not errors, statuses
        # batch-lines(500): at least 4 posts (syslog-ng may cut more batches on its read boundaries)
        assert statuses.get("202", 0) >= N_LINES // 500, statuses

    dc = job_stats(server, JOB)["data_counts"]
    assert dc["processed_record_count"] == N_LINES
    assert http_json(f"{server.url}{BASE}/{JOB}/_close", "POST") == (200, {"closed": True})


def test_a_restart_under_a_live_feed_counts_every_record_once(tmp_path: Path) -> None:
    """anomalyd restarted (SIGTERM, down for 3 s, started again on the same port and data
    directory) while syslog-ng feeds it with the README's configuration: the batch under way
    finishes, the ones after are refused unread or cannot connect, and are sent again to the new
    server; meanwhile more lines are written than syslog-ng's queue holds (`flow-control` pauses
    reading instead of dropping them). Every record is counted exactly once."""
    data_dir = tmp_path / "data"
    srv = Server(data_dir).start()
    n, step = 24_000, 500
    try:
        assert http_json(f"{srv.url}{BASE}/{JOB}", "PUT", JOB_CONFIG)[0] == 200
        assert http_json(f"{srv.url}{BASE}/{JOB}/_open", "POST")[0] == 200
        with syslog_ng(tmp_path, f"{srv.url}{BASE}/{JOB}/_data") as (proc, infile):
            payload = b""
            down_since = None
            with open(infile, "ab") as f:
                for first in range(0, n, step):
                    if first == 4_000:
                        assert srv.stop(signal.SIGTERM) == 0
                        down_since = time.monotonic()
                    piece = ndjson(first, step)
                    f.write(piece)
                    f.flush()
                    payload += piece
                    time.sleep(0.02)
            assert down_since is not None
            time.sleep(max(0.0, down_since + 3 - time.monotonic()))
            restarted = Server(data_dir)
            restarted.port, restarted.url = srv.port, srv.url
            srv = restarted.start()
            dc = wait_processed(srv, proc, n, tmp_path, timeout=60)
            time.sleep(0.5)
            dc = job_stats(srv, JOB)["data_counts"]
            assert (dc["processed_record_count"], dc["input_bytes"], dc["out_of_order_timestamp_count"]) == \
                (n, len(payload), 0), (dc, (tmp_path / "syslog-ng.log").read_text()[-3000:])
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
