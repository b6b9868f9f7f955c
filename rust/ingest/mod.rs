//! Ingest, and [`JobEngine`], one open job's engine: request bodies in, Elasticsearch-exact
//! `DataCounts` out, processed records on to the job's analysis.
//!
//! Data flows one way: [`stream`] cuts chunks into records (with [`token`], [`reader`],
//! [`scanner`] and the flat-record fast path; a UTF-16 or UTF-32 body is first re-encoded by
//! [`charset`], a SMILE body turned into JSON text by [`smile`]), [`pipeline`] accounts for
//! each record and hands processed ones to the analysis engine, [`diagnostics`] finishes
//! buckets, and [`counts`] renders the result. This module owns the request lifecycle:
//! per-request counts, lifetime totals, and the state that survives a close and reopen.

pub mod charset;
pub mod counts;
pub mod diagnostics;
mod fast;
pub mod fields;
pub mod lex;
pub mod pipeline;
pub mod reader;
pub mod scanner;
pub mod smile;
pub mod stream;
pub mod token;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod fuzz;

use crate::analysis::AnalysisEngine;
use crate::config::JobSpec;
use counts::DataCounts;
use fields::{FieldSet, Record};
use charset::{Charset, Recoder};
use pipeline::Pipeline;
use smile::SmileBody;
use stream::{BodyStream, OnRecord, StreamError};

pub const DEFAULT_MAX_DOCUMENT: usize = 16 << 20;

/// Adapter so the stream can call the pipeline without borrowing the whole engine.
struct Accounting<'a>(&'a mut Pipeline);

impl OnRecord for Accounting<'_> {
    #[inline]
    fn on_record(&mut self, rec: &Record, buf: &[u8]) {
        self.0.account(rec, buf);
    }
}

pub struct JobEngine {
    pub job_id: String,
    fields: FieldSet,
    pipeline: Pipeline,
    stream: BodyStream,
    /// Lifetime totals, not including the request in progress.
    totals: DataCounts,
    /// The totals as stamped at the end of the last successful request (or by `stamp`):
    /// what the group commit writes, rendered only then. A copy, so that a request failing
    /// in between does not reach the store before the next success.
    saved: DataCounts,
    in_request: bool,
    /// The request in progress has a SMILE body (None: JSON).
    smile: Option<SmileBody>,
    /// A JSON body's encoding (`charset.rs`), decided by its first 4 bytes, gathered in `head`
    /// when the first pieces are shorter; None: UTF-8, read as it comes.
    recoder: Option<Recoder>,
    charset_known: bool,
    head: Vec<u8>,
    /// The size of the request's body, when it came with one.
    sized: Option<usize>,
    /// Elasticsearch's `A` lives in memory and is 1 until the first request after an open
    /// (`post-data.md` §1.3 quirk), which `_stats` shows.
    requests_since_open: u64,
}

impl JobEngine {
    /// A job opened with its configuration and its persisted lifetime totals, if any.
    pub fn open(spec: JobSpec, totals: Option<DataCounts>, max_document: usize) -> JobEngine {
        let fields = FieldSet::new(&spec.analysis_fields, &spec.time_field);
        let analysis = AnalysisEngine::new(&spec.job_id, spec.bucket_span_ms, spec.latency_ms, spec.analysis);
        let mut pipeline =
            Pipeline::new(fields.time_index(), spec.time_format, spec.bucket_span_ms, spec.latency_ms, analysis);
        let totals = totals.unwrap_or_default();
        pipeline.latest_ms = totals.latest_record_timestamp;
        pipeline.reference_ms = totals.latest_record_timestamp.unwrap_or(0);
        pipeline.earliest_ms = totals.earliest_record_timestamp;
        // Elasticsearch 8.x seeds the new window with the persisted latest time, so that a gap
        // spanning the reopen is counted (one phantom record, diagnostics only).
        if let Some(t) = totals.latest_record_timestamp {
            pipeline.diagnostics.add(t);
        }
        let stream = BodyStream::new(&fields, max_document);
        let saved = totals.clone();
        JobEngine { job_id: spec.job_id, fields, pipeline, stream, totals, saved, in_request: false, smile: None, recoder: None, charset_known: false, head: Vec::new(), sized: None, requests_since_open: 0 }
    }

    fn analysis_count(&self) -> u64 {
        self.fields.analysis_count() as u64
    }

    pub fn start_request(&mut self) {
        if self.in_request {
            self.abort_request();
        }
        self.in_request = true;
        self.requests_since_open += 1;
        self.stream.reset();
        self.smile = None;
        self.recoder = None;
        self.charset_known = false;
        self.head.clear();
        self.sized = None;
        self.pipeline.request = DataCounts::default();
        self.transfer_buckets();
    }

    /// [`Self::start_request`] for a body of `size` bytes when it came with its size (then one
    /// document may be all of it), in SMILE when `smile`.
    pub fn start_body(&mut self, size: Option<usize>, smile: bool) {
        self.start_request();
        if let Some(bytes) = size {
            self.allow_document(bytes);
        }
        if smile {
            self.read_smile();
        }
    }

    /// See [`BodyStream::allow_document`]; for the request in progress, whose body is `bytes`
    /// long as sent (its text may be longer: see `choose_charset`).
    fn allow_document(&mut self, bytes: usize) {
        self.sized = Some(bytes);
        self.stream.allow_document(bytes);
    }

    /// The request in progress has a SMILE body (`smile.rs`): its bytes are counted, its
    /// documents read as their JSON text.
    fn read_smile(&mut self) {
        // A piece may be as large as a document may (the whole of a sized body, whose records
        // a client may stream through one generator); each of its documents' JSON text as the
        // job's document limit (a Content-Length does not raise that: what a document expands
        // to does not depend on the body's size). The JSON path then reads it whole.
        let piece = self.sized.unwrap_or(0).max(self.stream.job_max_document());
        self.smile = Some(SmileBody::new(piece, self.stream.job_max_document()));
        self.stream.allow_document(usize::MAX);
    }

    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), StreamError> {
        self.pipeline.request.input_bytes += data.len() as u64;
        if let Some(body) = &mut self.smile {
            let JobEngine { stream, fields, pipeline, .. } = self;
            return body.feed(data, |json| stream.feed(fields, json, &mut Accounting(pipeline)));
        }
        if !self.charset_known {
            if !self.head.is_empty() || data.len() < 4 {
                self.head.extend_from_slice(data);
                if self.head.len() < 4 {
                    return Ok(());
                }
                let head = std::mem::take(&mut self.head);
                let skip = self.choose_charset(&head)?;
                return self.feed_text(&head[skip..]);
            }
            data = &data[self.choose_charset(data)?..];
        }
        self.feed_text(data)
    }

    /// Settles the body's encoding from its first bytes; how many of them to skip (a mark).
    fn choose_charset(&mut self, head: &[u8]) -> Result<usize, StreamError> {
        let (charset, mark) = charset::detect(head).ok_or(StreamError::Malformed)?;
        self.charset_known = true;
        if charset != Charset::Utf8 {
            self.recoder = Some(Recoder::new(charset));
            self.stream.no_mark();
            if let (Some(bytes), Charset::Utf16 { .. }) = (self.sized, charset) {
                // A sized body may be one document: of its text, which UTF-16 makes up to
                // half as long again in UTF-8.
                self.stream.allow_document(bytes.saturating_add(bytes / 2));
            }
        }
        Ok(mark.min(head.len()))
    }

    /// JSON text of the body in its own encoding, to the reader.
    fn feed_text(&mut self, data: &[u8]) -> Result<(), StreamError> {
        let JobEngine { stream, fields, pipeline, recoder, .. } = self;
        match recoder {
            None => stream.feed(fields, data, &mut Accounting(pipeline)),
            Some(r) => r.feed(data, |text| stream.feed(fields, text, &mut Accounting(pipeline))),
        }
    }

    /// The end of a JSON body: a body shorter than 4 bytes is settled now, and what the
    /// re-encoding holds back is read.
    fn finish_text(&mut self) -> Result<(), StreamError> {
        if self.smile.is_none() && !self.charset_known {
            let head = std::mem::take(&mut self.head);
            let skip = self.choose_charset(&head)?;
            self.feed_text(&head[skip..])?;
        }
        let JobEngine { stream, fields, pipeline, recoder, .. } = self;
        match recoder {
            Some(r) => r.finish(|text| stream.feed(fields, text, &mut Accounting(pipeline))),
            None => Ok(()),
        }
    }

    /// End of body: the per-request counts on success. On failure the records already read
    /// stay in the lifetime totals, and nothing is flushed or dated.
    pub fn finish_request(&mut self, now_ms: i64) -> Result<String, StreamError> {
        let mut body = String::new();
        self.finish_request_into(now_ms, &mut body)?;
        Ok(body)
    }

    /// [`Self::finish_request`] with the counts written into `body` (cleared first), so that a
    /// caller answering many small requests reuses one buffer instead of allocating each time.
    pub fn finish_request_into(&mut self, now_ms: i64, body: &mut String) -> Result<(), StreamError> {
        body.clear();
        if let Some(smile) = &mut self.smile {
            smile.finish();
        }
        let last = self.finish_text();
        if let Err(e) = last.and_then(|()| self.stream.finish(&self.fields, &mut Accounting(&mut self.pipeline))) {
            self.abort_request();
            return Err(e);
        }
        self.pipeline.diagnostics.flush();
        self.transfer_buckets();
        self.pipeline.request.last_data_time = Some(now_ms);
        self.pipeline.request.write_json(body, &self.job_id, self.analysis_count());
        self.fold_request();
        self.totals.last_data_time = Some(now_ms);
        self.stamp(now_ms);
        Ok(())
    }

    /// The request failed or the client went away: keep what was processed.
    pub fn abort_request(&mut self) {
        if self.in_request {
            self.fold_request();
        }
    }

    fn fold_request(&mut self) {
        self.stream.trim();
        self.smile = None; // its buffers, now
        self.recoder = None;
        let r = std::mem::take(&mut self.pipeline.request);
        self.totals.add_counters(&r);
        if r.latest_empty_bucket_timestamp.is_some() {
            self.totals.latest_empty_bucket_timestamp = r.latest_empty_bucket_timestamp;
        }
        if r.latest_sparse_bucket_timestamp.is_some() {
            self.totals.latest_sparse_bucket_timestamp = r.latest_sparse_bucket_timestamp;
        }
        self.totals.latest_record_timestamp = self.pipeline.latest_ms;
        self.totals.earliest_record_timestamp = self.pipeline.earliest_ms;
        self.in_request = false;
    }

    /// Move finished-bucket counts into the request's counts (the totals get them when the
    /// request is folded in, so they are counted once).
    fn transfer_buckets(&mut self) {
        let d = &mut self.pipeline.diagnostics;
        let f = d.take_pending();
        let c = &mut self.pipeline.request;
        c.bucket_count += f.buckets;
        c.empty_bucket_count += f.empty;
        c.sparse_bucket_count += f.sparse;
        // Elasticsearch copies these from the session's diagnostics, not from this request.
        c.latest_empty_bucket_timestamp = d.latest_empty_start;
        c.latest_sparse_bucket_timestamp = d.latest_sparse_start;
    }

    /// Lifetime totals as `_stats` shows them for an open job: live, with the `A` quirk.
    pub fn stats_json(&self) -> String {
        let mut t = self.totals.clone();
        if self.in_request {
            t.add_counters(&self.pipeline.request);
            t.latest_record_timestamp = self.pipeline.latest_ms;
            t.earliest_record_timestamp = self.pipeline.earliest_ms;
        }
        let a = if self.requests_since_open == 0 { 1 } else { self.analysis_count() };
        t.to_json(&self.job_id, a)
    }

    /// The lifetime totals to persist now, stamped with `log_time`.
    pub fn persist_json(&mut self, log_time_ms: i64) -> String {
        self.stamp(log_time_ms);
        self.saved_json()
    }

    /// The totals stamped last (end of the last successful request, or `persist_json`).
    pub fn saved_json(&self) -> String {
        self.saved.to_json(&self.job_id, self.analysis_count())
    }

    /// Stamp the totals as they are now (failed requests included) as the ones to persist.
    pub fn stamp(&mut self, log_time_ms: i64) {
        self.totals.log_time = Some(log_time_ms);
        self.saved = self.totals.clone();
    }

    #[cfg(test)]
    pub fn totals(&self) -> &DataCounts {
        &self.totals
    }

    pub fn latest_record_ms(&self) -> Option<i64> {
        self.pipeline.latest_ms
    }

    pub fn bucket_span_ms(&self) -> i64 {
        self.pipeline.span_ms()
    }

    pub fn analysis(&self) -> &AnalysisEngine {
        &self.pipeline.analysis
    }

    pub fn analysis_mut(&mut self) -> &mut AnalysisEngine {
        &mut self.pipeline.analysis
    }
}
