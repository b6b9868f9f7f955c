"""The profile-guided build's training workload (bench/pgo/train.py) still runs, and reads its
bodies as meant: the build falls back to a plain one when training fails, so a workload broken
by a change would otherwise go unnoticed, and leave the release build untrained."""

import sys
from pathlib import Path

from anomalyd import _native

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "pgo"))
import train  # noqa: E402


def test_the_training_mix_runs_and_reads_every_body():
    level = _native.simd_level()
    train.main()
    assert _native.simd_level() == level
