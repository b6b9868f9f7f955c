"""The post_data.yml flow end to end in-process: the spec's numbers over a real socket."""

from conftest import POST_DATA_JOB

BODY = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}'
)


async def test_put_open_post_flush_close(client):
    j = "/_ml/anomaly_detectors/post-data-job"
    r = await client.put(j, json=POST_DATA_JOB)
    assert r.status == 200, await r.text()
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (await client.post(j + "/_open")).status == 200
    r = await client.post(j + "/_data", data=BODY, headers={"Content-Type": "application/x-ndjson"})
    assert r.status == 202
    counts = await r.json()
    assert list(counts)[:4] == ["job_id", "processed_record_count", "processed_field_count", "input_bytes"]
    assert (counts["input_bytes"], counts["processed_record_count"], counts["processed_field_count"],
            counts["input_field_count"], counts["bucket_count"]) == (177, 2, 4, 6, 0)
    r = await client.post(j + "/_flush")
    assert await r.json() == {"flushed": True, "last_finalized_bucket_end": 1403481600000}
    assert await (await client.post(j + "/_close")).json() == {"closed": True}
    stats = await (await client.get(j + "/_stats")).json()
    assert stats["jobs"][0]["state"] == "closed"
    assert stats["jobs"][0]["data_counts"]["processed_record_count"] == 2
