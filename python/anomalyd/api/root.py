"""The cluster-level endpoints clients and orchestrators probe: `GET /`, health, readiness, and
the nodes' HTTP addresses that sniffing clients ask for."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response
from ..keys import NODE, REGISTRY, SETTINGS
from ..version import BUILD_HASH, ES_VERSION
from .routes import Routes


async def info(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return json_response({
        "name": node.name,
        "cluster_name": "anomalyd",
        "cluster_uuid": node.cluster_uuid,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "anomalyd",
            "build_hash": BUILD_HASH,
            "build_date": "2026-11-28T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    })


async def cluster_health(request: web.Request) -> web.Response:
    return json_response({
        "cluster_name": "anomalyd", "status": "green", "timed_out": False, "number_of_nodes": 1,
        "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0,
        "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    })


async def nodes_http(request: web.Request) -> web.Response:
    """`GET _nodes/http`: this one node, published at the address the request came in on, so that
    a client sniffing for nodes (`sniff_on_start`) finds itself back here."""
    node = request.app[NODE]
    wanted = request.match_info.get("node_id", "_all").split(",")
    if not {"_all", "_local", "*", node.id, node.name} & set(wanted):
        return json_response({"_nodes": {"total": 0, "successful": 0, "failed": 0}, "cluster_name": "anomalyd",
                              "nodes": {}})
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 9200)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return json_response({
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": "anomalyd",
        "nodes": {node.id: {
            "name": node.name, "transport_address": node.transport_address, "host": host, "ip": host,
            "version": ES_VERSION, "build_flavor": "default", "build_type": "anomalyd", "build_hash": BUILD_HASH,
            "roles": ["data", "ingest", "master", "ml"], "attributes": {},
            "http": {"bound_address": [address], "publish_address": address,
                     "max_content_length_in_bytes": request.app[SETTINGS].max_content_length},
        }},
    })


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    # Requests are served only once every job is restored (the app's resources are set up
    # before its first request; connections made meanwhile wait): reaching this is being ready,
    # until a shutdown begins (data is refused from then on: a balancer should look elsewhere).
    if request.app[REGISTRY].stopping:
        return json_response({"status": "stopping"}, status=503)
    return json_response({"status": "ready"})


def setup(routes: Routes) -> None:
    routes.add_route("GET", "/", info, body=False)
    routes.add_route("HEAD", "/", info, body=False)
    routes.add_route("GET", "/_cluster/health", cluster_health, body=False)
    routes.add_route("GET", "/_nodes/http", nodes_http, body=False)
    routes.add_route("GET", "/_nodes/{node_id}/http", nodes_http, body=False)
    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):
        # load balancers probe with HEAD as often as with GET
        routes.add_route("GET", path, probe, body=False)
        routes.add_route("HEAD", path, probe, body=False)
