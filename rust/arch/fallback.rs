//! Portable scalar scanning, used where no SIMD level is available and for vector tails.

use super::is_string_stop;

#[inline]
pub fn find_string_stop(hay: &[u8]) -> usize {
    hay.iter().position(|&b| is_string_stop(b)).unwrap_or(hay.len())
}
