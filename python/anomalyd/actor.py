"""One actor per open job: it owns the job's native engine, its counters and its queue.

Everything that touches a job's data (post, flush, close) takes a *turn*: turns are granted one
at a time in arrival order, at most :data:`QUEUE_CAPACITY` requests wait, and the next one is
refused with Elasticsearch's 429 (after dropping waiters whose clients have gone). An uncontended
turn is taken without yielding to the event loop, so small requests pay almost nothing for the
ordering guarantee. A body that has fully arrived while the job is free (`ingest_now`) needs no
turn at all: it is ingested in one native call with no await, so nothing can come between.

The close and the periodic model snapshot take *protected* turns: a force-close (or shutdown)
interrupts the data operation holding the job and refuses the ones waiting, each with an answer
(:meth:`interrupt`), but never a protected turn (a snapshot's thread cannot be stopped halfway,
and a close must finish). Protected turns never get the 429. The snapshot, a *background* turn,
takes no place in the queue, and requests arriving while it holds the job wait without counting
against the queue limit (a background persist must not refuse data). A waiter whose client has
gone is refused when its turn would come (or sooner, to make room): a body its client gave up on
is not ingested. Once closed (or stopping), the actor refuses every new turn. A shutdown first
lets the operation under way end (:meth:`wind_down`) and interrupts it only if it outlasts the
shutdown timeout (see `shutdown.py`).

A streamed body's large chunks are read by the engine on a worker thread (:class:`_Feeder`),
with the GIL released: the event loop goes on receiving this body and serving other requests
meanwhile, and bodies for different jobs are read on different cores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections import deque
from concurrent.futures import Executor
from typing import TYPE_CHECKING, AsyncIterator, Protocol

from . import errors
from ._native import JobEngine
from .clock import now_ms

if TYPE_CHECKING:
    from .registry import Job

#: Requests that may wait for a job at once (Elasticsearch's per-job queue size).
QUEUE_CAPACITY = 100
#: A body's pieces smaller than this (with nothing in progress) are fed on the event loop: the
#: hand-off to a worker thread would cost more than it frees.
OFFLOAD_MIN_BYTES = 64 << 10
#: Pieces that arrive while the engine reads earlier ones are handed over together, up to this
#: many bytes; then receiving waits for the engine (and the socket's flow control takes over).
#: Also bounds what a failing request waits for on the loop (`_Feeder.settle`).
FEED_AHEAD_BYTES = 2 << 20


class ActorHooks(Protocol):
    """What an actor tells its owner (the registry) after each operation."""

    def request_done(self, actor: JobActor) -> None:
        """A request finished: persist the lifetime counts it stamped (grouped with other
        jobs') and store the results the engine made."""

    def results_ready(self, actor: JobActor) -> None:
        """Take the results the engine made and queue them for the store."""

    async def flush_results(self) -> None:
        """Write every queued result now."""


class Turn:
    """``async with actor.turn():`` — hold the job for one operation."""

    __slots__ = ("_actor", "_transport", "_protected", "_background")

    def __init__(self, actor: JobActor, transport: asyncio.BaseTransport | None, protected: bool,
                 background: bool) -> None:
        self._actor = actor
        self._transport = transport
        self._protected = protected
        self._background = background

    async def __aenter__(self) -> None:
        await self._actor._acquire(self._transport, self._protected, self._background)

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._actor._release()
        if exc_type is asyncio.CancelledError:
            self._actor._raise_interruption()


class _Feeder:
    """Feeds one body's pieces to the engine, in order: large ones (and whatever arrives while
    they are read) on a worker thread, small ones at once on the event loop."""

    __slots__ = ("_engine", "_pool", "_batch", "_ahead", "_job", "_reading")

    def __init__(self, engine: JobEngine, pool: Executor | None) -> None:
        self._engine = engine
        self._pool = pool
        self._batch: list[bytes] = []
        self._ahead = 0
        self._job: concurrent.futures.Future[None] | None = None
        self._reading: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._ahead += len(chunk)
        if self._reading is not None:
            if not self._reading.done() and self._ahead < FEED_AHEAD_BYTES:
                return
            await self._reading  # raises what the engine raised
            self._job = self._reading = None
        self._hand_over()

    async def finish(self) -> None:
        """Wait until every piece added has been read."""
        while self._reading is not None or self._batch:
            if self._reading is not None:
                await self._reading
                self._job = self._reading = None
            if self._batch:
                self._hand_over()

    def settle(self) -> None:
        """The request failed: a batch not started yet is dropped and one in progress is waited
        for (blocking, at most one batch), so that nothing is read after the request ends."""
        job, reading = self._job, self._reading
        self._job = self._reading = None
        if reading is not None:
            reading.add_done_callback(_outcome_unwanted)
        if job is not None and not job.cancel():
            concurrent.futures.wait([job])

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        size, self._ahead = self._ahead, 0
        if self._pool is None or size < OFFLOAD_MIN_BYTES:
            self._engine.feed_many(batch)
        else:
            self._job = self._pool.submit(self._engine.feed_many, batch)
            self._reading = asyncio.wrap_future(self._job)


class _Waiter:
    """An operation waiting for its turn: granted through `granted`; `transport` is its client's
    connection (None: kept even if it goes); `counted`: it takes a place in the queue (every
    request does; the background snapshot does not)."""

    __slots__ = ("granted", "transport", "task", "counted")

    def __init__(self, granted: asyncio.Future[None], transport: asyncio.BaseTransport | None,
                 task: asyncio.Task[object] | None, counted: bool) -> None:
        self.granted = granted
        self.transport = transport
        self.task = task
        self.counted = counted

    def gone(self) -> bool:
        """Its client has disconnected (aiohttp lets the handler run on)."""
        return self.transport is not None and self.transport.is_closing()

    def refuse(self, error: BaseException) -> None:
        if not self.granted.done():
            self.granted.set_exception(error)


def _gone() -> ConnectionResetError:
    return ConnectionResetError("the client disconnected while waiting for the job")


def _outcome_unwanted(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved, so that asyncio does not report it


class JobActor:
    def __init__(self, job: Job, engine: JobEngine, hooks: ActorHooks, feed_pool: Executor | None = None) -> None:
        self.job = job
        self.engine = engine
        self._hooks = hooks
        #: Where large body pieces are read (None: on the event loop).
        self._feed_pool = feed_pool
        self._busy = False
        self._waiters: deque[_Waiter] = deque()
        self._holder: asyncio.Task[object] | None = None
        #: Tasks holding or waiting for a protected turn (the close, a snapshot): never interrupted.
        self._protected: set[asyncio.Task[object]] = set()
        #: The holder interrupted by `interrupt`, and what it answers instead.
        self._interrupted: tuple[asyncio.Task[object], Exception] | None = None
        #: Closed or stopping: every new turn is refused with this.
        self._retired: Exception | None = None
        #: The close in progress, which every later close joins.
        self.closing: asyncio.Future[None] | None = None
        #: The periodic model snapshot in progress (see JobRegistry.request_done).
        self.snapshotting: asyncio.Future[None] | None = None
        self.opened_at = time.monotonic()
        #: When the model state was last snapshotted (monotonic seconds).
        self.snapshot_at = self.opened_at
        #: The engine's `model_changes` when the stored snapshot was taken or restored (None:
        #: none is stored for this engine), so that an unchanged model is not stored again.
        self.stored_changes: int | None = None

    @property
    def open_time(self) -> str:
        """How long the job has been open, as `_stats` shows it: whole seconds."""
        return f"{int(time.monotonic() - self.opened_at)}s"

    # -- the queue ---------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Requests waiting (those whose clients have gone are dropped first)."""
        self._drop_gone_waiters()
        return self._queued()

    def _queued(self) -> int:
        """Waiters that take a place in the queue."""
        return sum(w.counted for w in self._waiters)

    def turn(self, transport: asyncio.BaseTransport | None = None, *, protected: bool = False,
             background: bool = False) -> Turn:
        """A turn for one operation; `transport` is its client's connection, so that a waiter
        whose client has gone can be dropped; `protected`: the close's or a snapshot's turn;
        `background`: the server's own operation (a snapshot), which takes no place in the queue."""
        return Turn(self, transport, protected or background, background)

    async def _acquire(self, transport: asyncio.BaseTransport | None, protected: bool, background: bool) -> None:
        if self._retired is not None and not protected:
            raise self._retired
        task = asyncio.current_task()
        if protected and task is not None:
            self._protected.add(task)
        if not self._busy and not self._waiters:
            self._busy = True
            self._holder = task
            return
        if len(self._waiters) >= QUEUE_CAPACITY and not protected and self._holder not in self._protected:
            self._drop_gone_waiters()
            if self._queued() >= QUEUE_CAPACITY:
                raise errors.queue_full()
        waiter = _Waiter(asyncio.get_running_loop().create_future(), transport, task, not background)
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            granted = waiter.granted
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self._release()  # the turn was ours already: pass it on
                self._raise_interruption()  # interrupted as it was granted: answer, not vanish
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._protected.discard(task)
            raise

    def _drop_gone_waiters(self) -> None:
        """Refuse the waiters whose clients have disconnected, so that they do not hold places
        in the queue."""
        for waiter in [w for w in self._waiters if w.gone()]:
            self._waiters.remove(waiter)
            waiter.refuse(_gone())

    def _release(self) -> None:
        if self._holder is not None:
            self._protected.discard(self._holder)
        self._holder = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.gone():
                waiter.refuse(_gone())  # its client gave up on it: not served, whatever it sent
            elif not waiter.granted.done():
                waiter.granted.set_result(None)
                self._holder = waiter.task  # holds it from now, before it even resumes
                return
        self._busy = False

    def interrupt(self, error: Exception) -> None:
        """Force-close or shutdown: the data operation holding the job is cancelled and answers
        `error` (what it read stays counted), and every waiter but a protected one is refused
        with it."""
        holder = self._holder
        if (holder is not None and holder not in self._protected and holder is not asyncio.current_task()
                and (self._interrupted is None or self._interrupted[0] is not holder)):  # once
            self._interrupted = (holder, error)
            holder.cancel()
        self._refuse_waiters(error)

    def _refuse_waiters(self, error: Exception) -> None:
        """Every waiter but a protected one is refused with `error`."""
        waiting, self._waiters = self._waiters, deque()
        for waiter in waiting:
            if waiter.task in self._protected:
                self._waiters.append(waiter)
            else:
                waiter.refuse(error)

    def wind_down(self, error: Exception) -> None:
        """Shutdown's first step: no new operation starts (each is refused with `error` before
        it reads a byte) and those waiting are refused; the one under way runs on (a close or
        snapshot waiting still goes after it)."""
        self._retired = error
        self._refuse_waiters(error)

    def retire(self) -> None:
        """The job is closed: every new turn but a protected one is refused, and the
        operations under way are interrupted."""
        self._retired = errors.not_open(self.job.job_id)
        self.interrupt(self._retired)

    def _raise_interruption(self) -> None:
        """In the interrupted holder, on its way out: its answer instead of the cancellation."""
        task = asyncio.current_task()
        if self._interrupted is None or self._interrupted[0] is not task:
            return
        error, self._interrupted = self._interrupted[1], None
        if hasattr(task, "uncancel"):  # Python 3.11+: the cancellation is consumed here
            task.uncancel()
        raise error

    # -- operations (called while holding a turn) -------------------------------------------

    async def ingest(self, chunks: AsyncIterator[bytes], reset: tuple[int, int] | None = None,
                     body_bytes: int | None = None, smile: bool = False) -> bytes:
        """Stream one request body into the engine; the per-request counts as JSON.

        `reset` (ms) forgets what the open buckets in that range gathered first; `body_bytes`
        is the body's size when known (one document may then be that large); `smile`: the
        body is SMILE."""
        engine = self.engine
        engine.start_request(body_bytes, smile)
        if reset is not None:
            engine.reset_buckets(*reset)
        feeder = _Feeder(engine, self._feed_pool)
        try:
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except Exception:
                    # The body broke off (undecodable, its client gone or cut off): what came
                    # before is valid and is read first, as it would have been on one CPU. The
                    # break is what the request fails with, even if that text was malformed too.
                    with contextlib.suppress(Exception):
                        await feeder.finish()
                    raise
                await feeder.add(chunk)
            await feeder.finish()
            body: bytes = engine.finish_request(now_ms())
        except BaseException:
            feeder.settle()
            engine.abort_request()  # what was read stays in the in-memory totals, not yet persisted
            self._hooks.results_ready(self)  # buckets finished before the failure are final
            raise
        self._hooks.request_done(self)
        return body

    def ingest_now(self, body: bytes, sized: bool, smile: bool) -> bytes | None:
        """A body that has fully arrived (most small requests), ingested at once if the job is
        free: one native call and no await, so nothing can come between and no turn is needed.
        None when others hold or wait for the job; then the caller queues for a turn."""
        if self._busy or self._waiters or self._retired is not None:
            return None
        return self.ingest_whole(body, sized, smile)

    def ingest_whole(self, body: bytes, sized: bool, smile: bool) -> bytes:
        """`ingest` of a body that has fully arrived, in one native call; `sized`: it came
        with a Content-Length (one document may then be all of it); `smile`: it is SMILE."""
        try:
            out = self.engine.ingest_body(body, now_ms(), sized, smile)
        except BaseException:
            self._hooks.results_ready(self)  # buckets finished before the failure are final
            raise
        self._hooks.request_done(self)
        return out

    async def flush(self, *, calc_interim: bool, start: int | None, end: int | None,
                    advance_time: int | None, skip_time: int | None) -> int | None:
        """`_flush`; returns once its results are stored. The new last_finalized_bucket_end."""
        finalized = self.engine.flush(calc_interim, start, end, advance_time, skip_time)
        self._hooks.results_ready(self)
        await self._hooks.flush_results()
        return finalized
