//! NEON instance of the generic scanner (aarch64).
//!
//! NEON has no movemask; the usual narrowing trick (`vshrn` by 4 gives one nibble per lane) turns
//! the comparison into a 64-bit word; the generic code divides the trailing-zero count by 4.

use super::generic;
use super::vector::Vector;
use std::arch::aarch64::*;

#[derive(Clone, Copy)]
struct Neon(uint8x16_t);

impl Vector for Neon {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        unsafe { Neon(vld1q_u8(ptr)) }
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        unsafe { Neon(vdupq_n_u8(b)) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> Self {
        unsafe { Neon(vceqq_u8(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn le_unsigned(self, o: Self) -> Self {
        unsafe { Neon(vcleq_u8(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn or(self, o: Self) -> Self {
        unsafe { Neon(vorrq_u8(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn high_bit(self) -> Self {
        unsafe { Neon(vcgeq_u8(self.0, vdupq_n_u8(0x80))) }
    }
    #[inline(always)]
    unsafe fn mask(self) -> u64 {
        // Narrowing shift keeps 4 bits of every lane: a 64-bit word for 16 lanes.
        unsafe {
            let nibbles = vshrn_n_u16(vreinterpretq_u16_u8(self.0), 4);
            vget_lane_u64(vreinterpret_u64_u8(nibbles), 0)
        }
    }
    const BITS_PER_LANE: u32 = 4;
}

/// NEON instance of [`super::StopFinder`] (NEON is mandatory on aarch64).
pub struct NeonFinder;

impl super::StopFinder for NeonFinder {
    #[inline(always)]
    fn find(buf: &[u8], from: usize) -> usize {
        // SAFETY: NEON is mandatory on aarch64; the generic scan loads only whole vectors
        // inside `buf[from..]` and finishes the tail with scalar code.
        from + unsafe { generic::find_string_stop::<Neon>(&buf[from..]) }
    }
}
