//! The series of a job: one per (detector, partition value, by value), each with its models.
//!
//! Records find their series through one hash lookup per detector on the split values' bytes
//! (foldhash: fast on short keys, seeded per process); detectors without split fields have a
//! single series and skip hashing altogether.

use std::collections::HashMap;

use foldhash::fast::RandomState;

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

/// Separates partition and by values in a lookup key; never part of valid UTF-8.
const SEP: u8 = 0xFF;

/// All series of a job and the index that finds them. The index is rebuilt from the series
/// list when a snapshot is restored, so only the list is persisted.
#[derive(Default)]
pub struct SeriesSet {
    pub series: Vec<Series>,
    /// Series of each detector, in creation order.
    pub by_detector: Vec<Vec<u32>>,
    index: Vec<HashMap<Vec<u8>, u32, RandomState>>,
    key: Vec<u8>,
}

impl SeriesSet {
    pub fn new(detectors: usize) -> Self {
        SeriesSet { by_detector: vec![Vec::new(); detectors], index: vec![HashMap::default(); detectors], ..Default::default() }
    }

    pub fn from_series(detectors: usize, series: Vec<Series>) -> Self {
        let mut set = SeriesSet::new(detectors);
        for s in series {
            let key = Self::make_key(s.partition.as_deref().map(str::as_bytes), s.by.as_deref().map(str::as_bytes));
            let id = set.series.len() as u32;
            set.by_detector[s.detector].push(id);
            set.index[s.detector].insert(key, id);
            set.series.push(s);
        }
        set
    }

    fn make_key(partition: Option<&[u8]>, by: Option<&[u8]>) -> Vec<u8> {
        let mut key = Vec::new();
        Self::write_key(&mut key, partition, by);
        key
    }

    #[inline]
    fn write_key(key: &mut Vec<u8>, partition: Option<&[u8]>, by: Option<&[u8]>) {
        key.clear();
        // A leading marker tells "absent" from "empty" for each part.
        for part in [partition, by] {
            match part {
                Some(v) => {
                    key.push(1);
                    key.extend_from_slice(v);
                }
                None => key.push(0),
            }
            key.push(SEP);
        }
    }

    /// The series of `det` for these split values, created on first sight.
    #[inline]
    pub fn find_or_create(&mut self, det: &Detector, make_models: impl FnOnce() -> Vec<SeriesModel>, partition: Option<&[u8]>, by: Option<&[u8]>) -> u32 {
        let d = det.index;
        if det.partition.is_none() && det.by.is_none() {
            if let Some(&id) = self.by_detector[d].first() {
                return id;
            }
        } else {
            Self::write_key(&mut self.key, partition, by);
            if let Some(&id) = self.index[d].get(self.key.as_slice()) {
                return id;
            }
        }
        let id = self.series.len() as u32;
        let text = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
        self.series.push(Series { detector: d, partition: text(partition), by: text(by), models: make_models() });
        self.by_detector[d].push(id);
        Self::write_key(&mut self.key, partition, by);
        self.index[d].insert(self.key.clone(), id);
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

/// Models for a new series of a detector with `feature`.
pub fn models_for(feature: Feature, make: impl Fn() -> SeriesModel) -> Vec<SeriesModel> {
    let n = if feature == Feature::Metric { 3 } else { 1 };
    (0..n).map(|_| make()).collect()
}
