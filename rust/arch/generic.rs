//! The one scanning algorithm, generic over [`Vector`].
//!
//! Per block of `V::LANES` bytes: compare against `"` and `\`, test `<= 0x1f`, and take the
//! top bits (non-ASCII bytes have theirs set already); OR the four masks, and the lowest set bit
//! is the answer (NEON spends four mask bits per lane). The tail shorter than one vector is
//! finished by the scalar (SWAR) level, so no load ever reads past the end of a Python `bytes`
//! buffer (which has no SIMD padding).

use super::fallback;
use super::vector::Vector;

/// The lanes of `v` that stop a string's plain run (`"`, `\`, control bytes, non-ASCII), as
/// [`Vector::mask`] bits.
///
/// # Safety
/// `V`'s instructions must be supported by the running CPU.
#[inline(always)]
pub unsafe fn stop_mask<V: Vector>(v: V) -> u64 {
    // SAFETY: the caller's CPU supports `V` (this function's contract).
    unsafe { v.eq(V::splat(b'"')).or(v.eq(V::splat(b'\\'))).or(v.le_unsigned(V::splat(0x1f))).or(v.high_bit()).mask() }
}

/// # Safety
/// `V`'s instructions must be supported by the running CPU.
#[inline(always)]
pub unsafe fn find_string_stop<V: Vector>(hay: &[u8]) -> usize {
    let mut i = 0;
    while i + V::LANES <= hay.len() {
        // SAFETY: `i + LANES <= len`, so the load stays inside `hay`; the CPU supports `V`
        // (this function's contract).
        let mask = unsafe { stop_mask(V::load(hay.as_ptr().add(i))) };
        if mask != 0 {
            return i + (mask.trailing_zeros() / V::BITS_PER_LANE) as usize;
        }
        i += V::LANES;
    }
    i + fallback::find_string_stop(&hay[i..])
}
