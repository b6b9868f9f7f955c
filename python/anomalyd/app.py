"""The application factory: state, resource lifetimes and routes.

Resources live in `cleanup_ctx` (the store, then the registry that needs it), so start-up and
shutdown run in one order and a failed start unwinds cleanly. Every route is wrapped in one
envelope (`api/routes.py`) that renders every failure in Elasticsearch's form and stamps
`X-Elastic-Product` on every response.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator

import structlog
from aiohttp import web

from . import encoding, framing, shutdown
from .api import setup_routes
from .auth import AUTHENTICATOR, Authenticator
from .keys import NODE, REGISTRY, REQUEST_STATS, SETTINGS, NodeInfo, RequestStats
from .registry import JobRegistry
from .security import SecurityStore
from .settings import Settings
from .results import ResultsWriter
from .store import CountsWriter, Store

log = structlog.get_logger("anomalyd")


async def _node(store: Store, settings: Settings) -> NodeInfo:
    saved = await store.get_meta("node")
    if saved is None:
        saved = json.dumps({"id": uuid.uuid4().hex[:22], "cluster_uuid": uuid.uuid4().hex[:22]})
        await store.set_meta("node", saved)
    ids = json.loads(saved)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    return NodeInfo(
        id=ids["id"],
        name="anomalyd-" + ids["id"][:7],
        ephemeral_id=uuid.uuid4().hex[:22],
        cluster_uuid=ids["cluster_uuid"],
        transport_address=f"{settings.host}:{settings.port}",
        machine_memory=memory,
    )


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. under `taskset`), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = Store(settings.data_dir)
    await store.open()
    writer = CountsWriter(store, settings.commit_interval)
    writer.start()
    results_writer = ResultsWriter(store, settings.commit_interval)
    results_writer.start()
    # Large body pieces are read on these threads, with the GIL released: one per core, so
    # that bodies for different jobs are read in parallel (see actor.py). With one usable CPU
    # there is nothing to run in parallel, and the hand-offs would only cost: none.
    cpus = _usable_cpus()
    feed_pool = ThreadPoolExecutor(max_workers=cpus, thread_name_prefix="anomalyd-feed") if cpus > 1 else None
    registry = JobRegistry(store, writer, results_writer, settings.max_document_bytes, settings.snapshot_interval,
                           feed_pool)
    try:
        await registry.start()
        app[NODE] = await _node(store, settings)
    except BaseException:
        # A start that fails lets the data directory go (its lock) for the next attempt.
        await writer.stop()
        await results_writer.stop()
        if feed_pool is not None:
            feed_pool.shutdown(wait=False)
        await store.close()
        raise
    app[REGISTRY] = registry
    scheme, host = "https" if settings.tls_cert else "http", settings.host
    log.info("ready", url=f"{scheme}://{f'[{host}]' if ':' in host else host}:{settings.port}", jobs=len(registry.jobs),
             open_jobs=sum(job.actor is not None for job in registry.jobs.values()), data_dir=str(settings.data_dir),
             security=settings.security)
    try:
        yield
    finally:
        try:
            await registry.stop()
        finally:
            if feed_pool is not None:
                feed_pool.shutdown(wait=True)
            await store.close()
        log.info("stopped")


async def _security(app: web.Application) -> AsyncIterator[None]:
    authenticator = app[AUTHENTICATOR]
    snapshot = authenticator.refresh()  # a broken security store stops start-up, not the first request
    if not snapshot.users and not snapshot.api_keys:
        log.warning("security is on but no users exist; add one with `anomalyd users add`")
    try:
        yield
    finally:
        authenticator.store.close()


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    log.debug("inflate_backend", backend=encoding.BACKEND)
    framing.install()  # broken chunked framing fails the body it breaks (framing.py)
    # Bodies are decoded by the handlers (encoding.py), which can answer a failure properly.
    app = web.Application(client_max_size=settings.max_content_length, handler_args={"auto_decompress": False})
    app[SETTINGS] = settings
    app[REQUEST_STATS] = RequestStats(by_route=defaultdict(int))
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(shutdown.interrupt_requests)
    if settings.security:
        app[AUTHENTICATOR] = Authenticator(SecurityStore(settings.data_dir))
        app.cleanup_ctx.append(_security)
    setup_routes(app)
    return app
