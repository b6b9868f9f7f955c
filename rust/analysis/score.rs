//! TEMPORARY stand-in for the score pipeline (replaced by the tuned one).

use serde::{Deserialize, Serialize};

pub const RECORD_PROBABILITY_THRESHOLD: f64 = 0.035;

pub fn raw_score(p: f64) -> f64 { if p > RECORD_PROBABILITY_THRESHOLD { 0.0 } else { (-p.max(1e-300).ln() / 7.0).min(100.0) } }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Normalizer { max_raw: f64 }

impl Normalizer {
    pub fn new(_bucket_span_s: i64) -> Self { Normalizer { max_raw: 0.0 } }
    pub fn observe(&mut self, _time_s: i64, max_raw: f64) { self.max_raw = self.max_raw.max(max_raw) }
    pub fn normalise(&self, raw: f64, _p: f64) -> f64 { if self.max_raw <= 0.0 { 0.0 } else { (100.0 * raw / self.max_raw).min(100.0) } }
    pub fn memory_bytes(&self) -> usize { std::mem::size_of::<Self>() }
}

pub fn severity(score: f64) -> &'static str { if score < 25.0 { "warning" } else if score < 50.0 { "minor" } else if score < 75.0 { "major" } else { "critical" } }
