//! Detectors: which function, on which field, split by which fields, and how a bucket's
//! aggregated records become the value the series model sees.
//!
//! Field references are resolved once, at open, to indexes into the values the ingest pipeline
//! extracts for every processed record, so per-record work is array indexing.

use serde::{Deserialize, Serialize};

use super::model::{ModelConfig, Side};

/// The functions the analysis engine implements (Elasticsearch names, after shortcuts).
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    "count", "high_count", "low_count", "non_zero_count", "high_non_zero_count", "low_non_zero_count",
    "mean", "high_mean", "low_mean", "avg", "high_avg", "low_avg", "sum", "high_sum", "low_sum", "min", "max",
    "metric",
];

/// What a bucket's records are reduced to before modelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Number of records (or summed summary counts); an empty bucket is a 0.
    Count,
    /// As `Count`, but empty buckets are skipped.
    NonZeroCount,
    Mean,
    /// Sum of the values; an empty bucket is a 0.
    Sum,
    Min,
    Max,
    /// Min, mean and max modelled together.
    Metric,
}

impl Feature {
    /// Whether a series with no records in a bucket is still modelled (as 0).
    pub fn empty_is_zero(self) -> bool {
        matches!(self, Feature::Count | Feature::Sum)
    }

    pub fn needs_field(self) -> bool {
        !matches!(self, Feature::Count | Feature::NonZeroCount)
    }
}

#[derive(Clone, Debug)]
pub struct Detector {
    pub index: usize,
    /// The configured function name as Elasticsearch reports it in records.
    pub function: String,
    /// The base function (`function_description` in records).
    pub description: &'static str,
    pub feature: Feature,
    pub side: Side,
    pub field_name: Option<String>,
    pub by_field_name: Option<String>,
    pub partition_field_name: Option<String>,
    /// Indexes into the record's analysis values.
    pub field: Option<usize>,
    pub by: Option<usize>,
    pub partition: Option<usize>,
    pub use_null: bool,
}

impl Detector {
    pub fn model_config(&self, bucket_span_s: i64) -> ModelConfig {
        ModelConfig::new(bucket_span_s, self.side, !self.feature.needs_field())
    }

    /// Build from one detector of a job's `analysis_config`; `fields` are the job's analysis
    /// fields in the order the ingest pipeline extracts them.
    pub fn from_json(index: usize, d: &serde_json::Value, fields: &[String]) -> Result<Detector, String> {
        let text = |k: &str| d.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned);
        let function = text("function").unwrap_or_else(|| "metric".into());
        let (side, base) = match function.split_once('_') {
            Some(("high", rest)) => (Side::High, rest),
            Some(("low", rest)) => (Side::Low, rest),
            _ => (Side::Both, function.as_str()),
        };
        let (feature, description) = match base {
            "count" => (Feature::Count, "count"),
            "non_zero_count" | "nzc" => (Feature::NonZeroCount, "count"),
            "mean" | "avg" => (Feature::Mean, "mean"),
            "sum" => (Feature::Sum, "sum"),
            "min" if side == Side::Both => (Feature::Min, "min"),
            "max" if side == Side::Both => (Feature::Max, "max"),
            "metric" if side == Side::Both => (Feature::Metric, "metric"),
            _ => return Err(format!("function [{function}] is not supported")),
        };
        if text("over_field_name").is_some() {
            return Err("over_field_name (population analysis) is not supported".into());
        }
        let index_of = |name: &Option<String>| -> Result<Option<usize>, String> {
            match name {
                None => Ok(None),
                Some(n) => fields.iter().position(|f| f == n).map(Some).ok_or(format!("field [{n}] is not an analysis field")),
            }
        };
        let field_name = text("field_name");
        if feature.needs_field() && field_name.is_none() {
            return Err(format!("function [{function}] needs a field_name"));
        }
        let by_field_name = text("by_field_name");
        let partition_field_name = text("partition_field_name");
        Ok(Detector {
            index,
            description,
            feature,
            side,
            field: index_of(&field_name)?,
            by: index_of(&by_field_name)?,
            partition: index_of(&partition_field_name)?,
            field_name,
            by_field_name,
            partition_field_name,
            use_null: d.get("use_null").and_then(|v| v.as_bool()).unwrap_or(false),
            function,
        })
    }
}

/// One series' running aggregate within one bucket.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Aggregate {
    /// Records (or summed summary counts) seen.
    pub count: f64,
    /// Records whose field value was usable: the weight of the mean.
    pub n_values: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate { count: 0.0, n_values: 0.0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Aggregate {
    #[inline]
    pub fn add(&mut self, count: f64, value: Option<f64>) {
        self.count += count;
        if let Some(v) = value {
            self.n_values += count;
            self.sum += v * count;
            // Selects, not branches (minsd/maxsd): whether a value is a new extreme is
            // unpredictable, and it waits on the value's parse. Values are finite (never NaN).
            self.min = if v < self.min { v } else { self.min };
            self.max = if v > self.max { v } else { self.max };
        }
    }

    /// The values to model, as (value, weight) per modelled feature: one for every function but
    /// `metric` (min, mean, max). All `None` when the bucket is skipped for this series.
    pub fn features(&self, feature: Feature) -> [Option<FeatureValue>; 3] {
        let has_values = self.n_values > 0.0;
        let one = |name, value, weight| [Some(FeatureValue { name, value, weight }), None, None];
        match feature {
            Feature::Count => one("count", self.count, 1.0),
            Feature::NonZeroCount if self.count > 0.0 => one("count", self.count, 1.0),
            Feature::Sum => one("sum", if has_values { self.sum } else { 0.0 }, 1.0),
            Feature::Mean if has_values => one("mean", self.sum / self.n_values, self.n_values),
            Feature::Min if has_values => one("min", self.min, 1.0),
            Feature::Max if has_values => one("max", self.max, 1.0),
            Feature::Metric if has_values => [
                Some(FeatureValue { name: "min", value: self.min, weight: 1.0 }),
                Some(FeatureValue { name: "mean", value: self.sum / self.n_values, weight: self.n_values }),
                Some(FeatureValue { name: "max", value: self.max, weight: 1.0 }),
            ],
            _ => [None, None, None],
        }
    }
}

/// One value to model: which feature, its value, and how many documents stand behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureValue {
    pub name: &'static str,
    pub value: f64,
    pub weight: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(json: &str) -> Result<Detector, String> {
        let fields = vec!["responsetime".to_string(), "airline".to_string()];
        Detector::from_json(0, &serde_json::from_str(json).unwrap(), &fields)
    }

    #[test]
    fn functions_map_to_features_and_sides() {
        let d = det(r#"{"function":"high_mean","field_name":"responsetime","by_field_name":"airline"}"#).unwrap();
        assert_eq!((d.feature, d.side, d.field, d.by, d.description), (Feature::Mean, Side::High, Some(0), Some(1), "mean"));
        let d = det(r#"{"function":"low_non_zero_count"}"#).unwrap();
        assert_eq!((d.feature, d.side), (Feature::NonZeroCount, Side::Low));
        assert!(det(r#"{"function":"rare","by_field_name":"airline"}"#).unwrap_err().contains("[rare]"));
        assert!(det(r#"{"function":"high_min","field_name":"responsetime"}"#).is_err());
        assert!(det(r#"{"function":"count","over_field_name":"airline"}"#).is_err());
    }

    /// The list the Python front checks at job creation and the parser here must agree.
    #[test]
    fn every_supported_function_parses() {
        for f in SUPPORTED_FUNCTIONS {
            let field = if matches!(*f, "count" | "high_count" | "low_count") || f.ends_with("non_zero_count") {
                ""
            } else {
                r#","field_name":"responsetime""#
            };
            assert!(det(&format!(r#"{{"function":"{f}"{field}}}"#)).is_ok(), "{f}");
        }
    }

    #[test]
    fn empty_buckets_per_function() {
        let empty = Aggregate::default();
        let fv = |name, value, weight| Some(FeatureValue { name, value, weight });
        assert_eq!(empty.features(Feature::Count), [fv("count", 0.0, 1.0), None, None]);
        assert_eq!(empty.features(Feature::Sum), [fv("sum", 0.0, 1.0), None, None]);
        for f in [Feature::NonZeroCount, Feature::Mean, Feature::Min, Feature::Max, Feature::Metric] {
            assert_eq!(empty.features(f), [None, None, None], "{f:?}");
        }
        let mut a = Aggregate::default();
        a.add(1.0, Some(2.0));
        a.add(1.0, Some(4.0));
        a.add(1.0, None);
        assert_eq!(a.features(Feature::Mean), [fv("mean", 3.0, 2.0), None, None]);
        assert_eq!(a.features(Feature::Count), [fv("count", 3.0, 1.0), None, None]);
        assert!(a.features(Feature::Metric).iter().all(Option::is_some));
    }
}
