"""Analysis through the HTTP API: buckets, records, influencers, flush and close semantics,
snapshots across close and reopen, `_stats` model figures, unsupported functions."""

from __future__ import annotations

import json

import pytest

from conftest import POST_DATA_JOB

BASE = "/_ml/anomaly_detectors"
J = "post-data-job"
ND = {"Content-Type": "application/x-ndjson"}


async def make_job(client, job_id: str = J, analysis: dict | None = None, open_: bool = True) -> None:
    body = dict(POST_DATA_JOB, job_id=job_id)
    if analysis is not None:
        body["analysis_config"] = analysis
    r = await client.put(f"{BASE}/{job_id}", json=body)
    assert r.status == 200, await r.text()
    if open_:
        assert (await client.post(f"{BASE}/{job_id}/_open")).status == 200


async def post(client, docs: list[dict], job_id: str = J) -> dict:
    body = "\n".join(json.dumps(d) for d in docs).encode()
    r = await client.post(f"{BASE}/{job_id}/_data", data=body, headers=ND)
    assert r.status == 202, await r.text()
    return await r.json()


async def get(client, kind: str, job_id: str = J, method: str = "GET", **kw) -> tuple[int, dict]:
    r = await client.request(method, f"{BASE}/{job_id}/results/{kind}", **kw)
    return r.status, await r.json()


def steady_then_spike(job_id_hours: int = 24 * 10, spike_at: int | None = None) -> list[dict]:
    """Two airlines with steady response times, hourly; AAL spikes at `spike_at` hours."""
    t0 = 1403481600
    docs = []
    for h in range(job_id_hours):
        for i, airline in enumerate(("AAL", "JZA")):
            rt = 100.0 + 50 * i + (h * 7 + i * 3) % 5
            if h == spike_at and airline == "AAL":
                rt = 5000.0
            docs.append({"time": t0 + h * 3600, "airline": airline, "responsetime": rt, "host": f"h{i}"})
    return docs


# -- Elasticsearch's post_data.yml ----------------------------------------------------------------


async def test_flush_with_skip_time_leaves_two_buckets(client):
    await make_job(client)
    await post(client, [{"airline": "AAL", "responsetime": 132.2046, "time": 1403481600},
                        {"airline": "AAL", "responsetime": 990.4628, "time": 1403485200}])
    r = await client.post(f"{BASE}/{J}/_flush", params={"skip_time": "1403488700"})
    assert await r.json() == {"flushed": True, "last_finalized_bucket_end": 1403488800000}
    await post(client, [{"airline": "AAL", "responsetime": 1, "time": t} for t in (1403488600, 1403488700)])
    await post(client, [{"airline": "AAL", "responsetime": 1, "time": t} for t in (1403488900, 1403492400)])
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    status, body = await get(client, "buckets")
    assert status == 200
    assert body["count"] == 2
    assert [(b["timestamp"], b["event_count"]) for b in body["buckets"]] == [(1403481600000, 1), (1403488800000, 1)]
    b = body["buckets"][0]
    assert list(b) == ["job_id", "timestamp", "anomaly_score", "bucket_span", "initial_anomaly_score", "event_count",
                       "is_interim", "bucket_influencers", "processing_time_ms", "result_type"]
    assert (b["job_id"], b["bucket_span"], b["is_interim"], b["result_type"]) == (J, 3600, False, "bucket")


# -- records, influencers, parameters -----------------------------------------------------------


async def spiked_job(client) -> None:
    analysis = {"bucket_span": "1h", "influencers": ["airline", "host"],
                "detectors": [{"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}]}
    await make_job(client, analysis=analysis)
    await post(client, steady_then_spike(24 * 12, spike_at=24 * 11))
    r = await client.post(f"{BASE}/{J}/_flush", json={"advance_time": str(1403481600 + 24 * 12 * 3600)})
    assert r.status == 200


async def test_a_spike_is_a_record_with_its_influencers(client):
    await spiked_job(client)
    spike_ms = (1403481600 + 24 * 11 * 3600) * 1000
    status, body = await get(client, "records")
    assert status == 200
    top = body["records"][0]
    assert top["timestamp"] == spike_ms
    assert (top["by_field_name"], top["by_field_value"], top["function"], top["field_name"]) == \
        ("airline", "AAL", "mean", "responsetime")
    assert top["actual"] == [5000.0] and top["typical"][0] < 200
    assert top["record_score"] == top["initial_record_score"] > 50
    assert top["probability"] < 0.001
    assert top["airline"] == ["AAL"]
    assert {"influencer_field_name": "host", "influencer_field_values": ["h0"]} in top["influencers"]
    scores = [r["record_score"] for r in body["records"]]
    assert scores == sorted(scores, reverse=True)  # records: score descending by default

    status, body = await get(client, "influencers", params={"start": str(spike_ms)})
    assert status == 200
    assert {(i["influencer_field_name"], i["influencer_field_value"]) for i in body["influencers"]} >= {
        ("airline", "AAL"), ("host", "h0")}

    status, body = await get(client, "buckets", params={"anomaly_score": "1"})
    assert spike_ms in [b["timestamp"] for b in body["buckets"]]
    bucket = next(b for b in body["buckets"] if b["timestamp"] == spike_ms)
    assert bucket["bucket_influencers"][-1]["influencer_field_name"] == "bucket_time"


async def test_parameters_in_query_or_body_and_paging(client):
    await spiked_job(client)
    _, all_buckets = await get(client, "buckets", params={"size": "1000"})
    assert all_buckets["count"] == 24 * 12
    ts = [b["timestamp"] for b in all_buckets["buckets"]]
    assert ts == sorted(ts)
    _, page = await get(client, "buckets", method="POST", json={"page": {"from": 10, "size": 5}, "desc": True})
    assert [b["timestamp"] for b in page["buckets"]] == ts[::-1][10:15]
    _, q = await get(client, "buckets", params={"from": "10", "size": "5", "desc": "true"})
    assert q == page
    _, ranged = await get(client, "buckets", params={"start": str(ts[3]), "end": str(ts[6])})
    assert [b["timestamp"] for b in ranged["buckets"]] == ts[3:6]
    r = await client.get(f"{BASE}/{J}/results/buckets/{ts[5]}", params={"expand": "true"})
    one = await r.json()
    assert one["count"] == 1 and one["buckets"][0]["timestamp"] == ts[5] and "records" in one["buckets"][0]
    _, records = await get(client, "records", params={"sort": "timestamp", "desc": "false", "record_score": "0"})
    rts = [r["timestamp"] for r in records["records"]]
    assert rts == sorted(rts)


async def test_parameter_errors(client):
    await spiked_job(client)
    for kw in ({"params": {"start": "0"}}, {"json": {"page": {"from": 1}}}, {"params": {"anomaly_score": "5"}}):
        r = await client.get(f"{BASE}/{J}/results/buckets/1403481600000", **kw)
        assert r.status == 400, kw
        assert "is incompatible with" in (await r.json())["error"]["reason"]
    status, body = await get(client, "records", params={"start": "not-a-date"})
    assert status == 400 and body["error"]["type"] == "parse_exception"
    status, body = await get(client, "records", params={"size": "10001"})
    assert status == 400
    status, body = await get(client, "buckets", params={"bogus": "1"})
    assert status == 400
    status, body = await get(client, "buckets", job_id="no-such-job")
    assert status == 404 and body["error"]["reason"] == "No known job with id 'no-such-job'"


async def test_a_bucket_time_as_a_parameter(client):
    """`timestamp` in the query string or the body picks one bucket, as the path form does, and
    excludes the same parameters (jobs_get_result_buckets.yml "mutually-exclusive params via body")."""
    await spiked_job(client)
    t = 1403481600000 + 5 * 3600_000
    for kw in ({"params": {"timestamp": str(t)}}, {"method": "POST", "json": {"timestamp": "2014-06-23T05:00:00Z"}}):
        status, body = await get(client, "buckets", **kw)
        assert status == 200 and body["count"] == 1 and body["buckets"][0]["timestamp"] == t, kw
    for extra in ({"start": "2014-06-01T00:00:00Z"}, {"anomaly_score": 1}, {"from": 1}):
        status, body = await get(client, "buckets", method="POST", json={"timestamp": str(t), **extra})
        assert status == 400 and "is incompatible with" in body["error"]["reason"], extra


async def test_range_bounds_read_as_elasticsearch_reads_dates(client):
    """`start`/`end` are bounds on a date field: epoch milliseconds for any number (the default
    `-1` too) but a four-digit year, ISO dates, and date math rounded down."""
    await spiked_job(client)
    first, last = 1403481600000, 1403481600000 + (24 * 12 - 1) * 3600_000
    cases = {
        ("-1", None): 24 * 12, (None, "-1"): 0, ("1403481600", None): 24 * 12,  # 10 digits: ms, 1970
        ("2014", None): 24 * 12, ("2015", None): 0, (None, "now"): 24 * 12, ("now-1d", None): 0,
        ("2014-06-23T00:00:00Z||+1d", None): 24 * 11, ("2014-06-23T05:30:00Z||/h", "2014-06-23T07:00:00Z"): 2,
        (str(first), str(first + 3600_000)): 1, ("2014-07||-1M/M", None): 24 * 12,
    }
    for (start, end), n in cases.items():
        params = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        status, body = await get(client, "buckets", params=params | {"size": "1000"})
        assert (status, body.get("count")) == (200, n), (params, body)
    assert (await get(client, "buckets", params={"start": str(last)}))[1]["count"] == 1
    for bad in ("now-1x", "soon", "2014-06-23||+1", "now-" + "9" * 5000 + "s", "9" * 5000, "now-3000000000s",
                "2014-06-23T10:00+25:00", "2014-06-23T10:00+05:99", "\u0661\u0664\u0660\u0663", "now/2d"):
        status, body = await get(client, "buckets", params={"start": bad})
        assert status == 400 and body["error"]["type"] == "parse_exception", bad


async def test_ties_follow_the_sort_direction(client):
    """Equal scores come latest first when sorted descending (jobs_get_result_buckets.yml "sort
    field and secondary sort by time"); records break ties by score, then by split values, not
    by time; an array field sorts by its value, not its text."""
    await spiked_job(client)
    _, body = await get(client, "buckets", params={"sort": "anomaly_score", "desc": "true", "size": "1000"})
    zero = [b["timestamp"] for b in body["buckets"] if b["anomaly_score"] == 0]
    assert len(zero) > 10 and zero == sorted(zero, reverse=True)
    _, body = await get(client, "buckets", params={"sort": "anomaly_score", "size": "1000"})
    zero = [b["timestamp"] for b in body["buckets"] if b["anomaly_score"] == 0]
    assert zero == sorted(zero)
    _, body = await get(client, "records", params={"sort": "timestamp", "desc": "true", "size": "1000"})
    keys = [(r["timestamp"], r["record_score"], r["by_field_value"]) for r in body["records"]]
    assert keys == sorted(keys, reverse=True)
    for desc in (True, False):
        _, body = await get(client, "records", params={"sort": "actual", "desc": str(desc).lower(), "size": "1000"})
        actual = [r["actual"][0] for r in body["records"]]
        assert len(actual) > 1 and actual == sorted(actual, reverse=desc)



async def test_a_bucket_time_matches_what_it_names(client):
    """A `timestamp` matches as Elasticsearch matches a date: `2014-06-23` is that whole day, of
    which one bucket is returned with the count of all."""
    await spiked_job(client)
    status, body = await get(client, "buckets", params={"timestamp": "2014-06-23"})
    assert status == 200 and body["count"] == 24 and len(body["buckets"]) == 1
    assert body["buckets"][0]["timestamp"] == 1403481600000
    r = await client.get(f"{BASE}/{J}/results/buckets/2014-06-23T05")
    assert (await r.json())["count"] == 1
    # date math's anchor is not rounded up, only a `/unit` is
    status, body = await get(client, "buckets", params={"timestamp": "2014-06-23||+1d"})
    assert body["count"] == 1 and body["buckets"][0]["timestamp"] == 1403481600000 + 24 * 3600_000
    status, body = await get(client, "buckets", params={"timestamp": "2014-06-23||+1d/d"})
    assert body["count"] == 24
    for bad in ("99999999999999999999", "0000"):
        status, body = await get(client, "buckets", params={"start": bad})
        assert status in (200, 400) and (status == 200) == (bad == "0000"), (bad, body)
    # an integer beyond 64 bits in a body is read (as Jackson reads it), then refused as a date
    status, body = await get(client, "buckets", method="POST", json={"timestamp": 100000000000000000000})
    assert status == 400 and body["error"]["type"] == "parse_exception"
    deep = "[" * 1500 + "]" * 1500
    r = await client.post(f"{BASE}/{J}/results/records", data=f'{{"a":{deep}}}', headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["type"] == "x_content_parse_exception"


async def test_interim_results_are_replaced_by_final_ones(client):
    analysis = {"bucket_span": "60s", "detectors": [{"function": "count"}]}
    await make_job(client, analysis=analysis)
    await post(client, [{"time": t} for t in (0, 1, 61)])
    r = await client.post(f"{BASE}/{J}/_flush", params={"calc_interim": "true"})
    assert await r.json() == {"flushed": True, "last_finalized_bucket_end": 60000}
    _, body = await get(client, "buckets")
    assert [(b["timestamp"], b["is_interim"]) for b in body["buckets"]] == [(0, False), (60000, True)]
    _, body = await get(client, "buckets", params={"exclude_interim": "true"})
    assert body["count"] == 1
    await post(client, [{"time": 125}])
    _, body = await get(client, "buckets")
    assert [(b["timestamp"], b["is_interim"], b["event_count"]) for b in body["buckets"]] == \
        [(0, False, 2), (60000, False, 1)]


# -- lifecycle ------------------------------------------------------------------------------------


async def test_close_and_reopen_continue_the_model(aiohttp_client, settings, tmp_path):
    """A series cut by a close, a restart and a reopen yields the same records as in one go."""
    from anomalyd.app import create_app

    docs = steady_then_spike(24 * 12, spike_at=24 * 11)
    cut = len(docs) // 2 + 1  # mid-bucket: the open bucket must survive the close too
    whole = await aiohttp_client(create_app(settings))
    await make_job(whole)
    await post(whole, docs)
    _, expected = await get(whole, "records", params={"size": "1000", "sort": "timestamp"})

    settings2 = type(settings)(data_dir=tmp_path / "other", commit_interval=0.0)
    first = await aiohttp_client(create_app(settings2))
    await make_job(first)
    await post(first, docs[:cut])
    assert (await first.post(f"{BASE}/{J}/_close")).status == 200
    await first.close()
    second = await aiohttp_client(create_app(settings2))
    assert (await second.post(f"{BASE}/{J}/_open")).status == 200
    await post(second, docs[cut:])
    _, got = await get(second, "records", params={"size": "1000", "sort": "timestamp"})
    assert got == expected
    assert got["count"] >= 1


async def test_an_unchanged_model_is_not_stored_again(aiohttp_client, settings, monkeypatch):
    """A close, a periodic snapshot or a shutdown stores the model only when something may have
    changed it since it was stored or restored: a restart rewrites no idle job's model."""
    from anomalyd.app import create_app
    from anomalyd.keys import REGISTRY
    from anomalyd.store import Store

    stored: list[str] = []
    save_model = Store.save_model

    def counted(self, job_id, pieces, stats):
        stored.append(job_id)
        return save_model(self, job_id, pieces, stats)

    monkeypatch.setattr(Store, "save_model", counted)
    docs = steady_then_spike(48)
    client = await aiohttp_client(create_app(settings))
    registry = client.server.app[REGISTRY]

    async def cycle(change, expect_store: bool) -> None:
        assert (await client.post(f"{BASE}/{J}/_open")).status == 200
        await change()
        engine = registry.get(J).actor.engine
        live = b"".join(engine.model_snapshot(1 << 30))
        before = len(stored)
        assert (await client.post(f"{BASE}/{J}/_close")).status == 200
        assert len(stored) - before == expect_store, change.__name__
        assert b"".join(await registry.store.load_model(J)) == live, change.__name__

    async def nothing(): pass
    async def records(): await post(client, docs[24:])
    async def only_out_of_order(): assert (await post(client, docs[:4]))["out_of_order_timestamp_count"] == 4
    async def interim(): assert (await client.post(f"{BASE}/{J}/_flush", params={"calc_interim": "true"})).status == 200
    async def advance(): assert (await client.post(f"{BASE}/{J}/_flush", params={"advance_time": "1403700000"})).status == 200

    await make_job(client, open_=False)
    await cycle(nothing, True)  # the first close stores the (empty) model
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    await post(client, docs[:24])
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    for change, expect in ((nothing, False), (records, True), (only_out_of_order, False), (interim, False),
                           (advance, True), (nothing, False)):
        await cycle(change, expect)
    # A new memory limit: the same model, the new figures stored with it.
    r = await client.post(f"{BASE}/{J}/_update", json={"analysis_limits": {"model_memory_limit": "20mb"}})
    assert r.status == 200, await r.text()
    await cycle(nothing, False)
    assert (await registry.store.load_model_stats(J))["model_bytes_memory_limit"] == 20 * 1024 * 1024
    # A restart with the job open: the shutdown stores nothing unchanged either.
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    before = len(stored)
    await client.close()
    assert len(stored) == before
    again = await aiohttp_client(create_app(settings))
    job = (await (await again.get(f"{BASE}/{J}/_stats")).json())["jobs"][0]
    assert job["state"] == "opened" and job["data_counts"]["processed_record_count"] == len(docs)


async def test_stats_report_model_size_and_timing(client):
    await spiked_job(client)
    r = await client.get(f"{BASE}/{J}/_stats")
    job = (await r.json())["jobs"][0]
    assert job["model_size_stats"]["model_bytes"] > 0
    assert job["model_size_stats"]["total_by_field_count"] == 2
    assert job["model_size_stats"]["memory_status"] == "ok"
    assert job["timing_stats"]["bucket_count"] == 24 * 12
    assert job["timing_stats"]["maximum_bucket_processing_time_ms"] >= 0
    # Elasticsearch's order of the figures (`post-data.md` §10)
    assert list(job["timing_stats"]) == ["job_id", "bucket_count", "total_bucket_processing_time_ms",
                                         "minimum_bucket_processing_time_ms", "maximum_bucket_processing_time_ms",
                                         "average_bucket_processing_time_ms",
                                         "exponential_average_bucket_processing_time_ms",
                                         "exponential_average_bucket_processing_time_per_hour_ms"]
    # 24 hours of data: the hourly average blends the last hours' bucket times, so it is positive
    assert job["timing_stats"]["exponential_average_bucket_processing_time_per_hour_ms"] > 0
    assert list(job["model_size_stats"])[:7] == ["job_id", "result_type", "model_bytes", "peak_model_bytes",
                                                 "model_bytes_exceeded", "model_bytes_memory_limit",
                                                 "total_by_field_count"]
    assert (await client.post(f"{BASE}/{J}/_close")).status == 200
    closed = (await (await client.get(f"{BASE}/{J}/_stats")).json())["jobs"][0]
    assert closed["model_size_stats"]["model_bytes"] > 0
    assert closed["timing_stats"]["bucket_count"] == 24 * 12
    # the hourly average survives the close (kept with the model snapshot)
    assert (closed["timing_stats"]["exponential_average_bucket_processing_time_per_hour_ms"]
            == job["timing_stats"]["exponential_average_bucket_processing_time_per_hour_ms"])


async def test_never_fed_job_has_zero_timing(client):
    await make_job(client)
    job = (await (await client.get(f"{BASE}/{J}/_stats")).json())["jobs"][0]
    assert job["timing_stats"] == {"job_id": J, "bucket_count": 0, "total_bucket_processing_time_ms": 0.0}


async def test_delete_removes_results(client):
    await spiked_job(client)
    assert (await client.delete(f"{BASE}/{J}", params={"force": "true"})).status == 200
    await make_job(client)
    _, body = await get(client, "buckets")
    assert body == {"count": 0, "buckets": []}


async def test_unsupported_functions_are_refused_at_creation(client):
    for detector, word in (({"function": "rare", "by_field_name": "airline"}, "Function [rare]"),
                           ({"function": "dc", "field_name": "airline"}, "Function [distinct_count]"),
                           ({"function": "count", "over_field_name": "airline"}, "over_field_name"),
                           ({"function": "count", "custom_rules": [{"actions": ["skip_result"],
                             "conditions": [{"applies_to": "actual", "operator": "lt", "value": 1}]}]}, "custom_rules")):
        body = dict(POST_DATA_JOB, job_id="unsupported", analysis_config={"bucket_span": "1h", "detectors": [detector]})
        r = await client.put(f"{BASE}/unsupported", json=body)
        assert r.status == 400, detector
        error = (await r.json())["error"]
        assert error["type"] == "illegal_argument_exception" and word in error["reason"], error


async def test_model_is_snapshotted_periodically(aiohttp_client, tmp_path):
    """With --snapshot-interval 0 every request leaves a snapshot: a crash loses no model."""
    import sqlite3

    from anomalyd.app import create_app
    from anomalyd.settings import Settings

    settings = Settings(data_dir=tmp_path / "snap", commit_interval=0.0, snapshot_interval=0.0)
    client = await aiohttp_client(create_app(settings))
    await make_job(client)
    await post(client, steady_then_spike(30))
    await get(client, "buckets")  # a read through the store: everything queued before it is written
    db = sqlite3.connect(settings.data_dir / "anomalyd.sqlite3")
    try:
        (size,) = db.execute("SELECT length(snapshot) FROM models WHERE job_id = ?", (J,)).fetchone()
    finally:
        db.close()
    assert size > 1000


@pytest.mark.parametrize("params, events", [
    ({"reset_start": "60", "reset_end": "120"}, [2, 1, 0]),
    # an end equal to the start, empty or absent is the start plus one second (`post-data.md` §7)
    ({"reset_start": "60", "reset_end": "60"}, [2, 1, 0]),
    ({"reset_start": "60", "reset_end": ""}, [2, 1, 0]),
    ({"reset_start": "60"}, [2, 1, 0]),
    # an end without a start resets nothing
    ({"reset_end": "120"}, [2, 3, 0]),
])
async def test_reset_range_clears_open_buckets(client, params, events):
    analysis = {"bucket_span": "60s", "latency": "120s", "detectors": [{"function": "count"}]}
    await make_job(client, analysis=analysis)
    await post(client, [{"time": t} for t in (0, 1, 61, 62)])
    r = await client.post(f"{BASE}/{J}/_data", params=params, data=b'{"time":63}{"time":300}', headers=ND)
    assert r.status == 202
    assert (await r.json())["processed_record_count"] == 2  # counts are never rolled back
    _, body = await get(client, "buckets")
    assert [b["event_count"] for b in body["buckets"]] == events


def test_interim_delete_uses_its_own_index():
    """Every results write first deletes the job's interim rows: that must not scan the job's
    results (it did, and cost ~20 ms per write at 200k results)."""
    import sqlite3

    from anomalyd.results import DELETE_INTERIM
    from anomalyd.store import _SCHEMA

    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    plan = " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {DELETE_INTERIM}", ("j",)))
    assert "USING INDEX results_interim" in plan, plan


async def test_results_take_pretty_and_filter_path(client):
    """The common response parameters apply to results as to every answer (clients send
    `filter_path` with results all the time)."""
    await spiked_job(client)
    status, body = await get(client, "records", params={"filter_path": "count,records.record_score", "size": "2"})
    assert status == 200 and set(body) == {"count", "records"} and all(list(r) == ["record_score"] for r in body["records"])
    r = await client.get(f"{BASE}/{J}/results/buckets", params={"pretty": "true", "size": "1"})
    text = await r.text()
    assert text.startswith('{\n  "count" : ') and (await r.json())["count"] > 0
