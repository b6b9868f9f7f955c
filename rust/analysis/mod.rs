//! The analysis engine: processed records in, anomaly results out.
//!
//! Records arrive from the ingest pipeline with their values already extracted (no second pass
//! over the bytes). Each detector aggregates them per series into the bucket they fall in
//! ([`bucket`]); a bucket is finalised once the data's time passes its end plus the latency, or
//! when `_flush` advances time. Finalising feeds each series' value to its model ([`model`]),
//! turns probabilities into Elasticsearch's 0–100 scores ([`score`]) and emits result documents
//! ([`results`]) for the store. A job's models (about 4 KB each) outgrow the caches well before
//! its series count gets large, so finalising prefetches the next models while one updates.
//! The whole state serialises into a snapshot, so a job closed and reopened continues exactly
//! where it stopped, open buckets included.

pub mod bucket;
pub mod detector;
pub mod memory;
pub mod model;
pub mod results;
pub mod score;
pub mod series;
pub mod timing;
mod engine;
#[cfg(test)]
mod tests;

pub use engine::{AnalysisEngine, FlushRequest};

use detector::Detector;

/// What the analysis needs from a job's configuration, resolved against the analysis fields the
/// ingest pipeline extracts.
#[derive(Clone, Debug)]
pub struct AnalysisSpec {
    pub detectors: Vec<Detector>,
    /// Each influencer field's name and index among the analysis values.
    pub influencers: Vec<(String, usize)>,
    pub summary_count: Option<usize>,
    /// `analysis_limits.model_memory_limit` in bytes (see [`memory`]).
    pub model_memory_limit: usize,
}

impl AnalysisSpec {
    pub fn from_config(analysis_config: &serde_json::Value, fields: &[String]) -> Result<AnalysisSpec, String> {
        let detectors = analysis_config
            .get("detectors")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, d)| Detector::from_json(i, d, fields))
            .collect::<Result<Vec<_>, _>>()?;
        let position = |name: &str| fields.iter().position(|f| f == name);
        let influencers = analysis_config
            .get("influencers")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .filter_map(|name| position(name).map(|i| (name.to_owned(), i)))
            .collect();
        let summary_count =
            analysis_config.get("summary_count_field_name").and_then(|v| v.as_str()).and_then(position);
        Ok(AnalysisSpec { detectors, influencers, summary_count, model_memory_limit: memory::DEFAULT_LIMIT_BYTES })
    }
}
