//! The series of a job: one per (detector, partition value, by value), each with its models.
//!
//! Records find their series through one hash lookup per detector on the split values, read
//! where they lie in the input: a few word loads per value make the key, which is both hashed
//! (foldhash's seeded folded multiply) and compared whole against the candidates' keys kept
//! compactly beside the index, a table of bare series ids. No key is built in memory or copied
//! per record, and no series is touched on the way. Detectors without split fields have a single
//! series and skip hashing altogether. A miss (a new series) is a separate, cold call, so the
//! inlined lookup stays small in the per-record loop.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::detector::Detector;
use super::detector::Feature;
use super::model::SeriesModel;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    pub detector: usize,
    pub partition: Option<String>,
    pub by: Option<String>,
    /// One model per modelled feature (three for `metric`).
    pub models: Vec<SeriesModel>,
}

impl Series {
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.partition.as_ref().map_or(0, |s| s.len())
            + self.by.as_ref().map_or(0, |s| s.len())
            + self.models.iter().map(SeriesModel::memory_bytes).sum::<usize>()
    }
}

/// A series' split values as compared and hashed: each value in two words and its length. Up to
/// 16 bytes the words (overlapping loads) and the length determine the bytes, so equal keys are
/// equal values; a longer value's words are a hash of it, and a match is confirmed against
/// `key_bytes`. An absent split field is the empty value: whether a field is absent is fixed per
/// detector, so "absent" never meets "empty" within one detector's index.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    partition: [u64; 2],
    by: [u64; 2],
    partition_len: u32,
    by_len: u32,
}

/// Longest value whose [`Key`] words are the value itself.
const INLINE_MAX: usize = 16;

impl Key {
    #[inline(always)]
    fn new(p: &[u8], b: &[u8], seeds: &Seeds) -> Key {
        Key { partition: words(p, seeds), by: words(b, seeds), partition_len: p.len() as u32, by_len: b.len() as u32 }
    }

    fn is_inline(&self) -> bool {
        self.partition_len as usize <= INLINE_MAX && self.by_len as usize <= INLINE_MAX
    }

    /// foldhash's construction (a folded multiply of the words against random seeds), applied
    /// to words already loaded for the comparison.
    #[inline(always)]
    fn hash(&self, seeds: &Seeds) -> u64 {
        let s = &seeds.words;
        let p = folded_multiply(self.partition[0] ^ s[0], self.partition[1] ^ s[1]);
        let b = folded_multiply(self.by[0] ^ s[2], self.by[1] ^ s[3]);
        let lens = (u64::from(self.partition_len) << 32) | u64::from(self.by_len);
        folded_multiply(p ^ lens ^ s[4], b ^ s[5])
    }
}

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Random per-set seeds: series lookups resist crafted collisions as foldhash does.
struct Seeds {
    words: [u64; 6],
    long: RandomState,
}

impl Default for Seeds {
    fn default() -> Self {
        let random = RandomState::default();
        Seeds { words: std::array::from_fn(|i| random.hash_one(i)), long: random }
    }
}

/// The two words of a value (see [`Key`]).
#[inline(always)]
fn words(v: &[u8], seeds: &Seeds) -> [u64; 2] {
    let n = v.len();
    let w8 = |at: usize| u64::from_le_bytes(v[at..at + 8].try_into().expect("8 bytes"));
    let w4 = |at: usize| u64::from(u32::from_le_bytes(v[at..at + 4].try_into().expect("4 bytes")));
    match n {
        0 => [0, 0],
        1..=3 => [u64::from(v[0]) | u64::from(v[n / 2]) << 8 | u64::from(v[n - 1]) << 16, 0],
        4..=7 => [w4(0) | w4(n - 4) << 32, 0],
        8..=INLINE_MAX => [w8(0), w8(n - 8)],
        _ => [seeds.long.hash_one(v), 0],
    }
}

/// All series of a job and the index that finds them. The index is rebuilt from the series
/// list when a snapshot is restored, so only the list is persisted.
///
/// The index holds only series ids: a lookup reads the record's split values where they lie
/// (no key is built or copied) and compares candidates against `keys`, a compact copy of every
/// series' key made once, at creation. The series themselves (large, with their models) are not
/// touched on the way.
#[derive(Default)]
pub struct SeriesSet {
    pub series: Vec<Series>,
    /// Series of each detector, in creation order.
    pub by_detector: Vec<Vec<u32>>,
    index: Vec<HashTable<u32>>,
    seeds: Seeds,
    /// Per series id: its key, and where its values start in `key_bytes` (for long values).
    keys: Vec<(Key, usize)>,
    /// Every series' partition value then by value, as raw bytes.
    key_bytes: Vec<u8>,
    /// The distinct (detector, by value) pairs and partition values so far, kept as series are
    /// made so that `_stats` does not walk every series.
    by_values: std::collections::HashSet<(usize, Box<str>)>,
    partition_values: std::collections::HashSet<Box<str>>,
}

impl SeriesSet {
    pub fn new(detectors: usize) -> Self {
        SeriesSet { by_detector: vec![Vec::new(); detectors], index: (0..detectors).map(|_| HashTable::new()).collect(), ..Default::default() }
    }

    pub fn from_series(detectors: usize, series: Vec<Series>) -> Self {
        let mut set = SeriesSet::new(detectors);
        for s in &series {
            fn bytes(v: Option<&str>) -> &[u8] {
                v.map_or(b"", str::as_bytes)
            }
            set.add_key(s.detector, bytes(s.partition.as_deref()), bytes(s.by.as_deref()));
            set.count_values(s);
        }
        set.series = series;
        set
    }

    fn count_values(&mut self, s: &Series) {
        if let Some(b) = &s.by {
            self.by_values.insert((s.detector, b.as_str().into()));
        }
        if let Some(p) = &s.partition {
            self.partition_values.insert(p.as_str().into());
        }
    }

    /// The series of detector `d` with these split values, if it exists. `split` says whether
    /// the detector has split fields; a field it lacks has the empty value.
    #[inline(always)]
    pub fn find(&self, d: usize, split: bool, p: &[u8], b: &[u8]) -> Option<u32> {
        if !split {
            return self.by_detector[d].first().copied();
        }
        let key = Key::new(p, b, &self.seeds);
        let (keys, key_bytes) = (&self.keys, &self.key_bytes);
        let same = |&id: &u32| {
            let (k, start) = &keys[id as usize];
            *k == key && (key.is_inline() || Self::same_long(key_bytes, *start, p, b))
        };
        self.index[d].find(key.hash(&self.seeds), same).copied()
    }

    /// The series of `det` for these split values, created on first sight. `partition` and
    /// `by` are `None` exactly when the detector has no such split field. (The record path
    /// calls `find` and `create` itself, so that a miss stays out of line.)
    #[cfg(test)]
    pub fn find_or_create(&mut self, det: &Detector, make_models: impl FnOnce() -> Vec<SeriesModel>, partition: Option<&[u8]>, by: Option<&[u8]>) -> u32 {
        let split = det.partition.is_some() || det.by.is_some();
        let (p, b) = (partition.unwrap_or_default(), by.unwrap_or_default());
        match self.find(det.index, split, p, b) {
            Some(id) => id,
            None => self.create(det.index, partition, by, make_models()),
        }
    }

    #[cold]
    fn same_long(key_bytes: &[u8], start: usize, p: &[u8], b: &[u8]) -> bool {
        key_bytes[start..start + p.len()] == *p && key_bytes[start + p.len()..start + p.len() + b.len()] == *b
    }

    /// Add the series of detector `d` with these split values (`None`: the detector has no
    /// such field), which [`find`](Self::find) did not find.
    #[cold]
    #[inline(never)]
    pub fn create(&mut self, d: usize, partition: Option<&[u8]>, by: Option<&[u8]>, models: Vec<SeriesModel>) -> u32 {
        let text = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
        let series = Series { detector: d, partition: text(partition), by: text(by), models };
        self.count_values(&series);
        self.series.push(series);
        self.add_key(d, partition.unwrap_or_default(), by.unwrap_or_default())
    }

    /// Index the next series id (the series itself is pushed by the caller).
    fn add_key(&mut self, d: usize, p: &[u8], b: &[u8]) -> u32 {
        let id = self.keys.len() as u32;
        self.by_detector[d].push(id);
        let key = Key::new(p, b, &self.seeds);
        self.keys.push((key, self.key_bytes.len()));
        self.key_bytes.extend_from_slice(p);
        self.key_bytes.extend_from_slice(b);
        let (seeds, keys) = (&self.seeds, &self.keys);
        self.index[d].insert_unique(key.hash(seeds), id, |&id| keys[id as usize].0.hash(seeds));
        id
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Distinct by and partition values over all series: `total_by_field_count` and
    /// `total_partition_field_count`.
    pub fn field_counts(&self) -> (usize, usize) {
        (self.by_values.len(), self.partition_values.len())
    }
}

/// Models for a new series of a detector with `feature`.
pub fn models_for(feature: Feature, make: impl Fn() -> SeriesModel) -> Vec<SeriesModel> {
    let n = if feature == Feature::Metric { 3 } else { 1 };
    (0..n).map(|_| make()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distinct_split_pair_is_its_own_series() {
        let fields = vec!["p".to_string(), "b".to_string()];
        let json = serde_json::json!({"function": "count", "partition_field_name": "p", "by_field_name": "b"});
        let det = Detector::from_json(0, &json, &fields).unwrap();
        // Every length class of the key words, near-misses at both ends, and long values.
        let long = "x".repeat(40);
        let mut values: Vec<String> = vec![String::new()];
        for n in 1..=20 {
            let base: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            values.push(base.clone());
            values.push(format!("z{}", &base[1..]));
            values.push(format!("{}z", &base[..n as usize - 1]));
        }
        values.extend([long.clone(), format!("{long}y"), format!("y{long}")]);
        values.sort();
        values.dedup();
        let mut set = SeriesSet::new(1);
        let pairs: Vec<(&str, &str)> = values.iter().flat_map(|p| values.iter().step_by(7).map(move |b| (p.as_str(), b.as_str()))).collect();
        for round in 0..2 {
            for (i, (p, b)) in pairs.iter().enumerate() {
                let id = set.find_or_create(&det, Vec::new, Some(p.as_bytes()), Some(b.as_bytes()));
                assert_eq!(id as usize, i, "round {round}: {p:?} {b:?}");
            }
        }
        // The index rebuilt from the series list finds the same series.
        let mut restored = SeriesSet::from_series(1, set.series.clone());
        for (i, (p, b)) in pairs.iter().enumerate() {
            assert_eq!(restored.find_or_create(&det, Vec::new, Some(p.as_bytes()), Some(b.as_bytes())) as usize, i);
        }
        assert_eq!(restored.len(), pairs.len());
    }
}
