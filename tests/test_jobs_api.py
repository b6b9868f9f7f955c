"""The job API over HTTP: put, get, delete, open, close, stats, reset, and the REST-layer rules."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import structlog.testing

from anomalyd.keys import NODE, REGISTRY
from conftest import POST_DATA_JOB

BASE = "/_ml/anomaly_detectors"
MINIMAL = {"analysis_config": {"detectors": [{"function": "count"}]}, "data_description": {}}
NDJSON = {"Content-Type": "application/x-ndjson"}
BODY = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}'
)


def es_error(status: int, type_: str, reason: str) -> dict:
    return {"error": {"root_cause": [{"type": type_, "reason": reason}], "type": type_, "reason": reason}, "status": status}


async def put(client, job_id: str, body: dict | None = None):
    r = await client.put(f"{BASE}/{job_id}", json=MINIMAL if body is None else body)
    assert r.status == 200, await r.text()
    return await r.json()


async def open_job(client, job_id: str):
    r = await client.post(f"{BASE}/{job_id}/_open")
    assert r.status == 200, await r.text()
    return await r.json()


async def stats(client, expr: str | None = None, **query):
    path = f"{BASE}/_stats" if expr is None else f"{BASE}/{expr}/_stats"
    r = await client.get(path, params=query)
    return r.status, await r.json()


# -- PUT ----------------------------------------------------------------------------------------


async def test_put_returns_complete_config(client):
    config = await put(client, "post-data-job", POST_DATA_JOB)
    assert config["job_id"] == "post-data-job"
    assert config["job_type"] == "anomaly_detector"
    assert config["analysis_limits"] == {"model_memory_limit": "1024mb", "categorization_examples_limit": 4}
    assert config["results_index_name"] == "shared"
    assert config["allow_lazy_open"] is False
    assert isinstance(config["create_time"], int)
    assert config["analysis_config"]["detectors"][0]["detector_index"] == 0
    assert "detector_description" in config["analysis_config"]["detectors"][0]


@pytest.mark.parametrize(
    "job_id, body, status, type_, reason",
    [
        ("Bad_Id", MINIMAL, 400, "illegal_argument_exception",
         "Invalid job_id; 'Bad_Id' can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; "
         "must start and end with alphanumeric"),
        ("an_id", {**MINIMAL, "job_id": "a_different_id"}, 400, "illegal_argument_exception",
         "Inconsistent job_id; 'a_different_id' specified in the body differs from 'an_id' specified as a URL argument"),
        ("no-ac", {"data_description": {}}, 400, None, "An analysis_config must be set"),
        ("no-dd", {"analysis_config": {"detectors": [{"function": "count"}]}}, 400, None, "A data_description must be set"),
    ],
)
async def test_put_validation_errors(client, job_id, body, status, type_, reason):
    r = await client.put(f"{BASE}/{job_id}", json=body)
    assert r.status == status
    err = (await r.json())["error"]
    assert err["reason"] == reason
    assert err["root_cause"][0]["reason"] == reason
    if type_:
        assert err["type"] == type_
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"


async def test_put_without_body_is_400(client):
    r = await client.put(f"{BASE}/x")
    assert r.status == 400
    assert (await r.json())["status"] == 400


async def test_put_id_taken(client):
    await put(client, "jobs-crud-id-already-taken")
    r = await client.put(f"{BASE}/jobs-crud-id-already-taken", json=MINIMAL)
    assert r.status == 400
    assert await r.json() == es_error(
        400, "resource_already_exists_exception",
        "The job cannot be created with the Id 'jobs-crud-id-already-taken'. The Id is already used.")


async def test_put_with_vendor_content_types(client):
    for n in (8, 9):
        r = await client.put(f"{BASE}/vendor-{n}", data=b'{"analysis_config":{"detectors":[{"function":"count"}]},"data_description":{}}',
                             headers={"Content-Type": f"application/vnd.elasticsearch+json; compatible-with={n}",
                                      "Accept": f"application/vnd.elasticsearch+json; compatible-with={n}"})
        assert r.status == 200, await r.text()
        assert (await r.json())["job_id"] == f"vendor-{n}"


async def test_put_with_text_plain_is_406(client):
    r = await client.put(f"{BASE}/x", data=b'{}', headers={"Content-Type": "text/plain"})
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}


@pytest.mark.settings(max_content_length=1000)
@pytest.mark.parametrize("method, path", [("PUT", f"{BASE}/big"), ("POST", f"{BASE}/big/_update"),
                                          ("POST", f"{BASE}/big/_close"), ("POST", f"{BASE}/big/results/buckets"),
                                          ("GET", BASE), ("POST", "/no/such/api")])
async def test_every_api_refuses_an_oversized_content_length_at_once(client, method, path):
    """Elasticsearch's HTTP layer refuses a Content-Length over the limit for any API, before
    reading the body: 413 (empty); with `Expect: 100-continue`, 417 instead of `100 Continue`,
    and the connection closes."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 5000\r\n").encode()
    for expect, status in ((b"", 413), (b"Expect: 100-continue\r\n", 417), (b"Expect: 100-Continue\r\n", 417)):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(head + expect + b"\r\n")  # no body: the answer must not wait for it
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer
        assert b"X-Elastic-Product: Elasticsearch" in answer and b"Content-Length: 0" in answer
        if expect:
            assert b"Connection: close" in answer
        writer.close()
    metrics = await (await client.get("/metrics")).text()
    assert 'status="413"} 1.0' in metrics and 'status="417"} 2.0' in metrics


async def test_an_expectation_other_than_100_continue_is_417(client):
    """As Elasticsearch's HTTP layer (Netty) answers an expectation it does not support: 417 at
    once, and the connection closes; counted under the route, a trailing-slash path too."""
    for path in (f"{BASE}/x", f"{BASE}/x/"):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 2\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert answer.startswith(b"HTTP/1.1 417 ") and b"Connection: close" in answer, answer
        writer.close()
    metrics = await (await client.get("/metrics")).text()
    assert 'method="PUT",route="/_ml/anomaly_detectors/{job_id}",status="417"} 2.0' in metrics
    assert (await client.get(f"{BASE}/x")).status == 404  # nothing was created


async def test_a_trailing_slash_reaches_the_same_api(client):
    """Elasticsearch's router ignores a trailing slash: scripts written against it work here."""
    await put(client, "slash")
    r = await client.post(f"{BASE}/slash/_open/")
    assert r.status == 200, await r.text()
    r = await client.post(f"{BASE}/slash/_data/", data=b'{"time":1403481600}', headers={"Content-Type": "application/json"})
    assert r.status == 202 and (await r.json())["processed_record_count"] == 1
    assert (await (await client.get(f"{BASE}/")).json())["count"] == 1
    assert (await client.get(f"{BASE}/slash/_stats/")).status == 200
    r = await client.get(f"{BASE}/slash/_data/")
    assert r.status == 405 and r.headers["Allow"] == "POST"
    metrics = await (await client.get("/metrics")).text()
    assert 'method="POST",route="/_ml/anomaly_detectors/{job_id}/_data",status="202"} 1.0' in metrics


# -- GET jobs -----------------------------------------------------------------------------------


async def test_get_jobs_selection(client):
    r = await client.get(BASE + "/_all")
    assert await r.json() == {"count": 0, "jobs": []}
    for j in ("job-b", "job-a", "other"):
        await put(client, j)
    one = await (await client.get(f"{BASE}/job-a")).json()
    assert one["count"] == 1 and one["jobs"][0]["job_id"] == "job-a"
    for path in (BASE, BASE + "/_all", BASE + "/*"):
        body = await (await client.get(path)).json()
        assert [j["job_id"] for j in body["jobs"]] == ["job-a", "job-b", "other"], path
        assert body["count"] == 3
    body = await (await client.get(BASE + "/job-*")).json()
    assert [j["job_id"] for j in body["jobs"]] == ["job-a", "job-b"]
    body = await (await client.get(BASE + "/other,job-b")).json()
    assert [j["job_id"] for j in body["jobs"]] == ["job-b", "other"]
    body = await (await client.get(BASE + "/missing-*")).json()
    assert body == {"count": 0, "jobs": []}


async def test_get_jobs_for_export_can_be_put_again(client):
    """`exclude_generated=true` leaves out what Elasticsearch sets itself (jobs_get.yml "Test get
    job for export"), so that the configuration can be put again unchanged."""
    await put(client, "exported")
    assert (await client.post(f"{BASE}/exported/_open")).status == 200
    assert (await client.post(f"{BASE}/exported/_close")).status == 200  # now with a finished_time
    full = (await (await client.get(f"{BASE}/exported")).json())["jobs"][0]
    assert {"job_type", "job_version", "create_time", "finished_time"} <= set(full)
    r = await client.get(f"{BASE}/exported", params={"exclude_generated": "true"})
    exported = (await r.json())["jobs"][0]
    assert exported == {k: v for k, v in full.items()
                        if k not in ("job_type", "job_version", "create_time", "finished_time")}
    exported.pop("job_id")
    r = await client.put(f"{BASE}/copy", json=exported)
    assert r.status == 200, await r.text()
    copy = await r.json()
    assert copy["analysis_config"] == full["analysis_config"] and copy["data_description"] == full["data_description"]
    r = await client.get(f"{BASE}/exported", params={"exclude_generated": "false"})
    assert (await r.json())["jobs"][0] == full


async def test_job_expressions_as_elasticsearch_expands_them(client):
    """Empty items are dropped, `_all` is special only alone, `*` is the only wildcard, every
    missing id is named, and `allow_no_match=false` needs `_all` to match something."""
    for path in (BASE + "/_all", BASE, BASE + "/_stats", BASE + "/*/_stats"):
        r = await client.get(path, params={"allow_no_match": "false"})
        assert r.status == 404, path
        assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id '*'")
    r = await client.post(BASE + "/_all/_close", params={"allow_no_match": "false"})
    assert r.status == 404
    for j in ("job-a", "job-b"):
        await put(client, j)
    await put(client, "grouped", MINIMAL | {"groups": ["ones"]})
    body = await (await client.get(BASE + "/ones,")).json()
    assert [j["job_id"] for j in body["jobs"]] == ["grouped"]
    body = await (await client.get(BASE + "/,")).json()
    assert body["count"] == 3
    r = await client.get(BASE + "/_all,ones")
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id '_all'")
    for pattern in ("job-?", "job-[ab]"):
        r = await client.get(f"{BASE}/{pattern}")
        assert r.status == 404, pattern
    body = await (await client.get(BASE + "/j*-*")).json()
    assert [j["job_id"] for j in body["jobs"]] == ["job-a", "job-b"]
    r = await client.get(BASE + "/missing1,job-a,missing2")
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'missing1,missing2'")


async def test_job_fields_keep_elasticsearch_order(client):
    """Fields set after the put (groups and description by an update, finished_time by a close)
    take their places in Elasticsearch's order, and `human` adds the readable times."""
    first = await put(client, "ordered")
    r = await client.post(f"{BASE}/ordered/_update", json={"groups": ["g1"], "description": "d"})
    updated = await r.json()
    assert list(updated)[:6] == ["job_id", "job_type", "job_version", "create_time", "groups", "description"]
    await open_job(client, "ordered")
    assert (await client.post(f"{BASE}/ordered/_close")).status == 200
    job = (await (await client.get(f"{BASE}/ordered")).json())["jobs"][0]
    assert list(job) == ["job_id", "job_type", "job_version", "create_time", "finished_time", "groups", "description",
                         *[k for k in first if k not in ("job_id", "job_type", "job_version", "create_time")]]
    r = await client.get(f"{BASE}/ordered", params={"human": "true"})
    job = (await r.json())["jobs"][0]
    assert list(job)[3:7] == ["create_time_string", "create_time", "finished_time_string", "finished_time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", job["create_time_string"])


async def test_export_leaves_out_what_made_the_job(client):
    await put(client, "module-made", MINIMAL | {"custom_settings": {"created_by": "ml-module-x", "team": "a"}})
    r = await client.get(f"{BASE}/module-made", params={"exclude_generated": "true"})
    assert (await r.json())["jobs"][0]["custom_settings"] == {"team": "a"}
    full = (await (await client.get(f"{BASE}/module-made")).json())["jobs"][0]
    assert full["custom_settings"] == {"created_by": "ml-module-x", "team": "a"}


async def test_get_jobs_not_found(client):
    await put(client, "job-a")
    r = await client.get(f"{BASE}/nope")
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'nope'")
    r = await client.get(f"{BASE}/job-a,nope")
    assert r.status == 404
    assert (await r.json())["error"]["reason"] == "No known job with id 'nope'"
    r = await client.get(f"{BASE}/missing-*", params={"allow_no_match": "false"})
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'missing-*'")
    r = await client.get(f"{BASE}/missing-*", params={"allow_no_match": "true"})
    assert r.status == 200 and (await r.json())["count"] == 0


# -- DELETE -------------------------------------------------------------------------------------


async def test_delete_job(client):
    await put(client, "del")
    with structlog.testing.capture_logs() as logs:
        r = await client.delete(f"{BASE}/del")
    assert r.status == 200 and await r.json() == {"acknowledged": True}
    assert [e["job_id"] for e in logs if e["event"] == "job_deleted"] == ["del"]  # logged however asked
    assert (await client.get(f"{BASE}/del")).status == 404
    r = await client.delete(f"{BASE}/del")
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'del'")


async def test_a_job_being_deleted_says_so(client):
    await put(client, "going")
    job = client.server.app[REGISTRY].jobs["going"]
    job.deleting = True
    assert (await (await client.get(f"{BASE}/going")).json())["jobs"][0]["deleting"] is True
    assert (await stats(client, "going"))[1]["jobs"][0]["deleting"] is True
    job.deleting = False
    assert "deleting" not in (await (await client.get(f"{BASE}/going")).json())["jobs"][0]
    assert "deleting" not in (await stats(client, "going"))[1]["jobs"][0]


async def test_delete_without_waiting_answers_a_task(client):
    """`wait_for_completion=false`: the delete runs as a task and the answer is its id at once,
    as in Elasticsearch; a delete that fails (here: an open job without `force`) is only logged."""
    node = client.server.app[NODE].id
    await put(client, "bg")
    await open_job(client, "bg")
    ids = []
    for params in ({"wait_for_completion": "false"}, {"wait_for_completion": "false", "force": "true"}):
        r = await client.delete(f"{BASE}/bg", params=params)
        assert r.status == 200
        body = await r.json()
        assert list(body) == ["task"] and re.fullmatch(re.escape(node) + r":\d+", body["task"]), body
        ids.append(body["task"])
    assert ids[0] != ids[1]
    for _ in range(200):
        if (await client.get(f"{BASE}/bg")).status == 404:
            break
        await asyncio.sleep(0.02)
    assert (await client.get(f"{BASE}/bg")).status == 404
    r = await client.delete(f"{BASE}/bg", params={"wait_for_completion": "false"})
    assert r.status == 200 and "task" in await r.json()


async def test_delete_open_job_needs_force(client):
    await put(client, "delete-opened-job")
    await open_job(client, "delete-opened-job")
    r = await client.delete(f"{BASE}/delete-opened-job")
    assert r.status == 409
    assert await r.json() == es_error(409, "status_exception", "Cannot delete job [delete-opened-job] because the job is opened")
    r = await client.delete(f"{BASE}/delete-opened-job", params={"force": "true"})
    assert r.status == 200 and await r.json() == {"acknowledged": True}
    assert (await client.get(f"{BASE}/delete-opened-job")).status == 404
    # the id can be used again
    await put(client, "delete-opened-job")


# -- open / close -------------------------------------------------------------------------------


async def test_open(client):
    await put(client, "j")
    body = await open_job(client, "j")
    assert body["opened"] is True
    assert isinstance(body["node"], str) and re.fullmatch(r"\S+", body["node"])
    assert list(body) == ["opened", "node"]
    r = await client.post(f"{BASE}/j/_open")
    assert r.status == 409
    # the persistent-task service's refusal is the cause, as in Elasticsearch
    cause = {"type": "resource_already_exists_exception", "reason": "task with id {job-j} already exist"}
    assert await r.json() == {"error": {"root_cause": [cause], "type": "status_exception",
                                        "reason": "Cannot open job [j] because it has already been opened",
                                        "caused_by": cause}, "status": 409}
    r = await client.post(f"{BASE}/not_a_job/_open")
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'not_a_job'")


async def test_open_params_in_query_or_body(client):
    await put(client, "a")
    await put(client, "b")
    assert (await client.post(f"{BASE}/a/_open", params={"timeout": "30s"})).status == 200
    r = await client.post(f"{BASE}/b/_open", json={"timeout": "30s"})
    assert r.status == 200, await r.text()
    r = await client.post(f"{BASE}/b/_open", json={"bogus": 1})
    assert r.status == 400


async def test_close(client):
    await put(client, "j")
    await open_job(client, "j")
    r = await client.post(f"{BASE}/j/_close")
    assert r.status == 200 and await r.json() == {"closed": True}
    # idempotent
    r = await client.post(f"{BASE}/j/_close")
    assert r.status == 200 and await r.json() == {"closed": True}
    r = await client.post(f"{BASE}/not_a_job/_close")
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'not_a_job'")
    # reopen works after close
    await open_job(client, "j")
    _, s = await stats(client, "j")
    assert s["jobs"][0]["state"] == "opened"


async def test_close_force_and_params_in_body(client):
    await put(client, "j")
    await open_job(client, "j")
    r = await client.post(f"{BASE}/j/_close", json={"force": True, "timeout": "30s", "allow_no_match": True})
    assert r.status == 200 and await r.json() == {"closed": True}
    await open_job(client, "j")
    r = await client.post(f"{BASE}/j/_close", params={"force": "true"})
    assert r.status == 200 and await r.json() == {"closed": True}
    _, s = await stats(client, "j")
    assert s["jobs"][0]["state"] == "closed"


async def test_close_all_and_wildcards(client):
    for j in ("close-a", "close-b", "keep"):
        await put(client, j)
        await open_job(client, j)
    r = await client.post(f"{BASE}/close-*/_close")
    assert r.status == 200 and await r.json() == {"closed": True}
    _, s = await stats(client, "_all")
    assert {j["job_id"]: j["state"] for j in s["jobs"]} == {"close-a": "closed", "close-b": "closed", "keep": "opened"}
    await open_job(client, "close-a")
    r = await client.post(f"{BASE}/_all/_close")
    assert r.status == 200 and await r.json() == {"closed": True}
    _, s = await stats(client)
    assert {j["state"] for j in s["jobs"]} == {"closed"}


async def test_close_allow_no_match(client):
    r = await client.post(f"{BASE}/missing-*/_close")
    assert r.status == 200 and await r.json() == {"closed": True}
    r = await client.post(f"{BASE}/missing-*/_close", params={"allow_no_match": "false"})
    assert r.status == 404
    assert await r.json() == es_error(404, "resource_not_found_exception", "No known job with id 'missing-*'")
    r = await client.post(f"{BASE}/missing-*/_close", json={"allow_no_match": False})
    assert r.status == 404


async def test_allow_no_jobs_still_works_with_elasticsearch_warning(client):
    """The deprecated `allow_no_jobs` of GET, `_stats` and `_close` (query or body) acts as
    `allow_no_match` and gets Elasticsearch's warning, on a success and on an error alike."""
    warning = ('299 Elasticsearch-8.19.3-unknown "Deprecated field [allow_no_jobs] used, '
               'expected [allow_no_match] instead"')
    for method, path in (("GET", "missing-*"), ("GET", "missing-*/_stats"), ("POST", "missing-*/_close")):
        for value, status in (("true", 200), ("false", 404)):
            r = await client.request(method, f"{BASE}/{path}", params={"allow_no_jobs": value})
            assert (r.status, r.headers.getall("Warning", [])) == (status, [warning]), (path, value)
        r = await client.request(method, f"{BASE}/{path}", params={"allow_no_match": "true"})
        assert r.status == 200 and "Warning" not in r.headers
    r = await client.post(f"{BASE}/missing-*/_close", json={"allow_no_jobs": False})
    assert (r.status, r.headers.getall("Warning", [])) == (404, [warning])


# -- _stats -------------------------------------------------------------------------------------

ZERO_COUNTS = {
    "processed_record_count": 0, "processed_field_count": 0, "input_bytes": 0, "input_field_count": 0,
    "invalid_date_count": 0, "missing_field_count": 0, "out_of_order_timestamp_count": 0,
    "empty_bucket_count": 0, "sparse_bucket_count": 0, "bucket_count": 0, "input_record_count": 0,
}


async def test_stats_never_fed_closed_job(client):
    await put(client, "fresh")
    status, body = await stats(client, "fresh")
    assert status == 200 and body["count"] == 1
    job = body["jobs"][0]
    assert list(job) == ["job_id", "data_counts", "model_size_stats", "forecasts_stats", "state", "timing_stats"]
    assert job["state"] == "closed"
    assert job["data_counts"] == {"job_id": "fresh", **ZERO_COUNTS}
    assert list(job["data_counts"])[:2] == ["job_id", "processed_record_count"]
    assert list(job["data_counts"])[-1] == "input_record_count"
    assert job["forecasts_stats"] == {"total": 0, "forecasted_jobs": 0}
    assert job["timing_stats"] == {"job_id": "fresh", "bucket_count": 0, "total_bucket_processing_time_ms": 0.0}
    assert_default_model_size_stats(job["model_size_stats"], "fresh")
    for absent in ("node", "open_time", "assignment_explanation", "deleting"):
        assert absent not in job


def assert_default_model_size_stats(msz: dict, job_id: str) -> None:
    """A job that has had no data: Elasticsearch's default document (`post-data.md` §10), its
    optional figures absent."""
    log_time = msz.pop("log_time")
    assert isinstance(log_time, int)
    assert msz == {"job_id": job_id, "result_type": "model_size_stats", "model_bytes": 0, "total_by_field_count": 0,
                   "total_over_field_count": 0, "total_partition_field_count": 0, "bucket_allocation_failures_count": 0,
                   "memory_status": "ok", "categorized_doc_count": 0, "total_category_count": 0,
                   "frequent_category_count": 0, "rare_category_count": 0, "dead_category_count": 0,
                   "failed_category_count": 0, "categorization_status": "ok"}


async def test_stats_open_job_has_node_and_open_time(client):
    await put(client, "j")
    await open_job(client, "j")
    _, body = await stats(client, "j")
    job = body["jobs"][0]
    assert job["state"] == "opened"
    assert list(job) == ["job_id", "data_counts", "model_size_stats", "forecasts_stats", "state", "node",
                         "assignment_explanation", "open_time", "timing_stats"]
    assert re.fullmatch(r"\d+s", job["open_time"])
    assert job["assignment_explanation"] == ""
    node = job["node"]
    assert set(node) >= {"id", "name", "ephemeral_id", "transport_address", "attributes"}
    assert "ml.machine_memory" in node["attributes"]
    assert job["data_counts"] == {"job_id": "j", **ZERO_COUNTS}
    assert job["timing_stats"] == {"job_id": "j", "bucket_count": 0, "total_bucket_processing_time_ms": 0.0}
    assert_default_model_size_stats(job["model_size_stats"], "j")  # open, but no data yet
    # node identity matches the _open answer's node
    await put(client, "k")
    opened = await open_job(client, "k")
    assert opened["node"] == node["id"]


async def test_stats_selection_and_sorting(client):
    for j in ("zeta", "alpha", "mid"):
        await put(client, j)
    for expr in (None, "_all", "*"):
        status, body = await stats(client, expr)
        assert status == 200 and body["count"] == 3
        assert [j["job_id"] for j in body["jobs"]] == ["alpha", "mid", "zeta"]
    _, body = await stats(client, "zeta,alpha")
    assert [j["job_id"] for j in body["jobs"]] == ["alpha", "zeta"]
    status, body = await stats(client, "nope")
    assert status == 404 and body == es_error(404, "resource_not_found_exception", "No known job with id 'nope'")
    status, body = await stats(client, "missing-*")
    assert status == 200 and body == {"count": 0, "jobs": []}
    status, body = await stats(client, "missing-*", allow_no_match="false")
    assert status == 404 and body["error"]["reason"] == "No known job with id 'missing-*'"


async def test_stats_after_data_open_and_closed(client):
    j = "post-data-job"
    await put(client, j, POST_DATA_JOB)
    await open_job(client, j)
    r = await client.post(f"{BASE}/{j}/_data", data=BODY, headers=NDJSON)
    assert r.status == 202
    _, body = await stats(client, j)
    dc = body["jobs"][0]["data_counts"]
    assert dc["processed_record_count"] == 2 and dc["processed_field_count"] == 4 and dc["input_field_count"] == 6
    assert dc["earliest_record_timestamp"] == 1403481600000 and dc["latest_record_timestamp"] == 1403481700000
    assert (await client.post(f"{BASE}/{j}/_close")).status == 200
    _, body = await stats(client, j)
    job = body["jobs"][0]
    assert job["state"] == "closed" and "node" not in job and "open_time" not in job
    dc = job["data_counts"]
    assert dc["processed_record_count"] == 2 and dc["input_bytes"] == 177
    assert "log_time" in dc and list(dc)[-1] == "log_time"


# -- _features/_reset ---------------------------------------------------------------------------


async def test_features_reset(client):
    await put(client, "a")
    await put(client, "b")
    await open_job(client, "b")
    r = await client.post("/_features/_reset")
    assert r.status == 200
    assert await r.json() == {"features": [{"feature_name": "machine_learning", "status": "SUCCESS"}]}
    assert await (await client.get(BASE)).json() == {"count": 0, "jobs": []}
    await put(client, "b")
    await open_job(client, "b")


# -- GET / and the REST layer -------------------------------------------------------------------


async def test_root_info(client):
    r = await client.get("/")
    assert r.status == 200
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    assert r.content_type == "application/json"
    body = await r.json()
    assert {"name", "cluster_name", "cluster_uuid", "version", "tagline"} <= set(body)
    assert body["tagline"] == "You Know, for Search"
    assert body["version"]["build_flavor"] == "default"
    assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"]["number"])


async def test_product_header_on_every_response(client):
    await put(client, "j")
    responses = [
        await client.get("/"),
        await client.get(BASE),
        await client.get(f"{BASE}/nope"),                       # 404
        await client.post(f"{BASE}/nope/_data", data=b"{}", headers=NDJSON),  # 409
        await client.get(f"{BASE}/j/_data"),                    # 405
        await client.get("/no/such/thing"),                     # 400 unknown url
        await client.post(f"{BASE}/j/_data", data=b"{}", headers={"Content-Type": "text/plain"}),  # 406
        await client.get(f"{BASE}", params={"bogus": "1"}),     # 400 unknown param
    ]
    for r in responses:
        assert r.headers.get("X-Elastic-Product") == "Elasticsearch", (r.status, r.url)
    assert [r.status for r in responses] == [200, 200, 404, 409, 405, 400, 406, 400]


async def test_405_simple_form(client):
    await put(client, "j")
    r = await client.get(f"{BASE}/j/_data")
    assert r.status == 405
    assert await r.json() == {
        "error": f"Incorrect HTTP method for uri [{BASE}/j/_data] and method [GET], allowed: [POST]", "status": 405}
    assert "POST" in r.headers.get("Allow", "")
    r = await client.put(f"{BASE}/j/_open")
    assert r.status == 405
    assert (await r.json())["error"].endswith("and method [PUT], allowed: [POST]")
    # Methods of every route on the path, found by the catch-all after aiohttp's router gave up.
    r = await client.post(f"{BASE}/j?pretty")
    assert r.status == 405
    assert await r.json() == {"error": f"Incorrect HTTP method for uri [{BASE}/j?pretty] and method [POST], "
                                       "allowed: [DELETE, GET, PUT]", "status": 405}
    assert r.headers["Allow"] == "DELETE,GET,PUT"


async def test_unknown_url(client):
    r = await client.get("/_nothing_here")
    assert r.status == 400
    assert await r.json() == {"error": "no handler found for uri [/_nothing_here] and method [GET]", "status": 400}


async def test_unknown_query_parameter(client):
    await put(client, "j")
    for method, path in (("GET", f"{BASE}/j"), ("GET", f"{BASE}/j/_stats"), ("POST", f"{BASE}/j/_open"),
                         ("DELETE", f"{BASE}/j"), ("POST", f"{BASE}/j/_data")):
        r = await client.request(method, path, params={"bogus": "1"}, headers=NDJSON)
        assert r.status == 400, (method, path)
        body = await r.json()
        assert body["error"]["type"] == "illegal_argument_exception"
        assert body["error"]["reason"] == f"request [{path}] contains unrecognized parameter: [bogus]"
    # common parameters are fine
    assert (await client.get(f"{BASE}/j", params={"pretty": "true"})).status == 200


async def test_pretty_lays_out_json_as_elasticsearch_does(client):
    """`?pretty` (as curl users add to every call): Jackson's layout, errors included."""
    await put(client, "j")
    r = await client.get(f"{BASE}/j/_stats", params={"pretty": ""})
    text = await r.text()
    assert r.status == 200 and text.endswith("}\n")
    assert text.startswith('{\n  "count" : 1,\n  "jobs" : [ {\n    "job_id" : "j",\n    "data_counts" : {\n')
    compact = await (await client.get(f"{BASE}/j/_stats")).json()
    assert json.loads(text)["jobs"][0]["data_counts"] == compact["jobs"][0]["data_counts"]
    r = await client.post(f"{BASE}/nope/_data", params={"pretty": "true"}, data=b"{}", headers=NDJSON)
    assert r.status == 409
    assert (await r.text()).startswith('{\n  "error" : {\n    "root_cause" : [ {\n      "type" : "status_exception",')
    from anomalyd.api.pretty import render
    assert render('{"a":[],"b":{},"c":[1,"\u00e9",{"d":null}],"e":1.5}'.encode()) == (
        '{\n  "a" : [ ],\n  "b" : { },\n  "c" : [ 1, "\u00e9", {\n    "d" : null\n  } ],\n  "e" : 1.5\n}\n').encode()
    compact = await (await client.get(f"{BASE}/j", params={"pretty": "false"})).text()
    assert "\n" not in compact


async def test_filter_path(client):
    """`?filter_path`: dotted paths with `*` and `**`, `-` to remove; arrays transparent; errors
    unfiltered; with `pretty` the filtered answer is laid out."""
    await put(client, "j")
    await put(client, "k")
    r = await client.get(f"{BASE}/_stats", params={"filter_path": "count,jobs.job_id,jobs.data_counts.input_bytes"})
    assert await r.json() == {"count": 2, "jobs": [{"job_id": "j", "data_counts": {"input_bytes": 0}},
                                                   {"job_id": "k", "data_counts": {"input_bytes": 0}}]}
    r = await client.get(f"{BASE}/j/_stats", params={"filter_path": "**.processed_*"})
    assert await r.json() == {"jobs": [{"data_counts": {"processed_record_count": 0, "processed_field_count": 0}}]}
    r = await client.get(f"{BASE}/j/_stats", params={"filter_path": "-jobs,-nothing"})
    assert await r.json() == {"count": 1}
    assert await (await client.get(f"{BASE}/j", params={"filter_path": "nothing"})).json() == {}
    r = await client.get(f"{BASE}/nope", params={"filter_path": "count"})
    assert r.status == 404 and (await r.json())["error"]["type"] == "resource_not_found_exception"
    r = await client.get(f"{BASE}/j/_stats", params={"filter_path": "count", "pretty": ""})
    assert await r.text() == '{\n  "count" : 1\n}\n'


async def test_a_route_added_without_the_envelope_stops_start_up(aiohttp_client, settings) -> None:
    # It would answer without authorization, outside the error envelope and uncounted.
    from aiohttp import web

    from anomalyd.app import create_app

    app = create_app(settings)

    async def naked(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_route("GET", "/_naked", naked)
    with pytest.raises(RuntimeError, match="GET /_naked"):
        await aiohttp_client(app)


async def test_a_panic_in_the_core_leaves_in_the_envelope(aiohttp_client, settings) -> None:
    # PyO3 raises a Rust panic as a BaseException; it must still get a 500 in Elasticsearch's form.
    from aiohttp import web

    from anomalyd._native import PanicException
    from anomalyd.api.routes import Routes
    from anomalyd.app import create_app

    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise PanicException("index out of bounds")

    Routes(app).add_route("GET", "/_boom", boom)
    client = await aiohttp_client(app)
    r = await client.get("/_boom")
    assert r.status == 500 and r.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (await r.json())["error"]["type"] == "exception"


async def test_update_job(client):
    """`_update`: merged into the config and returned whole; limits only while closed; strict."""
    await put(client, "u")
    r = await client.post(f"{BASE}/u/_update", json={
        "description": "new", "groups": ["g1"], "analysis_limits": {"model_memory_limit": "20mb"},
        "detectors": [{"detector_index": 0, "description": "renamed"}], "custom_settings": {"a": 1},
        "model_snapshot_retention_days": 5, "allow_lazy_open": True})
    assert r.status == 200, await r.text()
    config = await r.json()
    assert (config["description"], config["groups"], config["analysis_limits"]["model_memory_limit"]) == ("new", ["g1"], "20mb")
    assert config["analysis_config"]["detectors"][0]["detector_description"] == "renamed"
    assert (config["custom_settings"], config["model_snapshot_retention_days"], config["allow_lazy_open"]) == ({"a": 1}, 5, True)
    assert (await (await client.get(f"{BASE}/u")).json())["jobs"][0] == config
    assert (await (await client.get(f"{BASE}/g1")).json())["count"] == 1  # the new group selects it
    await open_job(client, "u")
    r = await client.post(f"{BASE}/u/_update", json={"analysis_limits": {"model_memory_limit": "30mb"}})
    assert (r.status, await r.json()) == (400, es_error(400, "status_exception", "Cannot update analysis_limits while the job is open"))
    r = await client.post(f"{BASE}/u/_update", json={"description": "while open"})
    assert r.status == 200 and (await r.json())["description"] == "while open"
    r = await client.post(f"{BASE}/u/_update", json={"bogus": 1})
    assert r.status == 400 and (await r.json())["error"]["reason"] == "[job_update] unknown field [bogus]"
    r = await client.post(f"{BASE}/u/_update", json={"detectors": [{"detector_index": 3}]})
    assert r.status == 400 and (await r.json())["error"]["reason"] == "Supplied detector_index [3] is >= the number of detectors [1]"
    for bad, reason in (({"background_persist_interval": "1s"}, "background_persist_interval cannot be less than 3,600. Value = 1"),
                        ({"model_prune_window": "1s"}, "model_prune_window [1s] must be a multiple of bucket_span [5m]"),
                        ({"allow_lazy_open": "yes"}, "Failed to parse value [yes] as only [true] or [false] are allowed.")):
        r = await client.post(f"{BASE}/u/_update", json=bad)
        assert r.status == 400 and reason in json.dumps(await r.json()), (bad, await r.text())
    r = await client.post(f"{BASE}/u/_update", json={"groups": ["u"]})
    assert r.status == 400 and (await r.json())["error"]["type"] == "resource_already_exists_exception"
    r = await client.post(f"{BASE}/nope/_update", json={"description": "x"})
    assert r.status == 404 and (await r.json())["error"]["type"] == "resource_not_found_exception"
    for no_op in ({"categorization_filters": []}, {"per_partition_categorization": {"enabled": False}}):
        r = await client.post(f"{BASE}/u/_update", json=no_op)
        assert r.status == 200, (no_op, await r.text())
    for malformed in ({}, {"bogus": 1}, {"enabled": False, "stop_on_warn": True}, {"enabled": 0}):
        r = await client.post(f"{BASE}/u/_update", json={"per_partition_categorization": malformed})
        assert r.status == 400, (malformed, await r.text())
    r = await client.post(f"{BASE}/u/_update", json={"categorization_filters": ["x"]})
    assert r.status == 400 and "categorization is not supported" in await r.text()
    r = await client.post(f"{BASE}/_all/_update", json={"description": "x"})
    assert (r.status, await r.json()) == (400, es_error(400, "status_exception", "Cannot update more than 1 job at a time"))
    # the body is parsed first, as Elasticsearch does: a bad one says so, for `_all` or a missing job
    for target in ("_all", "nope"):
        r = await client.post(f"{BASE}/{target}/_update", json={"bogus": 1})
        assert r.status == 400 and (await r.json())["error"]["reason"] == "[job_update] unknown field [bogus]"
    # a detector update without its index: a parse failure (400), never a 500
    r = await client.post(f"{BASE}/u/_update", json={"detectors": [{"description": "x"}]})
    err = (await r.json())["error"]
    assert r.status == 400 and err["type"] == "x_content_parse_exception", err
    assert err["reason"] == "[job_update] failed to parse field [detectors]"
    assert err["caused_by"]["reason"] == "Failed to build [detector_update] after last required field arrived"


async def test_data_counts_document(client):
    """`GET .ml-anomalies-<job>/_doc/<job>_data_counts`: the persisted counts in `get`'s shape."""
    await put(client, "dc")
    r = await client.get("/.ml-anomalies-dc/_doc/dc_data_counts")
    assert (r.status, await r.json()) == (404, {"_index": ".ml-anomalies-dc", "_id": "dc_data_counts", "found": False})
    await open_job(client, "dc")
    r = await client.post(f"{BASE}/dc/_data", data=b'{"time":1403481600000}', headers=NDJSON)
    assert r.status == 202
    assert (await client.post(f"{BASE}/dc/_close")).status == 200
    doc = await (await client.get("/.ml-anomalies-shared/_doc/dc_data_counts")).json()
    assert (doc["found"], doc["_index"], doc["_source"]["processed_record_count"]) == (True, ".ml-anomalies-shared", 1)
    assert "log_time" in doc["_source"]
    assert (await client.get("/.ml-anomalies-dc/_doc/other_data_counts")).status == 404
    r = await client.get("/.ml-anomalies-nojob/_doc/nojob_data_counts")
    assert r.status == 404 and (await r.json())["error"]["type"] == "index_not_found_exception"


async def test_data_counts_document_source_filtering(client):
    """`_source`, `_source_includes` and `_source_excludes` shape the document as `get` does."""
    await put(client, "sf")
    await open_job(client, "sf")
    assert (await client.post(f"{BASE}/sf/_data", data=b'{"time":1403481600000}', headers=NDJSON)).status == 202
    url = "/.ml-anomalies-sf/_doc/sf_data_counts"

    async def source(**params):
        doc = await (await client.get(url, params=params)).json()
        assert doc["found"]
        return doc.get("_source")

    full = await source()
    assert await source(_source="true") == full
    assert await source(_source="false") is None
    assert await source(_source="job_id,processed_record_count") == {"job_id": "sf", "processed_record_count": 1}
    assert set(await source(_source_includes="*_record_count")) == {"processed_record_count", "input_record_count"}
    assert set(await source(_source_excludes="*_count,*timestamp,log_time")) == \
        {k for k in full if not k.endswith(("_count", "timestamp")) and k != "log_time"}
    assert await source(_source_includes="*record_count", _source_excludes="input*") == {"processed_record_count": 1}
    # Only the exact `false` drops it, only `*` is a wildcard, names are not trimmed, and
    # `_source_includes` (even empty) replaces the `_source` fields.
    assert await source(_source="FALSE") == {}
    assert await source(_source_includes="job_?d") == {}
    assert await source(_source="job_id, processed_record_count") == {"job_id": "sf"}
    assert await source(_source="job_id", _source_includes="") == full


async def test_data_counts_document_head(client):
    """HEAD answers whether the document exists, with no body."""
    await put(client, "dh")
    assert (await client.head("/.ml-anomalies-dh/_doc/dh_data_counts")).status == 404
    await open_job(client, "dh")
    assert (await client.post(f"{BASE}/dh/_data", data=b'{"time":1403481600000}', headers=NDJSON)).status == 202
    r = await client.head("/.ml-anomalies-dh/_doc/dh_data_counts")
    assert (r.status, await r.read(), r.headers["X-Elastic-Product"]) == (200, b"", "Elasticsearch")
    assert (await client.head("/.ml-anomalies-nojob/_doc/nojob_data_counts")).status == 404


def clash(name: str) -> dict:
    return es_error(400, "resource_already_exists_exception",
                    f"job and group names must be unique but job [{name}] and group [{name}] have the same name")


async def test_job_ids_and_groups_share_one_namespace(client):
    """A job may not be named like a group, nor a group like a job, at creation or update (ES's
    put and update checks; ids and groups expand in one namespace)."""
    await put(client, "ns-a", {**MINIMAL, "groups": ["ns-team"]})
    r = await client.put(f"{BASE}/ns-team", json=MINIMAL)
    assert (r.status, await r.json()) == (400, clash("ns-team"))
    r = await client.put(f"{BASE}/ns-b", json={**MINIMAL, "groups": ["ns-other", "ns-a"]})
    assert (r.status, await r.json()) == (400, clash("ns-a"))
    await put(client, "ns-b", {**MINIMAL, "groups": ["ns-team"]})  # sharing a group is fine
    r = await client.post(f"{BASE}/ns-b/_update", json={"groups": ["ns-a"]})
    assert (r.status, await r.json()) == (400, clash("ns-a"))
    assert (await client.post(f"{BASE}/ns-b/_update", json={"groups": ["ns-x"]})).status == 200
    assert [j["job_id"] for j in (await (await client.get(f"{BASE}/ns-team")).json())["jobs"]] == ["ns-a"]


async def test_update_may_not_lower_the_memory_limit_below_the_model(client):
    """`model_memory_limit` below the model's size (whole MB, from its last snapshot) is refused
    with Elasticsearch's message; down to that size it is accepted."""
    await put(client, "mml", {"analysis_config": {"bucket_span": "1h", "detectors": [
        {"function": "mean", "field_name": "v", "by_field_name": "host"}]},
        "data_description": {"time_field": "t", "time_format": "epoch"}})
    await open_job(client, "mml")
    body = "".join(f'{{"t":{1403481600 + h},"v":{h % 7},"host":"h{h}"}}\n' for h in range(800))
    body += '{"t":1403500000,"v":1,"host":"h0"}\n'  # closes the first bucket: every series is modelled
    assert (await client.post(f"{BASE}/mml/_data", data=body.encode(), headers=NDJSON)).status == 202
    assert (await client.post(f"{BASE}/mml/_close")).status == 200
    model_mb = (await stats(client, "mml"))[1]["jobs"][0]["model_size_stats"]["model_bytes"] >> 20
    assert model_mb >= 2
    r = await client.post(f"{BASE}/mml/_update", json={"analysis_limits": {"model_memory_limit": "1mb"}})
    assert (r.status, await r.json()) == (400, es_error(
        400, "status_exception", "Invalid update value for analysis_limits: model_memory_limit cannot be decreased "
        f"below current usage; current usage [{model_mb}mb], update had [1mb]"))
    r = await client.post(f"{BASE}/mml/_update", json={"analysis_limits": {"model_memory_limit": f"{model_mb}mb"}})
    assert r.status == 200 and (await r.json())["analysis_limits"]["model_memory_limit"] == f"{model_mb}mb"


@pytest.mark.parametrize("n, text", [
    (0, "0b"), (1023, "1023b"), (1024, "1kb"), (1536, "1.5kb"), (5 << 20, "5mb"), (1 << 30, "1gb"),
    (1536 << 20, "1.5gb"), (1600 << 20, "1.5gb"), (3000 << 30, "2.9tb"), (2 ** 63 - 1, "8192pb"),
])
def test_byte_size_string_renders_as_elasticsearch(n, text):
    from anomalyd.jobupdate import byte_size_string

    assert byte_size_string(n) == text


async def test_model_memory_limit_refuses_new_series(client):
    """At `model_memory_limit` new series are refused (Elasticsearch's hard limit): their records
    are counted but not modelled, the memory stays within the limit, the status is hard_limit and
    each bucket with a refusal counts once; series made before go on being modelled."""
    await put(client, "mem", {"analysis_config": {"bucket_span": "1h", "detectors": [
        {"function": "mean", "field_name": "v", "by_field_name": "host"}]},
        "analysis_limits": {"model_memory_limit": "1mb"},
        "data_description": {"time_field": "t", "time_format": "epoch"}})
    await open_job(client, "mem")
    hosts = 2000  # about 4 KB each: far more than 1 MB
    body = "".join(f'{{"t":{1403481600 + h},"v":{h % 7},"host":"h{h}"}}\n' for h in range(hosts))
    body += "".join(f'{{"t":{1403485200 + h},"v":1,"host":"n{h}"}}\n' for h in range(10))  # new hosts, next bucket
    r = await client.post(f"{BASE}/mem/_data", data=body.encode(), headers=NDJSON)
    assert r.status == 202 and (await r.json())["processed_record_count"] == hosts + 10
    m = (await stats(client, "mem"))[1]["jobs"][0]["model_size_stats"]
    assert m["memory_status"] == "hard_limit" and m["bucket_allocation_failures_count"] == 2
    assert m["model_bytes_memory_limit"] == 1 << 20 and 0 < m["model_bytes_exceeded"] < 8192
    assert m["model_bytes"] <= (1 << 20) + 65536  # the series, plus open buckets and normalisers
    assert 100 < m["total_by_field_count"] < hosts
    assert (await client.post(f"{BASE}/mem/_close")).status == 200
    closed = (await stats(client, "mem"))[1]["jobs"][0]["model_size_stats"]
    assert (closed["memory_status"], closed["bucket_allocation_failures_count"]) == ("hard_limit", 2)
    await open_job(client, "mem")  # the refusals are kept with the model, not reset by a reopen
    reopened = (await stats(client, "mem"))[1]["jobs"][0]["model_size_stats"]
    assert {k: reopened[k] for k in closed if k.startswith(("memory", "bucket_alloc", "model_bytes"))} == \
        {k: closed[k] for k in closed if k.startswith(("memory", "bucket_alloc", "model_bytes"))}


async def test_apis_without_a_body_refuse_one(client):
    """As Elasticsearch's BaseRestHandler: a body sent to an API that takes none is a 400 before
    anything is done (the job is not deleted); an empty chunked body is no body; APIs whose body
    is optional (`_open`, `_close`, `_flush`) take one."""
    r = await client.put(f"{BASE}/nb", json={**POST_DATA_JOB, "job_id": "nb"})
    assert r.status == 200
    for method, path in (("GET", f"{BASE}/nb"), ("GET", f"{BASE}/nb/_stats"), ("GET", f"{BASE}/_stats"), ("GET", BASE),
                         ("DELETE", f"{BASE}/nb"), ("GET", "/"), ("GET", "/_cluster/health"), ("POST", "/_features/_reset")):
        r = await client.request(method, path + "?pretty", data=b'{"x":1}', headers={"Content-Type": "application/json"})
        reason = f"request [{method} {path}] does not support having a body"
        assert (r.status, await r.json()) == (400, es_error(400, "illegal_argument_exception", reason)), (method, path)
    assert (await client.get(f"{BASE}/nb")).status == 200  # still there

    async def chunked(*pieces: bytes):
        for piece in pieces:
            yield piece
    r = await client.get(f"{BASE}/nb", data=chunked(b""), headers={"Content-Type": "application/json"})
    assert r.status == 200
    # A chunked body is refused on its first piece, however long the rest (never read).
    r = await client.get(f"{BASE}/nb", data=chunked(b'{"x":1}', b" " * (1 << 20)), headers={"Content-Type": "application/json"})
    assert r.status == 400
    r = await client.post(f"{BASE}/nb/_open", json={"timeout": "10s"})
    assert r.status == 200
    r = await client.post(f"{BASE}/nb/_close", json={"force": True})
    assert r.status == 200


async def test_nodes_http_publishes_the_address_asked(client):
    """A sniffing client (`GET _nodes/_all/http`) learns this node's address: the one it reached."""
    for path in ("/_nodes/http", "/_nodes/_all/http", "/_nodes/_local/http"):
        body = await (await client.get(path)).json()
        assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}, path
        (node,) = body["nodes"].values()
        assert node["http"]["publish_address"] == f"127.0.0.1:{client.server.port}"
        assert "master" in node["roles"] and node["roles"] != ["master"]  # clients skip master-only nodes
    body = await (await client.get("/_nodes/someone-else/http")).json()
    assert body["nodes"] == {} and body["_nodes"]["total"] == 0


async def test_opaque_id_comes_back(client):
    r = await client.get("/", headers={"X-Opaque-Id": "trace-42"})
    assert r.headers["X-Opaque-Id"] == "trace-42"
    r = await client.get(f"{BASE}/nope", headers={"X-Opaque-Id": "trace-43"})
    assert r.status == 404 and r.headers["X-Opaque-Id"] == "trace-43"
    assert "X-Opaque-Id" not in (await client.get("/")).headers


async def test_a_stored_job_this_build_cannot_run_stays_closed(aiohttp_client, settings):
    """A job an older build accepted, with a time format this one refuses (a fraction followed
    by another number), does not keep the server from starting: it stays closed, the others
    open again, and opening it says why."""
    from anomalyd.app import create_app
    from anomalyd.store import Store

    first = await aiohttp_client(create_app(settings))
    await put(first, "good")
    await open_job(first, "good")
    config = await put(first, "old", {**MINIMAL, "data_description": {"time_format": "yyyy-MM-dd HH:mm:ss"}})
    await first.close()
    store = Store(settings.data_dir)
    config["data_description"]["time_format"] = "yyyy-MM-dd mm:ss.SSSHH"
    await store.update_job("old", state="opened", config=config)
    await store.close()
    again = await aiohttp_client(create_app(settings))
    states = {j["job_id"]: j["state"] for j in (await stats(again))[1]["jobs"]}
    assert states == {"good": "opened", "old": "closed"}
    r = await again.post(f"{BASE}/old/_open")
    assert r.status == 400
    assert (await r.json())["error"]["reason"] == (
        "Cannot open job [old]: Invalid Time format string 'yyyy-MM-dd mm:ss.SSSHH'")


@pytest.mark.parametrize("raw, reason", [
    (b'{x', "[1:2] Failed to parse request body: Expecting property name enclosed in double quotes"),
    (b'{"a":1}\n x', "[2:2] Failed to parse request body: Extra data"),
    (b'{"a":"x\ty"}', "Failed to parse request body: a control character in a string"),
    (b'{"a":"xy', "Failed to parse request body: an unterminated string"),
    (b'[' * 5000 + b']' * 5000, "Failed to parse request body: nested too deep"),
    ('{"a":1}'.encode("utf-16"), "Failed to parse request body: not UTF-8 (UTF-16 and UTF-32 bodies are read only by the _data API)"),
])
async def test_a_body_that_does_not_parse_says_what_and_where(client, raw, reason):
    r = await client.put(f"{BASE}/bad", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert await r.json() == es_error(400, "x_content_parse_exception", reason)
