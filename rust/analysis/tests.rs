//! The analysis lifecycle end to end through the ingest engine: bucket finalisation, flush,
//! skip_time, interim results, influencers and snapshots.

use super::engine::FlushRequest;
use crate::config::JobSpec;
use crate::ingest::JobEngine;

fn engine(analysis: &str) -> JobEngine {
    let spec = JobSpec::from_json(&format!(
        r#"{{"job_id":"j","analysis_config":{analysis},"data_description":{{"time_field":"time","time_format":"epoch"}}}}"#
    ))
    .unwrap();
    JobEngine::open(spec, None, 1 << 20)
}

fn post(e: &mut JobEngine, body: &str) {
    e.start_request();
    e.feed(body.as_bytes()).unwrap();
    e.finish_request(0).unwrap();
}

fn flush(e: &mut JobEngine, r: FlushRequest) -> Option<i64> {
    e.analysis_mut().flush(r)
}

/// Result documents of one type produced since the last call.
fn take(e: &mut JobEngine) -> Vec<serde_json::Value> {
    e.analysis_mut().take_results().into_iter().map(|r| serde_json::from_str(&r.doc).unwrap()).collect()
}

fn of_type<'a>(docs: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    docs.iter().filter(|d| d["result_type"] == t).collect()
}

const AIRLINE: &str = r#"{"bucket_span":"1h","detectors":[{"function":"mean","field_name":"responsetime","by_field_name":"airline"}]}"#;

#[test]
fn flush_reports_the_start_of_the_open_bucket() {
    let mut e = engine(AIRLINE);
    assert_eq!(flush(&mut e, FlushRequest::default()), None);
    post(&mut e, r#"{"airline":"AAL","responsetime":132.2046,"time":1403481600}
{"airline":"JZA","responsetime":990.4628,"time":1403481700}"#);
    assert_eq!(flush(&mut e, FlushRequest::default()), Some(1403481600000));
    assert!(take(&mut e).is_empty());
}

/// Elasticsearch's post_data.yml "flush with skip_time": two buckets, one event each.
#[test]
fn skip_time_drops_the_skipped_bucket_and_close_keeps_the_current_one() {
    let mut e = engine(AIRLINE);
    post(&mut e, r#"{"airline":"AAL","responsetime":132.2046,"time":1403481600}
{"airline":"AAL","responsetime":990.4628,"time":1403485200}"#);
    let skip = FlushRequest { skip_time_ms: Some(1403488700000), ..Default::default() };
    assert_eq!(flush(&mut e, skip), Some(1403488800000));
    post(&mut e, r#"{"airline":"AAL","responsetime":1,"time":1403488600}{"airline":"AAL","responsetime":1,"time":1403488700}"#);
    post(&mut e, r#"{"airline":"AAL","responsetime":1,"time":1403488900}{"airline":"AAL","responsetime":1,"time":1403492400}"#);
    let docs = take(&mut e);
    let buckets = of_type(&docs, "bucket");
    let got: Vec<(i64, i64)> =
        buckets.iter().map(|b| (b["timestamp"].as_i64().unwrap(), b["event_count"].as_i64().unwrap())).collect();
    assert_eq!(got, vec![(1403481600000, 1), (1403488800000, 1)]);
    assert_eq!(buckets[0]["bucket_span"], 3600);
    assert_eq!(buckets[0]["is_interim"], false);
}

#[test]
fn empty_buckets_in_a_gap_are_final_and_counted_per_function() {
    let mut e = engine(r#"{"bucket_span":"60s","detectors":[{"function":"count"},{"function":"mean","field_name":"v"}]}"#);
    post(&mut e, r#"{"v":1,"time":0}{"v":1,"time":10}{"v":2,"time":250}"#);
    let docs = take(&mut e);
    let events: Vec<i64> = of_type(&docs, "bucket").iter().map(|b| b["event_count"].as_i64().unwrap()).collect();
    assert_eq!(events, vec![2, 0, 0, 0]);
    assert_eq!(e.analysis().last_finalized_bucket_end(), Some(240_000));
}

#[test]
fn latency_keeps_buckets_open() {
    let mut e = engine(r#"{"bucket_span":"60s","latency":"120s","detectors":[{"function":"count"}]}"#);
    post(&mut e, r#"{"time":0}{"time":70}{"time":130}"#);
    assert!(take(&mut e).is_empty());
    post(&mut e, r#"{"time":30}{"time":180}"#); // t=30 still counts: its bucket is open
    let docs = take(&mut e);
    assert_eq!(of_type(&docs, "bucket")[0]["event_count"], 2);
}

#[test]
fn advance_time_finalises_and_interim_results_are_not_learned() {
    let mut e = engine(r#"{"bucket_span":"60s","detectors":[{"function":"count"}]}"#);
    post(&mut e, r#"{"time":0}{"time":1}{"time":61}"#);
    take(&mut e);
    let interim = FlushRequest { calc_interim: true, ..Default::default() };
    assert_eq!(flush(&mut e, interim), Some(60_000));
    let docs = take(&mut e);
    assert_eq!(of_type(&docs, "bucket").len(), 1);
    assert_eq!(docs[0]["is_interim"], true);
    assert_eq!(docs[0]["timestamp"], 60_000);
    let advance = FlushRequest { advance_time_ms: Some(180_000), ..Default::default() };
    assert_eq!(flush(&mut e, advance), Some(180_000));
    let docs = take(&mut e);
    let final_buckets: Vec<_> = of_type(&docs, "bucket").iter().map(|b| (b["timestamp"].clone(), b["is_interim"].clone())).collect();
    assert_eq!(final_buckets.len(), 2);
    assert!(final_buckets.iter().all(|(_, i)| *i == false));
}

/// A steady series per airline, then one airline spikes: one record, with its influencer.
#[test]
fn a_spike_makes_a_record_with_influencers() {
    let mut e = engine(
        r#"{"bucket_span":"1h","detectors":[{"function":"mean","field_name":"responsetime","by_field_name":"airline"}],"influencers":["airline","host"]}"#,
    );
    let mut body = String::new();
    for h in 0..24 * 14 {
        for (i, airline) in ["AAL", "JZA"].iter().enumerate() {
            let v = 100.0 + (i as f64) * 50.0 + ((h * 7 + i * 3) % 5) as f64;
            body.push_str(&format!(r#"{{"airline":"{airline}","host":"h{i}","responsetime":{v},"time":{}}}"#, h * 3600));
        }
    }
    let spike = 24 * 14 * 3600;
    body.push_str(&format!(r#"{{"airline":"AAL","host":"h9","responsetime":5000,"time":{spike}}}"#));
    body.push_str(&format!(r#"{{"airline":"JZA","host":"h1","responsetime":151,"time":{spike}}}"#));
    body.push_str(&format!(r#"{{"airline":"JZA","host":"h1","responsetime":151,"time":{}}}"#, spike + 3600));
    post(&mut e, &body);
    let docs = take(&mut e);
    let records = of_type(&docs, "record");
    let last: Vec<_> = records.iter().filter(|r| r["timestamp"] == spike * 1000).collect();
    assert_eq!(last.len(), 1, "{last:?}");
    let r = last[0];
    assert_eq!(r["by_field_value"], "AAL");
    assert_eq!(r["function"], "mean");
    assert_eq!(r["actual"][0], 5000.0);
    assert!(r["record_score"].as_f64().unwrap() > 50.0, "{r}");
    assert_eq!(r["airline"], serde_json::json!(["AAL"]));
    assert_eq!(r["influencers"][1]["influencer_field_values"], serde_json::json!(["h9"]));
    let infl: Vec<_> = of_type(&docs, "influencer").into_iter().filter(|i| i["timestamp"] == spike * 1000).collect();
    assert_eq!(infl.len(), 2);
    let bucket = of_type(&docs, "bucket").into_iter().find(|b| b["timestamp"] == spike * 1000).unwrap();
    assert!(bucket["anomaly_score"].as_f64().unwrap() > 0.0);
    assert_eq!(bucket["bucket_influencers"].as_array().unwrap().last().unwrap()["influencer_field_name"], "bucket_time");
}

/// The same data in one go, or cut by a snapshot and restore at any request boundary, gives
/// the same results.
#[test]
fn snapshot_and_restore_continue_exactly() {
    let analysis = r#"{"bucket_span":"10m","detectors":[{"function":"high_mean","field_name":"v","partition_field_name":"p"},{"function":"count"}],"influencers":["p"]}"#;
    let mut lines = Vec::new();
    for i in 0..3000i64 {
        let v = if i == 2500 { 400.0 } else { 10.0 + ((i * 37) % 11) as f64 };
        lines.push(format!(r#"{{"p":"p{}","v":{v},"time":{}}}"#, i % 3, i * 200));
    }
    let requests: Vec<String> = lines.chunks(170).map(|c| c.join("\n")).collect();
    let mut whole = engine(analysis);
    let mut expected = Vec::new();
    for r in &requests {
        post(&mut whole, r);
        expected.extend(take(&mut whole));
    }
    for cut in [1, 7, 12] {
        let mut first = engine(analysis);
        let mut got = Vec::new();
        for r in &requests[..cut] {
            post(&mut first, r);
            got.extend(take(&mut first));
        }
        let snap = first.analysis().snapshot();
        let mut second = engine(analysis);
        second.analysis_mut().restore(&snap).unwrap();
        for r in &requests[cut..] {
            post(&mut second, r);
            got.extend(take(&mut second));
        }
        let strip = |v: &Vec<serde_json::Value>| -> Vec<serde_json::Value> {
            v.iter().cloned().map(|mut d| {
                d.as_object_mut().unwrap().remove("processing_time_ms");
                d
            }).collect()
        };
        assert_eq!(strip(&got), strip(&expected), "cut after request {cut}");
    }
    assert!(of_type(&expected, "record").iter().any(|r| r["timestamp"] == (2500 * 200 / 600) * 600 * 1000));
    let other = engine(r#"{"bucket_span":"10m","detectors":[{"function":"count"}]}"#);
    let mut other = other;
    assert!(other.analysis_mut().restore(&whole.analysis().snapshot()).is_err());
    let mut old_format = whole.analysis().snapshot();
    old_format[0] = 1; // the leading varint version
    assert!(engine(analysis).analysis_mut().restore(&old_format).unwrap_err().contains("format 1"));
}

#[test]
fn reset_buckets_forgets_what_open_buckets_gathered() {
    let mut e = engine(r#"{"bucket_span":"60s","latency":"120s","detectors":[{"function":"count"}]}"#);
    post(&mut e, r#"{"time":0}{"time":1}{"time":61}{"time":62}"#);
    e.analysis_mut().reset_buckets(60_000, 120_000);
    post(&mut e, r#"{"time":63}{"time":300}"#);
    let docs = take(&mut e);
    let events: Vec<i64> = of_type(&docs, "bucket").iter().map(|b| b["event_count"].as_i64().unwrap()).collect();
    assert_eq!(events, vec![2, 1, 0]);
}

/// With `summary_count_field_name` each document stands for that many events; a document
/// without a usable count is not analysed.
#[test]
fn summary_counts_weight_the_count() {
    let mut e = engine(r#"{"bucket_span":"1h","summary_count_field_name":"dc","detectors":[{"function":"high_count"}]}"#);
    let mut body = String::new();
    for h in 0..40 {
        body.push_str(&format!(r#"{{"dc":{},"time":{}}}{{"dc":"4","time":{}}}"#, 6 + h % 3, h * 3600, h * 3600 + 60));
    }
    body.push_str(r#"{"dc":900,"time":144000}{"time":144001}{"dc":"x","time":144002}{"dc":1,"time":147600}"#);
    post(&mut e, &body);
    let docs = take(&mut e);
    let last = of_type(&docs, "bucket").into_iter().find(|b| b["timestamp"] == 144_000_000).unwrap().clone();
    assert_eq!(last["event_count"], 1);
    let records = of_type(&docs, "record");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["actual"][0], 900.0);
    assert_eq!(records[0]["function"], "high_count");
    assert_eq!(records[0]["function_description"], "count");
}

/// Times at the ends of i64 (a parsed 2.3e16 s epoch saturates) are counted, not analysed:
/// bucket arithmetic there would overflow and never finish.
#[test]
fn extreme_times_are_not_analysed() {
    let mut e = engine(r#"{"bucket_span":"1s","detectors":[{"function":"metric","field_name":"v"}]}"#);
    post(&mut e, r#"{"time":-9e15,"v":2}{"time":0,"v":1}{"time":3,"v":1}{"time":2.295307832393728e+16,"v":1}"#);
    let huge = FlushRequest { advance_time_ms: Some(i64::MAX), skip_time_ms: Some(i64::MAX - 1), ..Default::default() };
    assert_eq!(flush(&mut e, huge), Some(3000));
    e.analysis_mut().reset_buckets(i64::MIN, i64::MAX);
    let docs = take(&mut e);
    assert_eq!(of_type(&docs, "bucket").len(), 3);
}

/// FNV-1a: a stable digest to pin outputs with.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A many-series job end to end, pinned bit for bit: every result document and the final
/// snapshot (but the measured processing times) hash to the values the unoptimised engine gave.
/// Covers warm-up and after, daily seasonality, anomalies with influencers, interim results,
/// series missing from buckets, and detectors with and without split fields. Any change in what
/// is learned, scored or emitted (or in their order) shows here; a deliberate change of the
/// model updates the constants.
#[test]
fn many_series_results_are_pinned() {
    let analysis = r#"{"bucket_span":"5m","detectors":[
        {"function":"mean","field_name":"kpi","by_field_name":"host","partition_field_name":"region"},
        {"function":"metric","field_name":"kpi","by_field_name":"host"},
        {"function":"count","partition_field_name":"region"},
        {"function":"high_sum","field_name":"kpi"}],
        "influencers":["host","region","note"]}"#;
    let mut e = engine(analysis);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let (regions, hosts) = (["us", "eu-central", "ap-southeast-2"], 12);
    let mut docs = Vec::new();
    let mut records = 0;
    for b in 0..8 * 288i64 {
        let mut body = String::new();
        for (r, region) in regions.iter().enumerate() {
            for h in 0..hosts {
                let series = (r * hosts + h) as f64;
                if uniform() < 0.05 {
                    continue; // absent this bucket
                }
                let daily = 20.0 * (2.0 * std::f64::consts::PI * (b % 288) as f64 / 288.0 + series).sin();
                for k in 0..1 + (uniform() * 3.0) as i64 {
                    let spike = if b > 400 && uniform() < 0.002 { 400.0 * uniform() } else { 0.0 };
                    let v = 100.0 + 10.0 * series + daily + 5.0 * uniform() + spike;
                    let note = ["gc", "disk", "tls"][(uniform() * 3.0) as usize];
                    let t = b * 300 + k * 50 + (series as i64 % 40);
                    body.push_str(&format!(
                        r#"{{"time":{t},"kpi":{v:.2},"host":"host-{h}","region":"{}","note":"{note}"}}"#,
                        region
                    ));
                }
            }
        }
        post(&mut e, &body);
        if b % 97 == 0 {
            flush(&mut e, FlushRequest { calc_interim: true, ..Default::default() });
        }
        for mut d in take(&mut e) {
            d.as_object_mut().unwrap().remove("processing_time_ms");
            records += (d["result_type"] == "record") as usize;
            docs.push(d.to_string());
        }
    }
    let results = docs.iter().fold(0xcbf2_9ce4_8422_2325, |h, d| fnv1a(d.as_bytes(), h));
    let snapshot = fnv1a(&e.analysis().snapshot_untimed(), 0xcbf2_9ce4_8422_2325);
    assert!(records > 20, "{records} records");
    assert_eq!((docs.len(), records), (8597, 1209));
    assert_eq!(format!("{results:016x} {snapshot:016x}"), "41293483253d8a91 1aa78c37720e3eef");
}

/// The memory limit's refusals travel with the snapshot, with the buckets already counted; a
/// snapshot from before they were kept (no tail) restores with none.
#[test]
fn snapshots_keep_the_memory_refusals() {
    let limited = || {
        let spec = format!(
            r#"{{"job_id":"j","analysis_config":{AIRLINE},"analysis_limits":{{"model_memory_limit":"64kb"}},"data_description":{{"time_field":"time","time_format":"epoch"}}}}"#
        );
        JobEngine::open(JobSpec::from_json(&spec).unwrap(), None, 1 << 20)
    };
    let mut e = limited();
    let body: String = (0..100).map(|k| format!(r#"{{"airline":"A{k}","responsetime":1,"time":{}}}"#, 1403481600 + k)).collect();
    post(&mut e, &body);
    let stats = |e: &JobEngine| {
        let s: serde_json::Value = serde_json::from_str(&e.analysis().stats_json()).unwrap();
        (s["memory_status"].clone(), s["bucket_allocation_failures_count"].clone(), s["model_bytes_exceeded"].clone())
    };
    let before = stats(&e);
    assert_eq!((before.0.as_str(), before.1.as_u64()), (Some("hard_limit"), Some(1)));
    let snapshot = e.analysis().snapshot();
    let mut restored = limited();
    restored.analysis_mut().restore(&snapshot).unwrap();
    assert_eq!(stats(&restored), before);
    // A new series refused again in the bucket already counted does not count twice.
    post(&mut restored, r#"{"airline":"NEW","responsetime":1,"time":1403481700}"#);
    assert_eq!(stats(&restored).1.as_u64(), Some(1));
    post(&mut restored, r#"{"airline":"NEW","responsetime":1,"time":1403485300}"#);
    assert_eq!(stats(&restored).1.as_u64(), Some(2), "a refusal in the next bucket counts");
    // The snapshot proper alone, as builds before the refusals were kept wrote it, and with a
    // tail that does not read: the model restores, with no refusals.
    let proper = e.analysis().snapshot_untimed();
    for tail in [&[][..], &[0xff, 0xff, 0xff][..]] {
        let mut old = limited();
        old.analysis_mut().restore(&[&proper[..], tail].concat()).unwrap();
        assert_eq!((stats(&old).0.as_str(), stats(&old).1.as_u64()), (Some("ok"), Some(0)));
        assert_eq!(old.analysis().snapshot_untimed(), proper);
    }
}

/// The hourly average of bucket times travels with the snapshot (in its tail, after the
/// refusals); a snapshot from the builds before it (refusals only) restores with none.
#[test]
fn snapshots_keep_the_hourly_bucket_time() {
    let hourly = |e: &JobEngine| {
        let s: serde_json::Value = serde_json::from_str(&e.analysis().stats_json()).unwrap();
        s["timing_stats"]["exponential_average_bucket_processing_time_per_hour_ms"].as_f64()
    };
    let mut e = engine(AIRLINE);
    assert_eq!(hourly(&e), None, "no bucket yet: not shown");
    let body: String = (0..600).map(|k| format!(r#"{{"airline":"AAL","responsetime":{},"time":{}}}"#, k % 7, 1403481600 + 60 * k)).collect();
    post(&mut e, &body);
    let before = hourly(&e).expect("buckets were processed");
    assert!(before > 0.0);
    let snapshot = e.analysis().snapshot();
    let mut restored = engine(AIRLINE);
    restored.analysis_mut().restore(&snapshot).unwrap();
    assert_eq!(hourly(&restored), Some(before));
    let tail = postcard::to_allocvec(e.analysis().hourly()).unwrap();
    let mut old = engine(AIRLINE);
    old.analysis_mut().restore(&snapshot[..snapshot.len() - tail.len()]).unwrap();
    assert_eq!(old.analysis().hourly(), &Default::default());
    assert_eq!(old.analysis().snapshot_untimed(), e.analysis().snapshot_untimed());
}

/// `changes` moves with everything that changes the snapshot and stays put otherwise, so a
/// model that has not changed since it was stored is not stored again.
#[test]
fn changes_move_exactly_when_the_snapshot_may_change() {
    let mut e = engine(AIRLINE);
    let mut last = e.analysis().changes();
    let mut step = |e: &mut JobEngine, what: &str, moves: bool, op: &dyn Fn(&mut JobEngine)| {
        let snap = e.analysis().snapshot();
        op(e);
        let now = e.analysis().changes();
        assert_eq!(now != last, moves, "{what}: changes {last} -> {now}");
        if !moves {
            assert_eq!(e.analysis().snapshot(), snap, "{what}: the snapshot changed without a count");
        }
        last = now;
    };
    let rec = r#"{"airline":"AAL","responsetime":1,"time":1403481600}"#;
    step(&mut e, "a record", true, &|e| post(e, rec));
    step(&mut e, "a request with no record", false, &|e| post(e, " "));
    step(&mut e, "an undated record", false, &|e| post(e, r#"{"airline":"AAL"}"#));
    step(&mut e, "a flush", false, &|e| { flush(e, FlushRequest::default()); });
    step(&mut e, "interim results", false, &|e| { flush(e, FlushRequest { calc_interim: true, ..Default::default() }); });
    step(&mut e, "results taken", false, &|e| { take(e); });
    let noop_skip = FlushRequest { skip_time_ms: Some(1403481600000), ..Default::default() };
    step(&mut e, "a skip to the open bucket", false, &|e| { flush(e, noop_skip); });
    step(&mut e, "a reset", true, &|e| e.analysis_mut().reset_buckets(0, i64::MAX));
    step(&mut e, "an advance", true, &|e| { flush(e, FlushRequest { advance_time_ms: Some(1403488800000), ..Default::default() }); });
    step(&mut e, "a skip ahead", true, &|e| { flush(e, FlushRequest { skip_time_ms: Some(1403499600000), ..Default::default() }); });
    let snap = e.analysis().snapshot();
    step(&mut e, "a restore", true, &|e| e.analysis_mut().restore(&snap).unwrap());
    step(&mut e, "a discard", true, &|e| e.analysis_mut().discard());
}
