"""Graceful shutdown: requests under way end before aiohttp's own shutdown starts.

aiohttp's shutdown begins by closing every connection, after which it drops whatever bytes
arrive: a body still coming in then can never end. A log shipper's batch cut that way is
answered 503 after part of it was counted, and the shipper sends all of it again, so its first
records would be counted twice (or as out of order). So SIGTERM and SIGINT first *wind down*,
as Elasticsearch's `http.shutdown_grace_period` does: no job operation starts (503, nothing
read, the connection closed, so a client's retry loses and repeats nothing), those waiting are
refused the same way, and every request under way when the signal came may finish, for up to
`--shutdown-timeout` (requests arriving meanwhile are served, not waited for). Then aiohttp's
shutdown runs, briefly: a body still arriving is cut short
(`interrupt_requests`: 503, what it sent stays counted), and the jobs are persisted. A second
signal during the wind-down ends it at once.

Only `anomalyd serve` takes the signals (`take_signals`); tests drive the steps directly.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from aiohttp import web

from .keys import REGISTRY, REQUEST_STATS, SETTINGS

log = structlog.get_logger("anomalyd")

#: How long aiohttp's own shutdown waits, after the wind-down, for the handlers it interrupts
#: to answer (they do at once): the requests had the whole grace period already, so a shutdown
#: takes `--shutdown-timeout` and half a second at most, not twice the timeout.
ANSWER_GRACE_S = 0.5
#: How often the wind-down looks whether requests are still under way (polling keeps the
#: per-request path free of any shutdown signalling).
POLL_S = 0.02


def aiohttp_shutdown_timeout(grace_s: float) -> float:
    """`run_app`'s `shutdown_timeout` for a grace period of `grace_s` seconds."""
    return min(grace_s, ANSWER_GRACE_S)


async def interrupt_requests(app: web.Application) -> None:
    """aiohttp's `on_shutdown`: it reads no more request bytes from now, so a body in progress
    cannot end; it answers 503 at once instead of waiting out the shutdown timeout."""
    app[REGISTRY].interrupt_all()


def take_signals(app: web.Application) -> None:
    """Have SIGTERM and SIGINT wind down first (installed once the app has started, over the
    handlers `web.run_app` set, which raise `GracefulExit` at once)."""
    app.on_startup.append(_install)


async def _install(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    winding = _WindDown(app, loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, winding.signalled, sig)


class _WindDown:
    def __init__(self, app: web.Application, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.task: asyncio.Task[None] | None = None
        self.exiting = False

    def signalled(self, sig: signal.Signals) -> None:
        if self.task is None:
            self.task = self.loop.create_task(self._wind_down(sig))
        elif not self.exiting:
            log.info("shutdown_hurried", signal=sig.name)
            self.task.cancel()
            self._exit()
        # else aiohttp's shutdown is under way, and bounded: let it persist the jobs

    def _exit(self) -> None:
        """Start aiohttp's shutdown, once: `GracefulExit` raised from a callback, as run_app's
        own signal handler raises it (a second one would escape run_app's clean-up)."""
        if not self.exiting:
            self.exiting = True
            self.loop.call_soon(_raise_exit)

    async def _wind_down(self, sig: signal.Signals) -> None:
        try:
            grace = self.app[SETTINGS].shutdown_timeout
            stats = self.app[REQUEST_STATS]
            log.info("shutdown_started", signal=sig.name, waiting_up_to_s=grace)
            stats.draining = True
            self.app[REGISTRY].wind_down()
            deadline = self.loop.time() + grace
            while stats.in_flight and self.loop.time() < deadline:
                await asyncio.sleep(POLL_S)
            if stats.in_flight:
                log.warning("shutdown_timeout_passed", shutdown_timeout_s=grace, requests_under_way=stats.in_flight)
        finally:
            self._exit()  # whatever happened above, the server stops


def _raise_exit() -> None:
    raise web.GracefulExit()
