"""HTTP handlers, one module per API family; :func:`setup_routes` wires them all."""

from aiohttp import web

from . import data, jobs, metrics, results, root, security


def setup_routes(app: web.Application) -> None:
    # aiohttp tries dynamic routes under a prefix in registration order: `_data` first, so the
    # hot endpoint resolves on its first candidate.
    data.setup(app)
    root.setup(app)
    jobs.setup(app)
    results.setup(app)
    metrics.setup(app)
    security.setup(app)
