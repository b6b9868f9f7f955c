"""Group commit (anomalyd.store.GroupCommit): batching, and nothing lost at shutdown."""

from __future__ import annotations

import asyncio

from anomalyd.store import GroupCommit


def recording(interval: float) -> tuple[GroupCommit[int], list[list[tuple[str, int]]]]:
    """A started group commit whose writes are recorded (an instant store)."""
    written: list[list[tuple[str, int]]] = []

    async def write(batch: list[tuple[str, int]]) -> None:
        written.append(batch)

    gc: GroupCommit[int] = GroupCommit(interval, write)
    gc.start()
    return gc, written


async def test_a_batch_being_written_when_stop_comes_is_written_once() -> None:
    written: list[list[tuple[str, int]]] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def write(batch: list[tuple[str, int]]) -> None:
        started.set()
        await release.wait()  # a slow store
        written.append(batch)

    gc: GroupCommit[int] = GroupCommit(0.01, write)
    gc.start()
    gc.add("a", 1)
    await started.wait()
    gc.add("b", 2)  # arrives while the first batch is being written
    stopping = asyncio.ensure_future(gc.stop())
    await asyncio.sleep(0.01)
    release.set()
    await stopping
    assert written == [[("a", 1)], [("b", 2)]]


async def test_adds_between_commits_share_one_write() -> None:
    gc, written = recording(0.05)
    gc.add("a", 1)
    await asyncio.sleep(0.01)  # the first commit goes at once, then the writer rests
    for i in range(100):
        gc.add("a", i)
    await asyncio.sleep(0.1)
    await gc.stop()
    assert [len(b) for b in written] == [1, 100]


async def test_adds_after_any_flush_still_reach_a_commit() -> None:
    """`add` wakes the writer only when the queue was empty: adds that follow a commit, an
    outside `flush` or a `forget` that emptied the queue must still be written without help."""
    gc, written = recording(0.01)
    gc.add("a", 1)
    await asyncio.sleep(0.03)  # committed by the writer
    gc.add("a", 2)
    await gc.flush()  # taken by an outside flush while the writer may be resting
    gc.add("b", 3)
    gc.forget("b")  # emptied again
    gc.add("a", 4)
    gc.add("a", 5)
    await asyncio.sleep(0.05)
    assert written == [[("a", 1)], [("a", 2)], [("a", 4), ("a", 5)]]
    await gc.stop()
    assert len(written) == 3


async def test_flush_waits_for_the_write_under_way() -> None:
    """A flush returns only once everything added before it is written, including a batch the
    writer took just before (the flusher finds nothing pending then)."""
    started, release = asyncio.Event(), asyncio.Event()
    written: list[list[tuple[str, int]]] = []

    async def slow_write(batch: list[tuple[str, int]]) -> None:
        started.set()
        await release.wait()
        written.append(batch)

    gc: GroupCommit[int] = GroupCommit(0.0, slow_write)
    gc.start()
    gc.add("j", 1)
    await started.wait()  # the writer has taken the batch
    flush = asyncio.ensure_future(gc.flush())
    await asyncio.sleep(0.01)
    assert not flush.done()
    release.set()
    await flush
    assert written == [[("j", 1)]]
    await gc.stop()
