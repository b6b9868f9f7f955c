"""The embedded store: model snapshots of any size, in pieces."""

from __future__ import annotations

import os

from anomalyd import store as store_module
from anomalyd.store import Store


async def test_model_snapshots_are_stored_in_pieces(tmp_path, monkeypatch) -> None:
    """A snapshot larger than a piece is split and read back whole; a smaller one replacing it
    leaves no stale pieces; deleting the job takes every piece."""
    monkeypatch.setattr(store_module, "MODEL_PIECE_BYTES", 1000)
    store = Store(tmp_path)
    await store.open()
    try:
        await store.create_job("j", {"job_id": "j"})
        big = os.urandom(3500)
        await store.save_model("j", big, b'{"series_count":1}')
        assert await store.load_model("j") == (big, {"series_count": 1})
        small = os.urandom(10)
        await store.save_model("j", small, b"{}")
        assert await store.load_model("j") == (small, {})
        await store.save_model("j", b"", b"{}")
        assert await store.load_model("j") == (b"", {})
        await store.save_model("j", big, b"{}")
        await store.delete_jobs(["j"])
        assert await store.load_model("j") is None
        parts = await store.submit(lambda db: db.execute("SELECT COUNT(*) FROM model_parts").fetchone()[0])
        assert parts == 0
    finally:
        await store.close()
