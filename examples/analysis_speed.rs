//! Analysis throughput probe for `make bench-analysis`: SERIES series (partition × by) of a
//! `mean` detector over BUCKETS buckets, one record per series per bucket, driven straight into
//! the analysis engine (no JSON), so the figure is aggregation + model updates + scoring.
//! Prints one JSON line.

use anomalyd_native::analysis::{AnalysisEngine, AnalysisSpec};
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let (series, buckets) = (env("SERIES", 10_000), env("BUCKETS", 1_000));
    let partitions = (series as f64).sqrt().round().max(1.0) as usize;
    let by_values = series.div_ceil(partitions);
    let fields = vec!["value".to_string(), "host".to_string(), "region".to_string()];
    let config = serde_json::json!({"bucket_span": "5m", "detectors": [
        {"function": "mean", "field_name": "value", "by_field_name": "host", "partition_field_name": "region"}]});
    let spec = AnalysisSpec::from_config(&config, &fields).expect("valid spec");
    let mut engine = AnalysisEngine::new("bench", 300_000, 0, spec);
    let hosts: Vec<String> = (0..by_values).map(|i| format!("host-{i}")).collect();
    let regions: Vec<String> = (0..partitions).map(|i| format!("region-{i}")).collect();
    let values: Vec<String> = (0..97).map(|i| format!("{:.1}", 100.0 + (i * 37 % 23) as f64)).collect();
    let mut results = 0usize;
    let started = Instant::now();
    for b in 0..=buckets {
        // The extra bucket's first record finalises the last measured one.
        let t = 1_700_000_000_000i64 + b as i64 * 300_000;
        for s in 0..series {
            let v = values[(s * 31 + b * 7) % values.len()].as_bytes();
            let row = [Some(v), Some(hosts[s % by_values].as_bytes()), Some(regions[s / by_values].as_bytes())];
            engine.record(t + (s % 1000) as i64, &row);
            if b == buckets {
                break;
            }
        }
        results += engine.take_results().len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats: serde_json::Value = serde_json::from_str(&engine.stats_json()).expect("stats JSON");
    let updates = (series * buckets) as f64;
    let finalise_ms = stats["timing_stats"]["total_bucket_processing_time_ms"].as_f64().unwrap_or(0.0);
    let out = serde_json::json!({
        "series": stats["series_count"], "buckets": buckets, "seconds": seconds,
        "series_bucket_updates_per_s": updates / seconds,
        "model_updates_per_s": updates / (finalise_ms / 1000.0),
        "bytes_per_series": stats["model_bytes"].as_f64().unwrap_or(0.0) / series as f64,
        "results": results,
    });
    println!("{out}");
}
