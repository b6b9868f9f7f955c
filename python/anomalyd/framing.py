"""Broken HTTP framing inside a body reaches the handler reading that body.

When aiohttp's C parser meets broken framing in the middle of a body (a bad chunk size, chunk
data longer than its size, a malformed trailer), it drops the body's stream without telling its
reader and queues its own plain-text 400 as if it were the next request. The `_data` handler
would wait on that stream until the read timeout, holding the job (and every request queued for
it) meanwhile. This hook fails the stream instead, with the parser's message: the handler then
answers Elasticsearch's 400 at once and closes the connection (`errors.failure_response`), the
records it read before the break stay counted, and the job is free.

The body is the last one the parser began and had not finished: a new request cannot begin
before a body ends. It is remembered per connection as its request is queued (its handler may
not have started when the error comes), and forgotten with the connection. Records that had
arrived but were not read yet when the framing broke are not read (Elasticsearch, which reads a
body whole before handling it, reads none). aiohttp is pinned; a test in
`tests/test_post_data_api.py` (broken chunked framing) fails if its internals move.
"""

from __future__ import annotations

from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

_parse = RequestHandler.data_received
_lost = RequestHandler.connection_lost

#: Per connection: the body of the last request queued while its body was still arriving.
_unfinished: dict[RequestHandler, StreamReader] = {}


def _data_received(self: RequestHandler, data: bytes) -> None:
    _parse(self, data)
    # Every request passes here: a test or two unless a message was queued unfinished.
    messages = self._messages
    if messages:
        message, body = messages[-1]
        if type(message) is _ErrInfo:
            _fail_unfinished_body(self, message)
        elif not body.is_eof():
            _unfinished[self] = body


def _fail_unfinished_body(self: RequestHandler, error: _ErrInfo) -> None:
    body = _unfinished.pop(self, None)
    if body is None or body.is_eof() or body.exception() is not None:
        return
    reason = error.exc.message if isinstance(error.exc, BadHttpMessage) else error.message
    # Its first line: the rest points at the bad bytes in a repr.
    body.set_exception(RequestPayloadError(reason.split("\n", 1)[0].rstrip(": ")))
    # Ended too, so that a handler answering without reading it (a 409, say) is not followed by
    # aiohttp draining it, which would meet the error and log it as unhandled.
    body.feed_eof()


def _connection_lost(self: RequestHandler, exc: BaseException | None) -> None:
    _unfinished.pop(self, None)
    _lost(self, exc)


def install() -> None:
    """Hook the parser's errors into the bodies they break (idempotent)."""
    RequestHandler.data_received = _data_received  # type: ignore[method-assign]
    RequestHandler.connection_lost = _connection_lost  # type: ignore[method-assign]
