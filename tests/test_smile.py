"""SMILE bodies (`post-data.md` §0: "SMILE is accepted as well"): read exactly as Jackson reads
them, which is what Elasticsearch does.

The vectors under `smile/vectors/` were written by Jackson itself (`smile/Gen.java`): each
`.smile` body beside the token stream Jackson reads back from it (`.json`). Over HTTP, a SMILE
body and that JSON text must give the same counts (but `input_bytes`, the SMILE body's size).
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from anomalyd._native import smile_to_json
from conftest import POST_DATA_JOB

VECTORS = Path(__file__).parent / "smile" / "vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.smile"))
BASE = "/_ml/anomaly_detectors"
J = POST_DATA_JOB["job_id"]
SMILE = {"Content-Type": "application/smile"}
MALFORMED = "The input JSON data is malformed."


def vector(name: str) -> tuple[bytes, bytes]:
    return (VECTORS / f"{name}.smile").read_bytes(), (VECTORS / f"{name}.json").read_bytes()


def as_float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_vector_reads_as_jackson_reads_it(name):
    """Every piece ends with a 0xFF (each document of a `separate` case, and every other case's
    end marker) but in `unterminated`, whose bytes Elasticsearch never reads."""
    body, want = vector(name)
    got = smile_to_json(body)
    if name == "not_finite":  # JSON has no bare NaN: the same text, quoted
        want = want.replace(b":NaN", b':"NaN"').replace(b":Infinity", b':"Infinity"').replace(b":-Infinity", b':"-Infinity"')
    if name != "floats":
        assert got == want
        return
    # A 32-bit float's text: today's Jackson gives Float.toString ("1.1"); the Jackson that
    # wrote the vectors widens it to a double first ("1.100000023841858"). Same value.
    got_values, want_values = json.loads(got)["f"], json.loads(want)["f"]
    assert [as_float32(v) for v in got_values] == [as_float32(v) for v in want_values]
    assert got.startswith(b'{"f":[1.1,0.001,1.0E-4,1234567.0,1.2345678E7,3.4028235E38,')


@pytest.mark.parametrize("piece", ["no header", "header only cut", "cut in a value", "cut before its end", "empty"])
def test_malformed_smile_is_refused(piece):
    body, _ = vector("farequote_runner")
    first = body[:body.index(b"\xff") + 1]
    wire = {"no header": first[4:], "header only cut": first[:3] + b"\xff", "cut in a value": first[:10] + b"\xff",
            "cut before its end": first[:-3] + b"\xff", "empty": b"\xff"}[piece]
    with pytest.raises(ValueError):
        smile_to_json(wire)
    assert smile_to_json(first + first[:-3]) == smile_to_json(first)  # an unterminated rest is not read


# -- over HTTP ---------------------------------------------------------------------------------


async def open_job(client, job_id: str = J) -> str:
    assert (await client.put(f"{BASE}/{job_id}", json={**POST_DATA_JOB, "job_id": job_id})).status == 200
    assert (await client.post(f"{BASE}/{job_id}/_open")).status == 200
    return f"{BASE}/{job_id}/_data"


def chunked(body: bytes, sizes: list[int]):
    async def pieces():
        at = 0
        for n in sizes:
            yield body[at:at + n]
            at += n
        yield body[at:]
    return pieces()


@pytest.mark.parametrize("content_type", ["application/smile", "application/vnd.elasticsearch+smile;compatible-with=8"])
async def test_the_java_runners_two_documents(client, content_type):
    """post_data.yml's first step as the Java runner may send it: two SMILE documents, each with
    its header, joined by 0xFF (wire-compat.md §7.7), counted as the test asserts."""
    data = await open_job(client)
    body, _ = vector("farequote_runner")
    r = await client.post(data, data=body, headers={"Content-Type": content_type})
    counts = await r.json()
    assert r.status == 202 and r.content_type == "application/json"
    assert (counts["processed_record_count"], counts["processed_field_count"], counts["input_bytes"]) == (2, 4, len(body))
    assert 140 <= counts["input_bytes"] <= 180


@pytest.mark.parametrize("name", ["farequote_runner", "one_stream", "shared_values", "shared_values_runner",
                                  "many_names", "no_shared_names", "arrays_at_root", "text", "numbers",
                                  "unterminated", "not_finite"])
async def test_smile_counts_as_the_same_documents_in_json(client, name):
    """Differential: the SMILE body, whole and in random chunkings down to one byte, counts
    exactly as the JSON text Jackson reads from it, input_bytes aside (the SMILE bytes)."""
    body, _ = vector(name)
    text = smile_to_json(body)  # Jackson's reading, as the test above pins it
    rng = random.Random(name)
    as_json = await (await client.post(await open_job(client, "json-twin"), data=text,
                                       headers={"Content-Type": "application/x-ndjson"})).json()
    chunkings = [[len(body)], [1] * len(body), [rng.randint(1, 40) for _ in range(len(body) // 20 + 1)]]
    for k, sizes in enumerate(chunkings):
        data = await open_job(client, f"smile-{k}")
        r = await client.post(data, data=chunked(body, sizes) if k else body, headers=SMILE)
        counts = await r.json()
        assert r.status == 202, counts
        assert counts.pop("input_bytes") == len(body)
        assert {k: v for k, v in counts.items() if k not in ("job_id", "last_data_time")} == \
            {k: v for k, v in as_json.items() if k not in ("job_id", "last_data_time", "input_bytes")}


async def test_a_malformed_document_fails_the_request_and_keeps_the_ones_before(client):
    data = await open_job(client)
    body, _ = vector("farequote_runner")
    first, second = body.split(b"\xff")[:2]
    for broken in (second[4:], second[:-3]):  # no header; cut short
        r = await client.post(data, data=first + b"\xff" + broken + b"\xff", headers=SMILE)
        assert (r.status, (await r.json())["error"]["reason"]) == (400, MALFORMED)
    r = await client.get(f"{BASE}/{J}/_stats")
    assert (await r.json())["jobs"][0]["data_counts"]["processed_record_count"] == 2  # the first, twice
    r = await client.post(data, data=body, headers=SMILE)
    assert r.status == 202


@pytest.mark.settings(max_document_bytes=100)
async def test_a_smile_document_is_bounded_by_the_document_limit(client):
    """A piece may be as large as the body when it came with its size (a client may stream its
    records through one generator: one piece), else as the document limit; each document's JSON
    text, whatever the framing, as the document limit (what a document expands to does not
    depend on the body's size). Either way the error names the limit."""
    data = await open_job(client)
    too_large = (400, "A document in the input is larger than the limit of [100] bytes.")
    several, _ = vector("one_stream")  # 6 records of about 45 bytes in one 284-byte piece
    r = await client.post(data, data=several, headers=SMILE)
    assert (r.status, (await r.json())["processed_record_count"]) == (202, 6)
    r = await client.post(data, data=chunked(several, [10] * (len(several) // 10)), headers=SMILE)
    assert (r.status, (await r.json())["error"]["reason"]) == too_large
    big_document, _ = vector("text")
    r = await client.post(data, data=big_document, headers=SMILE)
    assert (r.status, (await r.json())["error"]["reason"]) == too_large
    # 90 bytes of SMILE: an array of one 64-byte shared string, then 20 references to it
    expands = b":)\n\x02\xf8\x7f" + b"x" * 64 + b"\x01" * 20 + b"\xf9\xff"
    r = await client.post(data, data=expands, headers=SMILE)
    assert (r.status, (await r.json())["error"]["reason"]) == too_large


async def test_every_api_reads_a_smile_body(client):
    """A job's config in SMILE, as the Java runner may send any single body."""
    body, _ = vector("job_config")
    r = await client.put(f"{BASE}/smile-config", data=body, headers=SMILE)
    assert r.status == 200, await r.text()
    assert (await r.json())["description"] == "SMILE config"
    r = await client.put(f"{BASE}/broken", data=body[:-5], headers=SMILE)
    assert (r.status, (await r.json())["error"]["type"]) == (400, "x_content_parse_exception")
    # shared strings that expand past --max-content-length (100mb) of JSON: refused as a gzip
    # body that inflates past it is, without building it all
    bomb = b":)\n\x02\xfa\x80a\xf8\x7f" + b"x" * 64 + b"\x01" * 2_000_000 + b"\xf9\xfb\xff"
    r = await client.post(f"{BASE}/{J}/_close", data=bomb, headers=SMILE)
    assert (r.status, await r.read()) == (413, b"")
