//! Result documents as Elasticsearch writes them: buckets, records, influencers, and the
//! bucket influencers inside buckets. Field names and order follow the ES result classes;
//! timestamps are epoch ms and `bucket_span` is in seconds.

use std::collections::BTreeMap;

use serde::Serialize;

/// One result ready for the store: what it is indexed by, and its JSON document.
#[derive(Clone, Debug)]
pub struct ResultRow {
    pub result_type: &'static str,
    pub timestamp: i64,
    /// `anomaly_score`, `record_score` or `influencer_score`: the store's score index.
    pub score: f64,
    pub is_interim: bool,
    pub doc: String,
}

/// Field names of result documents: input fields with these names are not repeated at top level.
const RESERVED: &[&str] = &[
    "job_id", "result_type", "probability", "multi_bucket_impact", "record_score", "initial_record_score",
    "bucket_span", "detector_index", "is_interim", "timestamp", "partition_field_name", "partition_field_value",
    "by_field_name", "by_field_value", "function", "function_description", "typical", "actual", "field_name",
    "influencers", "influencer_field_name", "influencer_field_value", "influencer_score",
    "initial_influencer_score", "anomaly_score_explanation",
];

#[derive(Serialize)]
pub struct BucketInfluencerDoc<'a> {
    pub job_id: &'a str,
    pub result_type: &'static str,
    pub influencer_field_name: &'a str,
    pub initial_anomaly_score: f64,
    pub anomaly_score: f64,
    pub raw_anomaly_score: f64,
    pub probability: f64,
    pub timestamp: i64,
    pub bucket_span: i64,
    pub is_interim: bool,
}

#[derive(Serialize)]
pub struct BucketDoc<'a> {
    pub job_id: &'a str,
    pub timestamp: i64,
    pub anomaly_score: f64,
    pub bucket_span: i64,
    pub initial_anomaly_score: f64,
    pub event_count: u64,
    pub is_interim: bool,
    pub bucket_influencers: Vec<BucketInfluencerDoc<'a>>,
    pub processing_time_ms: u64,
    pub result_type: &'static str,
}

#[derive(Serialize)]
pub struct InfluenceDoc<'a> {
    pub influencer_field_name: &'a str,
    pub influencer_field_values: Vec<&'a str>,
}

#[derive(Serialize)]
pub struct ScoreExplanation {
    pub anomaly_type: &'static str,
    pub single_bucket_impact: i64,
    pub multi_bucket_impact: i64,
    pub lower_confidence_bound: f64,
    pub typical_value: f64,
    pub upper_confidence_bound: f64,
}

#[derive(Serialize)]
pub struct RecordDoc<'a> {
    pub job_id: &'a str,
    pub result_type: &'static str,
    pub probability: f64,
    pub multi_bucket_impact: f64,
    pub record_score: f64,
    pub initial_record_score: f64,
    pub bucket_span: i64,
    pub detector_index: usize,
    pub is_interim: bool,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_field_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_field_value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_field_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_field_value: Option<&'a str>,
    pub function: &'a str,
    pub function_description: &'a str,
    pub typical: [f64; 1],
    pub actual: [f64; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub influencers: Vec<InfluenceDoc<'a>>,
    pub anomaly_score_explanation: ScoreExplanation,
    /// By, partition and influencer values repeated under their field names.
    #[serde(flatten)]
    pub input_fields: BTreeMap<&'a str, Vec<&'a str>>,
}

#[derive(Serialize)]
pub struct InfluencerDoc<'a> {
    pub job_id: &'a str,
    pub result_type: &'static str,
    pub influencer_field_name: &'a str,
    pub influencer_field_value: &'a str,
    pub influencer_score: f64,
    pub initial_influencer_score: f64,
    pub probability: f64,
    pub bucket_span: i64,
    pub is_interim: bool,
    pub timestamp: i64,
    #[serde(flatten)]
    pub input_fields: BTreeMap<&'a str, &'a str>,
}

/// Whether an input field may be repeated at the top level of a result.
pub fn repeatable(field: &str) -> bool {
    !RESERVED.contains(&field)
}

/// JSON can't hold NaN or infinities; a model must never produce them, but a result must
/// always serialise.
pub fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

pub fn row<T: Serialize>(result_type: &'static str, timestamp: i64, score: f64, is_interim: bool, doc: &T) -> ResultRow {
    let doc = serde_json::to_string(doc).expect("result documents hold finite numbers and strings only");
    ResultRow { result_type, timestamp, score, is_interim, doc }
}
