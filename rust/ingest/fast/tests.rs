//! The fast path against the general reader: every level, every layout, every refusal.

use super::*;
use crate::arch::supported_levels;

fn fields() -> FieldSet {
    FieldSet::new(&["kpi".into(), "host".into()], "time")
}

/// The fast path's verdict on `s` at every level: all levels must agree.
type Verdict = Option<(usize, u32, Vec<Option<Vec<u8>>>)>;

fn read(s: &[u8]) -> Verdict {
    read_all(&[s]).pop().unwrap()
}

/// The fast path's verdicts on `records`, read in turn with one scratch (so that later
/// records meet the shape of earlier ones) at every level: all levels must agree.
fn read_all(records: &[&[u8]]) -> Vec<Verdict> {
    let f = fields();
    let mut out: Vec<Verdict> = vec![];
    for (n, level) in supported_levels().into_iter().enumerate() {
        let mut scratch = Scratch::default();
        let got: Vec<Verdict> = records
            .iter()
            .map(|s| {
                let mut rec = Record::with_fields(f.len());
                // SAFETY: a level this CPU has.
                (unsafe { for_level(level) }.record)(s, 0, &f, &mut rec, &mut scratch)
                    .map(|end| (end, rec.n, (0..f.len()).map(|i| rec.value(s, i).map(<[u8]>::to_vec)).collect()))
            })
            .collect();
        if n > 0 {
            assert_eq!(got, out, "{level:?}");
        }
        out = got;
    }
    out
}

/// A record of the known shape that repeats a key, or differs from it in a key, is still
/// judged exactly.
#[test]
fn known_shapes_do_not_hide_repeats() {
    let base = &br#"{"time":1,"kpi":2,"host":"h","note":"n"}"#[..];
    let cases: [(&[u8], bool); 8] = [
        (base, true),
        (br#"{"time":1,"kpi":2,"host":"h","note":"n","time":3}"#, false),
        (br#"{"time":1,"time":2}"#, false),
        (br#"{"time":1,"kpi":2,"kpi":3}"#, false),
        (br#"{"time":1,"kpX":2,"host":"h","kpX":4}"#, false),
        (br#"{"time":1,"kpi":2,"host":"h","notes":"n"}"#, true),
        (br#"{"time":1,"kpi":{"kpi":1,"time":2},"host":"h"}"#, true),
        (br#"{"time":1,"kpi":{"kpi":1,"kpi":2},"host":"h"}"#, false),
    ];
    for (s, ok) in cases {
        let got = read_all(&[base, base, s, s]);
        assert_eq!(got[2].is_some(), ok, "{}", String::from_utf8_lossy(s));
        assert_eq!(got[2], got[3]);
        assert_eq!(got[2], read(s));
    }
}

/// A known key is recognised with the bytes from the previous value (or the `{`) through
/// its colon and spacing, and the walk over the known keys stops cleanly wherever a record
/// leaves the shape: other spacing, no colon, keys that only begin alike, an object value,
/// more or fewer keys, repeats, errors. Every pair of shapes is judged as if the first had
/// not been seen.
#[test]
fn known_shapes_are_judged_as_if_unseen() {
    let records: [&[u8]; 41] = [
        br#"{"time":1,"kpi":2}"#,
        br#"{"time" :1,"kpi" : 2}"#,
        b"{\"time\"\t: 1 ,\"kpi\":2 , \"host\":\"h\"}",
        br#"{"time" 1,"kpi":2}"#,
        br#"{"time":1,"kpi"}"#,
        br#"{"time":1,"kpi":2,"kpi":3}"#,
        br#"{"timer":1,"kpi":2}"#,
        br#"{"12345678901234":1,"123456789012345":2,"1234567890123456":3,"kpi":4}"#,
        br#"{"12345678901234" :1,"123456789012345":2,"123456789012345":3}"#,
        br#"{"1234567890123":{"time":1},"time":2,"kpi":"x"}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null}"#,
        br#"{"time":1 ,"kpi":2,"host":"h","note":null}"#,
        br#"{"time":1, "kpi":2,"host":"h","note":null}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null }"#,
        br#"{"time":1,"kpi":{"a":1,"b":[2]},"host":"h","note":null}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null,"x":true}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null,"time":2}"#,
        br#"{"time":null,"kpi":"2","host":"h","note":"a\"b","tags":[1,"x"]}"#,
        br#"{"time":1,"kpi":2,"host":"a\"b","note":null}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":nul}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null,}"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null"#,
        br#"{"time":1,"kpi":2,"host":"h","note":null}}"#,
        br#"{"time": 1, "kpi": 2, "host": "h", "note": null}"#,
        br#"{"time": 1, "kpi": 2, "host": "h", "note":null}"#,
        br#"{"time": 1, "kpi": 2, "host": "h", "note": null, "time": 2}"#,
        br#"{"time": 1, "kpi":  2, "host": "h"}"#,
        br#"{"time": 1, "kpi": {"a": 1}, "host": "h"}"#,
        br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" }"#,
        br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" , "note" : "n" }"#,
        br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" , }"#,
        br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" "#,
        br#"{ "time" : 1 , "kpi" : 2 ,"host" : "h" }"#,
        br#"{"time": 1, "12345678901": 2, "123456789012": 3, "1234567890123456": 4}"#,
        br#"{"time": 1, "12345678901": 2, "123456789012": 3, "1234567890123456": 4, "kpi": 5}"#,
        br#"{"time": 1, "12345678901": 2, "123456789012": 3, "123456789012345": 4, "kpi": 5}"#,
        br#"{"time":1,"12345678901234":2,"12345678901234": 3}"#,
        b"{\"time\":\t1,\n\"kpi\" :\r2}",
        br#"{"time": 1, "kpi": 2, "host": "h", "note": null }"#,
        br#"{}"#,
        br#"{ }"#,
    ];
    for a in records {
        for b in records {
            let got = read_all(&[a, a, b, b]);
            assert_eq!(got[2], read(b), "{} after {}", String::from_utf8_lossy(b), String::from_utf8_lossy(a));
            assert_eq!(got[3], got[2]);
        }
    }
    assert!(read(records[2]).is_some() && read(records[8]).is_none());
    assert_eq!(read(records[15]).map(|r| r.1), Some(4));
    assert_eq!(read(records[17]).map(|r| r.1), Some(4));
    // Spaced layouts are read, before and after their shape is known.
    for i in [23, 28, 29, 34, 35, 37, 38, 39, 40] {
        let got = read_all(&[records[i], records[i]]);
        assert!(got[0].is_some() && got[1] == got[0], "{}", String::from_utf8_lossy(records[i]));
    }
    // The same with 16 bytes of padding after each record: a known key's compare needs 16
    // bytes, so without it a record's last keys never take the known path here.
    let padded: Vec<Vec<u8>> = records.iter().map(|r| [*r, &[b' '; 16][..]].concat()).collect();
    for a in &padded {
        for b in &padded {
            let got = read_all(&[a, a, b, b]);
            assert_eq!(got[2], read(b), "{} after {}", String::from_utf8_lossy(b), String::from_utf8_lossy(a));
            assert_eq!(got[3], got[2]);
        }
    }
}

/// A known key found with whitespace after its remembered span (the last record had
/// `,"kpi":`, this one `, "kpi": `) is remembered again in the new layout, so the next
/// record in that layout is read wholly by the lean loop; a span grown past 16 bytes is
/// compared from the key's quote, and the lean loop stops before it.
#[test]
fn known_keys_relearn_a_spaced_layout() {
    // Padded as in a body, where the compares' 16 bytes are there to load.
    let pad = |s: &[u8]| [s, &[b'\n'; 16][..]].concat();
    let (compact, spaced) = (pad(br#"{"time":1,"kpi":2,"host":"h"}"#), pad(br#"{"time": 1, "kpi": 2, "host": "h"}"#));
    let wide = pad(b"{\"time\":1,\"kpi\":\t\t\t\t\t\t\t\t\t\t2,\"host\":\"h\"}");
    let (compact, spaced, wide) = (&compact[..], &spaced[..], &wide[..]);
    let f = fields();
    for level in supported_levels() {
        let mut scratch = Scratch::default();
        let mut rec = Record::with_fields(f.len());
        // SAFETY: a level this CPU has.
        let path = unsafe { for_level(level) };
        let mut read = |s: &[u8], scratch: &mut Scratch| (path.record)(s, 0, &f, &mut rec, scratch);
        let lean = |s: &[u8], scratch: &Scratch| {
            let mut rec = Record::with_fields(f.len());
            match known_keys::<Swar>(s, 1, &scratch.shape[..scratch.lean], &mut rec) {
                Some(Known::End(end)) => Some(end),
                Some(Known::Key { ordinal, .. }) => {
                    assert!(ordinal < 3);
                    None
                }
                None => panic!("known_keys gave up"),
            }
        };
        assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
        assert_eq!(lean(compact, &scratch), Some(compact.len() - 16), "{level:?}");
        assert_eq!(lean(spaced, &scratch), None, "{level:?}: the compact shape stops before a space");
        assert_eq!(read(spaced, &mut scratch), Some(spaced.len() - 16));
        assert_eq!((scratch.shape.len(), scratch.lean), (3, 3), "{level:?}");
        assert_eq!(lean(spaced, &scratch), Some(spaced.len() - 16), "{level:?}: the spaced layout is learnt");
        assert_eq!(read(spaced, &mut scratch), Some(spaced.len() - 16));
        assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
        assert_eq!(lean(compact, &scratch), Some(compact.len() - 16), "{level:?}: and the compact one again");
        // `,"kpi":` then ten tabs: 17 bytes, compared from the quote.
        assert_eq!(read(wide, &mut scratch), Some(wide.len() - 16));
        assert_eq!((scratch.shape.len(), scratch.lean), (3, 1), "{level:?}");
        assert!(scratch.shape[1].from_quote && !scratch.shape[2].from_quote, "{level:?}");
        assert_eq!(read(wide, &mut scratch), read(wide, &mut Scratch::default()));
        assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
    }
    // Judged as if unseen whatever came before.
    for a in [compact, spaced, wide] {
        for b in [compact, spaced, wide] {
            let got = read_all(&[a, b, b, a]);
            assert_eq!((&got[1], &got[3]), (&read(b), &read(a)));
            assert_eq!(got[2], got[1]);
        }
    }
}

#[test]
fn reads_plain_nested_and_escaped_records() {
    let s = br#"{"time":1454020570036,"kpi":-12.5e+3,"host":"srv-1","note":"a b"} "#;
    let (end, n, v) = read(s).unwrap();
    assert_eq!((end, n), (s.len() - 1, 4));
    assert_eq!(v, vec![Some(b"-12.5e+3".to_vec()), Some(b"srv-1".to_vec()), Some(b"1454020570036".to_vec())]);
    let s = br#"{ "time" : 1 , "meta":{"k":1,"ok":true,"tags":["a","b\"",null,2,[]],"e":{}},"msg":"say \"hi\" \u00e9 \xc3\xa9","user":null}"#;
    assert!(read(s).is_none(), "nested array: general path");
    let s = br#"{ "time" : 1 , "meta":{"k":1,"ok":true,"tags":["a","b\"",null,2],"e":{}},"msg":"say \"hi\" \u00e9","user":null}x"#;
    let (end, n, v) = read(s).unwrap();
    assert_eq!((end, n), (s.len() - 1, 5));
    assert_eq!(v, vec![None, None, Some(b"1".to_vec())]);
    assert_eq!(read(b"{\"a\":\"\xc3\xa9\xe2\x82\xac\",\"time\":2}").unwrap().1, 2);
    assert_eq!(read(br#"{"time":true,"host":false,"kpi":"x"}}"#).unwrap().2[2], Some(b"true".to_vec()));
}

#[test]
fn gives_up_on_what_the_general_path_decides() {
    for s in [
        &br#"{"time":1,"time":2}"#[..],
        br#"{"a":{"b":1,"b":2}}"#,
        br#"{"host":"a\"b"}"#,
        br#"{"host":["a"]}"#,
        br#"{"\u0061":1}"#,
        br#"{"a":01}"#,
        br#"{"a":1.}"#,
        br#"{"a":1e}"#,
        br#"{"a":tru}"#,
        br#"{"a":truex}"#,
        br#"{"a":"\x"}"#,
        b"{\"a\":\"\x01\"}",
        b"{\"a\":\"\xff\"}",
        br#"{"a":1,}"#,
        br#"{"a":[1,]}"#,
        br#"{"a":1 /* c */}"#,
        br#"{"a":1"#,
        br#"{"a":12"#,
        br#"{"a":"x"#,
        br#"{"a":1}"#, // ends the buffer: `1` might continue (`}` is there, but see below)
    ] {
        if s == br#"{"a":1}"# {
            assert!(read(s).is_some());
            continue;
        }
        assert!(read(s).is_none(), "{}", String::from_utf8_lossy(s));
    }
}

/// Keys whose Bloom bits collide are still told apart exactly; a record with so many keys
/// that they collide more than MAX_RESCANS times is left to the general path.
#[test]
fn bloom_collisions_are_resolved_exactly() {
    let object = |n: usize, extra: &str| {
        let keys: Vec<String> = (0..n).map(|i| format!("\"key{i}\":1")).collect();
        format!("{{{}{extra}}}", keys.join(","))
    };
    assert_eq!(read(object(24, "").as_bytes()).map(|r| r.1), Some(24));
    assert!(read(object(24, ",\"key7\":2").as_bytes()).is_none());
    assert!(read(object(200, "").as_bytes()).is_none(), "200 keys collide too often");
}

#[test]
fn swar_digits_and_numbers() {
    for (s, want) in [("12345678901234567890,", Some(20)), ("0,", Some(1)), ("-0.5e-7}", Some(7)), ("1/", Some(1)),
        ("123456789a", None), ("12345678:", Some(8)), ("1234567:", Some(7)), ("-", None), ("00", None)] {
        assert_eq!(number_general(s.as_bytes(), 0), want, "{s}");
    }
    for b in 0..=255u8 {
        let mut s = *b"11111111111";
        s[5] = b;
        assert_eq!(arch::swar_digit_run(&s), if b.is_ascii_digit() { 11 } else { 5 });
    }
}

/// The 16-byte window settles a number exactly as the general reading does, at every level,
/// wherever the number starts and ends relative to the window and the buffer, and
/// whatever follows it.
#[test]
fn windowed_numbers_agree_with_the_general_reading() {
    fn check<F: StopFinder>(s: &[u8]) {
        for p in 0..s.len() {
            assert_eq!(number::<F>(s, p), number_general(s, p), "{} at {p}", String::from_utf8_lossy(s));
        }
    }
    let heads = ["0", "-0", "7", "-7", "01", "-01", "00", "-", "", "1454020570036", "123456789012345",
        "1234567890123456", "0.5", "12.", "-12.25", "1.2.3", ".5", "-.5", "1e5", "1E+5", "2.5e-3", "1e", "0.0",
        "0.123456789012345", "123456789012.3456", "--1", "-123456789012345", "12345678901234.", "1.e5"];
    let tails = ["", ",", "}", " ", "]", "x", "e", "E", ".", "-", "+", "5", "\"", "a", ":", "\u{e9}"];
    for h in heads {
        for t in tails {
            for filler in 0..18 {
                let s = format!("{h}{t}{}", ",".repeat(filler));
                check::<Swar>(s.as_bytes());
                #[cfg(target_arch = "x86_64")]
                check::<arch::Sse2Finder>(s.as_bytes());
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") {
                    check::<arch::Avx2Finder>(s.as_bytes());
                }
                #[cfg(target_arch = "aarch64")]
                check::<arch::NeonFinder>(s.as_bytes());
            }
        }
    }
}

/// Record-like bodies: keys wanted and not, nested objects, arrays, escapes, repeats,
/// whitespace, numbers good and bad, and the odd stray byte.
fn recordish() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    const ATOMS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b" ",
        b"\n",
        b"\"time\":",
        b"\"kpi\":",
        b"\"host\":",
        b"\"note\":",
        b"\"a\":",
        b"\"key7\":",
        b"\"kpi2345678\":",
        b"\"meta\":{",
        b"\"h\\u0061\":",
        b"\"srv-1\"",
        b"\"say \\\"hi\\\"\"",
        b"\"\\u00e9\\x\"",
        b"\"\xc3\xa9\"",
        b"\"\xff\"",
        b"\"\x01\"",
        b"1454020570036",
        b"-12.5e+3",
        b"0",
        b"01",
        b"1.",
        b"true",
        b"false",
        b"null",
        b"nul",
        b"/**/",
        b"[\"a\",1,null]",
        b"[]",
        b"{}",
        b"123456789012345678901234",
    ];
    let atoms = proptest::sample::select(ATOMS);
    let loose = proptest::collection::vec(atoms.clone(), 0..40).prop_map(|v| {
        let mut out = b"{".to_vec();
        for a in v {
            out.extend_from_slice(a);
        }
        out
    });
    // Mostly well-formed records: pairs of a key and a value, some values nested objects,
    // with an atom slipped in now and then.
    const KEYS: &[&[u8]] = &[b"time", b"kpi", b"host", b"note", b"a", b"b", b"key7", b"kpi2345678", b"kpi2345679", b"meta", b"",
        b"kpi23456789012", b"kpi234567890123", b"kpi2345678901234"];
    const VALUES: &[&[u8]] = &[b"1454020570036", b"-12.5e+3", b"0", b"1.5", b"\"srv-1\"", b"\"say \\\"hi\\\"\"",
        b"\"\\u00e9\"", b"\"\xc3\xa9\"", b"true", b"false", b"null", b"[]", b"{}", b"[1,\"x\",true]", b"\"\"",
        b"[ 1 , 2 ]", b"{\"k\":1,\"ok\":true,\"tags\":[\"a\"]}", b"{\"k\":1,\"k\":2}", b"{\"x\":{\"y\":null}}"];
    let pair = (proptest::sample::select(KEYS), proptest::sample::select(VALUES), 0..8u8, atoms);
    let tidy = proptest::collection::vec(pair, 0..8).prop_map(|pairs| {
        let mut out = b"{".to_vec();
        for (i, (k, v, ws, atom)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Some whitespace before the key, around the colon or after the value
            // (`json.dumps` puts one space after `,` and `:`).
            match ws {
                0 => out.extend_from_slice(b" \n\t"),
                4 | 5 => out.push(b' '),
                _ => {}
            }
            out.push(b'"');
            out.extend_from_slice(k);
            out.extend_from_slice(if ws == 3 { b"\" :" } else { b"\":" });
            if ws == 1 || ws == 5 {
                out.push(b' ');
            }
            out.extend_from_slice(v);
            match ws {
                2 => out.extend_from_slice(atom),
                6 => out.push(b' '),
                _ => {}
            }
        }
        out.extend_from_slice(b"} ");
        out
    });
    prop_oneof![loose, tidy]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::ingest::fuzz::cases(20000), ..Default::default() })]

    /// Whenever the fast path reads a record, the general tokenizer and reader read the
    /// same record from the same `{`: same end, leaf count and values.
    #[test]
    fn fast_path_agrees_with_the_general_reader(bodies in proptest::collection::vec(recordish(), 1..5)) {
        use super::super::reader::Reader;
        use super::super::token::Tokenizer;
        let f = fields();
        // Each body twice, so that the second reading meets its own shape.
        let records: Vec<&[u8]> = bodies.iter().flat_map(|b| [b.as_slice(), b.as_slice()]).collect();
        for (body, verdict) in records.iter().zip(read_all(&records)) {
        if let Some((end, n, values)) = verdict {
            let mut tok = Tokenizer::new();
            let mut rec = Record::with_fields(f.len());
            let mut pos = 0;
            let mut safe = (0, tok.mark());
            let got = Reader::default().read(&mut tok, &f, body, &mut pos, false, &mut rec, &mut safe);
            proptest::prop_assert_eq!(got.map(|r| r.errors), Ok(0), "{}", String::from_utf8_lossy(body));
            proptest::prop_assert_eq!(pos, end);
            proptest::prop_assert_eq!(rec.n, n);
            let general: Vec<Option<Vec<u8>>> = (0..f.len()).map(|i| rec.value(body, i).map(<[u8]>::to_vec)).collect();
            proptest::prop_assert_eq!(general, values);
        }
        }
    }
}
