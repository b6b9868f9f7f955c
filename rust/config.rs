//! The parts of a job's configuration the native core needs, read from the job's JSON.
//!
//! The Python front validates and completes configurations (Elasticsearch's rules and
//! messages); this only extracts what per-record work depends on.

use crate::analysis::AnalysisSpec;
use crate::time::TimeFormat;

#[derive(Debug)]
pub struct JobSpec {
    pub job_id: String,
    pub bucket_span_ms: i64,
    pub latency_ms: i64,
    pub time_field: String,
    pub time_format: TimeFormat,
    /// Distinct analysis fields in order of first appearance, without `mlcategory`.
    pub analysis_fields: Vec<String>,
    pub analysis: AnalysisSpec,
}

/// Parse an Elasticsearch time value such as `5m`, `1h`, `30s`, `100ms` into milliseconds.
pub fn parse_time_value(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.' && c != '-')?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "nanos" => 1e-6,
        "micros" => 1e-3,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some((v * mult) as i64)
}

impl JobSpec {
    pub fn from_json(text: &str) -> Result<JobSpec, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("job config: {e}"))?;
        let ac = v.get("analysis_config").ok_or("job config: no analysis_config")?;
        let dd = v.get("data_description");
        let str_at = |obj: Option<&serde_json::Value>, k: &str| {
            obj.and_then(|o| o.get(k)).and_then(|x| x.as_str()).map(str::to_owned)
        };
        let time_value = |k: &str, default: Option<i64>| -> Result<i64, String> {
            match ac.get(k) {
                None | Some(serde_json::Value::Null) => default.ok_or(format!("job config: no {k}")),
                Some(serde_json::Value::String(s)) => parse_time_value(s).ok_or(format!("job config: bad {k} [{s}]")),
                Some(serde_json::Value::Number(n)) => n.as_i64().map(|s| s * 1000).ok_or(format!("job config: bad {k}")),
                Some(_) => Err(format!("job config: bad {k}")),
            }
        };
        let bucket_span_ms = time_value("bucket_span", Some(300_000))?;
        if bucket_span_ms <= 0 {
            return Err("job config: bucket_span must be positive".into());
        }
        let latency_ms = time_value("latency", Some(0))?;
        let time_field = str_at(dd, "time_field").unwrap_or_else(|| "time".into());
        let fmt = str_at(dd, "time_format").unwrap_or_else(|| "epoch_ms".into());
        let time_format = TimeFormat::compile(&fmt)?;

        let mut analysis_fields: Vec<String> = Vec::new();
        let mut add = |name: Option<&str>| {
            if let Some(n) = name {
                if !n.is_empty() && n != "mlcategory" && n != time_field && !analysis_fields.iter().any(|f| f == n) {
                    analysis_fields.push(n.to_owned());
                }
            }
        };
        for d in ac.get("detectors").and_then(|d| d.as_array()).into_iter().flatten() {
            for k in ["field_name", "by_field_name", "over_field_name", "partition_field_name"] {
                add(d.get(k).and_then(|x| x.as_str()));
            }
        }
        for i in ac.get("influencers").and_then(|d| d.as_array()).into_iter().flatten() {
            add(i.as_str());
        }
        for k in ["categorization_field_name", "summary_count_field_name"] {
            add(ac.get(k).and_then(|x| x.as_str()));
        }
        let mut analysis = AnalysisSpec::from_config(ac, &analysis_fields)?;
        let limits = v.get("analysis_limits");
        analysis.model_memory_limit =
            crate::analysis::memory::parse_limit(limits.and_then(|l| l.get("model_memory_limit")))?;
        Ok(JobSpec {
            analysis,
            job_id: v.get("job_id").and_then(|x| x.as_str()).unwrap_or("").to_owned(),
            bucket_span_ms,
            latency_ms,
            time_field,
            time_format,
            analysis_fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_values() {
        assert_eq!(parse_time_value("5m"), Some(300_000));
        assert_eq!(parse_time_value("1h"), Some(3_600_000));
        assert_eq!(parse_time_value("100ms"), Some(100));
        assert_eq!(parse_time_value("2d"), Some(172_800_000));
        assert_eq!(parse_time_value("5"), None);
        assert_eq!(parse_time_value("5x"), None);
    }

    #[test]
    fn analysis_fields_are_the_distinct_union() {
        let spec = JobSpec::from_json(
            r#"{"job_id":"j","analysis_config":{"bucket_span":"1h","detectors":[
                {"function":"metric","field_name":"responsetime","by_field_name":"airline"},
                {"function":"count","by_field_name":"airline"}],
                "influencers":["airline","host",""],"categorization_field_name":"message"},
                "data_description":{"time_field":"time","time_format":"epoch"}}"#,
        )
        .unwrap();
        assert_eq!(spec.analysis_fields, vec!["responsetime", "airline", "host", "message"]);
        assert_eq!(spec.bucket_span_ms, 3_600_000);
        assert_eq!(spec.latency_ms, 0);
    }
}
