"""The job registry: every job's configuration and state, and the actors of open jobs.

It is the one place that changes a job's lifecycle state, always writing the store first so
that what clients were told survives a restart; on start it reopens the jobs that were open,
as Elasticsearch reassigns open jobs to a node. It also persists what open jobs produce: counts
(grouped), results (as they are made) and model snapshots (on close, on shutdown and every
``snapshot_interval`` seconds), which a reopen restores.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import structlog

from . import errors, malloc, results
from ._native import JobEngine, validate_time_format
from .actor import JobActor
from .clock import now_ms
from .jobconfig import build_job_config, check_supported, names_clash, validate_job_id
from .jobupdate import apply_update, parse_update
from .store import MODEL_PIECE_BYTES, CountsWriter, Store
from .version import ES_VERSION

log = structlog.get_logger("anomalyd.registry")


@dataclass
class Job:
    job_id: str
    config: dict[str, Any]
    state: str = "closed"
    #: Persisted lifetime counts (the source of `_stats` while closed).
    data_counts: dict[str, Any] | None = None
    actor: JobActor | None = field(default=None, repr=False)
    #: Model size and timing figures of the last snapshot (the source of `_stats` while closed).
    model_stats: dict[str, Any] | None = None
    #: Done when the open in progress (state `opening`) has finished, either way.
    opened: asyncio.Future[None] | None = field(default=None, repr=False)
    #: A delete (or reset) has begun: no open from now on.
    deleting: bool = False


def _simple_match(pattern: str) -> Callable[[str], bool]:
    """Elasticsearch's simple match: `*` stands for any text, every other character for itself."""
    if "*" not in pattern:
        return pattern.__eq__
    rx = re.compile(".*".join(map(re.escape, pattern.split("*"))), re.DOTALL)
    return lambda text: rx.fullmatch(text) is not None


def _free_models(engine: JobEngine) -> None:
    """Free a closed job's models, and give the memory back to the system if there was much of
    it (a trim also gives back the heap kept for body pieces: not for every small job)."""
    size = json.loads(engine.analysis_stats_json())["model_bytes"]
    engine.discard_model()
    if size >= malloc.RELEASE_MIN_BYTES:
        malloc.release()


class JobRegistry:
    def __init__(self, store: Store, writer: CountsWriter, results_writer: results.ResultsWriter,
                 max_document_bytes: int, snapshot_interval: float = 300.0, feed_pool: Executor | None = None) -> None:
        self.store = store
        #: Worker threads that read large body pieces (see actor.py).
        self.feed_pool = feed_pool
        self.writer = writer
        self.results = results_writer
        self.max_document_bytes = max_document_bytes
        self.snapshot_interval = snapshot_interval
        self.jobs: dict[str, Job] = {}
        #: Shutdown has begun: operations under way finish, and no job operation starts
        #: (no post, flush, open, close or reset; the shutdown persists every open job itself).
        self.stopping = False
        #: Deletes running after their `wait_for_completion=false` answer.
        self._deleting: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        for stored in await self.store.load_jobs():
            job = Job(stored.job_id, stored.config, "closed", stored.data_counts)
            self.jobs[job.job_id] = job
            if stored.state in ("opened", "opening", "closing"):
                try:
                    await self._start_actor(job)
                    continue
                except errors.EsError as e:
                    # A job this build cannot run (say, a time format an older build let in)
                    # stays closed, and the others are served; its stored state is kept.
                    log.error("job_not_reopened", job_id=job.job_id, reason=e.reason)
            job.model_stats = await self.store.load_model_stats(job.job_id)

    def wind_down(self) -> None:
        """Shutdown's first step, while aiohttp still reads bodies (`shutdown.py`): from now on
        no job operation starts (each is refused with a 503, nothing of it read) and those
        waiting are refused; those under way run on. A job whose open is under way is wound
        down as it opens."""
        self.stopping = True
        for job in self.jobs.values():
            if job.actor is not None:
                job.actor.wind_down(errors.shutdown_refused())

    def interrupt_all(self) -> None:
        """aiohttp's shutdown has begun (it reads no more body bytes): every data operation
        still holding a job answers 503 at once, keeping what it read, instead of hanging until
        the shutdown timeout; any other is refused."""
        self.wind_down()
        for job in self.jobs.values():
            if job.actor is not None:
                job.actor.interrupt(errors.shutdown_cut())

    async def stop(self) -> None:
        """Shutdown: persist every open job's counts and model; open jobs stay open across the restart."""
        under_way = [task for job in self.jobs.values() if job.actor is not None
                     for task in (job.actor.closing, job.actor.snapshotting) if task is not None]
        # Closes, snapshots and background deletes under way finish first (a delete takes its
        # job out of `jobs`: not while the loop below walks it).
        await asyncio.gather(*under_way, *self._deleting, return_exceptions=True)
        for job in list(self.jobs.values()):
            if job.actor is not None:
                job.actor.engine.stamp(now_ms())  # the totals as they are now, failed requests included
                self.writer.add(job.job_id, job.actor.engine.saved_json)
                self.results_ready(job.actor)
                await self._save_model(job.actor)
                log.info("job_saved", job_id=job.job_id, state="opened")  # to open again at the next start
        await self.results.stop()
        await self.writer.stop()

    # -- selection ----------------------------------------------------------------------------

    def select(self, expression: str | None, allow_no_match: bool = True) -> list[Job]:
        """Ids, groups, wildcards, comma lists and `_all`, as Elasticsearch expands them: empty
        items are dropped; `_all` (or `*`, or nothing) alone means every job; `*` is the only
        wildcard; an id matching nothing, or with `allow_no_match=false` a pattern matching
        nothing, is missing, and all the missing ones are named in one 404."""
        tokens = [t for t in (t.strip() for t in (expression or "").split(",")) if t]
        if not tokens or tokens in (["_all"], ["*"]):
            tokens = ["*"]
        chosen: dict[str, Job] = {}
        missing: list[str] = []
        for token in tokens:
            match = _simple_match(token)
            found = [j for j in self.jobs.values() if match(j.job_id) or any(map(match, j.config.get("groups", [])))]
            if not found and ("*" not in token or not allow_no_match):
                missing.append(token)
            chosen.update((j.job_id, j) for j in found)
        if missing:
            raise errors.unknown_job(",".join(missing))
        return sorted(chosen.values(), key=lambda j: j.job_id)

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise errors.unknown_job(job_id)
        return job

    def actor_for_data(self, job_id: str) -> JobActor:
        """The actor that takes data for `job_id`, or Elasticsearch's 409s: "not open" for an
        unknown or closed job, "no process" while it is opening or closing."""
        job = self.jobs.get(job_id)
        if job is None or job.state == "closed":
            raise errors.not_open(job_id)
        if job.state != "opened" or job.actor is None:
            raise errors.no_process(job_id)
        return job.actor

    # -- lifecycle ----------------------------------------------------------------------------

    async def put(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        validate_job_id(job_id)
        config = build_job_config(
            job_id, body, now_ms=now_ms(), job_version=ES_VERSION, check_time_format=validate_time_format
        )
        check_supported(config)
        if job_id in self.jobs:
            raise errors.EsError(
                400,
                "resource_already_exists_exception",
                f"The job cannot be created with the Id '{job_id}'. The Id is already used.",
            )
        # Ids and groups expand in one namespace: neither may take a name the other has.
        if any(job_id in j.config.get("groups", ()) for j in self.jobs.values()):
            raise names_clash(job_id)
        if (clash := next((g for g in config.get("groups", ()) if g in self.jobs), None)) is not None:
            raise names_clash(clash)
        self.jobs[job_id] = Job(job_id, config)  # reserve the id before awaiting
        try:
            await self.store.create_job(job_id, config)
        except BaseException:
            self.jobs.pop(job_id, None)
            raise
        return config

    async def update(self, job_id: str, body: Any) -> dict[str, Any]:
        """`_update`: the job's config with the update applied, stored. In Elasticsearch's order:
        the body is parsed, then the id is checked, then the job is looked up."""
        update = parse_update(body)
        if job_id == "_all":
            raise errors.EsError(400, "status_exception", "Cannot update more than 1 job at a time")
        job = self.get(job_id)
        model_bytes = (job.model_stats or {}).get("model_bytes")
        config = apply_update(job.config, update, job_open=job.state != "closed", job_ids=self.jobs,
                              model_bytes=model_bytes)
        # Taken at once, so that an update, open or close that follows builds on it; the store
        # writes in submission order, and only the config (a state written here could land
        # after a close's and bring the job back open at the next start).
        job.config = config
        await self.store.update_job(job_id, config=config)
        return config

    async def open(self, job_id: str) -> None:
        job = self.get(job_id)
        if self.stopping:
            raise errors.shutdown_refused()
        if job.deleting:
            raise errors.EsError(409, "status_exception", f"Cannot open job [{job_id}] because it is being deleted")
        if job.actor is not None or job.state == "opening":
            # Elasticsearch's persistent-task service refuses the second task; the open wraps that
            cause = errors.EsError(400, "resource_already_exists_exception", f"task with id {{job-{job_id}}} already exist")
            raise errors.EsError(409, "status_exception", f"Cannot open job [{job_id}] because it has already been opened",
                                 caused_by=cause)
        job.state = "opening"  # until the actor runs: no second open, no analysis-limit update
        job.opened = asyncio.get_running_loop().create_future()  # what a close or delete meanwhile awaits
        try:
            await self._start_actor(job)
            job.config.pop("finished_time", None)
            await self.store.update_job(job_id, state="opened", config=job.config)
            log.info("job_opened", job_id=job_id, processed_record_count=(job.data_counts or {}).get("processed_record_count", 0))
        except BaseException:
            if job.actor is None:
                job.state = "closed"
            raise
        finally:
            job.opened.set_result(None)
            job.opened = None

    async def _start_actor(self, job: Job) -> None:
        counts = json.dumps(job.data_counts) if job.data_counts else None
        try:
            engine = JobEngine(json.dumps(job.config), counts, self.max_document_bytes)
        except ValueError as e:
            raise errors.EsError(400, "status_exception", f"Cannot open job [{job.job_id}]: {e}") from None
        pieces = await self.store.load_model(job.job_id)
        stored = None
        if pieces is not None:
            try:  # on a thread: a large model takes seconds to read, and the loop serves meanwhile
                await asyncio.get_running_loop().run_in_executor(None, engine.restore_model, pieces)
                stored = engine.model_changes
                log.info("model_restored", job_id=job.job_id, bytes=sum(map(len, pieces)),
                         latest_record_timestamp=engine.latest_record_ms)
            except ValueError as e:
                log.warning("model_snapshot_discarded", job_id=job.job_id, reason=str(e))
        # After a crash the stored results can reach past the snapshot (up to an interval
        # older), whose model lacks those buckets' data: the analysis goes on after them, as
        # after a `skip_time`, rather than finalise them again (empty, and twice in the results).
        # A no-op when the model has finalised them.
        last = await results.last_final_bucket(self.store, self.results, job.job_id)
        if last is not None:
            engine.flush(skip_time=last + engine.bucket_span_ms)
        job.actor = JobActor(job, engine, self, self.feed_pool)
        job.actor.stored_changes = stored
        job.state = "opened"
        if self.stopping:  # opened as the shutdown began: it takes no data either
            job.actor.wind_down(errors.shutdown_refused())

    # -- what actors report (ActorHooks) ------------------------------------------------------

    def request_done(self, actor: JobActor) -> None:
        # One hook for counts and results: this runs for every request. The counts are
        # rendered at commit time, from the totals the engine stamped as the request finished.
        self.writer.add(actor.job.job_id, actor.engine.saved_json)
        self.results_ready(actor)
        if time.monotonic() - actor.snapshot_at >= self.snapshot_interval and actor.snapshotting is None:
            actor.snapshotting = asyncio.ensure_future(self._periodic_snapshot(actor))

    async def _periodic_snapshot(self, actor: JobActor) -> None:
        """The periodic snapshot takes a turn like a request, so that nothing changes the model
        while a worker thread serialises it."""
        try:
            async with actor.turn(background=True):
                if actor.job.actor is actor:  # not closed while it waited (the close took one)
                    await self._save_model(actor)
        except Exception as e:  # noqa: BLE001 - logged; the next interval tries again
            log.error("model_snapshot_failed", job_id=actor.job.job_id, error=repr(e))
        finally:
            actor.snapshotting = None

    def results_ready(self, actor: JobActor) -> None:
        rows = actor.engine.take_results()
        if rows:
            self.results.add(actor.job.job_id, rows)

    async def flush_results(self) -> None:
        await self.results.flush()

    async def _save_model(self, actor: JobActor) -> None:
        """Snapshot the model (on a thread, with the GIL released: a large model takes seconds)
        and store it, unless the stored one is this model already (nothing changed it since it
        was stored or restored): a restart would otherwise rewrite every idle job's model. The
        caller holds the job, so nothing changes the model meanwhile."""
        actor.snapshot_at = time.monotonic()
        engine, job_id = actor.engine, actor.job.job_id
        changes = engine.model_changes
        stats = engine.analysis_stats_json()
        previous, actor.job.model_stats = actor.job.model_stats, json.loads(stats)
        if changes == actor.stored_changes:
            if actor.job.model_stats != previous:  # the same model under a new memory limit
                await self.store.save_model_stats(job_id, stats)
            return
        pieces = await asyncio.get_running_loop().run_in_executor(None, engine.model_snapshot, MODEL_PIECE_BYTES)
        await self.store.save_model(job_id, pieces, stats)
        actor.stored_changes = changes

    async def close(self, job: Job, force: bool, *, for_delete: bool = False, starting: bool = True) -> None:
        """Close `job` (a job being opened, once it is open). The close runs as a task of its own,
        which every close meanwhile joins, so that no caller, disconnect or force-close can cut
        it short; `force` interrupts the data operation holding the job and refuses those
        waiting. `for_delete` skips the model snapshot (seconds for a large model) that the
        delete would throw away at once. `starting=False`: part of an operation under way (a
        reset), which a shutdown lets finish rather than refuse halfway."""
        if job.opened is not None:
            await asyncio.shield(job.opened)
        actor = job.actor
        if actor is None:
            return
        if self.stopping and actor.closing is None and starting:
            raise errors.shutdown_refused()
        job.state = "closing"  # from now on, posts and flushes are refused
        if force:
            actor.interrupt(errors.not_open(job.job_id))
        if actor.closing is None:
            actor.closing = asyncio.ensure_future(self._close(job, actor, keep_model=not for_delete))
        await asyncio.shield(actor.closing)

    async def _close(self, job: Job, actor: JobActor, keep_model: bool) -> None:
        try:
            async with actor.turn(protected=True):
                self.results_ready(actor)
                await self.results.flush()
                if keep_model:
                    await self._save_model(actor)
                counts = actor.engine.persist_json(now_ms())
                job.config["finished_time"] = now_ms()
                self.writer.forget(job.job_id)
                await self.store.update_job(job.job_id, state="closed", config=job.config, data_counts=counts)
                job.data_counts = json.loads(counts)
                actor.retire()
                job.actor = None
                job.state = "closed"
                log.info("job_closed", job_id=job.job_id, processed_record_count=job.data_counts.get("processed_record_count", 0),
                         model_kept=keep_model)
        except BaseException:
            actor.closing = None  # the job stays open; a later close tries again
            if job.actor is actor:
                job.state = "opened"
            raise
        # The job is closed and nothing reads this engine any more (`_stats` and /metrics read
        # the stored figures): its models are freed on a thread, not by the loop wherever the
        # engine's last reference goes (a tenth of a second per 200k series), and the memory
        # goes back to the system (malloc.py).
        await asyncio.get_running_loop().run_in_executor(None, _free_models, actor.engine)

    def delete_in_background(self, job_id: str, force: bool) -> None:
        """`DELETE ?wait_for_completion=false`: the delete runs as a task of its own, which
        shutdown waits for; how it ends is only logged."""
        deleting = asyncio.ensure_future(self.delete(job_id, force))
        self._deleting.add(deleting)
        deleting.add_done_callback(partial(self._deleted, job_id))

    def _deleted(self, job_id: str, deleting: asyncio.Future[None]) -> None:
        self._deleting.discard(deleting)
        if deleting.cancelled():
            return
        if (error := deleting.exception()) is not None:
            log.warning("delete_job_failed", job_id=job_id,
                        error=error.reason if isinstance(error, errors.EsError) else repr(error))

    async def delete(self, job_id: str, force: bool) -> None:
        job = self.get(job_id)
        if job.state != "closed":
            if not force:
                raise errors.EsError(409, "status_exception", f"Cannot delete job [{job_id}] because the job is {job.state}")
        job.deleting = True
        try:
            if job.state != "closed":
                await self.close(job, force=True, for_delete=True)
            self.writer.forget(job_id)
            self.results.forget(job_id)
            await self.store.delete_jobs([job_id])
        except BaseException:
            job.deleting = False
            raise
        self.jobs.pop(job_id, None)
        log.info("job_deleted", job_id=job_id)

    async def reset(self) -> None:
        """`POST _features/_reset`: every job goes, open or not."""
        if self.stopping:
            raise errors.shutdown_refused()
        doomed = list(self.jobs.values())
        for job in doomed:
            job.deleting = True
        try:
            for job in doomed:
                if job.state != "closed":
                    await self.close(job, force=True, for_delete=True, starting=False)
        except BaseException:
            for job in doomed:
                job.deleting = False
            raise
        ids = [job.job_id for job in doomed]
        for j in ids:
            self.writer.forget(j)
            self.results.forget(j)
        await self.store.delete_jobs(ids)
        for j in ids:  # a job created meanwhile stays
            self.jobs.pop(j, None)
            log.info("job_deleted", job_id=j, by="reset")

    # -- reporting ------------------------------------------------------------------------------

    def model_stats(self, job: Job) -> dict[str, Any] | None:
        """Model size and timing figures: live while open, from the last snapshot while closed."""
        if job.actor is not None:
            return json.loads(job.actor.engine.analysis_stats_json())
        return job.model_stats

    def saved_counts(self, job: Job) -> dict[str, Any] | None:
        """The counts as persisted (the data-counts document): for an open job, those its last
        successful request stamped, which the group commit writes."""
        if job.actor is not None:
            return json.loads(job.actor.engine.saved_json())
        return job.data_counts

    def data_counts(self, job: Job) -> dict[str, Any]:
        if job.actor is not None:
            return json.loads(job.actor.engine.stats_json())
        if job.data_counts is not None:
            return job.data_counts
        return zero_counts(job.job_id)


def zero_counts(job_id: str) -> dict[str, Any]:
    keys = (
        "processed_record_count processed_field_count input_bytes input_field_count invalid_date_count "
        "missing_field_count out_of_order_timestamp_count empty_bucket_count sparse_bucket_count bucket_count"
    ).split()
    return {"job_id": job_id, **{k: 0 for k in keys}, "input_record_count": 0}

