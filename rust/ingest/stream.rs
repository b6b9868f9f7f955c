//! One request body, arriving in chunks of any size, turned into records.
//!
//! Chunks are parsed in place (zero-copy) up to the last complete top-level unit; only the
//! unfinished tail is copied into the carry buffer. While a unit is incomplete, new bytes are
//! scanned once by the [`UnitScanner`] and appended until the unit ends; then the unit is
//! parsed from the carry and the rest of the chunk in place again. So a body fed in 1-byte
//! chunks yields exactly the records of the same body fed whole, in linear time.
//!
//! Malformed input follows [`super::reader`] and [`super::scanner`]: a syntax error inside a
//! record keeps the fields read so far and skips to the record's end; an error outside any
//! record yields an empty record once the next object has been skipped (the fragment's
//! neighbour is swallowed, as in Elasticsearch). Parse errors met while skipping count toward
//! the per-request limit of 100, after which the request fails; so does a body that ends inside
//! a record, string or block comment, or with a top-level array left open.

use super::fast;
use super::fields::{FieldSet, Record};
use super::reader::{Pause, Reader};
use super::scanner::{self, TopStep, UnitScanner};
use super::lex::is_ws;
use super::token::{Tokenizer, KEEP_CAPACITY};

/// Parse errors allowed per request before it fails (Elasticsearch's `PARSE_ERRORS_LIMIT`).
pub const PARSE_ERRORS_LIMIT: u32 = 100;

const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Too many parse errors, or the body ended inside a document.
    Malformed,
    /// One document is longer than the configured limit.
    DocumentTooLarge { limit: usize },
}

// Tests compare the whole engine with and without the fast path.
#[cfg(test)]
thread_local! {
    static FAST_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

#[inline(always)]
fn fast_path_enabled() -> bool {
    #[cfg(test)]
    return FAST_PATH.with(|f| f.get());
    #[cfg(not(test))]
    true
}

/// Where records go: called with each record and the buffer its values point into.
pub trait OnRecord {
    fn on_record(&mut self, rec: &Record, buf: &[u8]);
}

/// Capacity of the carry buffer kept between bodies.
const CARRY_KEEP: usize = 1 << 20;

pub struct BodyStream {
    tok: Tokenizer,
    reader: Reader,
    rec: Record,
    carry: Vec<u8>,
    scanner: UnitScanner,
    /// A syntax error outside any record is being recovered from.
    top_recovery: bool,
    /// Parse errors of this request.
    errors: u32,
    /// Bytes of the BOM matched at the start of the body (3 = done or not present).
    bom_seen: usize,
    /// The largest document of the request in progress: the job's limit, or more for a body
    /// whose whole size is known (see [`Self::allow_document`]).
    max_document: usize,
    job_max_document: usize,
    /// Records read inside a unit that is not finished yet (only after Elasticsearch's
    /// nested-array quirk ends a record early); accounted when the unit completes.
    deferred: Vec<Record>,
    fast: fast::Scratch,
}

impl BodyStream {
    pub fn new(fields: &FieldSet, max_document: usize) -> Self {
        BodyStream {
            tok: Tokenizer::new(),
            reader: Reader::default(),
            rec: Record::with_fields(fields.len()),
            carry: Vec::new(),
            scanner: UnitScanner::default(),
            top_recovery: false,
            errors: 0,
            bom_seen: 0,
            max_document,
            job_max_document: max_document,
            deferred: Vec::new(),
            fast: fast::Scratch::default(),
        }
    }

    /// The end of a body: what a pathological one made the buffers grow to is given back now,
    /// not at the job's next request (a body nested millions deep takes ~100 MB).
    pub fn trim(&mut self) {
        self.tok.reset();
        self.reader.trim(KEEP_CAPACITY);
        // A document up to the size limit may have passed through: keep a usual chunk's worth.
        self.carry.shrink_to(CARRY_KEEP);
    }

    /// Forget any partial state: a new body starts (the last one's end trimmed the buffers).
    pub fn reset(&mut self) {
        self.tok.reset();
        self.carry.clear();
        self.scanner = UnitScanner::default();
        self.top_recovery = false;
        self.errors = 0;
        self.bom_seen = 0;
        self.deferred.clear();
        self.max_document = self.job_max_document;
    }

    /// The text comes re-encoded from UTF-16 or UTF-32, whose mark was dropped already: a
    /// U+FEFF at its start is text, not a UTF-8 mark to drop.
    pub fn no_mark(&mut self) {
        self.bom_seen = BOM.len();
    }

    /// The job's document limit (a request may allow more: [`Self::allow_document`]).
    pub fn job_max_document(&self) -> usize {
        self.job_max_document
    }

    /// Documents up to `bytes` are accepted in this request (never less than the job's limit).
    /// The limit bounds what an endless chunked stream can make anomalyd hold; a body of known
    /// size, already capped by `--max-content-length`, may be one document as in Elasticsearch.
    pub fn allow_document(&mut self, bytes: usize) {
        self.max_document = self.max_document.max(bytes);
    }

    pub fn feed(&mut self, fields: &FieldSet, mut data: &[u8], out: &mut dyn OnRecord) -> Result<(), StreamError> {
        if self.bom_seen < BOM.len() {
            while self.bom_seen < BOM.len() && !data.is_empty() && data[0] == BOM[self.bom_seen] {
                self.bom_seen += 1;
                data = &data[1..];
            }
            if data.is_empty() {
                return Ok(());
            }
            if self.bom_seen < BOM.len() {
                // Not a BOM after all: what matched is ordinary (malformed) input. Usually
                // nothing matched, and there is nothing to feed.
                let partial = &BOM[..self.bom_seen];
                self.bom_seen = BOM.len();
                if !partial.is_empty() {
                    self.feed(fields, partial, out)?;
                }
            }
        }
        if !self.carry.is_empty() {
            match self.scanner.scan(data) {
                None => {
                    self.carry.extend_from_slice(data);
                    return self.check_carry();
                }
                Some(k) => {
                    self.carry.extend_from_slice(&data[..k]);
                    self.check_carry()?;
                    let unit = std::mem::take(&mut self.carry);
                    let r = self.run(fields, &unit, true, out);
                    self.carry = unit;
                    self.carry.clear();
                    r?;
                    data = &data[k..];
                }
            }
        }
        self.run(fields, data, false, out)
    }

    /// End of body. Fails if it ended inside a document.
    pub fn finish(&mut self, fields: &FieldSet, out: &mut dyn OnRecord) -> Result<(), StreamError> {
        if (1..BOM.len()).contains(&self.bom_seen) {
            // The body ended inside what looked like a BOM: those bytes are ordinary input.
            let partial = BOM[..self.bom_seen].to_vec();
            self.bom_seen = BOM.len();
            self.feed(fields, &partial, out)?;
        }
        if !self.carry.is_empty() {
            if self.scanner.needs_more() {
                return Err(StreamError::Malformed);
            }
            let unit = std::mem::take(&mut self.carry);
            self.scanner = UnitScanner::default();
            self.run(fields, &unit, true, out)?;
        }
        if self.top_recovery {
            // End of body ends recovery: the empty record still goes through.
            self.top_recovery = false;
            self.rec.clear();
            out.on_record(&self.rec, &[]);
        }
        if self.tok.open_arrays() > 0 {
            return Err(StreamError::Malformed);
        }
        Ok(())
    }

    fn check_carry(&self) -> Result<(), StreamError> {
        if self.carry.len() > self.max_document {
            return Err(StreamError::DocumentTooLarge { limit: self.max_document });
        }
        Ok(())
    }

    fn add_errors(&mut self, n: u32) -> Result<(), StreamError> {
        self.errors += n;
        if self.errors >= PARSE_ERRORS_LIMIT {
            return Err(StreamError::Malformed);
        }
        Ok(())
    }

    /// Parse `buf` from the start. `complete`: `buf` is one whole unit (from the carry).
    fn run(&mut self, fields: &FieldSet, buf: &[u8], complete: bool, out: &mut dyn OnRecord) -> Result<(), StreamError> {
        let fast = fast::for_this_cpu();
        let mut pos = 0;
        // The last position between top-level units, with the tokenizer state there.
        let mut safe = (0, self.tok.mark());
        loop {
            if self.top_recovery {
                match scanner::top_level_unit(buf, pos, complete) {
                    Ok(TopStep::Idle) => return Ok(()),
                    Ok(TopStep::Unit { end, errors, closed_object }) => {
                        pos = end;
                        self.add_errors(errors)?;
                        if closed_object {
                            self.top_recovery = false;
                            self.tok.after_top_level_recovery();
                            self.rec.clear();
                            out.on_record(&self.rec, buf);
                        }
                    }
                    Ok(TopStep::OpenArray { end }) => {
                        if !self.tok.open_top_array() {
                            self.add_errors(1)?;
                        }
                        pos = end;
                    }
                    Ok(TopStep::CloseArray { end }) => {
                        if self.tok.open_arrays() > 0 {
                            self.tok.close_top_array();
                        } else {
                            self.add_errors(1)?;
                        }
                        pos = end;
                    }
                    Err(scanner::NeedMore) => return self.suspend(buf, pos, complete),
                }
                safe = (pos, self.tok.mark());
                continue;
            }
            if self.tok.is_idle() && fast_path_enabled() {
                // The usual body: records one after another, read by the fast path in one go;
                // the general reader below takes whatever stops it.
                let run = (fast.records)(buf, pos, fields, &mut self.rec, &mut self.fast, self.max_document, out);
                if run.too_large {
                    return Err(StreamError::DocumentTooLarge { limit: self.max_document });
                }
                if run.end != pos {
                    pos = run.end;
                    // The usual end of a buffer: nothing but the last line's newline left,
                    // where the reader would find nothing and keep nothing.
                    if buf[pos..].iter().all(|&b| is_ws(b)) {
                        return Ok(());
                    }
                    safe = (pos, self.tok.mark());
                }
            } else if self.tok.at_top_level() && fast_path_enabled() {
                // Inside top-level arrays: one record at a time, as the array's values.
                let mut p = pos;
                while p < buf.len() && is_ws(buf[p]) {
                    p += 1;
                }
                // `ready_for_record` moves `p` past a separating comma, so `{` is checked again after.
                let may_start = p < buf.len() && matches!(buf[p], b'{' | b',');
                if may_start && self.tok.ready_for_record(buf, &mut p) && buf[p] == b'{' {
                    if let Some(end) = (fast.record)(buf, p, fields, &mut self.rec, &mut self.fast) {
                        if end - p > self.max_document {
                            return Err(StreamError::DocumentTooLarge { limit: self.max_document });
                        }
                        self.tok.record_done();
                        pos = end;
                        safe = (pos, self.tok.mark());
                        out.on_record(&self.rec, buf);
                        continue;
                    }
                    pos = p;
                }
            }
            let before = safe.0;
            match self.reader.read(&mut self.tok, fields, buf, &mut pos, complete, &mut self.rec, &mut safe) {
                Ok(read) => {
                    self.add_errors(read.errors)?;
                    if self.tok.at_top_level() {
                        if pos - before > self.max_document {
                            return Err(StreamError::DocumentTooLarge { limit: self.max_document });
                        }
                        for r in std::mem::take(&mut self.deferred) {
                            out.on_record(&r, &[]);
                        }
                        out.on_record(&self.rec, buf);
                        safe = (pos, self.tok.mark());
                    } else {
                        self.deferred.push(self.rec.detach(buf));
                    }
                }
                Err(Pause::End) => return self.suspend(buf, pos, complete),
                Err(Pause::NeedMore) => {
                    self.tok.rewind(safe.1);
                    self.deferred.clear();
                    return self.suspend(buf, safe.0, complete);
                }
                Err(Pause::TopLevelError { resume }) => {
                    self.top_recovery = true;
                    pos = resume;
                    safe = (pos, self.tok.mark());
                }
            }
        }
    }

    /// Keep `buf[from..]` (an unfinished unit, after any whitespace) for the next chunk.
    fn suspend(&mut self, buf: &[u8], mut from: usize, complete: bool) -> Result<(), StreamError> {
        while from < buf.len() && is_ws(buf[from]) {
            from += 1;
        }
        if from >= buf.len() {
            return Ok(());
        }
        if complete {
            // A whole unit that still needs more can only be the body's end inside a document.
            return Err(StreamError::Malformed);
        }
        self.carry.extend_from_slice(&buf[from..]);
        // The carry may begin with complete units (a separator the reader consumed without a
        // token, say); the scanner must end up inside the unfinished one.
        self.scanner = UnitScanner::default();
        let mut rest = &self.carry[..];
        while let Some(k) = self.scanner.scan(rest) {
            rest = &rest[k..];
        }
        self.check_carry()
    }
}

#[cfg(test)]
mod tests {
    use super::{BodyStream, OnRecord, FAST_PATH};
    use crate::ingest::fields::{FieldSet, Record};

    /// A body nested two million deep or with a 4 MB key grows the buffers by tens of MB; they
    /// are given back when the body ends, not kept per job until its next request.
    #[test]
    fn a_pathological_body_leaves_no_large_buffers_behind() {
        struct Ignore;
        impl OnRecord for Ignore {
            fn on_record(&mut self, _: &Record, _: &[u8]) {}
        }
        let fields = FieldSet::new(&["value".to_string()], "time");
        let depth = 2_000_000;
        let deep = [&b"{\"time\":1,\"x\":"[..], &b"{\"a\":".repeat(depth), b"1", &b"}".repeat(depth + 1)].concat();
        let long_key = [&b"{\"time\":1,\""[..], &b"k".repeat(4 << 20), b"\":1}"].concat();
        for body in [deep, long_key] {
            let mut stream = BodyStream::new(&fields, 16 << 20);
            stream.reset();
            for chunk in body.chunks(1 << 16) {
                stream.feed(&fields, chunk, &mut Ignore).unwrap();
            }
            stream.finish(&fields, &mut Ignore).unwrap();
            stream.trim();
            let kept = stream.tok.retained_bytes() + stream.reader.retained_bytes() + stream.carry.capacity();
            assert!(kept <= 2 << 20, "{kept} bytes kept");
        }
    }
    use crate::config::JobSpec;
    use crate::ingest::fuzz::post_in_pieces;
    use crate::ingest::JobEngine;
    use proptest::prelude::*;

    /// The response (or error) and the lifetime stats after posting `body` in pieces cut at
    /// `cuts`, with the fast path on or off.
    fn outcome(body: &[u8], cuts: &[usize], fast: bool) -> String {
        FAST_PATH.with(|f| f.set(fast));
        let spec = JobSpec::from_json(
            r#"{"job_id":"s","analysis_config":{"bucket_span":"10s","detectors":[{"function":"mean","field_name":"kpi","by_field_name":"host"}]},
                "data_description":{"time_field":"time","time_format":"epoch"}}"#,
        )
        .unwrap();
        let mut e = JobEngine::open(spec, None, 1 << 20);
        let r = post_in_pieces(&mut e, body, cuts);
        FAST_PATH.with(|f| f.set(true));
        format!("{r:?} {}", if r.is_ok() { e.stats_json() } else { String::new() })
    }

    /// Bodies of record-like documents: known keys and values, nested objects, arrays,
    /// escapes, repeated keys, and now and then a stray atom.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        const KEYS: &[&str] = &["time", "kpi", "host", "note", "a", "meta", "kpi2345678", ""];
        const VALUES: &[&str] = &["1454020570", "12.5", "-1e2", "\"srv-1\"", "\"s\\\"q\"", "true", "null", "[]",
            "[1,\"x\",false]", "{}", "{\"k\":1,\"t\":[\"a\"]}", "{\"k\":1,\"k\":2}", "[[1]]", "01", "\"\\u00e9\""];
        const STRAY: &[&str] = &["", "", "", "", " ", "\n", ",", "}", "{", "[", "]", ":", "\"", "x", "/*c*/"];
        let pair = (prop::sample::select(KEYS), prop::sample::select(VALUES), prop::sample::select(STRAY));
        let record = prop::collection::vec(pair, 0..7).prop_map(|pairs| {
            let inner: Vec<String> = pairs.iter().map(|(k, v, s)| format!("\"{k}\":{v}{s}")).collect();
            format!("{{{}}}", inner.join(","))
        });
        (prop::collection::vec(record, 0..8), prop::sample::select(&["\n", "", " ", ","][..]), any::<bool>())
            .prop_map(|(records, sep, array)| {
                let joined = records.join(sep);
                if array { format!("[{joined}]") } else { joined }.into_bytes()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::ingest::fuzz::cases(3000), ..ProptestConfig::default() })]

        /// The fast path changes nothing: same counts, whole or in pieces.
        #[test]
        fn the_fast_path_changes_no_count(body in body(), cuts in prop::collection::vec(0usize..600, 0..12)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let general = outcome(&body, &[], false);
            prop_assert_eq!(outcome(&body, &[], true), general.clone(), "{}", String::from_utf8_lossy(&body));
            prop_assert_eq!(outcome(&body, &cuts, true), general);
        }
    }
}
