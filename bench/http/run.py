"""HTTP ingest benchmark (`make bench-http`), loopback only.

Five servers run side by side, the first four pinned to CPU 1 (`taskset`); every load generator
(curl, wrk, hey) and this script run on CPU 0 (but in (4)):

* anomalyd (`anomalyd serve`, a fresh data dir under build/),
* bare_server.py: aiohttp + uvloop discarding the body with ``readany()`` (and, for the large
  bodies only, the same with anomalyd's malloc settings: ``bare_tuned``),
* python_server.py: aiohttp + uvloop + orjson per line doing anomalyd's DataCounts accounting,
* a second anomalyd allowed on both CPUs, for (4).

(1) Large bodies: a deterministic 100 MB it_ops-like NDJSON file (corpus.py) posted by curl
    (``--data-binary @file -H 'Expect:'``, several URLs per curl over one keep-alive connection).
    anomalyd gets a fresh job per URL (mean(kpi) by host partition region, 5m, epoch_ms), so no
    record is dropped for being late; the jobs are created before and deleted after each round,
    outside the measured window.  The same rounds also post into `count` jobs (one series): the
    ingest path without the cost of modelling 1,200 series (``large_count_*``), and the body
    gzip-compressed (14 MB on the wire) into mean jobs and into the bare server (``*_gzip_*``, GB/s of
    the decompressed body).  Rounds are interleaved across the servers.  Wall = sum of curl's
    time_total; per server core = bytes / server CPU seconds (utime + stime from /proc/<pid>/stat).
(2) Small requests: wrk -tN -cN (one job per connection, 10 records ~850 B, increasing timestamps,
    per_conn_job.lua), 10 pairs of 3 s runs, anomalyd and the bare server in turn, in ABBA order
    (the machine's fast and slow phases last seconds: short runs close together pair within one
    phase, and the alternating order cancels a drift within the pair).  Each run's
    timestamps start where the jobs' data stopped, as a live feed's do (runs that jumped ahead in
    time would each begin with one request finishing thousands of empty buckets).
(3) Latency: hey at a fixed total rate (default 1,000 req/s for 10 s) with a static 10-record body
    whose timestamps lie in one 5-minute bucket: re-posting it never makes a record out of order
    (anomalyd drops only records before the start of the latest bucket), checked from _stats.

(4) Jobs in parallel: a second anomalyd allowed on both CPUs gets the 100 MB body for one fresh
    mean job, then for two jobs at once (two curls, also on both CPUs); wall GB/s of each and the
    speed-up (median of back-to-back pairs), and the cores the server used: bodies for different
    jobs are read on different cores.

A run during which other processes used more than --max-foreign cores is repeated (bounded).
Prints a table, then one JSON line.  Its per-core ratios (``*_vs_*``) are medians of the ratios of
back-to-back runs (the shared VM has slow and fast phases that the foreign-load check cannot see);
the other figures are medians of runs.  Exit status 1 on a failed request or a count mismatch.
Every server is killed at the end, also on errors and on SIGINT / SIGTERM.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import corpus

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = corpus.BUILD_DIR
LUA = HERE / "per_conn_job.lua"
SERVER_CPU, CLIENT_CPU, BOTH_CPUS = "1", "0", "0,1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

JOB_BODY = {
    "analysis_config": {
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "kpi", "by_field_name": "host",
                       "partition_field_name": "region"}],
        "influencers": ["host"],
    },
    "data_description": {"time_field": "time", "time_format": "epoch_ms"},
}
COUNT_JOB_BODY = {
    "analysis_config": {"bucket_span": "5m", "detectors": [{"function": "count"}]},
    "data_description": {"time_field": "time", "time_format": "epoch_ms"},
}
COUNTERS = ("processed_record_count", "input_field_count", "invalid_date_count", "missing_field_count",
            "out_of_order_timestamp_count")

FAILURES: list[str] = []


def fail(msg: str) -> None:
    FAILURES.append(msg)
    print(f"  !! {msg}", flush=True)


# ------------------------------------------------------------------------------------------------
# CPU accounting


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (all CPUs)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def own_cpu() -> float:
    """CPU seconds of this script and of its reaped children (the load generators)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Window:
    """CPU used between start and stop: by the server, by us + clients, and by everything else."""

    def __init__(self, server: "Server") -> None:
        self.server = server

    def __enter__(self) -> "Window":
        self.s0, self.o0, (self.b0, _) = self.server.cpu(), own_cpu(), system_busy()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.server_cpu = self.server.cpu() - self.s0
        self.client_cpu = own_cpu() - self.o0
        busy = system_busy()[0] - self.b0
        self.foreign = max(0.0, busy - self.server_cpu - self.client_cpu) / max(self.wall, 1e-9)


# ------------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, argv: list[str], port: int, log: Path, cpus: str = SERVER_CPU) -> None:
        self.name, self.argv, self.port, self.log, self.cpus = name, argv, port, log, cpus
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(["taskset", "-c", self.cpus, *self.argv], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=ROOT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                urllib.request.urlopen(self.base + "/", timeout=2).read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s (log: {self.log})")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name} is not running (exit {self.proc and self.proc.returncode}):\n{tail}")

    def cpu(self) -> float:
        """utime + stime of the server process (all its threads), seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)  # our own session: the server and nothing else
            p.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    # -- anomalyd job API
    def call(self, method: str, path: str, body: dict | None = None, ok404: bool = False) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            if ok404 and e.code == 404:
                return {}
            raise RuntimeError(f"{method} {path}: HTTP {e.code}: {e.read()[:500]!r}") from None

    def create_job(self, job_id: str, body: dict = JOB_BODY) -> None:
        self.call("DELETE", f"/_ml/anomaly_detectors/{job_id}?force=true", ok404=True)
        self.call("PUT", f"/_ml/anomaly_detectors/{job_id}", body)
        self.call("POST", f"/_ml/anomaly_detectors/{job_id}/_open")

    def delete_job(self, job_id: str) -> None:
        self.call("DELETE", f"/_ml/anomaly_detectors/{job_id}?force=true", ok404=True)

    def counts(self, job_id: str) -> dict:
        return self.call("GET", f"/_ml/anomaly_detectors/{job_id}/_stats")["jobs"][0]["data_counts"]


# ------------------------------------------------------------------------------------------------
# (1) large bodies


def large_round(srv: Server, body: Path, paths: list[str], tmp: Path, timeout: float, gzip_of: int = 0) -> dict:
    """`gzip_of`: the body is gzip-compressed and this many bytes decompressed (the bytes counted)."""
    cmd = ["taskset", "-c", CLIENT_CPU, "curl", "-sS", "--max-time", str(int(timeout)), "-H", "Expect:",
           "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body}",
           "-w", "%{http_code} %{time_total} %{size_upload}\\n"]
    if gzip_of:
        cmd += ["-H", "Content-Encoding: gzip"]
    outs = []
    for i, p in enumerate(paths):
        out = tmp / f"resp-{srv.name}-{i}.json"
        outs.append(out)
        cmd += ["-o", str(out), srv.base + p]
    srv.check_alive()
    with Window(srv) as w:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
    lines = r.stdout.split()
    codes, wall, sent = lines[0::3], sum(map(float, lines[1::3])), sum(int(float(x)) for x in lines[2::3])
    if gzip_of:
        sent = sent // body.stat().st_size * gzip_of
    responses = []
    for out, code in zip(outs, codes):
        text = out.read_text(errors="replace") if out.exists() else ""
        if not code.startswith("2"):
            fail(f"{srv.name}: large POST answered {code}: {text[:300]}")
        try:
            responses.append(json.loads(text))
        except ValueError:
            responses.append({})
    if r.returncode != 0 or len(codes) != len(paths):
        fail(f"{srv.name}: curl exit {r.returncode}: {r.stderr.strip()[:300]}")
    return {"bytes": sent, "wall": wall, "server_cpu": w.server_cpu, "foreign": w.foreign,
            "gbps_wall": sent / wall / 1e9 if wall else 0.0,
            "gbps_core": sent / w.server_cpu / 1e9 if w.server_cpu else float("nan"),
            "util": w.server_cpu / wall if wall else 0.0, "responses": responses}


def parallel_round(srv: Server, body: Path, jobs: list[str], tmp: Path) -> dict:
    """One curl per job, all at once, each posting `body` to its own fresh job; every process
    may use both CPUs."""
    for j in jobs:
        srv.create_job(j)
    try:
        cmds = [["taskset", "-c", BOTH_CPUS, "curl", "-sS", "--max-time", "120", "-H", "Expect:",
                 "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{body}",
                 "-o", str(tmp / f"par-{j}.json"), "-w", "%{http_code}", f"{srv.base}/_ml/anomaly_detectors/{j}/_data"]
                for j in jobs]
        srv.check_alive()
        with Window(srv) as w:
            procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in cmds]
            codes = [p.communicate(timeout=150)[0].strip() for p in procs]
        size = body.stat().st_size
        for j, code in zip(jobs, codes):
            counts = json.loads((tmp / f"par-{j}.json").read_text() or "{}") if code.startswith("2") else {}
            if counts.get("input_bytes") != size:
                fail(f"{srv.name}: parallel post to {j} answered {code}, input_bytes {counts.get('input_bytes')}")
    finally:
        for j in jobs:
            srv.delete_job(j)
    return {"gbps_wall": len(jobs) * size / w.wall / 1e9, "cores": w.server_cpu / w.wall, "foreign": w.foreign}


# ------------------------------------------------------------------------------------------------
# (2) small requests with wrk, (3) fixed-rate latency with hey

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")


def wrk_run(srv: Server, conns: int, duration: int, start_ms: int) -> dict:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", f"-t{conns}", f"-c{conns}", f"-d{duration}s", "--latency",
           "--timeout", "5s", "-s", str(LUA), srv.base, "--", str(start_ms)]
    srv.check_alive()
    with Window(srv) as w:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    out = r.stdout
    m = re.search(r"(\d+) requests in", out)
    reqs = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    if r.returncode != 0 or not reqs or bad or errs:
        fail(f"{srv.name}: wrk exit {r.returncode}; {bad and bad.group(0)}; {errs and errs.group(0)}; "
             f"{r.stderr.strip()[:200]}")
    return {"rps": rps, "requests": reqs, "server_cpu": w.server_cpu, "foreign": w.foreign,
            "util": w.server_cpu / w.wall, "rps_core": reqs / w.server_cpu if w.server_cpu else float("nan"),
            "p50_ms": _wrk_ms(lat.get("50", "")), "p99_ms": _wrk_ms(lat.get("99", ""))}


def hey_run(srv: Server, url: str, body: Path, rate: int, workers: int, duration: int) -> dict:
    per = max(1, rate // workers)
    cmd = ["taskset", "-c", CLIENT_CPU, "hey", "-z", f"{duration}s", "-c", str(workers), "-q", str(per),
           "-t", "5", "-m", "POST", "-T", "application/x-ndjson", "-D", str(body), url]
    srv.check_alive()
    with Window(srv) as w:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    out = r.stdout
    lat = {k: float(v) * 1e3 for k, v in re.findall(r"^\s+(\d+)%+ in ([\d.]+) secs", out, re.M)}
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    ok = sum(int(n) for c, n in codes.items() if c.startswith("2"))
    if r.returncode != 0 or not ok or ok != sum(map(int, codes.values())) or "Error distribution" in out:
        fail(f"{srv.name}: hey exit {r.returncode}, statuses {codes}; {out[out.find('Error'):][:300]}")
    return {"rate": float(m.group(1)) if m else 0.0, "ok": ok, "p50_ms": lat.get("50", float("nan")),
            "p90_ms": lat.get("90", float("nan")), "p99_ms": lat.get("99", float("nan")),
            "util": w.server_cpu / w.wall, "foreign": w.foreign}


# ------------------------------------------------------------------------------------------------


def foreign_now(servers: list["Server"], seconds: float = 0.3) -> float:
    """Cores used by other processes over a short sample (excluding our idle servers and us)."""
    b0, o0, s0 = system_busy()[0], own_cpu(), sum(s.cpu() for s in servers)
    time.sleep(seconds)
    busy = system_busy()[0] - b0 - (own_cpu() - o0) - (sum(s.cpu() for s in servers) - s0)
    return max(0.0, busy) / seconds


class Guard:
    """Noise control: wait for a quiet machine before a run (at most --quiet-budget seconds in all),
    and repeat a run during which other processes used more than --max-foreign cores (only while
    the --budget lasts), so a busy machine cannot stretch the benchmark much."""

    def __init__(self, servers: list["Server"], max_foreign: float, retries: int, quiet_budget: float,
                 deadline: float) -> None:
        self.servers, self.max_foreign, self.retries = servers, max_foreign, retries
        self.quiet_left, self.deadline = quiet_budget, deadline

    def wait_quiet(self) -> None:
        t0 = time.monotonic()
        while self.quiet_left > 0 and foreign_now(self.servers) > self.max_foreign:
            self.quiet_left -= time.monotonic() - t0
            t0 = time.monotonic()

    def __call__(self, fn, what: str) -> dict:
        for attempt in range(self.retries + 1):
            self.wait_quiet()
            res = fn()
            res["noisy"] = res["foreign"] > self.max_foreign
            if not res["noisy"] or attempt == self.retries or time.monotonic() > self.deadline:
                return res
            print(f"  ({what}: {res['foreign']:.2f} foreign cores during the run, repeating)", flush=True)
        raise AssertionError


def med(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if r.get(key) == r.get(key)]
    return statistics.median(vals) if vals else float("nan")


def paired(a: list[dict], b: list[dict], key: str) -> float:
    """Median of the ratios of runs made back to back: the machine's slow and fast phases (a
    shared VM has both, unseen by the foreign-load check) cancel within a pair, not across."""
    ratios = [x[key] / y[key] for x, y in zip(a, b) if y[key] and x[key] == x[key]]
    return statistics.median(ratios) if ratios else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="large-body rounds for anomalyd and bare")
    ap.add_argument("--python-rounds", type=int, default=3)
    ap.add_argument("--urls", type=int, default=5, help="100 MB posts per curl (anomalyd)")
    ap.add_argument("--bare-urls", type=int, default=10)
    ap.add_argument("--python-urls", type=int, default=1)
    ap.add_argument("--small-runs", type=int, default=10)
    ap.add_argument("--small-seconds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=2, help="wrk -tN -cN (one job per connection)")
    ap.add_argument("--parallel-rounds", type=int, default=3, help="rounds of 1 then 2 jobs at once (both CPUs)")
    ap.add_argument("--rate", type=int, default=1000, help="total req/s for the latency test")
    ap.add_argument("--rate-workers", type=int, default=4)
    ap.add_argument("--rate-seconds", type=int, default=10)
    ap.add_argument("--max-foreign", type=float, default=0.3, help="cores of foreign load tolerated per run")
    ap.add_argument("--retries", type=int, default=1, help="repeats of a noisy run (within the budget)")
    ap.add_argument("--quiet-budget", type=float, default=20.0,
                    help="seconds in all spent waiting for a quiet machine before runs")
    ap.add_argument("--budget", type=float, default=100.0,
                    help="seconds after which noisy runs are no longer repeated")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs, data dir)")
    args = ap.parse_args()

    for tool in ("taskset", "curl", "wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"bench-http: {tool} not found (Debian: util-linux, curl, wrk, hey)")
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("bench-http: needs CPUs 0 and 1")
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    t_start = time.monotonic()
    deadline = t_start + args.budget

    large = corpus.large_body()
    gzipped = corpus.large_body_gzip()
    small = corpus.small_static_body()
    size = large.stat().st_size
    run_dir = BUILD / f"run-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    anomalyd_cmd = [str(bindir / "anomalyd")] if (bindir / "anomalyd").exists() else [sys.executable, "-m", "anomalyd"]
    ports = [free_port() for _ in range(5)]
    servers = {
        "anomalyd": Server("anomalyd", [*anomalyd_cmd, "serve", "--host", "127.0.0.1", "--port", str(ports[0]),
                                        "--data-dir", str(run_dir / "data"), "--log-level", "warning",
                                        "--shutdown-timeout", "2s"], ports[0], run_dir / "anomalyd.log"),
        "bare": Server("bare", [sys.executable, str(HERE / "bare_server.py"), "--port", str(ports[1])],
                       ports[1], run_dir / "bare.log"),
        "bare_tuned": Server("bare_tuned", [sys.executable, str(HERE / "bare_server.py"), "--port", str(ports[3]),
                                            "--tuned-malloc"], ports[3], run_dir / "bare_tuned.log"),
        "python": Server("python", [sys.executable, str(HERE / "python_server.py"), "--port", str(ports[2])],
                         ports[2], run_dir / "python.log"),
        "anomalyd_2cpu": Server("anomalyd_2cpu", [*anomalyd_cmd, "serve", "--host", "127.0.0.1", "--port", str(ports[4]),
                                                  "--data-dir", str(run_dir / "data-2cpu"), "--log-level", "warning",
                                                  "--shutdown-timeout", "2s"], ports[4], run_dir / "anomalyd_2cpu.log",
                                cpus=BOTH_CPUS),
    }

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        for s in servers.values():
            s.start()
        for s in servers.values():
            s.wait_ready()
        ad, bare, py = servers["anomalyd"], servers["bare"], servers["python"]
        bare_tuned = servers["bare_tuned"]
        guarded = Guard(list(servers.values()), args.max_foreign, args.retries, args.quiet_budget, deadline)
        print(f"bench-http: body {large.name} {size / 1e6:.1f} MB, "
              f"{sum(1 for _ in open(large, 'rb')):,} records; server on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}",
              flush=True)

        # ---- (1) large bodies, rounds interleaved across servers
        print("(1) large bodies ...", flush=True)
        res: dict[str, list[dict]] = {"anomalyd": [], "anomalyd_count": [], "anomalyd_gzip": [], "bare": [],
                                      "bare_tuned": [], "bare_gzip": [], "python": []}
        reference: dict | None = None
        for rnd in range(max(args.rounds, args.python_rounds)):
            if rnd < args.rounds:
                def ad_round(kind: str, body: dict, wire: Path = large) -> dict:
                    jobs = [f"large-{kind}-r{rnd}-{i}" for i in range(args.urls)]
                    for j in jobs:
                        ad.create_job(j, body)
                    try:
                        return large_round(ad, wire, [f"/_ml/anomaly_detectors/{j}/_data" for j in jobs], run_dir, 60,
                                           gzip_of=size if wire != large else 0)
                    finally:
                        for j in jobs:
                            ad.delete_job(j)

                res["anomalyd"].append(guarded(lambda: ad_round("mean", JOB_BODY), "anomalyd large"))
                res["anomalyd_count"].append(guarded(lambda: ad_round("count", COUNT_JOB_BODY), "anomalyd count large"))
                res["anomalyd_gzip"].append(guarded(lambda: ad_round("mean", JOB_BODY, gzipped), "anomalyd gzip large"))
                res["bare_gzip"].append(guarded(
                    lambda: large_round(bare, gzipped, ["/x"] * args.bare_urls, run_dir, 60, gzip_of=size), "bare gzip large"))
                res["bare"].append(guarded(lambda: large_round(bare, large, ["/x"] * args.bare_urls, run_dir, 60),
                                           "bare large"))
                res["bare_tuned"].append(guarded(
                    lambda: large_round(bare_tuned, large, ["/x"] * args.bare_urls, run_dir, 60), "bare_tuned large"))
            if rnd < args.python_rounds:
                res["python"].append(guarded(
                    lambda: large_round(py, large, [f"/py/r{rnd}-{time.monotonic_ns()}/{i}" for i in range(args.python_urls)],
                                        run_dir, 120), "python large"))
            for name in res:
                if len(res[name]) > rnd:
                    r = res[name][rnd]
                    print(f"  round {rnd + 1} {name:14s} {r['gbps_wall']:6.3f} GB/s wall  {r['gbps_core']:6.3f} GB/s/core "
                          f" util {r['util']:.2f}  foreign {r['foreign']:.2f}", flush=True)
        # correctness: anomalyd's per-request counts equal the Python reference's, every size equals the file
        for name in res:
            for r in res[name]:
                if r["bytes"] != size * len(r["responses"]):
                    fail(f"{name}: sent {r['bytes']} bytes, expected {size * len(r['responses'])}")
        reference = res["python"][0]["responses"][0] if res["python"] else None
        for name, counters in (("anomalyd", COUNTERS), ("anomalyd_gzip", COUNTERS),
                               ("anomalyd_count", [k for k in COUNTERS if k != "missing_field_count"])):
            for r in res[name]:
                for resp in r["responses"]:
                    if reference and any(resp.get(k) != reference.get(k) for k in counters):
                        fail(f"{name} counts differ from the Python reference: "
                             f"{ {k: (resp.get(k), reference.get(k)) for k in counters} }")
                        break
        for r in res["bare"] + res["bare_tuned"] + res["bare_gzip"]:
            if any(resp.get("bytes") != size for resp in r["responses"]):
                fail("bare server did not read the whole body")

        # ---- (2) small requests with wrk
        print(f"(2) small requests: wrk -t{args.conns} -c{args.conns}, {args.small_seconds} s x {args.small_runs} ...",
              flush=True)
        small_jobs = [f"job{i + 1}" for i in range(args.conns)]
        for j in small_jobs:
            ad.create_job(j)
        wrk_res: dict[str, list[dict]] = {"anomalyd": [], "bare": []}

        def carry_on() -> int:
            # Each run (and a repeated one) carries on where the jobs' data stopped, as a live feed
            # does: a jump in time would make its first request finish thousands of empty buckets.
            return max([1_700_000_000_000] + [ad.counts(j).get("latest_record_timestamp", 0) for j in small_jobs])

        for run in range(args.small_runs):
            pair = (("anomalyd", ad), ("bare", bare))
            for name, srv in pair if run % 2 == 0 else pair[::-1]:
                def one(srv=srv) -> dict:
                    return wrk_run(srv, args.conns, args.small_seconds, carry_on())

                r = guarded(one, f"{name} wrk")
                wrk_res[name].append(r)
                print(f"  run {run + 1} {name:9s} {r['rps']:9,.0f} req/s  {r['rps_core']:9,.0f} req/s/core "
                      f" util {r['util']:.2f}  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  foreign {r['foreign']:.2f}",
                      flush=True)
        small_stats = [ad.counts(j) for j in small_jobs]
        small_ooo = sum(c["out_of_order_timestamp_count"] for c in small_stats)
        small_processed = sum(c["processed_record_count"] for c in small_stats)
        if small_ooo:
            fail(f"anomalyd dropped {small_ooo} small-request records as out of order")

        # ---- (3) fixed-rate latency with hey
        print(f"(3) latency: hey {args.rate} req/s total ({args.rate_workers} workers), {args.rate_seconds} s ...", flush=True)
        ad.create_job("lat1")
        lat = {}
        for name, srv, url in (("anomalyd", ad, ad.base + "/_ml/anomaly_detectors/lat1/_data"),
                               ("bare", bare, bare.base + "/_ml/anomaly_detectors/lat1/_data")):
            lat[name] = guarded(lambda srv=srv, url=url: hey_run(srv, url, small, args.rate, args.rate_workers,
                                                                  args.rate_seconds),
                                f"{name} hey")
            r = lat[name]
            print(f"  {name:9s} {r['rate']:8,.0f} req/s  p50 {r['p50_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
                  f"p99 {r['p99_ms']:.3f} ms  util {r['util']:.2f}  foreign {r['foreign']:.2f}", flush=True)
        lat_counts = ad.counts("lat1")
        if lat_counts["out_of_order_timestamp_count"]:
            fail(f"latency job dropped {lat_counts['out_of_order_timestamp_count']} records as out of order")

        # ---- (4) jobs in parallel, server and clients on both CPUs
        print(f"(4) jobs in parallel: 100 MB into 1 job, then into 2 jobs at once, x {args.parallel_rounds} ...", flush=True)
        ad2 = servers["anomalyd_2cpu"]
        par: dict[int, list[dict]] = {1: [], 2: []}
        for rnd_ in range(args.parallel_rounds):
            for n in (1, 2):
                r = guarded(lambda n=n: parallel_round(ad2, large, [f"par-r{rnd_}-{n}-{i}" for i in range(n)], run_dir),
                            f"parallel {n}")
                par[n].append(r)
                print(f"  round {rnd_ + 1} {n} job(s)  {r['gbps_wall']:6.3f} GB/s wall  server {r['cores']:.2f} cores  "
                      f"foreign {r['foreign']:.2f}", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        if not args.keep and not FAILURES:
            shutil.rmtree(run_dir, ignore_errors=True)

    # ---- report
    L = {n: {k: med(rows, k) for k in ("gbps_wall", "gbps_core", "util", "foreign")} for n, rows in res.items()}
    S = {n: {k: med(rows, k) for k in ("rps", "rps_core", "util", "p50_ms", "p99_ms", "foreign")} for n, rows in wrk_res.items()}
    rec_per_byte = 1 / (size / sum(1 for _ in open(large, "rb")))
    print()
    print(f"{'(1) 100 MB bodies, curl':34s} {'GB/s wall':>10s} {'GB/s/core':>10s} {'M rec/s/core':>13s} "
          f"{'srv util':>9s} {'runs':>5s} {'noisy':>6s} {'foreign':>8s}")
    for n, label in (("anomalyd", "anomalyd, mean by host (1,200)"), ("anomalyd_count", "anomalyd, count (1 series)"),
                     ("anomalyd_gzip", "anomalyd, mean, gzip body"),
                     ("bare", "bare aiohttp readany, discard"),
                     ("bare_tuned", "bare, anomalyd's malloc settings"),
                     ("bare_gzip", "bare, gzip body (stdlib zlib)"),
                     ("python", "pure Python orjson per line")):
        rows = res[n]
        print(f"{label:34s} {L[n]['gbps_wall']:10.3f} {L[n]['gbps_core']:10.3f} "
              f"{L[n]['gbps_core'] * 1e3 * rec_per_byte:13.1f} {L[n]['util']:9.2f} {len(rows):5d} "
              f"{sum(r['noisy'] for r in rows):6d} {L[n]['foreign']:8.2f}")
    print(f"\n{f'(2) ~850 B / 10 records, wrk -t{args.conns} -c{args.conns}':34s} {'req/s':>10s} {'req/s/core':>10s} "
          f"{'CPU us/req':>11s} {'srv util':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'noisy':>6s} {'foreign':>8s}")
    for n in ("anomalyd", "bare"):
        print(f"{n:34s} {S[n]['rps']:10,.0f} {S[n]['rps_core']:10,.0f} {1e6 / S[n]['rps_core']:11.1f} "
              f"{S[n]['util']:9.2f} {S[n]['p50_ms']:8.3f} {S[n]['p99_ms']:8.3f} "
              f"{sum(r['noisy'] for r in wrk_res[n]):6d} {S[n]['foreign']:8.2f}")
    print(f"  anomalyd jobs {', '.join(small_jobs)}: {small_processed:,} records processed, {small_ooo} out of order")
    print(f"\n{f'(3) hey, {args.rate} req/s, static body':34s} {'req/s':>10s} {'p50 ms':>10s} {'p90 ms':>10s} "
          f"{'p99 ms':>10s} {'srv util':>9s} {'foreign':>8s}")
    for n in ("anomalyd", "bare"):
        r = lat[n]
        print(f"{n:34s} {r['rate']:10,.0f} {r['p50_ms']:10.3f} {r['p90_ms']:10.3f} {r['p99_ms']:10.3f} {r['util']:9.2f} {r['foreign']:8.2f}")
    print("  (foreign = median cores used by other processes during the runs; noisy = runs above "
          f"{args.max_foreign} even after a repeat)")
    print(f"  static body: 10 records in one 5m bucket -> re-posting drops none: "
          f"{lat_counts['processed_record_count']:,} processed, {lat_counts['out_of_order_timestamp_count']} out of order")
    print(f"\n{'(4) 100 MB per job, both CPUs':34s} {'GB/s wall':>10s} {'srv cores':>10s}")
    for n in (1, 2):
        print(f"{f'{n} job(s) at once':34s} {med(par[n], 'gbps_wall'):10.3f} {med(par[n], 'cores'):10.2f}")

    def rnd(x: float, n: int = 3) -> float | None:
        return round(x, n) if x == x else None

    summary = {
        "large_gbps_per_core": rnd(L["anomalyd"]["gbps_core"]),
        "large_gbps_wall": rnd(L["anomalyd"]["gbps_wall"]),
        "large_vs_bare": rnd(paired(res["anomalyd"], res["bare"], "gbps_core")),
        "large_vs_bare_wall": rnd(L["anomalyd"]["gbps_wall"] / L["bare"]["gbps_wall"]),
        "large_vs_python": rnd(paired(res["anomalyd"], res["python"], "gbps_core"), 2),
        "large_vs_python_wall": rnd(L["anomalyd"]["gbps_wall"] / L["python"]["gbps_wall"], 2),
        "large_count_gbps_per_core": rnd(L["anomalyd_count"]["gbps_core"]),
        "large_count_vs_bare": rnd(paired(res["anomalyd_count"], res["bare"], "gbps_core")),
        "large_vs_bare_tuned": rnd(paired(res["anomalyd"], res["bare_tuned"], "gbps_core")),
        "large_count_vs_bare_tuned": rnd(paired(res["anomalyd_count"], res["bare_tuned"], "gbps_core")),
        "large_gzip_gbps_per_core": rnd(L["anomalyd_gzip"]["gbps_core"]),
        "large_gzip_vs_bare_gzip": rnd(paired(res["anomalyd_gzip"], res["bare_gzip"], "gbps_core")),
        "bare_gzip_gbps_per_core": rnd(L["bare_gzip"]["gbps_core"]),
        "small_rps": rnd(S["anomalyd"]["rps"], 0),
        "small_rps_per_core": rnd(S["anomalyd"]["rps_core"], 0),
        "small_vs_bare": rnd(paired(wrk_res["anomalyd"], wrk_res["bare"], "rps")),
        "small_vs_bare_per_core": rnd(paired(wrk_res["anomalyd"], wrk_res["bare"], "rps_core")),
        "p50_ms": rnd(lat["anomalyd"]["p50_ms"]),
        "p99_ms": rnd(lat["anomalyd"]["p99_ms"]),
        "bare_gbps_per_core": rnd(L["bare"]["gbps_core"]),
        "bare_gbps_wall": rnd(L["bare"]["gbps_wall"]),
        "bare_tuned_gbps_per_core": rnd(L["bare_tuned"]["gbps_core"]),
        "python_gbps_per_core": rnd(L["python"]["gbps_core"]),
        "python_gbps_wall": rnd(L["python"]["gbps_wall"]),
        "parallel_one_job_gbps_wall": rnd(med(par[1], "gbps_wall")),
        "parallel_two_jobs_gbps_wall": rnd(med(par[2], "gbps_wall")),
        "parallel_speedup": rnd(paired(par[2], par[1], "gbps_wall"), 2),
        "parallel_two_jobs_server_cores": rnd(med(par[2], "cores"), 2),
        "bare_small_rps": rnd(S["bare"]["rps"], 0),
        "bare_small_rps_per_core": rnd(S["bare"]["rps_core"], 0),
        "bare_p50_ms": rnd(lat["bare"]["p50_ms"]),
        "bare_p99_ms": rnd(lat["bare"]["p99_ms"]),
        "latency_rate": args.rate,
        "wrk_conns": args.conns,
        "body_bytes": size,
        "noisy_runs": sum(r["noisy"] for rows in (*res.values(), *wrk_res.values(), *par.values()) for r in rows)
                      + sum(r["noisy"] for r in lat.values()),
        "failures": len(FAILURES),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    print()
    print(json.dumps(summary))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
