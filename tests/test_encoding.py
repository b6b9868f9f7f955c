"""Request bodies' Content-Encoding (encoding.py): every gzip and deflate framing clients send,
decoded the same in any chunking (down to one byte), and every broken or unsupported body
refused in Elasticsearch's envelope with what was read before it kept."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import zlib
from collections.abc import Iterator

import pytest

from anomalyd import encoding
from anomalyd.encoding import PIECE_BYTES, BodyDecoder
from anomalyd.errors import UnreadableBody
from conftest import POST_DATA_JOB

BASE = "/_ml/anomaly_detectors"
J = POST_DATA_JOB["job_id"]
DATA = f"{BASE}/{J}/_data"
NDJSON = {"Content-Type": "application/x-ndjson"}
CUT_SHORT = "the body ends inside its compressed data"
TRAILING = "data follows the end of its compressed data"
CORRUPT = "the compressed data is corrupt"


def rec(t: int) -> bytes:
    return b'{"airline":"AAL","responsetime":100.0,"time":%d}\n' % t


LINES = b"".join(rec(1403481600 + k) for k in range(40))
#: Inflates to several pieces from a few kilobytes: one input byte can yield more than a piece.
BIG = b"".join(rec(1403481600 + k % 7) for k in range(40_000))


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


def unfinished_gzip(data: bytes) -> bytes:
    """gzip of `data` flushed to a byte boundary but never finished (no last block, no trailer)."""
    packer = zlib.compressobj(wbits=31)
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


def decoded(coding: str, pieces: list[bytes]) -> bytes | str:
    """The decoded body, or the reason it was refused; every piece handed on is bounded."""
    decoder = BodyDecoder(coding)
    out = []
    try:
        for piece in pieces:
            for part in decoder.decode(piece):
                assert 0 < len(part) <= PIECE_BYTES
                out.append(part)
        decoder.finish()
    except UnreadableBody as e:
        prefix = f"Failed to read the request body: Can not decode content-encoding: {coding}: "
        assert e.status == 400 and e.type == "parse_exception" and e.reason.startswith(prefix)
        return e.reason[len(prefix):]
    return b"".join(out)


def chunkings(wire: bytes, rng: random.Random) -> Iterator[list[bytes]]:
    yield [wire]
    yield [wire[i:i + 1] for i in range(len(wire))]
    for _ in range(6):
        pieces, at = [], 0
        while at < len(wire):
            n = rng.randint(1, max(1, len(wire) // rng.choice((3, 20, 200))))
            pieces.append(wire[at:at + n])
            at += n
        yield pieces


GZ = gzip.compress(BIG)
ZZ = zlib.compress(BIG)
CASES = {  # name: (coding, wire, the decoded body or the reason it is refused)
    "gzip": ("gzip", GZ, BIG),
    "gzip members and gzip(1)'s zero padding": ("gzip", gzip.compress(BIG[:999]) + gzip.compress(BIG[999:]) + b"\0" * 9, BIG),
    "x-gzip": ("x-gzip", gzip.compress(LINES), LINES),
    "zlib deflate": ("deflate", ZZ, BIG),
    "raw deflate": ("deflate", raw_deflate(BIG), BIG),
    "x-deflate": ("x-deflate", zlib.compress(LINES), LINES),
    "no bytes": ("gzip", b"", b""),
    "gzip of nothing": ("gzip", gzip.compress(b""), b""),
    "gzip cut in its header": ("gzip", GZ[:5], CUT_SHORT),
    "gzip cut in its data": ("gzip", GZ[:len(GZ) // 2], CUT_SHORT),
    "gzip cut in its trailer": ("gzip", GZ[:-3], CUT_SHORT),
    "gzip never finished": ("gzip", unfinished_gzip(LINES), CUT_SHORT),
    "deflate cut in its checksum": ("deflate", ZZ[:-1], CUT_SHORT),
    "gzip and junk": ("gzip", GZ + b"junk", TRAILING),
    "gzip, padding and another member": ("gzip", GZ + b"\0\0" + gzip.compress(LINES), TRAILING),
    "deflate and more": ("deflate", ZZ + b"\0", TRAILING),
    "not gzip": ("gzip", b"not compressed" + LINES, CORRUPT),
    "not deflate": ("deflate", b"not compressed" + LINES, CORRUPT),
    "gzip with a bad checksum": ("gzip", GZ[:-8] + bytes([GZ[-8] ^ 1]) + GZ[-7:], CORRUPT),
}


@pytest.mark.parametrize("name", CASES)
def test_decoding_is_the_same_in_any_chunking(name):
    """Differential: whole, byte by byte and in random pieces, the same body (as zlib's own
    one-shot decoding gives it) or the same refusal."""
    coding, wire, expected = CASES[name]
    rng = random.Random(name)
    for pieces in chunkings(wire, rng):
        assert decoded(coding, pieces) == expected, (name, [len(p) for p in pieces][:20])


def test_ISA_L_inflates_when_installed():
    assert encoding.BACKEND == "isal"


# -- over HTTP ---------------------------------------------------------------------------------


async def setup_job(client) -> None:
    assert (await client.put(f"{BASE}/{J}", json=POST_DATA_JOB)).status == 200
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200


async def processed(client) -> int:
    r = await client.get(f"{BASE}/{J}/_stats")
    return (await r.json())["jobs"][0]["data_counts"]["processed_record_count"]


@pytest.mark.parametrize("header, wire", [
    ("gzip", gzip.compress(LINES)),
    ("GZIP", gzip.compress(LINES)),
    (" x-gzip ", gzip.compress(LINES)),
    ("deflate", zlib.compress(LINES)),
    ("X-Deflate", raw_deflate(LINES)),
    ("identity", LINES),
])
async def test_every_coding_clients_send_is_read(client, header, wire):
    """input_bytes counts the decoded body (`post-data.md`); Content-Length and chunked alike."""
    await setup_job(client)
    for body in (wire, [wire[i:i + 100] for i in range(0, len(wire), 100)]):
        async def chunked(pieces=body):
            for piece in pieces:
                yield piece
        r = await client.post(DATA, data=body if isinstance(body, bytes) else chunked(),
                              headers={**NDJSON, "Content-Encoding": header})
        counts = await r.json()
        assert (r.status, counts["processed_record_count"], counts["input_bytes"]) == (202, 40, len(LINES))


@pytest.mark.parametrize("good, bad, reason, kept", [
    (unfinished_gzip(LINES), b"", CUT_SHORT, 40),
    (gzip.compress(LINES), b"\r\n", TRAILING, 40),
    (zlib.compress(LINES)[:-2], b"", CUT_SHORT, 40),
    (unfinished_gzip(LINES), b"\xff" * 64, CORRUPT, 40),
    (b"\x1f\x8b", b"\xff" * 64, CORRUPT, 0),
])
async def test_a_broken_body_is_400_and_keeps_what_was_read(client, good, bad, reason, kept):
    """Cut short, followed by junk, or corrupt: a 400 in the envelope (a 500 would make log
    shippers resend forever) that closes the connection; the records decoded before the fault
    stay counted, as for a client that disconnects, and the job stays usable. (The fault's own
    network read is not decoded: zlib keeps no output of a call that fails.)"""
    await setup_job(client)
    coding = "deflate" if good[:1] == b"x" else "gzip"
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 f"Content-Encoding: {coding}\r\nContent-Length: {len(good) + len(bad)}\r\n\r\n".encode() + good)
    await writer.drain()
    await asyncio.sleep(0.1)  # the good part is read on its own
    writer.write(bad)
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")  # the server closes the connection
    writer.close()
    expected = f"Failed to read the request body: Can not decode content-encoding: {coding}: {reason}"
    assert head.startswith(b"HTTP/1.1 400 ") and b"X-Elastic-Product: Elasticsearch" in head
    assert json.loads(body) == {"error": {"root_cause": [{"type": "parse_exception", "reason": expected}],
                                          "type": "parse_exception", "reason": expected}, "status": 400}
    assert await processed(client) == kept
    r = await client.post(DATA, data=rec(1403481700), headers=NDJSON)
    assert r.status == 202 and await processed(client) == kept + 1


@pytest.fixture(params=["one CPU", "every CPU"])
def cpus(request):
    """The server's usable CPUs (asked for before `client`): one, where bodies are read on the
    event loop, or all, where large ones are read on worker threads (app.py, actor.py)."""
    before = os.sched_getaffinity(0)
    if request.param == "one CPU":
        os.sched_setaffinity(0, {min(before)})
    yield
    os.sched_setaffinity(0, before)


async def test_everything_decoded_before_a_fault_is_read(cpus, client):
    """Megabytes inflated from one network read wait for the worker thread in a batch: when the
    body then turns out broken, they are read before the 400, as on one CPU."""
    await setup_job(client)
    lines = b"".join(rec(1403481600 + k // 100) for k in range(200_000))
    r = await client.post(DATA, data=gzip.compress(lines, 1) + b"junk", headers={**NDJSON, "Content-Encoding": "gzip"})
    assert r.status == 400 and (await r.json())["error"]["reason"].endswith(TRAILING)
    assert await processed(client) == 200_000


async def test_a_body_that_inflates_a_thousandfold_leaves_the_loop_free(cpus, client):
    """Each compressed read can inflate to hundreds of pieces: the loop serves others (and
    their read timeouts) between them, rather than once per read."""
    await setup_job(client)
    inflated = 128 << 20
    bomb = gzip.compress(b"\n" * inflated)
    turns = 0

    async def other_work():
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    r = await client.post(DATA, data=bomb, headers={**NDJSON, "Content-Encoding": "gzip"})
    other.cancel()
    assert r.status == 202 and (await r.json())["input_bytes"] == inflated
    assert turns >= inflated // PIECE_BYTES // 2


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, gzip", "gzip;q=1"])
async def test_an_unsupported_coding_is_415_before_anything_is_read(client, header):
    await setup_job(client)
    wire = gzip.compress(LINES)
    message = f"Content-Encoding header [{header}] is not supported: anomalyd decodes gzip and deflate"
    for path, headers in ((DATA, NDJSON), (f"{BASE}/other", {"Content-Type": "application/json"})):
        r = await client.post(path, data=wire, headers={**headers, "Content-Encoding": header}) if path == DATA \
            else await client.put(path, data=wire, headers={**headers, "Content-Encoding": header})
        assert (r.status, await r.json()) == (415, {"error": message, "status": 415})
    assert await processed(client) == 0
    r = await client.post(DATA, data=LINES, headers=NDJSON)
    assert r.status == 202 and await processed(client) == 40


async def test_an_unsupported_coding_is_refused_before_100_continue(client):
    """The client waiting for `100 Continue` is told at once, and never sends the body; the
    connection closes after the answer (what the client sends next may be that body or another
    request, which cannot be told apart)."""
    await setup_job(client)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"POST {DATA} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 "Content-Encoding: br\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 415 ") and b"X-Elastic-Product: Elasticsearch" in head
    assert b"Connection: close" in head
    await asyncio.wait_for(reader.read(), 10)  # the answer's body, then the end of the connection
    writer.close()


@pytest.mark.settings(max_content_length=1000)
async def test_request_bodies_of_every_api_are_decoded(client):
    """A job's config and a flush's parameters compressed as the official client's
    `http_compress` sends them; a broken one is a 400, and one that decodes to more than
    `--max-content-length` a 413 (as an oversized plain body)."""
    gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    config = gzip.compress(b'{"analysis_config":{"bucket_span":"1h","detectors":[{"function":"count"}]},'
                           b'"data_description":{"time_field":"time","time_format":"epoch"}}')
    r = await client.put(f"{BASE}/{J}", data=config, headers=gz)
    assert r.status == 200, await r.text()
    assert (await client.post(f"{BASE}/{J}/_open")).status == 200
    r = await client.post(f"{BASE}/{J}/_flush", data=zlib.compress(b'{"calc_interim":true}'),
                          headers={**gz, "Content-Encoding": "deflate"})
    assert (r.status, (await r.json())["flushed"]) == (200, True)
    r = await client.put(f"{BASE}/broken", data=config[:-4], headers=gz)
    assert (r.status, (await r.json())["error"]["reason"]) == \
        (400, f"Failed to read the request body: Can not decode content-encoding: gzip: {CUT_SHORT}")
    bomb = gzip.compress(b'{"description":"' + b" " * 5000 + b'"}')
    assert len(bomb) < 1000
    r = await client.put(f"{BASE}/bomb", data=bomb, headers=gz)
    assert (r.status, await r.read()) == (413, b"")
