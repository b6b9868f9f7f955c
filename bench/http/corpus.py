"""Deterministic it_ops-like NDJSON bodies for the HTTP benchmark.

Large body: one line per record, ``{"time":<epoch ms>,"kpi":<number>,"host":"srv-N","region":"..",
"note":".."}`` (``note`` is the unused field), at most 100,000,000 bytes (under anomalyd's default
100 MiB Content-Length limit), cut at a line boundary.  Timestamps advance by 0-99 ms with +-2 s of
jitter, so the few records just behind a bucket boundary are out of order; 0.2 % of the records lack
``host`` and 0.1 % have a null ``kpi``, so that missing_field_count is not trivially zero.

The gzip variant (level 6, about 14 MB) is what a shipper with compression on sends.

Small static body (for the fixed-rate latency test): 10 records whose timestamps all lie in one
5-minute bucket, so posting it again and again never makes a record out of order (anomalyd only drops
records older than the start of the latest bucket minus the latency).

Files are a pure function of the parameters and of this file; they are written once under
``bench/http/build/`` (key = hash of both) and reused.
"""

import hashlib
import os
import random
from pathlib import Path

BUILD_DIR = Path(__file__).resolve().parent / "build"

START_MS = 1_454_020_500_000  # a multiple of 5 minutes
REGIONS = ("eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east")
WORDS = ("disk", "latency", "ok", "warn", "backup", "cron", "gc", "pause", "tls", "retry",
         "cache", "miss", "queue", "node", "slow")


def record(rng: random.Random, t: int) -> str:
    """One record of the bench's shape at time `t` (also what the PGO training reads, bench/pgo)."""
    r = rng.random()
    kpi = '"kpi":null,' if r < 0.001 else f'"kpi":{rng.lognormvariate(4.5, 0.6):.1f},'
    host = "" if rng.random() < 0.002 else f'"host":"srv-{rng.randrange(200)}",'
    note = " ".join(rng.choices(WORDS, k=rng.randrange(1, 4)))
    return f'{{"time":{t},{kpi}{host}"region":"{REGIONS[rng.randrange(6)]}","note":"{note}"}}'


def times(rng: random.Random):
    """Endless record times from START_MS: steps of 0-99 ms, each with +-2 s of jitter (so the
    few records just behind a bucket boundary are out of order). Lazy: a caller may draw from
    `rng` between two times, as `large_body` does for each record."""
    t = START_MS
    while True:
        t += rng.randrange(100)
        yield t + rng.randrange(-2_000, 2_001)


def _key(*params: object) -> str:
    text = ":".join(map(str, params)).encode() + Path(__file__).read_bytes()
    return hashlib.sha256(text).hexdigest()[:16]


def large_body(max_bytes: int = 100_000_000, seed: int = 20160128) -> Path:
    """Path of the large NDJSON body (generated on first use)."""
    path = BUILD_DIR / f"large-{_key(max_bytes, seed)}.ndjson"
    if path.exists():
        return path
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    written = 0
    at = times(rng)
    with open(tmp, "wb") as out:
        full = False
        while not full:
            block = [record(rng, next(at)) for _ in range(10_000)]
            data = ("\n".join(block) + "\n").encode("ascii")
            if written + len(data) > max_bytes:
                data = data[: data.rindex(b"\n", 0, max_bytes - written) + 1]
                full = True
            out.write(data)
            written += len(data)
    os.replace(tmp, path)
    return path


def large_body_gzip(level: int = 6) -> Path:
    """The large body gzip-compressed (as log shippers send it with compression on)."""
    import gzip

    plain = large_body()
    path = BUILD_DIR / f"{plain.stem}-gzip{level}.ndjson.gz"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=level, mtime=0))
        os.replace(tmp, path)
    return path


def small_static_body(records: int = 10, seed: int = 7) -> Path:
    """Path of a ~850-byte body whose records all fall in one 5-minute bucket."""
    path = BUILD_DIR / f"small-{_key(records, seed)}.ndjson"
    if path.exists():
        return path
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    base = 1_700_000_100_000  # a multiple of 5 minutes
    lines = [record(rng, base + i * 1_000) for i in range(records)]
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(("\n".join(lines) + "\n").encode("ascii"))
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    for p in (large_body(), small_static_body()):
        print(p, p.stat().st_size)
