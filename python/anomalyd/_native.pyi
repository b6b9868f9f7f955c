"""Type stub of the native core (`rust/lib.rs`)."""

from collections.abc import Sequence
from typing import Final

DEFAULT_MAX_DOCUMENT_BYTES: Final[int]
#: Detector functions the analysis engine implements (Elasticsearch names).
SUPPORTED_FUNCTIONS: Final[list[str]]

#: One result for the store: (result_type, timestamp ms, score, is_interim, JSON document).
ResultRow = tuple[str, int, float, bool, str]

class MalformedInputError(ValueError):
    """Too many parse errors, or the body ended inside a document."""

class PanicException(BaseException):
    """A Rust panic in the core (a bug): PyO3 raises it as a BaseException."""

class DocumentTooLargeError(ValueError):
    """One JSON document exceeds the configured size limit."""

class JobEngine:
    """One open job's engine: body chunks in, Elasticsearch-exact DataCounts out, and the
    analysis the records feed (results, snapshots). Thread-safe (a mutex inside): the actor
    feeds large chunks from worker threads."""

    def __init__(self, config: str, data_counts: str | None = None, max_document_bytes: int = ...) -> None:
        """`config`: the job's JSON; `data_counts`: its persisted lifetime totals (JSON).
        ValueError when either does not read."""
    def start_request(self, body_bytes: int | None = None, smile: bool = False) -> None:
        """Start a request; `body_bytes`, the body's size when known (Content-Length): a document
        may be as large as the larger of it and `max_document_bytes`; `smile`: a SMILE body
        (whose documents `max_document_bytes` bounds)."""
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk of the body (`bytes` zero-copy, other buffers copied; the GIL is
        released for large chunks). Raises MalformedInputError or DocumentTooLargeError (the
        request stays open: `abort_request` ends it). Benchmarks and tests; the actor feeds
        with `feed_many` or `ingest_body`."""
    def feed_many(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        """Feed the next chunks of the body, in order, in one call (for a worker thread: the
        GIL is released while they are read, and reads of the totals meanwhile wait). Raises
        as `feed` does."""
    def ingest_body(self, data: bytes | bytearray | memoryview, now_ms: int, sized: bool = False,
                    smile: bool = False) -> bytes:
        """A whole body in one call: the request's DataCounts as JSON. Raises MalformedInputError
        or DocumentTooLargeError after aborting the request (what was read stays in the totals).
        `sized`: the body came with a Content-Length, so it may be one document; `smile`: SMILE."""
    def finish_request(self, now_ms: int) -> bytes:
        """End of body: the request's DataCounts as JSON. Raises MalformedInputError or
        DocumentTooLargeError after aborting the request (what was read stays in the totals)."""
    def abort_request(self) -> None:
        """The request failed: what was read stays in the lifetime totals."""
    def stats_json(self) -> bytes:
        """Live lifetime totals as `_stats` shows them for an open job."""
    def persist_json(self, log_time_ms: int) -> bytes:
        """Lifetime totals to persist now, stamped with `log_time`."""
    def stamp(self, log_time_ms: int) -> None:
        """Stamp the totals as they are now (failed requests included) as the ones to persist."""
    def saved_json(self) -> bytes:
        """The totals stamped at the end of the last successful request (or the last `stamp`
        or `persist_json`): what the group commit writes."""
    def flush(self, calc_interim: bool = False, start: int | None = None, end: int | None = None,
              advance_time: int | None = None, skip_time: int | None = None) -> int | None:
        """`_flush`: skip, advance, interim results; the new last_finalized_bucket_end (ms)."""
    def reset_buckets(self, start: int, end: int) -> None:
        """Forget what the open buckets in [start, end) gathered."""
    def take_results(self) -> list[ResultRow]:
        """Results made since the last call, oldest first."""
    def model_snapshot(self, piece_bytes: int) -> list[bytes]:
        """The analysis state as an opaque snapshot, in pieces of at most `piece_bytes`
        (ValueError when 0)."""
    def discard_model(self) -> None:
        """Free the models and open buckets (the job has closed), with the GIL released."""
    def restore_model(self, pieces: Sequence[bytes]) -> None:
        """Continue from a snapshot stored as consecutive pieces; ValueError if it does not fit
        the configuration."""
    def analysis_stats_json(self) -> bytes:
        """model_bytes, model_bytes_memory_limit, model_bytes_exceeded, bucket_allocation_failures_count,
        memory_status, total_by_field_count, total_partition_field_count, series_count and timing_stats."""
    @property
    def job_id(self) -> str: ...
    @property
    def latest_record_ms(self) -> int | None:
        """The job's latest processed record time (epoch ms)."""
    @property
    def bucket_span_ms(self) -> int: ...
    @property
    def model_changes(self) -> int:
        """Moves whenever the analysis state may have changed (a record, a flush that moves
        something, a reset, a restore): equal values, equal snapshots."""

def validate_time_format(fmt: str) -> None:
    """Raise ValueError("Invalid Time format string '<fmt>'") unless `fmt` is usable."""

def parse_date_param(text: str, now_ms: int) -> int | None:
    """`now`, epoch seconds (<= 10 chars) or ms (with up to six fractional digits), or ISO-8601
    (`strict_date_optional_time`), in epoch ms; None when unparseable or negative."""

def smile_to_json(body: bytes, max_document: int | None = None) -> bytes:
    """The JSON text of a SMILE body: as the engine reads a `_data` body (every root value of every
    piece ending in 0xFF, a line each), or with `max_document` as Elasticsearch reads another
    API's (its first root value, empty when none; DocumentTooLargeError past that many bytes of
    JSON). ValueError when it is not well-formed."""

def simd_level() -> str:
    """The SIMD level in use: scalar, sse2, avx2 or neon."""

def set_simd_level(name: str) -> bool:
    """Force a SIMD level (tests and benchmarks); False if the CPU lacks it."""
