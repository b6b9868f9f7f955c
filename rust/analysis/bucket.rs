//! Buckets that are still open: what each series has gathered so far in one time interval.
//!
//! Aggregates live in a dense vector indexed by series id, so adding a record is an index and
//! a few float operations; `touched` lists the series with data, so finishing a bucket costs
//! what the bucket holds, not what the job holds.

use serde::{Deserialize, Serialize};

use super::detector::Aggregate;

/// Most distinct values kept per influencer field and series within one bucket.
pub const MAX_INFLUENCER_VALUES: usize = 8;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpenBucket {
    pub start_ms: i64,
    /// Records that reached the analysis in this bucket.
    pub event_count: u64,
    aggregates: Vec<Aggregate>,
    seen: Vec<bool>,
    touched: Vec<u32>,
    /// Influencer values seen with each touched series: (influencer field, value).
    influences: Vec<Vec<(u16, String)>>,
}

impl OpenBucket {
    pub fn new(start_ms: i64) -> Self {
        OpenBucket { start_ms, ..Default::default() }
    }

    #[inline]
    pub fn aggregate_mut(&mut self, series: u32) -> &mut Aggregate {
        let i = series as usize;
        // One test on the per-record path: a series' first record in the bucket is the rare case.
        if !self.seen.get(i).is_some_and(|&seen| seen) {
            self.first_record(series);
        }
        &mut self.aggregates[i]
    }

    #[cold]
    #[inline(never)]
    fn first_record(&mut self, series: u32) {
        let i = series as usize;
        if i >= self.aggregates.len() {
            self.aggregates.resize(i + 1, Aggregate::default());
            self.seen.resize(i + 1, false);
            self.influences.resize(i + 1, Vec::new());
        }
        self.seen[i] = true;
        self.touched.push(series);
    }

    /// Note that `value` of influencer field `field` came with a record of `series`.
    pub fn influenced_by(&mut self, series: u32, field: u16, value: &[u8]) {
        let list = &mut self.influences[series as usize];
        if list.iter().any(|(f, v)| *f == field && v.as_bytes() == value) {
            return;
        }
        if list.iter().filter(|(f, _)| *f == field).count() < MAX_INFLUENCER_VALUES {
            list.push((field, String::from_utf8_lossy(value).into_owned()));
        }
    }

    pub fn prefetch_aggregate(&self, series: u32) {
        if let Some(a) = self.aggregates.get(series as usize) {
            crate::arch::prefetch(a);
        }
    }

    pub fn aggregate(&self, series: u32) -> Aggregate {
        self.aggregates.get(series as usize).copied().unwrap_or_default()
    }

    pub fn influences(&self, series: u32) -> &[(u16, String)] {
        self.influences.get(series as usize).map_or(&[], |v| v.as_slice())
    }

    /// Series with data in this bucket, in order of first record.
    pub fn touched(&self) -> &[u32] {
        &self.touched
    }
}
