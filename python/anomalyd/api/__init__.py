"""HTTP handlers, one module per API family; :func:`setup_routes` wires them all."""

from aiohttp import web

from . import data, documents, jobs, metrics, results, root, security
from .routes import Routes, check_every_route


def setup_routes(app: web.Application) -> None:
    routes = Routes(app)
    # aiohttp tries dynamic routes under a prefix in registration order: `_data` first, so the
    # hot endpoint resolves on its first candidate.
    data.setup(routes)
    root.setup(routes)
    jobs.setup(routes)
    results.setup(routes)
    metrics.setup(routes)
    security.setup(routes)
    documents.setup(routes)
    routes.add_route_miss()
    app.on_startup.append(check_every_route)
