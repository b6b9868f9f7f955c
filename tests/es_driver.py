"""The official `elasticsearch` Python client driving a job's whole lifecycle against a server.

Used in-process for the installed 9.x client and as a script (``python es_driver.py URL [gzip]``,
``PYTHONPATH`` pointing at an 8.x install) for the previous major; either way the scenario
returns the same JSON-able report, which the tests assert on. The module imports nothing from
the project, so it runs under any client version.
"""

from __future__ import annotations

import json
import sys
from typing import Any

JOB = "es-client-job"
ANALYSIS = {
    "bucket_span": "1h",
    "detectors": [{"function": "metric", "field_name": "responsetime", "by_field_name": "airline"}],
}
DATA_DESCRIPTION = {"time_field": "time", "time_format": "epoch"}
DOCS = [
    {"airline": "AAL", "responsetime": 132.2046, "sourcetype": "farequote", "time": 1403481600},
    {"airline": "JZA", "responsetime": 990.4628, "sourcetype": "farequote", "time": 1403481700},
]
NDJSON = (
    '{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403485200"}\n'
    '{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403485300"}\n'
    '{"airline":"AAL","responsetime":"120.5","sourcetype":"farequote","time":"1403485400"}\n'
)


def body(resp: Any) -> Any:
    """The response body as plain JSON (8.x and 9.x wrap it in ObjectApiResponse)."""
    return resp.body if hasattr(resp, "body") else resp


def run(url: str, compress: bool = False) -> dict[str, Any]:
    import elasticsearch
    from elasticsearch import Elasticsearch

    out: dict[str, Any] = {"client_version": list(elasticsearch.__versionstr__.split("."))}
    es = Elasticsearch(url, request_timeout=30, http_compress=compress)  # compress: every body gzipped
    try:
        info = body(es.info())
        out["info"] = {"tagline": info["tagline"], "version": info["version"]["number"]}
        out["health"] = body(es.cluster.health(wait_for_status="yellow"))["status"]
        # A client that sniffs for nodes first (GET _nodes/_all/http) finds this one.
        with Elasticsearch(url, request_timeout=30, sniff_on_start=True) as sniffing:
            out["sniffed"] = body(sniffing.info())["tagline"]

        put = body(es.ml.put_job(job_id=JOB, description="client lifecycle", analysis_config=ANALYSIS,
                                 data_description=DATA_DESCRIPTION))
        out["put_job_id"] = put["job_id"]
        jobs = body(es.ml.get_jobs(job_id=JOB))
        out["get_jobs"] = {"count": jobs["count"], "ids": [j["job_id"] for j in jobs["jobs"]]}
        out["open"] = body(es.ml.open_job(job_id=JOB))["opened"]

        # A list body: the client sends one JSON array on the wire.
        out["post_list"] = body(es.ml.post_data(job_id=JOB, data=DOCS))
        # A string body: sent verbatim (NDJSON bytes).
        out["post_ndjson"] = body(es.ml.post_data(job_id=JOB, data=NDJSON))

        out["flush"] = body(es.ml.flush_job(job_id=JOB))
        stats = body(es.ml.get_job_stats(job_id=JOB))
        out["stats_open"] = {"count": stats["count"], "state": stats["jobs"][0]["state"],
                             "data_counts": stats["jobs"][0]["data_counts"]}
        buckets = body(es.ml.get_buckets(job_id=JOB, exclude_interim=True, sort="timestamp", start="1403481600000"))
        out["buckets"] = {"count": buckets["count"],
                          "first": [[b["timestamp"], b["event_count"], b["is_interim"]] for b in buckets["buckets"]]}
        out["records"] = body(es.ml.get_records(job_id=JOB, record_score=0, desc=True, page={"from": 0, "size": 10}))
        out["influencers"] = body(es.ml.get_influencers(job_id=JOB, influencer_score=0))
        try:
            es.ml.get_buckets(job_id=JOB, timestamp="1403481600000", start="1403481600000")
            out["bucket_mixed_error"] = None
        except elasticsearch.ApiError as e:
            out["bucket_mixed_error"] = {"status": e.meta.status, "class": type(e).__name__}
        out["close"] = body(es.ml.close_job(job_id=JOB))
        stats = body(es.ml.get_job_stats(job_id=JOB))
        out["stats_closed"] = {"state": stats["jobs"][0]["state"], "data_counts": stats["jobs"][0]["data_counts"]}

        # Errors come back as the client's ApiError subclasses with Elasticsearch's error type.
        try:
            es.ml.post_data(job_id=JOB, data=DOCS)
            out["post_closed_error"] = None
        except elasticsearch.ApiError as e:
            out["post_closed_error"] = {"status": e.meta.status, "class": type(e).__name__, "type": e.error}

        out["delete"] = body(es.ml.delete_job(job_id=JOB, force=True))
        try:
            es.ml.get_jobs(job_id=JOB)
            out["get_deleted_error"] = None
        except elasticsearch.ApiError as e:
            out["get_deleted_error"] = {"status": e.meta.status, "class": type(e).__name__, "type": e.error}
    finally:
        es.close()
    return out


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], compress=sys.argv[2:] == ["gzip"])))
