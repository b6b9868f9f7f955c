//! Bucket processing times, as `_stats` reports them in `timing_stats`.
//!
//! [`Timing`] holds the figures over buckets (count, total, least, most, and an exponential
//! average with weight 0.01 per bucket). [`HourlyAverage`] is Elasticsearch's average "per
//! hour": the time spent on the buckets ending in the current hour of data time, blended with
//! the average of the hours before by how far into its hour the latest bucket ends. Both count
//! final buckets only; interim ones are recomputed and would count twice.

use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timing {
    pub bucket_count: u64,
    pub total_ms: f64,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub exponential_average_ms: Option<f64>,
}

impl Timing {
    pub fn add(&mut self, ms: f64) {
        self.bucket_count += 1;
        self.total_ms += ms;
        self.min_ms = Some(self.min_ms.map_or(ms, |m| m.min(ms)));
        self.max_ms = Some(self.max_ms.map_or(ms, |m| m.max(ms)));
        self.exponential_average_ms = Some(self.exponential_average_ms.map_or(ms, |e| 0.99 * e + 0.01 * ms));
    }

    /// The figures as `timing_stats` names them. Before the first bucket there are only the
    /// count and the total, as `post-data.md` §10 gives a never-fed job's figures (Elasticsearch's
    /// source would also print the hourly average, 0).
    pub fn json(&self, hourly: &HourlyAverage) -> serde_json::Value {
        let mut out = serde_json::json!({
            "bucket_count": self.bucket_count,
            "total_bucket_processing_time_ms": self.total_ms,
        });
        let m = out.as_object_mut().expect("an object");
        if self.bucket_count > 0 {
            m.insert("minimum_bucket_processing_time_ms".into(), self.min_ms.into());
            m.insert("maximum_bucket_processing_time_ms".into(), self.max_ms.into());
            m.insert("average_bucket_processing_time_ms".into(), (self.total_ms / self.bucket_count as f64).into());
            m.insert("exponential_average_bucket_processing_time_ms".into(), self.exponential_average_ms.into());
            m.insert("exponential_average_bucket_processing_time_per_hour_ms".into(), hourly.current_ms().into());
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HourlyAverage {
    /// Time spent on the buckets since the current hour began.
    this_hour_ms: f64,
    /// The latest bucket end seen (data time, epoch ms).
    latest_end_ms: Option<i64>,
    /// The average as it stood when the current hour began (none before a first hour passed).
    previous_ms: Option<f64>,
}

fn hour_start(t: i64) -> i64 {
    t - t.rem_euclid(HOUR_MS)
}

impl HourlyAverage {
    /// A final bucket ending at `end_ms` took `ms`. As in Elasticsearch, the time is added
    /// before the hour is checked, so a bucket that begins a new hour is blended into the
    /// average of the hours before it.
    pub fn add(&mut self, ms: f64, end_ms: i64) {
        self.this_hour_ms += ms;
        if let Some(latest) = self.latest_end_ms {
            if end_ms >= hour_start(latest).saturating_add(HOUR_MS) {
                self.previous_ms = Some(self.current_ms());
                self.this_hour_ms = 0.0;
            }
        }
        if self.latest_end_ms.is_none_or(|l| end_ms > l) {
            self.latest_end_ms = Some(end_ms);
        }
    }

    pub fn current_ms(&self) -> f64 {
        match (self.previous_ms, self.latest_end_ms) {
            (Some(previous), Some(latest)) => {
                let alpha = (-((latest - hour_start(latest)) as f64) / HOUR_MS as f64).exp();
                alpha * previous + (1.0 - alpha) * self.this_hour_ms
            }
            _ => self.this_hour_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HourlyAverage, Timing};

    const T0: i64 = 1_563_507_000_000; // 2019-07-19T03:30:00Z

    /// Step by step: sums within an hour, blending by the fraction of the hour passed, and a
    /// new hour folding the sum (with the bucket that began it) into the previous average.
    #[test]
    fn blends_hours_as_elasticsearch_does() {
        let mut h = HourlyAverage::default();
        assert_eq!(h.current_ms(), 0.0);
        for _ in 0..3 {
            h.this_hour_ms += 100.0;
        }
        assert_eq!(h.current_ms(), 300.0);
        h.add(0.0, T0); // first bucket end: no hour has passed
        assert_eq!(h.current_ms(), 300.0);
        h.add(0.0, T0 + 30 * 60_000); // 04:00, the next hour: 300 becomes the previous average
        assert_eq!(h.previous_ms, Some(300.0));
        assert_eq!(h.current_ms(), 300.0); // alpha = 1 at the hour's start
        h.add(100.0, T0 + 45 * 60_000); // 04:15: a quarter of the hour in
        let alpha = (-0.25f64).exp();
        assert!((h.current_ms() - (alpha * 300.0 + (1.0 - alpha) * 100.0)).abs() < 1e-9);
        let before = h.current_ms();
        h.add(50.0, T0 + 150 * 60_000); // 06:00: the 04:15 figure plus this bucket, folded in
        let folded = alpha * 300.0 + (1.0 - alpha) * 150.0;
        assert!((h.previous_ms.unwrap() - folded).abs() < 1e-9, "{before}");
        assert_eq!(h.this_hour_ms, 0.0);
    }

    #[test]
    fn an_older_bucket_end_does_not_move_the_hour_back() {
        let mut h = HourlyAverage::default();
        h.add(10.0, T0);
        h.add(10.0, T0 - 5 * 3_600_000);
        assert_eq!(h.latest_end_ms, Some(T0));
        assert_eq!(h.current_ms(), 20.0);
        h.add(1.0, i64::MAX); // no overflow at the end of time
        h.add(1.0, i64::MIN);
    }

    #[test]
    fn figures_of_no_bucket_are_left_out() {
        let json = Timing::default().json(&HourlyAverage::default());
        assert_eq!(json.to_string(), r#"{"bucket_count":0,"total_bucket_processing_time_ms":0.0}"#);
        let mut t = Timing::default();
        t.add(2.0);
        t.add(4.0);
        let json = t.json(&HourlyAverage::default());
        assert_eq!(json["average_bucket_processing_time_ms"], 3.0);
        assert_eq!(json["exponential_average_bucket_processing_time_ms"], 0.99 * 2.0 + 0.01 * 4.0);
        assert_eq!(json["minimum_bucket_processing_time_ms"], 2.0);
        assert_eq!(json["maximum_bucket_processing_time_ms"], 4.0);
        assert_eq!(json["exponential_average_bucket_processing_time_per_hour_ms"], 0.0);
    }
}
