"""``POST _ml/anomaly_detectors/<job_id>/_update``: Elasticsearch's ``JobUpdate``, for the settings
anomalyd has.

The body is parsed strictly (``[job_update] unknown field [...]``), checked as Elasticsearch checks
an update, and merged into the job's config, which is returned whole. Analysis limits change only
while the job is closed. Settings that would change what the analysis does and that anomalyd does
not analyse (custom rules, categorization) are refused with a clear 400 rather than stored unused.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from .jobconfig import (BOOL, NUM, OBJ, OBJ_ARRAY, STATUS, STR, STR_ARRAY, STR_OR_NULL, ConfigError, _analysis_limits,
                        _bool, _long, _model_plot_config, _not_less, _objects, _parse_object, _per_partition, _strings,
                        _time_value, check_persist_interval, check_prune_window, check_snapshot_retention, names_clash,
                        validate_groups)

MB = 1 << 20


def byte_size_string(n: int) -> str:
    """Elasticsearch's ByteSizeValue rendering: the largest unit reached, one decimal truncated
    and dropped when zero (`5mb`, `1.5gb`, `0b`)."""
    units = ((1 << 50, "pb"), (1 << 40, "tb"), (1 << 30, "gb"), (MB, "mb"), (1 << 10, "kb"))
    size, suffix = next(((n / u, s) for u, s in units if n >= u), (float(n), "b"))
    whole, _, tenths = repr(size).partition(".")
    return f"{whole}{suffix}" if tenths[:1] in ("", "0") else f"{whole}.{tenths[0]}{suffix}"


def _need_index(d: dict) -> None:
    if "detector_index" not in d:
        raise ConfigError("[detector_index] must be set")


def _detector_update(raw: dict) -> dict:
    # Elasticsearch's parser takes all three as optional constructor arguments and builds when
    # the last arrives or at the end: without an index, the build fails.
    fields = {"detector_index": (NUM, _long), "description": (STR, str), "custom_rules": (OBJ_ARRAY, _objects)}
    d = _parse_object("detector_update", raw, fields, ctor=tuple(fields), build=_need_index)
    if d.get("custom_rules"):
        raise ConfigError("custom_rules are not supported by anomalyd yet")
    return d


def parse_update(body: Any) -> dict[str, Any]:
    """The update `body` asks for, parsed as Elasticsearch's `JobUpdate` parser reads it (before
    it looks at any job), or ConfigError."""
    if not isinstance(body, dict):
        raise ConfigError(f"Expected START_OBJECT but was: {type(body).__name__}", type="x_content_parse_exception")
    days = (NUM, _long)
    return _parse_object("job_update", body, {
        "job_id": (STR, str), "groups": (STR_ARRAY, _strings), "description": (STR_OR_NULL, lambda v: v),
        "detectors": (OBJ_ARRAY, lambda v: [_detector_update(d) for d in _objects(v)]),
        "model_plot_config": (OBJ, _model_plot_config), "analysis_limits": (OBJ, _analysis_limits),
        "renormalization_window_days": days,
        "background_persist_interval": (STR, lambda v: _time_value(v, "background_persist_interval")),
        "results_retention_days": days, "model_snapshot_retention_days": days,
        "daily_model_snapshot_retention_after_days": days, "custom_settings": (OBJ, lambda v: v),
        "allow_lazy_open": (BOOL, _bool),
        "model_prune_window": (STR, lambda v: _time_value(v, "model_prune_window")),
        "categorization_filters": (STR_ARRAY, _strings), "per_partition_categorization": (OBJ, _per_partition),
    })


def apply_update(config: dict[str, Any], u: dict[str, Any], *, job_open: bool, job_ids: Container[str] = (),
                 model_bytes: int | None = None) -> dict[str, Any]:
    """The job's config with the parsed update `u` applied (a new dict), or ConfigError.
    `job_ids` are the existing jobs' ids (no group may take one), `model_bytes` the model's size
    at its last snapshot (the memory limit may not go below it)."""
    job_id = config["job_id"]  # a job_id in the body is overridden by the URL's, as in Elasticsearch
    # What leaves categorization off (no filters, per-partition still disabled) is a no-op, as
    # in Elasticsearch; anything that would turn it on is refused.
    if u.get("categorization_filters") or (u.get("per_partition_categorization") or {}).get("enabled"):
        raise ConfigError("categorization is not supported by anomalyd yet")
    if (clash := next((g for g in u.get("groups", ()) if g in job_ids), None)) is not None:
        raise names_clash(clash)
    if "analysis_limits" in u and job_open:
        raise ConfigError("Cannot update analysis_limits while the job is open", type=STATUS)
    new_limit_mb = u.get("analysis_limits", {}).get("model_memory_limit")
    if new_limit_mb is not None and model_bytes is not None and new_limit_mb < model_bytes // MB:
        raise ConfigError("Invalid update value for analysis_limits: model_memory_limit cannot be decreased below "
                          f"current usage; current usage [{byte_size_string(model_bytes // MB * MB)}], update had "
                          f"[{byte_size_string(new_limit_mb * MB)}]", type=STATUS)
    out = dict(config)
    if "groups" in u:
        validate_groups(job_id, u["groups"])
        if u["groups"]:
            out["groups"] = u["groups"]
        else:
            out.pop("groups", None)
    if u.get("description") is not None:  # null leaves it as it is
        out["description"] = u["description"]
    if "detectors" in u:
        detectors = [dict(d) for d in config["analysis_config"]["detectors"]]
        for d in u["detectors"]:
            index = d["detector_index"]
            if not 0 <= index < len(detectors):
                raise ConfigError(f"Supplied detector_index [{index}] is >= the number of detectors "
                                  f"[{len(detectors)}]" if index >= 0 else f"Supplied detector_index [{index}] is < 0",
                                  type=STATUS)
            if "description" in d:
                detectors[index]["detector_description"] = d["description"]
        out["analysis_config"] = {**config["analysis_config"], "detectors": detectors}
    if "analysis_limits" in u:
        limits = dict(config["analysis_limits"])
        if (mml := u["analysis_limits"].get("model_memory_limit")) is not None:
            limits["model_memory_limit"] = f"{mml}mb"
        if (cel := u["analysis_limits"].get("categorization_examples_limit")) is not None:
            limits["categorization_examples_limit"] = cel
        out["analysis_limits"] = limits
    # The checks creation makes, as Elasticsearch rebuilds the merged job.
    if (window := u.get("model_prune_window")) is not None:
        check_prune_window(window, _time_value(config["analysis_config"]["bucket_span"], "bucket_span"))
        out["analysis_config"] = {**out["analysis_config"], "model_prune_window": window.string_rep()}
    if (interval := u.get("background_persist_interval")) is not None:
        check_persist_interval(interval)
        out["background_persist_interval"] = interval.string_rep()
    for key in ("model_plot_config", "renormalization_window_days", "results_retention_days",
                "model_snapshot_retention_days", "daily_model_snapshot_retention_after_days", "custom_settings",
                "allow_lazy_open"):
        if key in u:
            out[key] = u[key]
    for key in ("renormalization_window_days", "results_retention_days"):
        _not_less(out.get(key), 0, key)
    check_snapshot_retention(out.get("model_snapshot_retention_days", 10), out.get("daily_model_snapshot_retention_after_days"))
    return out
