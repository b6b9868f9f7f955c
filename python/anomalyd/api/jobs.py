"""The job API: create, get, update, delete, open, close, stats, and the feature reset."""

from __future__ import annotations

import asyncio
import itertools
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from ..clock import now_ms
from ..errors import EsError, json_response
from ..jobconfig import request_time_value
from ..keys import NODE, REGISTRY
from ..registry import Job, JobRegistry
from ..settings import parse_size
from .human import JOB_TIME_FIELDS, wants_human, with_time_strings
from .params import as_bool, json_body, merged_params, reject_unknown_query
from .routes import Routes, deprecated

BASE = "/_ml/anomaly_detectors"
#: Elasticsearch's default `_close` timeout.
CLOSE_TIMEOUT = "30m"
log = structlog.get_logger("anomalyd.jobs")


def _registry(request: web.Request) -> JobRegistry:
    return request.app[REGISTRY]


def _allow_no_match(request: web.Request, params: dict[str, Any]) -> bool:
    """`allow_no_match`, or the deprecated `allow_no_jobs` it replaced (with Elasticsearch's warning)."""
    if "allow_no_jobs" in params:
        deprecated(request, "Deprecated field [allow_no_jobs] used, expected [allow_no_match] instead")
    return as_bool(params, "allow_no_match", as_bool(params, "allow_no_jobs", True))


async def put_job(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"ignore_unavailable", "allow_no_indices", "ignore_throttled", "expand_wildcards"}))
    body = await json_body(request, required=True)
    config = await _registry(request).put(request.match_info["job_id"], body or {})
    return json_response(job_json(config, human=wants_human(request)))


#: What `exclude_generated` leaves out: the fields Elasticsearch sets, so that the configuration
#: can be put again as it is (here or on another cluster).
GENERATED = frozenset({"job_type", "job_version", "create_time", "finished_time", "model_snapshot_id",
                       "model_snapshot_min_version", "deleting", "blocked"})

#: Elasticsearch's order of a job's fields (`Job.doXContentBody`): those set after the put
#: (`finished_time` by a close, `groups` by an update, ...) take their places.
JOB_ORDER = {name: i for i, name in enumerate((
    "job_id", "job_type", "job_version", "create_time", "finished_time", "model_snapshot_id", "deleting",
    "model_snapshot_min_version", "custom_settings", "groups", "description", "analysis_config", "analysis_limits",
    "data_description", "model_plot_config", "renormalization_window_days", "background_persist_interval",
    "model_snapshot_retention_days", "daily_model_snapshot_retention_after_days", "results_retention_days",
    "results_index_name", "allow_lazy_open", "blocked"))}


def job_json(config: dict[str, Any], *, deleting: bool = False, exclude_generated: bool = False,
             human: bool = False) -> dict[str, Any]:
    """A job's configuration as Elasticsearch renders it."""
    fields = config | {"deleting": True} if deleting else config
    if exclude_generated:
        fields = {k: v for k, v in fields.items() if k not in GENERATED}
        if isinstance(custom := fields.get("custom_settings"), dict) and "created_by" in custom:
            # what made the job (an ML module, say) is generated too
            fields["custom_settings"] = {k: v for k, v in custom.items() if k != "created_by"}
    out = dict(sorted(fields.items(), key=lambda kv: JOB_ORDER.get(kv[0], len(JOB_ORDER))))
    return with_time_strings(out, JOB_TIME_FIELDS) if human else out


async def get_jobs(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"allow_no_match", "allow_no_jobs", "exclude_generated"}))
    query = dict(request.query)
    allow = _allow_no_match(request, query)
    jobs = _registry(request).select(request.match_info.get("job_id"), allow)
    # A job being deleted says so, as Elasticsearch's does (a `wait_for_completion=false`
    # delete answers before it ends).
    generated, human = as_bool(query, "exclude_generated", False), wants_human(request)
    configs = [job_json(j.config, deleting=j.deleting, exclude_generated=generated, human=human) for j in jobs]
    return json_response({"count": len(jobs), "jobs": configs})


#: The numbers of the task ids that `wait_for_completion=false` deletes are answered with.
_task_numbers = itertools.count(1)


async def delete_job(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"force", "wait_for_completion", "delete_user_annotations", "timeout"}))
    query = dict(request.query)
    force = as_bool(query, "force", False)
    job_id = request.match_info["job_id"]
    if as_bool(query, "wait_for_completion", True):
        await _registry(request).delete(job_id, force)
        return json_response({"acknowledged": True})
    # As in Elasticsearch: the delete runs as a task, answered with its id at once; how it ends
    # (a missing or open job too) is only logged.
    _registry(request).delete_in_background(job_id, force)
    return json_response({"task": f"{request.app[NODE].id}:{next(_task_numbers)}"})


async def update_job(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset())
    body = await json_body(request, required=True)
    config = await _registry(request).update(request.match_info["job_id"], body)
    return json_response(job_json(config, human=wants_human(request)))


async def open_job(request: web.Request) -> web.Response:
    params = await merged_params(request, frozenset({"timeout", "job_id"}), "open_job_request")
    if "timeout" in params:  # validated as Elasticsearch does, then not needed: an open is not queued
        await _timeout(request, params, "open_job_request")
    await _registry(request).open(request.match_info["job_id"])
    return json_response({"opened": True, "node": request.app[NODE].id})


async def close_job(request: web.Request) -> web.Response:
    params = await merged_params(request, frozenset({"force", "timeout", "allow_no_match", "allow_no_jobs", "job_id"}), "close_job_request")
    force = as_bool(params, "force", False)
    allow = _allow_no_match(request, params)
    timeout, shown = await _timeout(request, params, "close_job_request")
    registry = _registry(request)
    jobs = registry.select(request.match_info["job_id"], allow)

    # As in Elasticsearch, the jobs close together, and the timeout bounds the wait, not the
    # closes: a job still held by a stream when it expires goes on closing, and the answer is
    # the wait's failure.
    closes = []
    for job in jobs:
        close = asyncio.ensure_future(registry.close(job, force))
        close.add_done_callback(partial(_log_failure, job.job_id))
        closes.append(close)
    closing = asyncio.gather(*closes)
    closing.add_done_callback(_retrieve)  # also when the handler is cancelled meanwhile
    try:
        await asyncio.wait_for(asyncio.shield(closing), timeout)
    except asyncio.TimeoutError:  # TimeoutError itself only from Python 3.11
        raise EsError(500, "illegal_state_exception", f"Timed out when waiting for persistent tasks after {shown}") from None
    return json_response({"closed": True})


async def _timeout(request: web.Request, params: dict[str, Any], parser: str) -> tuple[float | None, str]:
    """`timeout` (default 30m), checked as Elasticsearch checks it where it came from."""
    in_body = "timeout" in (await json_body(request) or {})
    return request_time_value(params.get("timeout", CLOSE_TIMEOUT), "timeout", parser if in_body else None)


def _retrieve(closing: asyncio.Future[list[None]]) -> None:
    if not closing.cancelled():
        closing.exception()  # the first failure reaches the caller, if it still waits; all are logged


def _log_failure(job_id: str, close: asyncio.Future[None]) -> None:
    """Every close that fails for a fault of the server's (the job stays open) is logged: the
    caller may have stopped waiting (timeout), or heard only of another job's failure."""
    if not close.cancelled() and (error := close.exception()) is not None and not isinstance(error, EsError):
        log.error("close_failed", job_id=job_id, error=repr(error))


def _node_json(request: web.Request) -> dict[str, Any]:
    node = request.app[NODE]
    return {
        "id": node.id,
        "name": node.name,
        "ephemeral_id": node.ephemeral_id,
        "transport_address": node.transport_address,
        "attributes": {
            "ml.machine_memory": str(node.machine_memory),
            "ml.max_jvm_size": str(node.machine_memory // 2),
            "ml.config_version": "12.0.0",
        },
    }


#: `timing_stats` in Elasticsearch's order (the engine's figures come in any).
TIMING_ORDER = ("bucket_count", "total_bucket_processing_time_ms", "minimum_bucket_processing_time_ms",
                "maximum_bucket_processing_time_ms", "average_bucket_processing_time_ms",
                "exponential_average_bucket_processing_time_ms", "exponential_average_bucket_processing_time_per_hour_ms")


def job_stats(request: web.Request, registry: JobRegistry, job: Job, human: bool = False) -> dict[str, Any]:
    counts = registry.data_counts(job)
    model = registry.model_stats(job) or {}
    size: dict[str, Any] = {"job_id": job.job_id, "result_type": "model_size_stats"}
    if counts.get("processed_record_count", 0) == 0:
        # No data yet: Elasticsearch's default document, whose optional figures are absent.
        size |= {"model_bytes": 0, "total_by_field_count": 0, "total_over_field_count": 0, "total_partition_field_count": 0,
                 "bucket_allocation_failures_count": 0, "memory_status": "ok"}
    else:
        limit = parse_size(job.config.get("analysis_limits", {}).get("model_memory_limit", "1024mb"))
        size |= {
            "model_bytes": model.get("model_bytes", 0), "peak_model_bytes": model.get("model_bytes", 0),
            "model_bytes_exceeded": model.get("model_bytes_exceeded", 0), "model_bytes_memory_limit": limit,
            "total_by_field_count": model.get("total_by_field_count", 0), "total_over_field_count": 0,
            "total_partition_field_count": model.get("total_partition_field_count", 0),
            "bucket_allocation_failures_count": model.get("bucket_allocation_failures_count", 0),
            # refusals at the memory limit, kept across reopens with the model; figures stored
            # before the limit was enforced lack it
            "memory_status": model.get("memory_status", "ok" if model.get("model_bytes", 0) <= limit else "hard_limit"),
            "assignment_memory_basis": "current_model_bytes",
        }
    size |= {"categorized_doc_count": 0, "total_category_count": 0, "frequent_category_count": 0,
             "rare_category_count": 0, "dead_category_count": 0, "failed_category_count": 0,
             "categorization_status": "ok", "log_time": now_ms()}
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "data_counts": counts,
        "model_size_stats": size,
        "forecasts_stats": {"total": 0, "forecasted_jobs": 0},
        "state": job.state,
    }
    if job.deleting:
        out["deleting"] = True
    if human:
        out["data_counts"] = with_time_strings(counts)
        out["model_size_stats"] = with_time_strings(out["model_size_stats"])
    if job.actor is not None:
        out["node"] = _node_json(request)
        out["assignment_explanation"] = ""
        out["open_time"] = job.actor.open_time
    timing = model.get("timing_stats", {"bucket_count": 0, "total_bucket_processing_time_ms": 0.0})
    out["timing_stats"] = {"job_id": job.job_id, **{k: timing[k] for k in TIMING_ORDER if k in timing}}
    return out


async def get_stats(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"allow_no_match", "allow_no_jobs"}))
    allow = _allow_no_match(request, dict(request.query))
    human = wants_human(request)
    registry = _registry(request)
    jobs = registry.select(request.match_info.get("job_id"), allow)
    return json_response({"count": len(jobs), "jobs": [job_stats(request, registry, j, human) for j in jobs]})


async def reset_features(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"master_timeout"}))
    await _registry(request).reset()
    return json_response({"features": [{"feature_name": "machine_learning", "status": "SUCCESS"}]})


def setup(routes: Routes) -> None:
    r = routes
    r.add_route("GET", BASE, get_jobs, body=False)
    r.add_route("GET", BASE + "/_stats", get_stats, body=False)
    r.add_route("GET", BASE + "/{job_id}/_stats", get_stats, body=False)
    r.add_route("PUT", BASE + "/{job_id}", put_job)
    r.add_route("GET", BASE + "/{job_id}", get_jobs, body=False)
    r.add_route("DELETE", BASE + "/{job_id}", delete_job, body=False)
    r.add_route("POST", BASE + "/{job_id}/_update", update_job)
    r.add_route("POST", BASE + "/{job_id}/_open", open_job)
    r.add_route("POST", BASE + "/{job_id}/_close", close_job)
    r.add_route("POST", "/_features/_reset", reset_features, body=False)
