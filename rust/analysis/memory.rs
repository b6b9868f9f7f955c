//! The job's model memory limit (`analysis_limits.model_memory_limit`), as Elasticsearch's hard
//! limit: series are created only while their models fit in it; past it a new series is
//! refused (its records are still counted, not modelled), the job's memory status becomes
//! `hard_limit`, and each bucket in which that happened counts as an allocation failure. So one
//! high-cardinality field can no longer grow a job's memory without bound.
//!
//! A series' size is known before it is made (its models are fixed-size), so the check is one
//! addition and a compare on the cold path that creates series.

use serde::{Deserialize, Serialize};

/// What the budget has refused so far. Kept with the model snapshot, so that a reopened job
/// reports the `memory_status` and `bucket_allocation_failures_count` it closed with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusals {
    /// Buckets in which a new series was refused (`bucket_allocation_failures_count`).
    pub buckets: u64,
    /// How far over the limit the last refused series would have gone (`model_bytes_exceeded`).
    pub bytes_exceeded: u64,
    /// The buckets (starts) of recent refusals, so that a bucket counts once even when records
    /// alternate between open buckets (latency keeps several open), or it outlives a reopen.
    recent: Vec<i64>,
}

/// What the series index costs per series, counted with it (as in `model_bytes`).
pub const INDEX_BYTES_PER_SERIES: usize = 48;

/// Refused buckets remembered; more than the buckets a job keeps open at once.
const RECENT_FAILED_BUCKETS: usize = 64;

/// Elasticsearch's default `model_memory_limit`, 1024 MB.
pub const DEFAULT_LIMIT_BYTES: usize = 1024 << 20;

#[derive(Clone, Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// Bytes of the series created (models, split values, index).
    used: usize,
    refused: Refusals,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget { limit, used: 0, refused: Refusals::default() }
    }

    /// Whether a series of `bytes` may be made for a record of the bucket starting at
    /// `bucket_ms`; if so, it is counted as made.
    pub fn admit(&mut self, bytes: usize, bucket_ms: i64) -> bool {
        let after = self.used.saturating_add(bytes);
        if after <= self.limit {
            self.used = after;
            return true;
        }
        let r = &mut self.refused;
        if !r.recent.contains(&bucket_ms) {
            if r.recent.len() == RECENT_FAILED_BUCKETS {
                r.recent.remove(0); // long final: records no longer reach it
            }
            r.recent.push(bucket_ms);
            r.buckets += 1;
        }
        self.refused.bytes_exceeded = (after - self.limit) as u64;
        false
    }

    /// The series restored from a snapshot take this much.
    pub fn set_used(&mut self, used: usize) {
        self.used = used;
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn refused(&self) -> &Refusals {
        &self.refused
    }

    /// The refusals a restored snapshot was taken with.
    pub fn set_refused(&mut self, refused: Refusals) {
        self.refused = refused;
    }

    pub fn status(&self) -> &'static str {
        if self.refused.buckets > 0 {
            "hard_limit"
        } else {
            "ok"
        }
    }
}

/// `model_memory_limit` as the job config holds it: a byte size with a unit (`1024mb`, the form
/// job creation normalises to) or a number of MB.
pub fn parse_limit(value: Option<&serde_json::Value>) -> Result<usize, String> {
    let Some(value) = value else { return Ok(DEFAULT_LIMIT_BYTES) };
    if let Some(mb) = value.as_u64() {
        return Ok((mb as usize).saturating_mul(1 << 20));
    }
    let text = value.as_str().ok_or("job config: bad model_memory_limit")?.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits.parse().map_err(|_| format!("job config: bad model_memory_limit [{text}]"))?;
    let shift = match unit {
        "" | "mb" | "m" => 20,
        "b" => 0,
        "kb" | "k" => 10,
        "gb" | "g" => 30,
        "tb" | "t" => 40,
        "pb" | "p" => 50,
        _ => return Err(format!("job config: bad model_memory_limit [{text}]")),
    };
    Ok(n.checked_shl(shift).filter(|v| v >> shift == n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_fit_until_the_limit_then_each_bucket_counts_once() {
        let mut b = MemoryBudget::new(10_000);
        assert!(b.admit(4_000, 0) && b.admit(4_000, 0));
        assert_eq!(b.status(), "ok");
        assert!(!b.admit(4_000, 0));
        assert!(!b.admit(2_500, 0));
        assert_eq!((b.refused().buckets, b.refused().bytes_exceeded, b.status()), (1, 500, "hard_limit"));
        assert!(b.admit(2_000, 60_000), "a series that still fits is made");
        assert!(!b.admit(100, 60_000));
        assert!(!b.admit(100, 120_000));
        assert_eq!(b.refused().buckets, 3);
        assert!(!b.admit(100, 60_000), "records alternating between open buckets count each once");
        assert_eq!(b.refused().buckets, 3);
    }

    #[test]
    fn limits_parse_as_job_configs_hold_them() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(parse_limit(None), Ok(1024 << 20));
        assert_eq!(parse_limit(Some(&v(r#""1024mb""#))), Ok(1024 << 20));
        assert_eq!(parse_limit(Some(&v(r#""2gb""#))), Ok(2 << 30));
        assert_eq!(parse_limit(Some(&v("5"))), Ok(5 << 20));
        assert_eq!(parse_limit(Some(&v(r#""99999999999pb""#))), Ok(usize::MAX));
        assert!(parse_limit(Some(&v(r#""lots""#))).is_err());
    }
}
