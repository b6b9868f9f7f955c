//! Tests of the whole model (`SeriesModel`): calibration, sidedness, seasonality switching,
//! serde round trips, and the fast path against the exact tails.

use super::seasonal::WEEKLY_CANDIDATE_RATIO;
use super::*;

fn cfg(side: Side) -> ModelConfig {
    ModelConfig::new(300, side, false)
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
fn a_series_that_repeats_one_value_is_ordinary() {
    // A constant series (its residuals are one point) and one that only ever goes up from its
    // usual value: the usual value is never an anomaly, on either side, however long the
    // history; going below it is.
    for side in [Side::Both, Side::Low, Side::High] {
        let c = cfg(side);
        for spikes in [false, true] {
            let mut m = SeriesModel::new(&c);
            let values: Vec<f64> = (0..2000).map(|i| if spikes && i % 97 == 50 { 9.0 } else { 5.0 }).collect();
            let obs = run(&mut m, &c, &values);
            for (i, o) in obs.iter().enumerate().filter(|(i, _)| values[*i] == 5.0) {
                assert!(o.probability > 0.5, "{side:?} spikes {spikes}: bucket {i} p = {}", o.probability);
            }
            let dip = m.score_only(&c, 2000 * 300, 1.0, 1.0).probability;
            assert_eq!(dip < 1e-6, side != Side::High, "{side:?} dip {dip}");
        }
    }
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
    let c = ModelConfig::new(60, Side::Both, true);
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
    let c = ModelConfig::new(600, Side::Both, false);
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
fn weekly_pattern_is_tested_and_used() {
    let c = ModelConfig::new(3600, Side::Both, false);
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
    let c = ModelConfig::new(3600, Side::Both, false);
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
    let c = ModelConfig::new(3600, Side::Both, false);
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

/// The fast path against the exact tails, side by side: wherever it is taken the exact
/// probability is above the record threshold, everything else is identical bit for bit, and
/// so is the learned state (the outlier weights agree).
#[test]
fn fast_path_agrees_with_exact_tails() {
    // Case 3 has a weekly pattern (the weekly track runs); case 4 daily buckets, whose fast
    // decay keeps the histograms small (short validity of the safe regions).
    for (case, side) in [Side::Both, Side::High, Side::Low, Side::Both, Side::Both].into_iter().enumerate() {
        let span = [300, 300, 300, 3600, 86400][case];
        let c = ModelConfig::new(span, side, case == 2);
        let (mut fast, mut exact) = (SeriesModel::new(&c), SeriesModel::new(&c));
        let mut noise = Noise(101 + case as u64);
        let weekly = weekly_series(8, 0.5, 31);
        let (mut level, mut taken) = (10.0, 0);
        let n = [30_000, 30_000, 30_000, weekly.len(), 5000][case];
        #[allow(clippy::needless_range_loop)] // `i` also drives the synthetic series
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

/// `SeriesModel::prefetch` covers the scalars with the two ends of their group.
#[test]
fn scalars_lie_between_first_time_and_week_err() {
    use std::mem::offset_of;
    let (first, last) = (offset_of!(SeriesModel, first_time_s), offset_of!(SeriesModel, week_err));
    for at in [offset_of!(SeriesModel, level), offset_of!(SeriesModel, level_weight),
        offset_of!(SeriesModel, doc_weight), offset_of!(SeriesModel, err_plain),
        offset_of!(SeriesModel, err_seasonal), offset_of!(SeriesModel, weekly_from)]
    {
        assert!(first < at && at < last, "{first} {at} {last}");
    }
    assert!(last - first < 128);
}

#[test]
fn small_state() {
    let c = cfg(Side::Both);
    let mut m = SeriesModel::new(&c);
    run(&mut m, &c, &[1.0, 2.0, 3.0]);
    assert!(m.memory_bytes() <= 4096, "{}", m.memory_bytes());
}
