"""Training workload of the profile-guided build (`bench/pgo/build.sh`, run by `make setup`).

The instrumented extension runs this; the counts it leaves tell the final build which branches
and calls are hot. What LLVM sees no count for it treats as cold and compiles for size, so the
mix covers every path a live server takes, in proportions like a real feed's:

- NDJSON of it_ops-like records (mostly), through the bench's `mean` by-host job, a `count`
  job and a job of several detectors, in 1 MiB chunks;
- the same records in other shapes: a JSON array, spaced keys with ISO-8601 text times read by
  a date pattern, epoch seconds with fractions, nested objects, arrays and escapes (the general
  reader), all cut into uneven pieces;
- small requests of ten records, each its own request, as log shippers and wrk send them;
- SMILE (a vector Jackson wrote, from tests/smile/) and UTF-16 bodies;
- every detector function, a reset of buckets, an aborted request;
- interim flushes, results, a snapshot and its restore;
- every SIMD level the CPU has, each with the whole mix (each level is its own code).

Deterministic and quick: about ten seconds instrumented.
"""

import datetime
import itertools
import json
import random
import sys
from pathlib import Path

from anomalyd import _native

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "http"))
from corpus import REGIONS, START_MS, record, times  # noqa: E402  (the bench's record shape)


def job(job_id: str, detectors: list[dict], time_format: str = "epoch_ms", influencers=()) -> str:
    return json.dumps({"job_id": job_id,
                       "analysis_config": {"bucket_span": "5m", "detectors": detectors, "influencers": list(influencers)},
                       "data_description": {"time_field": "time", "time_format": time_format}})


MEAN = [{"function": "mean", "field_name": "kpi", "by_field_name": "host", "partition_field_name": "region"}]
COUNT = [{"function": "count"}]
SEVERAL = [{"function": "sum", "field_name": "kpi", "partition_field_name": "region"},
           {"function": "high_count", "by_field_name": "region"},
           {"function": "max", "field_name": "kpi"}]
# The other functions, once each (their sides and features are code of their own).
REST = [{"function": "metric", "field_name": "kpi", "partition_field_name": "region"},
        {"function": "min", "field_name": "kpi"},
        {"function": "low_mean", "field_name": "kpi", "by_field_name": "region"},
        {"function": "high_mean", "field_name": "kpi"},
        {"function": "low_sum", "field_name": "kpi"},
        {"function": "low_count"},
        {"function": "non_zero_count", "by_field_name": "region"},
        {"function": "low_non_zero_count"},
        {"function": "high_non_zero_count"}]
# Documents of airline, host, time (epoch seconds) and v, as Jackson writes SMILE.
SMILE_BODY = ROOT / "tests" / "smile" / "vectors" / "shared_values.smile"
SMILE_JOB = [{"function": "mean", "field_name": "v", "by_field_name": "host", "partition_field_name": "airline"}]


def iso(ms: int) -> str:
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def spaced_iso(rng: random.Random, t: int) -> str:
    return (f'{{"time": "{iso(t)}", "kpi": {rng.randrange(1000)}, "host": "srv-{rng.randrange(200)}", '
            f'"region": "{rng.choice(REGIONS)}"}}')


def general(rng: random.Random, t: int) -> str:
    extra = rng.choice(['"tags":["a","b",1]', '"meta":{"k":{"v":[1,2]}}', '"msg":"say \\"hi\\"\\n"', '"ok":true'])
    return (f'{{"time":{t / 1000:.3f},"kpi":{rng.uniform(-5, 5):.3e},{extra},'
            f'"host":"srv-{rng.randrange(50)}","region":"{rng.choice(REGIONS)}"}}')


def ndjson(make, n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return ("\n".join(make(rng, t) for t in itertools.islice(times(rng), n)) + "\n").encode()


def pieces(body: bytes, rng: random.Random, most: int) -> list[bytes]:
    out, i = [], 0
    while i < len(body):
        n = rng.randrange(1, most)
        out.append(body[i:i + n])
        i += n
    return out


def read_well(counts: bytes) -> None:
    """Every record dated and most processed: a training body that went astray (a time format
    that no longer reads, say) would leave the hot paths untrained."""
    c = json.loads(counts)
    assert c["invalid_date_count"] == 0 and c["processed_record_count"] > 0.9 * (
        c["processed_record_count"] + c["out_of_order_timestamp_count"]), c


def post(engine: _native.JobEngine, chunks: list[bytes]) -> None:
    engine.start_request(sum(map(len, chunks)))
    engine.feed_many(chunks)
    read_well(engine.finish_request(0))
    engine.take_results()


def whole(body: bytes) -> list[bytes]:
    return [body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)]


def mix(level: str, records: bytes, spaced: bytes, other: bytes) -> None:
    rng = random.Random(level)
    # Most of the time: large NDJSON bodies into the usual jobs.
    for cfg in (job("m", MEAN, influencers=["host"]), job("c", COUNT), job("s", SEVERAL, influencers=["region"])):
        engine = _native.JobEngine(cfg)
        post(engine, whole(records))
        engine.flush(calc_interim=True)
        engine.take_results()
        snapshot = engine.model_snapshot(1 << 20)
        _native.JobEngine(cfg).restore_model(snapshot)
    # Other shapes and time formats, in uneven pieces.
    array = b"[" + b",".join(records[:2_000_000].split(b"\n")[:-1]) + b"]"
    post(_native.JobEngine(job("a", MEAN)), pieces(array, rng, 70_000))
    post(_native.JobEngine(job("i", MEAN, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")), pieces(spaced, rng, 70_000))
    post(_native.JobEngine(job("g", SEVERAL, "epoch")), pieces(other, rng, 70_000))
    head = records[:records.index(b"\n", 200_000) + 1]
    post(_native.JobEngine(job("p", COUNT)), pieces(head, rng, 64))
    # Small requests of ten records each.
    engine = _native.JobEngine(job("r", MEAN, influencers=["host"]))
    lines = records.split(b"\n")
    for i in range(0, 20_000, 10):
        engine.ingest_body(b"\n".join(lines[i:i + 10]) + b"\n", 0, sized=True)
    read_well(engine.stats_json())
    engine.take_results()
    # Every other function; a reset of the last hour's buckets; a request cut off.
    engine = _native.JobEngine(job("f", REST, influencers=["region", "host"]))
    post(engine, pieces(head, rng, 70_000))
    engine.start_request(None)
    engine.reset_buckets(START_MS, START_MS + 3_600_000)
    engine.feed(head[:100_000])
    engine.abort_request()
    # Bodies in UTF-16 (Jackson detects it) and in SMILE.
    post(_native.JobEngine(job("u", COUNT)), pieces(head.decode().encode("utf-16-le"), rng, 70_000))
    smile = SMILE_BODY.read_bytes() * 200
    engine = _native.JobEngine(job("b", SMILE_JOB, "epoch"))
    engine.start_request(len(smile), True)
    engine.feed_many(pieces(smile, rng, 4_000))
    read_well(engine.finish_request(0))


def main() -> None:
    corpora = ndjson(record, 120_000, 1), ndjson(spaced_iso, 20_000, 2), ndjson(general, 20_000, 3)
    start = _native.simd_level()
    try:
        for level in ("avx2", "sse2", "neon", "scalar"):
            if _native.set_simd_level(level):
                mix(level, *corpora)
    finally:
        _native.set_simd_level(start)


if __name__ == "__main__":
    main()
