"""Typed application state (`web.AppKey`), shared by the app factory and the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .registry import JobRegistry
from .settings import Settings


@dataclass
class NodeInfo:
    id: str
    name: str
    ephemeral_id: str
    cluster_uuid: str
    transport_address: str
    machine_memory: int


@dataclass
class RequestStats:
    """Answers by route (method, path pattern) and status, counted by the route envelope
    (`api/routes.py`) and exported by /metrics; and the requests under way, which a shutdown
    lets finish (`shutdown.py`)."""

    by_route: dict[tuple[tuple[str, str], int], int]
    #: Requests being handled that began before any shutdown did.
    in_flight: int = 0
    #: A shutdown has begun: requests from now on are served but not waited for.
    draining: bool = False

    def count(self, request: web.Request, status: int) -> None:
        """Count an answer given outside the envelope, for the route `request` matched."""
        route = request.match_info.route
        # a route's trailing-slash twin (api.routes) is counted as the route
        path = (route.resource.canonical.rstrip("/") or "/") if route.resource is not None else "?"
        method = asked_method(request) if route.method == "*" else route.method
        self.by_route[((method, path), status)] += 1


#: The methods the catch-all route counts by name; any other is `other`, so that clients cannot
#: grow the metrics without bound (a method is any token in HTTP).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


def asked_method(request: web.Request) -> str:
    return request.method if request.method in KNOWN_METHODS else "other"


#: The (method, route) of requests counted though they could not be parsed as HTTP (framing.py).
UNPARSED = ("-", "-")

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", JobRegistry)
NODE = web.AppKey("node", NodeInfo)
REQUEST_STATS = web.AppKey("request_stats", RequestStats)
#: Deprecation warnings of a request, sent as `Warning` headers with its answer, whatever it is
#: (Elasticsearch gathers them in the request's thread context the same way).
WARNINGS = web.RequestKey("warnings", list)
