"""Deterministic it_ops-like NDJSON corpus for the core benchmark.

Each line is one record: an epoch-ms ``time``, a numeric ``kpi``, the strings ``host`` and
``region`` and an unused ``note``.  About a tenth of the records carry a nested object with an
array (``"meta":{"k":1,"tags":["a","b"]}``), about a tenth a null and a string with escaped
quotes (``"user":null,"msg":"say \\"hi\\" ..."``).  Timestamps advance with small jitter, so records
near a bucket boundary arrive out of order; a few records are an hour late, have their time as a
string, a fractional number, or an absent/null/unparseable time, or lack an analysis field, so that
every DataCounts counter is exercised.

The corpus is a pure function of its parameters and of this file: it is written once to
``bench/core/build/corpus-<key>.ndjson``, where the key hashes both, and reused afterwards.
"""

import hashlib
import os
import random
import sys
from pathlib import Path

BUILD_DIR = Path(__file__).resolve().parent / "build"

START_MS = 1_454_020_569_000
REGIONS = ("eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east")
WORDS = ("disk", "latency", "ok", "warn", "backup", "cron", "gc", "pause", "tls", "retry",
         "cache", "miss", "queue", "deep", "node", "rebalanced", "checkpoint", "slow")
TAGS = ("a", "b", "prod", "canary", "blue", "green")
NAMES = ("bob", "alice", "ops", "admin", "eve")
INVALID_TIMES = ('"time":null,', "", '"time":"n/a",', '"time":"",')


def _record(rng: random.Random, t: int) -> str:
    """One NDJSON line (without its newline) for nominal time ``t``."""
    r = rng.random()
    if r < 0.002:
        time_part = INVALID_TIMES[rng.randrange(len(INVALID_TIMES))]
    elif r < 0.007:
        time_part = f'"time":"{t}",'
    elif r < 0.008:
        time_part = f'"time":{t}.{rng.randrange(1000):03d},'
    elif r < 0.009:
        time_part = f'"time":{t - rng.randrange(3_600_000, 7_200_000)},'
    else:
        time_part = f'"time":{t},'
    r = rng.random()
    kpi = "" if r < 0.003 else '"kpi":null,' if r < 0.006 else f'"kpi":{rng.lognormvariate(4.5, 0.6):.1f},'
    host = "" if rng.random() < 0.003 else f'"host":"srv-{rng.randrange(200)}",'
    note = " ".join(rng.choices(WORDS, k=rng.randrange(1, 6)))
    line = f'{{{time_part}{kpi}{host}"region":"{REGIONS[rng.randrange(len(REGIONS))]}","note":"{note}"'
    r = rng.random()
    if r < 0.1:
        tags = ",".join(f'"{tag}"' for tag in rng.sample(TAGS, rng.randrange(0, 4)))
        line += f',"meta":{{"k":{rng.randrange(100)},"ok":{"true" if r < 0.05 else "false"},"tags":[{tags}]}}'
    elif r < 0.2:
        line += f',"user":null,"msg":"say \\"hi\\" to {NAMES[rng.randrange(len(NAMES))]}"'
    return line + "}"


def _generate(path: Path, min_bytes: int, seed: int) -> None:
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    written = 0
    t = START_MS
    with open(tmp, "w", encoding="ascii", newline="\n") as out:
        while written < min_bytes:
            block = []
            for _ in range(10_000):
                t += rng.randrange(0, 100)
                block.append(_record(rng, t + rng.randrange(-2_000, 2_001)))
            text = "\n".join(block) + "\n"
            out.write(text)
            written += len(text)
    os.replace(tmp, path)


def corpus_path(min_bytes: int = 200_000_000, seed: int = 20160128) -> Path:
    """Path of the corpus of at least ``min_bytes`` bytes for ``seed``, generating it if needed."""
    key = hashlib.sha256(f"{min_bytes}:{seed}:".encode() + Path(__file__).read_bytes()).hexdigest()[:16]
    path = BUILD_DIR / f"corpus-{key}.ndjson"
    if not path.exists():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        for stale in BUILD_DIR.glob("corpus-*.ndjson"):
            stale.unlink()
        print(f"generating {path.name} ({min_bytes / 1e6:.0f} MB, seed {seed})", file=sys.stderr, flush=True)
        _generate(path, min_bytes, seed)
    return path
