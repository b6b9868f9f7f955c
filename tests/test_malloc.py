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
