"""HTTP handlers, one module per API family; :func:`setup_routes` wires them all."""

from aiohttp import web

from . import data, jobs, metrics, results, root, security


def setup_routes(app: web.Application) -> None:
    root.setup(app)
    jobs.setup(app)
    data.setup(app)
    results.setup(app)
    metrics.setup(app)
    security.setup(app)
