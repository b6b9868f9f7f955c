//! The few vector operations the scanning algorithm needs, so that it is written once.

/// A SIMD register of `LANES` bytes.
///
/// # Safety
/// Implementations are only constructed on CPUs that support their instructions (the caller of
/// `arch::generic` guarantees that through runtime detection). That is the safety
/// contract of every method below (and, for `load`, a readable pointer), so they share it
/// rather than repeat it; the instances' bodies are unsafe blocks under that contract.
#[allow(clippy::missing_safety_doc)]
pub trait Vector: Copy {
    const LANES: usize;
    /// Load `LANES` bytes from `ptr`, which must be readable for that many bytes.
    unsafe fn load(ptr: *const u8) -> Self;
    unsafe fn splat(b: u8) -> Self;
    unsafe fn eq(self, other: Self) -> Self;
    /// Lanes whose unsigned value is at most `other`'s.
    unsafe fn le_unsigned(self, other: Self) -> Self;
    /// Lanes whose byte is at least 0x80 (non-ASCII).
    unsafe fn high_bit(self) -> Self;
    unsafe fn or(self, other: Self) -> Self;
    /// `BITS_PER_LANE` bits per lane, set for lanes that are all ones in a comparison result.
    unsafe fn mask(self) -> u64;
    const BITS_PER_LANE: u32;
}
