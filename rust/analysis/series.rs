//! The series of a job: one per (detector, partition value, by value), each with its models.
//!
//! Records find their series through one hash lookup per detector on the split values' bytes
//! where they lie in the input (foldhash: fast on short keys, seeded per process), in a table of
//! bare series ids whose candidates are checked against a compact copy of each series' split
//! values: no key is built per record. Detectors without split fields have a single series and
//! skip hashing altogether.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use serde::{Deserialize, Serialize};

use super::detector::{Detector, Feature};
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

/// Where a series' split values sit in [`SeriesSet`]'s key bytes: the partition value's bytes,
/// then the by value's. An absent split field stores no bytes; whether a field is absent is fixed
/// per detector, so "absent" never meets "empty" within one detector's index.
#[derive(Clone, Copy, Default)]
struct KeySpan {
    start: usize,
    partition_len: u32,
    by_len: u32,
}

/// All series of a job and the index that finds them. The index is rebuilt from the series
/// list when a snapshot is restored, so only the list is persisted.
///
/// The index holds only series ids: a lookup hashes the record's split values where they lie
/// (no key is built or copied) and compares candidates against `key_bytes`, a compact copy of
/// every series' raw split values made once, at creation. The series themselves (large, with
/// their models) are not touched on the way.
#[derive(Default)]
pub struct SeriesSet {
    pub series: Vec<Series>,
    /// Series of each detector, in creation order.
    pub by_detector: Vec<Vec<u32>>,
    index: Vec<HashTable<u32>>,
    hasher: RandomState,
    /// Per series id.
    keys: Vec<KeySpan>,
    key_bytes: Vec<u8>,
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
        }
        set.series = series;
        set
    }

    /// Hash of a series' split values (absent ones as empty: see [`KeySpan`]).
    #[inline]
    fn hash(hasher: &RandomState, partition: &[u8], by: &[u8]) -> u64 {
        let mut h = hasher.build_hasher();
        h.write(partition);
        h.write(by);
        h.finish()
    }

    #[inline]
    fn key_of<'a>(keys: &[KeySpan], key_bytes: &'a [u8], id: u32) -> (&'a [u8], &'a [u8]) {
        let k = keys[id as usize];
        let (p, b) = (k.partition_len as usize, k.by_len as usize);
        (&key_bytes[k.start..k.start + p], &key_bytes[k.start + p..k.start + p + b])
    }

    /// The series of `det` for these split values, created on first sight. `partition` and
    /// `by` are `None` exactly when the detector has no such split field.
    #[inline]
    pub fn find_or_create(&mut self, det: &Detector, make_models: impl FnOnce() -> Vec<SeriesModel>, partition: Option<&[u8]>, by: Option<&[u8]>) -> u32 {
        let d = det.index;
        let (p, b) = (partition.unwrap_or_default(), by.unwrap_or_default());
        if det.partition.is_none() && det.by.is_none() {
            if let Some(&id) = self.by_detector[d].first() {
                return id;
            }
        } else {
            let hash = Self::hash(&self.hasher, p, b);
            let (keys, key_bytes) = (&self.keys, &self.key_bytes);
            let same = |&id: &u32| {
                let (sp, sb) = Self::key_of(keys, key_bytes, id);
                same_bytes(sp, p) && same_bytes(sb, b)
            };
            if let Some(&id) = self.index[d].find(hash, same) {
                return id;
            }
        }
        self.add_new(d, p, b, partition, by, make_models)
    }

    #[cold]
    #[inline(never)]
    fn add_new(&mut self, d: usize, p: &[u8], b: &[u8], partition: Option<&[u8]>, by: Option<&[u8]>, make_models: impl FnOnce() -> Vec<SeriesModel>) -> u32 {
        let text = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
        self.series.push(Series { detector: d, partition: text(partition), by: text(by), models: make_models() });
        self.add_key(d, p, b)
    }

    /// Index the next series id (the series itself is pushed by the caller).
    fn add_key(&mut self, d: usize, p: &[u8], b: &[u8]) -> u32 {
        let id = self.keys.len() as u32;
        self.by_detector[d].push(id);
        let start = self.key_bytes.len();
        self.key_bytes.extend_from_slice(p);
        self.key_bytes.extend_from_slice(b);
        self.keys.push(KeySpan { start, partition_len: p.len() as u32, by_len: b.len() as u32 });
        let (hasher, keys, key_bytes) = (&self.hasher, &self.keys, &self.key_bytes);
        let hash = Self::hash(hasher, p, b);
        self.index[d].insert_unique(hash, id, |&id| {
            let (p, b) = Self::key_of(keys, key_bytes, id);
            Self::hash(hasher, p, b)
        });
        id
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Distinct by and partition values over all series: `total_by_field_count` and
    /// `total_partition_field_count`.
    pub fn field_counts(&self) -> (usize, usize) {
        let mut by = std::collections::HashSet::new();
        let mut partition = std::collections::HashSet::new();
        for s in &self.series {
            if let Some(b) = &s.by {
                by.insert((s.detector, b.as_str()));
            }
            if let Some(p) = &s.partition {
                partition.insert(p.as_str());
            }
        }
        (by.len(), partition.len())
    }
}

/// `a == b` for the short values split fields hold, without a call to `memcmp`: up to 16 bytes
/// are compared as two (possibly overlapping) words.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let word4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// Models for a new series of a detector with `feature`.
pub fn models_for(feature: Feature, make: impl Fn() -> SeriesModel) -> Vec<SeriesModel> {
    let n = if feature == Feature::Metric { 3 } else { 1 };
    (0..n).map(|_| make()).collect()
}
