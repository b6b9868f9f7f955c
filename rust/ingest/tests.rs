//! The spec's worked examples, end to end through the engine, fed whole and in every chunking.

use super::counts::DataCounts;
use super::JobEngine;
use crate::config::JobSpec;
use crate::ingest::stream::StreamError;

fn job(detector: &str, extra: &str, format: &str) -> JobSpec {
    JobSpec::from_json(&format!(
        r#"{{"job_id":"j","analysis_config":{{"detectors":[{detector}]{extra}}},
            "data_description":{{"time_field":"time","time_format":"{format}"}}}}"#
    ))
    .unwrap()
}

fn metric_by_airline() -> JobSpec {
    job(r#"{"function":"metric","field_name":"responsetime","by_field_name":"airline"}"#, r#","bucket_span":"1h""#, "epoch")
}

/// Post `body` as one request fed in `step`-byte chunks; the response as parsed JSON.
fn post(e: &mut JobEngine, body: &[u8], step: usize) -> Result<serde_json::Value, StreamError> {
    e.start_request();
    for c in body.chunks(step.max(1)) {
        e.feed(c)?;
    }
    let s = e.finish_request(1_700_000_000_000)?;
    Ok(serde_json::from_str(&s).unwrap())
}

/// The response to `body` posted to a fresh job, asserting that every chunking agrees.
fn post_fresh(spec: impl Fn() -> JobSpec, body: &[u8]) -> Result<serde_json::Value, StreamError> {
    let whole = post(&mut JobEngine::open(spec(), None, 1 << 20), body, body.len());
    for step in [1, 2, 3, 7, 64] {
        let chunked = post(&mut JobEngine::open(spec(), None, 1 << 20), body, step);
        assert_eq!(chunked, whole, "chunks of {step} bytes differ for {}", String::from_utf8_lossy(body));
    }
    whole
}

fn n(v: &serde_json::Value, k: &str) -> i64 {
    v.get(k).and_then(|x| x.as_i64()).unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn post_data_yml_two_records() {
    let body = br#"{"airline":"AAL","responsetime":132.2046,"sourcetype":"post-data-job","time":1403481600}
{"airline":"JZA","responsetime":990.4628,"sourcetype":"post-data-job","time":1403481700}"#;
    let r = post_fresh(metric_by_airline, body).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 2);
    assert_eq!(n(&r, "processed_field_count"), 4);
    assert_eq!(n(&r, "input_field_count"), 6);
    assert_eq!(n(&r, "input_bytes"), body.len() as i64);
    assert_eq!(n(&r, "invalid_date_count"), 0);
    assert_eq!(n(&r, "missing_field_count"), 0);
    assert_eq!(n(&r, "out_of_order_timestamp_count"), 0);
    assert_eq!(n(&r, "earliest_record_timestamp"), 1403481600000);
    assert_eq!(n(&r, "latest_record_timestamp"), 1403481700000);
    assert_eq!(n(&r, "bucket_count"), 0);
    assert_eq!(n(&r, "input_record_count"), 2);
}

#[test]
fn the_same_two_records_as_a_json_array() {
    let body = br#"[{"airline":"AAL","responsetime":132.2046,"sourcetype":"post-data-job","time":1403481600},{"airline":"JZA","responsetime":990.4628,"sourcetype":"post-data-job","time":1403481700}]"#;
    let r = post_fresh(metric_by_airline, body).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 2);
    assert_eq!(n(&r, "input_field_count"), 6);
}

#[test]
fn mini_farequote_is_177_bytes() {
    let body = b"{\"airline\":\"AAL\",\"responsetime\":\"132.2046\",\"sourcetype\":\"farequote\",\"time\":\"1403481600\"}\n{\"airline\":\"JZA\",\"responsetime\":\"990.4628\",\"sourcetype\":\"farequote\",\"time\":\"1403481700\"}";
    let r = post_fresh(metric_by_airline, body).unwrap();
    assert_eq!(n(&r, "input_bytes"), 177);
    assert_eq!((n(&r, "processed_record_count"), n(&r, "processed_field_count"), n(&r, "input_field_count")), (2, 4, 6));
    assert_eq!(n(&r, "bucket_count"), 0);
}

#[test]
fn missing_fields_quirk_gives_processed_field_count_1() {
    let spec = || job(r#"{"function":"metric","field_name":"value"}"#, "", "epoch");
    let body = br#"{"time":"1","f1":"foo","value":"1.0"}{"time":"2","value":"2.0"}{"time":"3","f1":"bar"}{}{"time":"4","value":"3.0"}"#;
    let r = post_fresh(spec, body).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 4);
    assert_eq!(n(&r, "invalid_date_count"), 1);
    assert_eq!(n(&r, "missing_field_count"), 3);
    assert_eq!(n(&r, "input_field_count"), 5);
    assert_eq!(n(&r, "processed_field_count"), 1);
    assert_eq!(n(&r, "input_record_count"), 5);
}

#[test]
fn leaf_counting() {
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    // n = 4 and n = 6 (XContentRecordReaderTests), plus the time field each.
    let r = post_fresh(spec, br#"{"time":1,"a":10,"b":20,"c":{"d":30,"e":40}}"#).unwrap();
    assert_eq!(n(&r, "input_field_count"), 4);
    let r = post_fresh(spec, br#"{"time":1,"a":[10,11],"b":20,"c":{"d":30,"e":[40,50]},"f":["a","a","a","a"],"g":20}"#).unwrap();
    assert_eq!(n(&r, "input_field_count"), 6);
    // A null is not a field and is missing.
    let r = post_fresh(spec, br#"{"time":null,"a":null,"b":[]}"#).unwrap();
    assert_eq!((n(&r, "input_field_count"), n(&r, "missing_field_count"), n(&r, "invalid_date_count")), (0, 1, 1));
}

#[test]
fn dotted_names_reach_nested_values() {
    let spec = || job(r#"{"function":"mean","field_name":"c.e"}"#, "", "epoch");
    let r = post_fresh(spec, br#"{"time":1,"c":{"e":40}} {"time":2,"c.e":41} {"time":3,"c":{"f":1}}"#).unwrap();
    assert_eq!((n(&r, "processed_record_count"), n(&r, "missing_field_count")), (3, 1));
}

fn out_of_order(span: &str, latency: &str, secs: &[i64]) -> i64 {
    let extra = format!(r#","bucket_span":"{span}"{latency}"#);
    let spec = || job(r#"{"function":"count"}"#, &extra, "epoch");
    let body: String = secs.iter().map(|s| format!("{{\"time\":{s}}}\n")).collect();
    let r = post_fresh(spec, body.as_bytes()).unwrap();
    assert_eq!(n(&r, "processed_record_count") + n(&r, "out_of_order_timestamp_count"), secs.len() as i64);
    n(&r, "out_of_order_timestamp_count")
}

#[test]
fn out_of_order_rule() {
    assert_eq!(out_of_order("1s", "", &[3, 1, 2]), 2);
    assert_eq!(out_of_order("10s", "", &[4, 5, 3, 4, 2, 12, 2]), 1);
    assert_eq!(out_of_order("1s", r#","latency":"2s""#, &[4, 5, 3, 4, 2]), 1);
    // L starts at 0 and only grows: before 1970, the window is measured from bucket 0.
    assert_eq!(out_of_order("60s", "", &[-3, -4]), 2);
    assert_eq!(out_of_order("60s", "", &[0, -1, 59, -61]), 2);
}

#[test]
fn out_of_order_only_request_reports_its_largest_dropped_time() {
    let spec = job(r#"{"function":"count"}"#, r#","bucket_span":"1s""#, "epoch");
    let mut e = JobEngine::open(spec, None, 1 << 20);
    post(&mut e, b"{\"time\":10}", 100).unwrap();
    let r = post(&mut e, b"{\"time\":3}{\"time\":5}{\"time\":4}", 100).unwrap();
    assert_eq!(n(&r, "out_of_order_timestamp_count"), 3);
    assert_eq!(n(&r, "latest_record_timestamp"), 5000);
    assert!(r.get("earliest_record_timestamp").is_none());
    let r = post(&mut e, b"", 100).unwrap();
    assert!(r.get("latest_record_timestamp").is_none());
    assert!(r.get("last_data_time").is_some());
}

#[test]
fn empty_and_sparse_buckets() {
    let spec = || job(r#"{"function":"count"}"#, r#","bucket_span":"1h""#, "epoch");
    // Hours 0 and 3: buckets 0, 1, 2 are complete (1 and 2 empty), 3 is current.
    let r = post_fresh(spec, b"{\"time\":0}{\"time\":10800}").unwrap();
    assert_eq!((n(&r, "bucket_count"), n(&r, "empty_bucket_count")), (3, 2));
    assert_eq!(n(&r, "latest_empty_bucket_timestamp"), 7_200_000);
    // Ten buckets of 100 records then one of 1: the lone one is sparse once it is finished.
    let mut body = String::new();
    for h in 0..10 {
        for _ in 0..100 {
            body.push_str(&format!("{{\"time\":{}}}\n", h * 3600));
        }
    }
    body.push_str(&format!("{{\"time\":{}}}\n{{\"time\":{}}}\n", 10 * 3600, 11 * 3600));
    let r = post_fresh(spec, body.as_bytes()).unwrap();
    assert_eq!((n(&r, "bucket_count"), n(&r, "sparse_bucket_count")), (11, 1));
    assert_eq!(n(&r, "latest_sparse_bucket_timestamp"), 36_000_000);
}

#[test]
fn reopen_continues_and_seeds_the_window() {
    let spec = || job(r#"{"function":"count"}"#, r#","bucket_span":"1h""#, "epoch");
    let mut e = JobEngine::open(spec(), None, 1 << 20);
    post(&mut e, b"{\"time\":0}{\"time\":3600}", 100).unwrap();
    let saved = DataCounts::from_json(&e.persist_json(1)).unwrap();
    let mut e = JobEngine::open(spec(), Some(saved), 1 << 20);
    // Out of order against the persisted latest time.
    let r = post(&mut e, b"{\"time\":0}{\"time\":14400}", 100).unwrap();
    assert_eq!(n(&r, "out_of_order_timestamp_count"), 1);
    // The gap from hour 1 (seeded) to hour 4 counts buckets 1, 2, 3.
    assert_eq!((n(&r, "bucket_count"), n(&r, "empty_bucket_count")), (3, 2));
    assert!(r.get("earliest_record_timestamp").is_none());
    // Lifetime bucket counts are the sum of the responses, counted once.
    assert_eq!((e.totals().bucket_count, e.totals().empty_bucket_count), (4, 2));
    assert_eq!(e.totals().processed_record_count, 3);
}

#[test]
fn stats_show_a_1_until_the_first_request_after_open() {
    let spec = || metric_by_airline();
    let mut e = JobEngine::open(spec(), None, 1 << 20);
    post(&mut e, br#"{"airline":"AAL","responsetime":1,"time":1403481600}"#, 100).unwrap();
    let saved = DataCounts::from_json(&e.persist_json(1)).unwrap();
    let mut e = JobEngine::open(spec(), Some(saved), 1 << 20);
    let s: serde_json::Value = serde_json::from_str(&e.stats_json()).unwrap();
    assert_eq!(n(&s, "processed_field_count"), 1);
    post(&mut e, b"", 100).unwrap();
    let s: serde_json::Value = serde_json::from_str(&e.stats_json()).unwrap();
    assert_eq!(n(&s, "processed_field_count"), 2);
}

#[test]
fn missing_comma_keeps_the_fields_before_it() {
    let spec = || job(r#"{"function":"metric","field_name":"value"}"#, "", "epoch");
    let r = post_fresh(spec, br#"{"time":"2" "value":"2.0"} {"time":"3","value":"1"}"#).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 2);
    assert_eq!(n(&r, "missing_field_count"), 1);
}

#[test]
fn a_fragment_is_an_empty_record_and_swallows_its_neighbour() {
    let spec = || job(r#"{"function":"metric","field_name":"value"}"#, "", "epoch");
    let r = post_fresh(spec, br#"{"time":1,"value":1} "value":"2.0"} {"time":3,"value":3} {"time":4,"value":4}"#).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 2);
    assert_eq!(n(&r, "invalid_date_count"), 1);
    assert_eq!(n(&r, "missing_field_count"), 2);
}

#[test]
fn a_duplicate_key_is_malformed() {
    let spec = || job(r#"{"function":"metric","field_name":"value"}"#, "", "epoch");
    let r = post_fresh(spec, br#"{"time":1,"time":2,"value":3}"#).unwrap();
    assert_eq!((n(&r, "processed_record_count"), n(&r, "missing_field_count")), (1, 1));
}

#[test]
fn a_truncated_body_fails_but_keeps_what_came_before() {
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    assert_eq!(post_fresh(spec, br#"{"time":1}{"time"#), Err(StreamError::Malformed));
    assert_eq!(post_fresh(spec, br#"[{"time":1}"#), Err(StreamError::Malformed));
    let mut e = JobEngine::open(spec(), None, 1 << 20);
    assert!(post(&mut e, br#"{"time":1}{"time":2}{"ti"#, 3).is_err());
    assert_eq!(e.totals().processed_record_count, 2);
    assert_eq!(e.totals().last_data_time, None);
    assert!(post(&mut e, br#"{"time":3}"#, 3).is_ok());
    assert_eq!(e.totals().processed_record_count, 3);
}

#[test]
fn the_saved_totals_are_those_of_the_last_successful_request() {
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    let mut e = JobEngine::open(spec(), None, 1 << 20);
    post(&mut e, br#"{"time":1}"#, 100).unwrap();
    let saved = |e: &JobEngine| DataCounts::from_json(&e.saved_json()).unwrap();
    assert_eq!((saved(&e).processed_record_count, saved(&e).log_time), (1, Some(1_700_000_000_000)));
    // A failed request stays in the totals, not in what the group commit writes...
    assert!(post(&mut e, br#"{"time":2}{"ti"#, 100).is_err());
    assert_eq!((e.totals().processed_record_count, saved(&e).processed_record_count), (2, 1));
    // ...until the next success, or an explicit persist (close, shutdown).
    let now: serde_json::Value = serde_json::from_str(&e.persist_json(9)).unwrap();
    assert_eq!((n(&now, "processed_record_count"), n(&now, "log_time")), (2, 9));
    assert_eq!(saved(&e), DataCounts::from_json(&e.persist_json(9)).unwrap());
}

#[test]
fn one_hundred_parse_errors_fail_the_request() {
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    let bad_99 = format!("{{\"time\":1, \"a\" x {}}}", "# ".repeat(98));
    assert!(post_fresh(spec, bad_99.as_bytes()).is_ok());
    let bad_100 = format!("{{\"time\":1, \"a\" x {}}}", "# ".repeat(100));
    assert_eq!(post_fresh(spec, bad_100.as_bytes()), Err(StreamError::Malformed));
}

#[test]
fn bom_comments_crlf_and_pretty_printing() {
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    let body = b"\xef\xbb\xbf{\r\n  \"time\": 1, // when\r\n  \"x\": /* a */ 2\r\n}\r\n{\"time\":2}";
    let r = post_fresh(spec, body).unwrap();
    assert_eq!((n(&r, "processed_record_count"), n(&r, "input_field_count")), (2, 1));
    // A body that ends inside a would-be BOM holds ordinary (malformed) input: one empty record.
    for partial in [&b"\xef"[..], b"\xef\xbb"] {
        let r = post_fresh(spec, partial).unwrap();
        assert_eq!((n(&r, "input_record_count"), n(&r, "invalid_date_count")), (1, 1));
    }
}

#[test]
fn a_document_over_the_limit_fails() {
    let spec = job(r#"{"function":"count"}"#, "", "epoch");
    let mut e = JobEngine::open(spec, None, 64);
    let big = format!("{{\"time\":1}}{{\"time\":2,\"pad\":\"{}\"}}", "x".repeat(100));
    for step in [1, 10, 1000] {
        e.start_request();
        let r = big.as_bytes().chunks(step).try_for_each(|c| e.feed(c)).and_then(|_| e.finish_request(0).map(|_| ()));
        assert_eq!(r, Err(StreamError::DocumentTooLarge { limit: 64 }), "step {step}");
    }
}

#[test]
fn a_body_of_known_size_may_be_one_document_for_its_request_only() {
    let spec = job(r#"{"function":"count"}"#, "", "epoch");
    let mut e = JobEngine::open(spec, None, 64);
    let big = format!("{{\"time\":1}}{{\"time\":2,\"pad\":\"{}\"}}", "x".repeat(100));
    for step in [1, 10, 1000] {
        e.start_request();
        e.allow_document(big.len());
        let fed = big.as_bytes().chunks(step).try_for_each(|c| e.feed(c));
        let r: serde_json::Value = serde_json::from_str(&fed.and_then(|_| e.finish_request(0)).unwrap()).unwrap();
        assert_eq!(n(&r, "input_record_count"), 2, "step {step}");
        // a smaller allowance never lowers the job's limit; the next request has the job's
        e.start_request();
        e.allow_document(10);
        assert_eq!(e.feed(big.as_bytes()), Err(StreamError::DocumentTooLarge { limit: 64 }));
        e.abort_request();
    }
}

#[test]
fn a_nested_array_ends_collection_early_as_in_elasticsearch() {
    let spec = || job(r#"{"function":"mean","field_name":"f"}"#, "", "epoch");
    // The `]` of [1] ends f's collection; the reader then meets `}` of {"x":..} at level 0 and
    // ends the record there; the record's own `}` then yields an empty record.
    let r = post_fresh(spec, br#"{"time":1,"f":[[1],{"x":{"y":2}}]}"#).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 1);
    assert_eq!(n(&r, "invalid_date_count"), 1);
}


#[test]
fn top_level_arrays_nest_at_most_a_thousand_deep() {
    use crate::ingest::token::MAX_TOP_ARRAYS;
    let spec = || job(r#"{"function":"count"}"#, "", "epoch");
    // At the limit, a record inside is read as usual.
    let deep = [b"[".repeat(MAX_TOP_ARRAYS), br#"{"time":1}"#.to_vec(), b"]".repeat(MAX_TOP_ARRAYS)].concat();
    let r = post_fresh(spec, &deep).unwrap();
    assert_eq!(n(&r, "processed_record_count"), 1);
    // Beyond it every `[` is a parse error: the request fails at the hundredth, with what came
    // before counted, and the open arrays never outgrow the limit (a stream of 10 MB of `[`).
    let flood = b"[".repeat(10 << 20);
    for (before, records) in [(&b""[..], 0), (&b"{\"time\":1}\n"[..], 1)] {
        for step in [1 << 16, 7] {
            let mut e = JobEngine::open(spec(), None, 1 << 20);
            e.start_request();
            e.feed(before).unwrap();
            let failed = flood.chunks(step).map(|c| e.feed(c)).find(Result::is_err);
            assert!(matches!(failed, Some(Err(StreamError::Malformed))), "chunks of {step}");
            e.abort_request();
            assert_eq!(e.totals().processed_record_count, records);
        }
    }
}
