//! The daily and weekly profiles: interpolated bin lookup (`profile_bins`) and the tests that
//! switch the daily profile and the weekly correction on and off.
//!
//! Cheap by construction: bin lookup is integer arithmetic with constant divisors, and the
//! profiles are small inline arrays (the weekly one in f32) read by linear interpolation.

use super::{SeriesModel, DAY_S, WEEKLY_OFF, WEEK_S};

/// The two bins of an `n`-bin profile over a period around `phase_s` (seconds into the period,
/// 0 ≤ phase_s < period_s; `n` divides the period) and the share of the second: linear
/// interpolation between bin centres, wrapping around the period. Integer arithmetic with
/// constant divisors: cheaper than a floor and a saturating float-to-int cast.
#[inline(always)]
pub(super) fn profile_bins(phase_s: i64, period_s: i64, n: usize) -> (usize, usize, f64) {
    let width = period_s / n as i64;
    // Seconds past the centre of the bin at or before phase_s, shifted by a period to stay ≥ 0.
    let shifted = (phase_s + period_s - width / 2) as u64;
    let i = (shifted / width as u64) as usize;
    let a = if i >= n { i - n } else { i };
    let f = (shifted % width as u64) as f64 / width as f64;
    (a, if a + 1 == n { 0 } else { a + 1 }, f)
}
/// The daily profile is used when it cuts the one-step squared error to this fraction. Strict on
/// purpose: on NAB, weaker profiles (0.3–0.75) cost more in lost envelope signal than they gained.
const SEASONAL_ERROR_RATIO: f64 = 0.2;
/// The weekly component is used when it cuts the one-step squared error of the better of the
/// plain and daily predictors to this fraction (strict like the daily test; best on NAB).
const WEEKLY_ERROR_RATIO: f64 = 0.3;
/// The weekly shadow track runs (and costs) only while the weekly error is a candidate: it
/// starts below this ratio and stops above WEEKLY_DROP_RATIO (hysteresis, so a ratio hovering
/// at the edge does not keep restarting it). Most series have no weekly pattern (ratio ≈ 1).
pub(super) const WEEKLY_CANDIDATE_RATIO: f64 = 0.6;
const WEEKLY_DROP_RATIO: f64 = 0.8;

impl SeriesModel {
    /// The daily profile at the bins `profile_bins` returned: linear interpolation between bin
    /// centres.
    pub(super) fn daily(&self, (a, b, f): (usize, usize, f64)) -> f64 {
        self.day[a] * (1.0 - f) + self.day[b] * f
    }

    /// The weekly correction at the bins `profile_bins` gives for the week: linear
    /// interpolation between bin centres.
    pub(super) fn weekly_profile(&self, (a, b, f): (usize, usize, f64)) -> f64 {
        self.week[a] as f64 * (1.0 - f) + self.week[b] as f64 * f
    }

    /// Seconds since the first value (0 before it).
    pub(super) fn elapsed(&self, time_s: i64) -> i64 {
        if self.n == 0 { 0 } else { time_s.saturating_sub(self.first_time_s) }
    }

    /// The daily profile is used once it has seen two days and cuts the one-step error enough.
    pub(super) fn seasonal_active(&self, time_s: i64) -> bool {
        time_s.saturating_sub(self.first_time_s) >= 2 * DAY_S && self.err_seasonal < SEASONAL_ERROR_RATIO * self.err_plain
    }

    /// The weekly error as a fraction of the better simpler predictor's (∞ when both are 0).
    pub(super) fn weekly_ratio(&self) -> f64 {
        let [plain, daily, weekly] = self.week_err;
        let base = plain.min(daily);
        if base > 0.0 { weekly / base } else { f64::INFINITY }
    }

    /// Whether the weekly shadow track learns at this bucket (past the first week; hysteresis
    /// between WEEKLY_CANDIDATE_RATIO and WEEKLY_DROP_RATIO).
    pub(super) fn weekly_learns(&self, elapsed: i64) -> bool {
        let limit = if self.weekly_from == WEEKLY_OFF { WEEKLY_CANDIDATE_RATIO } else { WEEKLY_DROP_RATIO };
        elapsed >= WEEK_S && self.weekly_ratio() < limit
    }

    /// The weekly profile is used once it has seen two weeks, cuts the one-step error of the
    /// better simpler predictor enough (re-tested every bucket, so it switches off again), and
    /// its shadow track has learned for a week (so its tails are calibrated).
    pub(super) fn weekly_active(&self, time_s: i64, elapsed: i64) -> bool {
        elapsed >= 2 * WEEK_S
            && self.weekly_from != WEEKLY_OFF
            && time_s.saturating_sub(self.weekly_from) >= WEEK_S
            && self.weekly_ratio() < WEEKLY_ERROR_RATIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::WEEK_BINS;

    #[test]
    fn profile_bins_interpolate_between_centres() {
        assert_eq!(profile_bins(0, DAY_S, 24), (23, 0, 0.5));
        assert_eq!(profile_bins(1800, DAY_S, 24), (0, 1, 0.0));
        assert_eq!(profile_bins(2700, DAY_S, 24), (0, 1, 0.25));
        assert_eq!(profile_bins(DAY_S - 1, DAY_S, 24).0, 23);
        assert_eq!(profile_bins(WEEK_S - 1, WEEK_S, WEEK_BINS).1, 0);
    }
}
