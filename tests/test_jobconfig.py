"""Tests for anomalyd.jobconfig: PUT job validation and defaults, with Elasticsearch's messages."""
from __future__ import annotations

import copy

import pytest

from anomalyd.jobconfig import (ConfigError, analysis_fields, build_job_config,
                                parse_time_value, validate_job_id)

NOW = 1_700_000_000_000
from conftest import POST_DATA_JOB

VERSION = "8.19.0"
ID_RULE = "can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with " \
          "alphanumeric"

SMALLEST = {"analysis_config": {"detectors": [{"function": "count"}]}, "data_description": {}}


def fake_time_format(fmt: str) -> None:
    """Stands in for the Rust core's validator: accepts a few java.time patterns."""
    if fmt not in ("epoch", "epoch_ms", "yyyy-MM-dd HH:mm:ssX", "yyyy-MM-dd'T'HH:mm:ssX"):
        raise ValueError(f"Invalid Time format string '{fmt}'")


def build(body: dict, job_id: str = "test-job") -> dict:
    return build_job_config(job_id, copy.deepcopy(body), now_ms=NOW, job_version=VERSION,
                            check_time_format=fake_time_format)


def job(*detectors: dict, **analysis: object) -> dict:
    """A body with the given detectors and analysis_config settings."""
    return {"analysis_config": {"detectors": list(detectors), **analysis}, "data_description": {}}


def error(body: object, job_id: str = "test-job") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(body, job_id)  # type: ignore[arg-type]
    assert info.value.status == 400
    return info.value


def chain(err: ConfigError) -> list[tuple[str, str]]:
    """(type, reason) from the outermost error to the innermost cause."""
    out = []
    while err is not None:
        out.append((err.type, err.reason))
        err = err.caused_by
    return out


def detector_error(err: ConfigError) -> tuple[str, str]:
    """Asserts the wrapping of a detector-level failure and returns the innermost (type, reason)."""
    links = chain(err)
    assert links[:2] == [("x_content_parse_exception", "[job_details] failed to parse field [analysis_config]"),
                         ("x_content_parse_exception", "[analysis_config] failed to parse field [detectors]")]
    return links[-1]


def analysis_error(err: ConfigError) -> tuple[str, str]:
    """Asserts an AnalysisConfig.build() failure and returns the innermost (type, reason)."""
    links = chain(err)
    assert len(links) == 2
    assert links[0] == ("x_content_parse_exception", "[job_details] failed to parse field [analysis_config]")
    return links[1]


# ----------------------------------------------------------------------------------- successful builds
def test_post_data_job_builds_with_elasticsearch_defaults():
    config = build(POST_DATA_JOB, "post-data-job")
    assert config == {
        "job_id": "post-data-job",
        "job_type": "anomaly_detector",
        "job_version": VERSION,
        "create_time": NOW,
        "description": "Analysis of response time by airline",
        "analysis_config": {
            "bucket_span": "1h",
            "detectors": [{"detector_description": "metric(responsetime) by airline", "function": "metric",
                           "field_name": "responsetime", "by_field_name": "airline", "detector_index": 0}],
            "influencers": [],
            "model_prune_window": "30d",
        },
        "analysis_limits": {"model_memory_limit": "1024mb", "categorization_examples_limit": 4},
        "data_description": {"time_field": "time", "time_format": "epoch"},
        "model_snapshot_retention_days": 10,
        "daily_model_snapshot_retention_after_days": 1,
        "results_index_name": "shared",
        "allow_lazy_open": False,
    }
    assert list(config) == ["job_id", "job_type", "job_version", "create_time", "description", "analysis_config",
                            "analysis_limits", "data_description", "model_snapshot_retention_days",
                            "daily_model_snapshot_retention_after_days", "results_index_name", "allow_lazy_open"]
    assert list(config["analysis_config"]["detectors"][0]) == [
        "detector_description", "function", "field_name", "by_field_name", "detector_index"]


def test_smallest_body_gets_default_bucket_span_time_field_and_format():
    config = build(SMALLEST)
    assert config["analysis_config"] == {
        "bucket_span": "5m", "detectors": [{"detector_description": "count", "function": "count",
                                            "detector_index": 0}],
        "influencers": [], "model_prune_window": "30d"}
    assert config["data_description"] == {"time_field": "time", "time_format": "epoch_ms"}
    assert "description" not in config and "groups" not in config


def test_jobs_crud_body_with_a_java_time_pattern():
    body = copy.deepcopy(POST_DATA_JOB)
    del body["job_id"]
    body["data_description"] = {"time_field": "time", "time_format": "yyyy-MM-dd HH:mm:ssX"}
    config = build(body, "job-crud-test-apis")
    assert config["job_id"] == "job-crud-test-apis"
    assert config["analysis_limits"] == {"model_memory_limit": "1024mb", "categorization_examples_limit": 4}
    assert config["data_description"]["time_format"] == "yyyy-MM-dd HH:mm:ssX"


def test_optional_settings_are_echoed_in_elasticsearch_order():
    body = job({"function": "mean", "field_name": "rt"}, influencers=["host"], latency="30s",
               summary_count_field_name="doc_count")
    body.update(groups=["web", "prod"], description="d", custom_settings={"b": 1, "a": 2},
                model_plot_config={"enabled": True, "terms": "x"}, renormalization_window_days=7,
                background_persist_interval="2h", results_retention_days=30, model_snapshot_retention_days=5,
                results_index_name="mine", allow_lazy_open=True)
    config = build(body)
    assert list(config) == ["job_id", "job_type", "job_version", "create_time", "custom_settings", "groups",
                            "description", "analysis_config", "analysis_limits", "data_description",
                            "model_plot_config", "renormalization_window_days", "background_persist_interval",
                            "model_snapshot_retention_days", "daily_model_snapshot_retention_after_days",
                            "results_retention_days", "results_index_name", "allow_lazy_open"]
    assert list(config["analysis_config"]) == ["bucket_span", "latency", "summary_count_field_name", "detectors",
                                               "influencers", "model_prune_window"]
    assert config["analysis_config"]["latency"] == "30s"
    assert config["model_plot_config"] == {"enabled": True, "terms": "x", "annotations_enabled": True}
    assert config["custom_settings"] == {"b": 1, "a": 2} and list(config["custom_settings"]) == ["b", "a"]
    assert config["results_index_name"] == "custom-mine"
    assert config["allow_lazy_open"] is True and config["daily_model_snapshot_retention_after_days"] == 1


def test_bucket_span_keeps_the_unit_it_was_given():
    for given, echoed in [("3600s", "3600s"), ("3600000ms", "3600000ms"), ("1H", "1h"), (" 15m", "15m"),
                          ("1d", "1d")]:
        assert build(job({"function": "count"}, bucket_span=given))["analysis_config"]["bucket_span"] == echoed


# ------------------------------------------------------------------------------------------------ job id
def test_invalid_job_id():
    for bad in ("Uppercase", "_leading", "trailing-", "has space", "a*b"):
        with pytest.raises(ConfigError) as info:
            validate_job_id(bad)
        assert (info.value.type, info.value.reason) == ("illegal_argument_exception",
                                                        f"Invalid job_id; '{bad}' {ID_RULE}")
    assert chain(error(SMALLEST, "Bad_Id")) == [("illegal_argument_exception", f"Invalid job_id; 'Bad_Id' {ID_RULE}")]


def test_valid_job_ids_include_the_undocumented_dot():
    for good in ("a", "0", "job-1", "job_1", "a.b", "x" * 64):
        validate_job_id(good)


def test_job_id_longer_than_64_characters():
    with pytest.raises(ConfigError) as info:
        validate_job_id("a" * 65)
    assert info.value.reason == "The job id cannot contain more than 64 characters."


def test_body_job_id_must_match_the_url():
    body = dict(POST_DATA_JOB, job_id="a_different_id")
    assert chain(error(body, "an_id")) == [(
        "illegal_argument_exception",
        "Inconsistent job_id; 'a_different_id' specified in the body differs from 'an_id' specified as a URL argument")]


# ----------------------------------------------------------------------------------- required sections
def test_analysis_config_is_required():
    assert chain(error({"data_description": {}})) == [("illegal_argument_exception", "An analysis_config must be set")]


def test_data_description_is_required():
    body = {"analysis_config": {"detectors": [{"function": "count"}]}}
    assert chain(error(body)) == [("illegal_argument_exception", "A data_description must be set")]


def test_detectors_must_not_be_empty():
    assert analysis_error(error(job())) == ("status_exception", "No detectors configured")


def test_detectors_are_required():
    body = {"analysis_config": {"bucket_span": "1h"}, "data_description": {}}
    assert analysis_error(error(body)) == ("illegal_argument_exception", "Required [detectors]")


# ------------------------------------------------------------------------------------------- functions
def test_function_shortcuts_are_expanded():
    config = build(job({"function": "nzc", "by_field_name": "airline"}, {"function": "high_dc", "field_name": "url"},
                       {"function": "avg", "field_name": "rt"}))
    assert [d["function"] for d in config["analysis_config"]["detectors"]] == [
        "non_zero_count", "high_distinct_count", "avg"]
    assert config["analysis_config"]["detectors"][0]["detector_description"] == "non_zero_count by airline"


def test_unknown_function():
    err = error(job({"function": "foo", "field_name": "x"}))
    assert chain(err)[2:] == [("x_content_parse_exception", "[detector] failed to parse field [function]"),
                              ("illegal_argument_exception", "Unknown function 'foo'")]
    assert detector_error(err) == ("illegal_argument_exception", "Unknown function 'foo'")


def test_metric_functions_need_field_name():
    err = error(job({"function": "mean", "by_field_name": "airline"}))
    assert detector_error(err) == ("status_exception", "field_name must be set when the 'mean' function is used")
    assert err.root_cause().reason == "field_name must be set when the 'mean' function is used"


def test_a_detector_needs_some_field_unless_it_counts():
    assert detector_error(error(job({"function": "max"}))) == (
        "status_exception",
        "Unless a count or temporal function is used one of field_name, by_field_name or over_field_name must be set")
    build(job({"function": "time_of_day"}))


def test_count_functions_refuse_field_name():
    err = error(job({"function": "count", "field_name": "bytes"}))
    assert detector_error(err) == ("status_exception", "field_name cannot be used with function 'count'")
    err = error(job({"function": "rare", "field_name": "x", "by_field_name": "y"}))
    assert detector_error(err) == ("status_exception", "field_name cannot be used with function 'rare'")


def test_rare_needs_by_field_name():
    err = error(job({"function": "rare", "over_field_name": "client"}))
    assert detector_error(err) == ("status_exception", "by_field_name must be set when the 'rare' function is used")


def test_freq_rare_needs_over_field_name():
    err = error(job({"function": "freq_rare", "by_field_name": "url"}))
    assert detector_error(err) == ("status_exception",
                                   "over_field_name must be set when the 'freq_rare' function is used")


def test_non_zero_count_and_non_null_sum_refuse_over_field_name():
    err = error(job({"function": "nzc", "over_field_name": "client"}))
    assert detector_error(err) == ("status_exception", "over_field_name cannot be used with function 'non_zero_count'")
    err = error(job({"function": "non_null_sum", "field_name": "b", "over_field_name": "client"}))
    assert detector_error(err) == ("status_exception", "over_field_name cannot be used with function 'non_null_sum'")


def test_function_less_detector_is_built_as_metric():
    err = error(job({"by_field_name": "airline"}))
    assert chain(err)[2:] == [
        ("x_content_parse_exception", "Failed to build [analysis_config] after last required field arrived"),
        ("status_exception", "field_name must be set when the 'metric' function is used")]
    assert detector_error(error(job({"field_name": "x"}))) == (
        "status_exception", "field_name cannot be used with function 'null'")


def test_by_over_and_partition_field_rules():
    cases = [({"function": "count", "by_field_name": "a", "partition_field_name": "a"},
              "partition_field_name and by_field_name cannot be the same: 'a'"),
             ({"function": "count", "by_field_name": "a", "over_field_name": "a"},
              "by_field_name and over_field_name cannot be the same: 'a'"),
             ({"function": "count", "by_field_name": "count"}, "'count' is not a permitted value for by_field_name"),
             ({"function": "count", "over_field_name": "by"}, "'by' is not a permitted value for over_field_name"),
             ({"function": "count", "by_field_name": 'a"b'}, "Invalid field name 'a\"b'. Field names including "
              "over, by and partition fields cannot contain any of these characters: \",\\"),
             ({"function": "count", "partition_field_name": "."}, "Invalid field name '.'. Field names including "
              "over, by and partition fields cannot be '.'")]
    for detector, message in cases:
        assert detector_error(error(job(detector))) == ("status_exception", message)


def test_default_detector_descriptions():
    config = build(job({"function": "mean", "field_name": "value", "partition_field_name": "x"},
                       {"function": "count", "over_field_name": "client.ip", "use_null": True,
                        "exclude_frequent": "ALL"},
                       {"function": "max", "field_name": "b", "detector_description": "mine"}))
    detectors = config["analysis_config"]["detectors"]
    assert [d["detector_description"] for d in detectors] == [
        "mean(value) partitionfield=x", 'count over "client.ip" usenull=true excludefrequent=all', "mine"]
    assert detectors[1]["use_null"] is True and detectors[1]["exclude_frequent"] == "all"
    assert [d["detector_index"] for d in detectors] == [0, 1, 2]


def test_duplicate_detectors():
    for extra in ({}, {"detector_index": 5}):
        body = job({"function": "max", "field_name": "responsetime", **extra},
                   {"function": "max", "field_name": "responsetime"})
        body["data_description"] = {"time_field": "@timestamp"}
        assert chain(error(body)) == [("illegal_argument_exception",
                                       "Duplicate detectors are not allowed: [max(responsetime)]")]


def test_detector_index_is_reassigned_by_position():
    config = build(job({"function": "count", "detector_index": 7}, {"function": "low_count", "detector_index": 0}))
    assert [d["detector_index"] for d in config["analysis_config"]["detectors"]] == [0, 1]


def test_time_field_may_not_be_analysed():
    message = "data_description.time_field may not be used in the analysis_config"
    body = job({"function": "rare", "by_field_name": "@timestamp"})
    body["data_description"] = {"time_field": "@timestamp"}
    assert chain(error(body)) == [("illegal_argument_exception", message)]
    assert chain(error(job({"function": "mean", "field_name": "time"}))) == [("illegal_argument_exception", message)]
    assert chain(error(job({"function": "count"}, influencers=["time"]))) == [("illegal_argument_exception", message)]


def test_summary_count_field_refuses_the_metric_function():
    body = job({"function": "metric", "field_name": "rt"}, summary_count_field_name="doc_count")
    assert analysis_error(error(body)) == (
        "status_exception", "The 'metric' function cannot be used in jobs that will take pre-summarized input")


def test_nested_field_names_may_not_clash():
    body = job({"function": "count", "by_field_name": "host"}, influencers=["host.name"])
    assert analysis_error(error(body)) == (
        "status_exception", "Fields [host] and [host.name] cannot both be used in the same analysis_config")


def test_mlcategory_and_categorization_field_name_need_each_other():
    assert analysis_error(error(job({"function": "count", "by_field_name": "mlcategory"}))) == (
        "status_exception", "categorization_field_name must be set for mlcategory to be available")
    assert analysis_error(error(job({"function": "count"}, categorization_field_name="message"))) == (
        "status_exception",
        "categorization_field_name is set but mlcategory is not used in any detector by/over/partition field")
    config = build(job({"function": "count", "by_field_name": "mlcategory"}, categorization_field_name="message",
                       categorization_filters=["cat1.*"]))
    assert list(config["analysis_config"])[:4] == ["bucket_span", "categorization_field_name",
                                                   "categorization_filters", "per_partition_categorization"]
    assert config["analysis_config"]["per_partition_categorization"] == {"enabled": False}


def test_categorization_filter_rules():
    base = {"categorization_field_name": "message"}
    detector = {"function": "count", "by_field_name": "mlcategory"}
    assert analysis_error(error(job(detector, **base, categorization_filters=["a", "a"]))) == (
        "status_exception", "categorization_filters contain duplicates")
    assert analysis_error(error(job(detector, **base, categorization_filters=["("]))) == (
        "status_exception", "categorization_filters contains invalid regular expression '('")
    assert analysis_error(error(job(detector, **base, categorization_filters=["a"], categorization_analyzer="std"))) \
        == ("status_exception", "categorization_filters cannot be used with categorization_analyzer - instead "
                                "specify them as pattern_replace char_filters in the analyzer")


# ---------------------------------------------------------------------------------------- custom rules
def test_custom_rules_get_defaults():
    rule = {"actions": ["skip_model_update", "skip_result"], "scope": {"country": {"filter_id": "safe_countries"}},
            "conditions": [{"applies_to": "actual", "operator": "lt", "value": 33.3},
                           {"applies_to": "typical", "operator": "lte", "value": 42}]}
    detector = build(job({"function": "count", "by_field_name": "country", "custom_rules": [rule]}))[
        "analysis_config"]["detectors"][0]
    assert detector["custom_rules"] == [{
        "actions": ["skip_result", "skip_model_update"],
        "scope": {"country": {"filter_id": "safe_countries", "filter_type": "include"}},
        "conditions": [{"applies_to": "actual", "operator": "lt", "value": 33.3},
                       {"applies_to": "typical", "operator": "lte", "value": 42.0}]}]
    simple = build(job({"function": "count", "custom_rules": [{"conditions": [
        {"applies_to": "actual", "operator": "gt", "value": 10}]}]}))["analysis_config"]["detectors"][0]
    assert simple["custom_rules"][0]["actions"] == ["skip_result"]


def test_invalid_detector_rules():
    err = error(job({"function": "count", "custom_rules": [{"actions": ["skip_result"]}]}))
    assert chain(err)[2:] == [("x_content_parse_exception", "[detector] failed to parse field [custom_rules]"),
                              ("status_exception", "Invalid detector rule: at least scope or a condition is required")]
    condition = {"applies_to": "actual", "operator": "gt", "value": 1}
    err = error(job({"function": "rare", "by_field_name": "p", "custom_rules": [{"conditions": [condition]}]}))
    assert detector_error(err) == ("status_exception",
                                   "Invalid detector rule: function rare only supports conditions that apply to time")
    err = error(job({"function": "count", "by_field_name": "b", "partition_field_name": "a",
                     "custom_rules": [{"scope": {"z": {"filter_id": "f"}}}]}))
    assert detector_error(err) == ("status_exception",
                                   "Invalid detector rule: scope field 'z' is invalid; select from [a, b]")
    err = error(job({"function": "count", "custom_rules": [{"scope": {"z": {"filter_id": "f"}}}]}))
    assert detector_error(err) == ("status_exception", "Invalid detector rule: scope field 'z' is invalid; detector "
                                                       "has no available fields for scoping")
    err = error(job({"function": "count", "custom_rules": [{"conditions": [dict(condition, operator="eq")]}]}))
    assert detector_error(err) == ("illegal_argument_exception",
                                   "No enum constant org.elasticsearch.xpack.core.ml.job.config.Operator.EQ")


# ---------------------------------------------------------------------------------- time values, spans
def test_parse_time_value_returns_milliseconds():
    assert [parse_time_value(v, "t") for v in ("5m", "1h", "30s", "1d", "100ms", "1500micros", "0", "-1", "2H")] == [
        300_000, 3_600_000, 30_000, 86_400_000, 100, 1, 0, -1, 7_200_000]


def test_time_value_errors():
    cases = [("x", "failed to parse setting [bucket_span] with value [x] as a time value: unit is missing or "
                   "unrecognized"),
             ("60", "failed to parse setting [bucket_span] with value [60] as a time value: unit is missing or "
                    "unrecognized"),
             ("5M", "failed to parse setting [bucket_span] with value [5M] as a time value: unit is missing or "
                    "unrecognized"),
             ("1.5h", "failed to parse [1.5h], fractional time values are not supported"),
             ("-5m", "failed to parse setting [bucket_span] with value [-5m] as a time value: negative durations "
                     "are not supported"),
             ("abch", "failed to parse [abch]")]
    for value, message in cases:
        with pytest.raises(ConfigError) as info:
            parse_time_value(value, "bucket_span")
        assert (info.value.type, info.value.reason) == ("illegal_argument_exception", message)


def test_bad_bucket_span_unit_is_reported_as_elasticsearch_nests_it():
    message = ("illegal_argument_exception", "failed to parse setting [bucket_span] with value [2w] as a time "
                                             "value: unit is missing or unrecognized")
    after = error(job({"function": "count"}, bucket_span="2w"))  # detectors first: parsed at once
    assert chain(after) == [
        ("x_content_parse_exception", "[job_details] failed to parse field [analysis_config]"),
        ("x_content_parse_exception", "[analysis_config] failed to parse field [bucket_span]"), message]
    body = {"analysis_config": {"bucket_span": "2w", "detectors": [{"function": "count"}]}, "data_description": {}}
    before = error(body)  # bucket_span first: queued until the detectors arrive
    assert chain(before)[1:4] == [
        ("x_content_parse_exception", "[analysis_config] failed to parse field [detectors]"),
        ("x_content_parse_exception", "failed to build [analysis_config] after last required field arrived"),
        ("x_content_parse_exception", "[analysis_config] failed to parse field [bucket_span]")]
    assert chain(before)[-1] == message
    assert before.root_cause().reason == "[analysis_config] failed to parse field [bucket_span]"


def test_bucket_span_must_be_positive():
    for span, shown in [("0s", "0s"), ("0", "0s"), ("-1", "-1"), ("-1h", "-1")]:
        assert analysis_error(error(job({"function": "count"}, bucket_span=span))) == (
            "illegal_argument_exception", f"bucket_span cannot be less or equal than 0. Value = {shown}")


def test_bucket_span_must_be_whole_seconds():
    assert analysis_error(error(job({"function": "count"}, bucket_span="1500ms"))) == (
        "illegal_argument_exception", "bucket_span has to be a multiple of 1s; actual was '1.5s'")
    assert analysis_error(error(job({"function": "count"}, bucket_span="100ms"))) == (
        "illegal_argument_exception", "bucket_span has to be a multiple of 1s; actual was '100ms'")


def test_latency_must_be_non_negative_whole_seconds():
    assert analysis_error(error(job({"function": "count"}, latency="-1"))) == (
        "illegal_argument_exception", "latency cannot be less than 0. Value = -1")
    assert analysis_error(error(job({"function": "count"}, latency="2500ms"))) == (
        "illegal_argument_exception", "latency has to be a multiple of 1s; actual was '2.5s'")
    assert build(job({"function": "count"}, latency="0"))["analysis_config"]["latency"] == "0ms"


def test_model_prune_window_must_fit_the_bucket_span():
    assert build(job({"function": "count"}, bucket_span="1h", model_prune_window="2h"))[
        "analysis_config"]["model_prune_window"] == "2h"
    assert analysis_error(error(job({"function": "count"}, bucket_span="1h", model_prune_window="90m"))) == (
        "status_exception", "model_prune_window [1.5h] must be a multiple of bucket_span [1h]")
    assert analysis_error(error(job({"function": "count"}, bucket_span="1h", model_prune_window="1h"))) == (
        "status_exception", "model_prune_window [1h] must be at least 2 times greater than bucket_span [1h]")


def test_background_persist_interval():
    body = dict(SMALLEST, background_persist_interval="10m")
    assert chain(error(body)) == [("illegal_argument_exception",
                                   "background_persist_interval cannot be less than 3,600. Value = 600")]


# ---------------------------------------------------------------------------------- data_description
def test_time_format_is_checked_by_the_callback():
    body = dict(SMALLEST, data_description={"time_format": "yyyy-bogus"})
    assert chain(error(body)) == [
        ("x_content_parse_exception", "[job_details] failed to parse field [data_description]"),
        ("x_content_parse_exception", "[data_description] failed to parse field [time_format]"),
        ("status_exception", "Invalid Time format string 'yyyy-bogus'")]


def test_epoch_formats_do_not_need_the_callback():
    def refuse(fmt: str) -> None:
        raise ValueError(f"Invalid Time format string '{fmt}'")
    for fmt in ("epoch", "epoch_ms"):
        config = build_job_config("j", dict(SMALLEST, data_description={"time_format": fmt}), now_ms=NOW,
                                  job_version=VERSION, check_time_format=refuse)
        assert config["data_description"]["time_format"] == fmt


def test_data_format():
    for fmt in ("xcontent", "XContent", "delimited"):  # 8.x silently treats the retired 'delimited' as xcontent
        config = build(dict(SMALLEST, data_description={"format": fmt, "time_field": "ts"}))
        assert config["data_description"] == {"time_field": "ts", "time_format": "epoch_ms"}
    assert chain(error(dict(SMALLEST, data_description={"format": "csv"})))[1:] == [
        ("x_content_parse_exception", "[data_description] failed to parse field [format]"),
        ("illegal_argument_exception",
         "No enum constant org.elasticsearch.xpack.core.ml.job.config.DataDescription.DataFormat.CSV")]


# ----------------------------------------------------------------------------- unknown fields, types
def test_unknown_top_level_field():
    assert chain(error(dict(SMALLEST, foo=1))) == [("x_content_parse_exception", "[job_details] unknown field [foo]")]
    assert error(dict(SMALLEST, descripton="x")).reason == (
        "[job_details] unknown field [descripton] did you mean any of [description, data_description]?")


def test_unknown_nested_fields():
    err = error(job({"function": "count", "fieldname": "x"}))
    assert detector_error(err) == ("x_content_parse_exception", "[detector] unknown field [fieldname] did you mean "
                                   "any of [field_name, by_field_name, over_field_name]?")
    err = error(job({"function": "count", "use_nul": True}))
    assert detector_error(err) == ("x_content_parse_exception",
                                   "[detector] unknown field [use_nul] did you mean [use_null]?")
    err = error(job({"function": "count"}, bucket_spam="1h"))
    assert chain(err)[1] == ("x_content_parse_exception",
                             "[analysis_config] unknown field [bucket_spam] did you mean [bucket_span]?")
    err = error(dict(SMALLEST, data_description={"timefield": "t"}))
    assert chain(err)[1] == ("x_content_parse_exception",
                             "[data_description] unknown field [timefield] did you mean [time_field]?")


def test_wrong_value_types():
    err = error(job({"function": "count"}, bucket_span=3600))
    assert chain(err)[1] == ("x_content_parse_exception",
                             "[analysis_config] bucket_span doesn't support values of type: VALUE_NUMBER")
    assert detector_error(error(job({"function": "count", "by_field_name": None}))) == (
        "x_content_parse_exception", "[detector] by_field_name doesn't support values of type: VALUE_NULL")
    assert chain(error({"analysis_config": [], "data_description": {}})) == [
        ("x_content_parse_exception", "[job_details] analysis_config doesn't support values of type: START_ARRAY")]
    assert chain(error(dict(SMALLEST, allow_lazy_open="yes")))[1] == (
        "illegal_argument_exception", "Failed to parse value [yes] as only [true] or [false] are allowed.")
    assert chain(error(["not", "an", "object"])) == [
        ("x_content_parse_exception", "Expected START_OBJECT but was: START_ARRAY")]


def test_generated_fields_cannot_be_set_at_creation():
    for field, value in (("model_snapshot_id", "snap"), ("create_time", 1), ("finished_time", "2020-01-01")):
        assert chain(error(dict(SMALLEST, **{field: value}))) == [(
            "illegal_argument_exception",
            f"The job is configured with fields [{field}] that are illegal to set at job creation")]
    body = dict(SMALLEST, model_snapshot_id="s", create_time=1, job_type="anomaly_detector", job_version="1.0.0")
    assert error(body).reason == \
        "The job is configured with fields [model_snapshot_id,create_time] that are illegal to set at job creation"


def test_datafeed_config_is_refused():
    err = error(dict(SMALLEST, datafeed_config={"indices": ["x"]}))
    assert err.type == "illegal_argument_exception" and "datafeeds are not supported by anomalyd" in err.reason


# ------------------------------------------------------------------------------ limits and retention
def test_model_memory_limit_is_normalised_to_mb():
    for given, shown in [(2048, "2048mb"), ("3000g", "3072000mb"), ("8g", "8192mb"), ("10m", "10mb"),
                         ("11MB", "11mb"), ("1.5gb", "1536mb"), ("1048576b", "1mb")]:
        config = build(dict(SMALLEST, analysis_limits={"model_memory_limit": given}))
        assert config["analysis_limits"] == {"model_memory_limit": shown, "categorization_examples_limit": 4}


def test_model_memory_limit_errors():
    err = error(dict(SMALLEST, analysis_limits={"model_memory_limit": "12"}))
    assert chain(err) == [
        ("x_content_parse_exception", "[job_details] failed to parse field [analysis_limits]"),
        ("x_content_parse_exception", "[analysis_limits] failed to parse field [model_memory_limit]"),
        ("parse_exception", "failed to parse setting [model_memory_limit] with value [12] as a size in bytes: "
                            "unit is missing or unrecognized")]
    err = error(dict(SMALLEST, analysis_limits={"model_memory_limit": "100kb"}))
    assert chain(err)[1:] == [
        ("x_content_parse_exception", "Failed to build [analysis_limits] after last required field arrived"),
        ("status_exception", "model_memory_limit must be at least 1 MiB. Value = 0")]
    err = error(dict(SMALLEST, analysis_limits={"categorization_examples_limit": -1}))
    assert chain(err)[-1] == ("status_exception", "categorization_examples_limit cannot be less than 0. Value = -1")


def test_snapshot_retention_settings():
    body = dict(POST_DATA_JOB, model_snapshot_retention_days=3, daily_model_snapshot_retention_after_days=4)
    del body["job_id"]
    assert chain(error(body)) == [(
        "illegal_argument_exception",
        "The value of daily_model_snapshot_retention_after_days [4] cannot be greater than "
        "model_snapshot_retention_days [3]")]
    body["daily_model_snapshot_retention_after_days"] = -1
    assert error(body).reason == "daily_model_snapshot_retention_after_days cannot be less than 0. Value = -1"
    assert error(dict(SMALLEST, results_retention_days=-2)).reason == \
        "results_retention_days cannot be less than 0. Value = -2"
    config = build(dict(SMALLEST, model_snapshot_retention_days=1))
    assert "daily_model_snapshot_retention_after_days" not in config  # the default needs more than 1 day


def test_groups_and_results_index_name():
    assert error(dict(SMALLEST, groups=["Bad"])).reason == (
        "Invalid group id 'Bad'; must be non-empty string and may contain lowercase alphanumeric (a-z and 0-9), "
        "hyphens or underscores; must start and end with alphanumeric")
    err = error(dict(SMALLEST, groups=["test-job"]))
    assert (err.type, err.reason) == ("resource_already_exists_exception", "job and group names must be unique but "
                                      "job [test-job] and group [test-job] have the same name")
    assert error(dict(SMALLEST, results_index_name="A")).reason == f"Invalid results_index_name; 'A' {ID_RULE}"
    assert build(dict(SMALLEST, results_index_name="custom-x"))["results_index_name"] == "custom-x"


def test_model_plot_config_needs_enabled():
    assert chain(error(dict(SMALLEST, model_plot_config={"terms": "a"})))[-1] == (
        "illegal_argument_exception", "Required [enabled]")
    assert build(dict(SMALLEST, model_plot_config={"enabled": False}))["model_plot_config"] == {
        "enabled": False, "annotations_enabled": False}


# --------------------------------------------------------------------------------- helpers and errors
def test_analysis_fields_in_order_of_first_appearance():
    config = build(job({"function": "mean", "field_name": "rt", "by_field_name": "airline"},
                       {"function": "count", "by_field_name": "mlcategory", "partition_field_name": "host"},
                       {"function": "max", "field_name": "rt", "over_field_name": "client"},
                       influencers=["airline", "region"], categorization_field_name="message",
                       summary_count_field_name="doc_count"))
    assert analysis_fields(config) == ["rt", "airline", "mlcategory", "host", "client", "region", "message", "doc_count"]


def test_error_body_matches_elasticsearch_root_cause_rules():
    err = error(job({"function": "mean", "by_field_name": "a"}))
    assert err.body()["error"] == {
        "root_cause": [{"type": "status_exception",
                        "reason": "field_name must be set when the 'mean' function is used"}],
        "type": "x_content_parse_exception", "reason": "[job_details] failed to parse field [analysis_config]",
        "caused_by": {"type": "x_content_parse_exception",
                      "reason": "[analysis_config] failed to parse field [detectors]",
                      "caused_by": {"type": "status_exception",
                                    "reason": "field_name must be set when the 'mean' function is used"}}}
    plain = error(dict(SMALLEST, job_id="other"))
    assert plain.body()["error"] == {"root_cause": [{"type": plain.type, "reason": plain.reason}], "type": plain.type,
                                       "reason": plain.reason}


def test_the_body_is_not_modified():
    body = copy.deepcopy(POST_DATA_JOB)
    build_job_config("post-data-job", body, now_ms=NOW, job_version=VERSION, check_time_format=fake_time_format)
    assert body == POST_DATA_JOB
