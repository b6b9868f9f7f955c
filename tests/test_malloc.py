"""The glibc malloc settings `anomalyd serve` applies (see anomalyd/malloc.py)."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from anomalyd import malloc

# In a child: the settings are process-wide and would change this test process's allocator.
CHILD = "from anomalyd import malloc; import sys; sys.exit(0 if malloc.tune() else 1)"


def _child_tunes(**env: str) -> bool:
    clean = {k: v for k, v in os.environ.items() if k not in malloc.OPERATOR_SETTINGS and k != "GLIBC_TUNABLES"}
    return subprocess.run([sys.executable, "-c", CHILD], env={**clean, **env}).returncode == 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_applies_on_glibc() -> None:
    assert _child_tunes()


def test_the_operators_malloc_environment_wins() -> None:
    assert not _child_tunes(MALLOC_TRIM_THRESHOLD_="131072")
    assert not _child_tunes(GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")


def test_no_mallopt_is_not_an_error(monkeypatch) -> None:
    def no_libc(name: object) -> object:
        raise OSError("no C library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert malloc.tune() is False


def test_thresholds_keep_a_body_piece_on_the_heap() -> None:
    # aiohttp's pieces are at most its 256 KiB read size; one must stay below the mmap threshold.
    assert malloc.MMAP_THRESHOLD > 256 << 10
    assert malloc.TRIM_THRESHOLD > malloc.MMAP_THRESHOLD


# In a child, tuned as `serve` is: 200 MB in 100 KB pieces freed but for the last (so the heap's
# top stays in use and the trim threshold returns nothing); `release` hands the rest back.
RELEASE_CHILD = """
import sys
from anomalyd import malloc

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10

malloc.tune()
base = rss()
pieces = [bytes(100_000) + b"x" for _ in range(2000)]
last = pieces.pop()
del pieces
kept = rss() - base
assert malloc.release()
freed = rss() - base
print(kept >> 20, freed >> 20)
sys.exit(0 if kept > 150 << 20 and freed < 50 << 20 else 1)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_hands_freed_heap_back() -> None:
    """What a closed job's models leave behind in the heap goes back to the system."""
    r = subprocess.run([sys.executable, "-c", RELEASE_CHILD], capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_release_without_malloc_trim_is_not_an_error(monkeypatch) -> None:
    monkeypatch.setattr(malloc, "_malloc_trim", lambda: None)
    assert malloc.release() is False
