use anomalyd_native::config::JobSpec;
use anomalyd_native::ingest::IngestEngine;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let body = std::fs::read(&args[1]).unwrap();
    let det = if args[2] == "mean" { r#"{"function":"mean","field_name":"kpi","by_field_name":"host","partition_field_name":"region"}"# } else { r#"{"function":"count"}"# };
    let spec = JobSpec::from_json(&format!(r#"{{"job_id":"m","analysis_config":{{"bucket_span":"5m","detectors":[{det}]}},"data_description":{{"time_field":"time","time_format":"epoch_ms"}}}}"#)).unwrap();
    let mut e = IngestEngine::open(spec, None, 16 << 20);
    let t = std::time::Instant::now();
    e.start_request();
    for c in body.chunks(1 << 20) { e.feed(c).unwrap(); }
    e.finish_request(0).unwrap();
    let n = e.analysis_mut().take_results().len();
    println!("{} {:.3} GB/s results {n}", args[2], body.len() as f64 / t.elapsed().as_secs_f64() / 1e9);
}
