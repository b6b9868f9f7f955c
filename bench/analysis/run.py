"""`make bench-analysis`: what the analysis engine costs, in one run on one pinned core.

1. Series throughput and memory: `examples/analysis_speed.rs` drives 10,000 series (100
   partitions × 100 by values, `mean`) over 1,000 five-minute buckets straight into the engine;
   series-bucket updates per second include aggregation, model updates and scoring.
2. Ingest cost: the head of the bench-core corpus fed through `JobEngine` for a job with a
   `mean(kpi)` detector partitioned by `region` and for the same job with `count` only, runs
   interleaved; the ratio of their throughputs is what analysis leaves of ingest speed. The
   harder `mean(kpi) by host partitioned by region` (1,200 series, every one updated each
   bucket) is reported beside it.

Ends with one JSON line: `series_bucket_updates_per_s`, `bytes_per_series`, `ingest_mean_vs_count`
(and `ingest_mean_by_host_vs_count`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "core"))
from corpus import corpus_path  # noqa: E402
from run import pin_one_cpu  # noqa: E402  (bench/core/run.py)

RUNS = 3
CHUNK = 1 << 20
CORPUS_BYTES = 100_000_000


def job(detector: dict) -> str:
    return json.dumps({"job_id": "bench", "analysis_config": {"bucket_span": "5m", "detectors": [detector]},
                       "data_description": {"time_field": "time", "time_format": "epoch_ms"}})


MEAN = job({"function": "mean", "field_name": "kpi", "partition_field_name": "region"})
MEAN_BY_HOST = job({"function": "mean", "field_name": "kpi", "by_field_name": "host", "partition_field_name": "region"})
COUNT = job({"function": "count"})


def series_bench(cpu: int) -> dict:
    subprocess.run(["cargo", "build", "--release", "-q", "--example", "analysis_speed"], cwd=ROOT, check=True)
    exe = ROOT / "target" / "release" / "examples" / "analysis_speed"
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(["taskset", "-c", str(cpu), str(exe)], capture_output=True, text=True, check=True,
                             env={**os.environ, "SERIES": "10000", "BUCKETS": "1000"})
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = sorted(runs, key=lambda r: r["series_bucket_updates_per_s"])[len(runs) // 2]
    print(f"series: {best['series']} x {best['buckets']} buckets: "
          f"{best['series_bucket_updates_per_s'] / 1e6:.2f} M series-bucket updates/s "
          f"(model updates alone {best['model_updates_per_s'] / 1e6:.2f} M/s), "
          f"{best['bytes_per_series']:.0f} bytes per series")
    return best


def ingest_once(config: str, chunks: list[bytes]) -> float:
    from anomalyd._native import JobEngine

    engine = JobEngine(config)
    started = time.perf_counter()
    engine.start_request()
    for c in chunks:
        engine.feed(c)
    engine.finish_request(0)
    engine.take_results()
    return time.perf_counter() - started


def ingest_bench() -> dict[str, float]:
    """GB/s of each job over the same bytes, runs interleaved; medians."""
    # The bench-core corpus (shared, so neither benchmark regenerates it), cut to whole lines.
    with corpus_path().open("rb") as f:
        head = f.read(CORPUS_BYTES)
    body = head[: head.rfind(b"\n") + 1]
    chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]
    jobs = {"count": COUNT, "mean": MEAN, "mean_by_host": MEAN_BY_HOST}
    seconds: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(RUNS):
        for name, config in jobs.items():
            seconds[name].append(ingest_once(config, chunks))
    gbps = {name: len(body) / 1e9 / statistics.median(s) for name, s in seconds.items()}
    print(f"ingest {len(body) / 1e6:.0f} MB: count only {gbps['count']:.3f} GB/s, mean partitioned by region "
          f"{gbps['mean']:.3f} GB/s, mean by host partitioned by region {gbps['mean_by_host']:.3f} GB/s")
    return gbps


def main() -> None:
    cpu = pin_one_cpu()
    print(f"pinned to CPU {cpu}")
    series = series_bench(cpu)
    gbps = ingest_bench()
    result = {
        "series_bucket_updates_per_s": round(series["series_bucket_updates_per_s"]),
        "model_updates_per_s": round(series["model_updates_per_s"]),
        "bytes_per_series": round(series["bytes_per_series"]),
        "ingest_count_gbps": round(gbps["count"], 3),
        "ingest_mean_gbps": round(gbps["mean"], 3),
        "ingest_mean_vs_count": round(gbps["mean"] / gbps["count"], 3),
        "ingest_mean_by_host_gbps": round(gbps["mean_by_host"], 3),
        "ingest_mean_by_host_vs_count": round(gbps["mean_by_host"] / gbps["count"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
