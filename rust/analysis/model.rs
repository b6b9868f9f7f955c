//! The per-series online model ("ES-lite"): turns each finished bucket value into a calibrated
//! tail probability, causally (the value is scored before it is learned).
//!
//! Design (see spec §5.1/§5.2), chosen because NAB and operational data reward long memory and
//! tails that keep shrinking beyond everything seen so far:
//! - a slow level (the outlier-weighted mean, with the histogram's long memory) is removed;
//! - the residual's distribution is a decayed fixed-size histogram on an adaptive grid with very
//!   long memory; its tail probability is the conformal-style `(mass beyond + k) / (total + 1)`
//!   where the pseudo-count `k` is 1 inside the residual envelope and decays exponentially
//!   beyond it, so p keeps falling with the exceedance instead of flooring at 1/n;
//! - a 12-bucket geometric (0.9) mean of the residuals has its own histogram (sustained shifts);
//! - a daily profile (24 interpolated bins) is learned all the time, and a second set of
//!   histograms models the deseasoned residual; it replaces the plain one only while the profile
//!   cuts the out-of-sample one-step error by 80 % (tested continuously, so it can switch off);
//! - a weekly correction on top of it (56 interpolated 3-hour bins of value − level − daily) is
//!   learned all the time and tested from the second week on against the better of the plain and
//!   daily predictors (2-week error memory); its own histograms run while it is a candidate
//!   (error ratio < 0.6, until > 0.8), and it is used only after ≥ 2 weeks of data, a week of
//!   shadow history, and while it cuts that error by 70 % (so it too can switch off);
//! - updates are weighted by the bucket's p (ES's outlier weighting): anomalies barely enter the
//!   model, yet a persistent new regime accumulates mass and is accepted after a few buckets;
//! - p = 1 during warm-up (≥ 20 buckets and ≥ 1 day);
//! - fast path: each histogram caches a conservative "safe region" of values whose tails are
//!   certainly large enough that p > RECORD_PROBABILITY_THRESHOLD and the outlier weight is 1
//!   (refreshed on regrid and before decay and learning could have moved the tails that far);
//!   a track whose two features are inside theirs reports p = 1 without summing its tails.
//!   Records, weights and thus everything learned are bit for bit those of the exact tails.

use serde::{Deserialize, Serialize};

use super::score::RECORD_PROBABILITY_THRESHOLD;

/// Which deviations count: `high_*`/`low_*` functions are one-sided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Both,
    High,
    Low,
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub bucket_span_s: i64,
    pub side: Side,
    /// Count-family feature (non-negative counts): sets a quantisation floor on the tail scale.
    pub is_count: bool,
}

/// The result of scoring one bucket value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Observation {
    /// Exact whenever it is below RECORD_PROBABILITY_THRESHOLD. On the fast path (an ordinary
    /// value, see `SAFE_SINGLE_P`) it and `p_single`/`p_multi` are reported as 1.0, where the
    /// exact value is somewhere above the threshold.
    pub probability: f64,
    pub p_single: f64,
    pub p_multi: f64,
    /// `typical`, `lower` and `upper` (the median and the 2.5 %/97.5 % quantiles of the model's
    /// distribution) are exact only when `probability < RECORD_PROBABILITY_THRESHOLD`, i.e. when
    /// a record can be written; otherwise all three are the point prediction (the level, plus
    /// the daily profile and weekly correction when active), which saves three histogram scans
    /// per update.
    pub typical: f64,
    pub lower: f64,
    pub upper: f64,
    /// Likewise computed only when `probability < RECORD_PROBABILITY_THRESHOLD` (0 otherwise).
    pub multi_bucket_impact: f64,
}

/// Histogram resolution: 48 bins keep two histograms well under 1 KB.
const BINS: usize = 48;
/// ES's base decay: 0.0005 per 30-minute bucket (long memory).
const DECAY_PER_30MIN: f64 = 0.0005;
/// Exponential tail scale beyond the envelope, as a fraction of the envelope's width.
const TAIL_FRACTION: f64 = 0.04;
/// Outlier weighting: weight 1 for p ≥ 1e-3, log-linear down to MIN_WEIGHT at p ≤ 1e-5.
const MIN_WEIGHT: f64 = 0.05;
/// How much weaker the multi-bucket feature's p counts in the combination (tuned on NAB).
const MULTI_P_PENALTY: f64 = 10.0;
/// Values learned with at least this weight extend the envelope where the tails start.
const ENVELOPE_WEIGHT: f64 = 0.5;
const MULTI_LEN: usize = 12;
const MULTI_RATIO: f64 = 0.9;
/// MULTI_RATIO^(k+1), the weight of the residual k+1 buckets back.
const MULTI_WEIGHTS: [f64; MULTI_LEN - 1] = {
    let mut w = [0.0; MULTI_LEN - 1];
    let (mut k, mut f) = (0, MULTI_RATIO);
    while k < MULTI_LEN - 1 {
        w[k] = f;
        f *= MULTI_RATIO;
        k += 1;
    }
    w
};
/// 1 + the first `len` weights: the normaliser of the multi-bucket mean over `len` past values.
const MULTI_NORMS: [f64; MULTI_LEN] = {
    let mut n = [1.0; MULTI_LEN];
    let mut k = 1;
    while k < MULTI_LEN {
        n[k] = n[k - 1] + MULTI_WEIGHTS[k - 1];
        k += 1;
    }
    n
};
const WARMUP_BUCKETS: u32 = 20;
const DAY_S: i64 = 86400;
const DAY_BINS: usize = 24;
/// The daily profile is used when it cuts the one-step squared error to this fraction. Strict on
/// purpose: on NAB, weaker profiles (0.3–0.75) cost more in lost envelope signal than they gained.
const SEASONAL_ERROR_RATIO: f64 = 0.2;
const ERROR_MEMORY_DAYS: f64 = 3.0;
const PROFILE_MEMORY_DAYS: f64 = 10.0;
const WARMUP_S: i64 = 86400;
const WEEK_S: i64 = 7 * DAY_S;
/// The weekly profile is a correction on top of the daily one, in 3-hour blocks: per-weekday
/// levels and the coarse shape of weekends (a full 7×24 profile would not fit the 4 KB
/// per-series budget next to its shadow track; on NAB 14/28/42 blocks scored lower than 56).
const WEEK_BINS: usize = 56;
/// The weekly component is used when it cuts the one-step squared error of the better of the
/// plain and daily predictors to this fraction (strict like the daily test; best on NAB).
const WEEKLY_ERROR_RATIO: f64 = 0.3;
/// The weekly shadow track runs (and costs) only while the weekly error is a candidate: it
/// starts below this ratio and stops above WEEKLY_DROP_RATIO (hysteresis, so a ratio hovering
/// at the edge does not keep restarting it). Most series have no weekly pattern (ratio ≈ 1).
const WEEKLY_CANDIDATE_RATIO: f64 = 0.6;
const WEEKLY_DROP_RATIO: f64 = 0.8;
/// The weekly test's error memory: two periods, so one odd week cannot switch it on alone.
const WEEKLY_ERROR_MEMORY_WEEKS: f64 = 2.0;
const WEEKLY_PROFILE_MEMORY_WEEKS: f64 = 6.0;
/// `weekly_from` while the weekly shadow track is off.
const WEEKLY_OFF: i64 = i64::MAX;
/// The fast path: a track's p is reported as (1, 1) when its residual and multi-bucket feature
/// are certainly where p_single > SAFE_SINGLE_P and p_multi > SAFE_MULTI_P (`Marginal::safe`).
/// Then the exact p of that track would also give probability > RECORD_PROBABILITY_THRESHOLD
/// (no record, raw score 0, exact typical/lower/upper not needed) and outlier weights of 1 (so
/// learning is bit for bit the same). Most values are ordinary, and their exact tails (sums over
/// the histograms of every scored track) were most of the cost of an update.
const SAFE_SINGLE_P: f64 = max_f64(RECORD_PROBABILITY_THRESHOLD / 2.0, 1e-3);
const SAFE_MULTI_P: f64 = max_f64(RECORD_PROBABILITY_THRESHOLD / (2.0 * MULTI_P_PENALTY), 1e-3);

const fn max_f64(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

/// Smallest probability reported; keeps logs finite.
const P_FLOOR: f64 = 1e-300;

/// A decayed histogram of one scalar feature with exponential tails beyond its envelope.
///
/// Decay is lazy: `bins` and `total` are kept in units of `unit` (true mass = stored × `unit`),
/// so a step's decay is one multiplication instead of one per bin; the stored values are
/// rescaled to `unit` = 1 only when `unit` gets tiny. Exact up to floating-point rounding.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Marginal {
    lo: f64,
    hi: f64,
    /// Inline (no heap indirection); serialised as a sequence, like the `Vec` it replaced.
    #[serde(with = "array_serde")]
    bins: [f64; BINS],
    total: f64,
    unit: f64,
    env_lo: f64,
    env_hi: f64,
    seen: bool,
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
/// The needed tail level is multiplied by this at refresh, on top of the learns' worst case:
/// room for floating-point rounding (≈ 1e-14 relative) many times over.
const SAFE_SLACK: f64 = 1.25;

/// Serde for inline arrays (serde derives arrays only up to 32 elements): as a sequence, like
/// the `Vec` they replaced.
mod array_serde {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize, const N: usize>(a: &[T; N], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(a.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(d: D) -> Result<[T; N], D::Error> {
        let v = Vec::<T>::deserialize(d)?;
        let n = v.len();
        v.try_into().map_err(|_| D::Error::invalid_length(n, &"a fixed-size array"))
    }
}

/// A side of the histogram is taken as `total` minus the other only above this fraction of the
/// total (rounding error of the difference ≈ 1e-14 of the total, so ≤ 1e-11 relative).
const COMPLEMENT_MIN: f64 = 1e-3;
/// Below this `unit` the stored masses are rescaled (far from overflow: stored ≤ total / unit).
const UNIT_RESCALE: f64 = 1e-150;

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
    fn new() -> Self {
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

    /// Whether x is in the safe region: there, every tail `tails` would compute that `side`
    /// uses is certainly above the level the region was refreshed for, so the exact tails are
    /// not needed. Compares `x − lo` (the same difference `masses` divides) with the bounds.
    #[inline(always)]
    fn safe(&self, x: f64) -> bool {
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
    fn count_learn(&mut self, decay: f64, level: f64, side: Side) {
        if self.safe_left > 1 {
            self.safe_left -= 1;
            return;
        }
        self.refresh_safe(decay, level, side);
    }

    #[cold]
    #[inline(never)]
    fn refresh_safe(&mut self, decay: f64, level: f64, side: Side) {
        self.safe_lo = safe_empty();
        self.safe_hi = 0;
        let t0 = self.total * self.unit;
        let g = |n: u8| decay.powi(n as i32) * (t0 + 1.0) / (t0 + 1.0 + n as f64);
        // The longest validity (halving from SAFE_MAX_LEFT) that keeps half the margin.
        let mut n = SAFE_MAX_LEFT;
        while n > 1 && g(n) < 0.5 {
            n /= 2;
        }
        self.safe_left = n;
        let width = (self.hi - self.lo) / BINS as f64;
        if !self.seen || !(width > 0.0) || !t0.is_finite() || !(self.unit > 0.0) {
            return;
        }
        let target = SAFE_SLACK * level / g(n);
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
        let q_lo = (lo_pos * SAFE_STEPS).ceil() + 1.0;
        let q_hi = (hi_pos * SAFE_STEPS).floor() - 1.0;
        if q_lo.is_finite() && q_hi.is_finite() && q_lo <= q_hi && q_lo >= 0.0 && q_hi <= top {
            self.safe_lo = q_lo as u16;
            self.safe_hi = q_hi as u16;
        }
    }

    /// Stored masses at or above x and at or below x (bins are uniform inside). The side with
    /// fewer bins is summed; the other is `total` minus it unless that leaves under
    /// COMPLEMENT_MIN of the total, where it is summed too: a tail beyond all the mass must be
    /// exactly 0, not a rounding residue of `total` (which would floor p near 1e-16).
    fn masses(&self, x: f64) -> (f64, f64) {
        if x <= self.lo {
            return (self.total, 0.0);
        }
        if x >= self.hi {
            return (0.0, self.total);
        }
        let width = (self.hi - self.lo) / BINS as f64;
        let pos = (x - self.lo) / width;
        // Via i32: a saturating f64 → usize cast costs several instructions more.
        let i = (pos as i32).clamp(0, BINS as i32 - 1) as usize;
        let frac_above = (i + 1) as f64 - pos;
        let ge = || self.bins[i] * frac_above + sum_range(&self.bins, i + 1, BINS);
        let le = || self.bins[i] * (1.0 - frac_above) + sum_range(&self.bins, 0, i);
        let complement = |part: f64, exact: &dyn Fn() -> f64| {
            let rest = self.total - part;
            if rest > COMPLEMENT_MIN * self.total { rest } else { exact() }
        };
        if i >= BINS / 2 {
            let ge = ge();
            (ge, complement(ge, &le))
        } else {
            let le = le();
            (complement(le, &ge), le)
        }
    }

    /// (P(X ≥ x), P(X ≤ x)) with one pseudo-observation smeared exponentially beyond the envelope.
    fn tails(&self, x: f64, floor: f64) -> (f64, f64) {
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

    fn decay(&mut self, factor: f64) {
        self.unit *= factor;
        if self.unit < UNIT_RESCALE {
            for b in &mut self.bins {
                *b *= self.unit;
            }
            self.total *= self.unit;
            self.unit = 1.0;
        }
    }

    /// Re-grid onto [lo, hi] ⊇ the current grid, spreading each old bin's mass uniformly.
    #[cold]
    #[inline(never)]
    fn regrid(&mut self, lo: f64, hi: f64) {
        let old_lo = self.lo;
        let old_w = (self.hi - self.lo) / BINS as f64;
        let new_w = (hi - lo) / BINS as f64;
        let mut fresh = [0.0; BINS];
        for (i, &m) in self.bins.iter().enumerate() {
            if m == 0.0 {
                continue;
            }
            let a = old_lo + i as f64 * old_w;
            let b = a + old_w;
            let ja = (((a - lo) / new_w) as usize).min(BINS - 1);
            let jb = (((b - lo) / new_w) as usize).min(BINS - 1);
            if ja == jb || old_w <= 0.0 {
                fresh[ja] += m;
            } else {
                // Old bins are never wider than new ones, so an old bin straddles at most one edge.
                let edge = lo + jb as f64 * new_w;
                let left = ((edge - a) / old_w).clamp(0.0, 1.0);
                fresh[ja] += m * left;
                fresh[jb] += m * (1.0 - left);
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
    fn learn(&mut self, x: f64, w: f64, full: bool) {
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
            self.env_lo = self.env_lo.min(x);
            self.env_hi = self.env_hi.max(x);
        }
    }

    /// Value at cumulative fraction q (0..1), by linear interpolation inside bins (independent
    /// of `unit`).
    fn quantile(&self, q: f64) -> f64 {
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

/// The features of one residual definition: the residual's own histogram and the 12-bucket
/// geometric mean of the residuals with its histogram.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Track {
    single: Marginal,
    multi: Marginal,
    /// The last MULTI_LEN − 1 residuals, newest first; never-filled entries stay 0.
    recent: [f64; MULTI_LEN - 1],
    recent_len: u8,
}

impl Track {
    fn new() -> Self {
        Track { single: Marginal::new(), multi: Marginal::new(), recent: [0.0; MULTI_LEN - 1], recent_len: 0 }
    }

    /// The geometric mean of the recent residuals including `r`, without storing it. A fixed
    /// number of terms (the unfilled ones add exact zeros), so the loop unrolls.
    fn multi_feature(&self, r: f64) -> f64 {
        let mut sum = r;
        for (w, x) in MULTI_WEIGHTS.iter().zip(&self.recent) {
            sum += w * x;
        }
        sum / MULTI_NORMS[self.recent_len as usize]
    }

    /// (p_single, p_multi) of residual r and its multi-bucket feature m; (1, 1) when `fast` and
    /// both are in their safe regions (see `SAFE_SINGLE_P`).
    #[inline(always)]
    fn p(&self, side: Side, r: f64, m: f64, floor: f64, fast: bool) -> (f64, f64) {
        if fast && self.single.safe(r) && self.multi.safe(m) {
            return (1.0, 1.0);
        }
        self.p_exact(side, r, m, floor)
    }

    #[inline(never)]
    fn p_exact(&self, side: Side, r: f64, m: f64, floor: f64) -> (f64, f64) {
        (two_or_one_sided(side, self.single.tails(r, floor)), two_or_one_sided(side, self.multi.tails(m, floor)))
    }

    /// Learns r and m, each weighted by its own p; returns the smaller weight.
    fn learn(&mut self, side: Side, decay: f64, r: f64, m: f64, (p_single, p_multi): (f64, f64)) -> f64 {
        self.single.decay(decay);
        self.multi.decay(decay);
        let (ws, wm) = (outlier_weight(p_single), outlier_weight(p_multi));
        self.single.learn(r, ws, ws >= ENVELOPE_WEIGHT);
        self.multi.learn(m, wm, wm >= ENVELOPE_WEIGHT);
        // Per tail: a two-sided p is twice the smaller tail.
        let sides = if side == Side::Both { 0.5 } else { 1.0 };
        self.single.count_learn(decay, SAFE_SINGLE_P * sides, side);
        self.multi.count_learn(decay, SAFE_MULTI_P * sides, side);
        self.recent.copy_within(..MULTI_LEN - 2, 1);
        self.recent[0] = r;
        self.recent_len = (self.recent_len + 1).min(MULTI_LEN as u8 - 1);
        ws.min(wm)
    }
}

/// The online model of one series.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesModel {
    n: u32,
    first_time_s: i64,
    level: f64,
    level_weight: f64,
    /// EW mean of the document weights, for the variance scaling of means over few documents.
    doc_weight: f64,
    /// Residuals from the level alone; always learning, so the seasonal test has a shadow.
    plain: Track,
    /// Residuals from level + daily profile; used once the daily profile has proved itself.
    seasonal: Track,
    /// Daily profile of value − level: DAY_BINS bin values and their weights.
    day: [f64; DAY_BINS],
    day_weight: [f64; DAY_BINS],
    /// EW mean squared one-step errors without and with the daily profile (out of sample).
    err_plain: f64,
    err_seasonal: f64,
    /// Residuals from level + daily + weekly profile: learns while the weekly profile is a
    /// candidate (never in the first week, before the profile has seen a period) and is used
    /// once the profile has proved itself and the track has a week of history.
    weekly: Track,
    /// When the weekly track (re)started learning; WEEKLY_OFF while it is off.
    weekly_from: i64,
    /// Weekly correction to the daily profile (of value − level − daily), WEEK_BINS 3-hour bins
    /// and their weights; f32 halves its memory, and its precision is far below the noise.
    #[serde(with = "array_serde")]
    week: [f32; WEEK_BINS],
    #[serde(with = "array_serde")]
    week_weight: [f32; WEEK_BINS],
    /// The weekly test's EW mean squared one-step errors of the plain, daily and weekly
    /// predictors, over about WEEKLY_ERROR_MEMORY_WEEKS (the 3-day errors above would swing
    /// with the weekday/weekend cycle); updated from the second week on.
    week_err: [f64; 3],
}

/// The per-bucket decay factor of a bucket span, cached per thread (an exp per update costs
/// about as much as the rest of learning a value).
fn decay_factor(bucket_span_s: i64) -> f64 {
    thread_local! {
        static CACHE: std::cell::Cell<(i64, f64)> = const { std::cell::Cell::new((i64::MIN, 1.0)) };
    }
    CACHE.with(|c| {
        let (span, factor) = c.get();
        if span == bucket_span_s {
            return factor;
        }
        let factor = (-DECAY_PER_30MIN * bucket_span_s.max(1) as f64 / 1800.0).exp();
        c.set((bucket_span_s, factor));
        factor
    })
}

/// Outlier weight of an update: ES-style log-linear ramp between p = 1e-3 and 1e-5.
fn outlier_weight(p: f64) -> f64 {
    if p >= 1e-3 {
        return 1.0;
    }
    let t = ((1e-3f64.log10() - p.max(P_FLOOR).log10()) / 2.0).min(1.0);
    MIN_WEIGHT.powf(t)
}

fn two_or_one_sided(side: Side, (hi, lo): (f64, f64)) -> f64 {
    let p = match side {
        Side::Both => 2.0 * hi.min(lo),
        Side::High => hi,
        Side::Low => lo,
    };
    p.clamp(P_FLOOR, 1.0)
}

/// ES's multi-bucket impact (spec §2.2): positive when the multi-bucket feature explains more.
fn multi_bucket_impact(p_single: f64, p_multi: f64) -> f64 {
    let ls = p_single.max(P_FLOOR).ln();
    let lm = p_multi.max(P_FLOOR).ln();
    let impact = 5.0 * ls.min(lm) / ls.max(lm).min(-0.001) / 1000f64.ln() * (ls - lm);
    if impact.is_finite() { impact.clamp(-5.0, 5.0) } else { 0.0 }
}

/// The two bins of an `n`-bin profile over a period around `phase_s` (seconds into the period,
/// 0 ≤ phase_s < period_s; `n` divides the period) and the share of the second: linear
/// interpolation between bin centres, wrapping around the period. Integer arithmetic with
/// constant divisors: cheaper than a floor and a saturating float-to-int cast.
#[inline(always)]
fn profile_bins(phase_s: i64, period_s: i64, n: usize) -> (usize, usize, f64) {
    let width = period_s / n as i64;
    // Seconds past the centre of the bin at or before phase_s, shifted by a period to stay ≥ 0.
    let shifted = (phase_s + period_s - width / 2) as u64;
    let i = (shifted / width as u64) as usize;
    let a = if i >= n { i - n } else { i };
    let f = (shifted % width as u64) as f64 / width as f64;
    (a, if a + 1 == n { 0 } else { a + 1 }, f)
}

/// Intermediate result of scoring, reused by learning.
struct Scored {
    obs: Observation,
    residual: f64,
    multi: f64,
    deseasoned: f64,
    multi_seasonal: f64,
    p_plain: (f64, f64),
    p_seasonal: (f64, f64),
    active: bool,
    season: f64,
    /// The weekly track's residual, multi-bucket feature and p (when it learns).
    deweeked: f64,
    multi_weekly: f64,
    p_weekly: (f64, f64),
    /// Past the first week (the weekly test runs), with a finite weekly prediction.
    weekly_tested: bool,
    weekly_learns: bool,
    weekly_active: bool,
    week: f64,
    week_bins: (usize, usize, f64),
    day_bins: (usize, usize, f64),
    elapsed: i64,
}

impl SeriesModel {
    pub fn new(_cfg: &ModelConfig) -> Self {
        SeriesModel {
            n: 0,
            first_time_s: 0,
            level: 0.0,
            level_weight: 0.0,
            doc_weight: 1.0,
            plain: Track::new(),
            seasonal: Track::new(),
            day: [0.0; DAY_BINS],
            day_weight: [0.0; DAY_BINS],
            err_plain: 0.0,
            err_seasonal: 0.0,
            weekly: Track::new(),
            weekly_from: WEEKLY_OFF,
            week: [0.0; WEEK_BINS],
            week_weight: [0.0; WEEK_BINS],
            week_err: [0.0; 3],
        }
    }

    /// Score one finished bucket's value (computed before learning it: causal), then learn it.
    pub fn observe(&mut self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64) -> Observation {
        let Some(s) = self.score(cfg, time_s, value, weight, true) else {
            return self.inert(value);
        };
        self.learn(cfg, time_s, value, weight, &s);
        s.obs
    }

    /// Interim scoring of a not-yet-final bucket: same as `observe` but does not learn.
    pub fn score_only(&self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64) -> Observation {
        match self.score(cfg, time_s, value, weight, true) {
            Some(s) => s.obs,
            None => self.inert(value),
        }
    }

    /// `observe` with the exact tails everywhere (no fast path), to test the fast path against.
    #[cfg(test)]
    fn observe_exact(&mut self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64) -> Observation {
        let Some(s) = self.score(cfg, time_s, value, weight, false) else {
            return self.inert(value);
        };
        self.learn(cfg, time_s, value, weight, &s);
        s.obs
    }

    /// Bytes of this model (all inline: the histograms are fixed-size arrays).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    /// The observation for a value that cannot be scored (non-finite input).
    fn inert(&self, value: f64) -> Observation {
        let typical = if self.n > 0 { self.level } else { if value.is_finite() { value } else { 0.0 } };
        Observation {
            probability: 1.0,
            p_single: 1.0,
            p_multi: 1.0,
            typical,
            lower: typical,
            upper: typical,
            multi_bucket_impact: 0.0,
        }
    }

    /// Document-count scale of a residual: a mean over fewer documents than usual is noisier,
    /// so its deviation counts for less (and vice versa).
    fn doc_scale(&self, weight: f64) -> f64 {
        let w = if weight.is_finite() && weight > 0.0 { weight } else { 1.0 };
        (w / self.doc_weight).sqrt().clamp(0.25, 4.0)
    }

    /// The daily profile at the bins `profile_bins` returned: linear interpolation between bin
    /// centres.
    fn daily(&self, (a, b, f): (usize, usize, f64)) -> f64 {
        self.day[a] * (1.0 - f) + self.day[b] * f
    }

    /// The weekly correction at the bins `week_bins` returned: linear interpolation between
    /// bin centres.
    fn weekly_profile(&self, (a, b, f): (usize, usize, f64)) -> f64 {
        self.week[a] as f64 * (1.0 - f) + self.week[b] as f64 * f
    }

    /// Seconds since the first value (0 before it).
    fn elapsed(&self, time_s: i64) -> i64 {
        if self.n == 0 { 0 } else { time_s.saturating_sub(self.first_time_s) }
    }

    /// The daily profile is used once it has seen two days and cuts the one-step error enough.
    fn seasonal_active(&self, time_s: i64) -> bool {
        time_s.saturating_sub(self.first_time_s) >= 2 * DAY_S && self.err_seasonal < SEASONAL_ERROR_RATIO * self.err_plain
    }

    /// The weekly error as a fraction of the better simpler predictor's (∞ when both are 0).
    fn weekly_ratio(&self) -> f64 {
        let [plain, daily, weekly] = self.week_err;
        let base = plain.min(daily);
        if base > 0.0 { weekly / base } else { f64::INFINITY }
    }

    /// Whether the weekly shadow track learns at this bucket (past the first week; hysteresis
    /// between WEEKLY_CANDIDATE_RATIO and WEEKLY_DROP_RATIO).
    fn weekly_learns(&self, elapsed: i64) -> bool {
        let limit = if self.weekly_from == WEEKLY_OFF { WEEKLY_CANDIDATE_RATIO } else { WEEKLY_DROP_RATIO };
        elapsed >= WEEK_S && self.weekly_ratio() < limit
    }

    /// The weekly profile is used once it has seen two weeks, cuts the one-step error of the
    /// better simpler predictor enough (re-tested every bucket, so it switches off again), and
    /// its shadow track has learned for a week (so its tails are calibrated).
    fn weekly_active(&self, time_s: i64, elapsed: i64) -> bool {
        elapsed >= 2 * WEEK_S
            && self.weekly_from != WEEKLY_OFF
            && time_s.saturating_sub(self.weekly_from) >= WEEK_S
            && self.weekly_ratio() < WEEKLY_ERROR_RATIO
    }

    #[inline(always)]
    fn score(&self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64, fast: bool) -> Option<Scored> {
        if !value.is_finite() {
            return None;
        }
        // The very first value defines the level.
        let level = if self.n == 0 { value } else { self.level };
        // The week is a whole number of days from the epoch, so one remainder serves both.
        let week_phase = time_s.rem_euclid(WEEK_S);
        let day_bins = profile_bins(week_phase % DAY_S, DAY_S, DAY_BINS);
        let season = self.daily(day_bins);
        let scale = self.doc_scale(weight);
        let residual = (value - level) * scale;
        let deseasoned = (value - level - season) * scale;
        if !residual.is_finite() || !deseasoned.is_finite() {
            return None;
        }
        let multi = self.plain.multi_feature(residual);
        let multi_seasonal = self.seasonal.multi_feature(deseasoned);
        let warm = self.n >= WARMUP_BUCKETS && time_s.saturating_sub(self.first_time_s) >= WARMUP_S;
        let floor = self.scale_floor(cfg);
        let (p_plain, p_seasonal) = if warm {
            (
                self.plain.p(cfg.side, residual, multi, floor, fast),
                self.seasonal.p(cfg.side, deseasoned, multi_seasonal, floor, fast),
            )
        } else {
            ((1.0, 1.0), (1.0, 1.0))
        };
        // The weekly profile is tested from the second week on (before, it has not seen a
        // period); its track is scored only while it learns (it costs as much as another track).
        let week_bins = profile_bins(week_phase, WEEK_S, WEEK_BINS);
        let elapsed = self.elapsed(time_s);
        let (week, deweeked) = if elapsed >= WEEK_S {
            let week = self.weekly_profile(week_bins);
            (week, deseasoned - week * scale)
        } else {
            (0.0, 0.0)
        };
        let weekly_tested = elapsed >= WEEK_S && deweeked.is_finite();
        let weekly_learns = weekly_tested && self.weekly_learns(elapsed);
        let (multi_weekly, p_weekly) = if weekly_learns {
            let multi_weekly = self.weekly.multi_feature(deweeked);
            let p = if warm { self.weekly.p(cfg.side, deweeked, multi_weekly, floor, fast) } else { (1.0, 1.0) };
            (multi_weekly, p)
        } else {
            (0.0, (1.0, 1.0))
        };
        let weekly_active = weekly_learns && self.weekly_active(time_s, elapsed);
        let active = self.seasonal_active(time_s);
        let ((p_single, p_multi), track, offset) = if weekly_active {
            (p_weekly, &self.weekly, level + season + week)
        } else if active {
            (p_seasonal, &self.seasonal, level + season)
        } else {
            (p_plain, &self.plain, level)
        };
        // Bonferroni over the two features; the multi-bucket feature is autocorrelated, so its
        // tail is trusted less (its p counts MULTI_P_PENALTY times weaker).
        let probability = (2.0 * p_single.min(MULTI_P_PENALTY * p_multi)).clamp(P_FLOOR, 1.0);
        // The quantile scans are only worth their cost where a record is written (the engine
        // reads these fields only then); elsewhere the point prediction stands in for all three.
        let (typical, lower, upper) = if !track.single.seen {
            (value, value, value)
        } else if probability < RECORD_PROBABILITY_THRESHOLD {
            (
                offset + track.single.quantile(0.5),
                offset + track.single.quantile(0.025),
                offset + track.single.quantile(0.975),
            )
        } else {
            (offset, offset, offset)
        };
        let lower = if cfg.is_count { lower.max(0.0) } else { lower };
        Some(Scored {
            obs: Observation {
                probability,
                p_single,
                p_multi,
                typical,
                lower,
                upper,
                multi_bucket_impact: if probability < RECORD_PROBABILITY_THRESHOLD {
                    multi_bucket_impact(p_single, p_multi)
                } else {
                    0.0
                },
            },
            residual,
            multi,
            deseasoned,
            multi_seasonal,
            p_plain,
            p_seasonal,
            active,
            season,
            deweeked,
            multi_weekly,
            p_weekly,
            weekly_tested,
            weekly_learns,
            weekly_active,
            week,
            week_bins,
            day_bins,
            elapsed,
        })
    }

    /// Smallest tail scale: relative to the level, and half a unit for counts.
    fn scale_floor(&self, cfg: &ModelConfig) -> f64 {
        let relative = 1e-4 * self.level.abs();
        let quantum = if cfg.is_count { 0.5 } else { 0.0 };
        relative.max(quantum).max(1e-12)
    }

    fn learn(&mut self, cfg: &ModelConfig, time_s: i64, value: f64, weight: f64, s: &Scored) {
        if self.n == 0 {
            self.first_time_s = time_s;
            self.level = value;
        }
        self.n = self.n.saturating_add(1);
        let decay = decay_factor(cfg.bucket_span_s);
        let w_plain = self.plain.learn(cfg.side, decay, s.residual, s.multi, s.p_plain);
        let w_seasonal = self.seasonal.learn(cfg.side, decay, s.deseasoned, s.multi_seasonal, s.p_seasonal);
        let w_weekly = if s.weekly_learns {
            // A paused track keeps its histograms (the tracks decay per learned bucket, not per
            // second, so they are simply older data), but its recent residuals are from before
            // the pause and would distort the multi-bucket feature.
            if self.weekly_from == WEEKLY_OFF {
                self.weekly_from = time_s;
                self.weekly.recent = [0.0; MULTI_LEN - 1];
                self.weekly.recent_len = 0;
            }
            self.weekly.learn(cfg.side, decay, s.deweeked, s.multi_weekly, s.p_weekly)
        } else {
            self.weekly_from = WEEKLY_OFF;
            1.0
        };
        let w = if s.weekly_active {
            w_weekly
        } else if s.active {
            w_seasonal
        } else {
            w_plain
        };

        // Out-of-sample errors for the seasonal test, over about ERROR_MEMORY_DAYS.
        let plain_err = (value - self.level).powi(2);
        let seasonal_err = (value - self.level - s.season).powi(2);
        let per_day = (DAY_S as f64 / cfg.bucket_span_s.max(1) as f64).max(1.0);
        let rate = w * (1.0 / self.n as f64).max(1.0 / (ERROR_MEMORY_DAYS * per_day));
        if plain_err.is_finite() && seasonal_err.is_finite() {
            self.err_plain += rate * (plain_err - self.err_plain);
            self.err_seasonal += rate * (seasonal_err - self.err_seasonal);
        }

        // The weekly test's errors, from the second week on (before, the weekly profile has not
        // seen a whole period and its error would say nothing), over about two weeks.
        let span = cfg.bucket_span_s.max(1) as f64;
        if s.weekly_tested {
            let since = (s.elapsed - WEEK_S) as f64;
            let rate = w * (span / (since + span)).max(span / (WEEKLY_ERROR_MEMORY_WEEKS * WEEK_S as f64)).min(1.0);
            let weekly_err = (value - self.level - s.season - s.week).powi(2);
            if plain_err.is_finite() && seasonal_err.is_finite() && weekly_err.is_finite() {
                for (e, x) in self.week_err.iter_mut().zip([plain_err, seasonal_err, weekly_err]) {
                    *e += rate * (x - *e);
                }
            }
        }

        // The weekly correction: per-bin weighted means of value − level − daily, split between
        // the two nearest bin centres, forgetting over about WEEKLY_PROFILE_MEMORY_WEEKS.
        let dev = value - self.level - s.season;
        if dev.is_finite() {
            let (a, b, f) = s.week_bins;
            let per_bin = WEEKLY_PROFILE_MEMORY_WEEKS * WEEK_S as f64 / span / WEEK_BINS as f64;
            let keep = 1.0 - 1.0 / per_bin.max(1.0);
            for (bin, share) in [(a, 1.0 - f), (b, f)] {
                let bw = w * share;
                if bw <= 0.0 {
                    continue;
                }
                let weight = self.week_weight[bin] as f64 * keep + bw;
                let moved = self.week[bin] as f64 + bw / weight * (dev - self.week[bin] as f64);
                // Beyond f32's range the bin would stick at infinity: such a value is skipped.
                if (moved as f32).is_finite() {
                    self.week_weight[bin] = weight as f32;
                    self.week[bin] = moved as f32;
                }
            }
        }

        // The daily profile: per-bin weighted means of value − level, split between the two
        // nearest bin centres, forgetting over about PROFILE_MEMORY_DAYS.
        let (a, b, f) = s.day_bins;
        let dev = value - self.level;
        if dev.is_finite() {
            for (bin, share) in [(a, 1.0 - f), (b, f)] {
                let bw = w * share;
                if bw <= 0.0 {
                    continue;
                }
                self.day_weight[bin] = self.day_weight[bin] * (1.0 - 1.0 / (PROFILE_MEMORY_DAYS * per_day / DAY_BINS as f64).max(1.0)) + bw;
                self.day[bin] += bw / self.day_weight[bin] * (dev - self.day[bin]);
            }
        }

        // The level is the outlier-weighted mean with the model's own (long) memory: on NAB any
        // faster level (1 to 7 days) lost 1 to 4 points, because the residual must keep the
        // series' whole history for first excursions to stand out.
        self.level_weight = self.level_weight * decay + w;
        let moved = self.level + w / self.level_weight * (value - self.level);
        if moved.is_finite() {
            self.level = moved;
        }
        let dw = if weight.is_finite() && weight > 0.0 { weight } else { 1.0 };
        self.doc_weight += (dw - self.doc_weight) * (1.0 / self.n as f64).max(0.01);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(side: Side) -> ModelConfig {
        ModelConfig { bucket_span_s: 300, side, is_count: false }
    }

    /// Deterministic standard normal noise (xorshift + Box-Muller).
    struct Noise(u64);
    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    fn run(m: &mut SeriesModel, c: &ModelConfig, values: &[f64]) -> Vec<Observation> {
        values.iter().enumerate().map(|(i, &v)| m.observe(c, i as i64 * 300, v, 1.0)).collect()
    }

    #[test]
    fn spike_after_steady_series_is_tiny() {
        let c = cfg(Side::Both);
        let mut m = SeriesModel::new(&c);
        let mut noise = Noise(7);
        let values: Vec<f64> = (0..1000).map(|_| 10.0 + 0.1 * noise.normal()).collect();
        let obs = run(&mut m, &c, &values);
        assert!(obs[..20].iter().all(|o| o.probability == 1.0), "warm-up");
        let spike = m.observe(&c, 1000 * 300, 20.0, 1.0);
        assert!(spike.probability < 1e-10, "p = {}", spike.probability);
        assert!(spike.multi_bucket_impact < 0.0);
        assert!((spike.typical - 10.0).abs() < 0.1);
        assert!(spike.lower < spike.typical && spike.typical < spike.upper);
    }

    #[test]
    fn one_sided() {
        let mut noise = Noise(3);
        let values: Vec<f64> = (0..1000).map(|_| 10.0 + noise.normal()).collect();
        for (side, dip_small, spike_small) in [(Side::High, false, true), (Side::Low, true, false), (Side::Both, true, true)] {
            let c = cfg(side);
            let mut m = SeriesModel::new(&c);
            run(&mut m, &c, &values);
            let dip = m.score_only(&c, 300_000, 0.0, 1.0).probability;
            let spike = m.score_only(&c, 300_000, 20.0, 1.0).probability;
            assert_eq!(dip < 1e-6, dip_small, "{side:?} dip {dip}");
            assert_eq!(spike < 1e-6, spike_small, "{side:?} spike {spike}");
        }
    }

    #[test]
    fn calibrated_on_iid_noise() {
        let c = cfg(Side::Both);
        let mut m = SeriesModel::new(&c);
        let mut noise = Noise(11);
        let values: Vec<f64> = (0..40_000).map(|_| noise.normal()).collect();
        let obs = run(&mut m, &c, &values);
        let after = &obs[2000..];
        let rate = after.iter().filter(|o| o.probability < 0.01).count() as f64 / after.len() as f64;
        assert!(rate > 0.005 && rate < 0.02, "P(p<0.01) = {rate}");
    }

    #[test]
    fn serde_round_trip_continues_identically() {
        let c = cfg(Side::Both);
        let mut m = SeriesModel::new(&c);
        let mut noise = Noise(5);
        let values: Vec<f64> = (0..600).map(|i| (i % 50) as f64 + noise.normal()).collect();
        run(&mut m, &c, &values[..300]);
        let mut copy: SeriesModel = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        for (i, &v) in values[300..].iter().enumerate() {
            let t = (300 + i as i64) * 300;
            let a = m.observe(&c, t, v, 1.0);
            let b = copy.observe(&c, t, v, 1.0);
            assert_eq!(a.probability.to_bits(), b.probability.to_bits());
            assert_eq!(a.typical.to_bits(), b.typical.to_bits());
        }
    }

    #[test]
    fn weird_inputs_never_nan() {
        let c = ModelConfig { bucket_span_s: 60, side: Side::Both, is_count: true };
        let mut m = SeriesModel::new(&c);
        let weird = [0.0, f64::NAN, f64::INFINITY, -f64::INFINITY, 1e308, -1e308, f64::MIN_POSITIVE, 5e-324, -0.0, 1.0, 1e-300];
        for round in 0..200i64 {
            for (k, &v) in weird.iter().enumerate() {
                let t = (round * weird.len() as i64 + k as i64) * 60;
                let weight = [1.0, 0.0, f64::NAN, 1e9][k % 4];
                for o in [m.score_only(&c, t, v, weight), m.observe(&c, t, v, weight)] {
                    for x in [o.probability, o.p_single, o.p_multi, o.typical, o.lower, o.upper, o.multi_bucket_impact] {
                        assert!(!x.is_nan(), "NaN for {v}");
                    }
                    assert!(o.probability > 0.0 && o.probability <= 1.0);
                    if !v.is_finite() {
                        assert_eq!(o.probability, 1.0);
                    }
                }
            }
        }
    }

    #[test]
    fn daily_profile_is_tested_and_used() {
        let c = ModelConfig { bucket_span_s: 600, side: Side::Both, is_count: false };
        let mut m = SeriesModel::new(&c);
        let mut noise = Noise(9);
        let day = |t: i64| 10.0 * (2.0 * std::f64::consts::PI * t as f64 / 86400.0).sin();
        for i in 0..144 * 10 {
            let t = i * 600;
            m.observe(&c, t, day(t) + 0.2 * noise.normal(), 1.0);
        }
        let t = 144 * 10 * 600 + 600 * 36; // a daily peak: 10 is typical, 0 is anomalous
        assert!(m.seasonal_active(t));
        assert!(m.score_only(&c, t, day(t), 1.0).probability > 0.01);
        assert!(m.score_only(&c, t, 0.0, 1.0).probability < 1e-6);
    }

    /// Hourly buckets over `weeks` weeks: a daily cycle, weekends (days 2 and 3 after the
    /// epoch's Thursday) at `weekend` times the weekday level, and noise.
    fn weekly_series(weeks: i64, weekend: f64, seed: u64) -> Vec<(i64, f64)> {
        let mut noise = Noise(seed);
        (0..weeks * 168)
            .map(|i| {
                let t = i * 3600;
                let day = t / DAY_S % 7;
                let level = if day == 2 || day == 3 { 100.0 * weekend } else { 100.0 };
                let daily = 1.0 + 0.2 * (2.0 * std::f64::consts::PI * t as f64 / DAY_S as f64).sin();
                (t, level * daily + noise.normal())
            })
            .collect()
    }

    #[test]
    fn profile_bins_interpolate_between_centres() {
        assert_eq!(profile_bins(0, DAY_S, 24), (23, 0, 0.5));
        assert_eq!(profile_bins(1800, DAY_S, 24), (0, 1, 0.0));
        assert_eq!(profile_bins(2700, DAY_S, 24), (0, 1, 0.25));
        assert_eq!(profile_bins(DAY_S - 1, DAY_S, 24).0, 23);
        assert_eq!(profile_bins(WEEK_S - 1, WEEK_S, WEEK_BINS).1, 0);
    }

    #[test]
    fn weekly_pattern_is_tested_and_used() {
        let c = ModelConfig { bucket_span_s: 3600, side: Side::Both, is_count: false };
        let mut m = SeriesModel::new(&c);
        let series = weekly_series(9, 0.5, 13);
        // Day 2 after the epoch is a Saturday, day 4 a Monday.
        let (saturday_noon, monday_noon) = (8 * 168 + 2 * 24 + 12, 8 * 168 + 4 * 24 + 12);
        let mut flagged = 0;
        for (k, &(t, v)) in series[..monday_noon].iter().enumerate() {
            if k == saturday_noon {
                // One step ahead: the weekend level is typical, the weekday level is not.
                assert!(m.score_only(&c, t, 50.0, 1.0).probability > 0.01);
                assert!(m.score_only(&c, t, 100.0, 1.0).probability < 1e-6);
            }
            let o = m.observe(&c, t, v, 1.0);
            if k >= 4 * 168 {
                assert!(m.weekly_active(t, m.elapsed(t)), "weekly inactive at week {}", k / 168);
                flagged += (o.probability < 1e-3) as usize;
            }
        }
        // After warm-up the weekend dips are not anomalies (at most a bucket at a step's edge,
        // where the 3-hour profile interpolates).
        assert!(flagged <= 2, "{flagged} buckets flagged after warm-up");
        // A weekday at the weekend level, or a spike, still is.
        let t = series[monday_noon].0;
        let typical = m.score_only(&c, t, 100.0, 1.0);
        assert!(typical.probability > 0.01, "{typical:?}");
        assert!((typical.typical - 100.0).abs() < 5.0, "{typical:?}");
        assert!(m.score_only(&c, t, 50.0, 1.0).probability < 1e-6);
        // The weekly track's residuals are wider than the noise (the interpolated 3-hour profile
        // smooths the sharp weekend steps, and those errors enter its histogram), so a spike
        // must clear them.
        assert!(m.score_only(&c, t, 130.0, 1.0).probability < 1e-3);
        assert!(m.score_only(&c, t, 150.0, 1.0).probability < 1e-6);
    }

    #[test]
    fn no_weekly_pattern_never_activates_it() {
        let c = ModelConfig { bucket_span_s: 3600, side: Side::Both, is_count: false };
        // A daily cycle alone, and plain noise with a slow random walk.
        for case in 0..2 {
            let mut m = SeriesModel::new(&c);
            let mut noise = Noise(21 + case);
            let mut walk = 0.0;
            for (t, v) in weekly_series(10, 1.0, 17 + case) {
                walk += 0.05 * noise.normal();
                let v = if case == 0 { v } else { 100.0 + walk + noise.normal() };
                m.observe(&c, t, v, 1.0);
                assert!(!m.weekly_active(t, m.elapsed(t)), "case {case}: active at {t}");
            }
            assert!(m.weekly_ratio() > WEEKLY_CANDIDATE_RATIO, "case {case}: {}", m.weekly_ratio());
        }
    }

    #[test]
    fn weekly_component_switches_off_when_the_pattern_stops() {
        let c = ModelConfig { bucket_span_s: 3600, side: Side::Both, is_count: false };
        let mut m = SeriesModel::new(&c);
        let weekly = weekly_series(6, 0.5, 5);
        for &(t, v) in &weekly {
            m.observe(&c, t, v, 1.0);
        }
        let t_on = weekly.last().unwrap().0;
        assert!(m.weekly_active(t_on, m.elapsed(t_on)));
        // The weekend dip stops: within a few weeks the weekly profile no longer helps.
        for (t, v) in weekly_series(12, 1.0, 6).into_iter().skip(6 * 168) {
            m.observe(&c, t, v, 1.0);
        }
        let t = 12 * WEEK_S;
        assert!(!m.weekly_active(t, m.elapsed(t)), "ratio {}", m.weekly_ratio());
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

    /// The fast path against the exact tails, side by side: wherever it is taken the exact
    /// probability is above the record threshold, everything else is identical bit for bit, and
    /// so is the learned state (the outlier weights agree).
    #[test]
    fn fast_path_agrees_with_exact_tails() {
        // Case 3 has a weekly pattern (the weekly track runs); case 4 daily buckets, whose fast
        // decay keeps the histograms small (short validity of the safe regions).
        for (case, side) in [Side::Both, Side::High, Side::Low, Side::Both, Side::Both].into_iter().enumerate() {
            let span = [300, 300, 300, 3600, 86400][case];
            let c = ModelConfig { bucket_span_s: span, side, is_count: case == 2 };
            let (mut fast, mut exact) = (SeriesModel::new(&c), SeriesModel::new(&c));
            let mut noise = Noise(101 + case as u64);
            let weekly = weekly_series(8, 0.5, 31);
            let (mut level, mut taken) = (10.0, 0);
            let n = [30_000, 30_000, 30_000, weekly.len(), 5000][case];
            for i in 0..n {
                let (t, v) = if case == 3 {
                    weekly[i]
                } else {
                    let t = i as i64 * span;
                    if noise.uniform() < 0.001 {
                        level += 5.0 * noise.normal();
                    }
                    let daily = 3.0 * (2.0 * std::f64::consts::PI * t as f64 / DAY_S as f64).sin();
                    let spike = if noise.uniform() < 0.01 { 10.0 * noise.normal() } else { 0.0 };
                    let v = level + daily + noise.normal() * (1.0 + (i / 5000) as f64) + spike;
                    (t, if c.is_count { v.abs().round() } else { v })
                };
                let weight = if i % 7 == 0 { 1.0 + noise.uniform() * 4.0 } else { 1.0 };
                // Interim scoring of another value takes the same decisions.
                let ia = fast.score_only(&c, t, v + 3.0, weight);
                let ib = exact.score(&c, t, v + 3.0, weight, false).map_or(1.0, |s| s.obs.probability);
                assert_eq!(ia.probability < RECORD_PROBABILITY_THRESHOLD, ib < RECORD_PROBABILITY_THRESHOLD, "case {case} at {i}");
                assert!(ia.probability.to_bits() == ib.to_bits() || (ia.probability == 1.0 && ib > RECORD_PROBABILITY_THRESHOLD));
                let a = fast.observe(&c, t, v, weight);
                let b = exact.observe_exact(&c, t, v, weight);
                assert_eq!(a.probability < RECORD_PROBABILITY_THRESHOLD, b.probability < RECORD_PROBABILITY_THRESHOLD, "case {case} at {i}");
                for (x, y) in [(a.typical, b.typical), (a.lower, b.lower), (a.upper, b.upper), (a.multi_bucket_impact, b.multi_bucket_impact)] {
                    assert_eq!(x.to_bits(), y.to_bits(), "case {case} at {i}");
                }
                let same = [(a.probability, b.probability), (a.p_single, b.p_single), (a.p_multi, b.p_multi)].iter().all(|(x, y)| x.to_bits() == y.to_bits());
                if !same {
                    assert_eq!((a.probability, a.p_single, a.p_multi), (1.0, 1.0, 1.0));
                    assert!(b.probability > RECORD_PROBABILITY_THRESHOLD && b.p_single >= 1e-3 && b.p_multi >= 1e-3, "case {case} at {i}: {b:?}");
                    taken += 1;
                }
                if i % 997 == 0 {
                    assert_eq!(serde_json::to_string(&fast).unwrap(), serde_json::to_string(&exact).unwrap(), "case {case} at {i}");
                }
            }
            assert_eq!(serde_json::to_string(&fast).unwrap(), serde_json::to_string(&exact).unwrap());
            assert!(taken > n / 2, "case {case}: fast path taken {taken} of {n}");
        }
    }

    #[test]
    fn small_state() {
        let c = cfg(Side::Both);
        let mut m = SeriesModel::new(&c);
        run(&mut m, &c, &[1.0, 2.0, 3.0]);
        assert!(m.memory_bytes() <= 4096, "{}", m.memory_bytes());
    }
}
