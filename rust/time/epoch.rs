//! `epoch` / `epoch_ms` time fields.
//!
//! Elasticsearch reads these time fields with `Double.parseDouble`, so the accepted grammar and
//! the rounding are Java's ([`crate::javanum`]). It is fast because the usual value, an integer
//! of 8 to 15 digits (epoch seconds or milliseconds), is converted inline with two overlapping
//! 8-byte loads and no double at all; other plain decimals of at most 18 digits are validated
//! and converted 8 digits at a time in a register (SWAR), then turned into a double by
//! Clinger's exact fast path. Anything else goes to Java's parser.

use crate::arch::{swar_digit_run as digit_run, swar_non_digits as non_digits};
use crate::javanum::java_parse_double;

/// `epoch` (scale 1000) or `epoch_ms` (scale 1): the double truncated toward zero, then scaled.
#[inline(always)]
pub(super) fn epoch_to_ms(text: &[u8], scale: i64) -> Option<i64> {
    match plain_integer(text) {
        // Below 10^15 < 2^53 the double is the integer itself, and times 1000 it fits an i64.
        Some(value) => Some(value as i64 * scale),
        None => epoch_to_ms_general(text, scale),
    }
}

#[inline(never)]
fn epoch_to_ms_general(text: &[u8], scale: i64) -> Option<i64> {
    let value = fast_decimal(text).or_else(|| java_parse_double(text))?;
    // `as` truncates, saturates and maps NaN to 0, exactly like Java's (long) cast; the scaling
    // is Java's long multiplication, which wraps (`Infinity` seconds is -1000 ms).
    Some((value as i64).wrapping_mul(scale))
}

/// `text` as an integer if it is 8 to 15 ASCII digits: the first 8 and the last 8 bytes as two
/// words (they overlap), the overlap zeroed in the second.
#[inline(always)]
fn plain_integer(text: &[u8]) -> Option<u64> {
    let n = text.len();
    if !(8..=15).contains(&n) {
        return None;
    }
    let head = u64::from_le_bytes(text[..8].try_into().expect("8 bytes"));
    let tail = u64::from_le_bytes(text[n - 8..].try_into().expect("8 bytes"));
    if non_digits(head) | non_digits(tail) != 0 {
        return None;
    }
    // The low 16 - n bytes of `tail` are the head's last ones: '0's in their place add nothing.
    let overlap = u64::MAX >> (8 * (n - 8));
    let tail = (tail & !overlap) | (0x3030_3030_3030_3030 & overlap);
    Some(eight_digits(head) * POW10_INT[n - 8] + eight_digits(tail))
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// `-?digits[.digits]` with 1 to 18 digits as the correctly rounded double; None means "use the
/// general parser", never "invalid". Digits are validated and converted 8 at a time (SWAR).
#[inline]
fn fast_decimal(text: &[u8]) -> Option<f64> {
    let (negative, body) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if body.len() > 19 {
        return None;
    }
    if let Some(mantissa) = parse_digits(body) {
        // The usual case, an integer: one pass.
        return match body.len() {
            1..=18 => Some(if negative { -(mantissa as f64) } else { mantissa as f64 }),
            _ => None,
        };
    }
    let (int, frac) = match digit_run(body) {
        n if n == body.len() => (body, &body[..0]),
        n if body[n] == b'.' => (&body[..n], &body[n + 1..]),
        _ => return None,
    };
    let digits = int.len() + frac.len();
    if digits == 0 || digits > 18 {
        return None;
    }
    // At most 18 digits: fits in u64.
    let mantissa = parse_digits(int)? * POW10_INT[frac.len()] + parse_digits(frac)?;
    // An integer-to-float cast rounds to nearest even, as a correct decimal parse does, and the
    // quotient of two exactly represented doubles is correctly rounded too.
    let value = match frac.len() {
        0 => mantissa as f64,
        k if mantissa < 1 << 53 => mantissa as f64 / POW10[k],
        _ => return None,
    };
    Some(if negative { -value } else { value })
}

const POW10_INT: [u64; 19] = {
    let mut t = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};


/// The value of 8 ASCII digits loaded little-endian (first digit in the low byte).
#[inline(always)]
fn eight_digits(w: u64) -> u64 {
    let w = w - 0x3030_3030_3030_3030;
    let w = (w * 10 + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w * 100 + (w >> 16)) & 0x0000_ffff_0000_ffff;
    (w * 10000 + (w >> 32)) & 0xffff_ffff
}

/// The value of `s`, at most 19 ASCII digits; None if any byte is not a digit.
#[inline(always)]
fn parse_digits(s: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut rest = s;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        let w = u64::from_le_bytes(*chunk);
        if non_digits(w) != 0 {
            return None;
        }
        value = value.wrapping_mul(100_000_000).wrapping_add(eight_digits(w));
        rest = tail;
    }
    let k = rest.len();
    if k > 0 && s.len() >= 8 {
        // The last 1..7 digits: load the 8 bytes ending with them, and replace the bytes
        // already converted by '0's (leading zeros do not change the value).
        let w = u64::from_le_bytes(s[s.len() - 8..].try_into().expect("8 bytes"));
        let done = (1u64 << (8 * (8 - k))) - 1;
        let w = (w & !done) | (0x3030_3030_3030_3030 & done);
        if non_digits(w) != 0 {
            return None;
        }
        return Some(value.wrapping_mul(POW10_INT[k]).wrapping_add(eight_digits(w)));
    }
    for &b in rest {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;



    #[test]
    fn epoch_conversions() {
        let secs = |s: &str| epoch_to_ms(s.as_bytes(), 1000);
        let ms = |s: &str| epoch_to_ms(s.as_bytes(), 1);
        assert_eq!(secs("1403481600.9"), Some(1_403_481_600_000));
        assert_eq!(secs("1.4e9"), Some(1_400_000_000_000));
        assert_eq!(secs(" 12 "), Some(12_000));
        assert_eq!(secs("-1.9"), Some(-1000));
        // 18 digits round to 1403481601.0 as a double before truncation, as in Java.
        assert_eq!(secs("1403481600.99999999"), Some(1_403_481_601_000));
        assert_eq!(secs("NaN"), Some(0));
        // Java's (long) cast saturates, then its long multiplication wraps.
        assert_eq!(secs("Infinity"), Some(-1000));
        assert_eq!(secs("-1e30"), Some(0));
        assert_eq!(secs("9999999999999999"), Some(-8_446_744_073_709_551_616));
        assert_eq!(ms("Infinity"), Some(i64::MAX));
        assert_eq!(ms("1403481600000"), Some(1_403_481_600_000));
        assert_eq!(ms("1403481600000.9"), Some(1_403_481_600_000));
        assert_eq!(ms("123456789012345678"), Some(123_456_789_012_345_680));
        assert_eq!(ms("1e3"), Some(1000));
        assert_eq!(ms(""), None);
        assert_eq!(ms("abc"), None);
        assert_eq!(ms("12:00"), None);
    }

    /// The original byte-at-a-time fast path, as the oracle of the SWAR one.
    fn fast_decimal_bytewise(text: &[u8]) -> Option<f64> {
        let (negative, body) = match text {
            [b'-', rest @ ..] => (true, rest),
            _ => (false, text),
        };
        if body.len() > 19 {
            return None;
        }
        let (mut mantissa, mut digits, mut frac_digits, mut dot) = (0u64, 0, 0, false);
        for &b in body {
            match b {
                b'0'..=b'9' => {
                    // At most 19 bytes of digits: fits in u64.
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    digits += 1;
                    frac_digits += usize::from(dot);
                }
                b'.' if !dot => dot = true,
                _ => return None,
            }
        }
        // An integer-to-float cast rounds to nearest even, as a correct decimal parse does, and the
        // quotient of two exactly represented doubles is correctly rounded too.
        let value = match frac_digits {
            _ if digits == 0 || digits > 18 => return None,
            0 => mantissa as f64,
            k if mantissa < 1 << 53 => mantissa as f64 / POW10[k],
            _ => return None,
        };
        Some(if negative { -value } else { value })
    }

    #[test]
    fn swar_fast_path_matches_the_bytewise_one() {
        let mut cases: Vec<String> = ["", "-", ".", "-.", "0", "-0", "1.", ".5", "1..2", "1.2.3", "12a", "a12",
            "1454020570036", "1454020570036.123", "123456789012345678", "1234567890123456789", "12345678.12345678",
            "99999999999999999.9", "1e5", "+1", " 1", "１"].iter().map(|s| s.to_string()).collect();
        for len in 1..21 {
            for dot in 0..=len {
                let mut s: String = (0..len).map(|i| char::from(b'0' + ((i * 7 + len) % 10) as u8)).collect();
                if dot < len {
                    s.replace_range(dot..dot + 1, ".");
                }
                cases.push(s.clone());
                cases.push(format!("-{s}"));
                cases.push(format!("{s}x"));
            }
        }
        for c in &cases {
            assert_eq!(fast_decimal(c.as_bytes()).map(f64::to_bits), fast_decimal_bytewise(c.as_bytes()).map(f64::to_bits), "{c:?}");
        }
        for b in 0..=255u8 {
            let s = [b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b, b'9'];
            assert_eq!(fast_decimal(&s).map(f64::to_bits), fast_decimal_bytewise(&s).map(f64::to_bits));
            assert_eq!(non_digits(u64::from_le_bytes([b; 8])) == 0, b.is_ascii_digit());
        }
    }

    /// The inline integer path agrees with Java's parse at every length around its range, with
    /// any of a few telling bytes at any position.
    #[test]
    fn plain_integers_match_the_general_path() {
        for n in 0..20 {
            let digits: Vec<u8> = (0..n).map(|i| b'0' + ((i * 7 + n) % 10) as u8).collect();
            let mut cases = vec![digits.clone(), vec![b'9'; n], vec![b'0'; n]];
            for pos in 0..n {
                for b in [b'/', b':', b'.', b'-', b'+', b' ', b'e', 0, 0x80, 0xb0, 0xff, b'0', b'9'] {
                    let mut c = digits.clone();
                    c[pos] = b;
                    cases.push(c);
                }
            }
            for c in cases {
                assert_eq!(plain_integer(&c).is_some(), (8..=15).contains(&n) && c.iter().all(u8::is_ascii_digit));
                for scale in [1, 1000] {
                    let want = java_parse_double(&c).map(|v| (v as i64).wrapping_mul(scale));
                    assert_eq!(epoch_to_ms(&c, scale), want, "{:?}", String::from_utf8_lossy(&c));
                }
            }
        }
    }

    #[test]
    fn fast_path_covers_the_common_shapes() {
        for text in ["1403481600000", "1403481600.123", "-5", "0.5", "5.", ".5"] {
            assert!(fast_decimal(text.as_bytes()).is_some(), "{text:?}");
        }
        for text in ["+5", " 5", "1e3", "1234567890123456789", "", "-", "."] {
            assert!(fast_decimal(text.as_bytes()).is_none(), "{text:?}");
        }
    }

    /// Strings near the fast path's edges: up to 20 digits, with fractions, signs and junk.
    fn decimalish() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?[0-9]{0,20}(\\.[0-9]{0,20})?",
            "-?(9{1,19}|10{0,18})(\\.(9{1,19}|0{0,18}1))?",
            "[-+ ]?[0-9.eExXpPdDfF+-]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn swar_matches_bytewise(text in decimalish()) {
            prop_assert_eq!(fast_decimal(text.as_bytes()).map(f64::to_bits), fast_decimal_bytewise(text.as_bytes()).map(f64::to_bits));
        }

        #[test]
        fn fast_path_matches_general_path(text in decimalish()) {
            let general = java_parse_double(text.as_bytes());
            if let Some(fast) = fast_decimal(text.as_bytes()) {
                prop_assert_eq!(Some(fast.to_bits()), general.map(f64::to_bits));
            }
            for scale in [1, 1000] {
                let reference = general.map(|v| (v as i64).wrapping_mul(scale));
                prop_assert_eq!(epoch_to_ms(text.as_bytes(), scale), reference);
            }
        }



        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = java_parse_double(&bytes);
            let _ = epoch_to_ms(&bytes, 1000);
        }
    }
}
