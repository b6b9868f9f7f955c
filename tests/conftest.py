"""Shared fixtures: the app in-process (pytest-aiohttp) and the real server as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from anomalyd.app import create_app
from anomalyd.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ANOMALYD = Path(sys.executable).parent / "anomalyd"

POST_DATA_JOB = {
    "job_id": "post-data-job",
    "description": "Analysis of response time by airline",
    "analysis_config": {
        "bucket_span": "1h",
        "detectors": [{"function": "metric", "field_name": "responsetime", "by_field_name": "airline"}],
    },
    "data_description": {"format": "xcontent", "time_field": "time", "time_format": "epoch"},
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**fields): Settings fields the test's app gets instead of the defaults")


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The test app's settings: its store under `tmp_path`, counts committed at once, and the
    fields a `@pytest.mark.settings(...)` on the test gives."""
    marker = request.node.get_closest_marker("settings")
    return Settings(data_dir=tmp_path / "data", commit_interval=0.0, **(marker.kwargs if marker else {}))


@pytest.fixture
def aiohttp_client(aiohttp_client):
    """pytest-aiohttp's test clients, with the server handling disconnects as `anomalyd serve`
    does: aiohttp's test server cancels the handler of a client that disconnects, where the real
    server (aiohttp's default) lets it run on, and what a handler does then is part of the
    behaviour under test."""

    async def make(*args, **kwargs):
        client = await aiohttp_client(*args, **kwargs)
        client.server.runner.server.handler_cancellation = False
        return client

    return make


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    """An aiohttp test client over a real socket, against a fresh app and store."""
    return await aiohttp_client(create_app(settings))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`anomalyd serve` as a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        #: The server's log (JSON lines), in a file: a pipe nobody reads would fill and block it.
        self.log = data_dir.parent / f"server-{data_dir.name}-{self.port}.log"

    def start(self) -> Server:
        env = {**os.environ, "ANOMALYD_PORT": str(self.port), "ANOMALYD_DATA_DIR": str(self.data_dir)}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(ANOMALYD), "serve", "--log-format", "json", *self.extra], env=env,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self, sig: int = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


ES8_DIR = ROOT / ".venv" / "es8"
ES8_PINS = ("elasticsearch==8.19.3", "elastic-transport==8.19.0")


def es8_path() -> Path:
    """elasticsearch 8.x in a separate target dir under .venv, installed once and reused (the
    9.x client is the one installed in the venv): put it first on PYTHONPATH of a subprocess."""
    marker = ES8_DIR / "elasticsearch-8.19.3.dist-info"
    if not marker.exists():
        import shutil

        shutil.rmtree(ES8_DIR, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "--target", str(ES8_DIR), *ES8_PINS], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.skip(f"could not install {' '.join(ES8_PINS)}: {r.stderr.strip()[-500:]}")
    return ES8_DIR


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data").start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.stop()


# -- helpers for the real-socket tests (test_real_clients.py, test_syslog_ng.py) -------------------


def http_json(url: str, method: str = "GET", body: bytes | dict | None = None,
              headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict]:
    """One plain `urllib` request; the status and the JSON body (error statuses included)."""
    import json
    import urllib.error
    import urllib.request

    hdrs = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, (json.loads(raw) if raw else {})


def job_stats(server: Server, job_id: str) -> dict:
    status, body = http_json(f"{server.url}/_ml/anomaly_detectors/{job_id}/_stats")
    assert status == 200, body
    return body["jobs"][0]
