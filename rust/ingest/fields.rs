//! The fields a job reads from each record, and one record's extracted values.
//!
//! A job needs only its analysis fields and its time field; every other key is counted and
//! skipped. Lookup compares a key's length and first 8 bytes against each wanted name before
//! touching the rest, so an unused key costs a few integer compares.

use super::token::key_word;

/// The required input fields of a job: its analysis fields, then the time field last.
#[derive(Clone, Debug)]
pub struct FieldSet {
    names: Vec<Vec<u8>>,
    lens: Vec<usize>,
    words: Vec<u64>,
    /// Whether any name has a dot: only then can a nested leaf match.
    any_dotted: bool,
}

impl FieldSet {
    /// `analysis` must already be de-duplicated and free of `mlcategory` and the time field.
    pub fn new(analysis: &[String], time_field: &str) -> Self {
        let mut names: Vec<Vec<u8>> = analysis.iter().map(|s| s.as_bytes().to_vec()).collect();
        names.push(time_field.as_bytes().to_vec());
        let lens = names.iter().map(|n| n.len()).collect();
        let words = names.iter().map(|n| key_word(n)).collect();
        let any_dotted = names.iter().any(|n| n.contains(&b'.'));
        FieldSet { names, lens, words, any_dotted }
    }

    /// Number of required fields (analysis fields plus the time field).
    #[inline]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Index of the time field.
    #[inline]
    pub fn time_index(&self) -> usize {
        self.names.len() - 1
    }

    /// Number of analysis fields (`A` in `processed_field_count`).
    pub fn analysis_count(&self) -> usize {
        self.names.len() - 1
    }

    #[inline]
    pub fn any_dotted(&self) -> bool {
        self.any_dotted
    }

    #[inline]
    pub fn lookup(&self, path: &[u8]) -> Option<usize> {
        let (len, word) = (path.len(), key_word(path));
        for i in 0..self.names.len() {
            if self.lens[i] == len && self.words[i] == word && (len <= 8 || self.names[i] == path) {
                return Some(i);
            }
        }
        None
    }
}

/// Where a field's value text lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Absent,
    /// Byte range in the input buffer (strings without escapes, numbers).
    Input(usize, usize),
    /// Byte range in the record's arena (unescaped strings, joined arrays).
    Arena(usize, usize),
    Static(&'static [u8]),
}

/// One record as the reader produced it: its leaf count and the wanted fields' values.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Leaf fields: scalars and arrays count 1, nulls and objects 0.
    pub n: u32,
    pub slots: Vec<Slot>,
    pub arena: Vec<u8>,
}

impl Record {
    pub fn with_fields(count: usize) -> Self {
        Record { n: 0, slots: vec![Slot::Absent; count], arena: Vec::new() }
    }

    #[inline]
    pub fn clear(&mut self) {
        self.n = 0;
        self.slots.iter_mut().for_each(|s| *s = Slot::Absent);
        self.arena.clear();
    }

    /// The value text of field `i`, or None when it is absent or null.
    #[inline]
    pub fn value<'a>(&'a self, buf: &'a [u8], i: usize) -> Option<&'a [u8]> {
        match self.slots[i] {
            Slot::Absent => None,
            Slot::Input(s, e) => Some(&buf[s..e]),
            Slot::Arena(s, e) => Some(&self.arena[s..e]),
            Slot::Static(v) => Some(v),
        }
    }

    /// Copy every value into the arena so the record outlives its input buffer.
    pub fn detach(&self, buf: &[u8]) -> Record {
        let mut out = Record::with_fields(self.slots.len());
        out.n = self.n;
        for i in 0..self.slots.len() {
            if let Some(v) = self.value(buf, i) {
                let s = out.arena.len();
                out.arena.extend_from_slice(v);
                out.slots[i] = Slot::Arena(s, out.arena.len());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_matches_whole_names_only() {
        let f = FieldSet::new(&["responsetime".into(), "airline".into(), "c.e".into()], "time");
        assert_eq!(f.lookup(b"airline"), Some(1));
        assert_eq!(f.lookup(b"responsetime"), Some(0));
        assert_eq!(f.lookup(b"responsetimes"), None);
        assert_eq!(f.lookup(b"responsetimX"), None);
        assert_eq!(f.lookup(b"time"), Some(3));
        assert_eq!(f.lookup(b"c.e"), Some(2));
        assert_eq!(f.lookup(b""), None);
        assert!(f.any_dotted());
        assert_eq!(f.time_index(), 3);
    }
}
