"""Server settings: one dataclass, filled from CLI flags or ``ANOMALYD_<FLAG>`` variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size(text: str | int) -> int:
    """``100mb`` → bytes (Elasticsearch byte-size units; a bare number is bytes)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in {"", *_SIZE_UNITS}:
        raise ValueError(f"invalid size [{text}]")
    return int(float(m.group(1)) * _SIZE_UNITS.get(m.group(2).lower() or "b", 1))


def parse_duration(text: str | float) -> float:
    """``30s`` → seconds (``ms``, ``s``, ``m``, ``h``, ``d``; a bare number is seconds)."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in {"", *_TIME_UNITS}:
        raise ValueError(f"invalid duration [{text}]")
    return float(m.group(1)) * _TIME_UNITS.get(m.group(2).lower() or "s", 1.0)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path = Path("./data")
    log_format: str = "console"
    log_level: str = "info"
    max_content_length: int = 100 << 20
    shutdown_timeout: float = 30.0
    #: A client that sends no body bytes for this long loses the connection.
    read_timeout: float = 60.0
    #: One JSON document larger than this fails the request (chunked streams are unbounded).
    max_document_bytes: int = 16 << 20
    #: Send Elasticsearch's deprecation ``Warning`` header on ``_data`` (off by default).
    deprecation_warning: bool = False
    #: Seconds between group commits of lifetime counts.
    commit_interval: float = 0.05
    #: Seconds between periodic model snapshots of an open job (also taken on close and shutdown).
    snapshot_interval: float = 300.0
    #: Require HTTP Basic or ApiKey credentials and check privileges (users in the data dir).
    security: bool = False
    #: Serve a non-loopback address without security (refused unless set).
    allow_insecure: bool = False
    #: PEM certificate chain and private key: serve HTTPS when both are given.
    tls_cert: Path | None = None
    tls_key: Path | None = None
