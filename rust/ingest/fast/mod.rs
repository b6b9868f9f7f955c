//! The fast path for the common record: one object of plain keys and ordinary values.
//!
//! Most records are `{"time":…,"kpi":…,"host":"…"}`, sometimes with a small nested object, an
//! array of scalars or an escaped quote in a string nobody reads. For those, one straight loop
//! reads keys and values directly from the bytes, with no per-token state machine. Anything it
//! does not handle — an escaped key or wanted value, an array the job reads, nested objects
//! when a wanted name is dotted, arrays of containers, a duplicate key, a comment, a syntax
//! error, the end of the buffer — makes it give up (`None`) before any effect, and the general
//! tokenizer and reader take the record from its `{`. So the fast path decides nothing the
//! general path would decide differently; it only decides it sooner.
//!
//! Why it is fast:
//! - records of one stream share their shape, and their layout: a top-level key found at the
//!   same place as in the previous record is recognised, with the separator before it, its
//!   colon and the spacing up to its value exactly as they were (`,"kpi":` or `, "kpi": `),
//!   by two masked 8-byte compares ([`KnownKey`]), which also settle its wanted-field slot and
//!   its duplicate check; while a record follows the shape, a lean loop of its own reads it
//!   from value to value ([`known_keys`]), and the general loop below takes over where it
//!   leaves the shape;
//! - other keys: strings are searched with [`StopFinder`], monomorphised per SIMD level and
//!   inlined (one 16-byte probe settles most keys and values), a key's first 8 bytes are one
//!   masked load, and the wanted-field lookup is one probe of a per-job table
//!   ([`FieldSet::lookup_hashed`]) whose hash is also the key's per-object Bloom bit; only a
//!   Bloom collision re-reads the object's keys to compare (nothing is stored per key);
//! - a number is usually settled by one digit mask of its 16 bytes (see [`number`]);
//! - off the shape, a value is usually followed by `,"`: one 2-byte compare finds the next
//!   key; whitespace there is skipped out of line (a spaced layout is read by the known keys).
//!
//! The level is chosen once per buffer ([`for_this_cpu`]); `ANOMALYD_SIMD=scalar` gives the
//! portable [`Swar`] instance.

use super::fields::{FieldSet, Record, Slot};
use super::stream::OnRecord;
use super::lex::{is_run_byte, is_ws, json_number_end, scan_escape, scan_utf8};
use super::token::key_word;
use crate::arch::{self, Level, StopFinder, Swar};

/// Nested objects the fast path follows inside a record; deeper ones go the general way.
const MAX_DEPTH: usize = 16;
/// Bloom collisions (each a re-read of the object's keys) the fast path takes per record before
/// leaving it to the general way: a record of hundreds of keys would cost their square.
const MAX_RESCANS: u32 = 8;

mod shape;
#[cfg(test)]
mod tests;
mod values;

use shape::*;
use values::*;

/// Reusable scratch of the fast path (one per body stream, so nothing is allocated per record).
#[derive(Default)]
pub struct Scratch {
    /// The enclosing objects' Bloom filters and first-key positions inside nested objects.
    outer: Vec<(u64, usize)>,
    /// Top-level keys recently seen at these places, in order: the last record's, or a
    /// consistent prefix of them after a shorter record or one the fast path gave up on (see
    /// [`KnownKey`]).
    shape: Vec<KnownKey>,
    /// How many of `shape`'s first keys are compared from the end of the value before them
    /// (not `from_quote`): those [`known_keys`] reads.
    lean: usize,
}

/// The fast path for one record of one SIMD level.
pub type FlatRecord = fn(&[u8], usize, &FieldSet, &mut Record, &mut Scratch) -> Option<usize>;

/// The fast path over a run of records of one SIMD level (see [`records`]).
pub type FlatRecords = fn(&[u8], usize, &FieldSet, &mut Record, &mut Scratch, usize, &mut dyn OnRecord) -> Records;

/// The fast path of one SIMD level.
#[derive(Clone, Copy)]
pub struct FastPath {
    pub record: FlatRecord,
    pub records: FlatRecords,
}

/// What a run of fast records ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Records {
    /// After the last record read (or where the run started).
    pub end: usize,
    /// The record at `end` is longer than the document limit.
    pub too_large: bool,
}

/// The fast path for the level this CPU runs ([`arch::level`]; the caller asks once per buffer).
pub fn for_this_cpu() -> FastPath {
    // SAFETY: `arch::level` picks only levels the CPU has (`set_level` refuses others).
    unsafe { for_level(arch::level()) }
}

/// The fast path for `level`.
///
/// # Safety
/// The CPU must have `level` (one of [`arch::supported_levels`]): the AVX2 instance runs AVX2
/// instructions.
unsafe fn for_level(level: Level) -> FastPath {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => FastPath { record: avx2::record, records: avx2::records },
        #[cfg(target_arch = "x86_64")]
        Level::Sse2 => FastPath { record: flat_record::<arch::Sse2Finder>, records: records::<arch::Sse2Finder> },
        #[cfg(target_arch = "aarch64")]
        Level::Neon => FastPath { record: flat_record::<arch::NeonFinder>, records: records::<arch::NeonFinder> },
        _ => FastPath { record: flat_record::<Swar>, records: records::<Swar> },
    }
}

/// The fast path compiled for AVX2 (wider string search, and VEX encoding throughout).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2")]
    unsafe fn record_avx2(buf: &[u8], open: usize, fields: &FieldSet, rec: &mut Record, scratch: &mut Scratch) -> Option<usize> {
        flat_record::<arch::Avx2Finder>(buf, open, fields, rec, scratch)
    }

    pub fn record(buf: &[u8], open: usize, fields: &FieldSet, rec: &mut Record, scratch: &mut Scratch) -> Option<usize> {
        // SAFETY: `for_level` hands this function out only for `Level::Avx2`, which its
        // callers may ask for only on CPUs that have AVX2.
        unsafe { record_avx2(buf, open, fields, rec, scratch) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn records_avx2(
        buf: &[u8],
        pos: usize,
        fields: &FieldSet,
        rec: &mut Record,
        scratch: &mut Scratch,
        max_document: usize,
        out: &mut dyn OnRecord,
    ) -> Records {
        super::records::<arch::Avx2Finder>(buf, pos, fields, rec, scratch, max_document, out)
    }

    pub fn records(
        buf: &[u8],
        pos: usize,
        fields: &FieldSet,
        rec: &mut Record,
        scratch: &mut Scratch,
        max_document: usize,
        out: &mut dyn OnRecord,
    ) -> Records {
        // SAFETY: as for `record` above.
        unsafe { records_avx2(buf, pos, fields, rec, scratch, max_document, out) }
    }
}

/// Records one after another from `pos`, separated by whitespace only, each handed to `out`:
/// the usual NDJSON body, read without leaving the fast path (so its setup is paid once per
/// run, not per record). Stops before the first thing that is not such a record; only for
/// the top level outside any array (where a record ends nothing else, see
/// [`super::token::Tokenizer::is_idle`]).
#[inline(always)]
fn records<F: StopFinder>(
    buf: &[u8],
    mut pos: usize,
    fields: &FieldSet,
    rec: &mut Record,
    scratch: &mut Scratch,
    max_document: usize,
    out: &mut dyn OnRecord,
) -> Records {
    loop {
        let p = skip_ws(buf, pos);
        if buf.get(p) != Some(&b'{') {
            return Records { end: pos, too_large: false };
        }
        let Some(end) = flat_record::<F>(buf, p, fields, rec, scratch) else {
            return Records { end: pos, too_large: false };
        };
        if end - p > max_document {
            return Records { end: pos, too_large: true };
        }
        out.on_record(rec, buf);
        pos = end;
    }
}

/// Read the record whose `{` is at `open`; the position after its `}`.
#[inline(always)]
fn flat_record<F: StopFinder>(
    buf: &[u8],
    open: usize,
    fields: &FieldSet,
    rec: &mut Record,
    scratch: &mut Scratch,
) -> Option<usize> {
    rec.clear();
    let Scratch { outer, shape, lean } = scratch;
    outer.clear();
    // `n`: leaves, stored into `rec` at the end; `ordinal`: top-level keys read so far;
    // `after`: the end of the last top-level value read (or the byte after the `{`), where
    // the next top-level key's compare starts.
    let (mut n, mut ordinal, mut after) = match known_keys::<F>(buf, open + 1, &shape[..*lean], rec)? {
        Known::End(end) => return Some(end),
        Known::Key { at, ordinal, n } => (n, ordinal, at),
    };
    // `p`: at the next key's opening quote.
    let mut p = if ordinal == 0 {
        let (p, b) = peek(buf, open + 1)?;
        if b == b'}' {
            return Some(p + 1);
        }
        p
    } else {
        // After a top-level value: the record's end, or the next key.
        let (q, b) = peek(buf, after)?;
        if b == b'}' {
            rec.n = n;
            return Some(q + 1);
        }
        if b != b',' {
            return None;
        }
        peek(buf, q + 1)?.0
    };
    if buf[p] != b'"' {
        return None;
    }
    // The position of the innermost open object's first key (top level: anything before it
    // that is whitespace); `outer` keeps those of the enclosing objects with their filters.
    let mut first_key = open + 1;
    // Bloom collisions in this record so far.
    let mut rescans = 0;
    // The innermost open object's Bloom filter of keys.
    let mut bloom = match ordinal {
        0 => 0,
        k => shape[k - 1].bloom,
    };
    loop {
        // A key; `p` is at its opening quote.
        let start = p + 1;
        let top = outer.is_empty();
        let known = if top {
            shape.get(ordinal).filter(|k| k.is_at(buf, if k.from_quote { start } else { after }))
        } else {
            None
        };
        // `past`: past the colon, and maybe whitespace after it.
        let (past, slot, remember) = match known {
            Some(k) => {
                // The same key as the last record's at this place, and so were all the
                // record's top-level keys before it (a miss forgets the rest of the shape).
                // Those keys were found distinct when remembered, so this one repeats none.
                // The bytes compared are the ones before, the same as the last record's, so
                // they read the same: the key's quote is at `p` here too.
                bloom = k.bloom;
                let slot = k.slot;
                if k.from_quote {
                    (start + k.end, slot, None)
                } else {
                    let past = after + k.end;
                    // Whitespace after the span: the record has this key in a layout of its
                    // own (`, "kpi": ` where the last had `,"kpi":`), which [`known_keys`]
                    // stops at; remembered, later records in that layout pass it.
                    if buf.get(past).is_some_and(|&b| b <= b' ') {
                        relearn(buf, after, shape, lean, ordinal);
                    }
                    (past, slot, None)
                }
            }
            None => {
                let key_end = F::find(buf, start);
                if *buf.get(key_end)? != b'"' {
                    return None; // an escaped, non-ASCII or invalid key
                }
                let len = key_end - start;
                let word = key_word_at(buf, start, len);
                // One hash serves the duplicate filter and the field table.
                let hash = fields.key_hash(len, word);
                let bit = 1u64 << hash;
                if bloom & bit != 0 {
                    // Each collision re-reads the object's keys: a record with very many keys
                    // (a saturated filter) goes the general way, which indexes them.
                    rescans += 1;
                    if rescans > MAX_RESCANS || repeats_a_key::<F>(buf, first_key, p, &buf[start..key_end]) {
                        return None; // Jackson fails on a repeated key; the general path reports it
                    }
                }
                bloom |= bit;
                let (colon, b) = peek(buf, key_end + 1)?;
                if b != b':' {
                    return None;
                }
                let mut slot = None;
                let mut remember = None;
                if top {
                    slot = fields.lookup_hashed(&buf[start..key_end], word, hash);
                    shape.truncate(ordinal);
                    *lean = (*lean).min(ordinal);
                    if shape.len() == ordinal {
                        remember = Some(colon);
                    }
                }
                (colon + 1, slot, remember)
            }
        };
        let (q, b) = peek(buf, past)?;
        if let Some(colon) = remember {
            if let Some(k) = KnownKey::new(buf, after, start, colon, q, bloom, slot) {
                if *lean == ordinal && !k.from_quote {
                    *lean += 1;
                }
                shape.push(k);
            }
        }
        ordinal += usize::from(top);
        p = q;
        // Its value.
        if b == b'{' {
            // Nested object: its leaves count, none is looked up (no wanted name has a dot).
            if fields.any_dotted() || outer.len() == MAX_DEPTH {
                return None;
            }
            let (q, b) = peek(buf, p + 1)?;
            p = q;
            if b == b'"' {
                outer.push((bloom, first_key));
                bloom = 0;
                first_key = p;
                continue;
            }
            if b != b'}' {
                return None;
            }
            p += 1; // `{}`: no leaves
        } else {
            let (end, leaves) = scalar::<F>(buf, p, b, slot, rec)?;
            n += leaves;
            p = end;
        }
        // After a value: the next key, or the end of one or more objects.
        if buf.get(p..p + 2) == Some(b",\"") {
            after = p;
            p += 1;
            continue;
        }
        loop {
            let (q, b) = peek(buf, p)?;
            match b {
                b',' => {
                    after = p;
                    let (q, b) = peek(buf, q + 1)?;
                    if b != b'"' {
                        return None;
                    }
                    p = q;
                    break;
                }
                b'}' => {
                    p = q + 1;
                    let Some((b, m)) = outer.pop() else {
                        rec.n = n;
                        return Some(p);
                    };
                    (bloom, first_key) = (b, m);
                }
                _ => return None,
            }
        }
    }
}
