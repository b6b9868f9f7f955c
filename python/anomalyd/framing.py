"""Broken HTTP framing inside a body reaches the handler reading that body.

When aiohttp's C parser meets broken framing in the middle of a body (a bad chunk size, chunk
data longer than its size, a malformed trailer), it drops the body's stream without telling its
reader and queues its own plain-text 400 as if it were the next request. The `_data` handler
would wait on that stream until the read timeout, holding the job (and every request queued for
it) meanwhile. This hook fails the stream instead, with the parser's message: the handler then
answers Elasticsearch's 400 at once and closes the connection (`errors.failure_response`), the
records read before the break stay counted, and the job is free.

A message the parser queues while a body is still unfinished can only be that error: the next
request cannot begin before the body ends. aiohttp is pinned; a test in
`tests/test_post_data_api.py` (broken chunked framing) fails if its internals move.
"""

from __future__ import annotations

from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

_parse = RequestHandler.data_received


def _data_received(self: RequestHandler, data: bytes) -> None:
    _parse(self, data)
    # Every request passes here: one test, the rest only after a parse error.
    messages = self._messages
    if messages and type(messages[-1][0]) is _ErrInfo:
        _fail_unfinished_body(self, messages[-1][0])


def _fail_unfinished_body(self: RequestHandler, error: _ErrInfo) -> None:
    messages = self._messages
    # The body being parsed: the last request queued before the error, else the one in hand.
    if len(messages) >= 2:
        body = messages[-2][1]
    elif self._current_request is not None:
        body = self._current_request.content
    else:
        return
    if not body.is_eof() and body.exception() is None:
        reason = error.exc.message if isinstance(error.exc, BadHttpMessage) else error.message
        # Its first line: the rest points at the bad bytes in a repr.
        body.set_exception(RequestPayloadError(reason.split("\n", 1)[0].rstrip(": ")))


def install() -> None:
    """Hook the parser's errors into the bodies they break (idempotent)."""
    RequestHandler.data_received = _data_received  # type: ignore[method-assign]
