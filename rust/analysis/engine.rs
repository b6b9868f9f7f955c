//! [`AnalysisEngine`]: per-job analysis state and its lifecycle (record, finalise, flush,
//! snapshot). See the module doc of [`super`] for the data flow.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::bucket::OpenBucket;
use super::detector::{Detector, FeatureValue};
use super::memory::{MemoryBudget, Refusals, INDEX_BYTES_PER_SERIES};
use super::model::{ModelConfig, Observation, ProfileBins, SeriesModel};
use super::results::{self, finite, ResultRow};
use super::score::{raw_score, Normalizer, RECORD_PROBABILITY_THRESHOLD};
use super::series::{models_for, Series, SeriesSet};
use super::timing::{HourlyAverage, Timing};
use super::AnalysisSpec;
use crate::javanum::parse_finite;

/// Longest run of empty buckets modelled across a gap in the data; beyond it the models skip
/// time, as after `skip_time` (a feed resumed after months must not replay every bucket).
pub const MAX_GAP_BUCKETS: i64 = 10_000;

/// Times beyond ±2^60 ms (36 million years) are counted but not analysed: bucket arithmetic
/// near the ends of i64 would overflow.
const TIME_LIMIT_MS: i64 = 1 << 60;

fn analysable(t: i64) -> bool {
    (-TIME_LIMIT_MS..=TIME_LIMIT_MS).contains(&t)
}

/// How many series ahead `score_bucket` prefetches models: one update takes longer than a
/// cache miss, so the next-but-one is early enough without flooding the caches.
const PREFETCH_AHEAD: usize = 2;
/// How many series ahead it prefetches what locates a model (the series' entry, holding the
/// models' address) and the bucket's aggregate: reading the address for the model prefetch
/// would otherwise wait for a miss of its own, one per series, whenever the caches are cold.
const PREFETCH_ENTRY_AHEAD: usize = 8;

/// Snapshot format version: a snapshot of another version is not restored.
const SNAPSHOT_VERSION: u32 = 4;

/// `_flush` parameters, already parsed to epoch ms.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlushRequest {
    pub calc_interim: bool,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub advance_time_ms: Option<i64>,
    pub skip_time_ms: Option<i64>,
}

/// Everything that changes as data flows, persisted in snapshots.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    /// Buckets with data that are not final yet, oldest first.
    open: VecDeque<OpenBucket>,
    /// Start of the first bucket that is not final: `last_finalized_bucket_end`.
    cursor_ms: Option<i64>,
    /// Records before this time are ignored (`skip_time`).
    skip_until_ms: Option<i64>,
    bucket_normalizer: Normalizer,
    record_normalizers: Vec<Normalizer>,
    influencer_normalizers: Vec<Normalizer>,
    timing: Timing,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    series: &'a [Series],
    state: &'a State,
}

#[derive(Deserialize)]
struct Snapshot {
    #[allow(dead_code)] // read (and checked) on its own first
    version: u32,
    series: Vec<Series>,
    state: State,
}

/// The bucket the previous record went to, valid while the open buckets keep their places:
/// a record in `[start_ms, end_ms)` (the bucket, cut off where the next bucket would be
/// finalised) skips the bucket search. One range test per record; [`Hot::NONE`] holds no time.
#[derive(Clone, Copy)]
struct Hot {
    start_ms: i64,
    end_ms: i64,
    index: usize,
}

impl Hot {
    const NONE: Hot = Hot { start_ms: i64::MAX, end_ms: i64::MIN, index: 0 };
}

/// What [`AnalysisEngine::record_with`] needs of one detector, resolved at construction, so the
/// per-record loop reads one small struct and no detector configuration.
struct Plan {
    detector: usize,
    partition: Option<usize>,
    by: Option<usize>,
    /// Whether the detector has a split field (else it has a single series).
    split: bool,
    field: Option<usize>,
    needs_field: bool,
    /// What a missing split value stands for: the empty value with `use_null`, else nothing
    /// (the record is not analysed by this detector).
    null: Option<&'static [u8]>,
    /// Influencer fields noted per series: (influencer number, value index), the detector's own
    /// split fields left out (a series' split values are its influencers already).
    influencers: Box<[(u16, usize)]>,
}

impl Plan {
    fn new(det: &Detector, influencers: &[(String, usize)]) -> Plan {
        Plan {
            detector: det.index,
            partition: det.partition,
            by: det.by,
            split: det.partition.is_some() || det.by.is_some(),
            field: det.field,
            needs_field: det.feature.needs_field(),
            null: det.use_null.then_some(&b""[..]),
            influencers: influencers
                .iter()
                .enumerate()
                .filter(|(_, (_, idx))| Some(*idx) != det.by && Some(*idx) != det.partition)
                .map(|(f, (_, idx))| (f as u16, *idx))
                .collect(),
        }
    }
}

/// One anomalous series in a bucket being scored.
struct Anomaly {
    series: u32,
    obs: Observation,
    feature: FeatureValue,
    raw: f64,
}

pub struct AnalysisEngine {
    job_id: String,
    span_ms: i64,
    latency_ms: i64,
    spec: AnalysisSpec,
    model_configs: Vec<ModelConfig>,
    plans: Vec<Plan>,
    series: SeriesSet,
    state: State,
    out: Vec<ResultRow>,
    scratch: Vec<u32>,
    hot: Hot,
    /// The model memory limit; counted from the job's open (not part of the snapshot).
    memory: MemoryBudget,
    /// Bytes of a new series of each detector, before its split values.
    series_bytes: Vec<usize>,
    /// Elasticsearch's per-hour average of bucket times, kept beside [`Timing`] (see `snapshot`).
    hourly: HourlyAverage,
    /// Bumped by everything that may change what a snapshot holds (see [`Self::changes`]).
    changes: u64,
}

impl AnalysisEngine {
    pub fn new(job_id: &str, span_ms: i64, latency_ms: i64, spec: AnalysisSpec) -> Self {
        let span_s = (span_ms / 1000).max(1);
        let model_configs = spec.detectors.iter().map(|d| d.model_config(span_s)).collect();
        let state = State {
            open: VecDeque::new(),
            cursor_ms: None,
            skip_until_ms: None,
            bucket_normalizer: Normalizer::new(span_s),
            record_normalizers: spec.detectors.iter().map(|_| Normalizer::new(span_s)).collect(),
            influencer_normalizers: spec.influencers.iter().map(|_| Normalizer::new(span_s)).collect(),
            timing: Timing::default(),
        };
        let series_bytes = spec
            .detectors
            .iter()
            .zip(&model_configs)
            .map(|(d, cfg)| {
                let models: usize = models_for(d.feature, || SeriesModel::new(cfg)).iter().map(SeriesModel::memory_bytes).sum();
                std::mem::size_of::<Series>() + models + INDEX_BYTES_PER_SERIES
            })
            .collect();
        AnalysisEngine {
            job_id: job_id.to_owned(),
            span_ms,
            latency_ms,
            series: SeriesSet::new(spec.detectors.len()),
            plans: spec.detectors.iter().map(|d| Plan::new(d, &spec.influencers)).collect(),
            memory: MemoryBudget::new(spec.model_memory_limit),
            series_bytes,
            hourly: HourlyAverage::default(),
            spec,
            model_configs,
            state,
            out: Vec::new(),
            scratch: Vec::new(),
            hot: Hot::NONE,
            changes: 0,
        }
    }

    /// A count that moves whenever the snapshot's content may have changed (a record, a flush
    /// that does something, a reset, a restore): equal counts, equal snapshots. The owner uses
    /// it to skip storing a model that has not changed since it was last stored or restored
    /// (a restart would otherwise rewrite every idle job's model). It may move without a
    /// change, never the other way.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn span_s(&self) -> i64 {
        (self.span_ms / 1000).max(1)
    }

    fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.span_ms) * self.span_ms
    }

    // -- records ---------------------------------------------------------------------------

    /// One processed record: its time and its analysis values (`None` = absent or null).
    #[inline]
    pub fn record(&mut self, t: i64, values: &[Option<&[u8]>]) {
        self.record_with(t, |i| values[i]);
    }

    /// As [`record`](Self::record), with analysis value `i` read through `value(i)`: the ingest
    /// pipeline reads the record's slots directly, and only those a detector needs.
    #[inline]
    pub fn record_with<'v>(&mut self, t: i64, value: impl Fn(usize) -> Option<&'v [u8]>) {
        self.changes = self.changes.wrapping_add(1);
        let count = match self.spec.summary_count {
            Some(i) => match value(i).and_then(parse_finite) {
                Some(c) if c >= 0.0 => c,
                _ => return, // a document without a usable count is not analysed
            },
            None => 1.0,
        };
        let h = self.hot;
        let at = if t >= h.start_ms && t < h.end_ms {
            h.index
        } else {
            match self.locate(t) {
                Some(at) => at,
                None => return,
            }
        };
        let bucket = &mut self.state.open[at];
        bucket.event_count += 1;
        for plan in self.plans.iter() {
            // A split field without a value drops the record for this detector, unless use_null
            // makes the missing value a series of its own (the empty value's, as in ES). A
            // detector without the field has the empty value (the series key ignores it).
            let split = |field: Option<usize>| match field {
                Some(i) => value(i).or(plan.null),
                None => Some(&b""[..]),
            };
            let (Some(partition), Some(by)) = (split(plan.partition), split(plan.by)) else { continue };
            let v = match plan.field {
                Some(i) => value(i).and_then(parse_finite),
                None => None,
            };
            if plan.needs_field && v.is_none() {
                continue;
            }
            let sid = match self.series.find(plan.detector, plan.split, partition, by) {
                Some(sid) => sid,
                None => {
                    let bytes = self.series_bytes[plan.detector] + partition.len() + by.len();
                    if !self.memory.admit(bytes, bucket.start_ms) {
                        continue; // over the model memory limit: counted, not modelled
                    }
                    Self::new_series(&mut self.series, &self.spec.detectors[plan.detector], &self.model_configs[plan.detector], partition, by)
                }
            };
            bucket.aggregate_mut(sid).add(count, v);
            for &(f, idx) in plan.influencers.iter() {
                if let Some(v) = value(idx) {
                    bucket.influenced_by(sid, f, v);
                }
            }
        }
    }

    /// A new series of `det` for these split values (empty for a field the detector lacks).
    #[cold]
    #[inline(never)]
    fn new_series(series: &mut SeriesSet, det: &Detector, cfg: &ModelConfig, partition: &[u8], by: &[u8]) -> u32 {
        let models = models_for(det.feature, || SeriesModel::new(cfg));
        series.create(det.index, det.partition.map(|_| partition), det.by.map(|_| by), models)
    }

    /// The open bucket of a record at `t` (finalising what its time has passed), or None when
    /// the record is skipped or its bucket is final already. Remembers the bucket as `hot`.
    fn locate(&mut self, t: i64) -> Option<usize> {
        if !analysable(t) || self.state.skip_until_ms.is_some_and(|s| t < s) {
            return None;
        }
        let b = self.bucket_of(t);
        match self.state.cursor_ms {
            Some(c) if b < c => return None,
            None => self.state.cursor_ms = Some(b),
            _ => {}
        }
        self.finalise_until(t - self.latency_ms);
        let open = &mut self.state.open;
        let at = match open.iter().rposition(|o| o.start_ms <= b) {
            Some(i) if open[i].start_ms == b => i,
            Some(i) => {
                open.insert(i + 1, OpenBucket::new(b));
                i + 1
            }
            None => {
                open.push_front(OpenBucket::new(b));
                0
            }
        };
        let due_ms = self.state.cursor_ms.map_or(i64::MAX, |c| c + self.span_ms + self.latency_ms);
        self.hot = Hot { start_ms: b, end_ms: (b + self.span_ms).min(due_ms), index: at };
        Some(at)
    }

    // -- finalising --------------------------------------------------------------------------

    /// Finalise every bucket that ends at or before `limit_ms`, empty ones included.
    fn finalise_until(&mut self, limit_ms: i64) {
        while let Some(c) = self.state.cursor_ms {
            if c + self.span_ms > limit_ms {
                return;
            }
            let stop = match self.state.open.front() {
                Some(b) if b.start_ms < limit_ms => b.start_ms,
                _ => self.bucket_of(limit_ms),
            };
            let c = if (stop - c) / self.span_ms > MAX_GAP_BUCKETS { stop - MAX_GAP_BUCKETS * self.span_ms } else { c };
            let bucket = match self.state.open.front() {
                Some(b) if b.start_ms == c => self.state.open.pop_front().unwrap_or_default(),
                _ => OpenBucket::new(c),
            };
            self.state.cursor_ms = Some(c + self.span_ms);
            self.score_bucket(&bucket, false);
        }
    }

    /// Score one bucket: final (models learn, normalisers move) or interim (nothing changes).
    fn score_bucket(&mut self, bucket: &OpenBucket, interim: bool) {
        let started = Instant::now();
        let time_s = bucket.start_ms.div_euclid(1000);
        let mut anomalies: Vec<Anomaly> = Vec::new();
        let mut max_raw = vec![0.0f64; self.spec.detectors.len()];
        for (d, det) in self.spec.detectors.iter().enumerate() {
            let cfg = &self.model_configs[d];
            self.scratch.clear();
            if det.feature.empty_is_zero() {
                self.scratch.extend_from_slice(&self.series.by_detector[d]);
            } else if self.spec.detectors.len() == 1 {
                // Every touched series is this detector's: no filter (a load and a compare each).
                self.scratch.extend_from_slice(bucket.touched());
            } else {
                let series = &self.series.series;
                self.scratch.extend(bucket.touched().iter().filter(|&&s| series[s as usize].detector == d));
            }
            let bins = ProfileBins::at(time_s);
            for (j, &sid) in self.scratch.iter().enumerate() {
                // The models are scattered over more memory than the caches hold: ask for the
                // next ones while this one computes.
                if let Some(&far) = self.scratch.get(j + PREFETCH_ENTRY_AHEAD) {
                    crate::arch::prefetch(&self.series.series[far as usize]);
                    bucket.prefetch_aggregate(far);
                }
                if let Some(&ahead) = self.scratch.get(j + PREFETCH_AHEAD) {
                    for m in &self.series.series[ahead as usize].models {
                        m.prefetch(&bins);
                    }
                }
                let features = bucket.aggregate(sid).features(det.feature);
                let models = &mut self.series.series[sid as usize].models;
                let mut best: Option<(Observation, FeatureValue)> = None;
                let mut modelled = 0;
                for (k, f) in features.iter().enumerate() {
                    let Some(f) = f else { continue };
                    let model = &mut models[k];
                    let obs = if interim {
                        model.score_only(cfg, time_s, f.value, f.weight)
                    } else {
                        model.observe(cfg, time_s, f.value, f.weight)
                    };
                    modelled += 1;
                    if best.as_ref().is_none_or(|(b, _)| obs.probability < b.probability) {
                        best = Some((obs, *f));
                    }
                }
                let Some((mut obs, feature)) = best else { continue };
                // min, mean and max together: the least likely of three looks, corrected.
                obs.probability = (obs.probability * modelled as f64).min(1.0);
                if obs.probability < RECORD_PROBABILITY_THRESHOLD {
                    let raw = raw_score(obs.probability);
                    max_raw[d] = max_raw[d].max(raw);
                    anomalies.push(Anomaly { series: sid, obs, feature, raw });
                }
            }
        }
        self.emit(bucket, interim, time_s, &anomalies, &max_raw, started);
    }

    fn emit(&mut self, bucket: &OpenBucket, interim: bool, time_s: i64, anomalies: &[Anomaly], max_raw: &[f64], started: Instant) {
        let (job_id, span_s, ts) = (self.job_id.as_str(), self.span_s(), bucket.start_ms);
        let st = &mut self.state;
        if !interim {
            for (n, &m) in st.record_normalizers.iter_mut().zip(max_raw) {
                n.observe(time_s, m);
            }
        }
        // Bucket level: the most anomalous record, Šidák-corrected for how many there are.
        let p_bucket = anomalies
            .iter()
            .map(|a| a.obs.probability)
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))))
            .map_or(1.0, |p| -((anomalies.len() as f64) * (-p).ln_1p()).exp_m1());
        let raw_bucket = raw_score(p_bucket);
        if !interim {
            st.bucket_normalizer.observe(time_s, raw_bucket);
        }
        let bucket_score = if raw_bucket > 0.0 { st.bucket_normalizer.normalise(raw_bucket, p_bucket) } else { 0.0 };

        // Influencer values of each anomaly, and each value's smallest probability.
        let mut influenced: BTreeMap<(usize, &str), f64> = BTreeMap::new();
        let mut per_anomaly: Vec<Vec<(usize, &str)>> = Vec::with_capacity(anomalies.len());
        for a in anomalies {
            let s = &self.series.series[a.series as usize];
            let det = &self.spec.detectors[s.detector];
            let mut values = Vec::new();
            for (f, (_, idx)) in self.spec.influencers.iter().enumerate() {
                if Some(*idx) == det.by {
                    values.extend(s.by.as_deref().map(|v| (f, v)));
                } else if Some(*idx) == det.partition {
                    values.extend(s.partition.as_deref().map(|v| (f, v)));
                } else {
                    values.extend(bucket.influences(a.series).iter().filter(|(g, _)| *g as usize == f).map(|(_, v)| (f, v.as_str())));
                }
            }
            for &key in &values {
                let p = influenced.entry(key).or_insert(1.0);
                *p = p.min(a.obs.probability);
            }
            per_anomaly.push(values);
        }
        let mut field_best: Vec<Option<f64>> = vec![None; self.spec.influencers.len()];
        for (&(f, _), &p) in &influenced {
            field_best[f] = Some(field_best[f].map_or(p, |b: f64| b.min(p)));
        }
        if !interim {
            for (f, n) in st.influencer_normalizers.iter_mut().enumerate() {
                n.observe(time_s, field_best[f].map_or(0.0, raw_score));
            }
        }

        let mut bucket_influencers = Vec::new();
        if raw_bucket > 0.0 {
            for (f, best) in field_best.iter().enumerate() {
                let Some(p) = *best else { continue };
                let raw = raw_score(p);
                let score = st.influencer_normalizers[f].normalise(raw, p);
                bucket_influencers.push(results::BucketInfluencerDoc {
                    job_id, result_type: "bucket_influencer", influencer_field_name: &self.spec.influencers[f].0,
                    initial_anomaly_score: score, anomaly_score: score, raw_anomaly_score: raw, probability: p,
                    timestamp: ts, bucket_span: span_s, is_interim: interim,
                });
            }
            bucket_influencers.push(results::BucketInfluencerDoc {
                job_id, result_type: "bucket_influencer", influencer_field_name: "bucket_time",
                initial_anomaly_score: bucket_score, anomaly_score: bucket_score, raw_anomaly_score: raw_bucket,
                probability: p_bucket, timestamp: ts, bucket_span: span_s, is_interim: interim,
            });
        }

        let mut rows = Vec::with_capacity(1 + anomalies.len() + influenced.len());
        for (a, values) in anomalies.iter().zip(&per_anomaly) {
            let s = &self.series.series[a.series as usize];
            let det: &Detector = &self.spec.detectors[s.detector];
            let score = st.record_normalizers[s.detector].normalise(a.raw, a.obs.probability);
            let mut input_fields: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (name, value) in [(&det.by_field_name, &s.by), (&det.partition_field_name, &s.partition)] {
                if let (Some(n), Some(v)) = (name, value) {
                    input_fields.entry(n).or_default().push(v);
                }
            }
            let mut influencers: Vec<results::InfluenceDoc> = Vec::new();
            for &(f, v) in values {
                let name = self.spec.influencers[f].0.as_str();
                match influencers.iter_mut().find(|i| i.influencer_field_name == name) {
                    Some(i) => i.influencer_field_values.push(v),
                    None => influencers.push(results::InfluenceDoc { influencer_field_name: name, influencer_field_values: vec![v] }),
                }
                let list = input_fields.entry(name).or_default();
                if !list.contains(&v) {
                    list.push(v);
                }
            }
            input_fields.retain(|k, _| results::repeatable(k));
            let actual = finite(a.feature.value);
            let typical = finite(a.obs.typical);
            let doc = results::RecordDoc {
                job_id, result_type: "record", probability: a.obs.probability,
                multi_bucket_impact: finite(a.obs.multi_bucket_impact), record_score: score,
                initial_record_score: score, bucket_span: span_s, detector_index: det.index, is_interim: interim,
                timestamp: ts, partition_field_name: det.partition_field_name.as_deref(),
                partition_field_value: det.partition_field_name.as_ref().and(s.partition.as_deref()),
                by_field_name: det.by_field_name.as_deref(), by_field_value: det.by_field_name.as_ref().and(s.by.as_deref()),
                function: &det.function,
                function_description: if det.description == "metric" { a.feature.name } else { det.description },
                typical: [typical], actual: [actual], field_name: det.field_name.as_deref(), influencers,
                anomaly_score_explanation: results::ScoreExplanation {
                    anomaly_type: if actual >= typical { "spike" } else { "dip" },
                    single_bucket_impact: (5.0 - a.obs.multi_bucket_impact.clamp(-5.0, 5.0)).round() as i64,
                    multi_bucket_impact: a.obs.multi_bucket_impact.clamp(-5.0, 5.0).round() as i64,
                    lower_confidence_bound: finite(a.obs.lower), typical_value: typical,
                    upper_confidence_bound: finite(a.obs.upper),
                },
                input_fields,
            };
            rows.push(results::row("record", ts, score, interim, &doc));
        }
        for (&(f, value), &p) in &influenced {
            let name = self.spec.influencers[f].0.as_str();
            let score = st.influencer_normalizers[f].normalise(raw_score(p), p);
            let mut input_fields = BTreeMap::new();
            if results::repeatable(name) {
                input_fields.insert(name, value);
            }
            let doc = results::InfluencerDoc {
                job_id, result_type: "influencer", influencer_field_name: name, influencer_field_value: value,
                influencer_score: score, initial_influencer_score: score, probability: p, bucket_span: span_s,
                is_interim: interim, timestamp: ts, input_fields,
            };
            rows.push(results::row("influencer", ts, score, interim, &doc));
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if !interim {
            st.timing.add(elapsed_ms);
            self.hourly.add(elapsed_ms, ts.saturating_add(self.span_ms));
        }
        let doc = results::BucketDoc {
            job_id, timestamp: ts, anomaly_score: bucket_score, bucket_span: span_s,
            initial_anomaly_score: bucket_score, event_count: bucket.event_count, is_interim: interim,
            bucket_influencers, processing_time_ms: elapsed_ms as u64, result_type: "bucket",
        };
        self.out.push(results::row("bucket", ts, bucket_score, interim, &doc));
        self.out.extend(rows);
    }

    // -- control -----------------------------------------------------------------------------

    /// `_flush`: skip, advance, then compute interim results; the new `last_finalized_bucket_end`.
    pub fn flush(&mut self, r: FlushRequest) -> Option<i64> {
        self.hot = Hot::NONE;
        let within = |t: Option<i64>| t.filter(|&t| analysable(t));
        let r = FlushRequest {
            start_ms: within(r.start_ms),
            end_ms: within(r.end_ms),
            advance_time_ms: within(r.advance_time_ms),
            skip_time_ms: within(r.skip_time_ms),
            ..r
        };
        // Interim results change nothing (`score_bucket`), nor does a skip to or before the
        // cursor: the buckets before it are final and take no records (the skip at open, after
        // a clean close, is such a one).
        let mut changed = r.advance_time_ms.is_some();
        if let Some(skip) = r.skip_time_ms {
            let to = -(-skip).div_euclid(self.span_ms) * self.span_ms; // up to a bucket boundary
            if self.state.cursor_ms.is_none_or(|c| to > c) {
                self.state.open.retain(|b| b.start_ms >= to);
                self.state.cursor_ms = Some(to);
                self.state.skip_until_ms = Some(self.state.skip_until_ms.map_or(to, |s| s.max(to)));
                changed = true;
            }
        }
        if changed {
            self.changes = self.changes.wrapping_add(1);
        }
        if let Some(advance) = r.advance_time_ms {
            if self.state.cursor_ms.is_none() {
                self.state.cursor_ms = Some(self.bucket_of(advance));
            }
            self.finalise_until(advance);
        }
        if r.calc_interim {
            let open = std::mem::take(&mut self.state.open);
            for b in &open {
                let in_range = r.start_ms.is_none_or(|s| b.start_ms >= self.bucket_of(s))
                    && r.end_ms.is_none_or(|e| b.start_ms < e);
                if in_range {
                    self.score_bucket(b, true);
                }
            }
            self.state.open = open;
        }
        self.state.cursor_ms
    }

    /// `reset_start`/`reset_end`: forget what open buckets in [start, end) gathered, so their
    /// data can be sent again. Final buckets keep their results.
    pub fn reset_buckets(&mut self, start_ms: i64, end_ms: i64) {
        let start_ms = start_ms.clamp(-TIME_LIMIT_MS, TIME_LIMIT_MS);
        let from = self.bucket_of(start_ms);
        self.changes = self.changes.wrapping_add(1);
        for b in self.state.open.iter_mut().filter(|b| b.start_ms >= from && b.start_ms < end_ms) {
            *b = OpenBucket::new(b.start_ms);
        }
    }

    #[cfg(test)]
    pub fn last_finalized_bucket_end(&self) -> Option<i64> {
        self.state.cursor_ms
    }

    /// Results produced since the last call, in the order they were made.
    pub fn take_results(&mut self) -> Vec<ResultRow> {
        std::mem::take(&mut self.out)
    }

    // -- persistence and stats ---------------------------------------------------------------

    /// The snapshot proper, then the memory limit's refusals, then the per-hour average of
    /// bucket times: appended rather than part of `State`, so that snapshots from before they
    /// were kept still restore (with none).
    pub fn snapshot(&self) -> Vec<u8> {
        let tail = (self.memory.refused(), &self.hourly);
        postcard::to_extend(&tail, self.snapshot_of(&self.state)).expect("snapshot tail serialises")
    }

    /// The snapshot proper (without the refusals) of the series with `state`.
    fn snapshot_of(&self, state: &State) -> Vec<u8> {
        let s = SnapshotRef { version: SNAPSHOT_VERSION, series: &self.series.series, state };
        postcard::to_allocvec(&s).expect("analysis state serialises")
    }

    /// The snapshot proper with the measured bucket times zeroed: equal runs give equal bytes.
    #[cfg(test)]
    pub(super) fn snapshot_untimed(&self) -> Vec<u8> {
        self.snapshot_of(&State { timing: Timing::default(), ..self.state.clone() })
    }

    #[cfg(test)]
    pub(super) fn hourly(&self) -> &HourlyAverage {
        &self.hourly
    }

    /// Forget the models and open buckets (the job has closed, its snapshot stored), so that
    /// their memory is freed now, by the caller's thread, rather than wherever the engine's
    /// last reference happens to go.
    pub fn discard(&mut self) {
        self.series = SeriesSet::new(self.spec.detectors.len());
        self.state.open = VecDeque::new();
        self.memory.set_used(0);
        self.hot = Hot::NONE;
        self.changes = self.changes.wrapping_add(1);
    }

    /// Continue from a snapshot of the same job configuration.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        // The version leads the snapshot: check it before reading a layout that may differ.
        let (version, _) = postcard::take_from_bytes::<u32>(bytes).map_err(|e| format!("model snapshot: {e}"))?;
        if version != SNAPSHOT_VERSION {
            return Err(format!("model snapshot: format {version}, this build reads {SNAPSHOT_VERSION}"));
        }
        let (s, rest) = postcard::take_from_bytes::<Snapshot>(bytes).map_err(|e| format!("model snapshot: {e}"))?;
        // A tail that does not read (older snapshots end sooner) costs what it would have held,
        // not the model.
        let (refused, rest) = postcard::take_from_bytes::<Refusals>(rest).unwrap_or_default();
        let hourly = postcard::from_bytes::<HourlyAverage>(rest).unwrap_or_default();
        let detectors = self.spec.detectors.len();
        if s.state.record_normalizers.len() != detectors
            || s.state.influencer_normalizers.len() != self.spec.influencers.len()
            || s.series.iter().any(|x| x.detector >= detectors)
        {
            return Err("model snapshot: made for another configuration".into());
        }
        self.series = SeriesSet::from_series(detectors, s.series);
        self.memory.set_used(self.series.series.iter().map(|x| x.memory_bytes() + INDEX_BYTES_PER_SERIES).sum());
        self.memory.set_refused(refused);
        self.state = s.state;
        self.hourly = hourly;
        self.hot = Hot::NONE;
        self.changes = self.changes.wrapping_add(1);
        Ok(())
    }

    /// The models' size: the series (kept by the memory budget as they are made, so that this
    /// costs nothing per series), the open buckets and the normalisers.
    pub fn model_bytes(&self) -> usize {
        let series_and_index = self.memory.used();
        let open: usize = self.state.open.iter().map(|b| 64 + b.touched().len() * 48).sum();
        let st = &self.state;
        let norms = st.bucket_normalizer.memory_bytes()
            + st.record_normalizers.iter().chain(&st.influencer_normalizers).map(Normalizer::memory_bytes).sum::<usize>();
        series_and_index + open + norms
    }

    /// `model_size_stats` and `timing_stats` figures, as JSON for the Python front.
    pub fn stats_json(&self) -> String {
        let (by, partition) = self.series.field_counts();
        serde_json::json!({
            "model_bytes": self.model_bytes(),
            "model_bytes_memory_limit": self.memory.limit(),
            "model_bytes_exceeded": self.memory.refused().bytes_exceeded,
            "bucket_allocation_failures_count": self.memory.refused().buckets,
            "memory_status": self.memory.status(),
            "total_by_field_count": by,
            "total_partition_field_count": partition,
            "series_count": self.series.len(),
            "timing_stats": self.state.timing.json(&self.hourly),
        })
        .to_string()
    }
}
