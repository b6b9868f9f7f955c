"""`make eval-nab`: the Numenta Anomaly Benchmark through the real HTTP API.

Starts `anomalyd serve` on a free loopback port with a scratch data dir, then for every NAB file:
one job (bucket_span = the file's median interval, one `mean(value)` detector, the same
configuration everywhere), all rows posted as NDJSON, `_flush` with `advance_time` past the last
row so every bucket is final, and `results/records` read back. Each row scores its bucket's
`initial_record_score` / 100 (0 when the bucket has no record): the causal score a user alerting
on live results would have seen. No labels, no whole-file minimum or maximum reach the server.

Prints the three NAB profiles, a per-category table and fixed-threshold figures; the last line
is JSON with `standard`, `reward_low_FP_rate` and `reward_low_FN_rate`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ANOMALYD = Path(sys.executable).parent / "anomalyd"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PARALLEL = 4
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def epoch_s(ts: str) -> int:
    return int(datetime.strptime(ts[:19], TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp())


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text().splitlines()[1:]
    rows = [line.split(",") for line in lines if line.strip()]
    return [r[0] for r in rows], [r[1] for r in rows]


def median_interval(times: list[int]) -> int:
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return int(statistics.median(gaps)) if gaps else 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("anomalyd exited during start-up")
        try:
            async with session.get(url + "/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("anomalyd did not start")


async def call(session: aiohttp.ClientSession, method: str, url: str, **kw: object) -> dict:
    async with session.request(method, url, **kw) as r:
        body = await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {url}: {r.status} {body}")
        return body


async def evaluate_file(session: aiohttp.ClientSession, base: str, index: int, name: str,
                        timestamps: list[str], values: list[str]) -> list[float]:
    """Per-row scores of one file, through a job of its own."""
    times = [epoch_s(t) for t in timestamps]
    span = median_interval(times)
    job = f"{base}/_ml/anomaly_detectors/nab-{index}"
    config = {
        "description": name,
        "analysis_config": {"bucket_span": f"{span}s", "detectors": [{"function": "mean", "field_name": "value"}]},
        "data_description": {"time_field": "timestamp", "time_format": "yyyy-MM-dd HH:mm:ss"},
    }
    await call(session, "PUT", job, json=config)
    await call(session, "POST", job + "/_open")
    body = "".join(f'{{"timestamp":"{t[:19]}","value":{v}}}\n' for t, v in zip(timestamps, values)).encode()
    await call(session, "POST", job + "/_data", data=body, headers={"Content-Type": "application/x-ndjson"})
    end = (max(times) // span + 1) * span
    await call(session, "POST", job + "/_flush", json={"advance_time": str(end)})
    by_bucket: dict[int, float] = {}
    start = 0
    while True:  # page by time: records come back sorted by timestamp
        page = await call(session, "GET", job + "/results/records",
                          params={"start": str(start), "sort": "timestamp", "desc": "false", "size": "10000"})
        for r in page["records"]:
            b = r["timestamp"] // 1000
            by_bucket[b] = max(by_bucket.get(b, 0.0), r["initial_record_score"] / 100.0)
        if len(page["records"]) < 10000:
            break
        start = page["records"][-1]["timestamp"] + 1
    await call(session, "POST", job + "/_close")
    return [by_bucket.get(t - t % span, 0.0) for t in times]


async def run(nab_dir: Path) -> dict[str, tuple[list[str], list[float]]]:
    files = sorted((nab_dir / "data").glob("*/*.csv"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "ANOMALYD_PORT": str(port), "ANOMALYD_DATA_DIR": data_dir}
        proc = subprocess.Popen([str(ANOMALYD), "serve", "--log-level", "warning"], env=env)
        try:
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await wait_ready(session, base, proc)
                limit = asyncio.Semaphore(PARALLEL)
                out: dict[str, tuple[list[str], list[float]]] = {}

                async def one(i: int, path: Path) -> None:
                    name = f"{path.parent.name}/{path.name}"
                    timestamps, values = read_csv(path)
                    async with limit:
                        out[name] = (timestamps, await evaluate_file(session, base, i, name, timestamps, values))

                await asyncio.gather(*(one(i, p) for i, p in enumerate(files)))
                return out
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    nab_dir = Path(os.environ.get("NAB_DIR", ROOT.parent / "shared" / "data" / "nab"))
    if not (nab_dir / "data").is_dir():
        sys.exit(f"NAB data not found under {nab_dir} (set NAB_DIR)")
    started = time.monotonic()
    rows = asyncio.run(run(nab_dir))
    elapsed = time.monotonic() - started
    full = scorer.score_corpus(rows, nab_dir=str(nab_dir), details=True)
    print(f"NAB through the HTTP API: {len(rows)} files, {sum(len(t) for t, _ in rows.values())} rows, {elapsed:.1f} s")
    print(f"{'profile':22s} {'score':>7s} {'threshold':>10s} {'windows hit':>12s} {'FP rows':>8s}")
    for p in PROFILES:
        r = full[p]
        print(f"{p:22s} {r['score']:7.2f} {r['threshold']:10.4f} {r['hit']:>6d}/{r['windows']:<5d} {r['fp_rows']:8d}")
    thresholds = {p: full[p]["threshold"] for p in PROFILES}
    print(f"\n{'category':24s} {'standard':>9s} {'low_FP':>9s} {'low_FN':>9s}  hit/windows  FP rows")
    for cat, res in scorer.by_category(rows, thresholds, nab_dir=str(nab_dir)).items():
        cells = " ".join("      n/a" if res[p][0] is None else f"{res[p][0]:9.2f}" for p in PROFILES)
        _, hit, n, fp = res["standard"]
        print(f"{cat:24s} {cells}  {hit:3d}/{n:<3d}      {fp}")
    profiles = scorer.load_profiles(str(nab_dir))
    for t in (0.5, 0.75):
        parts = []
        for p in PROFILES:
            raw, n, hit, fp = scorer.score_at(rows, t, profiles[p], nab_dir=str(nab_dir))
            parts.append(f"{scorer.normalise(raw, n, profiles[p]):.2f}")
        print(f"fixed threshold initial_record_score >= {int(t * 100)}: {' / '.join(parts)} ({hit}/{n} windows, {fp} FP rows)")
    print(json.dumps({p: round(full[p]["score"], 2) for p in PROFILES} | {"seconds": round(elapsed, 1)}))


if __name__ == "__main__":
    main()
