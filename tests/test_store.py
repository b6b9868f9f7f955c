"""The embedded store: model snapshots of any size, in pieces."""

from __future__ import annotations

import json
import os

import pytest

from anomalyd._native import DEFAULT_MAX_DOCUMENT_BYTES, JobEngine
from anomalyd.store import DataDirInUse, Store


async def test_model_snapshots_are_stored_in_pieces(tmp_path) -> None:
    """A snapshot's pieces are read back in order; a smaller snapshot replacing it leaves no
    stale pieces; deleting the job takes every piece."""
    store = Store(tmp_path)
    await store.open()
    try:
        await store.create_job("j", {"job_id": "j"})
        big = [os.urandom(1000) for _ in range(3)] + [os.urandom(500)]
        await store.save_model("j", big, b'{"series_count":1}')
        assert await store.load_model("j") == big
        assert await store.load_model_stats("j") == {"series_count": 1}
        small = [os.urandom(10)]
        await store.save_model("j", small, b"{}")
        assert await store.load_model("j") == small
        await store.save_model("j", [b""], b"{}")
        assert await store.load_model("j") == [b""]
        await store.save_model("j", big, b"{}")
        await store.delete_jobs(["j"])
        assert await store.load_model("j") is None and await store.load_model_stats("j") is None
        parts = await store.submit(lambda db: db.execute("SELECT COUNT(*) FROM model_parts").fetchone()[0])
        assert parts == 0
    finally:
        await store.close()


def test_a_model_restores_from_its_pieces() -> None:
    """The engine joins a snapshot's pieces itself: any cut restores the same model, and a cut
    snapshot is refused, not half-read."""
    config = json.dumps({"job_id": "j", "analysis_config": {"bucket_span": "1h", "detectors": [
        {"function": "mean", "field_name": "v", "by_field_name": "h"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}})
    engine = JobEngine(config, None, DEFAULT_MAX_DOCUMENT_BYTES)
    body = b"".join(b'{"time":%d,"h":"h%d","v":%d}\n' % (1403481600 + k * 60, k % 40, k) for k in range(5000))
    engine.ingest_body(body, 0)
    [snapshot] = engine.model_snapshot(1 << 30)
    assert b"".join(engine.model_snapshot(997)) == snapshot
    assert [len(p) for p in engine.model_snapshot(997)][:-1] == [997] * (len(snapshot) // 997)
    stats = engine.analysis_stats_json()
    for cuts in ([], [1], [7, 8, len(snapshot) // 2], list(range(100, len(snapshot), 997))):
        pieces = [snapshot[a:b] for a, b in zip([0, *cuts], [*cuts, len(snapshot)])]
        restored = JobEngine(config, None, DEFAULT_MAX_DOCUMENT_BYTES)
        restored.restore_model(pieces)
        assert restored.model_snapshot(1 << 30) == [snapshot] and restored.analysis_stats_json() == stats
    with pytest.raises(ValueError):
        JobEngine(config, None, DEFAULT_MAX_DOCUMENT_BYTES).restore_model([snapshot[:100], snapshot[200:]])
    with pytest.raises(ValueError):
        engine.model_snapshot(0)
    engine.discard_model()
    assert json.loads(engine.analysis_stats_json())["series_count"] == 0


async def test_one_store_per_data_dir(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    with pytest.raises(DataDirInUse, match="another anomalyd is using it"):
        Store(tmp_path)
    await store.close()
    again = Store(tmp_path)  # the lock goes with the store
    await again.open()
    await again.close()
