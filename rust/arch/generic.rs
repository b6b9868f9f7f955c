//! The one scanning algorithm, generic over [`Vector`].
//!
//! Per block of `V::LANES` bytes: compare against `"` and `\`, test `<= 0x1f`, and take the
//! top bits (non-ASCII bytes have theirs set already); OR the four masks, and the lowest set bit
//! is the answer (NEON spends four mask bits per lane). The tail shorter than one vector is finished by the scalar loop, so no load
//! ever reads past the end of a Python `bytes` buffer (which has no SIMD padding).

use super::fallback;
use super::vector::Vector;

/// # Safety
/// `V`'s instructions must be supported by the running CPU.
#[inline(always)]
pub unsafe fn find_string_stop<V: Vector>(hay: &[u8]) -> usize {
    let quote = V::splat(b'"');
    let backslash = V::splat(b'\\');
    let control = V::splat(0x1f);
    let mut i = 0;
    while i + V::LANES <= hay.len() {
        // SAFETY: `i + LANES <= len`, so the load stays inside `hay`.
        let v = V::load(hay.as_ptr().add(i));
        let hit = v.eq(quote).or(v.eq(backslash)).or(v.le_unsigned(control)).or(v.high_bit());
        let mask = hit.mask();
        if mask != 0 {
            return i + (mask.trailing_zeros() / V::BITS_PER_LANE) as usize;
        }
        i += V::LANES;
    }
    i + fallback::find_string_stop(&hay[i..])
}
