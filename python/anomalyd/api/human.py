"""`?human=true`: Elasticsearch's human-readable extras on the counts and job endpoints.

Elasticsearch writes every timestamp of `DataCounts` (and of `model_size_stats`) through its
time-field helper, which with `human` first writes `<name>_string`, the ISO-8601 UTC form with
milliseconds (`2014-06-23T00:00:00.000Z`), then the number (`post-data.md` §1.3). Only requests
that ask pay for it: the counts are re-rendered from the JSON the engine wrote.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .datemath import DAY_MS, civil
from .params import as_bool

#: The timestamps of DataCounts and model_size_stats, in any order.
TIME_FIELDS = frozenset({"earliest_record_timestamp", "latest_record_timestamp", "last_data_time",
                         "latest_empty_bucket_timestamp", "latest_sparse_bucket_timestamp", "log_time",
                         "timestamp"})
#: The timestamps of a job's configuration.
JOB_TIME_FIELDS = frozenset({"create_time", "finished_time"})

def wants_human(request: web.Request) -> bool:
    return as_bool({"human": request.query.get("human")}, "human", False)


def iso_millis(ms: int) -> str:
    """Epoch ms as `yyyy-MM-ddTHH:mm:ss.SSSZ` (proleptic Gregorian, UTC), for any 64-bit value:
    years beyond 9999 get a `+`, years before 0 a `-` (java.time's ISO year style)."""
    days, rem = divmod(ms, DAY_MS)
    year, month, day = civil(days)
    if year > 9999:
        y = f"+{year}"
    elif year < 0:
        y = f"-{-year:04d}"
    else:
        y = f"{year:04d}"
    secs, milli = divmod(rem, 1000)
    return f"{y}-{month:02d}-{day:02d}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{milli:03d}Z"


def with_time_strings(doc: dict[str, Any], fields: frozenset[str] = TIME_FIELDS) -> dict[str, Any]:
    """`doc` with `<name>_string` written before each timestamp of `fields` it holds."""
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if name in fields and isinstance(value, int):
            out[name + "_string"] = iso_millis(value)
        out[name] = value
    return out


def counts_body(body: bytes) -> bytes:
    """A `_data` response (DataCounts JSON) with the human-readable timestamps."""
    return json.dumps(with_time_strings(json.loads(body)), separators=(",", ":")).encode()
