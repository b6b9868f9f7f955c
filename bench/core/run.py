"""Core ingest benchmark (`make bench-core`).

On one CPU (CPU 1 where there is one), over the same deterministic NDJSON corpus (corpus.py), it
times the native core (``anomalyd._native.JobEngine``: start_request, feed of 1 MiB ``bytes``
chunks sliced beforehand, finish_request), a C++ simdjson On-Demand harness
(simdjson_harness.cpp, compiled here into build/) and per-line Python baselines with orjson,
pysimdjson and msgspec (baselines.py), all on the whole corpus.  Every implementation must return
the same DataCounts counters; a disagreement is reported loudly and makes the exit status 1.

Each figure is the median of several runs, interleaved round by round.  A run whose CPU time is
below 90 % of its wall time shared its core (or lost time to the hypervisor) and is repeated, up to
four times after a pause; the medians leave out runs that stayed noisy, unless all did.  Prints a
table, then one JSON line with the figures and their ratios.
"""

import argparse
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import corpus

try:
    import baselines
except ImportError as missing:
    sys.exit(f"bench-core: {missing}: pip install orjson==3.13.0 msgspec==0.22.0 pysimdjson==7.0.2")

HARNESS_SRC = Path(__file__).resolve().parent / "simdjson_harness.cpp"
HARNESS_BIN = corpus.BUILD_DIR / "simdjson_harness"
CXX_FLAGS = ["-O3", "-std=c++17"]  # no -march: host-independent build; no -pthread: no stage-1 thread

JOB_CONFIG = {
    "job_id": "bench",
    "analysis_config": {
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "kpi", "by_field_name": "host",
                       "partition_field_name": "region"}],
        "influencers": ["host"],
    },
    "data_description": {"time_field": "time", "time_format": "epoch_ms"},
}
CHUNK = 1 << 20
NATIVE_RUNS = SIMDJSON_RUNS = 5
PYTHON_RUNS = 3
MIN_CPU_SHARE = 0.9
RETRIES = 4
COUNTERS = ("processed", "invalid_date", "missing_field", "out_of_order", "input_field_count")
NATIVE_KEYS = {"processed": "processed_record_count", "invalid_date": "invalid_date_count",
               "missing_field": "missing_field_count", "out_of_order": "out_of_order_timestamp_count",
               "input_field_count": "input_field_count"}


@dataclass
class Run:
    wall: float
    cpu: float
    counters: dict[str, int]
    checksum: tuple[float, int] | None = None  # (metric sum, string bytes), where exposed
    problems: list[str] = field(default_factory=list)  # inconsistencies within this run's output
    shared: bool = False  # its CPU time was below MIN_CPU_SHARE of its wall time: it shared its core


@dataclass
class Bench:
    name: str
    label: str
    runs_wanted: int
    run_once: Callable[[], Run]
    info: dict = field(default_factory=dict)  # what the implementation reports about itself
    runs: list[Run] = field(default_factory=list)
    repeated: int = 0  # runs thrown away because they shared their core

    def sample(self) -> None:
        """One run, repeated (after a pause of 1, 2, 4, 8 s) while it did not have its core to itself."""
        for attempt in range(RETRIES + 1):
            gc.collect()
            run = self.run_once()
            run.shared = run.cpu < MIN_CPU_SHARE * run.wall
            if not run.shared or attempt == RETRIES:
                break
            self.repeated += 1
            time.sleep(2 ** attempt)
        self.runs.append(run)

    def noisy(self) -> int:
        return sum(r.shared for r in self.runs)

    def seconds(self) -> float:
        """Median wall time of the runs that had their core to themselves (of all runs if none did)."""
        return statistics.median(r.wall for r in [r for r in self.runs if not r.shared] or self.runs)


def fail(message: str) -> None:
    print(f"bench-core: {message}", file=sys.stderr)
    sys.exit(2)


def bucket_span_ms(span: str) -> int:
    value, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", span).groups()
    return int(value) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]


def job_of(config: dict) -> baselines.Job:
    detector = config["analysis_config"]["detectors"][0]
    return baselines.Job(config["data_description"]["time_field"], detector["field_name"],
                         (detector["by_field_name"], detector["partition_field_name"]),
                         bucket_span_ms(config["analysis_config"]["bucket_span"]))


def cpu_model() -> str:
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return f"{info.get('model name', '?')} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"


def pin_one_cpu() -> int:
    allowed = os.sched_getaffinity(0)
    cpu = 1 if 1 in allowed else max(allowed)
    os.sched_setaffinity(0, {cpu})
    return cpu


def native_bench(body: bytes) -> Bench:
    try:
        from anomalyd import _native
    except ImportError as exc:
        fail(f"cannot import anomalyd._native ({exc}): build first: make setup")
    config_json = json.dumps(JOB_CONFIG)
    chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]

    def run_once() -> Run:
        engine = _native.JobEngine(config_json)
        now_ms = int(time.time() * 1000)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        engine.start_request()
        for chunk in chunks:
            engine.feed(chunk)
        response = engine.finish_request(now_ms)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        counts = json.loads(response)
        absent = [key for key in (*NATIVE_KEYS.values(), "input_bytes", "input_record_count") if key not in counts]
        if absent:
            fail(f"finish_request() response lacks {absent}: {response[:500]!r}")
        run = Run(wall, cpu, {name: counts[key] for name, key in NATIVE_KEYS.items()})
        if counts["input_bytes"] != len(body):
            run.problems.append(f"input_bytes {counts['input_bytes']} != {len(body)} bytes fed")
        records = sum(counts[NATIVE_KEYS[k]] for k in ("processed", "invalid_date", "out_of_order"))
        if counts["input_record_count"] != records:
            run.problems.append(f"input_record_count {counts['input_record_count']} != processed + invalid_date"
                                f" + out_of_order = {records}")
        return run

    info = {"simd_level": _native.simd_level()}
    return Bench("native", "native JobEngine.feed (1 MiB chunks)", NATIVE_RUNS, run_once, info)


def simdjson_bench(path: Path, job: baselines.Job) -> Bench | None:
    """The C++ harness, compiled if needed; None where libsimdjson-dev is missing."""
    library = subprocess.run(["g++", "-print-file-name=libsimdjson.so"], capture_output=True, text=True,
                             check=False).stdout
    header = subprocess.run(["g++", "-std=c++17", "-E", "-x", "c++", "-o", os.devnull, "-"],
                            input="#include <simdjson.h>\n", capture_output=True, text=True, check=False)
    if os.sep not in library or header.returncode != 0:
        return None
    if not HARNESS_BIN.exists() or HARNESS_BIN.stat().st_mtime < HARNESS_SRC.stat().st_mtime:
        command = ["g++", *CXX_FLAGS, "-o", str(HARNESS_BIN), str(HARNESS_SRC), "-lsimdjson"]
        print("compiling:", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    argv = [str(HARNESS_BIN), str(path), str(job.bucket_span_ms), str(job.latency_s), job.time_field,
            job.metric_field, *job.string_fields]
    info: dict = {}

    def run_once() -> Run:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            fail(f"simdjson harness failed ({done.returncode}): {done.stderr.strip()}")
        out = json.loads(done.stdout)
        info.update(out)
        run = Run(out["wall_s"], out["cpu_s"], {name: out[name] for name in COUNTERS},
                  (out["metric_sum"], out["string_bytes"]))
        if out["truncated_bytes"]:
            run.problems.append(f"{out['truncated_bytes']} bytes left unparsed at the end")
        return run

    return Bench("simdjson", "C++ simdjson iterate_many On-Demand", SIMDJSON_RUNS, run_once, info)


def python_bench(name: str, account: Callable, body: bytes, job: baselines.Job) -> Bench:
    def run_once() -> Run:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        counts = account(body, job)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return Run(wall, cpu, counts.counters(), (counts.metric_sum, counts.string_bytes))

    return Bench(name, f"Python per line: {name}", PYTHON_RUNS, run_once)


def check(benches: list[Bench]) -> tuple[dict[str, int], list[str]]:
    """The counters of the first implementation, and every disagreement with them."""
    reference = benches[0].runs[0].counters
    checksum = next(r.checksum for b in benches for r in b.runs if r.checksum)
    problems = []
    for bench in benches:
        for i, run in enumerate(bench.runs, 1):
            where = f"{bench.name} run {i}"
            if run.counters != reference:
                problems.append(f"{where}: counters {run.counters} != {benches[0].name}'s {reference}")
            if run.checksum and (run.checksum[1] != checksum[1]
                                 or not math.isclose(run.checksum[0], checksum[0], rel_tol=1e-9)):
                problems.append(f"{where}: values read (metric sum, string bytes) {run.checksum} != {checksum}")
            problems += [f"{where}: {problem}" for problem in run.problems]
    return reference, problems


def report(benches: list[Bench], body_bytes: int, cpu: int, skipped: list[str]) -> int:
    """Print the table, the verdict on the counters and the JSON line; the exit status."""
    reference, problems = check(benches)
    records = reference["processed"] + reference["invalid_date"] + reference["out_of_order"]
    gbps = {b.name: body_bytes / b.seconds() / 1e9 for b in benches}
    best_python = max(baselines.BASELINES, key=gbps.get)
    native, simdjson = gbps.get("native"), gbps.get("simdjson")

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    print(f"\n{'implementation':40s} {'GB/s':>6s} {'min-max GB/s':>13s} {'M rec/s':>7s} {'runs':>4s} {'rerun':>5s} "
          f"{'noisy':>5s} {'native x':>8s}")
    for b in benches:
        speeds = [body_bytes / r.wall / 1e9 for r in b.runs]
        vs = ratio(native, gbps[b.name])
        print(f"{b.label:40s} {gbps[b.name]:6.3f} {min(speeds):6.3f}-{max(speeds):6.3f} "
              f"{records / b.seconds() / 1e6:7.2f} {len(b.runs):4d} {b.repeated:5d} {b.noisy():5d} "
              f"{'-' if vs is None else f'{vs:.2f}':>8s}")
    for line in skipped:
        print(line)
    print(f"(GB/s = 10^9 B/s, median of the runs that had their core to themselves; rerun = runs repeated because "
          f"they shared it; noisy = kept anyway after {RETRIES} repetitions; native x = native GB/s / this)")
    print(f"corpus: {body_bytes:,} bytes, {records:,} records ({body_bytes / records:.1f} B/record), the whole "
          f"corpus for every implementation; CPU {cpu}: {cpu_model()}")
    info = {b.name: b.info for b in benches}
    simd_level = info.get("native", {}).get("simd_level")
    if simd_level:
        print(f"native: SIMD level {simd_level}")
    simdjson_info = info.get("simdjson")
    if simdjson_info:
        print(f"simdjson {simdjson_info['simdjson_version']}: stage 1 {simdjson_info['stage1_implementation']} "
              f"(run-time dispatch), On-Demand {simdjson_info['ondemand_implementation']} "
              f"(compile time, g++ {' '.join(CXX_FLAGS)})")
    print("counters: " + ", ".join(f"{k}={v:,}" for k, v in reference.items()))
    if problems:
        print("\n" + "!" * 78 + "\nCOUNTER MISMATCH: the implementations disagree\n" + "\n".join(problems)
              + "\n" + "!" * 78, file=sys.stderr, flush=True)
    else:
        print(f"all {len(benches)} implementations agree on the counters and on the values read")

    result = {
        "bench": "core",
        "native_gbps": round(native, 4) if native else None,
        "simdjson_gbps": round(simdjson, 4) if simdjson else None,
        "best_python": best_python,
        "best_python_gbps": round(gbps[best_python], 4),
        "native_vs_simdjson": ratio(native, simdjson),
        "native_vs_best_python": ratio(native, gbps[best_python]),
        "python_gbps": {name: round(gbps[name], 4) for name in baselines.BASELINES},
        "records_per_s": {b.name: round(records / b.seconds()) for b in benches},
        "runs_gbps": {b.name: [round(body_bytes / r.wall / 1e9, 4) for r in b.runs] for b in benches},
        "reruns": {b.name: b.repeated for b in benches},
        "noisy_runs_kept": {b.name: b.noisy() for b in benches},
        "corpus_bytes": body_bytes,
        "corpus_records": records,
        "chunk_bytes": CHUNK,
        "cpu_model": cpu_model(),
        "cpu": cpu,
        "native_simd_level": simd_level,
        "simdjson": simdjson_info and {k: simdjson_info[k] for k in
                                       ("simdjson_version", "stage1_implementation", "ondemand_implementation")},
        "counters": reference,
        "counters_agree": not problems,
    }
    print(json.dumps(result, separators=(",", ":")))
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-native", action="store_true",
                        help="run only the baselines (while the native core is not built)")
    args = parser.parse_args()

    cpu = pin_one_cpu()
    job = job_of(JOB_CONFIG)
    path = corpus.corpus_path()
    body = path.read_bytes()
    benches, skipped = [], []
    if args.skip_native:
        skipped.append(f"{'native JobEngine':40s} skipped (--skip-native)")
    else:
        benches.append(native_bench(body))
    simdjson = simdjson_bench(path, job)
    if simdjson:
        benches.append(simdjson)
    else:
        skipped.append(f"{'C++ simdjson iterate_many On-Demand':40s} skipped: libsimdjson-dev not found "
                       "(g++ finds no simdjson.h or libsimdjson.so)")
    benches += [python_bench(name, account, body, job) for name, account in baselines.BASELINES.items()]

    print(f"corpus {path.name}: {len(body) / 1e6:.1f} MB; pinned to CPU {cpu}", flush=True)
    for round_no in range(max(b.runs_wanted for b in benches)):
        for bench in benches:
            if round_no < bench.runs_wanted:
                bench.sample()
                print(f"  round {round_no + 1}: {bench.name:10s} {len(body) / bench.runs[-1].wall / 1e9:6.3f} GB/s",
                      flush=True)
    sys.exit(report(benches, len(body), cpu, skipped))


if __name__ == "__main__":
    main()
