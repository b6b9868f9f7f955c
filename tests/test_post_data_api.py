"""`POST _data` and `POST _flush` over HTTP: counts, content types, limits, errors, queueing,
metrics and persistence across restarts."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import re
import sqlite3
import threading
import time

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage
import structlog.testing

from anomalyd.app import create_app
from anomalyd.keys import REGISTRY, REQUEST_STATS, SETTINGS
from anomalyd.settings import Settings
from conftest import POST_DATA_JOB

BASE = "/_ml/anomaly_detectors"
J = "post-data-job"
DATA = f"{BASE}/{J}/_data"
FLUSH = f"{BASE}/{J}/_flush"
NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}
BODY = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}'
)
ORDER = ["job_id", "processed_record_count", "processed_field_count", "input_bytes", "input_field_count",
         "invalid_date_count", "missing_field_count", "out_of_order_timestamp_count", "empty_bucket_count",
         "sparse_bucket_count", "bucket_count", "earliest_record_timestamp", "latest_record_timestamp",
         "last_data_time", "latest_empty_bucket_timestamp", "latest_sparse_bucket_timestamp", "input_record_count"]


#: Tiny body and document limits for the tests that need them.
SMALL_LIMITS = pytest.mark.settings(max_content_length=1000, max_document_bytes=500)


def es_error(status: int, type_: str, reason: str) -> dict:
    return {"error": {"root_cause": [{"type": type_, "reason": reason}], "type": type_, "reason": reason}, "status": status}


def wrapped(status: int, cause: str, reason: str) -> dict:
    """8.x: a status_exception wrapping the original exception."""
    return {"error": {"root_cause": [{"type": cause, "reason": reason}], "type": "status_exception", "reason": reason,
                      "caused_by": {"type": cause, "reason": reason}}, "status": status}


def rec(t: int, airline: str = "AAL", rt: float = 100.0) -> bytes:
    return json.dumps({"airline": airline, "responsetime": rt, "time": t}).encode()


def assert_order(counts: dict) -> None:
    keys = list(counts)
    assert keys == [k for k in ORDER if k in keys], keys
    for required in ("job_id", "processed_record_count", "input_bytes", "bucket_count", "input_record_count"):
        assert required in counts
    assert "log_time" not in counts
    assert None not in counts.values()


async def setup_job(client, job: dict = POST_DATA_JOB, open_: bool = True) -> None:
    r = await client.put(f"{BASE}/{job['job_id']}", json=job)
    assert r.status == 200, await r.text()
    if open_:
        r = await client.post(f"{BASE}/{job['job_id']}/_open")
        assert r.status == 200, await r.text()


async def post(client, body: bytes, headers=NDJSON, path: str = DATA, **params):
    r = await client.post(path, data=body, headers=headers, params=params)
    return r.status, await r.json() if r.content_length != 0 else None


async def job_stats(client, job_id: str = J) -> dict:
    r = await client.get(f"{BASE}/{job_id}/_stats")
    assert r.status == 200
    return (await r.json())["jobs"][0]


# -- success ------------------------------------------------------------------------------------


async def test_post_data_202_counts_and_order(client):
    await setup_job(client)
    before = int(time.time() * 1000)
    status, counts = await post(client, BODY)
    assert status == 202
    assert_order(counts)
    assert list(counts) == ["job_id", "processed_record_count", "processed_field_count", "input_bytes", "input_field_count",
                            "invalid_date_count", "missing_field_count", "out_of_order_timestamp_count",
                            "empty_bucket_count", "sparse_bucket_count", "bucket_count", "earliest_record_timestamp",
                            "latest_record_timestamp", "last_data_time", "input_record_count"]
    assert counts["job_id"] == J
    assert counts["processed_record_count"] == 2 and counts["processed_field_count"] == 4
    assert counts["input_bytes"] == 177 and counts["input_field_count"] == 6
    assert counts["invalid_date_count"] == counts["missing_field_count"] == counts["out_of_order_timestamp_count"] == 0
    assert counts["earliest_record_timestamp"] == 1403481600000
    assert counts["latest_record_timestamp"] == 1403481700000
    assert before <= counts["last_data_time"] <= int(time.time() * 1000) + 1
    assert counts["input_record_count"] == 2

    # earliest_record_timestamp only in the response that processed the first record ever
    status, counts = await post(client, rec(1403481800))
    assert status == 202
    assert "earliest_record_timestamp" not in counts
    assert counts["latest_record_timestamp"] == 1403481800000
    assert counts["processed_record_count"] == 1

    # nothing processed, nothing out of order: no latest_record_timestamp either
    status, counts = await post(client, b'{"airline":"AAL","responsetime":1}')
    assert status == 202
    assert "earliest_record_timestamp" not in counts and "latest_record_timestamp" not in counts
    assert counts["invalid_date_count"] == 1 and counts["missing_field_count"] == 1
    assert_order(counts)


async def test_post_data_response_content_type_and_no_warning(client):
    await setup_job(client)
    r = await client.post(DATA, data=BODY, headers=NDJSON)
    assert r.status == 202
    assert r.content_type == "application/json"
    assert "Warning" not in r.headers
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"


@pytest.mark.settings(deprecation_warning=True)
async def test_deprecation_warning_when_asked_for_on_every_answer_of_the_handler(client):
    """`--deprecation-warning`: Elasticsearch's header, on the 202 and on every error the handler
    gives (the YAML tests declare `warnings:` on the 409 too), not on the REST layer's 406,
    which comes before it (`post-data.md` §0, §11 b)."""
    warning = ('299 Elasticsearch-8.19.3-unknown "Posting data directly to anomaly detection jobs is '
               'deprecated, in a future major version it will be compulsory to use a datafeed"')
    # the form Elasticsearch's clients parse: a build hash of 7 or 40 hex digits, or `unknown`
    assert re.fullmatch(r'299 Elasticsearch-\d+\.\d+\.\d+-(?:[a-f0-9]{7}(?:[a-f0-9]{33})?|unknown) "(?:[^"\\]|\\.)*"',
                        warning)
    await setup_job(client)
    r = await client.post(DATA, data=BODY, headers=NDJSON)
    assert (r.status, r.headers.getall("Warning")) == (202, [warning])
    for path, params in ((f"{BASE}/no-such-job/_data", {}), (DATA, {"reset_start": "soon"}), (DATA, {"bogus": "1"})):
        r = await client.post(path, data=BODY, headers=NDJSON, params=params)
        assert (r.status in (400, 409), r.headers.getall("Warning")) == (True, [warning]), path
    r = await client.post(DATA, data=BODY, headers={"Content-Type": "text/plain"})
    assert r.status == 406 and "Warning" not in r.headers


@pytest.mark.parametrize("codec, bom", [("utf-16-le", True), ("utf-16-be", False), ("utf-16-le", False),
                                        ("utf-32-le", True), ("utf-32-be", False)])
async def test_a_body_in_utf16_or_utf32_counts_as_in_utf8(client, codec, bom):
    """Jackson (so Elasticsearch) detects UTF-16 and UTF-32 from a body's first bytes: a file
    saved by Windows PowerShell (UTF-16LE with a mark) posts as it is. input_bytes counts the
    bytes as sent."""
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "utf8-twin"})
    text = BODY.decode() + '\n{"airline":"ÉTÉ","responsetime":"1.5","time":"1403481800"}'
    wire = ("\ufeff" if bom else "").encode(codec) + text.encode(codec)
    status, counts = await post(client, wire)
    _, twin = await post(client, text.encode(), path=f"{BASE}/utf8-twin/_data")
    assert status == 202 and counts["input_bytes"] == len(wire)
    assert {k: v for k, v in counts.items() if k not in ("job_id", "input_bytes", "last_data_time")} == \
        {k: v for k, v in twin.items() if k not in ("job_id", "input_bytes", "last_data_time")}
    assert counts["processed_record_count"] == 3


async def test_json_array_body(client):
    await setup_job(client)
    body = json.dumps([{"airline": "AAL", "responsetime": 132.2046, "time": 1403481600},
                       {"airline": "JZA", "responsetime": 990.4628, "time": 1403481700}]).encode()
    status, counts = await post(client, body, headers=JSON)
    assert status == 202
    assert counts["processed_record_count"] == 2 and counts["processed_field_count"] == 4
    assert counts["input_field_count"] == 4 and counts["input_bytes"] == len(body)


@pytest.mark.parametrize("ctype", [
    "application/json", "application/x-ndjson", "application/json; charset=UTF-8",
    "application/vnd.elasticsearch+json; compatible-with=8", "application/vnd.elasticsearch+json; compatible-with=9",
    "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
])
async def test_accepted_content_types(client, ctype):
    await setup_job(client)
    status, counts = await post(client, BODY, headers={"Content-Type": ctype})
    assert status == 202, counts
    assert counts["processed_record_count"] == 2


async def test_ndjson_crlf_adjacent_and_whitespace(client):
    await setup_job(client)
    body = rec(1403481600) + b"\r\n" + rec(1403481601) + rec(1403481602) + b"  \n\t " + rec(1403481603) + b"\r\n"
    status, counts = await post(client, body)
    assert status == 202
    assert counts["processed_record_count"] == 4
    assert counts["input_bytes"] == len(body)


async def test_empty_body(client):
    await setup_job(client)
    before = int(time.time() * 1000)
    status, counts = await post(client, b"", headers=JSON)
    assert status == 202
    assert counts == {"job_id": J, "processed_record_count": 0, "processed_field_count": 0, "input_bytes": 0,
                      "input_field_count": 0, "invalid_date_count": 0, "missing_field_count": 0,
                      "out_of_order_timestamp_count": 0, "empty_bucket_count": 0, "sparse_bucket_count": 0,
                      "bucket_count": 0, "last_data_time": counts["last_data_time"], "input_record_count": 0}
    assert counts["last_data_time"] >= before
    dc = (await job_stats(client))["data_counts"]
    assert dc["last_data_time"] == counts["last_data_time"]


async def test_gzip_body_counted_after_decompression(client):
    await setup_job(client)
    r = await client.post(DATA, data=gzip.compress(BODY), headers={**NDJSON, "Content-Encoding": "gzip"})
    assert r.status == 202, await r.text()
    counts = await r.json()
    assert counts["input_bytes"] == len(BODY) == 177
    assert counts["processed_record_count"] == 2


async def test_time_format_with_zone_names(client):
    """Unix `date` output, as Elasticsearch's find_structure names it: the zone name picks the
    zone, whose rules give the offset; a name java.time does not know is an invalid date."""
    job = dict(POST_DATA_JOB, job_id="zoned", data_description={"time_field": "time", "time_format": "EEE MMM dd HH:mm:ss zzz yyyy"})
    await setup_job(client, job)
    body = b"".join(b'{"time":"%s"}' % t for t in (b"Sun Nov 29 10:11:12 UTC 2026", b"Sun Nov 29 10:11:13 PST 2026",
                                                  b"Sun Nov 29 10:11:14 IST 2026"))
    r = await client.post(f"{BASE}/zoned/_data", data=body, headers=NDJSON)
    assert r.status == 202, await r.text()
    counts = await r.json()
    assert (counts["processed_record_count"], counts["invalid_date_count"]) == (2, 1)
    assert counts["earliest_record_timestamp"] == 1795947072000  # 10:11:12Z
    assert counts["latest_record_timestamp"] == 1795975873000  # 10:11:13 PST is 18:11:13Z


# -- content type and size ----------------------------------------------------------------------


async def test_missing_content_type(client):
    await setup_job(client)
    r = await client.post(DATA, data=BODY, skip_auto_headers=["Content-Type"])
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type header is missing", "status": 406}


async def test_missing_content_type_chunked(client):
    await setup_job(client)

    async def gen():
        yield BODY

    r = await client.post(DATA, data=gen(), skip_auto_headers=["Content-Type"])
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type header is missing", "status": 406}


async def test_an_empty_chunked_body_needs_no_content_type(client):
    """Elasticsearch checks the type of a body it has; an empty chunked body is none."""
    await setup_job(client)

    async def nothing():
        return
        yield

    for headers in ({"Content-Type": "text/plain"}, {}):
        r = await client.post(DATA, data=nothing(), headers=headers, skip_auto_headers=["Content-Type"])
        assert r.status == 202, await r.text()
        assert (await r.json())["input_bytes"] == 0
    r = await client.post(f"{BASE}/nosuchjob/_data", data=nothing(), headers={"Content-Type": "text/plain"})
    assert r.status == 409
    # nor does a compressed one that decodes to nothing, chunked or not; one that decodes to
    # something still needs its type
    for body, status in ((gzip.compress(b""), 202), (gzip.compress(b"x"), 406)):
        for data in (body, _once(body)):
            r = await client.post(DATA, data=data, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
            assert r.status == status, await r.text()
    # a coding anomalyd cannot undo leaves the type refusal as it is
    for data in (b"x", _once(b"x")):
        r = await client.post(DATA, data=data, headers={"Content-Type": "text/plain", "Content-Encoding": "br"})
        assert r.status == 406, await r.text()


def _once(body: bytes):
    async def gen():
        yield body
    return gen()


async def test_text_plain_not_supported(client):
    await setup_job(client)
    r = await client.post(DATA, data=BODY, headers={"Content-Type": "text/plain"})
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}
    r = await client.post(DATA, data=BODY, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type header [application/x-www-form-urlencoded] is not supported", "status": 406}


async def test_yaml_does_not_support_stream_parsing(client):
    await setup_job(client)
    r = await client.post(DATA, data=b"a: 1\n", headers={"Content-Type": "application/yaml"})
    assert r.status == 406
    assert await r.json() == {"error": "Content-Type [yaml] does not support stream parsing. Use JSON or SMILE instead",
                              "status": 406}


@SMALL_LIMITS
async def test_content_length_above_max_is_413_empty(client):
    await setup_job(client)
    body = b"\n".join(rec(1403481600 + i) for i in range(30))
    assert len(body) > 1000
    r = await client.post(DATA, data=body, headers=NDJSON)
    assert r.status == 413
    assert await r.read() == b""
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (await job_stats(client))["data_counts"]["input_bytes"] == 0
    # a chunked body of the same size is fine: streams are unbounded
    async def gen():
        for i in range(30):
            yield rec(1403481600 + i) + b"\n"
    r = await client.post(DATA, data=gen(), headers=NDJSON)
    assert r.status == 202, await r.text()
    assert (await r.json())["processed_record_count"] == 30


@SMALL_LIMITS
async def test_size_is_checked_before_the_content_type(client):
    """As in Elasticsearch, whose HTTP layer refuses the size before the REST layer looks at
    the type: 413, not 406."""
    await setup_job(client)
    r = await client.post(DATA, data=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert (r.status, await r.read()) == (413, b"")


@SMALL_LIMITS
async def test_expect_continue_above_max_is_417_and_counted(client):
    """`Expect: 100-continue` with a Content-Length over the limit: 417 before the body is sent,
    stamped and counted in /metrics like every other answer; the connection closes after it."""
    await setup_job(client)
    body = b"\n".join(rec(1403481600 + i) for i in range(30))
    r = await client.post(DATA, data=body, headers=NDJSON, expect100=True)
    assert (r.status, await r.read(), r.headers["X-Elastic-Product"]) == (417, b"", "Elasticsearch")
    assert r.headers["Connection"] == "close"
    metrics = await (await client.get("/metrics")).text()
    assert 'anomalyd_http_requests_total{method="POST",route="/_ml/anomaly_detectors/{job_id}/_data",status="417"} 1.0' in metrics
    assert (await job_stats(client))["data_counts"]["input_bytes"] == 0


@SMALL_LIMITS
async def test_document_over_max_document_bytes(client):
    await setup_job(client)

    async def gen():
        yield rec(1403481600) + b"\n"
        yield b'{"airline":"' + b"x" * 600 + b'","time":1403481601}\n'

    r = await client.post(DATA, data=gen(), headers=NDJSON)
    assert r.status == 400
    body = await r.json()
    assert body["status"] == 400 and body["error"]["type"] == "status_exception"
    assert "larger than the limit of [500] bytes" in body["error"]["reason"]
    dc = (await job_stats(client))["data_counts"]
    assert dc["processed_record_count"] == 1
    status, counts = await post(client, rec(1403481602))
    assert status == 202 and counts["processed_record_count"] == 1


@SMALL_LIMITS
async def test_a_body_of_known_size_may_be_one_document(client):
    """The document limit bounds streams of unknown size (chunked or compressed, `post-data.md`
    §11 d); a plain Content-Length body, already capped by the size limit, may be one document
    as in Elasticsearch, whether it arrives at once or in pieces."""
    await setup_job(client)
    doc = b'{"airline":"' + b"x" * 600 + b'","responsetime":1,"time":1403481601}'
    status, counts = await post(client, doc)
    assert (status, counts["processed_record_count"]) == (202, 1)
    head = (f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {len(doc)}\r\n\r\n").encode()
    reader, writer = await raw_post(client, head, [doc[:300], doc[300:]])
    status, counts = await response_json(reader)
    writer.close()
    assert (status, counts["processed_record_count"]) == (202, 1)
    r = await client.post(DATA, data=gzip.compress(doc), headers={**NDJSON, "Content-Encoding": "gzip"})
    assert r.status == 400 and "larger than the limit of [500] bytes" in (await r.json())["error"]["reason"]
    # in UTF-16 the document's text is up to half as long again as the body that carries it
    cjk = ('{"airline":"' + "名" * 280 + '","responsetime":1,"time":1403481602}').encode("utf-16-le")
    status, counts = await post(client, cjk)
    assert (status, counts["processed_record_count"]) == (202, 1)


# -- job not open -------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["not_a_job", "post-data-closed-job", "post-data-*", "post-data-job,post-data-closed-job"])
async def test_not_open_is_409(client, job_id):
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "post-data-closed-job"}, open_=False)
    status, body = await post(client, BODY, path=f"{BASE}/{job_id}/_data")
    assert status == 409
    assert body == es_error(409, "status_exception", f"Cannot perform requested action because job [{job_id}] is not open")
    r = await client.post(f"{BASE}/{job_id}/_flush")
    assert r.status == 409
    assert await r.json() == body


async def test_not_open_checked_before_reset_params(client):
    await setup_job(client, open_=False)
    status, body = await post(client, BODY, reset_start="not_a_date")
    assert status == 409


# -- reset_start / reset_end --------------------------------------------------------------------


@pytest.mark.parametrize("start, end", [
    ("1403481600", ""), ("1403481600000", ""), ("2014-06-23T00:00:00Z", ""), ("2014-06-23T00:00:00.000Z", ""),
    ("now", ""), ("1403481600", "1403485200"), ("1403481600", "1403481600"), ("", "1403481600"),
    # the largest long: its end (a second later) lies beyond 64-bit ms, where the engine ends it
    ("9223372036854775807", ""), ("9223372036854775000", "9223372036854775807"),
])
async def test_reset_formats_accepted(client, start, end):
    await setup_job(client)
    params = {k: v for k, v in (("reset_start", start), ("reset_end", end)) if v}
    status, counts = await post(client, BODY, **params)
    assert status == 202, counts
    assert counts["processed_record_count"] == 2


@pytest.mark.parametrize("params, name, value", [
    ({"reset_start": "not_a_date"}, "start", "not_a_date"),
    ({"reset_start": "1403481600", "reset_end": "end_not_a_date"}, "end", "end_not_a_date"),
    ({"reset_end": "end_not_a_date"}, "end", "end_not_a_date"),
    ({"reset_start": "-5"}, "start", "-5"),
])
async def test_reset_unparseable(client, params, name, value):
    await setup_job(client)
    status, body = await post(client, BODY, **params)
    assert status == 400
    reason = f"Query param [{name}] with value [{value}] cannot be parsed as a date or converted to a number (epoch)."
    assert body == wrapped(400, "parse_exception", reason)
    # nothing was read
    assert (await job_stats(client))["data_counts"]["input_bytes"] == 0


async def test_reset_end_before_start(client):
    await setup_job(client)
    status, body = await post(client, BODY, reset_start="1403481600", reset_end="1403481500")
    assert status == 400
    reason = "Invalid time range: end time '1403481500' is earlier than start time '1403481600'."
    assert body == wrapped(400, "illegal_argument_exception", reason)


# -- malformed JSON -----------------------------------------------------------------------------


async def test_malformed_json(client):
    await setup_job(client)
    status, first = await post(client, rec(1403481600))
    assert status == 202
    before = (await job_stats(client))["data_counts"]
    status, body = await post(client, rec(1403481601) + b"\n" + rec(1403481602) + b'\n{"time')
    assert status == 400
    assert body == wrapped(400, "parse_exception", "The input JSON data is malformed.")
    dc = (await job_stats(client))["data_counts"]
    assert dc["processed_record_count"] == 3
    assert dc["latest_record_timestamp"] == 1403481602000
    assert dc["input_bytes"] > before["input_bytes"]
    assert dc["last_data_time"] == first["last_data_time"]
    # the job is still usable
    status, counts = await post(client, rec(1403481603))
    assert status == 202 and counts["processed_record_count"] == 1
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 4


async def test_failed_request_is_not_persisted(client, settings):
    await setup_job(client)
    assert (await post(client, rec(1403481600)))[0] == 202
    assert (await post(client, rec(1403481601) + b'{"time'))[0] == 400
    await client.server.app[REGISTRY].writer.flush()
    with sqlite3.connect(settings.data_dir / "anomalyd.sqlite3") as db:
        (saved,) = db.execute("SELECT data_counts FROM jobs WHERE job_id = ?", (J,)).fetchone()
    assert json.loads(saved)["processed_record_count"] == 1
    # in memory it is there, and close persists it
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 2
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 2


async def test_100_error_limit(client):
    await setup_job(client)
    ok = rec(1403481600) + b'{"time":"1403481601" "airline" ' + b"@" * 99 + b"}"
    status, counts = await post(client, ok)
    assert status == 202, counts
    bad = rec(1403481602) + b'{"time":"1403481603" "airline" ' + b"@" * 150 + b"}"
    status, body = await post(client, bad)
    assert status == 400
    assert body == wrapped(400, "parse_exception", "The input JSON data is malformed.")


async def test_missing_comma_recovers(client):
    await setup_job(client)
    status, counts = await post(client, b'{"time":"1403481600" "responsetime":"2.0","airline":"A"}\n' + rec(1403481601))
    assert status == 202
    assert counts["processed_record_count"] == 2
    assert counts["missing_field_count"] == 2


# -- flush --------------------------------------------------------------------------------------


async def test_flush_after_data(client):
    await setup_job(client)
    await post(client, BODY)
    r = await client.post(FLUSH)
    assert r.status == 200
    assert await r.json() == {"flushed": True, "last_finalized_bucket_end": 1403481600000}


async def test_flush_without_data(client):
    await setup_job(client)
    r = await client.post(FLUSH)
    assert r.status == 200 and await r.json() == {"flushed": True}
    assert await (await client.post(f"{BASE}/{J}/_close")).json() == {"closed": True}
    assert (await job_stats(client))["state"] == "closed"


@pytest.mark.parametrize("how", ["query", "body", "body-int", "vendor"])
async def test_flush_skip_time(client, how):
    await setup_job(client)
    body = rec(1403481600, rt=132.2046) + b"\n" + rec(1403485200, rt=990.4628)
    assert (await post(client, body))[0] == 202
    if how == "query":
        r = await client.post(FLUSH, params={"skip_time": "1403488700"})
    elif how == "body":
        r = await client.post(FLUSH, json={"skip_time": "1403488700"})
    elif how == "body-int":
        r = await client.post(FLUSH, json={"skip_time": 1403488700})
    else:
        r = await client.post(FLUSH, data=b'{"skip_time":1403488700,"calc_interim":true}',
                              headers={"Content-Type": "application/vnd.elasticsearch+json; compatible-with=9"})
    assert r.status == 200, await r.text()
    assert await r.json() == {"flushed": True, "last_finalized_bucket_end": 1403488800000}
    for t in (1403488600, 1403488700, 1403488900, 1403492400):
        status, counts = await post(client, rec(t))
        assert status == 202 and counts["processed_record_count"] == 1
    assert await (await client.post(f"{BASE}/{J}/_close")).json() == {"closed": True}


@pytest.mark.parametrize("params, reason", [
    ({"start": "1403481600"}, "Invalid flush parameters: unexpected 'start'."),
    ({"end": "1403481600"}, "Invalid flush parameters: unexpected 'end'."),
    ({"calc_interim": "true", "end": "1403481600"}, "Invalid flush parameters: 'start' has not been specified."),
    ({"advance_time": "1403481600", "skip_time": "1403481700"},
     "advance_time [1403481600] must be later than skip_time [1403481700]"),
    ({"advance_time": "1403481600", "skip_time": "1403481600"},
     "advance_time [1403481600] must be later than skip_time [1403481600]"),
])
async def test_flush_parameter_errors(client, params, reason):
    await setup_job(client)
    r = await client.post(FLUSH, params=params)
    assert r.status == 400
    body = await r.json()
    assert body["error"]["reason"] == reason
    assert body["error"]["root_cause"][0]["reason"] == reason
    r = await client.post(FLUSH, json=params)
    assert r.status == 400
    assert (await r.json())["error"]["reason"] == reason


@pytest.mark.parametrize("name", ["advance_time", "skip_time"])
async def test_flush_bad_dates(client, name):
    await setup_job(client)
    r = await client.post(FLUSH, params={name: f"{name}_not_a_date"})
    assert r.status == 400
    body = await r.json()
    assert "parse_exception" in json.dumps(body)
    assert body["error"]["reason"] == (
        f"Query param [{name}] with value [{name}_not_a_date] cannot be parsed as a date or converted to a number (epoch).")


async def test_flush_start_end_with_calc_interim(client):
    await setup_job(client)
    await post(client, BODY)
    r = await client.post(FLUSH, params={"calc_interim": "true", "start": "1403481600", "end": "1403485200"})
    assert r.status == 200
    assert (await r.json())["flushed"] is True
    r = await client.post(FLUSH, params={"calc_interim": "true", "start": "not_a_date"})
    assert r.status == 400
    assert "parse_exception" in await r.text()


async def test_flush_unknown_param(client):
    await setup_job(client)
    r = await client.post(FLUSH, params={"bogus": "1"})
    assert r.status == 400
    r = await client.post(FLUSH, json={"bogus": 1})
    assert r.status == 400


async def test_flush_closed_job_409(client):
    await setup_job(client, open_=False)
    r = await client.post(FLUSH)
    assert r.status == 409
    assert await r.json() == es_error(409, "status_exception", f"Cannot perform requested action because job [{J}] is not open")


# -- concurrency --------------------------------------------------------------------------------


async def test_concurrent_posters_add_up(client):
    await setup_job(client)
    n = 20

    async def one(i: int):
        body = b"\n".join(rec(1403481600 + (i * 10 + k) % 3000) for k in range(10))
        r = await client.post(DATA, data=body, headers=NDJSON)
        return r.status, await r.json()

    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert all(s == 202 for s, _ in results)
    total = sum(c["processed_record_count"] + c["out_of_order_timestamp_count"] for _, c in results)
    assert total == n * 10
    dc = (await job_stats(client))["data_counts"]
    assert dc["input_record_count"] == n * 10
    assert dc["input_bytes"] == sum(c["input_bytes"] for _, c in results)


async def test_queue_full_429(client):
    await setup_job(client)
    app = client.server.app
    actor = app[REGISTRY].jobs[J].actor
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow():
        yield rec(1403481600) + b"\n"
        started.set()
        await release.wait()
        yield rec(1403481601) + b"\n"

    url = client.make_url(DATA)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def req(data):
            async with session.post(url, data=data, headers=NDJSON) as r:
                return r.status, await r.json()

        holder = asyncio.ensure_future(req(slow()))
        await asyncio.wait_for(started.wait(), 10)
        waiters = [asyncio.ensure_future(req(rec(1403481602))) for _ in range(100)]
        for _ in range(500):
            if actor.queue_depth == 100:
                break
            await asyncio.sleep(0.02)
        assert actor.queue_depth == 100
        status, body = await req(rec(1403481603))
        assert status == 429
        assert body == es_error(429, "es_rejected_execution_exception", "autodetect queue is full. Unable to execute command")
        # the metrics see the queue
        text = await (await client.get("/metrics")).text()
        assert f'anomalyd_job_queue_depth{{job_id="{J}"}} 100.0' in text
        release.set()
        status, counts = await holder
        assert status == 202 and counts["processed_record_count"] == 2
        results = await asyncio.gather(*waiters)
        assert all(s == 202 for s, _ in results)
    assert actor.queue_depth == 0
    dc = (await job_stats(client))["data_counts"]
    assert dc["processed_record_count"] == 102


async def test_a_waiter_whose_client_left_is_not_served(client):
    """A complete body queued behind a stream, whose client disconnects while it waits, is not
    ingested when its turn comes (whether or not anything looked at the queue meanwhile): the
    client never heard of it, and may send it again."""
    await setup_job(client)
    actor = client.server.app[REGISTRY].jobs[J].actor
    release = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        holder = await _hold_job(client, release, session)
        body = rec(1403481602) + b"\n" + rec(1403481603) + b"\n"
        head = (f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        reader, writer = await raw_post(client, head + body, [])
        for _ in range(500):
            if actor._waiters:
                break
            await asyncio.sleep(0.01)
        writer.close()
        for _ in range(500):
            if all(w.gone() for w in actor._waiters):
                break
            await asyncio.sleep(0.01)
        assert actor._waiters and all(w.gone() for w in actor._waiters)
        release.set()
        status, counts = await holder
        assert status == 202 and counts["processed_record_count"] == 2
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 2
    assert (await post(client, rec(1403481604)))[0] == 202


async def test_a_waiting_snapshot_takes_no_place_in_the_queue(client):
    """The periodic model snapshot, queued behind a stream, neither counts in the queue depth nor
    takes one of the 100 places."""
    await setup_job(client)
    registry = client.server.app[REGISTRY]
    actor = registry.jobs[J].actor
    release = asyncio.Event()
    url = client.make_url(DATA)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        holder = await _hold_job(client, release, session)
        actor.snapshotting = snapshot = asyncio.ensure_future(registry._periodic_snapshot(actor))
        for _ in range(500):
            if actor._waiters:
                break
            await asyncio.sleep(0.01)
        assert len(actor._waiters) == 1 and actor.queue_depth == 0

        async def req(data):
            async with session.post(url, data=data, headers=NDJSON) as r:
                return r.status, await r.json()

        waiters = [asyncio.ensure_future(req(rec(1403481602))) for _ in range(100)]
        await _wait_depth(actor, 100)
        status, _ = await req(rec(1403481603))
        assert status == 429
        release.set()
        assert (await holder)[0] == 202
        assert all(s == 202 for s, _ in await asyncio.gather(*waiters))
        await snapshot
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 102


async def test_client_disconnect_mid_body(client):
    await setup_job(client)
    actor = client.server.app[REGISTRY].jobs[J].actor
    sent = asyncio.Event()

    async def gen():
        yield rec(1403481600) + b"\n" + rec(1403481601) + b"\n"
        sent.set()
        await asyncio.sleep(3600)
        yield b""

    url = client.make_url(DATA)
    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(session.post(url, data=gen(), headers=NDJSON))
        await asyncio.wait_for(sent.wait(), 10)
        for _ in range(200):
            if actor.engine.latest_record_ms == 1403481601000:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # the server notices the disconnect and frees the job
    for _ in range(200):
        r = await client.post(DATA, data=rec(1403481602), headers=NDJSON)
        if r.status == 202:
            break
        await asyncio.sleep(0.02)
    assert r.status == 202
    assert (await r.json())["processed_record_count"] == 1
    dc = (await job_stats(client))["data_counts"]
    assert dc["processed_record_count"] == 3


async def raw_post(client, head: bytes, pieces: list[bytes], pause: float = 0.05) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send a request head, then the body in pieces with pauses (so the handler starts first)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    await writer.drain()
    for piece in pieces:
        await asyncio.sleep(pause)
        writer.write(piece)
        await writer.drain()
    return reader, writer


async def response_json(reader: asyncio.StreamReader) -> tuple[int, dict]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")))
    return status, json.loads(await reader.readexactly(length))


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_content_length_body_arriving_in_pieces(client, encoding):
    """A Content-Length body that is still arriving is read piece by piece as received."""
    await setup_job(client)
    body = b"\n".join(rec(1403481600 + k) for k in range(50)) + b"\n"
    wire = gzip.compress(body) if encoding else body
    extra = f"Content-Encoding: {encoding}\r\n" if encoding else ""
    head = (f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n{extra}"
            f"Content-Length: {len(wire)}\r\n\r\n").encode()
    pieces = [wire[i:i + 97] for i in range(0, len(wire), 97)]
    reader, writer = await raw_post(client, head, pieces, pause=0.01)
    status, counts = await response_json(reader)
    writer.close()
    assert status == 202
    assert counts["processed_record_count"] == 50
    assert counts["input_bytes"] == len(body)


@pytest.mark.parametrize("chunked", [False, True])
async def test_stalled_client_loses_connection(aiohttp_client, tmp_path, chunked):
    """A client that sends nothing for the read timeout is cut off; what it sent is kept."""
    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "data", commit_interval=0.0, read_timeout=0.3)))
    await setup_job(client)
    first = rec(1403481600) + b"\n"
    framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: 1000"
    head = f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n{framing}\r\n\r\n".encode()
    piece = b"%x\r\n%s\r\n" % (len(first), first) if chunked else first
    started = time.monotonic()
    reader, writer = await raw_post(client, head, [piece])
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the server closed the connection
    assert time.monotonic() - started < 5
    writer.close()
    status, counts = await post(client, rec(1403481601))
    assert status == 202 and counts["processed_record_count"] == 1
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 2


@pytest.mark.parametrize(("bad", "reason"), [(b"zz\r\n", "Invalid character in chunk size"),
                                           (b"3\r\nabcXX\r\n", "Expected LF after chunk data"),
                                           (b"123456789012345678901\r\n", "Chunk size overflow")])
async def test_broken_chunked_framing_mid_body_is_answered_at_once(aiohttp_client, tmp_path, bad, reason):
    """Broken framing after good chunks (aiohttp's parser drops the body silently, framing.py):
    Elasticsearch's 400 at once rather than at the read timeout, the connection closed, what came
    before counted, and the job free for the request queued behind."""
    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "data", commit_interval=0.0, read_timeout=60)))
    await setup_job(client)
    good = rec(1403481600) + b"\n" + rec(1403481601) + b"\n"
    head = f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    reader, writer = await raw_post(client, head, [b"%x\r\n%s\r\n" % (len(good), good)])
    queued = asyncio.ensure_future(post(client, rec(1403481602)))
    await asyncio.sleep(0.1)
    writer.write(bad)
    status, body = await asyncio.wait_for(response_json(reader), 5)
    assert (status, body) == (400, es_error(400, "parse_exception", f"Failed to read the request body: {reason}"))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed: the rest of the stream is unreadable
    writer.close()
    status, counts = await asyncio.wait_for(queued, 5)
    assert status == 202 and counts["processed_record_count"] == 1
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 3


async def test_broken_framing_of_a_queued_request_is_its_400_when_its_turn_comes(aiohttp_client, tmp_path):
    """A request waiting for the job (behind a stream) whose framing breaks: when its turn comes
    it answers the 400 at once (not after the read timeout), and nothing is logged as an error."""
    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "data", commit_interval=0.0, read_timeout=60)))
    await setup_job(client)
    head = f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    first = rec(1403481600) + b"\n"
    holder = await raw_post(client, head, [b"%x\r\n%s\r\n" % (len(first), first)])
    second = rec(1403481601) + b"\n"
    waiter = await raw_post(client, head, [b"%x\r\n%s\r\n" % (len(second), second)])
    await asyncio.sleep(0.1)
    with structlog.testing.capture_logs() as logs:
        waiter[1].write(b"zz\r\n")
        await asyncio.sleep(0.1)
        holder[1].write(b"0\r\n\r\n")
        assert (await asyncio.wait_for(response_json(holder[0]), 5))[0] == 202
        status, body = await asyncio.wait_for(response_json(waiter[0]), 5)
    assert (status, body["error"]["reason"]) == (400, "Failed to read the request body: Invalid character in chunk size")
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    for _, writer in (holder, waiter):
        writer.close()
    assert (await post(client, rec(1403481602)))[0] == 202


async def test_broken_framing_of_a_body_left_unread_after_the_answer_is_quiet(client, caplog):
    """A 409 answered before the chunked body was read leaves aiohttp draining the body: framing
    breaking then ends the connection without an error logged (and without the drain's 10 s)."""
    head = f"POST {BASE}/nosuchjob/_data HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    reader, writer = await raw_post(client, head, [b"1\r\n\n\r\n"])
    status, _ = await asyncio.wait_for(response_json(reader), 5)
    assert status == 409
    await asyncio.sleep(0.1)
    writer.write(b"zz\r\n")
    started = time.monotonic()
    await asyncio.wait_for(reader.read(), 5)  # aiohttp's own 400 for the bad bytes, then the end
    assert time.monotonic() - started < 2
    writer.close()
    # aiohttp's own record of the bad bytes is the parse error (made one info line by logs.py),
    # not an unhandled exception.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["Error handling request from 127.0.0.1"]
    assert all(isinstance(r.exc_info[1], BadHttpMessage) for r in caplog.records if r.levelno >= logging.ERROR)


# -- metrics ------------------------------------------------------------------------------------


async def test_metrics(client):
    await setup_job(client)
    await post(client, BODY)
    r = await client.get("/metrics")
    assert r.status == 200
    text = await r.text()
    assert f'anomalyd_input_bytes_total{{job_id="{J}"}} 177.0' in text
    assert f'anomalyd_records_total{{job_id="{J}",outcome="processed"}} 2.0' in text
    assert 'anomalyd_http_requests_total{method="POST",route="/_ml/anomaly_detectors/{job_id}/_data",status="202"} 1.0' in text
    assert 'anomalyd_http_requests_total{method="GET",route="/metrics",status="200"}' not in text  # counted after
    assert 'anomalyd_http_requests_total{method="PUT",route="/_ml/anomaly_detectors/{job_id}",status="200"} 1.0' in text
    r = await client.get("/no/such/thing")
    r = await client.head("/healthz/nope")
    text = await (await client.get("/metrics")).text()
    # no route: counted under the method asked with
    assert 'anomalyd_http_requests_total{method="GET",route="/{tail}",status="400"} 1.0' in text
    assert 'anomalyd_http_requests_total{method="HEAD",route="/{tail}",status="400"} 1.0' in text
    for method in ("PROPFIND", "MKCOL"):  # methods the HTTP parser knows, but not a label each
        await client.request(method, "/nothing")
    text = await (await client.get("/metrics")).text()
    assert 'anomalyd_http_requests_total{method="other",route="/{tail}",status="400"} 2.0' in text
    assert "PROPFIND" not in text
    assert f'anomalyd_job_queue_depth{{job_id="{J}"}} 0.0' in text
    assert "anomalyd_open_jobs 1.0" in text


# -- persistence --------------------------------------------------------------------------------


async def test_restart_keeps_jobs_states_and_counts(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "stays-open"})
    await setup_job(client, {**POST_DATA_JOB, "job_id": "never-opened"}, open_=False)
    assert (await post(client, BODY))[0] == 202
    assert (await post(client, BODY, path=f"{BASE}/stays-open/_data"))[0] == 202
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    closed_counts = (await job_stats(client))["data_counts"]
    await client.close()

    client = await aiohttp_client(create_app(settings))
    r = await client.get(f"{BASE}/_stats")
    jobs = {j["job_id"]: j for j in (await r.json())["jobs"]}
    assert {k: v["state"] for k, v in jobs.items()} == {J: "closed", "never-opened": "closed", "stays-open": "opened"}
    assert jobs[J]["data_counts"] == closed_counts
    assert jobs["stays-open"]["data_counts"]["processed_record_count"] == 2
    assert jobs["stays-open"]["data_counts"]["input_bytes"] == 177
    assert jobs["never-opened"]["data_counts"]["processed_record_count"] == 0
    cfg = await (await client.get(f"{BASE}/{J}")).json()
    assert cfg["jobs"][0]["analysis_config"]["bucket_span"] == "1h"
    # the open job takes data at once and keeps the out-of-order rule across the restart
    status, counts = await post(client, rec(1403481500), path=f"{BASE}/stays-open/_data")
    assert status == 202 and counts["out_of_order_timestamp_count"] == 1
    status, counts = await post(client, rec(1403485300), path=f"{BASE}/stays-open/_data")
    assert status == 202 and counts["processed_record_count"] == 1
    assert "earliest_record_timestamp" not in counts
    # the closed one reopens with its counts
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    status, counts = await post(client, rec(1403485300))
    assert status == 202 and "earliest_record_timestamp" not in counts
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 3
    await client.close()


async def _hold_job(client, release: asyncio.Event, session: aiohttp.ClientSession):
    """Start a chunked post that holds the job until `release` is set; returns its task."""
    started = asyncio.Event()

    async def slow():
        yield rec(1403481600) + b"\n"
        started.set()
        await release.wait()
        yield rec(1403481601) + b"\n"

    async def req():
        async with session.post(client.make_url(DATA), data=slow(), headers=NDJSON) as r:
            return r.status, await r.json()

    task = asyncio.ensure_future(req())
    await asyncio.wait_for(started.wait(), 10)
    return task


async def _wait_depth(actor, n: int) -> None:
    for _ in range(500):
        if actor.queue_depth == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"queue depth {actor.queue_depth} != {n}")


async def test_post_while_closing_is_refused(client):
    await setup_job(client)
    actor = client.server.app[REGISTRY].jobs[J].actor
    release = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        holder = await _hold_job(client, release, session)
        close = asyncio.ensure_future(client.post(f"{BASE}/{J}/_close"))
        await _wait_depth(actor, 1)
        assert (await job_stats(client))["state"] == "closing"
        reason = f"Cannot process data because job [{J}] does not have a corresponding autodetect process"
        expected = {"error": {"root_cause": [{"type": "status_exception", "reason": reason}], "type": "status_exception",
                              "reason": reason, "caused_by": {"type": "status_exception", "reason": reason}},
                    "status": 409}
        for path, data in ((DATA, rec(1403481602)), (FLUSH, None)):
            r = await session.post(client.make_url(path), data=data, headers=NDJSON)
            assert r.status == 409
            assert await r.json() == expected
        release.set()
        assert (await holder)[0] == 202
        assert (await close).status == 200
    job = await job_stats(client)
    assert job["state"] == "closed"
    assert job["data_counts"]["processed_record_count"] == 2


async def test_force_close_interrupts_the_holder_and_refuses_waiters(client):
    """The interrupted stream and the waiter each get an answer (409 "not open"), not a dropped
    connection; what the stream sent before stays counted."""
    await setup_job(client)
    actor = client.server.app[REGISTRY].jobs[J].actor
    release = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        holder = await _hold_job(client, release, session)
        waiter = asyncio.ensure_future(session.post(client.make_url(DATA), data=rec(1403481602), headers=NDJSON))
        await _wait_depth(actor, 1)
        r = await asyncio.wait_for(client.post(f"{BASE}/{J}/_close", params={"force": "true"}), 10)
        assert r.status == 200 and await r.json() == {"closed": True}
        r = await waiter
        assert r.status == 409
        assert (await r.json())["error"]["type"] == "status_exception"
        status, body = await asyncio.wait_for(holder, 10)
        assert (status, body) == (409, es_error(409, "status_exception",
                                                f"Cannot perform requested action because job [{J}] is not open"))
        release.set()
    job = await job_stats(client)
    assert job["state"] == "closed"
    assert job["data_counts"]["processed_record_count"] == 1
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    status, counts = await post(client, rec(1403481603))
    assert status == 202 and counts["processed_record_count"] == 1


async def test_close_timeout_bounds_the_wait_not_the_close(client):
    """`_close?timeout` as in Elasticsearch: when a stream still holds the job at the timeout,
    the close answers 500 illegal_state_exception, and the job goes on closing once the stream
    ends (nothing it sent is lost). A malformed timeout is a parse_exception."""
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "idle"})
    release = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        holder = await _hold_job(client, release, session)
        r = await client.post(f"{BASE}/{J},idle/_close", params={"timeout": "200ms"})
        assert (r.status, await r.json()) == (500, es_error(
            500, "illegal_state_exception", "Timed out when waiting for persistent tasks after 200ms"))
        assert (await job_stats(client))["state"] == "closing"
        assert (await job_stats(client, "idle"))["state"] == "closed", "the jobs close together"
        release.set()
        assert (await holder)[0] == 202
    for _ in range(500):
        if (job := await job_stats(client))["state"] == "closed":
            break
        await asyncio.sleep(0.01)
    assert job["state"] == "closed" and job["data_counts"]["processed_record_count"] == 2
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    r = await client.post(f"{BASE}/{J}/_close", json={"timeout": "1m"})
    assert (r.status, await r.json()) == (200, {"closed": True})
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    r = await client.post(f"{BASE}/{J}/_close", params={"timeout": "-1"})  # no limit
    assert (r.status, await r.json()) == (200, {"closed": True})
    r = await client.post(f"{BASE}/{J}/_close", params={"timeout": "soon"})
    assert r.status == 400 and (await r.json())["error"]["type"] == "parse_exception"
    assert (await r.json())["error"]["reason"] == \
        "failed to parse setting [timeout] with value [soon] as a time value: unit is missing or unrecognized"
    r = await client.post(f"{BASE}/{J}/_open", params={"timeout": "soon"})
    assert r.status == 400 and (await r.json())["error"]["type"] == "parse_exception"
    # In the body, Elasticsearch's object parser reports it, with the parse error as its cause.
    r = await client.post(f"{BASE}/{J}/_close", json={"timeout": "soon"})
    error = (await r.json())["error"]
    assert (r.status, error["type"], error["reason"]) == (
        400, "x_content_parse_exception", "[close_job_request] failed to parse field [timeout]")
    assert error["caused_by"]["type"] == "parse_exception"
    r = await client.post(f"{BASE}/{J}/_close", json={"timeout": 30})
    assert (await r.json())["error"]["reason"] == "[close_job_request] timeout doesn't support values of type: VALUE_NUMBER"


async def test_a_close_failing_after_its_timeout_is_logged(client, monkeypatch):
    """Nobody waits for a close past its timeout: if it then fails, the job stays open, a later
    close can try again, and the failure is logged rather than lost (every server-side close
    failure is)."""
    await setup_job(client)
    store = client.server.app[REGISTRY].store
    stuck = asyncio.Event()

    async def failing_update(*args, **kwargs):
        await stuck.wait()
        raise OSError("disk full")

    monkeypatch.setattr(store, "update_job", failing_update)
    with structlog.testing.capture_logs() as logs:
        r = await client.post(f"{BASE}/{J}/_close", params={"timeout": "100ms"})
        assert r.status == 500 and (await r.json())["error"]["type"] == "illegal_state_exception"
        stuck.set()
        for _ in range(200):
            if any(e["event"] == "close_failed" for e in logs):
                break
            await asyncio.sleep(0.01)
    assert [(e["job_id"], e["error"]) for e in logs if e["event"] == "close_failed"] == [(J, "OSError('disk full')")]
    assert (await job_stats(client))["state"] == "opened"
    monkeypatch.undo()
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200


async def test_winding_down_refuses_what_would_start_and_waits_for_what_runs(client):
    """Shutdown's first step: a post, an open or a close that would start is refused with 503
    and nothing read; /readyz answers 503; the wind-down is done at once when nothing runs."""
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "closed-one"}, open_=False)
    registry = client.server.app[REGISTRY]
    registry.wind_down()
    status, error = await post(client, b'{"time":"1403481600"}')
    assert status == 503 and error["error"]["reason"] == "anomalyd is shutting down; nothing of this request was read or done"
    for path in (f"{BASE}/{J}/_close", f"{BASE}/closed-one/_open", "/_features/_reset"):
        r = await client.post(path)
        assert r.status == 503, path
    assert registry.jobs[J].state == "opened" and not registry.jobs[J].deleting
    r = await client.get("/readyz")
    assert r.status == 503 and await r.json() == {"status": "stopping"}
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 0
    # a client that waits for `100 Continue` is refused before it sends the body
    r = await client.post(f"{BASE}/{J}/_data", data=b'{"time":"1403481600"}', expect100=True,
                          headers={"Content-Type": "application/json"})
    assert r.status == 503 and r.headers.get("Connection") == "close"
    # and after aiohttp's own shutdown began, what starts is still refused as unread
    registry.interrupt_all()
    status, error = await post(client, b'{"time":"1403481600"}')
    assert status == 503 and "nothing of this request was read" in error["error"]["reason"]


async def test_a_job_opened_as_the_shutdown_begins_takes_no_data(client, monkeypatch):
    """An open under way when the wind-down starts completes, but its job is wound down too:
    nothing posted to it is read (it would otherwise be cut short by aiohttp's shutdown)."""
    await setup_job(client, open_=False)
    registry = client.server.app[REGISTRY]
    store = registry.store
    entered, release = asyncio.Event(), asyncio.Event()
    load_model = store.load_model

    async def slow_load_model(job_id):
        entered.set()
        await release.wait()
        return await load_model(job_id)

    monkeypatch.setattr(store, "load_model", slow_load_model)
    opening = asyncio.ensure_future(client.post(f"{BASE}/{J}/_open"))
    await asyncio.wait_for(entered.wait(), 10)
    registry.wind_down()
    release.set()
    assert (await opening).status == 200
    status, error = await post(client, b'{"time":"1403481600"}')
    assert status == 503 and "nothing of this request was read" in error["error"]["reason"]
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 0


async def test_a_reset_under_way_when_the_shutdown_begins_finishes(client, monkeypatch):
    """A reset is one operation: begun before the wind-down, its closes are not refused halfway
    (which would leave some jobs closed and the answer claiming nothing was done)."""
    await setup_job(client)
    await setup_job(client, {**POST_DATA_JOB, "job_id": "second"})
    registry = client.server.app[REGISTRY]
    entered, release = asyncio.Event(), asyncio.Event()
    flush = registry.results.flush

    async def slow_flush():  # the first close waits here until the wind-down has begun
        entered.set()
        await release.wait()
        await flush()

    monkeypatch.setattr(registry.results, "flush", slow_flush)
    resetting = asyncio.ensure_future(client.post("/_features/_reset"))
    await asyncio.wait_for(entered.wait(), 10)
    registry.wind_down()
    release.set()
    r = await resetting
    assert r.status == 200, await r.text()
    assert registry.jobs == {}


@SMALL_LIMITS
async def test_every_way_a_request_ends_leaves_none_counted_under_way(client):
    """What the shutdown waits for stays exact: 413, 417, a refused body, an error, a
    disconnect mid-body and a request begun after the signal all leave the count at 0."""
    await setup_job(client)
    stats = client.server.app[REQUEST_STATS]
    assert (await client.post(DATA, data=b"x" * 2000, headers=NDJSON)).status == 413
    r = await client.post(DATA, data=rec(1403481600), headers={**NDJSON, "Expect": "later"})
    assert r.status == 417
    assert (await client.get(f"{BASE}/{J}/_stats", data=b"{}", headers=NDJSON)).status == 400
    assert (await client.post(f"{BASE}/missing/_data", data=rec(1403481600), headers=NDJSON)).status == 409
    sent = asyncio.Event()

    async def gen():
        yield rec(1403481600) + b"\n"
        sent.set()
        await asyncio.sleep(3600)
        yield b""

    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(session.post(client.make_url(DATA), data=gen(), headers=NDJSON))
        await asyncio.wait_for(sent.wait(), 10)
        for _ in range(200):
            if stats.in_flight:
                break
            await asyncio.sleep(0.01)
        assert stats.in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for _ in range(300):
        if not stats.in_flight:
            break
        await asyncio.sleep(0.02)
    assert stats.in_flight == 0
    stats.draining = True  # begun after the signal: served, not waited for
    assert (await client.get(f"{BASE}/{J}/_stats")).status == 200
    assert stats.in_flight == 0


async def test_a_closed_job_with_a_large_model_gives_memory_back(client, monkeypatch):
    """Closing a job frees its models on a thread and trims the heap, if they were large."""
    from anomalyd import malloc

    calls = []
    monkeypatch.setattr(malloc, "release", lambda: calls.append(1) or True)
    for threshold, expected in ((1 << 40, []), (0, [1])):
        monkeypatch.setattr(malloc, "RELEASE_MIN_BYTES", threshold)
        await setup_job(client)
        assert (await client.post(f"{BASE}/{J}/_close")).status == 200
        assert calls == expected
        assert (await client.delete(f"{BASE}/{J}")).status == 200


async def test_requests_under_way_are_counted_for_the_wind_down(client):
    """The shutdown waits until no request is under way: the envelope counts them."""
    await setup_job(client)
    stats = client.server.app[REQUEST_STATS]
    assert stats.in_flight == 0
    seen = []

    async def body():
        yield b'{"time":"1403481600"}\n'
        for _ in range(100):  # until the server has the request
            if stats.in_flight:
                break
            await asyncio.sleep(0.01)
        seen.append(stats.in_flight)
        yield b'{"time":"1403481700"}\n'

    resp = await client.post(f"{BASE}/{J}/_data", data=body(), headers={"Content-Type": "application/json"})
    assert resp.status == 202 and seen == [1] and stats.in_flight == 0


# -- human-readable counts ---------------------------------------------------------------------


async def test_human_adds_timestamp_strings(client):
    """`?human=true` writes `<name>_string` (ISO-8601 UTC, ms) before every timestamp present."""
    await setup_job(client)
    status, counts = await post(client, b'{"time":"1403481600"}{"time":"1403481700"}', human="true")
    assert status == 202
    keys = list(counts)
    assert counts["earliest_record_timestamp_string"] == "2014-06-23T00:00:00.000Z"
    assert counts["latest_record_timestamp_string"] == "2014-06-23T00:01:40.000Z"
    for name in ("earliest_record_timestamp", "latest_record_timestamp", "last_data_time"):
        assert keys.index(name + "_string") == keys.index(name) - 1
    assert_order({k: v for k, v in counts.items() if not k.endswith("_string")})
    r = await client.get(f"{BASE}/{J}/_stats", params={"human": ""})
    dc = (await r.json())["jobs"][0]["data_counts"]
    assert dc["latest_record_timestamp_string"] == "2014-06-23T00:01:40.000Z"
    status, plain = await post(client, b'{"time":"1403481800"}')
    assert not any(k.endswith("_string") for k in plain)
    status, error = await post(client, b'{"time":"1403481900"}', human="yes")
    assert status == 400 and error["error"]["reason"] == "Failed to parse value [yes] as only [true] or [false] are allowed."
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == 3  # the refused body was not read
    # the parameter is checked before anything else
    assert (await post(client, b"{}", path=f"{BASE}/no-such-job/_data", human="yes"))[0] == 400
    assert (await client.get(f"{BASE}/nothing-*/_stats", params={"human": "yes"})).status == 400


def test_iso_millis_any_64_bit_value():
    from anomalyd.api.human import iso_millis
    assert iso_millis(0) == "1970-01-01T00:00:00.000Z"
    assert iso_millis(-1) == "1969-12-31T23:59:59.999Z"
    assert iso_millis(951_782_400_000) == "2000-02-29T00:00:00.000Z"
    assert iso_millis(2**63 - 1) == "+292278994-08-17T07:12:55.807Z"
    assert iso_millis(-(2**63)) == "-292275055-05-16T16:47:04.192Z"
    assert iso_millis(-62_167_219_200_001) == "-0001-12-31T23:59:59.999Z"


# -- large bodies are read on worker threads ---------------------------------------------------------


def _pieces(body: bytes, size: int = 256 << 10):
    async def gen():
        for i in range(0, len(body), size):
            yield body[i:i + size]
            await asyncio.sleep(0)
    return gen()


async def test_large_bodies_of_two_jobs_are_read_on_worker_threads(client):
    """Large pieces are read on the feed pool's threads with the GIL released, so that two jobs'
    bodies are read on two cores; counts stay exact, and `_stats` and `/metrics` (which read the
    engines) answer while the bodies are being read."""
    second = {**POST_DATA_JOB, "job_id": "second"}
    await setup_job(client)
    await setup_job(client, second)
    n = 60_000
    body = b"\n".join(rec(1403481600 + k) for k in range(n)) + b"\n"
    posts = [asyncio.ensure_future(client.post(f"{BASE}/{j}/_data", data=_pieces(body), headers=NDJSON))
             for j in (J, "second")]
    polls = 0
    while not all(p.done() for p in posts):
        for path in (f"{BASE}/_stats", "/metrics"):
            r = await client.get(path)
            assert r.status == 200, await r.text()
            await r.read()
        polls += 1
    for p in posts:
        r = p.result()
        assert r.status == 202, await r.text()
        counts = await r.json()
        assert (counts["processed_record_count"], counts["input_bytes"]) == (n, len(body))
    assert polls > 0
    if len(os.sched_getaffinity(0)) > 1:  # with one CPU there is no feed pool
        assert any(t.name.startswith("anomalyd-feed") for t in threading.enumerate())
    for j in (J, "second"):
        assert (await job_stats(client, j))["data_counts"]["processed_record_count"] == n


async def test_malformed_large_body_keeps_what_was_read_on_a_worker(client):
    """A body that fails inside a piece read on a worker thread: 400, the records before the
    failure stay counted, nothing after it is read, and the job stays usable."""
    await setup_job(client)
    good = b"\n".join(rec(1403481600 + k) for k in range(20_000)) + b"\n"
    bad = b'{"time":"1403500000" "airline" ' + b"@" * 150 + b"}\n"
    after = b"\n".join(rec(1403500001 + k) for k in range(20_000)) + b"\n"
    r = await client.post(DATA, data=_pieces(good + bad + after, 1 << 20), headers=NDJSON)
    assert r.status == 400
    assert await r.json() == wrapped(400, "parse_exception", "The input JSON data is malformed.")
    dc = (await job_stats(client))["data_counts"]
    assert dc["processed_record_count"] == 20_000
    assert dc["latest_record_timestamp"] == (1403481600 + 19_999) * 1000
    status, counts = await post(client, rec(1403500002))
    assert status == 202 and counts["processed_record_count"] == 1


# -- lifecycle races: closes, deletes and opens meeting each other and data ----------------------


def stored_counts(client) -> dict:
    """The lifetime counts as the store has them (what a restart would show)."""
    path = client.server.app[SETTINGS].data_dir / "anomalyd.sqlite3"
    with sqlite3.connect(path) as db:
        (counts,) = db.execute("SELECT data_counts FROM jobs WHERE job_id = ?", (J,)).fetchone()
    return json.loads(counts)


async def test_closes_meeting_posters_lose_no_post(client):
    """Posters hammer a job while a close and a force-close arrive together: each post gets 202
    or 409, both closes answer closed, and every 202 is in the closed job's counts, live and
    stored (an interrupted close once let posts into a dying job, answered 202 and lost)."""
    await setup_job(client)
    accepted: list[int] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:

        async def poster(k: int) -> None:
            t = 1403481700 + 100_000 * k
            while not stop.is_set():
                async with session.post(client.make_url(DATA), data=rec(t), headers=NDJSON) as r:
                    body = await r.json()
                    if r.status == 202:
                        accepted.append(body["processed_record_count"])
                    else:
                        assert r.status == 409, body
                t += 1

        posters = [asyncio.ensure_future(poster(k)) for k in range(3)]
        while len(accepted) < 20:
            await asyncio.sleep(0.005)
        closes = await asyncio.gather(session.post(client.make_url(f"{BASE}/{J}/_close")),
                                      session.post(client.make_url(f"{BASE}/{J}/_close"), params={"force": "true"}))
        assert [(r.status, await r.json()) for r in closes] == [(200, {"closed": True})] * 2
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*posters)
    stats = await job_stats(client)
    assert stats["state"] == "closed"
    assert stats["data_counts"]["processed_record_count"] == sum(accepted)
    await client.server.app[REGISTRY].writer.flush()
    assert stored_counts(client)["processed_record_count"] == sum(accepted)


async def test_concurrent_force_closes_and_delete_all_answer(client):
    """Several force-closes at once all answer closed; a force-delete meeting a force-close
    deletes the job; nothing is cut off without an answer."""
    await setup_job(client)
    answers = await asyncio.gather(*(client.post(f"{BASE}/{J}/_close", params={"force": "true"}) for _ in range(4)))
    assert [(r.status, await r.json()) for r in answers] == [(200, {"closed": True})] * 4
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    close, delete = await asyncio.gather(client.post(f"{BASE}/{J}/_close", params={"force": "true"}),
                                         client.delete(f"{BASE}/{J}", params={"force": "true"}))
    assert (close.status, await close.json()) == (200, {"closed": True})
    assert (delete.status, await delete.json()) == (200, {"acknowledged": True})
    assert (await client.get(f"{BASE}/{J}")).status == 404


def gate(monkeypatch, store, method: str) -> asyncio.Event:
    """Hold the store's `method` until the returned event is set (a lifecycle step in flight)."""
    opened = asyncio.Event()
    original = getattr(store, method)

    async def gated(*args):
        await opened.wait()
        return await original(*args)

    monkeypatch.setattr(store, method, gated)
    return opened


async def test_opening_job(client, monkeypatch):
    """While a job is opening: data and flush get the "no process" 409, a delete without force
    is refused, a close waits for the open and then closes, a force-delete deletes."""
    await setup_job(client, open_=False)
    loaded = gate(monkeypatch, client.server.app[REGISTRY].store, "load_model")
    opening = asyncio.ensure_future(client.post(f"{BASE}/{J}/_open"))
    for _ in range(200):
        if (await job_stats(client))["state"] == "opening":
            break
        await asyncio.sleep(0.01)
    reason = f"Cannot process data because job [{J}] does not have a corresponding autodetect process"
    for path, data in ((DATA, rec(1403481600)), (FLUSH, None)):
        r = await client.post(path, data=data, headers=NDJSON)
        assert (r.status, (await r.json())["error"]["reason"]) == (409, reason)
    r = await client.delete(f"{BASE}/{J}")
    assert (r.status, await r.json()) == (409, es_error(409, "status_exception", f"Cannot delete job [{J}] because the job is opening"))
    close = asyncio.ensure_future(client.post(f"{BASE}/{J}/_close"))
    await asyncio.sleep(0.05)
    assert not close.done()
    loaded.set()
    assert (await opening).status == 200
    assert ((await close).status, (await job_stats(client))["state"]) == (200, "closed")
    loaded.clear()
    opening = asyncio.ensure_future(client.post(f"{BASE}/{J}/_open"))
    await asyncio.sleep(0.05)
    delete = asyncio.ensure_future(client.delete(f"{BASE}/{J}", params={"force": "true"}))
    await asyncio.sleep(0.05)
    loaded.set()
    assert ((await opening).status, (await delete).status) == (200, 200)
    assert (await client.get(f"{BASE}/{J}")).status == 404


@pytest.mark.settings(snapshot_interval=0.0)  # every request is due for a model snapshot
async def test_periodic_snapshots_leave_the_loop_serving(client):
    """A periodic model snapshot is serialised on a thread while it holds the job: meanwhile
    `_stats` and /metrics answer with the exact figures, other jobs take data, the job's own
    posts wait their turn; every count adds up and the snapshot is stored."""
    await setup_job(client)
    r = await client.put(f"{BASE}/other", json={"analysis_config": {"detectors": [{"function": "count"}]},
                                                 "data_description": {"time_field": "time", "time_format": "epoch"}})
    assert r.status == 200 and (await client.post(f"{BASE}/other/_open")).status == 200
    registry = client.server.app[REGISTRY]
    actor = registry.jobs[J].actor
    airlines = 20_000  # a model of about 90 MB: serialising it takes long enough to watch
    body = b"".join(rec(1403481600 + k % 3600, airline=f"A{k}") + b"\n" for k in range(airlines))
    status, counts = await post(client, body)  # due for a snapshot as it ends
    assert status == 202 and counts["processed_record_count"] == airlines
    snapshot = actor.snapshotting
    assert snapshot is not None
    own = asyncio.ensure_future(post(client, rec(1403485200, airline="A1")))  # waits for the snapshot
    other_posted = 0
    while not snapshot.done() and other_posted < 1000:
        processed = (await job_stats(client))["data_counts"]["processed_record_count"]
        # The job's own post goes only after the snapshot (which may have ended meanwhile).
        assert processed == airlines or (snapshot.done() and processed == airlines + 1)
        assert (await client.get("/metrics")).status == 200
        status, _ = await post(client, rec(1403485200 + other_posted), path=f"{BASE}/other/_data")
        assert status == 202
        other_posted += 1
    assert other_posted >= 2, "the loop served nothing while the snapshot was taken"
    assert (await own)[0] == 202  # and its end starts the next snapshot
    while actor.snapshotting is not None:
        await asyncio.sleep(0.01)
    assert (await job_stats(client))["data_counts"]["processed_record_count"] == airlines + 1
    assert (await job_stats(client, "other"))["data_counts"]["processed_record_count"] == other_posted
    stored = await registry.store.load_model_stats(J)
    assert stored is not None and stored["series_count"] == airlines


@pytest.mark.settings(snapshot_interval=0.0)  # every request is due for a model snapshot
async def test_force_close_waits_for_a_periodic_snapshot(client):
    """A force-close meeting a periodic snapshot does not cancel it (its thread cannot stop
    halfway): the close waits its turn, answers closed, and the job reopens with its model."""
    await setup_job(client)
    actor = client.server.app[REGISTRY].jobs[J].actor
    body = b"".join(rec(1403481600 + k % 3600, airline=f"A{k}") + b"\n" for k in range(5000))
    assert (await post(client, body))[0] == 202
    snapshot = actor.snapshotting
    assert snapshot is not None
    r = await client.post(f"{BASE}/{J}/_close", params={"force": "true"})
    assert (r.status, await r.json()) == (200, {"closed": True})
    assert snapshot.done() and not snapshot.cancelled()
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    model = (await job_stats(client))["model_size_stats"]
    assert model["total_by_field_count"] == 5000


async def test_open_while_deleting_is_refused(client, monkeypatch):
    """A job being deleted cannot be opened (Elasticsearch's 409), so no actor outlives it."""
    await setup_job(client, open_=False)
    deleted = gate(monkeypatch, client.server.app[REGISTRY].store, "delete_jobs")
    deleting = asyncio.ensure_future(client.delete(f"{BASE}/{J}"))
    await asyncio.sleep(0.05)
    r = await client.post(f"{BASE}/{J}/_open")
    assert (r.status, await r.json()) == (409, es_error(409, "status_exception", f"Cannot open job [{J}] because it is being deleted"))
    deleted.set()
    assert (await deleting).status == 200
    assert (await client.get(f"{BASE}/{J}")).status == 404


async def test_force_delete_takes_no_model_snapshot(client, monkeypatch):
    """Deleting an open job does not first snapshot the model it is about to throw away."""
    await setup_job(client)
    assert (await post(client, rec(1403481600)))[0] == 202
    registry = client.server.app[REGISTRY]

    async def no_snapshot(actor):
        raise AssertionError("a snapshot for a job being deleted")

    monkeypatch.setattr(registry, "_save_model", no_snapshot)
    r = await client.delete(f"{BASE}/{J}", params={"force": "true"})
    assert (r.status, await r.json()) == (200, {"acknowledged": True})
    assert (await client.get(f"{BASE}/{J}")).status == 404


async def test_late_data_after_a_reopen_reaches_the_diagnostics_window_back(client):
    """The window of a reopened job starts at the persisted latest record's bucket; a record the
    latency lets in before it takes the window back to its own bucket, as in Elasticsearch, and
    the buckets in between are empty (`post-data.md` §4)."""
    job = {"job_id": "late", "analysis_config": {"bucket_span": "10s", "latency": "30s", "detectors": [{"function": "count"}]},
           "data_description": {"time_field": "time", "time_format": "epoch"}}
    await setup_job(client, job)
    path = f"{BASE}/late/_data"
    assert (await post(client, b'{"time":205}', path=path))[0] == 202
    assert (await client.post(f"{BASE}/late/_close")).status == 200
    assert (await client.post(f"{BASE}/late/_open")).status == 200
    status, counts = await post(client, b'{"time":185}{"time":215}', path=path)
    assert status == 202
    assert (counts["bucket_count"], counts["empty_bucket_count"], counts["latest_empty_bucket_timestamp"]) == (3, 1, 190000)


async def test_a_closed_job_frees_its_model_and_reopens_from_pieces(client, monkeypatch):
    """Closing stores the model in pieces and frees it at once (on a thread, not wherever the
    engine's last reference goes); reopening reads the pieces back into the same model."""
    from anomalyd import registry as registry_module

    monkeypatch.setattr(registry_module, "MODEL_PIECE_BYTES", 4096)
    await setup_job(client)
    body = b"".join(rec(1403481600 + k % 3600, airline=f"A{k}") + b"\n" for k in range(300))
    assert (await post(client, body))[0] == 202
    before = (await job_stats(client))["model_size_stats"]
    engine = client.server.app[REGISTRY].jobs[J].actor.engine
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    assert json.loads(engine.analysis_stats_json())["series_count"] == 0
    closed = (await job_stats(client))["model_size_stats"]  # the stored figures, not the freed engine's
    assert {k: v for k, v in closed.items() if k != "log_time"} == {k: v for k, v in before.items() if k != "log_time"}
    pieces = await client.server.app[REGISTRY].store.load_model(J)
    assert len(pieces) > 1 and all(len(p) <= 4096 for p in pieces)
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    after = (await job_stats(client))["model_size_stats"]
    assert (after["total_by_field_count"], after["model_bytes"]) == (300, before["model_bytes"])
