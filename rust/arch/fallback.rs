//! The portable scalar level: SWAR (SIMD within a register), eight bytes per step in a
//! general-purpose register, exact per byte since no carry crosses a byte. It is the scalar
//! level's string-stop search ([`Swar`]), the tail of the vector scans, and the digit runs and
//! masks that numbers are read with on every level.

use super::{is_string_stop, StopFinder};

/// How many bytes at the start of `s` are ASCII digits, 8 at a time.
#[inline(always)]
pub fn swar_digit_run(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let other = swar_non_digits(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Bit 7 of each byte of `w` that is not an ASCII digit.
#[inline(always)]
pub fn swar_non_digits(w: u64) -> u64 {
    let t = w ^ 0x3030_3030_3030_3030;
    // A byte is a digit iff t <= 9: bit 7 of (t & 0x7f) + 0x76, or of t itself, is set exactly
    // for the others (no carry leaves a byte: the largest sum is 0xf5).
    ((t & 0x7f7f_7f7f_7f7f_7f7f).wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080
}

/// Portable SWAR search: eight bytes per step, exact per byte (no carries cross bytes).
pub struct Swar;

/// Bit 7 of each byte of `w` that [`is_string_stop`].
#[inline(always)]
pub fn swar_string_stops(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let y = w & LOW7;
    // For y <= 0x7f: y + 0x60 has bit 7 set iff y >= 0x20, and z + 0x7f iff z != 0 (no carry
    // can leave a byte: the largest sum is 0xfe).
    let printable = y.wrapping_add(0x6060_6060_6060_6060);
    let not_quote = (y ^ 0x2222_2222_2222_2222).wrapping_add(LOW7);
    let not_backslash = (y ^ 0x5c5c_5c5c_5c5c_5c5c).wrapping_add(LOW7);
    (w | !(printable & not_quote & not_backslash)) & HIGH
}

impl StopFinder for Swar {
    #[inline(always)]
    fn find(buf: &[u8], mut from: usize) -> usize {
        while let Some(chunk) = buf.get(from..from + 8) {
            let stops = swar_string_stops(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            if stops != 0 {
                return from + (stops.trailing_zeros() / 8) as usize;
            }
            from += 8;
        }
        while from < buf.len() && !is_string_stop(buf[from]) {
            from += 1;
        }
        from
    }
}

/// The first string stop in `hay` (`hay.len()` when none): the vector scans' tail.
#[inline]
pub fn find_string_stop(hay: &[u8]) -> usize {
    Swar::find(hay, 0)
}
