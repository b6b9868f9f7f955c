//! Property tests over arbitrary bytes: no panic, no hang, and any chunking of a body gives
//! the same outcome as the body fed whole. `make test` runs a bounded number of cases;
//! `PROPTEST_CASES` raises it.

use super::JobEngine;
use crate::config::JobSpec;
use proptest::prelude::*;

/// `default` cases, or `PROPTEST_CASES` when set (an explicit count in a config would
/// otherwise override the variable).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn engine() -> JobEngine {
    let spec = JobSpec::from_json(
        r#"{"job_id":"f","analysis_config":{"bucket_span":"10s","detectors":[{"function":"mean","field_name":"v","by_field_name":"c.e"}]},
            "data_description":{"time_field":"t","time_format":"epoch"}}"#,
    )
    .unwrap();
    JobEngine::open(spec, None, 4096)
}

/// Post `body` as one request cut into pieces at `cuts`: the response, or the error (after
/// which the request is aborted, as the Python front does).
pub(super) fn post_in_pieces(e: &mut JobEngine, body: &[u8], cuts: &[usize]) -> Result<String, String> {
    post_as(e, body, cuts, false)
}

fn post_as(e: &mut JobEngine, body: &[u8], cuts: &[usize], smile: bool) -> Result<String, String> {
    e.start_body(None, smile);
    let mut last = 0;
    let mut res = Ok(());
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        let c = c.clamp(last, body.len());
        if res.is_ok() {
            res = e.feed(&body[last..c]);
        }
        last = c;
    }
    match res {
        Ok(()) => e.finish_request(0).map_err(|x| format!("{x:?}")),
        Err(x) => {
            e.abort_request();
            Err(format!("{x:?}"))
        }
    }
}

fn outcome(body: &[u8], cuts: &[usize]) -> (Result<String, String>, String) {
    outcome_as(body, cuts, false)
}

fn outcome_as(body: &[u8], cuts: &[usize], smile: bool) -> (Result<String, String>, String) {
    let mut e = engine();
    let r = post_as(&mut e, body, cuts, smile);
    let mut stats: serde_json::Value = serde_json::from_str(&e.stats_json()).unwrap();
    if r.is_err() {
        // A failed request stops being fed at its error, so how many bytes came in depends on
        // where the chunks were cut; everything else must not.
        stats.as_object_mut().unwrap().remove("input_bytes");
    }
    (r, stats.to_string())
}

/// Bodies that look like JSON records often enough to reach deep states.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"t\":".to_vec()),
        Just(b"\"v\":".to_vec()),
        Just(b"\"c\":{\"e\":".to_vec()),
        Just(b"\"x\\\"y\"".to_vec()),
        Just(b"12".to_vec()),
        Just(b"-1.5e3".to_vec()),
        Just(b"true".to_vec()),
        Just(b"null".to_vec()),
        Just(b" \n".to_vec()),
        Just(b"/* c */".to_vec()),
        Just(b"//x\n".to_vec()),
        Just(b"{\"t\":5,\"v\":1}".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

/// SMILE bodies (`smile.rs`) made of its tokens often enough to reach deep states: headers,
/// separators, objects, the job's names (new and shared), numbers, strings and shared strings.
fn smileish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        Just(b":)\n\x03".to_vec()),
        Just(vec![0xFF]),
        Just(vec![0xFA]),
        Just(vec![0xFB]),
        Just(vec![0xF8]),
        Just(vec![0xF9]),
        Just(vec![0x80, b't']),
        Just(vec![0x80, b'v']),
        Just(vec![0x81, b'c', b'e']),
        Just(vec![0x40]),
        Just(vec![0x41]),
        Just(vec![0x24, 0x14, 0x74, 0x76, 0x70, 0x80]),
        Just(vec![0xC4]),
        Just(vec![0x29, 0, 0x40, 0x30, 0x21, 0x51, 0x41, 0x2A, 0x32, 0x30, 0x5F]),
        Just(vec![0x42, b'a', b'b', b'c']),
        Just(vec![0x01]),
        Just(vec![0xE0, b'l', b'o', b'n', b'g', 0xFC]),
        Just(vec![0x21]),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn smile_bodies_any_chunking(body in smileish(), cuts in prop::collection::vec(0usize..400, 0..30)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(outcome_as(&body, &cuts, true), outcome_as(&body, &[], true));
        let singles: Vec<usize> = (1..body.len()).collect();
        prop_assert_eq!(outcome_as(&body, &singles, true), outcome_as(&body, &[], true));
    }

    #[test]
    fn arbitrary_bytes_as_smile(body in prop::collection::vec(any::<u8>(), 0..300),
                                cuts in prop::collection::vec(0usize..300, 0..20)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(outcome_as(&body, &cuts, true), outcome_as(&body, &[], true));
    }

    #[test]
    fn arbitrary_bytes_any_chunking(body in prop::collection::vec(any::<u8>(), 0..300),
                                    cuts in prop::collection::vec(0usize..300, 0..20)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(outcome(&body, &cuts), outcome(&body, &[]));
    }

    #[test]
    fn jsonish_bodies_any_chunking(body in jsonish(), cuts in prop::collection::vec(0usize..400, 0..30)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(outcome(&body, &cuts), outcome(&body, &[]));
        let singles: Vec<usize> = (1..body.len()).collect();
        prop_assert_eq!(outcome(&body, &singles), outcome(&body, &[]));
    }
}
