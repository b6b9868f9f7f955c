//! Byte scanning with SIMD, chosen once at run time.
//!
//! The ingest tokenizer spends its per-byte time inside strings (keys and values) and, when a
//! document spans chunks, skipping over whole documents. Both reduce to one question: "where is
//! the next byte that ends the boring run?" — a quote, a backslash, a control character or a
//! non-ASCII byte inside a string. `generic` answers it with one algorithm over the small
//! [`vector::Vector`] trait; `x86_64` (SSE2, AVX2) and `aarch64` (NEON) instantiate it, and
//! `fallback` is the portable scalar level (SWAR: eight bytes per step in a register).
//!
//! Each level is a [`StopFinder`] type: [`Swar`], `Sse2Finder`, `Avx2Finder`, `NeonFinder`.
//! [`level`] is the single dispatch point: it picks the widest level the CPU has on first use,
//! or the one named by `ANOMALYD_SIMD` (`scalar`, `sse2`, `avx2`, `neon`) so that tests and
//! benchmarks can force the fallback. [`find_string_stop`] asks it per call; hot loops that
//! want the search inlined (the record fast path) are written once over [`StopFinder`],
//! monomorphised per level, and pick their instance from it once per buffer. The same types
//! classify the 16 bytes of a number at once ([`StopFinder::non_digits`]).
//!
//! [`prefetch`] is the one helper outside scanning: a cache hint for the analysis, whose
//! per-series models are spread over more memory than the caches hold.

use std::sync::atomic::{AtomicU8, Ordering};

mod fallback;
mod generic;
pub mod vector;
#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use fallback::{swar_digit_run, swar_non_digits, Swar};
// Crate-private: a SIMD finder runs its level's instructions, so only code that checked the
// level (the fast path's dispatch) may pick one.
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::NeonFinder;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{Avx2Finder, Sse2Finder};

/// The string-stop search ([`find_string_stop`]) as a type, for loops monomorphised per level.
///
/// Calling an instance is sound only on a CPU that has its level: pick it from [`level`].
pub trait StopFinder {
    /// Index of the first byte of `buf[from..]` that [`is_string_stop`], as an index into
    /// `buf`; `buf.len()` when there is none. `from <= buf.len()`.
    fn find(buf: &[u8], from: usize) -> usize;

    /// Bit `i` set iff `b[i]` is not an ASCII digit (bits 16 and up clear). SWAR unless the
    /// level has a cheaper vector compare.
    #[inline(always)]
    fn non_digits(b: &[u8; 16]) -> u32 {
        let (lo, hi) = b.split_at(8);
        let lo = swar_non_digits(u64::from_le_bytes(lo.try_into().expect("8 bytes")));
        let hi = swar_non_digits(u64::from_le_bytes(hi.try_into().expect("8 bytes")));
        // Gather the bytes' top bits into one byte: bit 8k+7 moves to bit 56+k, and no two
        // partial products meet (so nothing carries).
        let gather = |w: u64| ((w >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
        gather(lo) | gather(hi) << 8
    }
}

/// Start loading the cache line that holds `r` into all cache levels, without waiting for it.
/// A hint only: it changes nothing the program computes (a no-op where there is no instruction).
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    let p = r as *const T;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults or writes (SSE is part of the x86-64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a prefetch never faults or writes.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// An instruction-set level, from slowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Scalar = 1,
    Sse2 = 2,
    Avx2 = 3,
    Neon = 4,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Sse2 => "sse2",
            Level::Avx2 => "avx2",
            Level::Neon => "neon",
        }
    }

    fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            1 => Level::Scalar,
            2 => Level::Sse2,
            3 => Level::Avx2,
            4 => Level::Neon,
            _ => return None,
        })
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Every level this CPU can run, widest last.
pub fn supported_levels() -> Vec<Level> {
    let mut levels = vec![Level::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        levels.push(Level::Sse2); // part of the x86-64 baseline
        if std::is_x86_feature_detected!("avx2") {
            levels.push(Level::Avx2);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            levels.push(Level::Neon);
        }
    }
    levels
}

fn detect() -> Level {
    let supported = supported_levels();
    let wanted = std::env::var("ANOMALYD_SIMD").ok();
    if let Some(name) = wanted.as_deref() {
        if let Some(l) = supported.iter().find(|l| l.name() == name) {
            return *l;
        }
    }
    *supported.last().expect("scalar is always supported")
}

/// The level in use; detected on first call.
#[inline]
pub fn level() -> Level {
    match Level::from_u8(LEVEL.load(Ordering::Relaxed)) {
        Some(l) => l,
        None => {
            let l = detect();
            LEVEL.store(l as u8, Ordering::Relaxed);
            l
        }
    }
}

/// Force a level (tests and benchmarks). Returns false if the CPU lacks it.
pub fn set_level(l: Level) -> bool {
    if !supported_levels().contains(&l) {
        return false;
    }
    LEVEL.store(l as u8, Ordering::Relaxed);
    true
}

/// Index of the first byte in `hay` that is `"`, `\`, below 0x20 or at least 0x80;
/// `hay.len()` when there is none. This is the inner loop of string scanning.
#[inline]
pub fn find_string_stop(hay: &[u8]) -> usize {
    match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => x86_64::find_string_stop_avx2(hay),
        #[cfg(target_arch = "x86_64")]
        Level::Sse2 => Sse2Finder::find(hay, 0),
        #[cfg(target_arch = "aarch64")]
        Level::Neon => NeonFinder::find(hay, 0),
        _ => Swar::find(hay, 0),
    }
}

/// Index of the first byte in `hay` that is `"` or `\`; `hay.len()` when there is none.
/// Used to skip string contents without validating them (recovery and document splitting).
#[inline]
pub fn find_quote_or_backslash(hay: &[u8]) -> usize {
    memchr::memchr2(b'"', b'\\', hay).unwrap_or(hay.len())
}

/// Whether a byte ends a plain ASCII string run (see [`find_string_stop`]).
#[inline(always)]
pub fn is_string_stop(b: u8) -> bool {
    b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `$check::<F>($arg)` for every [`StopFinder`] this CPU can run.
    macro_rules! check_every_finder {
        ($check:ident, $arg:expr) => {{
            $check::<Swar>($arg);
            #[cfg(target_arch = "x86_64")]
            $check::<Sse2Finder>($arg);
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                $check::<Avx2Finder>($arg);
            }
            #[cfg(target_arch = "aarch64")]
            $check::<NeonFinder>($arg);
        }};
    }

    fn reference(hay: &[u8]) -> usize {
        hay.iter().position(|&b| is_string_stop(b)).unwrap_or(hay.len())
    }

    /// Every level agrees with the obvious loop, for every stop byte at every position and
    /// every length around the vector widths.
    #[test]
    fn every_level_finds_every_stop_byte_at_every_position() {
        let levels = supported_levels();
        for len in 0..100usize {
            let mut hay = vec![b'a'; len];
            let want = reference(&hay);
            for &l in &levels {
                set_level(l);
                assert_eq!(find_string_stop(&hay), want, "{l:?} len {len}");
            }
            for pos in 0..len {
                for stop in [b'"', b'\\', 0u8, 0x1f, 0x80, 0xff] {
                    hay[pos] = stop;
                    let want = reference(&hay);
                    for &l in &levels {
                        set_level(l);
                        assert_eq!(find_string_stop(&hay), want, "{l:?} len {len} pos {pos} byte {stop:#x}");
                    }
                    hay[pos] = b'a';
                }
            }
        }
        set_level(detect());
    }

    /// The per-level finders agree with the obvious loop at every offset.
    #[test]
    fn stop_finders_agree() {
        fn check<F: StopFinder>(hay: &[u8]) {
            for from in 0..=hay.len() {
                assert_eq!(F::find(hay, from), from + reference(&hay[from..]), "{hay:?} from {from}");
            }
        }
        for len in 0..80usize {
            for pos in 0..len {
                for stop in [b'"', b'\\', 0u8, 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
                    let mut hay = vec![b'a'; len];
                    hay[pos] = stop;
                    check_every_finder!(check, &hay);
                }
            }
        }
        for b in 0..=255u8 {
            let hay = [b'x', b, b'y', b, b'z', b'z', b'z', b'z', b'z', b'z'];
            check::<Swar>(&hay);
        }
    }

    #[test]
    fn every_byte_value_is_classified_alike() {
        for b in 0..=255u8 {
            let hay = [b'x', b'y', b, b'z'];
            let want = reference(&hay);
            for l in supported_levels() {
                set_level(l);
                assert_eq!(find_string_stop(&hay), want);
                let mut long = vec![b'q'; 70];
                long[65] = b;
                assert_eq!(find_string_stop(&long), reference(&long));
            }
        }
        set_level(detect());
    }

    /// Every level's digit mask agrees with `is_ascii_digit` for every byte at every position.
    #[test]
    fn non_digit_masks_agree() {
        fn check<F: StopFinder>(b: &[u8; 16]) {
            let want = (0..16).filter(|&i| !b[i].is_ascii_digit()).fold(0u32, |m, i| m | 1 << i);
            assert_eq!(F::non_digits(b), want, "{b:?}");
        }
        for pos in 0..16 {
            for x in 0..=255u8 {
                for fill in [b'0', b'9', b'a'] {
                    let mut b = [fill; 16];
                    b[pos] = x;
                    b[(pos + 7) % 16] = b'5';
                    check_every_finder!(check, &b);
                }
            }
        }
    }

    /// Random haystacks (any byte, or rare stops among plain text), lengths 0 to 199, at every
    /// level through the dispatch, against the obvious loop; and every finder at every offset.
    #[test]
    fn random_haystacks_agree_at_every_level() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        fn check<F: StopFinder>(hay: &[u8]) {
            for from in 0..=hay.len() {
                assert_eq!(F::find(hay, from), from + reference(&hay[from..]), "{hay:?} from {from}");
            }
        }
        let levels = supported_levels();
        for iter in 0..20_000u32 {
            let (len, density) = ((next() % 200) as usize, next() % 3);
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    match density {
                        0 => (r >> 8) as u8,
                        1 if r % 64 == 0 => (r >> 8) as u8,
                        _ => 0x20 + ((r >> 16) as u8 % 0x60),
                    }
                })
                .collect();
            let want = reference(&hay);
            for &l in &levels {
                set_level(l);
                assert_eq!(find_string_stop(&hay), want, "{l:?} {hay:?}");
            }
            if iter % 16 == 0 {
                check_every_finder!(check, &hay);
            }
        }
        set_level(detect());
    }
}
