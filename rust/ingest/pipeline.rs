//! What happens to each record once it is read: `post-data.md` §1.2, in that order.
//!
//! Missing fields are counted first (so dropped records count too), then the time is parsed
//! (absent, null or unparseable: invalid date), then the out-of-order rule is applied against
//! the start of the latest record's bucket minus the latency; survivors are processed: counted,
//! fed to the bucket diagnostics and handed to the [`AnalysisEngine`].

use super::counts::DataCounts;
use super::diagnostics::BucketDiagnostics;
use super::fields::Record;
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
    /// The bucket of `latest_ms` as last computed: its start, and the times (ms) below which a
    /// record is out of order. Latest usually stays in one bucket for many records, so this
    /// saves three divisions per record.
    latest_bucket: (i64, i64),
}

/// The out-of-order rule compares whole seconds, `t / 1000 < limit_s` (division truncating
/// toward zero); as a bound on `t` itself that is `t < 1000 * limit_s` when the limit is
/// positive (every negative `t` is below), and `t <= 1000 * limit_s - 1000` otherwise.
fn too_old_below_ms(limit_s: i64) -> i64 {
    let ms = limit_s.saturating_mul(1000);
    if limit_s > 0 {
        ms
    } else {
        ms.saturating_sub(999)
    }
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
            latest_bucket: (0, too_old_below_ms(-(latency_ms / 1000))),
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
        c.missing_field_count += rec.missing();
        c.input_field_count += fields_for_count;
        let time = rec.value(buf, self.time_index).and_then(|v| self.format.parse_ms(v));
        let Some(t) = time else {
            c.invalid_date_count += 1;
            return;
        };
        let latest = self.reference_ms;
        let (start, mut too_old_below) = self.latest_bucket;
        if !(start <= latest && latest - start < self.span_ms) {
            let start = latest - latest.rem_euclid(self.span_ms);
            too_old_below = too_old_below_ms(start / 1000 - self.latency_s);
            self.latest_bucket = (start, too_old_below);
        }
        if t < too_old_below {
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

#[cfg(test)]
mod tests {
    use super::too_old_below_ms;

    /// The bound in ms says what the division says, around zero, around every multiple of 1000
    /// and at the ends of the range.
    #[test]
    fn the_bound_in_ms_agrees_with_whole_seconds() {
        let limits = [-3i64, -2, -1, 0, 1, 2, 3, 1_454_020, -1_454_020, i64::MAX / 1000, i64::MIN / 1000 - 1, i64::MIN / 1000];
        for limit in limits {
            let mut times: Vec<i64> = (-4000..4000).collect();
            for base in [limit.saturating_mul(1000), i64::MAX, i64::MIN] {
                times.extend((-2000..2000).map(|d| base.saturating_add(d)));
            }
            for t in times {
                assert_eq!(t < too_old_below_ms(limit), t / 1000 < limit, "t {t} limit {limit}");
            }
        }
    }
}
