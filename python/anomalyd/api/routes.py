"""Route registration, and the one place every response passes through.

Each handler is registered through :class:`Routes`, which wraps it in :func:`_endpoint`: a
``Content-Length`` over the limit gets Elasticsearch's HTTP layer's 413 before anything else (the
route's expect handler answers 417 instead of ``100 Continue`` to that size, or to an ``Expect``
other than ``100-continue``); with security on it authenticates first, a route that takes no
body refuses one (as Elasticsearch's ``BaseRestHandler`` does, before the action runs), it
checks privileges, it renders any failure in Elasticsearch's envelope
(:func:`anomalyd.errors.failure_response`), applies ``?filter_path`` and ``?pretty``, stamps
``X-Elastic-Product`` and counts the status for /metrics, and the requests under way for a
graceful shutdown (``shutdown.py``). Each path also takes a trailing slash,
which Elasticsearch's router ignores. A request no route takes reaches :func:`route_miss` (a
catch-all registered last), which answers Elasticsearch's 405 or 400 through the same wrapper.

Why a wrapper per route rather than an aiohttp middleware: as soon as an application has one
middleware, aiohttp runs every request through a chain of two (ours and the current-app fixer
it adds), built from partials; that was about 7 % of a small `_data` request's CPU.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from multidict import istr

from .._native import PanicException
from ..auth import AUTHENTICATOR, Authenticator, permit
from ..errors import bad_request, end_connection, failure_response
from ..keys import REQUEST_STATS, SETTINGS, WARNINGS, RequestStats, asked_method
from ..version import BUILD_HASH, ES_VERSION
from ..privileges import Action, action_for
from .filter_path import filter_response
from .pretty import prettify, wants_pretty

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
#: An `istr`, so that stamping it on every response skips case-folding the name.
PRODUCT_HEADER = istr("X-Elastic-Product")
#: A client's request id, which Elasticsearch sends back (clients tie logs and slow calls to it).
OPAQUE_ID = istr("X-Opaque-Id")
#: The catch-all route's path, and its canonical form (how aiohttp and the tests name it).
MISS_ROUTE = "/{tail:.*}"
MISS_PATH = "/{tail}"


def deprecated(request: web.Request, message: str) -> None:
    """Answer `request` with this deprecation warning, as Elasticsearch writes one: code 299,
    its version and build, the message quoted."""
    quoted = message.replace("\\", "\\\\").replace('"', '\\"')
    request.setdefault(WARNINGS, []).append(f'299 Elasticsearch-{ES_VERSION}-{BUILD_HASH} "{quoted}"')


async def _refuse_body(request: web.Request) -> None:
    """Elasticsearch's answer to a body sent to an API that takes none (an empty chunked body is
    no body, as there: its first piece tells)."""
    if request.body_exists and (request.content_length or await request.content.readany()):
        raise bad_request(f"request [{request.method} {request.path}] does not support having a body")


def _endpoint(handler: Handler, route: tuple[str, str], stats: RequestStats,
              auth: tuple[Authenticator, Action] | None, takes_body: bool, max_length: int) -> Handler:
    any_method = route[0] == "*"
    by_route = stats.by_route

    async def endpoint(request: web.Request) -> web.StreamResponse:
        # In Elasticsearch's order: the HTTP layer's size limit (413, before a byte of the body
        # is read), credentials (401), the REST layer's checks (400), then the action's
        # privileges (403).
        length = request.headers.get(hdrs.CONTENT_LENGTH)  # validated by the HTTP parser
        if length is not None and int(length) > max_length:
            response = web.Response(status=413)
        else:
            counted = not stats.draining  # what a shutdown waits for: requests begun before it
            if counted:
                stats.in_flight += 1
            try:
                if auth is not None:
                    authenticator, action = auth
                    principal = await authenticator.authenticate(request)
                if not takes_body:
                    await _refuse_body(request)
                if auth is not None:
                    permit(request, principal, action)
                response = await handler(request)
            except (Exception, PanicException) as e:  # noqa: BLE001 - every failure leaves in the envelope
                response = failure_response(request, e)
            finally:
                if counted:
                    stats.in_flight -= 1
        if request.rel_url.raw_query_string:  # the common parameters that shape the answer
            filter_response(request, response)
            if wants_pretty(request):
                prettify(response)
        response.headers[PRODUCT_HEADER] = "Elasticsearch"
        if (opaque := request.headers.get(OPAQUE_ID)) is not None:
            response.headers[OPAQUE_ID] = opaque
        # The request's state is empty on nearly every request, and looking up a missing key
        # raises inside Mapping.get: half a microsecond a request, without the `len` test.
        if len(request) and (warnings := request.get(WARNINGS)):
            for warning in warnings:
                response.headers.add("Warning", warning)
        # the catch-all ("no route": 400, 405) is counted under the method it was asked with
        by_route[((asked_method(request), route[1]) if any_method else route, response.status)] += 1
        return response

    endpoint.enveloped = True  # type: ignore[attr-defined]  # see check_every_route
    return endpoint


def refuse_expected(request: web.Request, response: web.Response) -> web.Response:
    """`response` instead of `100 Continue`: answered before any handler (and so before the
    envelope), so stamped and counted here. The client is told not to send the body, but may
    have sent it anyway: the connection closes after the answer."""
    request.app[REQUEST_STATS].count(request, response.status)
    response.headers[PRODUCT_HEADER] = "Elasticsearch"
    end_connection(request, response)
    return response


def oversized(request: web.Request) -> bool:
    length = request.content_length
    return length is not None and length > request.app[SETTINGS].max_content_length


async def send_continue(request: web.Request) -> None:
    if request.version >= (1, 1):  # HTTP/1.0 has no interim answers
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def refuse_expectation(request: web.Request) -> web.Response | None:
    """An `Expect` header other than `100-continue`, or `100-continue` with a Content-Length over
    the limit: Elasticsearch's HTTP layer answers 417 (empty) at once. None: go on (send
    `100 Continue` first)."""
    if request.version >= (1, 1) and (request.headers[hdrs.EXPECT].lower() != "100-continue" or oversized(request)):
        return refuse_expected(request, web.Response(status=417))
    return None


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Every route's answer to an `Expect` header (aiohttp asks only when there is one)."""
    if (refused := refuse_expectation(request)) is not None:
        return refused
    await send_continue(request)
    return None


async def route_miss(request: web.Request) -> web.StreamResponse:
    """A request no route takes: 405 with the allowed methods when its path exists, else 400."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical != MISS_PATH:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


async def check_every_route(app: web.Application) -> None:
    """At start-up: refuse to serve a route added without the envelope, which would answer
    without authorization, in aiohttp's error format and uncounted."""
    bare = [f"{r.method} {r.resource.canonical if r.resource else '?'}" for r in app.router.routes()
            if not getattr(r.handler, "enveloped", False)]
    if bare:
        raise RuntimeError(f"routes registered without anomalyd.api.routes.Routes: {', '.join(bare)}")


class Routes:
    """``app.router.add_route`` with every handler wrapped in the envelope (see module doc)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._stats = app[REQUEST_STATS]
        self._authenticator = app[AUTHENTICATOR] if app[SETTINGS].security else None
        self._max_length = app[SETTINGS].max_content_length
        #: What each route was registered with, for its trailing-slash twin (`add_route_miss`).
        self._added: list[tuple[str, str, Handler, ExpectHandler]] = []

    def add_route(self, method: str, path: str, handler: Handler, *, body: bool = True,
                  expect_handler: ExpectHandler = expect_continue) -> None:
        """`body=False`: the API takes no request body, and a request with one gets a 400."""
        auth = None if self._authenticator is None else (self._authenticator, action_for(method, path))
        endpoint = _endpoint(handler, (method, path), self._stats, auth, body, self._max_length)
        self.app.router.add_route(method, path, endpoint, expect_handler=expect_handler)
        self._added.append((method, path, endpoint, expect_handler))

    def add_route_miss(self) -> None:
        """The catch-all; registered last, so any real route is found before it. Just before it,
        each route's path with a trailing slash, which Elasticsearch's router ignores: the same
        endpoint (counted under its route), matched after every route so that it costs the
        routes nothing."""
        for method, path, endpoint, expect_handler in self._added:
            if path != "/":
                self.app.router.add_route(method, path + "/", endpoint, expect_handler=expect_handler)
        auth = None if self._authenticator is None else (self._authenticator, action_for("*", None))
        endpoint = _endpoint(route_miss, ("*", MISS_PATH), self._stats, auth, True, self._max_length)
        self.app.router.add_route("*", MISS_ROUTE, endpoint, expect_handler=expect_continue)
