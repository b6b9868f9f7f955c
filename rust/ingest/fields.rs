//! The fields a job reads from each record, and one record's extracted values.
//!
//! A job needs only its analysis fields and its time field; every other key is counted and
//! skipped. Lookup is one probe of a 64-slot table indexed by a hash of the key's length and
//! first 8 bytes (the multiplier is searched per job so that the wanted names never collide):
//! an unused key costs a multiply, a shift and one compare, a wanted key at most one extra
//! comparison of its bytes past the 8th.

use super::token::{key_hash, key_word};

/// Slots of the lookup table; a power of two, indexed by the top bits of the key hash.
const TABLE_BITS: u32 = 6;

/// One table slot: a wanted name's length and first word, and its index. Empty slots have a
/// length no key can have.
#[derive(Clone, Copy, Debug)]
struct Entry {
    len: usize,
    word: u64,
    index: usize,
}

const EMPTY: Entry = Entry { len: usize::MAX, word: 0, index: 0 };

/// The required input fields of a job: its analysis fields, then the time field last.
#[derive(Clone, Debug)]
pub struct FieldSet {
    names: Vec<Vec<u8>>,
    lens: Vec<usize>,
    words: Vec<u64>,
    /// Whether any name has a dot: only then can a nested leaf match.
    any_dotted: bool,
    /// Collision-free table for [`FieldSet::lookup_word`], or None when no multiplier was found
    /// (two names sharing length and first word, or bad luck): then lookup scans the names.
    table: Option<Box<[Entry; 1 << TABLE_BITS]>>,
    /// The hash multiplier of the table (any odd number when there is no table).
    mult: u64,
}

impl FieldSet {
    /// `analysis` must already be de-duplicated and free of `mlcategory` and the time field.
    pub fn new(analysis: &[String], time_field: &str) -> Self {
        let mut names: Vec<Vec<u8>> = analysis.iter().map(|s| s.as_bytes().to_vec()).collect();
        names.push(time_field.as_bytes().to_vec());
        let lens = names.iter().map(|n| n.len()).collect();
        let words = names.iter().map(|n| key_word(n)).collect();
        let any_dotted = names.iter().any(|n| n.contains(&b'.'));
        let mut set = FieldSet { names, lens, words, any_dotted, table: None, mult: 0x2545_f491_4f6c_dd1d };
        if let Some((mult, table)) = set.build_table() {
            set.table = Some(table);
            set.mult = mult;
        }
        set
    }

    /// Find a multiplier under which every name has its own slot.
    fn build_table(&self) -> Option<(u64, Box<[Entry; 1 << TABLE_BITS]>)> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..4096 {
            let mult = seed | 1;
            let mut table = Box::new([EMPTY; 1 << TABLE_BITS]);
            let placed = (0..self.names.len()).all(|i| {
                let slot = &mut table[key_hash(self.lens[i], self.words[i], mult, TABLE_BITS)];
                let free = slot.len == usize::MAX;
                *slot = Entry { len: self.lens[i], word: self.words[i], index: i };
                free
            });
            if placed {
                return Some((mult, table));
            }
            // splitmix64 step: the next candidate multiplier.
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            seed = z ^ (z >> 31);
        }
        None
    }

    /// Number of required fields (analysis fields plus the time field).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
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
        self.lookup_word(path, key_word(path))
    }

    /// The job's 6-bit hash of a key of length `len` starting with [`key_word`] `word`: its
    /// slot in the lookup table (and, in the fast path, its per-object Bloom bit).
    #[inline(always)]
    pub fn key_hash(&self, len: usize, word: u64) -> u32 {
        key_hash(len, word, self.mult, TABLE_BITS) as u32
    }

    /// [`FieldSet::lookup`] with the key's [`key_word`] already computed.
    #[inline(always)]
    pub fn lookup_word(&self, path: &[u8], word: u64) -> Option<usize> {
        self.lookup_hashed(path, word, self.key_hash(path.len(), word))
    }

    /// [`FieldSet::lookup`] with the key's [`key_word`] and [`FieldSet::key_hash`] computed.
    #[inline(always)]
    pub fn lookup_hashed(&self, path: &[u8], word: u64, hash: u32) -> Option<usize> {
        let len = path.len();
        if let Some(table) = &self.table {
            let e = &table[hash as usize & ((1 << TABLE_BITS) - 1)];
            return (e.len == len && e.word == word && (len <= 8 || self.names[e.index][8..] == path[8..]))
                .then_some(e.index);
        }
        (0..self.names.len()).find(|&i| self.lens[i] == len && self.words[i] == word && (len <= 8 || self.names[i] == path))
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
    /// Each wanted field's value with the `stamp` of the record that set it: a slot of an
    /// earlier record's stamp is absent, so clearing a record is one increment, not a pass over
    /// its slots (which LLVM vectorises into some 45 instructions for a single slot). Written
    /// through [`Record::set`] only, which keeps `present`.
    slots: Vec<(u32, Slot)>,
    stamp: u32,
    /// How many slots this record set: counted as they are set, so that the missing fields of
    /// a record cost no pass over its slots.
    present: u32,
    pub arena: Vec<u8>,
}

impl Record {
    pub fn with_fields(count: usize) -> Self {
        Record { n: 0, slots: vec![(0, Slot::Absent); count], stamp: 1, present: 0, arena: Vec::new() }
    }

    #[inline]
    pub fn clear(&mut self) {
        self.n = 0;
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.restamp();
        }
        self.present = 0;
        self.arena.clear();
    }

    /// After 2^32 records the stamps come round: every slot is cleared for real, once.
    #[cold]
    #[inline(never)]
    fn restamp(&mut self) {
        self.slots.fill((0, Slot::Absent));
        self.stamp = 1;
    }

    /// Give field `i` its value (a repeated field's later value replaces the earlier one).
    #[inline(always)]
    pub fn set(&mut self, i: usize, value: Slot) {
        debug_assert!(value != Slot::Absent);
        let slot = &mut self.slots[i];
        self.present += u32::from(slot.0 != self.stamp);
        *slot = (self.stamp, value);
    }

    /// How many wanted fields are absent (or null).
    #[inline(always)]
    pub fn missing(&self) -> u64 {
        #[cfg(test)]
        assert_eq!(self.present as usize, self.slots.iter().filter(|s| s.0 == self.stamp).count());
        (self.slots.len() - self.present as usize) as u64
    }

    /// The value text of field `i`, or None when it is absent or null.
    #[inline]
    pub fn value<'a>(&'a self, buf: &'a [u8], i: usize) -> Option<&'a [u8]> {
        let (stamp, slot) = self.slots[i];
        if stamp != self.stamp {
            return None;
        }
        // Almost every value lies in the input: one compare for it, not a jump table.
        if let Slot::Input(s, e) = slot {
            return Some(&buf[s..e]);
        }
        match slot {
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
                out.set(i, Slot::Arena(s, out.arena.len()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clearing forgets every value, also when the stamps come round after 2^32 records.
    #[test]
    fn a_cleared_record_holds_nothing_across_the_stamps_wrapping() {
        let buf = b"0123456789";
        let mut rec = Record::with_fields(2);
        rec.stamp = u32::MAX - 2;
        for round in 0..6 {
            rec.clear();
            assert_eq!((rec.value(buf, 0), rec.value(buf, 1), rec.missing()), (None, None, 2), "round {round}");
            rec.set(round % 2, Slot::Input(round, round + 1));
            rec.set(round % 2, Slot::Input(round, round + 2));
            assert_eq!(rec.value(buf, round % 2), Some(&buf[round..round + 2]));
            assert_eq!((rec.value(buf, 1 - round % 2), rec.missing()), (None, 1));
        }
        assert!(rec.stamp > 0 && rec.stamp < 8);
        // A slot set long before the wrap, whose stamp comes round again after it.
        rec.clear();
        rec.set(0, Slot::Input(0, 1));
        let old = rec.stamp;
        rec.stamp = u32::MAX;
        rec.clear();
        while rec.stamp < old {
            assert_eq!((rec.value(buf, 0), rec.missing()), (None, 2), "stamp {}", rec.stamp);
            rec.clear();
        }
        assert_eq!((rec.stamp, rec.value(buf, 0), rec.missing()), (old, None, 2));
    }

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

    /// The table and the plain scan agree, also for names sharing their first 8 bytes.
    #[test]
    fn table_lookup_agrees_with_the_scan() {
        let names: Vec<String> = ["responsetime", "responsetimes", "a", "", "host", "region", "x.y", "12345678"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = FieldSet::new(&names[..7], "time");
        assert!(f.table.is_some());
        let mut plain = f.clone();
        plain.table = None;
        let probes = ["responsetime", "responsetimes", "responsetimeX", "a", "b", "", "host", "hosts", "region",
            "x.y", "time", "timf", "12345678", "123456789", "regionregion"];
        for p in probes {
            assert_eq!(f.lookup(p.as_bytes()), plain.lookup(p.as_bytes()), "{p}");
        }
        assert_eq!(f.lookup(b"responsetimes"), Some(1));
        assert_eq!(f.lookup(b""), Some(3));
    }
}
