"""Graceful shutdown: requests under way end before aiohttp's own shutdown starts.

aiohttp's shutdown begins by closing every connection, after which it drops whatever bytes
arrive: a body still coming in then can never end. A log shipper's batch cut that way is
answered 503 after part of it was counted, and the shipper sends all of it again, so its first
records would be counted twice (or as out of order). So SIGTERM and SIGINT first *wind down*,
as Elasticsearch's `http.shutdown_grace_period` does: no new data operation starts (503, nothing
read, so a client's retry loses and repeats nothing), those waiting are refused the same way,
and those under way finish, for up to `--shutdown-timeout`. Then aiohttp's shutdown runs; a body
still arriving at that point is cut short (`interrupt_requests`: 503, what it sent stays
counted). A second signal skips the wait.

Only `anomalyd serve` takes the signals (`take_signals`); tests drive the steps directly.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from aiohttp import web

from .keys import REGISTRY, SETTINGS

log = structlog.get_logger("anomalyd")


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

    def signalled(self, sig: signal.Signals) -> None:
        if self.task is None:
            self.task = self.loop.create_task(self._wind_down(sig))
        else:
            log.info("shutdown_hurried", signal=sig.name)
            self.task.cancel()
            _exit()

    async def _wind_down(self, sig: signal.Signals) -> None:
        timeout = self.app[SETTINGS].shutdown_timeout
        log.info("shutdown_started", signal=sig.name, waiting_up_to_s=timeout)
        if not await self.app[REGISTRY].wind_down(timeout):
            log.warning("shutdown_timeout_passed", shutdown_timeout_s=timeout)
        self.loop.call_soon(_exit)  # raised from a callback, as run_app's own handler does


def _exit() -> None:
    raise web.GracefulExit()
