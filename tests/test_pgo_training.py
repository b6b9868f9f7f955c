"""The profile-guided build's training workload (bench/pgo/train.py) still runs, and reads its
bodies as meant: the build falls back to a plain one when training fails, so a workload broken
by a change would otherwise go unnoticed, and leave the release build untrained."""

import importlib.util
from pathlib import Path

from anomalyd import _native

TRAIN = Path(__file__).resolve().parent.parent / "bench" / "pgo" / "train.py"


def test_the_training_mix_runs_and_reads_every_body():
    spec = importlib.util.spec_from_file_location("anomalyd_pgo_train", TRAIN)
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    level = _native.simd_level()
    train.main()
    assert _native.simd_level() == level
