"""Result documents in the store: written as the engine makes them, read by the results API.

Rows arrive from the native engine already rendered (type, timestamp, score, interim flag,
JSON document), so writing is one ``executemany`` and reading concatenates stored documents
without parsing them. Writes are grouped across requests and jobs (:class:`ResultsWriter`); a
read first flushes what is pending, so it always sees every result made before it. Interim
results are replaced whenever newer results are written, as Elasticsearch deletes interim
results before persisting the next ones.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .store import GroupCommit, Store, transaction

if TYPE_CHECKING:
    from ._native import ResultRow

#: What breaks ties between records, after the sort field and the score (Elasticsearch's records
#: query).
RECORD_TIES = ("over_field_value", "partition_field_value", "by_field_value", "field_name", "function")
#: The score column each result type is filtered and sorted by.
SCORE_FIELD = {"bucket": "anomaly_score", "record": "record_score", "influencer": "influencer_score"}
_FIELD_RE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_@.\-]*")


#: Interim results are replaced by the next ones written (the `results_interim` index keeps
#: this from scanning the job's results).
DELETE_INTERIM = "DELETE FROM results WHERE job_id = ? AND is_interim = 1"


def _write_batches(store: Store, batches: list[tuple[str, list[ResultRow]]]) -> asyncio.Future[None]:
    def write(db: sqlite3.Connection) -> None:
        for job_id, rows in batches:
            db.execute(DELETE_INTERIM, (job_id,))
            db.executemany(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)",
                [(job_id, kind, ts, score, int(interim), doc) for kind, ts, score, interim, doc in rows],
            )

    return store.submit(lambda db: transaction(db, write))


class ResultsWriter(GroupCommit["list[ResultRow]"]):
    """Results of many requests and jobs, committed together."""

    def __init__(self, store: Store, interval: float) -> None:
        super().__init__(interval, lambda batch: _write_batches(store, batch))


@dataclass
class Query:
    result_type: str
    start: int | None = None
    end: int | None = None
    #: A bucket's time, matched as Elasticsearch matches a date: any time in [first, last] ms.
    timestamp: tuple[int, int] | None = None
    min_score: float = 0.0
    exclude_interim: bool = False
    sort: str = "timestamp"
    desc: bool = False
    offset: int = 0
    size: int = 100


def _order(q: Query) -> str:
    """ORDER BY as Elasticsearch's query builders sort, every key in the sort's direction with
    missing values last: the sort field (an array by its largest value descending, its smallest
    ascending), then records by score and by what tells a bucket's records apart, and buckets
    and influencers by time."""
    direction = "DESC" if q.desc else "ASC"
    score = SCORE_FIELD[q.result_type]

    def field(name: str) -> str:
        """A document field (dots are nested objects), an array by its largest or smallest value."""
        path = "'$." + ".".join(f'"{part}"' for part in name.split(".")) + "'"
        pick = "max" if q.desc else "min"
        return (f"(CASE json_type(doc, {path}) WHEN 'array' THEN (SELECT {pick}(value) FROM json_each(doc, {path})) "
                f"ELSE json_extract(doc, {path}) END)")

    keys = ["timestamp" if q.sort == "timestamp" else "score" if q.sort == score else field(q.sort)]
    if q.result_type == "record":
        # split values and names are strings, never arrays
        keys += ([] if q.sort == score else ["score"]) + [f"json_extract(doc, '$.{f}')" for f in RECORD_TIES]
    elif q.sort != "timestamp":
        keys.append("timestamp")
    return ", ".join(f"{k} {direction} NULLS LAST" for k in keys)


def valid_sort_field(name: str) -> bool:
    return bool(_FIELD_RE.fullmatch(name))


async def last_final_bucket(store: Store, writer: ResultsWriter, job_id: str) -> int | None:
    """The timestamp of the job's latest final bucket result stored (pending ones included)."""
    await writer.flush()

    def q(db: sqlite3.Connection) -> int | None:
        return db.execute("SELECT max(timestamp) FROM results WHERE job_id = ? AND result_type = 'bucket' "
                          "AND is_interim = 0", (job_id,)).fetchone()[0]

    return await store.submit(q)


async def search(store: Store, writer: ResultsWriter, job_id: str, q: Query) -> tuple[int, list[str]]:
    """The total number of matches and one page of their documents (pending results included)."""
    await writer.flush()
    where = ["job_id = ?", "result_type = ?"]
    args: list[object] = [job_id, q.result_type]
    if q.timestamp is not None:
        where.append("timestamp BETWEEN ? AND ?")
        args.extend(q.timestamp)
    if q.start is not None:
        where.append("timestamp >= ?")
        args.append(q.start)
    if q.end is not None:
        where.append("timestamp < ?")
        args.append(q.end)
    if q.min_score > 0:
        where.append("score >= ?")
        args.append(q.min_score)
    if q.exclude_interim:
        where.append("is_interim = 0")
    order = _order(q)
    clause = " AND ".join(where)

    def run(db: sqlite3.Connection) -> tuple[int, list[str]]:
        total = db.execute(f"SELECT count(*) FROM results WHERE {clause}", args).fetchone()[0]
        rows = db.execute(
            f"SELECT doc FROM results WHERE {clause} ORDER BY {order}, rowid LIMIT ? OFFSET ?", [*args, q.size, q.offset]
        ).fetchall()
        return total, [r[0] for r in rows]

    return await store.submit(run)
