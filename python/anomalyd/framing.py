"""HTTP that aiohttp's parser cannot read: the body it breaks fails, and the answer is Elasticsearch's.

When aiohttp's C parser meets broken framing in the middle of a body (a bad chunk size, chunk
data longer than its size, a malformed trailer), it drops the body's stream without telling its
reader and queues its own plain-text 400 as if it were the next request. The `_data` handler
would wait on that stream until the read timeout, holding the job (and every request queued for
it) meanwhile. This hook fails the stream instead, with the parser's message: the handler then
answers Elasticsearch's 400 at once and closes the connection (`errors.failure_response`), the
records it read before the break stay counted, and the job is free. Records that had arrived but
were not read yet when the framing broke are not read (Elasticsearch, which reads a body whole
before handling it, reads none).

How: aiohttp records the error as an `_ErrInfo`, made by the connection's protocol object where
it caught the parser's exception. `install` puts a subclass in its place that fails the body the
parser had begun and not finished (a new request cannot begin before a body ends), found where
aiohttp keeps it: queued, or taken off the queue by the connection's `start()` task. Only the
error path runs this code; a request that parses pays nothing. aiohttp is pinned; tests in
`tests/test_post_data_api.py` (broken chunked framing) fail if its internals move.

A request aiohttp cannot parse at all (a malformed request line or header, a header over the
limit, conflicting lengths) it answers itself, before any handler, in plain text. Elasticsearch
answers such a request (Netty's decoder failing) 400 `illegal_argument_exception` in its error
envelope, as every other error: so does `install`'s hook on aiohttp's error answer.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from .errors import EsError, json_response
from .keys import REQUEST_STATS, UNPARSED

_ErrInfo = web_protocol._ErrInfo


class _ParseError(_ErrInfo):  # type: ignore[misc,valid-type]
    """aiohttp's record of a parse error, which also fails the body the error broke."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Made by the protocol object itself (in data_received): its `self` is the connection.
        protocol = sys._getframe(1).f_locals.get("self")
        if isinstance(protocol, RequestHandler):
            body, to_be_read = _body_being_parsed(protocol)
            if body is not None and not body.is_eof() and body.exception() is None:
                if to_be_read:
                    body.set_exception(RequestPayloadError(_first_line(self.message)))
                # Ended too: a handler that answered without reading it leaves aiohttp draining
                # it, which would meet the error and log it as unhandled.
                body.feed_eof()


def _body_being_parsed(protocol: RequestHandler) -> tuple[StreamReader | None, bool]:
    """The body of the last request the parser began (not finished if the error is in it), and
    whether a handler is still to read it: the last one queued, else the one the connection's
    `start()` task took off the queue, whose handler task it holds as `task` until the handler
    has answered (then it drains what the handler left unread); a handler running is the
    protocol's `_current_request`."""
    if protocol._messages:
        return protocol._messages[-1][1], True
    task = protocol._task_handler
    frame = task.get_coro().cr_frame if task is not None else None
    if frame is None:
        return None, False
    state = frame.f_locals
    handler = state.get("task")  # unbound while a handler started eagerly (Python 3.12+) runs
    pending = handler is not None and not handler.done()
    return state.get("payload"), pending or protocol._current_request is not None


def _first_line(message: str) -> str:
    """An aiohttp parse error's message without the repr of the bad bytes it goes on with (on
    further lines, or after `: b'` or `: bytearray(b'`)."""
    return re.split(r"\n|: (?:bytearray\()?b['\"]", message, maxsplit=1)[0].rstrip(": ")


_answer_error = RequestHandler.handle_error


def _handle_error(self: RequestHandler, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                  message: str | None = None) -> StreamResponse:
    response = _answer_error(self, request, status, exc, message)  # logs it (logs.py: one line) and closes
    if status == 400 and isinstance(exc, HttpProcessingError):
        response = json_response(EsError(400, "illegal_argument_exception", _first_line(exc.message)).body(), 400,
                                 {"X-Elastic-Product": "Elasticsearch"})
        response.force_close()
        # Counted for /metrics under no method and no route: the request has neither.
        app = getattr(self._request_handler, "__self__", None)  # the connection's Application._handle
        if isinstance(app, web.Application) and REQUEST_STATS in app:
            app[REQUEST_STATS].by_route[(UNPARSED, 400)] += 1
    return response


def install() -> None:
    """Hook the parser's errors into the bodies they break and answer them as Elasticsearch
    does (idempotent)."""
    web_protocol._ErrInfo = _ParseError
    RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
