use anomalyd_native::config::JobSpec;
use anomalyd_native::ingest::IngestEngine;
fn main() {
    let spec = JobSpec::from_json(r#"{"job_id":"m","analysis_config":{"bucket_span":"5m","detectors":[{"function":"mean","field_name":"kpi","by_field_name":"host"}]},"data_description":{"time_field":"time","time_format":"epoch_ms"}}"#).unwrap();
    let mut e = IngestEngine::open(spec, None, 16 << 20);
    let mut chunk = Vec::new();
    for i in 0..3000u64 { chunk.extend_from_slice(format!("{{\"time\":{},\"kpi\":12.5,\"host\":\"srv-1\",\"region\":\"eu\",\"note\":\"x\"}}\n", 1700000000000u64 + i).as_bytes()); }
    e.start_request();
    let t = std::time::Instant::now();
    let iters: usize = std::env::var("ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    for _ in 0..iters { e.feed(&chunk).unwrap(); }
    let dt = t.elapsed().as_secs_f64();
    println!("{:.3} GB/s", (chunk.len() * iters) as f64 / dt / 1e9);
}
