"""Route registration, and the one place every response passes through.

Each handler is registered through :class:`Routes`, which wraps it in :func:`_endpoint`: with
security on it authenticates first, a route that takes no body refuses one (as Elasticsearch's
``BaseRestHandler`` does, before the action runs), it checks privileges, it renders any failure
in Elasticsearch's envelope (:func:`anomalyd.errors.failure_response`), applies ``?filter_path``
and ``?pretty``, stamps ``X-Elastic-Product`` and counts the status for /metrics. A request no
route takes reaches :func:`route_miss` (a catch-all registered last), which answers
Elasticsearch's 405 or 400 through the same wrapper.

Why a wrapper per route rather than an aiohttp middleware: as soon as an application has one
middleware, aiohttp runs every request through a chain of two (ours and the current-app fixer
it adds), built from partials; that was about 7 % of a small `_data` request's CPU.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import istr

from .._native import PanicException
from ..auth import AUTHENTICATOR, Authenticator, permit
from ..errors import bad_request, failure_response
from ..keys import REQUEST_STATS, SETTINGS, WARNINGS
from ..version import BUILD_HASH, ES_VERSION
from ..privileges import Action, action_for
from .filter_path import filter_response
from .pretty import prettify, wants_pretty

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: An `istr`, so that stamping it on every response skips case-folding the name.
PRODUCT_HEADER = istr("X-Elastic-Product")
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


def _endpoint(handler: Handler, route: tuple[str, str], by_route: dict[tuple[tuple[str, str], int], int],
              auth: tuple[Authenticator, Action] | None, takes_body: bool) -> Handler:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        try:
            # In Elasticsearch's order: credentials (401), the REST layer's checks (400), then
            # the action's privileges (403).
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
        if request.rel_url.raw_query_string:  # the common parameters that shape the answer
            filter_response(request, response)
            if wants_pretty(request):
                prettify(response)
        response.headers[PRODUCT_HEADER] = "Elasticsearch"
        # The request's state is empty on nearly every request, and looking up a missing key
        # raises inside Mapping.get: half a microsecond a request, without the `len` test.
        if len(request) and (warnings := request.get(WARNINGS)):
            for warning in warnings:
                response.headers.add("Warning", warning)
        by_route[(route, response.status)] += 1
        return response

    endpoint.enveloped = True  # type: ignore[attr-defined]  # see check_every_route
    return endpoint


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
        self._by_route = app[REQUEST_STATS].by_route
        self._authenticator = app[AUTHENTICATOR] if app[SETTINGS].security else None

    def add_route(self, method: str, path: str, handler: Handler, *, body: bool = True, **kwargs: Any) -> None:
        """`body=False`: the API takes no request body, and a request with one gets a 400."""
        auth = None if self._authenticator is None else (self._authenticator, action_for(method, path))
        self.app.router.add_route(method, path, _endpoint(handler, (method, path), self._by_route, auth, body), **kwargs)

    def add_route_miss(self) -> None:
        """The catch-all; registered last, so any real route is found before it."""
        auth = None if self._authenticator is None else (self._authenticator, action_for("*", None))
        self.app.router.add_route("*", MISS_ROUTE, _endpoint(route_miss, ("*", MISS_PATH), self._by_route, auth, True))
