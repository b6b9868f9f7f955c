"""`POST _data` and `POST _flush`: the endpoints that feed a job.

A body that has fully arrived by the time the handler runs (small requests) is handed to the
actor whole, for one native call. Any other body is streamed into the actor as it arrives (never
the whole body in memory; a Content-Length body piece by piece as received, without copies); the
actor hands each chunk to the native engine. Oversized bodies are refused from their
Content-Length before a byte is read, and a client that stops sending for longer than the read
timeout loses its connection instead of holding the job.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import AsyncIterator

import structlog
from aiohttp import hdrs, web
from aiohttp.streams import EmptyStreamReader

from .. import errors
from .._native import DocumentTooLargeError, MalformedInputError
from ..encoding import BodyDecoder, content_coding
from ..errors import STALLED, EsError, SimpleError, json_response
from ..keys import REGISTRY, SETTINGS
from ..settings import Settings
from .human import counts_body, wants_human
from .params import as_bool, as_str, date_param, merged_params, reject_unknown_query, smile_body
from .routes import Routes, deprecated, refuse_expectation, refuse_expected, send_continue

BASE = "/_ml/anomaly_detectors"
log = structlog.get_logger("anomalyd")

DATA_PARAMS = frozenset({"reset_start", "reset_end"})
DEPRECATION = ("Posting data directly to anomaly detection jobs is deprecated, "
               "in a future major version it will be compulsory to use a datafeed")


#: The engine's times are 64-bit ms: a range's end beyond them ends there.
_LAST_MS = 2**63 - 1


def reset_range(request: web.Request) -> tuple[int, int] | None:
    """`reset_start` / `reset_end` validated as Elasticsearch does (after the open check), in
    ms: Elasticsearch's whole seconds."""
    raw_start = request.query.get("reset_start", "")
    raw_end = request.query.get("reset_end", "")
    start = date_param("start", raw_start, wrapped=True)
    end = date_param("end", raw_end, wrapped=True)
    if start is None:
        return None
    start_s = start // 1000
    end_s = start_s + 1 if end is None or end // 1000 == start_s else end // 1000
    if end_s < start_s:
        reason = f"Invalid time range: end time '{raw_end}' is earlier than start time '{raw_start}'."
        raise EsError(400, "status_exception", reason, caused_by=EsError(400, "illegal_argument_exception", reason))
    return start_s * 1000, min(end_s * 1000, _LAST_MS)


class _Watchdog:
    """Drops the connection of a client that sends nothing for `timeout` seconds.

    One timer per request, re-armed only when it fires: far cheaper than a timeout around every
    read. It fires at most `timeout` after the client was last waited for, re-armed to that
    moment while the client keeps up.
    """

    __slots__ = ("request", "timeout", "loop", "waiting_since", "busy", "handle")

    def __init__(self, request: web.Request, timeout: float) -> None:
        self.request = request
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        #: When the reader last began waiting for the client (loop time).
        self.waiting_since = self.loop.time()
        #: The body's reader is busy with a piece (waiting for the engine is not the client's fault).
        self.busy = False
        self.handle = self.loop.call_at(self.waiting_since + timeout, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        due = now + self.timeout if self.busy else self.waiting_since + self.timeout
        if due > now:
            self.handle = self.loop.call_at(due, self._check)
        elif self.request.transport is not None:
            log.warning("client_stalled", path=self.request.path, remote=self.request.remote, read_timeout_s=self.timeout)
            self.request[STALLED] = True
            self.request.transport.close()

    def cancel(self) -> None:
        self.handle.cancel()


async def _body_chunks(request: web.Request, read_timeout: float,
                       decoder: BodyDecoder | None) -> AsyncIterator[bytes]:
    """The body as it arrives, its gzip or deflate coding undone by `decoder`."""
    content = request.content
    # A Content-Length body is read piece by piece as received (`readchunk`): `readany` would
    # join every buffered piece into one new bytes, a copy of the body whenever the engine is
    # behind the socket. A chunked body is read with `readany`, which batches small HTTP
    # chunks (log shippers send many) that `readchunk` would hand over one call each.
    by_piece = not request.headers.get(hdrs.TRANSFER_ENCODING)
    watchdog = _Watchdog(request, read_timeout)
    loop_time = watchdog.loop.time
    try:
        while True:
            if by_piece:
                chunk, _ = await content.readchunk()  # without HTTP chunks, never an end marker
            else:
                chunk = await content.readany()
            if not chunk:
                if decoder is not None:
                    decoder.finish()
                return
            watchdog.busy = True
            if decoder is None:
                yield chunk
            else:
                for piece in decoder.decode(chunk):
                    yield piece
                    # One compressed read can inflate a thousandfold and the next is often
                    # buffered already: let the loop serve others between a read's pieces.
                    await asyncio.sleep(0)
            watchdog.busy = False
            watchdog.waiting_since = loop_time()
    finally:
        watchdog.cancel()


async def _decodes_empty(request: web.Request, length: str | None) -> bool:
    """Whether the body, its coding undone, is empty: Elasticsearch checks the type of a body it
    has, decoded. A chunked or compressed body is read until it shows a byte or ends; a plain
    one of some length is not empty (aiohttp gives an empty one no reader), nor, as far as a
    type check goes, is one whose coding cannot be undone."""
    try:
        coding = content_coding(request)
    except SimpleError:
        return False
    if length is not None and coding is None:
        return False
    decoder = None if coding is None else BodyDecoder(coding)
    while chunk := await request.content.readany():
        if decoder is None or any(decoder.decode(chunk)):
            return False
    if decoder is not None:
        decoder.finish()
    return True


async def post_data(app: web.Application, settings: Settings, request: web.Request) -> web.Response:
    # Thousands of small posts a second come through here, and each of aiohttp's request
    # properties (`request.app` too) is a Python call the first time it is read: the app and
    # its settings are bound at setup, and the inputs come from what routing has parsed
    # already (the URL) and from the headers, each read once.
    # In Elasticsearch's order (after the size limit, which the envelope applies): the REST
    # layer's content type, then the handler, whose every answer carries the route's
    # deprecation warning.
    length = request.headers.get(hdrs.CONTENT_LENGTH)  # validated by the HTTP parser; an `istr` key
    content = request.content
    coding, smile = None, False
    if type(content) is not EmptyStreamReader:  # a body (Content-Length or chunked); an empty one needs no type
        try:
            smile = smile_body(request, streaming=True)
        except SimpleError:
            if not await _decodes_empty(request, length):  # an empty body needs no type
                raise
        coding = content_coding(request)
    if settings.deprecation_warning:
        deprecated(request, DEPRECATION)
    has_query = bool(request.rel_url.raw_query_string)
    if has_query:
        reject_unknown_query(request, DATA_PARAMS)
    job_id = request.match_info["job_id"]
    human = has_query and wants_human(request)
    actor = app[REGISTRY].actor_for_data(job_id)
    reset = reset_range(request) if has_query else None  # validated after the open check
    try:
        if reset is None and coding is None and content.is_eof():
            # The whole body is here already (small requests): one native call, and no turn
            # to queue for unless the job is busy.
            whole = content.read_nowait()
            sized = length is not None
            body = actor.ingest_now(whole, sized, smile)
            if body is None:
                async with actor.turn(request.transport):
                    body = actor.ingest_whole(whole, sized, smile)
        else:
            async with actor.turn(request.transport):
                decoder = None if coding is None else BodyDecoder(coding)
                # A body of known size may be one document, as in Elasticsearch; the document
                # limit bounds chunked and compressed streams, whose size nothing bounds.
                known = int(length) if length is not None and coding is None else None
                body = await actor.ingest(_body_chunks(request, settings.read_timeout, decoder),
                                          reset, known, smile)
    except MalformedInputError:
        reason = "The input JSON data is malformed."
        raise EsError(400, "status_exception", reason, caused_by=EsError(400, "parse_exception", reason)) from None
    except DocumentTooLargeError as e:
        raise EsError(400, "status_exception", str(e), caused_by=EsError(400, "parse_exception", str(e))) from None
    if human:
        body = counts_body(body)
    return web.Response(status=202, body=body, content_type="application/json")


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect`: answered as on every route (`routes.expect_continue`), but a coding that cannot
    be read, or a shutdown under way, is refused before `100 Continue` too, since there is no
    use sending that body."""
    if (refused := refuse_expectation(request)) is not None:
        return refused
    try:
        content_coding(request)
        if request.app[REGISTRY].stopping:  # no use sending a body that would not be read
            raise errors.shutdown_refused()
    except (SimpleError, EsError) as e:
        return refuse_expected(request, errors.failure_response(request, e))
    await send_continue(request)
    return None


FLUSH_PARAMS = frozenset({"calc_interim", "start", "end", "advance_time", "skip_time"})


async def flush_job(request: web.Request) -> web.Response:
    params = await merged_params(request, FLUSH_PARAMS | {"job_id"}, "flush_job_request")
    job_id = request.match_info["job_id"]
    actor = request.app[REGISTRY].actor_for_data(job_id)
    calc_interim = as_bool(params, "calc_interim", False)
    start, end = as_str(params, "start"), as_str(params, "end")
    if not calc_interim:
        for name, v in (("start", start), ("end", end)):
            if v:
                raise errors.bad_request(f"Invalid flush parameters: unexpected '{name}'.")
    elif end and not start:
        raise errors.bad_request("Invalid flush parameters: 'start' has not been specified.")
    start_ms = date_param("start", start, wrapped=True)
    end_ms = date_param("end", end, wrapped=True)
    advance = date_param("advance_time", as_str(params, "advance_time"), wrapped=True)
    skip = date_param("skip_time", as_str(params, "skip_time"), wrapped=True)
    if advance is not None and skip is not None and advance <= skip:
        raise errors.bad_request(
            f"advance_time [{as_str(params, 'advance_time')}] must be later than skip_time [{as_str(params, 'skip_time')}]"
        )
    async with actor.turn(request.transport):
        finalized = await actor.flush(calc_interim=calc_interim, start=start_ms, end=end_ms,
                                      advance_time=advance, skip_time=skip)
    out: dict[str, object] = {"flushed": True}
    if finalized is not None:
        out["last_finalized_bucket_end"] = finalized
    return json_response(out)


def setup(routes: Routes) -> None:
    app = routes.app
    data = partial(post_data, app, app[SETTINGS])  # see post_data: no lookups per request
    routes.add_route("POST", BASE + "/{job_id}/_data", data, expect_handler=expect_continue)
    routes.add_route("POST", BASE + "/{job_id}/_flush", flush_job)
