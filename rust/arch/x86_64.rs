//! SSE2 and AVX2 instances of the generic scanner.
//!
//! SSE2 is part of the x86-64 baseline; AVX2 is only called after runtime detection
//! ([`super::level`]). `le_unsigned` uses the max trick (`max(v, k) == k` iff `v <= k`) since
//! x86 has no unsigned byte compare.

use super::generic;
use super::vector::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
struct Sse2(__m128i);

impl Vector for Sse2 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        unsafe { Sse2(_mm_loadu_si128(ptr as *const __m128i)) }
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        unsafe { Sse2(_mm_set1_epi8(b as i8)) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self {
        unsafe { Sse2(_mm_cmpeq_epi8(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn le_unsigned(self, o: Self) -> Self {
        unsafe { Sse2(_mm_cmpeq_epi8(_mm_max_epu8(self.0, o.0), o.0)) }
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        unsafe { Sse2(_mm_or_si128(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn high_bit(self) -> Self {
        self // movemask reads only the top bit of each lane
    }
    #[inline(always)]
    unsafe fn mask(self) -> u64 {
        unsafe { _mm_movemask_epi8(self.0) as u32 as u64 }
    }
    const BITS_PER_LANE: u32 = 1;
}

#[derive(Clone, Copy)]
struct Avx2(__m256i);

impl Vector for Avx2 {
    const LANES: usize = 32;
    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        unsafe { Avx2(_mm256_loadu_si256(ptr as *const __m256i)) }
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        unsafe { Avx2(_mm256_set1_epi8(b as i8)) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_cmpeq_epi8(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn le_unsigned(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_cmpeq_epi8(_mm256_max_epu8(self.0, o.0), o.0)) }
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_or_si256(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn high_bit(self) -> Self {
        self // movemask reads only the top bit of each lane
    }
    #[inline(always)]
    unsafe fn mask(self) -> u64 {
        unsafe { _mm256_movemask_epi8(self.0) as u32 as u64 }
    }
    const BITS_PER_LANE: u32 = 1;
}

/// [`Avx2Finder`] compiled with AVX2 enabled, for the callers not compiled so (the
/// tokenizer's string scan).
#[target_feature(enable = "avx2")]
unsafe fn find_string_stop_avx2_impl(hay: &[u8]) -> usize {
    <Avx2Finder as super::StopFinder>::find(hay, 0)
}

#[inline]
pub fn find_string_stop_avx2(hay: &[u8]) -> usize {
    // SAFETY: only reached when `level()` detected AVX2 (or a test forced a supported level).
    unsafe { find_string_stop_avx2_impl(hay) }
}

/// SSE2 instance of [`super::StopFinder`]; SSE2 is baseline on x86-64, so it needs no
/// `target_feature` and inlines into the generic hot loops. Records' strings are short: one
/// 16-byte probe usually settles them.
pub struct Sse2Finder;

impl super::StopFinder for Sse2Finder {
    #[inline(always)]
    fn find(buf: &[u8], from: usize) -> usize {
        // SAFETY: SSE2 is part of every x86-64 CPU; the generic scan loads only whole vectors
        // inside `buf[from..]` and finishes the tail with scalar code.
        from + unsafe { generic::find_string_stop::<Sse2>(&buf[from..]) }
    }

    #[inline(always)]
    fn non_digits(b: &[u8; 16]) -> u32 {
        sse2_non_digits(b)
    }
}

/// AVX2 instance of [`super::StopFinder`]: one 16-byte probe (most strings of a record end
/// within it), then 32 bytes per step. Only for code compiled with AVX2 enabled (the fast
/// path's AVX2 instance is a `#[target_feature(enable = "avx2")]` function, picked only when
/// [`super::level`] found AVX2), where these inline.
pub struct Avx2Finder;

impl super::StopFinder for Avx2Finder {
    #[inline(always)]
    fn find(buf: &[u8], from: usize) -> usize {
        debug_assert!(std::is_x86_feature_detected!("avx2"));
        let hay = &buf[from..];
        // The steps written out here rather than through a shared helper: calling one from
        // here made the fast path's loop 34 instructions per record longer (register allocation).
        // SAFETY: reached only from code that runs after AVX2 was detected (see the type's
        // doc); loads stay inside `hay`, whose tail the generic scan finishes in scalar code.
        unsafe {
            if let Some(head) = hay.get(..16) {
                let mask = generic::stop_mask(Sse2::load(head.as_ptr()));
                if mask != 0 {
                    return from + mask.trailing_zeros() as usize;
                }
                return from + 16 + generic::find_string_stop::<Avx2>(&hay[16..]);
            }
            from + generic::find_string_stop::<Avx2>(hay)
        }
    }

    #[inline(always)]
    fn non_digits(b: &[u8; 16]) -> u32 {
        sse2_non_digits(b)
    }
}

/// [`super::StopFinder::non_digits`] in one compare: a byte minus `'0'` is a digit's value iff it
/// is below 10 (unsigned, by the max trick).
#[inline(always)]
fn sse2_non_digits(b: &[u8; 16]) -> u32 {
    // SAFETY: SSE2 is part of every x86-64 CPU; the load reads exactly the 16 bytes of `b`.
    unsafe {
        let t = _mm_sub_epi8(_mm_loadu_si128(b.as_ptr() as *const __m128i), _mm_set1_epi8(b'0' as i8));
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(t, _mm_set1_epi8(10)), t)) as u32
    }
}
