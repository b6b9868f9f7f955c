//! `Marginal`: a decayed fixed-size histogram of one scalar feature on an adaptive grid, with
//! exponential tails beyond its envelope, quantiles and a cached "safe region".
//!
//! Fast because everything is inline and cheap per update: the bins are a fixed array (no heap),
//! decay is lazy (one multiplication of `unit` instead of one per bin), tail sums vectorise
//! (`sum_range`), and the safe region lets ordinary values skip the tail sums altogether. The
//! rarer steps of young histograms are cheap too: a safe-region refresh reads the decay's powers
//! from a per-job table and rounds without library calls, and a regrid skips empty bins four at
//! a time.

use serde::{Deserialize, Serialize};

use super::{array_serde, Side};

/// Histogram resolution: 48 bins keep two histograms well under 1 KB.
const BINS: usize = 48;
/// Exponential tail scale beyond the envelope, as a fraction of the envelope's width.
const TAIL_FRACTION: f64 = 0.04;

/// A decayed histogram of one scalar feature with exponential tails beyond its envelope.
///
/// Decay is lazy: `bins` and `total` are kept in units of `unit` (true mass = stored × `unit`),
/// so a step's decay is one multiplication instead of one per bin; the stored values are
/// rescaled to `unit` = 1 only when `unit` gets tiny. Exact up to floating-point rounding.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Marginal {
    lo: f64,
    hi: f64,
    /// Inline (no heap indirection); serialised as a sequence, like the `Vec` it replaced.
    #[serde(with = "array_serde")]
    bins: [f64; BINS],
    total: f64,
    unit: f64,
    env_lo: f64,
    env_hi: f64,
    pub(super) seen: bool,
    /// The safe region (see `safe`): positions on the grid in 1/SAFE_STEPS of a bin, valid for
    /// `safe_left` more learns; empty when `safe_lo > safe_hi`. Small integers fit in the
    /// padding after `seen` (no memory cost). Serialised, so a restored model continues bit for
    /// bit; older snapshots lack them and start with an empty region (refreshed at the next
    /// learn).
    #[serde(default = "safe_empty")]
    safe_lo: u16,
    #[serde(default)]
    safe_hi: u16,
    #[serde(default)]
    safe_left: u8,
}

fn safe_empty() -> u16 {
    u16::MAX
}

/// Resolution of the safe region's bounds: 1/1024 of a bin (49152 steps fit in a u16).
const SAFE_STEPS: f64 = 1024.0;
/// Learns between refreshes of the safe region at most (fewer while the histogram is young or
/// decays fast); a refresh costs about as much as one exact tail.
const SAFE_MAX_LEFT: u8 = 255;
/// The validities a refresh can choose: SAFE_MAX_LEFT halved down to 1, i.e. 2^(k+1) − 1.
pub(super) const SAFE_VALIDITIES: usize = 8;
const _: () = assert!(BINS.is_multiple_of(4));
const _: () = assert!(SAFE_MAX_LEFT as usize == (1 << SAFE_VALIDITIES) - 1);

/// The k-th validity, 2^(k+1) − 1 learns.
const fn safe_validity(k: usize) -> u8 {
    ((2u32 << k) - 1) as u8
}

/// The decay per learn raised to each validity (`decay.powi(n)`, exactly what the refresh
/// evaluated per call before): the same for every histogram of a job, so computed once.
pub(super) type SafeDecay = [f64; SAFE_VALIDITIES];

pub(super) fn safe_decay(decay: f64) -> SafeDecay {
    std::array::from_fn(|k| decay.powi(safe_validity(k) as i32))
}

/// The needed tail level is multiplied by this at refresh, on top of the learns' worst case:
/// room for floating-point rounding (≈ 1e-14 relative) many times over.
const SAFE_SLACK: f64 = 1.25;

/// A side of the histogram is taken as `total` minus the other only above this fraction of the
/// total (rounding error of the difference ≈ 1e-14 of the total, so ≤ 1e-11 relative).
const COMPLEMENT_MIN: f64 = 1e-3;
/// Below this `unit` the stored masses are rescaled (far from overflow: stored ≤ total / unit).
const UNIT_RESCALE: f64 = 1e-150;

/// `x.ceil()` and `x.floor()` without a call: the baseline x86-64 target has no rounding
/// instruction, so they are software routines. Through a truncating conversion below 2^52
/// (beyond, every double is whole), sign of zero kept, so the results are the same.
#[inline(always)]
fn ceil(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        (if t < x { t + 1.0 } else { t }).copysign(x)
    } else {
        x.ceil()
    }
}

#[inline(always)]
fn floor(x: f64) -> f64 {
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = x as i64 as f64;
        (if t > x { t - 1.0 } else { t }).copysign(x)
    } else {
        x.floor()
    }
}

/// Sum of `bins[start..end]` in four independent lanes (two pairs, each pair one SIMD add),
/// so the additions vectorise.
fn sum_range(bins: &[f64; BINS], start: usize, end: usize) -> f64 {
    let (chunks, rest) = bins[start..end].as_chunks::<4>();
    let (mut a, mut b) = ([0.0f64; 2], [0.0f64; 2]);
    for c in chunks {
        a = [a[0] + c[0], a[1] + c[1]];
        b = [b[0] + c[2], b[1] + c[3]];
    }
    let mut tail = 0.0;
    for &x in rest {
        tail += x;
    }
    (a[0] + b[0]) + (a[1] + b[1]) + tail
}

impl Marginal {
    pub(super) fn new() -> Self {
        Marginal {
            lo: 0.0,
            hi: 0.0,
            bins: [0.0; BINS],
            total: 0.0,
            unit: 1.0,
            env_lo: 0.0,
            env_hi: 0.0,
            seen: false,
            safe_lo: safe_empty(),
            safe_hi: 0,
            safe_left: 0,
        }
    }

    /// Prefetch the fields every learn reads (not the bins: which one depends on the value).
    /// The compiler lays the scalars out after the bins, from `lo` to `seen` (a test checks).
    #[inline(always)]
    pub(super) fn prefetch(&self) {
        crate::arch::prefetch(&self.lo);
        crate::arch::prefetch(&self.seen);
    }

    /// Whether x is in the safe region: there, every tail `tails` would compute that `side`
    /// uses is certainly above the level the region was refreshed for, so the exact tails are
    /// not needed. Compares `x − lo` (the same difference `masses` divides) with the bounds.
    #[inline(always)]
    pub(super) fn safe(&self, x: f64) -> bool {
        let d = x - self.lo;
        let step = (self.hi - self.lo) * (1.0 / (BINS as f64 * SAFE_STEPS));
        d >= self.safe_lo as f64 * step && d <= self.safe_hi as f64 * step
    }

    /// Counts one learn against the safe region and recomputes it when it has expired.
    ///
    /// Why the region stays valid for `safe_left` learns: it lies inside the envelope, where
    /// the pseudo-count is 1, so a tail there is F = (m + 1) / (t + 1) with m the (true) mass
    /// beyond x and t the total. A learn first decays (m, t → d·m, d·t) and then adds w ≤ 1
    /// either beyond x (m and t grow) or not (t grows). After j learns, m ≥ dʲ·m₀ and
    /// t ≤ dʲ·t₀ + j, so F ≥ dʲ·(m₀ + 1) / (t₀ + 1 + j) = g(j)·F₀ with
    /// g(j) = dʲ·(t₀ + 1) / (t₀ + 1 + j). Refreshing where F₀ ≥ SAFE_SLACK · level / g(n) keeps
    /// F ≥ level for the n learns the region is used. The tail masses are monotone in x, so
    /// the region is an interval. A regrid moves mass and clears `safe_left`.
    pub(super) fn count_learn(&mut self, powers: &SafeDecay, level: f64, side: Side) {
        if self.safe_left > 1 {
            self.safe_left -= 1;
            return;
        }
        self.refresh_safe(powers, level, side);
    }

    #[cold]
    #[inline(never)]
    fn refresh_safe(&mut self, powers: &SafeDecay, level: f64, side: Side) {
        self.safe_lo = safe_empty();
        self.safe_hi = 0;
        let t0 = self.total * self.unit;
        // g(n) for n = 2^(k+1) − 1, the decay's power read from the table.
        let g = |k: usize| powers[k] * (t0 + 1.0) / (t0 + 1.0 + safe_validity(k) as f64);
        // The longest validity (halving from SAFE_MAX_LEFT) that keeps half the margin; its g
        // is kept for the target below.
        let mut k = SAFE_VALIDITIES - 1;
        let mut gn = g(k);
        while k > 0 && gn < 0.5 {
            k -= 1;
            gn = g(k);
        }
        self.safe_left = safe_validity(k);
        let width = (self.hi - self.lo) / BINS as f64;
        if !self.seen || !(width > 0.0) || !t0.is_finite() || !(self.unit > 0.0) {
            return;
        }
        let target = SAFE_SLACK * level / gn;
        if target >= 1.0 {
            return;
        }
        // Stored mass a tail must reach: (M·unit + 1) / (t₀ + 1) ≥ target.
        let need = (target * (t0 + 1.0) - 1.0) / self.unit;
        let top = BINS as f64 * SAFE_STEPS;
        // Positions on the grid (in bins); the envelope bounds where the pseudo-count is 1.
        let env_lo = ((self.env_lo - self.lo) / width).max(0.0);
        let env_hi = ((self.env_hi - self.lo) / width).min(BINS as f64);
        // Highest position whose upper tail holds `need`, and lowest whose lower tail does.
        let mut upper = BINS as f64;
        let mut lower = 0.0;
        if need > 0.0 {
            upper = -1.0;
            let mut acc = 0.0;
            for i in (0..BINS).rev() {
                let m = self.bins[i];
                if acc + m >= need && m > 0.0 {
                    upper = i as f64 + ((acc + m - need) / m).min(1.0);
                    break;
                }
                acc += m;
            }
            lower = BINS as f64 + 1.0;
            let mut acc = 0.0;
            for i in 0..BINS {
                let m = self.bins[i];
                if acc + m >= need && m > 0.0 {
                    lower = i as f64 + ((need - acc) / m).max(0.0);
                    break;
                }
                acc += m;
            }
        }
        // One-sided functions use one tail only (and its pseudo-count only on that side).
        let (mut lo_pos, mut hi_pos) = (0.0f64, BINS as f64);
        if side != Side::High {
            lo_pos = lower.max(env_lo);
        }
        if side != Side::Low {
            hi_pos = upper.min(env_hi);
        }
        // Rounded inwards, one step more for rounding in the positions themselves.
        let q_lo = ceil(lo_pos * SAFE_STEPS) + 1.0;
        let q_hi = floor(hi_pos * SAFE_STEPS) - 1.0;
        if q_lo.is_finite() && q_hi.is_finite() && q_lo <= q_hi && q_lo >= 0.0 && q_hi <= top {
            self.safe_lo = q_lo as u16;
            self.safe_hi = q_hi as u16;
        }
    }

    /// Stored masses at or above x and at or below x (bins are uniform inside). The side with
    /// fewer bins is summed; the other is `total` minus it unless that leaves under
    /// COMPLEMENT_MIN of the total, where it is summed too: a tail beyond all the mass must be
    /// exactly 0, not a rounding residue of `total` (which would floor p near 1e-16).
    ///
    /// A value in the bin of the lowest value learnt ties with it: that whole bin counts as at
    /// or below x (and likewise for the highest, above). Mass there may well sit on one point
    /// (a series that repeats a value: its residuals are one point, on a bin's edge), where
    /// "uniform inside" would leave the value beyond its own mass, an anomaly every bucket.
    fn masses(&self, x: f64) -> (f64, f64) {
        if x <= self.lo {
            return (self.total, 0.0);
        }
        if x >= self.hi {
            return (0.0, self.total);
        }
        let width = (self.hi - self.lo) / BINS as f64;
        // Via i32: a saturating f64 → usize cast costs several instructions more.
        let bin = |v: f64| (((v - self.lo) / width) as i32).clamp(0, BINS as i32 - 1) as usize;
        let pos = (x - self.lo) / width;
        let i = bin(x);
        let frac_above = (i + 1) as f64 - pos;
        let ge = || self.bins[i] * frac_above + sum_range(&self.bins, i + 1, BINS);
        let le = || self.bins[i] * (1.0 - frac_above) + sum_range(&self.bins, 0, i);
        let complement = |part: f64, exact: &dyn Fn() -> f64| {
            let rest = self.total - part;
            if rest > COMPLEMENT_MIN * self.total { rest } else { exact() }
        };
        let (ge, le) = if i >= BINS / 2 {
            let ge = ge();
            (ge, complement(ge, &le))
        } else {
            let le = le();
            (complement(le, &ge), le)
        };
        // Ties with the lowest and the highest value learnt (see above).
        let le = if i == bin(self.env_lo) { sum_range(&self.bins, 0, i + 1) } else { le };
        let ge = if i == bin(self.env_hi) { sum_range(&self.bins, i, BINS) } else { ge };
        (ge, le)
    }

    /// (P(X ≥ x), P(X ≤ x)) with one pseudo-observation smeared exponentially beyond the envelope.
    pub(super) fn tails(&self, x: f64, floor: f64) -> (f64, f64) {
        if !self.seen {
            return (1.0, 1.0);
        }
        let scale = (TAIL_FRACTION * (self.env_hi - self.env_lo)).max(floor);
        // Inside the envelope the pseudo-count is exp(0) = 1: skip the exp calls.
        let k_hi = if x > self.env_hi { (-(x - self.env_hi) / scale).exp() } else { 1.0 };
        let k_lo = if x < self.env_lo { (-(self.env_lo - x) / scale).exp() } else { 1.0 };
        let (ge, le) = self.masses(x);
        let denom = self.total * self.unit + 1.0;
        (((ge * self.unit + k_hi) / denom).min(1.0), ((le * self.unit + k_lo) / denom).min(1.0))
    }

    /// Inline: one multiplication and a test per call, four calls per update.
    #[inline(always)]
    pub(super) fn decay(&mut self, factor: f64) {
        self.unit *= factor;
        if self.unit < UNIT_RESCALE {
            self.rescale();
        }
    }

    #[cold]
    #[inline(never)]
    fn rescale(&mut self) {
        for b in &mut self.bins {
            *b *= self.unit;
        }
        self.total *= self.unit;
        self.unit = 1.0;
    }

    /// Re-grid onto [lo, hi] ⊇ the current grid, spreading each old bin's mass uniformly.
    #[cold]
    #[inline(never)]
    fn regrid(&mut self, lo: f64, hi: f64) {
        let old_lo = self.lo;
        let old_w = (self.hi - self.lo) / BINS as f64;
        let new_w = (hi - lo) / BINS as f64;
        // The new bin of a position: via i32, which saturates like the usize cast but costs
        // several instructions less (negative and NaN give 0, huge gives the last bin either way).
        let bin = |x: f64| (((x - lo) / new_w) as i32).clamp(0, BINS as i32 - 1) as usize;
        let mut fresh = [0.0; BINS];
        // Young histograms are mostly empty: four bins at a time are skipped when no bit is set
        // (masses are never negative; a lone -0.0 falls through to the bin-wise test).
        for (c, chunk) in self.bins.as_chunks::<4>().0.iter().enumerate() {
            if chunk.iter().fold(0, |bits, m| bits | m.to_bits()) == 0 {
                continue;
            }
            for (k, &m) in chunk.iter().enumerate() {
                if m == 0.0 {
                    continue;
                }
                // The index as i32 converts in one instruction (as usize in five), same value.
                let a = old_lo + (4 * c + k) as i32 as f64 * old_w;
                let b = a + old_w;
                let (ja, jb) = (bin(a), bin(b));
                if ja == jb || old_w <= 0.0 {
                    fresh[ja] += m;
                } else {
                    // Old bins are never wider than new ones, so an old bin straddles at most
                    // one edge.
                    let edge = lo + jb as i32 as f64 * new_w;
                    let left = ((edge - a) / old_w).clamp(0.0, 1.0);
                    fresh[ja] += m * left;
                    fresh[jb] += m * (1.0 - left);
                }
            }
        }
        self.bins = fresh;
        self.lo = lo;
        self.hi = hi;
        self.safe_lo = safe_empty();
        self.safe_left = 0;
    }

    /// Learn x with weight w; `full` weights also extend the envelope. Outliers may stretch the
    /// grid at most threefold per step, so one wild value cannot wipe out the body's resolution.
    pub(super) fn learn(&mut self, x: f64, w: f64, full: bool) {
        if !self.seen {
            let half = (x.abs() * 1e-6).max(1e-12);
            self.lo = x - half;
            self.hi = x + half;
            self.env_lo = x;
            self.env_hi = x;
            self.seen = true;
        }
        if x < self.lo || x >= self.hi {
            let width = self.hi - self.lo;
            let (mut lo, mut hi) = (self.lo, self.hi);
            if x < lo {
                let target = x - 0.25 * (hi - x);
                lo = if full { target } else { target.max(lo - 2.0 * width) };
            } else {
                let target = x + 0.25 * (x - lo);
                hi = if full { target } else { target.min(hi + 2.0 * width) };
            }
            if lo.is_finite() && hi.is_finite() && hi - lo > 0.0 && (hi - lo).is_finite() {
                self.regrid(lo, hi);
            }
        }
        let width = (self.hi - self.lo) / BINS as f64;
        let i = if width > 0.0 { (((x - self.lo) / width) as i32).clamp(0, BINS as i32 - 1) as usize } else { 0 };
        let stored = w / self.unit;
        self.bins[i] += stored;
        self.total += stored;
        if full {
            // Selects (one minsd/maxsd each) rather than f64::min/max, whose NaN handling costs
            // four instructions more: x is never NaN (residuals are checked finite, and the
            // multi-bucket mean of finite values can overflow but not turn NaN), so neither is
            // the envelope. For such operands f64::min/max compiled to exactly these selects
            // (the stored value on a tie), so the bits are the same.
            self.env_lo = if x < self.env_lo { x } else { self.env_lo };
            self.env_hi = if x > self.env_hi { x } else { self.env_hi };
        }
    }

    /// Value at cumulative fraction q (0..1), by linear interpolation inside bins (independent
    /// of `unit`).
    pub(super) fn quantile(&self, q: f64) -> f64 {
        if self.total <= 0.0 {
            return 0.5 * (self.env_lo + self.env_hi);
        }
        let target = q * self.total;
        let width = (self.hi - self.lo) / BINS as f64;
        let mut acc = 0.0;
        for (i, &m) in self.bins.iter().enumerate() {
            if acc + m >= target && m > 0.0 {
                let x = self.lo + (i as f64 + (target - acc) / m) * width;
                return x.clamp(self.env_lo, self.env_hi);
            }
            acc += m;
        }
        self.env_hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prefetch` covers the scalars with their two ends (within one or two lines).
    #[test]
    fn scalars_lie_between_lo_and_seen() {
        use std::mem::offset_of;
        let (first, last) = (offset_of!(Marginal, lo), offset_of!(Marginal, seen));
        for at in [offset_of!(Marginal, hi), offset_of!(Marginal, total), offset_of!(Marginal, unit),
            offset_of!(Marginal, env_lo), offset_of!(Marginal, env_hi), offset_of!(Marginal, safe_lo),
            offset_of!(Marginal, safe_hi), offset_of!(Marginal, safe_left)]
        {
            assert!(first < at && at < last, "{first} {at} {last}");
        }
        assert!(last - first < 64);
    }

    /// The call-free ceil and floor give the very bits of the library's, sign of zero included.
    #[test]
    fn ceil_and_floor_are_the_librarys() {
        let mut xs = vec![0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 49151.999, 49152.0, 1e-300, -1e-300];
        xs.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN, 4_503_599_627_370_495.5]);
        xs.extend([4_503_599_627_370_496.0, -4_503_599_627_370_495.5, 9.3e18, -9.3e18, 1e300]);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            xs.push(f64::from_bits(rng));
            xs.push((rng >> 11) as f64 / (1u64 << 53) as f64 * 60_000.0 - 5_000.0);
        }
        for x in xs {
            assert_eq!(ceil(x).to_bits(), x.ceil().to_bits(), "{x}");
            assert_eq!(floor(x).to_bits(), x.floor().to_bits(), "{x}");
        }
    }

    /// The table holds the very powers `powi` gives (the refresh read them through it before).
    #[test]
    fn safe_decay_is_powi() {
        for d in [0.9999166701, 0.5, 0.99, (-0.0005f64 * 3600.0 / 1800.0).exp()] {
            let t = safe_decay(d);
            for (k, n) in [1, 3, 7, 15, 31, 63, 127, 255].into_iter().enumerate() {
                assert_eq!(t[k].to_bits(), std::hint::black_box(d).powi(std::hint::black_box(n)).to_bits());
                assert_eq!(safe_validity(k) as i32, n);
            }
        }
    }

    #[test]
    fn lazy_decay_rescales_without_losing_mass() {
        // Decay 0.5 per step: `unit` crosses UNIT_RESCALE (≈ 2^-498) several times.
        let mut m = Marginal::new();
        let mut expected = 0.0;
        for k in 0..2000 {
            m.decay(0.5);
            expected *= 0.5;
            m.learn((k % 7) as f64, 1.0, true);
            expected += 1.0;
        }
        assert!(m.unit >= UNIT_RESCALE && m.unit <= 1.0);
        assert!((m.total * m.unit - expected).abs() < 1e-12 * expected, "{} vs {expected}", m.total * m.unit);
        // Inside the envelope both pseudo-counts are 1: the two tails add up to (T + 2) / (T + 1).
        let (ge, le) = m.tails(3.3, 1e-12);
        assert!((ge + le - (expected + 2.0) / (expected + 1.0)).abs() < 1e-12, "{ge} {le}");
        assert!(m.tails(100.0, 1e-12).0 < 1e-100);
    }
}
