"""Pure-Python ingest baseline: aiohttp + uvloop, ``readany()``, lines split across chunks with a
carry buffer, ``orjson.loads`` per line, and the DataCounts accounting anomalyd does per record
(post-data.md, same rules as bench/core/baselines.py): leaf fields (nested objects flattened, null
counts nothing) -> input_field_count += n - 1; required fields (time field and the three analysis
fields) absent or null -> missing_field_count; epoch-ms time parse (int, or a float / numeric
string truncated) -> invalid_date_count; out of order when trunc(t / 1000) is before the start of
the latest bucket (latency 0); the metric and the two string fields of processed records are read.

State (latest timestamp) is kept per request path, i.e. per job, across requests.  Any path is
accepted; the answer is the per-request counts as JSON (anomalyd's field names).

    python python_server.py --port P [--bucket-span-ms 300000]
"""

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from baselines import ABSENT, _epoch_ms, _leaves  # noqa: E402  (the same accounting helpers)

TIME, METRIC, BY, PARTITION = "time", "kpi", "host", "region"


class JobState:
    __slots__ = ("latest", "min_second")

    def __init__(self) -> None:
        self.latest = 0
        self.min_second = -(1 << 62)


class Counts:
    __slots__ = ("processed", "invalid", "missing", "out_of_order", "fields", "bad", "metric_sum", "string_bytes")

    def __init__(self) -> None:
        self.processed = self.invalid = self.missing = self.out_of_order = self.fields = self.bad = 0
        self.metric_sum = 0.0
        self.string_bytes = 0


def account(lines: list[bytes], st: JobState, c: Counts, span: int) -> None:
    loads = orjson.loads
    fields = missing = invalid = ooo = processed = string_bytes = bad = 0
    metric_sum = 0.0
    latest, min_second = st.latest, st.min_second
    for line in lines:
        if not line or line.isspace():
            continue
        try:
            d = loads(line)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if type(d) is not dict:
            bad += 1
            continue
        n = 0
        for v in d.values():
            if v is not None:
                n += _leaves(v) if type(v) is dict else 1
        if n > 1:
            fields += n - 1
        t, m, s1, s2 = d.get(TIME), d.get(METRIC), d.get(BY), d.get(PARTITION)
        tt, mt, st1, st2 = type(t), type(m), type(s1), type(s2)
        missing += (tt in ABSENT) + (mt in ABSENT) + (st1 in ABSENT) + (st2 in ABSENT)
        ms = t if tt is int else _epoch_ms(t)
        if ms is None:
            invalid += 1
        elif (ms // 1000 if ms >= 0 else -(-ms // 1000)) < min_second:
            ooo += 1
        else:
            processed += 1
            if ms > latest:
                latest = ms
                min_second = latest // span * span // 1000
            if mt is float or mt is int:
                metric_sum += m
            if st1 is str:
                string_bytes += len(s1)
            if st2 is str:
                string_bytes += len(s2)
    st.latest, st.min_second = latest, min_second
    c.fields += fields
    c.missing += missing
    c.invalid += invalid
    c.out_of_order += ooo
    c.processed += processed
    c.string_bytes += string_bytes
    c.bad += bad
    c.metric_sum += metric_sum


def make_app(span: int) -> web.Application:
    jobs: dict[str, JobState] = {}

    async def handle(request: web.Request) -> web.Response:
        st = jobs.get(request.path)
        if st is None:
            st = jobs[request.path] = JobState()
        c = Counts()
        content = request.content
        carry = b""
        nbytes = 0
        while True:
            chunk = await content.readany()
            if not chunk:
                break
            nbytes += len(chunk)
            if carry:
                chunk = carry + chunk
            cut = chunk.rfind(b"\n")
            if cut < 0:
                carry = chunk
                continue
            carry = chunk[cut + 1:]
            account(chunk[:cut].split(b"\n"), st, c, span)
        if carry:
            account([carry], st, c, span)
        body = orjson.dumps({
            "processed_record_count": c.processed, "input_bytes": nbytes, "input_field_count": c.fields,
            "invalid_date_count": c.invalid, "missing_field_count": c.missing,
            "out_of_order_timestamp_count": c.out_of_order, "malformed_count": c.bad,
            "input_record_count": c.processed + c.invalid + c.out_of_order,
            "metric_sum": c.metric_sum, "string_bytes": c.string_bytes,
        })
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bucket-span-ms", type=int, default=300_000)
    args = ap.parse_args()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(make_app(args.bucket_span_ms), host=args.host, port=args.port, access_log=None, print=None,
                loop=loop, shutdown_timeout=1.0, handle_signals=True)


if __name__ == "__main__":
    main()
