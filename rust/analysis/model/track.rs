//! `Track`: the features of one residual definition (plain, daily or weekly): the residual's
//! histogram and the 12-bucket geometric mean of the residuals with its own histogram, plus
//! the outlier weighting and sidedness of their p.
//!
//! Shaped for speed: the recent residuals are a fixed inline array and the multi-bucket mean a
//! fixed-length dot product with precomputed weights (unrolls); `p` takes the fast path (both
//! features in their safe regions) inline and keeps the exact tails out of line.

use serde::{Deserialize, Serialize};

use super::marginal::Marginal;
use super::{Side, SpanRates, MULTI_LEN, P_FLOOR, SAFE_MULTI_P, SAFE_SINGLE_P};

/// The features of one residual definition: the residual's own histogram and the 12-bucket
/// geometric mean of the residuals with its histogram.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Track {
    pub(super) single: Marginal,
    pub(super) multi: Marginal,
    /// The last MULTI_LEN − 1 residuals, newest first; never-filled entries stay 0.
    pub(super) recent: [f64; MULTI_LEN - 1],
    pub(super) recent_len: u8,
}

impl Track {
    pub(super) fn new() -> Self {
        Track { single: Marginal::new(), multi: Marginal::new(), recent: [0.0; MULTI_LEN - 1], recent_len: 0 }
    }

    /// Prefetch what every learn of this track reads, bins aside.
    #[inline(always)]
    pub(super) fn prefetch(&self) {
        crate::arch::prefetch(&self.recent[0]);
        crate::arch::prefetch(&self.recent[MULTI_LEN - 2]);
        self.single.prefetch();
        self.multi.prefetch();
    }

    /// The geometric mean of the recent residuals including `r`, without storing it. A fixed
    /// number of terms (the unfilled ones add exact zeros), so the loop unrolls.
    pub(super) fn multi_feature(&self, r: f64) -> f64 {
        let mut sum = r;
        for (w, x) in MULTI_WEIGHTS.iter().zip(&self.recent) {
            sum += w * x;
        }
        sum / MULTI_NORMS[self.recent_len as usize]
    }

    /// (p_single, p_multi) of residual r and its multi-bucket feature m; (1, 1) when `fast` and
    /// both are in their safe regions (see `SAFE_SINGLE_P`).
    #[inline(always)]
    pub(super) fn p(&self, side: Side, r: f64, m: f64, floor: f64, fast: bool) -> (f64, f64) {
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
    pub(super) fn learn(&mut self, side: Side, rates: &SpanRates, r: f64, m: f64, (p_single, p_multi): (f64, f64)) -> f64 {
        let decay = rates.decay;
        self.single.decay(decay);
        self.multi.decay(decay);
        let (ws, wm) = (outlier_weight(p_single), outlier_weight(p_multi));
        self.single.learn(r, ws, ws >= ENVELOPE_WEIGHT);
        self.multi.learn(m, wm, wm >= ENVELOPE_WEIGHT);
        // Per tail: a two-sided p is twice the smaller tail.
        let sides = if side == Side::Both { 0.5 } else { 1.0 };
        self.single.count_learn(&rates.safe_decay, SAFE_SINGLE_P * sides, side);
        self.multi.count_learn(&rates.safe_decay, SAFE_MULTI_P * sides, side);
        self.recent.copy_within(..MULTI_LEN - 2, 1);
        self.recent[0] = r;
        self.recent_len = (self.recent_len + 1).min(MULTI_LEN as u8 - 1);
        ws.min(wm)
    }
}

/// Outlier weighting: weight 1 for p ≥ 1e-3, log-linear down to MIN_WEIGHT at p ≤ 1e-5.
const MIN_WEIGHT: f64 = 0.05;
/// Values learned with at least this weight extend the envelope where the tails start.
const ENVELOPE_WEIGHT: f64 = 0.5;
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
