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

mod marginal;
mod seasonal;
#[cfg(test)]
mod tests;
mod track;

use seasonal::profile_bins;
use track::Track;

/// Which deviations count: `high_*`/`low_*` functions are one-sided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Both,
    High,
    Low,
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub side: Side,
    /// Count-family feature (non-negative counts): sets a quantisation floor on the tail scale.
    pub is_count: bool,
    /// What learning needs of the bucket span, computed once: an exp and several divisions per
    /// update otherwise.
    rates: SpanRates,
}

/// The per-update factors that depend on the bucket span only. Each is the very expression
/// learning used to evaluate per update, so the values are the same to the bit.
#[derive(Clone, Debug)]
struct SpanRates {
    /// Decay of every histogram and of the level per learned bucket.
    decay: f64,
    /// The span in seconds, at least 1.
    span: f64,
    /// Slowest rate of the seasonal test's errors (ERROR_MEMORY_DAYS).
    error_rate_floor: f64,
    /// Slowest rate of the weekly test's errors (WEEKLY_ERROR_MEMORY_WEEKS).
    weekly_error_rate_floor: f64,
    /// Per-update retention of a weekly-profile bin's weight (WEEKLY_PROFILE_MEMORY_WEEKS).
    week_keep: f64,
    /// Per-update retention of a daily-profile bin's weight (PROFILE_MEMORY_DAYS).
    day_keep: f64,
    /// `decay` raised to each validity of a histogram's safe region.
    safe_decay: marginal::SafeDecay,
}

impl ModelConfig {
    pub fn new(bucket_span_s: i64, side: Side, is_count: bool) -> Self {
        let span = bucket_span_s.max(1) as f64;
        let per_day = (DAY_S as f64 / span).max(1.0);
        let per_week_bin = WEEKLY_PROFILE_MEMORY_WEEKS * WEEK_S as f64 / span / WEEK_BINS as f64;
        let decay = (-DECAY_PER_30MIN * span / 1800.0).exp();
        let rates = SpanRates {
            decay,
            span,
            error_rate_floor: 1.0 / (ERROR_MEMORY_DAYS * per_day),
            weekly_error_rate_floor: span / (WEEKLY_ERROR_MEMORY_WEEKS * WEEK_S as f64),
            week_keep: 1.0 - 1.0 / per_week_bin.max(1.0),
            day_keep: 1.0 - 1.0 / (PROFILE_MEMORY_DAYS * per_day / DAY_BINS as f64).max(1.0),
            safe_decay: marginal::safe_decay(decay),
        };
        ModelConfig { side, is_count, rates }
    }
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

/// ES's base decay: 0.0005 per 30-minute bucket (long memory).
const DECAY_PER_30MIN: f64 = 0.0005;
/// How much weaker the multi-bucket feature's p counts in the combination (tuned on NAB).
const MULTI_P_PENALTY: f64 = 10.0;
const MULTI_LEN: usize = 12;
const WARMUP_BUCKETS: u32 = 20;
const DAY_S: i64 = 86400;
const DAY_BINS: usize = 24;
const ERROR_MEMORY_DAYS: f64 = 3.0;
const PROFILE_MEMORY_DAYS: f64 = 10.0;
const WARMUP_S: i64 = 86400;
const WEEK_S: i64 = 7 * DAY_S;
/// The weekly profile is a correction on top of the daily one, in 3-hour blocks: per-weekday
/// levels and the coarse shape of weekends (a full 7×24 profile would not fit the 4 KB
/// per-series budget next to its shadow track; on NAB 14/28/42 blocks scored lower than 56).
const WEEK_BINS: usize = 56;
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

/// The first daily and weekly profile bins an update at some time reads: the same for every
/// series, so computed once per bucket for [`SeriesModel::prefetch`].
pub struct ProfileBins {
    day: usize,
    week: usize,
}

impl ProfileBins {
    pub fn at(time_s: i64) -> Self {
        let week_phase = time_s.rem_euclid(WEEK_S);
        ProfileBins {
            day: profile_bins(week_phase % DAY_S, DAY_S, DAY_BINS).0,
            week: profile_bins(week_phase, WEEK_S, WEEK_BINS).0,
        }
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

/// ES's multi-bucket impact (spec §2.2): positive when the multi-bucket feature explains more.
fn multi_bucket_impact(p_single: f64, p_multi: f64) -> f64 {
    let ls = p_single.max(P_FLOOR).ln();
    let lm = p_multi.max(P_FLOOR).ln();
    let impact = 5.0 * ls.min(lm) / ls.max(lm).min(-0.001) / 1000f64.ln() * (ls - lm);
    if impact.is_finite() { impact.clamp(-5.0, 5.0) } else { 0.0 }
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

    /// Prefetch the cache lines an update at `at` reads, but the histogram bins and the weekly
    /// track (learning only where there is a weekly pattern), so that a caller going through
    /// many models can overlap their memory latencies. The compiler lays the scalars out
    /// together (`n` apart): the two ends of the group cover it (a test checks).
    #[inline(always)]
    pub fn prefetch(&self, at: &ProfileBins) {
        use crate::arch::prefetch;
        prefetch(&self.n);
        prefetch(&self.first_time_s);
        prefetch(&self.week_err);
        prefetch(&self.day[at.day]);
        prefetch(&self.day_weight[at.day]);
        prefetch(&self.week[at.week]);
        prefetch(&self.week_weight[at.week]);
        self.plain.prefetch();
        self.seasonal.prefetch();
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
        let rates = &cfg.rates;
        let decay = rates.decay;
        let w_plain = self.plain.learn(cfg.side, rates, s.residual, s.multi, s.p_plain);
        let w_seasonal = self.seasonal.learn(cfg.side, rates, s.deseasoned, s.multi_seasonal, s.p_seasonal);
        let w_weekly = if s.weekly_learns {
            // A paused track keeps its histograms (the tracks decay per learned bucket, not per
            // second, so they are simply older data), but its recent residuals are from before
            // the pause and would distort the multi-bucket feature.
            if self.weekly_from == WEEKLY_OFF {
                self.weekly_from = time_s;
                self.weekly.recent = [0.0; MULTI_LEN - 1];
                self.weekly.recent_len = 0;
            }
            self.weekly.learn(cfg.side, rates, s.deweeked, s.multi_weekly, s.p_weekly)
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
        // A select, not f64::max (whose NaN handling costs four instructions more): 1/n is never
        // NaN, and for such operands max compiled to exactly this select.
        let recip = 1.0 / self.n as f64;
        let rate = w * if rates.error_rate_floor > recip { rates.error_rate_floor } else { recip };
        if plain_err.is_finite() && seasonal_err.is_finite() {
            self.err_plain += rate * (plain_err - self.err_plain);
            self.err_seasonal += rate * (seasonal_err - self.err_seasonal);
        }

        // The weekly test's errors, from the second week on (before, the weekly profile has not
        // seen a whole period and its error would say nothing), over about two weeks.
        let span = rates.span;
        if s.weekly_tested {
            let since = (s.elapsed - WEEK_S) as f64;
            let rate = w * (span / (since + span)).max(rates.weekly_error_rate_floor).min(1.0);
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
            let keep = rates.week_keep;
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
                self.day_weight[bin] = self.day_weight[bin] * rates.day_keep + bw;
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
