//! In-process probe over a real corpus file: `CORPUS=path [LIMIT=bytes] [ITERS=n] [JOB=count]
//! cargo run --release --example ingest_corpus` (the bench-http mean job, or a count job). Feeds 1 MiB chunks like `make bench-core` and
//! prints GB/s, records and the request's counts (so runs can be compared for equality).
use anomalyd_native::config::JobSpec;
use anomalyd_native::ingest::JobEngine;
fn main() {
    let mean = r#"{"job_id":"bench","analysis_config":{"bucket_span":"5m","detectors":[{"function":"mean","field_name":"kpi","by_field_name":"host","partition_field_name":"region"}],"influencers":["host"]},"data_description":{"time_field":"time","time_format":"epoch_ms"}}"#;
    let count = r#"{"job_id":"bench","analysis_config":{"bucket_span":"5m","detectors":[{"function":"count"}]},"data_description":{"time_field":"time","time_format":"epoch_ms"}}"#;
    let spec_json = if std::env::var("JOB").as_deref() == Ok("count") { count } else { mean };
    let path = std::env::var("CORPUS").expect("CORPUS=path of an NDJSON corpus");
    let mut body = std::fs::read(path).unwrap();
    if let Some(limit) = std::env::var("LIMIT").ok().and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(limit.min(body.len()));
        // Whole records only, so that the request ends cleanly.
        let end = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        body.truncate(end);
    }
    let iters: usize = std::env::var("ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let chunks: Vec<&[u8]> = body.chunks(1 << 20).collect();
    let mut best = f64::MAX;
    let mut out = String::new();
    for _ in 0..iters {
        let mut e = JobEngine::open(JobSpec::from_json(spec_json).unwrap(), None, 16 << 20);
        let t = std::time::Instant::now();
        e.start_request();
        for c in &chunks {
            e.feed(c).unwrap();
        }
        out = e.finish_request(0).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{:.3} GB/s", body.len() as f64 / best / 1e9);
    println!("{out}");
}
