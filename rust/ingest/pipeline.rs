//! What happens to each record once it is read: `post-data.md` §1.2, in that order.
//!
//! Missing fields are counted first (so dropped records count too), then the time is parsed
//! (absent, null or unparseable: invalid date), then the out-of-order rule is applied against
//! the start of the latest record's bucket minus the latency; survivors are processed: counted,
//! fed to the bucket diagnostics and handed to the [`AnalysisEngine`].

use super::counts::DataCounts;
use super::diagnostics::BucketDiagnostics;
use super::fields::{Record, Slot};
use crate::analysis::AnalysisEngine;
use crate::time::TimeFormat;

pub struct Pipeline {
    /// Index of the time field among the record's slots; the analysis fields come before it.
    time_index: usize,
    format: TimeFormat,
    span_ms: i64,
    latency_s: i64,
    /// The job's latest processed record time (`latest_record_timestamp`), carried across
    /// requests and reopens.
    pub latest_ms: Option<i64>,
    /// `L` of the out-of-order rule: like `latest_ms` but starting from 0, so records before
    /// 1970 never move it back (`post-data.md` §3).
    pub reference_ms: i64,
    pub earliest_ms: Option<i64>,
    /// Counts of the request in progress.
    pub request: DataCounts,
    pub diagnostics: BucketDiagnostics,
    /// Receives every processed record, values indexed like the job's analysis fields.
    pub analysis: AnalysisEngine,
    /// The bucket of `latest_ms` as last computed: its start in ms and in whole seconds. Latest
    /// usually stays in one bucket for many records, so this saves two divisions per record.
    latest_bucket: (i64, i64),
}

impl Pipeline {
    pub fn new(time_index: usize, format: TimeFormat, span_ms: i64, latency_ms: i64, analysis: AnalysisEngine) -> Self {
        Pipeline {
            time_index,
            format,
            span_ms,
            latency_s: latency_ms / 1000,
            latest_ms: None,
            reference_ms: 0,
            earliest_ms: None,
            request: DataCounts::default(),
            diagnostics: BucketDiagnostics::new(span_ms, latency_ms),
            analysis,
            latest_bucket: (0, 0),
        }
    }

    pub fn span_ms(&self) -> i64 {
        self.span_ms
    }

    /// Run one record through the accounting, with `buf` the buffer its values point into.
    #[inline]
    pub fn account(&mut self, rec: &Record, buf: &[u8]) {
        let fields_for_count = rec.n.saturating_sub(1) as u64;
        let c = &mut self.request;
        let missing = rec.slots.iter().map(|s| u64::from(matches!(s, Slot::Absent))).sum::<u64>();
        c.missing_field_count += missing;
        c.input_field_count += fields_for_count;
        let time = rec.value(buf, self.time_index).and_then(|v| self.format.parse_ms(v));
        let Some(t) = time else {
            c.invalid_date_count += 1;
            return;
        };
        let latest = self.reference_ms;
        let (start, mut bucket_start_s) = self.latest_bucket;
        if !(start <= latest && latest - start < self.span_ms) {
            let start = latest - latest.rem_euclid(self.span_ms);
            bucket_start_s = start / 1000;
            self.latest_bucket = (start, bucket_start_s);
        }
        if t / 1000 < bucket_start_s - self.latency_s {
            c.out_of_order_timestamp_count += 1;
            c.latest_record_timestamp = Some(c.latest_record_timestamp.map_or(t, |l| l.max(t)));
            return;
        }
        c.processed_record_count += 1;
        self.reference_ms = self.reference_ms.max(t);
        let new_latest = self.latest_ms.map_or(t, |l| l.max(t));
        self.latest_ms = Some(new_latest);
        c.latest_record_timestamp = Some(new_latest);
        if self.earliest_ms.is_none() {
            self.earliest_ms = Some(t);
            c.earliest_record_timestamp = Some(t);
        }
        self.diagnostics.add(t);
        self.feed_analysis(rec, buf, t);
    }

    /// Hand the record to the analysis, which reads the slots it needs straight from `rec`.
    #[inline]
    fn feed_analysis(&mut self, rec: &Record, buf: &[u8], t: i64) {
        self.analysis.record_with(t, |i| rec.value(buf, i));
    }
}
