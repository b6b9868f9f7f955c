"""Per-line Python baselines: the DataCounts accounting of post-data.md §1–§3 with orjson,
pysimdjson and msgspec.

Each baseline splits the body on newlines, parses every line into a dict and does per record what
the native core must do: count the leaf fields ``n`` (nested objects flattened, an array counts 1,
a null counts nothing), add ``max(n - 1, 0)`` to input_field_count, count the required fields (the
time field and the analysis fields) that are absent or null, parse the epoch-ms time (a number or
a numeric string, truncated to whole ms), apply the out-of-order rule and, for processed records,
read the metric value and the two string fields.  The values read feed a checksum (sum of the
metric, total length of the strings) that the harnesses compare.

pysimdjson parses with ``recursive=True``: as fast here as its lazy proxies (which convert every
value anyway when all fields are walked), and it cannot trip over the parser's refusal to parse
again while a proxy of the previous document is alive.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import simdjson


@dataclass(frozen=True)
class Job:
    """What the accounting needs from the job config."""

    time_field: str
    metric_field: str
    string_fields: tuple[str, str]
    bucket_span_ms: int
    latency_s: int = 0


@dataclass
class Counts:
    processed: int = 0
    invalid_date: int = 0
    missing_field: int = 0
    out_of_order: int = 0
    input_field_count: int = 0
    metric_sum: float = 0.0
    string_bytes: int = 0

    def counters(self) -> dict[str, int]:
        """The DataCounts counters every implementation must agree on."""
        return {"processed": self.processed, "invalid_date": self.invalid_date,
                "missing_field": self.missing_field, "out_of_order": self.out_of_order,
                "input_field_count": self.input_field_count}


# Types of a value that leave its field absent: null, or an object (whose leaves are "name.x").
ABSENT = frozenset((type(None), dict))


def _leaves(obj: dict) -> int:
    n = 0
    for v in obj.values():
        if v is not None:
            n += _leaves(v) if type(v) is dict else 1
    return n


def _epoch_ms(value: Any) -> int | None:
    """Time in ms per the epoch_ms format (a double, truncated), or None when it does not parse."""
    kind = type(value)
    if kind is float or kind is str:
        try:
            ms = float(value)
        except ValueError:
            return None
        return int(ms) if math.isfinite(ms) else None
    return value if kind is int else None


def account(body: bytes, loads: Callable[[bytes], dict], job: Job) -> Counts:
    """Split ``body`` into lines, parse each with ``loads`` and do the accounting."""
    tf, mf, (f1, f2) = job.time_field, job.metric_field, job.string_fields
    span, latency = job.bucket_span_ms, job.latency_s
    fields = missing = invalid = out_of_order = processed = string_bytes = 0
    metric_sum = 0.0
    latest = 0
    min_second = 0  # trunc(t / 1000) below this is out of order: bucket start of latest - latency
    for line in body.split(b"\n"):
        if not line:
            continue
        d = loads(line)
        n = _leaves(d)
        if n > 1:
            fields += n - 1
        t, m, s1, s2 = d.get(tf), d.get(mf), d.get(f1), d.get(f2)
        tt, mt, st1, st2 = type(t), type(m), type(s1), type(s2)
        missing += (tt in ABSENT) + (mt in ABSENT) + (st1 in ABSENT) + (st2 in ABSENT)
        ms = t if tt is int else _epoch_ms(t)
        if ms is None:
            invalid += 1
        elif (ms // 1000 if ms >= 0 else -(-ms // 1000)) < min_second:
            out_of_order += 1
        else:
            processed += 1
            if ms > latest:
                latest = ms
                min_second = latest // span * span // 1000 - latency
            if mt is float or mt is int:
                metric_sum += m
            if st1 is str:
                string_bytes += len(s1)
            if st2 is str:
                string_bytes += len(s2)
    return Counts(processed=processed, invalid_date=invalid, missing_field=missing, out_of_order=out_of_order,
                  input_field_count=fields, metric_sum=metric_sum, string_bytes=string_bytes)


def run_orjson(body: bytes, job: Job) -> Counts:
    return account(body, orjson.loads, job)


def run_pysimdjson(body: bytes, job: Job) -> Counts:
    parse = simdjson.Parser().parse
    return account(body, lambda line: parse(line, True), job)


def run_msgspec(body: bytes, job: Job) -> Counts:
    return account(body, msgspec.json.Decoder().decode, job)


BASELINES = {"orjson": run_orjson, "pysimdjson": run_pysimdjson, "msgspec": run_msgspec}
