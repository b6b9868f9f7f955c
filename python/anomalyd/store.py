"""The embedded store: SQLite under the data directory.

One table holds every job: its configuration, its state and its persisted lifetime counts;
``results`` holds the jobs' result documents (see :mod:`anomalyd.results`) and ``models`` (with
``model_parts``) each job's latest analysis snapshot.
Each create, delete and state change is one transaction, so a ``kill -9`` at any moment leaves
either the whole job or none of it. SQLite runs on a single dedicated thread: the event loop
never waits on disk, and writes are serialised without locks. WAL mode keeps commits cheap;
lifetime counts of many jobs are written in one transaction (see :class:`CountsWriter`).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Generic, TypeVar

import structlog

T = TypeVar("T")
#: Model snapshots are stored in pieces of at most this size: SQLite takes at most 1 GB per
#: value, and Python's sqlite3 copies each piece into or out of SQLite holding the GIL, so
#: the piece size bounds how long the event loop can wait on a large model (16 MB: a few ms).
MODEL_PIECE_BYTES = 16 << 20
log = structlog.get_logger("anomalyd.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    state       TEXT NOT NULL,
    data_counts TEXT
);
CREATE TABLE IF NOT EXISTS results (
    job_id      TEXT NOT NULL,
    result_type TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    score       REAL NOT NULL,
    is_interim  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_time ON results (job_id, result_type, timestamp);
CREATE INDEX IF NOT EXISTS results_by_score ON results (job_id, result_type, score);
-- Only the interim rows: every results write deletes a job's interim rows first, and without
-- this index that DELETE scanned all of the job's results (a cost growing with the store).
CREATE INDEX IF NOT EXISTS results_interim ON results (job_id) WHERE is_interim = 1;
CREATE TABLE IF NOT EXISTS models (
    job_id   TEXT PRIMARY KEY,
    snapshot BLOB NOT NULL,
    stats    TEXT NOT NULL
);
-- A snapshot is stored in pieces (the first in `models`, the rest here in order): SQLite refuses
-- values over 1 GB, and a job's model may be larger.
CREATE TABLE IF NOT EXISTS model_parts (
    job_id TEXT NOT NULL,
    part   INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (job_id, part)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass
class StoredJob:
    job_id: str
    config: dict[str, Any]
    state: str
    data_counts: dict[str, Any] | None


def _lock(data_dir: Path) -> int:
    """An exclusive lock on the data directory, held while the store is open, as Elasticsearch
    locks its data path: two servers on one store would each overwrite the other's counts and
    models, losing records both had acknowledged."""
    fd = os.open(data_dir / "anomalyd.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUse(f"failed to lock the data directory [{data_dir}]: another anomalyd is using it") from None
    return fd


class DataDirInUse(RuntimeError):
    """Another anomalyd holds the data directory."""


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "anomalyd.sqlite3"
        self._lock_fd = _lock(data_dir)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anomalyd-store")
        self._db: sqlite3.Connection | None = None

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `fn` on the store thread now: work runs in submission order, so a write
        submitted before a read is always visible to it."""
        return asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return fn(self._db)

    async def open(self) -> None:
        await self.submit(lambda db: None)

    async def close(self) -> None:
        def _close(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self.submit(_close)
        self._executor.shutdown(wait=True)
        os.close(self._lock_fd)  # releases the lock

    async def load_jobs(self) -> list[StoredJob]:
        def q(db: sqlite3.Connection) -> list[StoredJob]:
            rows = db.execute("SELECT job_id, config, state, data_counts FROM jobs ORDER BY job_id").fetchall()
            return [StoredJob(r[0], json.loads(r[1]), r[2], json.loads(r[3]) if r[3] else None) for r in rows]

        return await self.submit(q)

    async def create_job(self, job_id: str, config: dict[str, Any]) -> None:
        text = json.dumps(config, separators=(",", ":"))
        await self.submit(lambda db: _tx(db, [("INSERT INTO jobs VALUES (?, ?, 'closed', NULL)", (job_id, text))]))

    async def delete_jobs(self, job_ids: list[str]) -> None:
        """A job goes with its results and model state, in one transaction."""
        tables = ("jobs", "results", "models", "model_parts")
        stmts = [(f"DELETE FROM {table} WHERE job_id = ?", (j,)) for j in job_ids for table in tables]
        await self.submit(lambda db: _tx(db, stmts))

    def save_model(self, job_id: str, pieces: list[bytes], stats: bytes) -> asyncio.Future[None]:
        """Store a snapshot as the engine cut it (`model_snapshot(MODEL_PIECE_BYTES)`: at least
        one piece, none over SQLite's 1 GB). Queued at once: a read submitted later sees it."""
        stmts = [("INSERT OR REPLACE INTO models VALUES (?, ?, ?)", (job_id, pieces[0], stats.decode())),
                 ("DELETE FROM model_parts WHERE job_id = ?", (job_id,))]
        stmts += [("INSERT INTO model_parts VALUES (?, ?, ?)", (job_id, k, piece)) for k, piece in enumerate(pieces[1:], 1)]
        return self.submit(lambda db: _tx(db, stmts))

    def save_model_stats(self, job_id: str, stats: bytes) -> asyncio.Future[None]:
        """Replace the stats stored with the job's snapshot, keeping the snapshot."""
        stmts = [("UPDATE models SET stats = ? WHERE job_id = ?", (stats.decode(), job_id))]
        return self.submit(lambda db: _tx(db, stmts))

    async def load_model(self, job_id: str) -> list[bytes] | None:
        """The snapshot's pieces, in order (the engine joins them without the GIL)."""
        def q(db: sqlite3.Connection) -> list[bytes] | None:
            row = db.execute("SELECT snapshot FROM models WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            # The pieces stay apart (no join under the GIL): each is copied out of SQLite
            # holding the GIL, a few ms for a 16 MB piece. (A store written before snapshots
            # were cut this fine has 256 MB pieces, a longer wait each, until the next snapshot.)
            rest = db.execute("SELECT data FROM model_parts WHERE job_id = ? ORDER BY part", (job_id,))
            return [row[0], *(r[0] for r in rest)]

        return await self.submit(q)

    async def load_model_stats(self, job_id: str) -> dict[str, Any] | None:
        """The stats stored with the job's snapshot (a closed job's `model_size_stats`)."""
        def q(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute("SELECT stats FROM models WHERE job_id = ?", (job_id,)).fetchone()
            return json.loads(row[0]) if row else None

        return await self.submit(q)

    async def update_job(
        self, job_id: str, *, state: str | None = None, config: dict[str, Any] | None = None,
        data_counts: bytes | None = None
    ) -> None:
        """Change a job's state, config and counts (those given) in one transaction."""
        sets: list[str] = []
        args: list[Any] = []
        if state is not None:
            sets.append("state = ?")
            args.append(state)
        if config is not None:
            sets.append("config = ?")
            args.append(json.dumps(config, separators=(",", ":")))
        if data_counts is not None:
            sets.append("data_counts = ?")
            args.append(data_counts.decode())
        stmt = (f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = ?", (*args, job_id))
        await self.submit(lambda db: _tx(db, [stmt]))

    async def save_counts(self, counts: dict[str, bytes]) -> None:
        """Write many jobs' lifetime counts in one transaction."""
        stmts = [("UPDATE jobs SET data_counts = ? WHERE job_id = ?", (c.decode(), j)) for j, c in counts.items()]
        await self.submit(lambda db: _tx(db, stmts))

    async def get_meta(self, key: str) -> str | None:
        def q(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

        return await self.submit(q)

    async def set_meta(self, key: str, value: str) -> None:
        await self.submit(lambda db: _tx(db, [("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))]))


def transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], None]) -> None:
    """`work` as one transaction: all of it or, if it raises, none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _tx(db: sqlite3.Connection, stmts: list[tuple[str, Any]]) -> None:
    def run(db: sqlite3.Connection) -> None:
        for sql, args in stmts:
            db.execute(sql, args)
    transaction(db, run)


class GroupCommit(Generic[T]):
    """Group commit: producers `add` one job's payloads as they please, one task writes everything
    pending in one transaction, then rests `interval` seconds. Thousands of small requests per
    second share a handful of commits instead of paying one each; `flush()` writes what is
    pending now and waits until it is on disk.
    """

    def __init__(self, interval: float, write: Callable[[list[tuple[str, T]]], Awaitable[None]]) -> None:
        self._interval = interval
        self._write_batch = write
        self._pending: list[tuple[str, T]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Writes under way: they run to the end even if the loop is cancelled mid-write.
        self._writes: set[asyncio.Future[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def add(self, job_id: str, payload: T) -> None:
        # Runs once per request: wake the writer only when the queue stops being empty. A
        # non-empty queue has woken it already, since the writer clears the wake-up and takes
        # the whole queue in one step.
        if not self._pending:
            self._wake.set()
        self._pending.append((job_id, payload))

    def forget(self, job_id: str) -> None:
        """Drop what is pending for a job that is gone."""
        self._pending = [item for item in self._pending if item[0] != job_id]

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as e:  # noqa: BLE001 - a failed commit must not stop later ones
                log.error("group_commit_failed", writer=type(self).__name__, error=repr(e))
            await asyncio.sleep(self._interval)

    async def flush(self) -> None:
        """Everything added so far is on disk when this returns: what is pending is written
        now, and a write already under way (the writer's own) is waited for."""
        under_way = list(self._writes)
        if self._pending:
            batch, self._pending = self._pending, []
            # Shielded: a batch once taken is written even if this caller is cancelled (`stop`),
            # instead of being dropped with a queued store job.
            write = asyncio.ensure_future(self._write_batch(batch))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
            await asyncio.shield(write)
        if under_way:  # their failures are the writer's to report
            await asyncio.shield(asyncio.gather(*under_way, return_exceptions=True))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.flush()


class CountsWriter(GroupCommit[Callable[[], bytes]]):
    """Lifetime counts, grouped: each job adds what renders its counts (its engine's stamped
    totals), called once per commit however many requests added it since the last."""

    def __init__(self, store: Store, interval: float) -> None:
        super().__init__(interval, lambda batch: store.save_counts(
            {job_id: render() for job_id, render in dict(batch).items()}))

