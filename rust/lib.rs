//! `anomalyd._native`: the Python binding of the native core.
//!
//! Python hands over body chunks (zero-copy for `bytes`) and gets back
//! finished JSON; it never sees an individual record. Scanning releases the GIL for chunks big
//! enough to be worth it, and the actor feeds those on worker threads, so two jobs can use two
//! cores.

// Negated float comparisons (`!(x > 0.0)`) are deliberate throughout: they are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Every unsafe operation gets its own block, inside unsafe functions too, with a SAFETY note
// (the vector instances' bodies share the contract written once in `arch/vector.rs`).
#![deny(unsafe_op_in_unsafe_fn)]

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

pub mod analysis;
pub mod arch;
pub mod config;
pub mod ingest;
pub mod javanum;
pub mod time;

use ingest::stream::StreamError;

create_exception!(anomalyd._native, MalformedInputError, PyValueError, "Too many parse errors, or the body ended inside a document.");
create_exception!(anomalyd._native, DocumentTooLargeError, PyValueError, "One JSON document exceeds the configured size limit.");

/// Chunks smaller than this are scanned without releasing the GIL: the hand-off would cost
/// more than it frees.
const DETACH_MIN_BYTES: usize = 16 * 1024;

fn stream_error(e: StreamError) -> PyErr {
    match e {
        StreamError::Malformed => MalformedInputError::new_err("The input JSON data is malformed."),
        StreamError::DocumentTooLarge { limit } => DocumentTooLargeError::new_err(format!(
            "A document in the input is larger than the limit of [{limit}] bytes."
        )),
    }
}

/// One open job's engine: its ingest (body chunks in, DataCounts out) and the analysis the
/// records feed.
///
/// Large chunks of a body are fed on worker threads with the GIL released (see the actor), so
/// that several jobs use several cores, while the event loop may read the job's totals at the
/// same time (`_stats`, `/metrics`, the group commit). The engine therefore sits behind a
/// mutex rather than PyO3's borrow flag, which would make such a read fail: a read that meets
/// a chunk in progress waits for it (with the GIL released). The job's actor still serialises
/// every call that changes the engine, so the mutex is almost never contended.
///
/// A model snapshot holds the engine for as long as serialising the models takes (about a
/// second per 200k series), on a worker thread while the actor holds the job: the reads from
/// the event loop are then answered from figures rendered as the snapshot began (`frozen`),
/// which are exact, since nothing changes the job meanwhile, so the loop never waits for it.
#[pyclass(module = "anomalyd._native", name = "JobEngine", frozen)]
struct PyJobEngine {
    state: Mutex<EngineState>,
    frozen: Mutex<Option<Frozen>>,
    job_id: String,
    bucket_span_ms: i64,
}

/// Ends a snapshot's frozen figures when dropped.
struct Thaw<'a>(&'a PyJobEngine);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        *self.0.frozen() = None;
    }
}

/// The figures the event loop reads, as they were when a snapshot began.
struct Frozen {
    stats: String,
    saved: String,
    analysis_stats: String,
}

struct EngineState {
    inner: ingest::JobEngine,
    /// The last response, kept so that its buffer is reused (no allocation per request).
    response: String,
}

/// A body chunk the engine can read without the GIL: `bytes` in place (immutable), anything
/// else copied (a buffer's owner may change it while the GIL is released, even through a
/// read-only view). aiohttp hands over `bytes`.
enum Chunk<'py> {
    Bytes(Bound<'py, PyBytes>),
    Copy(Vec<u8>),
}

impl<'py> Chunk<'py> {
    fn of(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        match data.cast::<PyBytes>() {
            Ok(b) => Ok(Chunk::Bytes(b.clone())),
            Err(_) => Ok(Chunk::Copy(PyBuffer::<u8>::get(data)?.to_vec(data.py())?)),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Bytes(b) => b.as_bytes(),
            Chunk::Copy(v) => v,
        }
    }
}

impl PyJobEngine {
    /// The engine, for a call holding the GIL. Uncontended (every call but a read that meets a
    /// worker's chunk): one atomic operation. Otherwise wait with the GIL released, so that the
    /// worker, which needs the GIL to return, can finish.
    fn engine(&self, py: Python<'_>) -> MutexGuard<'_, EngineState> {
        loop {
            match self.state.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.state.lock())),
            }
        }
    }

    /// The figures frozen while a snapshot is taken (None otherwise).
    fn frozen(&self) -> MutexGuard<'_, Option<Frozen>> {
        self.frozen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The engine, for a call that has released the GIL.
    fn engine_detached(&self) -> MutexGuard<'_, EngineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feed chunks in order; the GIL is released when they are large enough to be worth it.
    /// The engine is locked per chunk, so that a read of the totals meanwhile waits for one
    /// chunk at most (the actor lets no other change in between).
    fn feed_chunks(&self, py: Python<'_>, chunks: &[Chunk<'_>]) -> PyResult<()> {
        // Plain slices: the Python objects that own them cannot go where the GIL is released.
        let slices: Vec<&[u8]> = chunks.iter().map(Chunk::bytes).collect();
        let r = if slices.iter().map(|s| s.len()).sum::<usize>() >= DETACH_MIN_BYTES {
            py.detach(|| slices.iter().try_for_each(|s| self.engine_detached().inner.feed(s)))
        } else {
            let mut state = self.engine(py);
            slices.iter().try_for_each(|s| state.inner.feed(s))
        };
        r.map_err(stream_error)
    }
}

#[pymethods]
impl PyJobEngine {
    /// `config`: the job's JSON; `data_counts`: its persisted lifetime totals (JSON). ValueError
    /// when either does not read.
    #[new]
    #[pyo3(signature = (config, data_counts=None, max_document_bytes=ingest::DEFAULT_MAX_DOCUMENT))]
    fn new(config: &str, data_counts: Option<&str>, max_document_bytes: usize) -> PyResult<Self> {
        let spec = config::JobSpec::from_json(config).map_err(PyValueError::new_err)?;
        let totals = match data_counts {
            Some(t) => Some(ingest::counts::DataCounts::from_json(t).map_err(PyValueError::new_err)?),
            None => None,
        };
        let inner = ingest::JobEngine::open(spec, totals, max_document_bytes.max(1));
        let (job_id, bucket_span_ms) = (inner.job_id.clone(), inner.bucket_span_ms());
        let state = Mutex::new(EngineState { inner, response: String::new() });
        Ok(PyJobEngine { state, frozen: Mutex::new(None), job_id, bucket_span_ms })
    }

    /// Start a request; `body_bytes`, the body's size when known (Content-Length): a document
    /// may be as large as the larger of it and `max_document_bytes`; `smile`: a SMILE body
    /// (whose documents `max_document_bytes` bounds).
    #[pyo3(signature = (body_bytes=None, smile=false))]
    fn start_request(&self, py: Python<'_>, body_bytes: Option<usize>, smile: bool) {
        self.engine(py).inner.start_body(body_bytes, smile);
    }

    /// Feed the next chunk of the body. Raises MalformedInputError or DocumentTooLargeError
    /// (the request stays open: `abort_request` ends it).
    fn feed(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.feed_chunks(py, &[Chunk::of(data)?])
    }

    /// Feed the next chunks of the body, in order, in one call (one hand-off to a worker
    /// thread for all the chunks that arrived while the previous ones were being read).
    fn feed_many(&self, py: Python<'_>, chunks: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        let chunks = chunks.iter().map(Chunk::of).collect::<PyResult<Vec<_>>>()?;
        self.feed_chunks(py, &chunks)
    }

    /// A body that has fully arrived, in one call: start, feed, finish. Returns the
    /// per-request DataCounts as JSON; on a malformed body the request is aborted (what was
    /// read stays in the totals) and the error raised, as `finish_request` does. `sized`: the
    /// body came with its size (Content-Length), so it may be one document; `smile`: it is
    /// SMILE (`start_request`).
    #[pyo3(signature = (data, now_ms, sized=false, smile=false))]
    fn ingest_body<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>, now_ms: i64, sized: bool, smile: bool) -> PyResult<Bound<'py, PyBytes>> {
        let chunk = Chunk::of(data)?;
        let body = chunk.bytes();
        let run = |state: &mut EngineState| {
            let EngineState { inner, response } = state;
            inner.start_body(sized.then_some(body.len()), smile);
            let fed = inner.feed(body);
            if fed.is_err() {
                inner.abort_request();
            }
            fed.and_then(|()| inner.finish_request_into(now_ms, response))
        };
        if body.len() >= DETACH_MIN_BYTES {
            let answer = py.detach(|| {
                let mut state = self.engine_detached();
                run(&mut state).map(|()| state.response.as_bytes().to_vec())
            });
            return Ok(PyBytes::new(py, &answer.map_err(stream_error)?));
        }
        let mut state = self.engine(py);
        run(&mut state).map_err(stream_error)?;
        Ok(PyBytes::new(py, state.response.as_bytes()))
    }

    /// End of body: the per-request DataCounts as JSON. Raises MalformedInputError or
    /// DocumentTooLargeError after aborting the request (what was read stays in the totals).
    fn finish_request<'py>(&self, py: Python<'py>, now_ms: i64) -> PyResult<Bound<'py, PyBytes>> {
        let mut state = self.engine(py);
        let EngineState { inner, response } = &mut *state;
        inner.finish_request_into(now_ms, response).map_err(stream_error)?;
        Ok(PyBytes::new(py, response.as_bytes()))
    }

    /// The request failed: what was read stays in the lifetime totals.
    fn abort_request(&self, py: Python<'_>) {
        self.engine(py).inner.abort_request();
    }

    /// Live lifetime totals as `_stats` shows them for an open job.
    fn stats_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        if let Some(f) = self.frozen().as_ref() {
            return PyBytes::new(py, f.stats.as_bytes());
        }
        PyBytes::new(py, self.engine(py).inner.stats_json().as_bytes())
    }

    /// Lifetime totals to persist now, stamped with `log_time`.
    fn persist_json<'py>(&self, py: Python<'py>, log_time_ms: i64) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.engine(py).inner.persist_json(log_time_ms).as_bytes())
    }

    /// Stamp the totals as they are now (failed requests included) as the ones to persist.
    fn stamp(&self, py: Python<'_>, log_time_ms: i64) {
        self.engine(py).inner.stamp(log_time_ms);
    }

    /// The totals stamped at the end of the last successful request (or the last `stamp` or
    /// `persist_json`): what the group commit writes.
    fn saved_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        if let Some(f) = self.frozen().as_ref() {
            return PyBytes::new(py, f.saved.as_bytes());
        }
        PyBytes::new(py, self.engine(py).inner.saved_json().as_bytes())
    }

    /// `_flush`: skip, advance, interim results; the new `last_finalized_bucket_end` (ms).
    #[pyo3(signature = (calc_interim=false, start=None, end=None, advance_time=None, skip_time=None))]
    fn flush(&self, py: Python<'_>, calc_interim: bool, start: Option<i64>, end: Option<i64>, advance_time: Option<i64>, skip_time: Option<i64>) -> Option<i64> {
        let r = analysis::FlushRequest { calc_interim, start_ms: start, end_ms: end, advance_time_ms: advance_time, skip_time_ms: skip_time };
        self.engine(py).inner.analysis_mut().flush(r)
    }

    /// Forget what the open buckets in [start, end) gathered (`reset_start`/`reset_end`).
    fn reset_buckets(&self, py: Python<'_>, start: i64, end: i64) {
        self.engine(py).inner.analysis_mut().reset_buckets(start, end);
    }

    /// Results made since the last call: (result_type, timestamp, score, is_interim, JSON).
    fn take_results(&self, py: Python<'_>) -> Vec<(&'static str, i64, f64, bool, String)> {
        let rows = self.engine(py).inner.analysis_mut().take_results();
        rows.into_iter().map(|r| (r.result_type, r.timestamp, r.score, r.is_interim, r.doc)).collect()
    }

    /// The analysis state (models, open buckets, normalisers) as an opaque snapshot, cut into
    /// pieces of at most `piece_bytes` (as the store keeps it; ValueError when 0).
    fn model_snapshot<'py>(&self, py: Python<'py>, piece_bytes: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        if piece_bytes == 0 {
            return Err(PyValueError::new_err("piece_bytes must be positive"));
        }
        let state = self.engine(py);
        let i = &state.inner;
        let figures = Frozen { stats: i.stats_json(), saved: i.saved_json(), analysis_stats: i.analysis().stats_json() };
        *self.frozen() = Some(figures);
        drop(state);
        let thaw = Thaw(self); // even if serialising panics
        let bytes = py.detach(|| self.engine_detached().inner.analysis().snapshot());
        drop(thaw);
        // A new bytes object is private to this call until it returns, so it is filled with
        // the GIL released; only its allocation (zeroed, page faults and all) holds the GIL,
        // one piece at a time, so the event loop waits a few ms at most, not the whole model.
        let piece = |part: &[u8]| {
            PyBytes::new_with(py, part.len(), |out| {
                py.detach(|| out.copy_from_slice(part));
                Ok(())
            })
        };
        // Never empty: a snapshot begins with its format version.
        bytes.chunks(piece_bytes).map(piece).collect()
    }

    /// Free the models and open buckets (the job has closed and its snapshot is stored) with
    /// the GIL released: a large model takes a tenth of a second per 200k series to free,
    /// which the event loop would otherwise wait for when the closed job's engine goes.
    fn discard_model(&self, py: Python<'_>) {
        py.detach(|| self.engine_detached().inner.analysis_mut().discard());
    }

    /// Continue from a snapshot of this job, stored as consecutive pieces; ValueError if it
    /// does not fit the configuration. The pieces are joined and read with the GIL released
    /// (a large model takes seconds to read, and a join under the GIL would stall the loop).
    fn restore_model(&self, py: Python<'_>, pieces: Vec<PyBackedBytes>) -> PyResult<()> {
        py.detach(|| {
            let joined: Vec<u8>;
            let snapshot: &[u8] = match pieces.as_slice() {
                [one] => one,
                many => {
                    let mut all = Vec::with_capacity(many.iter().map(|p| p.len()).sum());
                    for p in many {
                        all.extend_from_slice(p);
                    }
                    joined = all;
                    &joined
                }
            };
            self.engine_detached().inner.analysis_mut().restore(snapshot)
        })
        .map_err(PyValueError::new_err)
    }

    /// Model size and timing figures for `_stats`, as JSON.
    fn analysis_stats_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        if let Some(f) = self.frozen().as_ref() {
            return PyBytes::new(py, f.analysis_stats.as_bytes());
        }
        PyBytes::new(py, self.engine(py).inner.analysis().stats_json().as_bytes())
    }

    #[getter]
    fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The job's latest processed record time (epoch ms).
    #[getter]
    fn latest_record_ms(&self, py: Python<'_>) -> Option<i64> {
        self.engine(py).inner.latest_record_ms()
    }

    #[getter]
    fn bucket_span_ms(&self) -> i64 {
        self.bucket_span_ms
    }

    /// Moves whenever the analysis state may have changed: equal values, equal snapshots.
    #[getter]
    fn model_changes(&self, py: Python<'_>) -> u64 {
        self.engine(py).inner.analysis().changes()
    }
}

/// Raise `ValueError("Invalid Time format string '<fmt>'")` unless `fmt` is usable.
#[pyfunction]
fn validate_time_format(fmt: &str) -> PyResult<()> {
    time::TimeFormat::compile(fmt).map(|_| ()).map_err(PyValueError::new_err)
}

/// `now`, epoch seconds (<= 10 chars) or ms (with up to six fractional digits), or ISO-8601
/// (`strict_date_optional_time`), in epoch ms; None when unparseable or negative.
#[pyfunction]
fn parse_date_param(text: &str, now_ms: i64) -> Option<i64> {
    time::parse_date_param(text, now_ms)
}

/// The JSON text of a SMILE body: as the engine reads a `_data` body (every root value, a line
/// each), or with `max_document` as Elasticsearch reads another API's (the first root value,
/// empty when there is none; DocumentTooLargeError past that many bytes of JSON). ValueError
/// when it is not well-formed SMILE.
#[pyfunction]
#[pyo3(signature = (body, max_document=None))]
fn smile_to_json<'py>(py: Python<'py>, body: &[u8], max_document: Option<usize>) -> PyResult<Bound<'py, PyBytes>> {
    use ingest::smile::{body_to_json, document_to_json, SmileError};
    let json = match max_document {
        Some(limit) => document_to_json(body, limit).map(Option::unwrap_or_default),
        None => body_to_json(body),
    };
    match json {
        Ok(json) => Ok(PyBytes::new(py, &json)),
        Err(SmileError::TooLarge) => Err(DocumentTooLargeError::new_err("the SMILE document's JSON text is too large")),
        Err(SmileError::Malformed) => Err(PyValueError::new_err("malformed SMILE")),
    }
}

/// The SIMD level in use: scalar, sse2, avx2 or neon.
#[pyfunction]
fn simd_level() -> &'static str {
    arch::level().name()
}

/// Force a SIMD level (tests, benchmarks). False if this CPU lacks it.
#[pyfunction]
fn set_simd_level(name: &str) -> bool {
    arch::supported_levels().into_iter().find(|l| l.name() == name).is_some_and(arch::set_level)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJobEngine>()?;
    m.add("MalformedInputError", m.py().get_type::<MalformedInputError>())?;
    m.add("DocumentTooLargeError", m.py().get_type::<DocumentTooLargeError>())?;
    // What a Rust panic becomes in Python: a BaseException, so the route envelope names it.
    m.add("PanicException", m.py().get_type::<pyo3::panic::PanicException>())?;
    m.add_function(wrap_pyfunction!(validate_time_format, m)?)?;
    m.add_function(wrap_pyfunction!(parse_date_param, m)?)?;
    m.add_function(wrap_pyfunction!(smile_to_json, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd_level, m)?)?;
    m.add("DEFAULT_MAX_DOCUMENT_BYTES", ingest::DEFAULT_MAX_DOCUMENT)?;
    m.add("SUPPORTED_FUNCTIONS", analysis::detector::SUPPORTED_FUNCTIONS.to_vec())?;
    Ok(())
}
