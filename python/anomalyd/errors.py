"""Elasticsearch's error envelopes, and the exceptions that carry them.

Every failure leaves the server through :func:`failure_response`, called by the envelope every
route is wrapped in (`api/routes.py`), so clients always see the shapes they expect: the
exception envelope ``{"error":{"root_cause":[...],"type":..,"reason":..},"status":N}`` or, for
REST-layer errors such as 405 and 406, the simple ``{"error":"...","status":N}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

log = structlog.get_logger("anomalyd")
#: Set on a request whose client the server cut off for sending nothing (`--read-timeout`).
STALLED = web.RequestKey("stalled", bool)

#: aiohttp's HTTP errors read "400, message:\n  <what went wrong>".
_AIOHTTP_PREFIX = re.compile(r"^\d{3}, message:")


class EsError(Exception):
    """An Elasticsearch exception: status, snake_case type, reason, optional cause."""

    def __init__(
        self,
        status: int,
        type: str,
        reason: str,
        *,
        caused_by: EsError | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type
        self.reason = reason
        self.caused_by = caused_by
        self.headers = headers or {}

    def _error(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "reason": self.reason}
        if self.caused_by is not None:
            out["caused_by"] = self.caused_by._error()
        return out

    def root_cause(self) -> EsError:
        """The cause `root_cause` names: the innermost (see `ConfigError` for the parse errors'
        rule)."""
        root = self
        while root.caused_by is not None:
            root = root.caused_by
        return root

    def body(self) -> dict[str, Any]:
        root = self.root_cause()
        error = {"root_cause": [{"type": root.type, "reason": root.reason}], **self._error()}
        return {"error": error, "status": self.status}


class UnreadableBody(EsError):
    """A body that cannot be read to its end (bad gzip or deflate data, broken chunked framing):
    the client's fault, so a 400 that says so (a 500 would make shippers resend it forever)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "parse_exception", f"Failed to read the request body: {detail}")


class SimpleError(Exception):
    """A REST-layer error rendered as ``{"error": "<message>", "status": N}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def not_open(job_id: str) -> EsError:
    return EsError(409, "status_exception", f"Cannot perform requested action because job [{job_id}] is not open")


def no_process(job_id: str) -> EsError:
    reason = f"Cannot process data because job [{job_id}] does not have a corresponding autodetect process"
    return EsError(409, "status_exception", reason, caused_by=EsError(409, "status_exception", reason))


def shutdown_cut() -> EsError:
    """A body still arriving when the shutdown timeout ran out."""
    return EsError(503, "status_exception",
                   "The request was cut short because anomalyd is shutting down; the records read before stay counted")


class ShutdownRefusal(EsError):
    """An operation that would start after shutdown began: nothing of it was done. Answered
    with the connection closed (as Elasticsearch closes connections in its shutdown grace
    period), so that the client's retry opens a new one, to the next server."""


def shutdown_refused() -> ShutdownRefusal:
    return ShutdownRefusal(503, "status_exception", "anomalyd is shutting down; nothing of this request was read or done")


def unknown_job(job_id: str) -> EsError:
    return EsError(404, "resource_not_found_exception", f"No known job with id '{job_id}'")


def bad_request(reason: str, type: str = "illegal_argument_exception") -> EsError:
    return EsError(400, type, reason)


def queue_full() -> EsError:
    msg = "autodetect queue is full. Unable to execute command"
    return EsError(429, "es_rejected_execution_exception", msg)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return web.Response(body=data, status=status, content_type="application/json", headers=headers)


def end_connection(request: web.Request, response: web.StreamResponse) -> None:
    """Close the connection after `response`, reading nothing more of it: what follows is the
    rest of a body left unread, which cannot be told from a next request. The body is ended here
    so that aiohttp does not wait to drain it, and the parser stops, so nothing is fed to it."""
    request.protocol.close()
    request.content.feed_eof()
    response.force_close()


def failure_response(request: web.Request, exc: BaseException) -> web.Response:
    """The response for any exception raised while handling `request`."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        methods = sorted(exc.allowed_methods)
        msg = (f"Incorrect HTTP method for uri [{request.path_qs}] and method [{request.method}], "
               f"allowed: [{', '.join(methods)}]")
        exc = SimpleError(405, msg, headers={"Allow": ",".join(methods)})
    elif isinstance(exc, web.HTTPNotFound):
        exc = SimpleError(400, f"no handler found for uri [{request.path_qs}] and method [{request.method}]")
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        return web.Response(status=413)
    elif isinstance(exc, web.HTTPException):
        exc = SimpleError(exc.status, exc.reason)
    elif isinstance(exc, RequestPayloadError):  # broken chunked framing
        exc = UnreadableBody(_AIOHTTP_PREFIX.sub("", str(exc)).strip())
    if isinstance(exc, (UnreadableBody, ShutdownRefusal)):
        # The rest of the body cannot be read (aiohttp would raise the same error again
        # draining it after the answer), or is not wanted.
        response = json_response(exc.body(), exc.status)
        end_connection(request, response)
        return response
    if isinstance(exc, ConnectionResetError):
        # Nobody is left to read the answer; the status only tells the two cases apart in
        # /metrics. Cut off for stalling: 408, as nginx's client_body_timeout (logged when
        # cut); gone by itself, an ordinary event: 499, nginx's "client closed request".
        if request.get(STALLED, False):
            return web.Response(status=408)
        log.info("client_disconnected", path=request.path, remote=request.remote)
        return web.Response(status=499)
    if isinstance(exc, EsError):
        return json_response(exc.body(), exc.status, exc.headers)
    if isinstance(exc, SimpleError):
        return json_response({"error": exc.message, "status": exc.status}, exc.status, exc.headers)
    log.exception("unhandled error", path=request.path)
    return json_response(EsError(500, "exception", str(exc) or type(exc).__name__).body(), 500)
