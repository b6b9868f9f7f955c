"""The results API: `results/buckets[/<timestamp>]`, `results/records` and `results/influencers`.

Parameters come in the query string or the body (`page: {from, size}` in the body), with
Elasticsearch's defaults: buckets by time ascending, records and influencers by score
descending. Documents are returned as stored, so a page costs one indexed query.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .. import results
from ..clock import now_ms
from ..errors import EsError, bad_request
from ..keys import REGISTRY
from . import datemath
from .params import as_bool, as_str, merged_params
from .routes import Routes

BASE = "/_ml/anomaly_detectors/{job_id}/results"
MAX_RESULT_WINDOW = 10_000
COMMON = frozenset({"from", "size", "page", "start", "end", "exclude_interim", "sort", "desc"})
KINDS = {
    # result type: (plural, extra parameters, default sort, default desc, parser name)
    "bucket": ("buckets", frozenset({"expand", "anomaly_score", "timestamp"}), "timestamp", False, "get_buckets"),
    "record": ("records", frozenset({"record_score"}), "record_score", True, "get_records"),
    "influencer": ("influencers", frozenset({"influencer_score"}), "influencer_score", True, "get_influencers"),
}


def _int(params: dict[str, Any], name: str, default: int) -> int:
    v = params.get(name)
    if v is None:
        return default
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise bad_request(f"Failed to parse int parameter [{name}] with value [{v}]") from None
    if n < 0:
        raise bad_request(f"Parameter [{name}] cannot be < 0")
    return n


def _float(params: dict[str, Any], name: str) -> float:
    v = params.get(name)
    if v is None:
        return 0.0
    try:
        return float(v)
    except (TypeError, ValueError):
        raise bad_request(f"Failed to parse float parameter [{name}] with value [{v}]") from None


def _date(name: str, value: Any, now: int, round_up: bool = False) -> int | None:
    """A range bound in epoch ms (None when absent), as Elasticsearch's results index reads it
    (`datemath`); a `parse_exception` when it is no date."""
    if value is None or value == "":
        return None
    ms = datemath.parse(str(value), now, round_up=round_up)
    if ms is None:
        raise EsError(400, "parse_exception",
                      f"Query param [{name}] with value [{value}] cannot be parsed as a date or converted to a number (epoch).")
    return ms


def _bucket_time(value: Any, now: int) -> tuple[int, int] | None:
    """A bucket `timestamp`, matched as Elasticsearch matches a date: every time the text names
    (`2020-09-13` is that whole day)."""
    first = _date("timestamp", value, now)
    if first is None:
        return None
    last = _date("timestamp", value, now, round_up=True)
    return first, first if last is None else last


async def _query(request: web.Request, kind: str) -> tuple[str, results.Query, bool]:
    _, extra, default_sort, default_desc, parser = KINDS[kind]
    params = await merged_params(request, COMMON | extra | {"job_id"}, parser)
    job_id = request.match_info["job_id"]
    request.app[REGISTRY].get(job_id)  # 404 for an unknown job
    page = params.pop("page", None) or {}
    if not isinstance(page, dict):
        raise EsError(400, "x_content_parse_exception", f"[{parser}] page doesn't support values of type: VALUE")
    for k in ("from", "size"):
        if k in page:
            params[k] = page[k]
    # The bucket's time in the path, or as a parameter (query or body) like the others.
    timestamp = request.match_info.get("timestamp") or params.get("timestamp")
    if timestamp is not None:
        for group in (("start", "end"), ("from", "size"), ("anomaly_score",)):
            if any(params.get(k) is not None for k in group):
                raise bad_request(f"Param [timestamp] is incompatible with [{', '.join(group)}].")
    # A bucket's time gets one bucket (and the count of all it matches), as in Elasticsearch.
    offset, size = _int(params, "from", 0), _int(params, "size", 100 if timestamp is None else 1)
    if offset + size > MAX_RESULT_WINDOW:
        raise bad_request(f"Result window is too large, from + size must be less than or equal to: "
                          f"[{MAX_RESULT_WINDOW}] but was [{offset + size}].")
    sort = as_str(params, "sort") or default_sort
    if not results.valid_sort_field(sort):
        raise bad_request(f"No mapping found for [{sort}] in order to sort on")
    now = now_ms()
    q = results.Query(
        result_type=kind, start=_date("start", params.get("start"), now), end=_date("end", params.get("end"), now),
        timestamp=_bucket_time(timestamp, now), min_score=_float(params, results.SCORE_FIELD[kind]),
        exclude_interim=as_bool(params, "exclude_interim", False), sort=sort,
        desc=as_bool(params, "desc", default_desc), offset=offset, size=size,
    )
    return job_id, q, as_bool(params, "expand", False)


async def _respond(request: web.Request, kind: str) -> web.Response:
    job_id, q, expand = await _query(request, kind)
    registry = request.app[REGISTRY]
    total, docs = await results.search(registry.store, registry.results, job_id, q)
    plural = KINDS[kind][0]
    if kind == "bucket" and q.timestamp is not None and not docs:
        raise EsError(404, "resource_not_found_exception", f"No known bucket with timestamp [{q.timestamp[0]}]")
    if expand and docs:
        docs = [await _expanded(registry, job_id, doc, q.exclude_interim) for doc in docs]
    # Bytes, as every answer: `pretty` and `filter_path` rework a body only in that form.
    body = f'{{"count":{total},"{plural}":[{",".join(docs)}]}}'.encode()
    return web.Response(body=body, content_type="application/json")


async def _expanded(registry: Any, job_id: str, doc: str, exclude_interim: bool) -> str:
    bucket = json.loads(doc)
    rq = results.Query("record", timestamp=(bucket["timestamp"], bucket["timestamp"]), exclude_interim=exclude_interim,
                       sort="record_score", desc=True, size=MAX_RESULT_WINDOW)
    _, records = await results.search(registry.store, registry.results, job_id, rq)
    bucket["records"] = [json.loads(r) for r in records]
    return json.dumps(bucket, separators=(",", ":"))


async def get_buckets(request: web.Request) -> web.Response:
    return await _respond(request, "bucket")


async def get_records(request: web.Request) -> web.Response:
    return await _respond(request, "record")


async def get_influencers(request: web.Request) -> web.Response:
    return await _respond(request, "influencer")


def setup(routes: Routes) -> None:
    for method in ("GET", "POST"):
        routes.add_route(method, BASE + "/buckets", get_buckets)
        routes.add_route(method, BASE + "/buckets/{timestamp}", get_buckets)
        routes.add_route(method, BASE + "/records", get_records)
        routes.add_route(method, BASE + "/influencers", get_influencers)
