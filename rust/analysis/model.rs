//! TEMPORARY stand-in for the per-series model (replaced by the tuned one): EW Gaussian.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side { Both, High, Low }

#[derive(Clone, Debug)]
pub struct ModelConfig { pub bucket_span_s: i64, pub side: Side, pub is_count: bool }

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Observation { pub probability: f64, pub p_single: f64, pub p_multi: f64, pub typical: f64, pub lower: f64, pub upper: f64, pub multi_bucket_impact: f64 }

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesModel { n: u64, mean: f64, var: f64 }

impl SeriesModel {
    pub fn new(_cfg: &ModelConfig) -> Self { SeriesModel { n: 0, mean: 0.0, var: 0.0 } }
    pub fn observe(&mut self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64) -> Observation {
        let o = self.score_only(cfg, time_s, value, weight);
        if value.is_finite() {
            self.n += 1;
            let a = (1.0 / self.n as f64).max(0.01);
            let d = value - self.mean;
            self.mean += a * d;
            self.var = (1.0 - a) * (self.var + a * d * d);
        }
        o
    }
    pub fn score_only(&self, cfg: &ModelConfig, _time_s: i64, value: f64, _weight: f64) -> Observation {
        let sd = self.var.sqrt().max(1e-6);
        let z = (value - self.mean) / sd;
        let tail = |z: f64| 0.5 * (-z * z / 2.0).exp().min(1.0);
        let p = if self.n < 5 || !value.is_finite() { 1.0 } else {
            match cfg.side { Side::Both => (2.0 * tail(z.abs())).min(1.0), Side::High => if z > 0.0 { tail(z) } else { 1.0 }, Side::Low => if z < 0.0 { tail(z) } else { 1.0 } }
        };
        Observation { probability: p, p_single: p, p_multi: 1.0, typical: self.mean, lower: self.mean - 2.0 * sd, upper: self.mean + 2.0 * sd, multi_bucket_impact: 0.0 }
    }
    pub fn memory_bytes(&self) -> usize { std::mem::size_of::<Self>() }
}
