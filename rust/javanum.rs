//! Numbers as Java reads them, for the values Elasticsearch reads with `Double.parseDouble`:
//! metric fields (`field_name`, `summary_count_field_name`) and `epoch`/`epoch_ms` times.
//!
//! [`java_parse_double`] is Java's grammar (trimming, sign, `NaN`, `Infinity`, hex floats, a
//! type suffix) with Java's correctly rounded result. It is the slow, complete path: each
//! caller first tries a fast path for its usual text, [`parse_finite`]'s plain decimal for
//! metric values here, and `time::epoch`'s integer and SWAR paths for timestamps.

/// Java's `Double.parseDouble` on bytes: leading/trailing chars <= ' ' trimmed, optional sign,
/// decimal with exponent, "NaN", "Infinity", hex floats (0x1.8p1), optional trailing f/F/d/D
/// suffix. None when Java would throw NumberFormatException.
pub fn java_parse_double(text: &[u8]) -> Option<f64> {
    // String.trim() drops every char <= ' '; in UTF-8 those are exactly the bytes <= b' '.
    let start = text.iter().position(|&b| b > b' ')?;
    let end = text.iter().rposition(|&b| b > b' ')? + 1;
    let trimmed = &text[start..end];
    let (negative, body) = match trimmed {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, trimmed),
    };
    let magnitude = match body {
        b"NaN" => f64::NAN,
        b"Infinity" => f64::INFINITY,
        [b'0', b'x' | b'X', hex @ ..] => parse_hex(strip_suffix(hex))?,
        _ => parse_decimal(strip_suffix(body))?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Java allows one type suffix after a number (not after NaN or Infinity).
fn strip_suffix(s: &[u8]) -> &[u8] {
    match s {
        [rest @ .., b'f' | b'F' | b'd' | b'D'] => rest,
        _ => s,
    }
}

/// Java's decimal grammar: digits with at most one '.', at least one digit, then an optional
/// exponent with at least one digit. std's parser takes exactly this once the extras it also
/// accepts ("inf", "nan", signs) are ruled out.
fn parse_decimal(s: &[u8]) -> Option<f64> {
    let split = s
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(s.len());
    let (mantissa, exponent) = s.split_at(split);
    let mantissa_ok = mantissa.iter().any(u8::is_ascii_digit)
        && mantissa.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        && mantissa.iter().filter(|&&b| b == b'.').count() <= 1;
    let exponent_ok = match exponent {
        [] => true,
        [_, b'+' | b'-', digits @ ..] | [_, digits @ ..] => {
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
    };
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Java's hex float after "0x": `h+[.]` or `h*.h+`, then a mandatory binary exponent
/// `p[+-]d+`. Rounded to nearest even, subnormals included.
fn parse_hex(s: &[u8]) -> Option<f64> {
    let p = s.iter().position(|&b| b == b'p' || b == b'P')?;
    let (significand, exponent) = (&s[..p], &s[p + 1..]);
    let (exp_negative, exp_digits) = match exponent {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Far past any double's range the result no longer changes, so the exponent may saturate.
    let exp = exp_digits
        .iter()
        .fold(0i64, |e, &d| (e * 10 + i64::from(d - b'0')).min(1 << 40));
    let mut exp = if exp_negative { -exp } else { exp };

    let (mut bits, mut sticky, mut any_digit, mut dot) = (0u64, false, false, false);
    for &b in significand {
        if b == b'.' && !dot {
            dot = true;
            continue;
        }
        let d = char::from(b).to_digit(16)?;
        any_digit = true;
        if bits >> 60 == 0 {
            bits = bits << 4 | u64::from(d);
            if dot {
                exp -= 4;
            }
        } else {
            // 61+ bits are plenty for rounding: later digits only matter as a sticky bit, and
            // before the point they still scale the value.
            sticky |= d != 0;
            if !dot {
                exp += 4;
            }
        }
    }
    any_digit.then(|| round_binary(bits, sticky, exp))
}

/// `(bits + something below one if sticky) * 2^exp`, rounded to the nearest double, ties to even.
fn round_binary(bits: u64, sticky: bool, exp: i64) -> f64 {
    if bits == 0 {
        return 0.0;
    }
    let zeros = bits.leading_zeros();
    let bits = bits << zeros;
    // Unbiased exponent of the leading bit.
    let e = exp - i64::from(zeros) + 63;
    if e > 1023 {
        return f64::INFINITY;
    }
    // Keep 53 bits, fewer for subnormals.
    let drop = 11 + (-1022 - e).max(0);
    if drop > 64 {
        return 0.0; // below half the smallest subnormal
    }
    let (kept, rest, half) = if drop == 64 {
        (0, bits, 1 << 63)
    } else {
        (bits >> drop, bits & ((1 << drop) - 1), 1 << (drop - 1))
    };
    let round_up = rest > half || (rest == half && (sticky || kept & 1 == 1));
    let mantissa = kept + u64::from(round_up);
    // A normal mantissa still carries its implicit bit, so adding it to (biased exponent - 1)
    // also handles a carry into the next binade, up to infinity. A subnormal is the mantissa
    // alone, and one that rounds up to 2^52 is the smallest normal.
    let exponent_field = if e >= -1022 {
        ((e + 1022) as u64) << 52
    } else {
        0
    };
    f64::from_bits(exponent_field + mantissa)
}

/// A field value as a number, as Elasticsearch reads it (Java's `Double.parseDouble`), with a
/// fast path for the plain decimals that make up almost every metric value.
#[inline]
pub fn parse_finite(v: &[u8]) -> Option<f64> {
    match plain_decimal(v) {
        Some(x) => Some(x), // always finite
        None => java_parse_double(v).filter(|x| x.is_finite()),
    }
}

/// `-?digits(.digits)?` with at most 15 significant digits: the mantissa and the power of ten
/// are both exact doubles, so one division is correctly rounded (Clinger's fast path).
#[inline]
fn plain_decimal(v: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, digits) = match v {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, v),
    };
    // At most 16 bytes: 15 digits and a dot, so the mantissa cannot overflow.
    if digits.len() > 16 {
        return None;
    }
    // Integer digits up to the first non-digit, then (after a dot) fraction digits to the end.
    let mut mantissa = 0u64;
    let mut i = 0;
    while let Some(d) = digits.get(i).map(|b| b.wrapping_sub(b'0')).filter(|&d| d <= 9) {
        mantissa = mantissa * 10 + d as u64;
        i += 1;
    }
    let mut fraction = 0;
    if i < digits.len() {
        // A dot needs digits on both sides.
        if i == 0 || digits[i] != b'.' || i + 1 == digits.len() {
            return None;
        }
        for &b in &digits[i + 1..] {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            mantissa = mantissa * 10 + d as u64;
        }
        fraction = digits.len() - i - 1;
    } else if i == 0 {
        return None;
    }
    if i + fraction > 15 {
        return None;
    }
    // Below 10^15, so the signed conversion is exact (and one instruction, unlike u64's).
    let x = mantissa as i64 as f64 / POW10[fraction];
    Some(if negative { -x } else { x })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jd(s: &str) -> Option<f64> {
        java_parse_double(s.as_bytes())
    }

    #[test]
    fn java_double_accepts_javas_grammar() {
        let cases: &[(&str, f64)] = &[
            ("1d", 1.0),
            ("1.5F", 1.5),
            ("0x1p3", 8.0),
            ("0x1.8p1", 3.0),
            ("0X.8P0", 0.5),
            ("-0x10p-4d", -1.0),
            ("0x1.fffffffffffff8p0", 2.0), // tie, odd mantissa: rounds up
            ("0x1.00000000000008p0", 1.0), // tie, even mantissa: stays
            ("0x1.000000000000081p0", 1.0000000000000002), // just above the tie
            ("0x1p-1074", f64::from_bits(1)),
            ("0x1.8p-1074", f64::from_bits(2)), // subnormal tie to even
            ("0x1p-1075", 0.0),
            ("0x1.0000001p-1075", f64::from_bits(1)),
            ("0x1.fffffffffffffp1023", f64::MAX),
            ("0x1p1024", f64::INFINITY),
            ("0x0p99999999999999999999", 0.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+Infinity", f64::INFINITY),
            (" 12 ", 12.0),
            ("\t\n1.5\r\0", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("+5", 5.0),
            ("-0", -0.0),
            ("00012", 12.0),
            ("1e5", 1e5),
            ("1E+5", 1e5),
            ("1.5e-3D", 1.5e-3),
            ("5.e3", 5e3),
            ("1e400", f64::INFINITY),
            ("1e-400", 0.0),
            ("1e99999999999999999999", f64::INFINITY),
            ("0e99999999999999999999", 0.0),
            ("1403481600.9", 1403481600.9),
            ("9007199254740993", 9007199254740992.0),
        ];
        for &(text, want) in cases {
            let got = jd(text).unwrap_or_else(|| panic!("{text:?} rejected"));
            assert_eq!(got.to_bits(), want.to_bits(), "{text:?}");
        }
        assert!(jd("NaN").unwrap().is_nan());
        assert!(jd("-NaN").unwrap().is_nan());
    }

    #[test]
    fn java_double_rejects_what_java_rejects() {
        for text in [
            "",
            " ",
            "1e",
            "1e+",
            "e5",
            ".",
            "-",
            "+",
            "inf",
            "infinity",
            "nan",
            "NaNd",
            "Infinityf",
            "INFINITY",
            "1_0",
            "1..2",
            "1.2.3",
            "1 2",
            "--5",
            "+-5",
            "1dd",
            "d",
            "0x",
            "0x1",
            "0xp1",
            "0x1p",
            "0x1pa",
            "0x1.2.3p1",
            "0x.p1",
            "0xgp1",
            "1,5",
            "١",
        ] {
            assert_eq!(jd(text), None, "{text:?}");
        }
    }

    #[test]
    fn numbers_parse_as_java_does() {
        for text in ["0", "12", "-3.25", "123.5", "0.1", "999999999999999", "-0.0", "7.0"] {
            let java = java_parse_double(text.as_bytes());
            assert_eq!(plain_decimal(text.as_bytes()), java, "{text}");
        }
        for text in ["1e3", " 12 ", "12d", "+5", "0x1p3", "1.000000000000001"] {
            assert_eq!(parse_finite(text.as_bytes()), java_parse_double(text.as_bytes()), "{text}");
            assert_eq!(plain_decimal(text.as_bytes()), None, "{text}");
        }
        for text in ["", "-", ".5", "5.", "1.2.3", "abc", "NaN", "Infinity", "1e999", "true"] {
            assert!(plain_decimal(text.as_bytes()).is_none(), "{text}");
            assert!(parse_finite(text.as_bytes()).is_none_or(f64::is_finite), "{text}");
        }
        assert_eq!(parse_finite(b"NaN"), None);
        assert_eq!(parse_finite(b"1234567890123456789"), Some(1234567890123456789.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn decimal_matches_std_on_valid_input(
            m in "[0-9]{1,30}(\\.[0-9]{0,30})?|\\.[0-9]{1,30}",
            e in proptest::option::of(-400i32..400),
        ) {
            let text = match e { Some(e) => format!("{m}e{e}"), None => m };
            let want: f64 = text.parse().unwrap();
            prop_assert_eq!(jd(&text).map(f64::to_bits), Some(want.to_bits()));
        }

        #[test]
        fn hex_matches_value_of_short_significands(m in 0u64..1 << 53, e in -1000i32..1000) {
            // A 53-bit significand times a normal power of two is exact (or overflows in both).
            let want = m as f64 * 2f64.powi(e);
            prop_assert_eq!(jd(&format!("0x{m:x}p{e}")), Some(want));
        }
    }
}
