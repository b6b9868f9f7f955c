"""The glibc malloc settings `anomalyd serve` applies (see anomalyd/malloc.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from anomalyd import malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_applies_on_glibc() -> None:
    # In a child: the settings are process-wide and would change this test process's allocator.
    code = "from anomalyd import malloc; import sys; sys.exit(0 if malloc.tune() else 1)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_thresholds_keep_a_body_piece_on_the_heap() -> None:
    # aiohttp's pieces are at most its 256 KiB read size; one must stay below the mmap threshold.
    assert malloc.MMAP_THRESHOLD > 256 << 10
    assert malloc.TRIM_THRESHOLD > malloc.MMAP_THRESHOLD
