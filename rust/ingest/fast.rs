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
//! The level is chosen once per buffer ([`for_level`]); `ANOMALYD_SIMD=scalar` gives the
//! portable [`Swar`] instance.

use super::fields::{FieldSet, Record, Slot};
use super::stream::OnRecord;
use super::token::{is_run_byte, is_ws, key_word};
use crate::arch::{self, Level, StopFinder, Swar};

/// Nested objects the fast path follows inside a record; deeper ones go the general way.
const MAX_DEPTH: usize = 16;
/// Bloom collisions (each a re-read of the object's keys) the fast path takes per record before
/// leaving it to the general way: a record of hundreds of keys would cost their square.
const MAX_RESCANS: u32 = 8;

/// A top-level key of the previous record, to recognise the same key at the same place in
/// the next one with two masked 8-byte compares (records of one stream usually share their
/// shape) instead of a search, a hash, a table probe and a look for the colon.
///
/// The compare usually covers everything between the previous value (or the record's `{`)
/// and this key's value, exactly as the previous record had it: `,"kpi":`, `, "kpi": ` or
/// ` , "kpi" : `. So one match proves the separator, the key, its colon and the spacing
/// whatever the layout, and the walk over known keys ([`known_keys`]) reads from one value to
/// the next with no look at what lies between. When that span is longer than 16 bytes, the
/// compare covers the key from its first byte up to its colon instead (`from_quote`), as
/// found by the general loop only.
#[derive(Clone, Copy)]
struct KnownKey {
    /// The bytes compared, with masks covering exactly those bytes.
    lo: u64,
    hi: u64,
    mask_lo: u64,
    mask_hi: u64,
    /// How many bytes are compared: the compare's start plus this is the value's first byte
    /// (or, `from_quote`, the byte after the colon).
    end: usize,
    /// Compared from the key's first byte rather than from the end of the previous value.
    from_quote: bool,
    /// The Bloom filter of the record's keys up to this one: a known key comes after the
    /// shape's keys before it (see [`known_keys`]), so this is the filter there too.
    bloom: u64,
    slot: Option<usize>,
}

/// The `N` bytes at `p`, if the buffer has them; written so that no `p + N` overflow check is
/// needed.
#[inline(always)]
fn bytes_at<const N: usize>(buf: &[u8], p: usize) -> Option<&[u8; N]> {
    buf.get(p..)?.first_chunk::<N>()
}

/// Mask of the low `n` bytes of a word (`n` <= 8).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

impl KnownKey {
    /// The key starting at `start` whose colon is at `colon` and value at `value`, after the
    /// previous value's end (or the record's `{`) at `after`: compared from `after` if that
    /// span is short enough, else from `start` if the key is.
    fn new(buf: &[u8], after: usize, start: usize, colon: usize, value: usize, bloom: u64, slot: Option<usize>) -> Option<KnownKey> {
        let (from, to) = if value - after <= 16 { (after, value) } else { (start, colon + 1) };
        let covered = to - from;
        if covered > 16 {
            return None;
        }
        let mut pattern = [0u8; 16];
        pattern[..covered].copy_from_slice(&buf[from..to]);
        let (lo, hi) = pattern.split_at(8);
        Some(KnownKey {
            lo: u64::from_le_bytes(lo.try_into().expect("8 bytes")),
            hi: u64::from_le_bytes(hi.try_into().expect("8 bytes")),
            mask_lo: low_bytes(covered),
            mask_hi: low_bytes(covered.saturating_sub(8)),
            end: covered,
            from_quote: from == start,
            bloom,
            slot,
        })
    }

    /// Whether this key's compared bytes are at `from`.
    #[inline(always)]
    fn is_at(&self, buf: &[u8], from: usize) -> bool {
        let Some(b) = bytes_at::<16>(buf, from) else { return false };
        let (lo, hi) = b.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(hi.try_into().expect("8 bytes"));
        ((lo ^ self.lo) & self.mask_lo) | ((hi ^ self.hi) & self.mask_hi) == 0
    }
}

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

#[inline(always)]
fn skip_ws(buf: &[u8], mut p: usize) -> usize {
    while p < buf.len() && is_ws(buf[p]) {
        p += 1;
    }
    p
}

/// The first byte at or after `p` that is not whitespace, with its position. Records rarely
/// have whitespace inside, so that case is out of line.
#[inline(always)]
fn peek(buf: &[u8], p: usize) -> Option<(usize, u8)> {
    let b = *buf.get(p)?;
    if b > b' ' {
        return Some((p, b));
    }
    peek_past_ws(buf, p)
}

#[inline(never)]
fn peek_past_ws(buf: &[u8], p: usize) -> Option<(usize, u8)> {
    let p = skip_ws(buf, p);
    Some((p, *buf.get(p)?))
}

/// [`key_word`] of `buf[start..start + len]`, with one masked 8-byte load when the buffer
/// allows (it usually does: the key's closing quote and more follow it).
#[inline(always)]
fn key_word_at(buf: &[u8], start: usize, len: usize) -> u64 {
    match buf.get(start..start + 8) {
        Some(b) => {
            let w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            if len >= 8 {
                w
            } else {
                w & ((1u64 << (8 * len)) - 1)
            }
        }
        None => key_word(&buf[start..start + len]),
    }
}

/// The end of the run of ASCII digits starting at `i`.
#[inline(always)]
fn digits_end(buf: &[u8], i: usize) -> usize {
    i + arch::swar_digit_run(&buf[i..])
}

/// A JSON number `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` starting at `p` and ending
/// where the run of number/literal bytes ends (as the tokenizer's run does); its end. None for
/// anything else, including a run cut by the buffer end.
///
/// A record's numbers are short and rarely have exponents: when the number and the byte after
/// it lie in the 16 bytes at `p`, one digit mask of those bytes ([`StopFinder::non_digits`])
/// finds the integer and fraction digits with a shift and a trailing-zero count each. Anything
/// else (an exponent, a longer number, the buffer's end near) takes [`number_general`].
#[inline(always)]
fn number<F: StopFinder>(buf: &[u8], p: usize) -> Option<usize> {
    let Some(b) = bytes_at::<16>(buf, p) else { return number_general(buf, p) };
    // Bit 16 ends every digit run at the window's end.
    let other = F::non_digits(b) | 1 << 16;
    let s = usize::from(b[0] == b'-');
    let mut end = s + (other >> s).trailing_zeros() as usize;
    // No integer digit, or a leading zero followed by digits.
    if end == s || (b[s] == b'0' && end > s + 1) {
        return None;
    }
    let Some(&c) = b.get(end) else { return number_general(buf, p) };
    if c == b'.' {
        let f = end + 1;
        end = f + (other >> f).trailing_zeros() as usize;
        if end >= 16 {
            return number_general(buf, p);
        }
        if end == f {
            return None;
        }
    }
    let c = b[end];
    if !is_run_byte(c) {
        return Some(p + end);
    }
    // An exponent (a run byte too) goes the long way; any other run byte is no number.
    if c | 0x20 == b'e' {
        return number_general(buf, p);
    }
    None
}

/// [`number`] for any length, byte by byte past the first digits.
#[inline(never)]
fn number_general(buf: &[u8], p: usize) -> Option<usize> {
    let mut i = p + usize::from(buf[p] == b'-');
    match *buf.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(buf, i + 1),
        _ => return None,
    }
    if *buf.get(i)? == b'.' {
        let d = i + 1;
        i = digits_end(buf, d);
        if i == d {
            return None;
        }
    }
    if matches!(*buf.get(i)?, b'e' | b'E') {
        i += 1;
        if matches!(*buf.get(i)?, b'+' | b'-') {
            i += 1;
        }
        let d = i;
        i = digits_end(buf, d);
        if i == d {
            return None;
        }
    }
    (!is_run_byte(*buf.get(i)?)).then_some(i)
}

/// `lit` at `p` as a whole run; the position after it.
#[inline(always)]
fn literal(buf: &[u8], p: usize, lit: &[u8]) -> Option<usize> {
    let end = p + lit.len();
    (buf.get(p..end)? == lit && !is_run_byte(*buf.get(end)?)).then_some(end)
}

/// The string whose opening quote is at `q`, validated as the tokenizer validates it: its
/// closing quote and whether it holds escapes. None on anything invalid or cut.
#[inline(always)]
fn string<F: StopFinder>(buf: &[u8], q: usize) -> Option<(usize, bool)> {
    let mut p = F::find(buf, q + 1);
    if *buf.get(p)? == b'"' {
        return Some((p, false));
    }
    let mut escaped = false;
    loop {
        match *buf.get(p)? {
            b'"' => return Some((p, escaped)),
            b'\\' => {
                escaped = true;
                p = escape(buf, p)?;
            }
            0x80..=0xff => p = utf8_char(buf, p)?,
            _ => return None, // unescaped control character
        }
        p = F::find(buf, p);
    }
}

/// A valid escape at `p` (a backslash); the position after it.
#[cold]
fn escape(buf: &[u8], p: usize) -> Option<usize> {
    match *buf.get(p + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(p + 2),
        b'u' => buf.get(p + 2..p + 6)?.iter().all(u8::is_ascii_hexdigit).then_some(p + 6),
        _ => None,
    }
}

/// One valid UTF-8 character at `p`; the position after it.
#[cold]
fn utf8_char(buf: &[u8], p: usize) -> Option<usize> {
    let width = match buf[p] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    std::str::from_utf8(buf.get(p..p + width)?).ok().map(|_| p + width)
}

/// An array of scalars whose `[` is at `open`, skipped; the position after its `]`.
/// Containers inside go to the general path.
#[inline(never)]
fn scalar_array<F: StopFinder>(buf: &[u8], open: usize) -> Option<usize> {
    let mut p = skip_ws(buf, open + 1);
    if *buf.get(p)? == b']' {
        return Some(p + 1);
    }
    loop {
        p = match *buf.get(p)? {
            b'"' => string::<F>(buf, p)?.0 + 1,
            b't' => literal(buf, p, b"true")?,
            b'f' => literal(buf, p, b"false")?,
            b'n' => literal(buf, p, b"null")?,
            _ => number::<F>(buf, p)?,
        };
        p = skip_ws(buf, p);
        match *buf.get(p)? {
            b',' => p = skip_ws(buf, p + 1),
            b']' => return Some(p + 1),
            _ => return None,
        }
    }
}

/// Whether `key` repeats a key of its object, whose keys run from the quote at `p` (or
/// whitespace before it) up to the quote at `until` (the key's own). The fast path read all
/// of that already, so it is well-formed: keys without escapes, values it accepted. Only a
/// Bloom bit collision gets here.
#[cold]
#[inline(never)]
fn repeats_a_key<F: StopFinder>(buf: &[u8], p: usize, until: usize, key: &[u8]) -> bool {
    let mut p = skip_ws(buf, p);
    while p < until {
        let end = F::find(buf, p + 1);
        if buf.get(p + 1..end) == Some(key) {
            return true;
        }
        p = skip_ws(buf, end + 1); // at `:`
        p = skip_value::<F>(buf, skip_ws(buf, p + 1));
        p = skip_ws(buf, p); // at `,`
        p = skip_ws(buf, p + 1);
    }
    false
}

/// The end of the well-formed value at `p` (as read by the fast path before).
fn skip_value<F: StopFinder>(buf: &[u8], mut p: usize) -> usize {
    let mut depth = 0usize;
    loop {
        let Some(&b) = buf.get(p) else { return buf.len() };
        match b {
            b'"' => p = string::<F>(buf, p).map_or(buf.len(), |(end, _)| end + 1),
            b'{' | b'[' => {
                depth += 1;
                p += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                p += 1;
            }
            b if is_run_byte(b) => {
                while p < buf.len() && is_run_byte(buf[p]) {
                    p += 1;
                }
            }
            _ => p += 1, // whitespace, `,` and `:` inside containers
        }
        if depth == 0 {
            return p;
        }
    }
}

/// A value other than an object, whose first byte `b` is at `p`, with `slot` its wanted-field
/// slot: its end and its leaf count.
#[inline(always)]
fn scalar<F: StopFinder>(buf: &[u8], p: usize, b: u8, slot: Option<usize>, rec: &mut Record) -> Option<(usize, u32)> {
    Some(match b {
        b'"' => {
            let (end, escaped) = string::<F>(buf, p)?;
            if let Some(i) = slot {
                if escaped {
                    return None; // to be unescaped: the general path does it
                }
                rec.set(i, Slot::Input(p + 1, end));
            }
            (end + 1, 1)
        }
        b'[' => {
            if slot.is_some() {
                return None; // collected as joined text by the general path
            }
            (scalar_array::<F>(buf, p)?, 1)
        }
        b't' => {
            let end = literal(buf, p, b"true")?;
            if let Some(i) = slot {
                rec.set(i, Slot::Static(b"true"));
            }
            (end, 1)
        }
        b'f' => {
            let end = literal(buf, p, b"false")?;
            if let Some(i) = slot {
                rec.set(i, Slot::Static(b"false"));
            }
            (end, 1)
        }
        b'n' => (literal(buf, p, b"null")?, 0),
        _ => {
            let end = number::<F>(buf, p)?;
            if let Some(i) = slot {
                rec.set(i, Slot::Input(p, end));
            }
            (end, 1)
        }
    })
}

/// Where [`known_keys`] stopped.
enum Known {
    /// The record ended, here.
    End(usize),
    /// Before the `ordinal`-th top-level key, the first not read, with `n` leaves read before
    /// it: `at` is the end of the value before it (or, for the first, the byte after the `{`).
    Key { at: usize, ordinal: usize, n: u32 },
}

/// The record's top-level keys from the first (`at` after the record's `{`) for as long as
/// they are the shape's, in order, each with a value other than an object and followed by the
/// bytes the shape has between it and the next key (which that key's compare proves), the
/// last followed by the record's `}`: most records whole. The shape's keys are distinct and
/// carry their slots, so this loop keeps no Bloom filter and looks nothing up, and few
/// enough variables to stay in registers. Anything else stops it at the end of the value
/// before that key, for the general loop to go on from as if it had read that far.
#[inline(always)]
fn known_keys<F: StopFinder>(buf: &[u8], mut at: usize, shape: &[KnownKey], rec: &mut Record) -> Option<Known> {
    let mut n = 0;
    let mut rest = shape;
    while let Some((k, tail)) = rest.split_first() {
        if !k.is_at(buf, at) {
            break;
        }
        let p = at + k.end;
        let b = *buf.get(p)?;
        // A string or a number, the usual values, first, each with `scalar` settled on its arm
        // by a constant first byte (its number arm reads the number from `buf` itself).
        let (end, leaves) = if b == b'"' {
            scalar::<F>(buf, p, b'"', k.slot, rec)?
        } else if b == b'-' || b.is_ascii_digit() {
            scalar::<F>(buf, p, b'0', k.slot, rec)?
        } else if b <= b' ' || b == b'{' {
            break;
        } else {
            scalar::<F>(buf, p, b, k.slot, rec)?
        };
        n += leaves;
        at = end;
        rest = tail;
    }
    // The record's `}` right after its last value (or its `{`), or the general loop goes on.
    if buf.get(at) == Some(&b'}') {
        rec.n = n;
        return Some(Known::End(at + 1));
    }
    Some(Known::Key { at, ordinal: shape.len() - rest.len(), n })
}

/// The known key `shape[ordinal]`, found compared from `after` (not `from_quote`) and
/// followed by whitespace: remembered again from this record's bytes, its span now running up
/// to its value, with the same filter and slot (the key and the keys before it are the same).
/// A span grown past 16 bytes is compared from the key's quote instead, and the lean loop
/// stops before it.
#[cold]
#[inline(never)]
fn relearn(buf: &[u8], after: usize, shape: &mut [KnownKey], lean: &mut usize, ordinal: usize) {
    let k = shape[ordinal];
    // The span is whitespace, maybe a `,`, whitespace, the key's quoted name (no escapes),
    // whitespace, its colon and whitespace.
    let past = after + k.end;
    let value = skip_ws(buf, past);
    if value == past {
        return; // a control character, no whitespace: the value's reading rejects it
    }
    let Some(quote) = buf[after..past].iter().position(|&b| b == b'"') else { return };
    let mut colon = past - 1;
    while is_ws(buf[colon]) {
        colon -= 1;
    }
    if let Some(k) = KnownKey::new(buf, after, after + quote + 1, colon, value, k.bloom, k.slot) {
        if k.from_quote {
            *lean = (*lean).min(ordinal);
        }
        shape[ordinal] = k;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::supported_levels;

    fn fields() -> FieldSet {
        FieldSet::new(&["kpi".into(), "host".into()], "time")
    }

    /// The fast path's verdict on `s` at every level: all levels must agree.
    type Verdict = Option<(usize, u32, Vec<Option<Vec<u8>>>)>;

    fn read(s: &[u8]) -> Verdict {
        read_all(&[s]).pop().unwrap()
    }

    /// The fast path's verdicts on `records`, read in turn with one scratch (so that later
    /// records meet the shape of earlier ones) at every level: all levels must agree.
    fn read_all(records: &[&[u8]]) -> Vec<Verdict> {
        let f = fields();
        let mut out: Vec<Verdict> = vec![];
        for (n, level) in supported_levels().into_iter().enumerate() {
            let mut scratch = Scratch::default();
            let got: Vec<Verdict> = records
                .iter()
                .map(|s| {
                    let mut rec = Record::with_fields(f.len());
                    // SAFETY: a level this CPU has.
                    (unsafe { for_level(level) }.record)(s, 0, &f, &mut rec, &mut scratch)
                        .map(|end| (end, rec.n, (0..f.len()).map(|i| rec.value(s, i).map(<[u8]>::to_vec)).collect()))
                })
                .collect();
            if n > 0 {
                assert_eq!(got, out, "{level:?}");
            }
            out = got;
        }
        out
    }

    /// A record of the known shape that repeats a key, or differs from it in a key, is still
    /// judged exactly.
    #[test]
    fn known_shapes_do_not_hide_repeats() {
        let base = &br#"{"time":1,"kpi":2,"host":"h","note":"n"}"#[..];
        let cases: [(&[u8], bool); 8] = [
            (base, true),
            (br#"{"time":1,"kpi":2,"host":"h","note":"n","time":3}"#, false),
            (br#"{"time":1,"time":2}"#, false),
            (br#"{"time":1,"kpi":2,"kpi":3}"#, false),
            (br#"{"time":1,"kpX":2,"host":"h","kpX":4}"#, false),
            (br#"{"time":1,"kpi":2,"host":"h","notes":"n"}"#, true),
            (br#"{"time":1,"kpi":{"kpi":1,"time":2},"host":"h"}"#, true),
            (br#"{"time":1,"kpi":{"kpi":1,"kpi":2},"host":"h"}"#, false),
        ];
        for (s, ok) in cases {
            let got = read_all(&[base, base, s, s]);
            assert_eq!(got[2].is_some(), ok, "{}", String::from_utf8_lossy(s));
            assert_eq!(got[2], got[3]);
            assert_eq!(got[2], read(s));
        }
    }

    /// A known key is recognised with the bytes from the previous value (or the `{`) through
    /// its colon and spacing, and the walk over the known keys stops cleanly wherever a record
    /// leaves the shape: other spacing, no colon, keys that only begin alike, an object value,
    /// more or fewer keys, repeats, errors. Every pair of shapes is judged as if the first had
    /// not been seen.
    #[test]
    fn known_shapes_are_judged_as_if_unseen() {
        let records: [&[u8]; 41] = [
            br#"{"time":1,"kpi":2}"#,
            br#"{"time" :1,"kpi" : 2}"#,
            b"{\"time\"\t: 1 ,\"kpi\":2 , \"host\":\"h\"}",
            br#"{"time" 1,"kpi":2}"#,
            br#"{"time":1,"kpi"}"#,
            br#"{"time":1,"kpi":2,"kpi":3}"#,
            br#"{"timer":1,"kpi":2}"#,
            br#"{"12345678901234":1,"123456789012345":2,"1234567890123456":3,"kpi":4}"#,
            br#"{"12345678901234" :1,"123456789012345":2,"123456789012345":3}"#,
            br#"{"1234567890123":{"time":1},"time":2,"kpi":"x"}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null}"#,
            br#"{"time":1 ,"kpi":2,"host":"h","note":null}"#,
            br#"{"time":1, "kpi":2,"host":"h","note":null}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null }"#,
            br#"{"time":1,"kpi":{"a":1,"b":[2]},"host":"h","note":null}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null,"x":true}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null,"time":2}"#,
            br#"{"time":null,"kpi":"2","host":"h","note":"a\"b","tags":[1,"x"]}"#,
            br#"{"time":1,"kpi":2,"host":"a\"b","note":null}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":nul}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null,}"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null"#,
            br#"{"time":1,"kpi":2,"host":"h","note":null}}"#,
            br#"{"time": 1, "kpi": 2, "host": "h", "note": null}"#,
            br#"{"time": 1, "kpi": 2, "host": "h", "note":null}"#,
            br#"{"time": 1, "kpi": 2, "host": "h", "note": null, "time": 2}"#,
            br#"{"time": 1, "kpi":  2, "host": "h"}"#,
            br#"{"time": 1, "kpi": {"a": 1}, "host": "h"}"#,
            br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" }"#,
            br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" , "note" : "n" }"#,
            br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" , }"#,
            br#"{ "time" : 1 , "kpi" : 2 , "host" : "h" "#,
            br#"{ "time" : 1 , "kpi" : 2 ,"host" : "h" }"#,
            br#"{"time": 1, "12345678901": 2, "123456789012": 3, "1234567890123456": 4}"#,
            br#"{"time": 1, "12345678901": 2, "123456789012": 3, "1234567890123456": 4, "kpi": 5}"#,
            br#"{"time": 1, "12345678901": 2, "123456789012": 3, "123456789012345": 4, "kpi": 5}"#,
            br#"{"time":1,"12345678901234":2,"12345678901234": 3}"#,
            b"{\"time\":\t1,\n\"kpi\" :\r2}",
            br#"{"time": 1, "kpi": 2, "host": "h", "note": null }"#,
            br#"{}"#,
            br#"{ }"#,
        ];
        for a in records {
            for b in records {
                let got = read_all(&[a, a, b, b]);
                assert_eq!(got[2], read(b), "{} after {}", String::from_utf8_lossy(b), String::from_utf8_lossy(a));
                assert_eq!(got[3], got[2]);
            }
        }
        assert!(read(records[2]).is_some() && read(records[8]).is_none());
        assert_eq!(read(records[15]).map(|r| r.1), Some(4));
        assert_eq!(read(records[17]).map(|r| r.1), Some(4));
        // Spaced layouts are read, before and after their shape is known.
        for i in [23, 28, 29, 34, 35, 37, 38, 39, 40] {
            let got = read_all(&[records[i], records[i]]);
            assert!(got[0].is_some() && got[1] == got[0], "{}", String::from_utf8_lossy(records[i]));
        }
        // The same with 16 bytes of padding after each record: a known key's compare needs 16
        // bytes, so without it a record's last keys never take the known path here.
        let padded: Vec<Vec<u8>> = records.iter().map(|r| [*r, &[b' '; 16][..]].concat()).collect();
        for a in &padded {
            for b in &padded {
                let got = read_all(&[a, a, b, b]);
                assert_eq!(got[2], read(b), "{} after {}", String::from_utf8_lossy(b), String::from_utf8_lossy(a));
                assert_eq!(got[3], got[2]);
            }
        }
    }

    /// A known key found with whitespace after its remembered span (the last record had
    /// `,"kpi":`, this one `, "kpi": `) is remembered again in the new layout, so the next
    /// record in that layout is read wholly by the lean loop; a span grown past 16 bytes is
    /// compared from the key's quote, and the lean loop stops before it.
    #[test]
    fn known_keys_relearn_a_spaced_layout() {
        // Padded as in a body, where the compares' 16 bytes are there to load.
        let pad = |s: &[u8]| [s, &[b'\n'; 16][..]].concat();
        let (compact, spaced) = (pad(br#"{"time":1,"kpi":2,"host":"h"}"#), pad(br#"{"time": 1, "kpi": 2, "host": "h"}"#));
        let wide = pad(b"{\"time\":1,\"kpi\":\t\t\t\t\t\t\t\t\t\t2,\"host\":\"h\"}");
        let (compact, spaced, wide) = (&compact[..], &spaced[..], &wide[..]);
        let f = fields();
        for level in supported_levels() {
            let mut scratch = Scratch::default();
            let mut rec = Record::with_fields(f.len());
            // SAFETY: a level this CPU has.
            let path = unsafe { for_level(level) };
            let mut read = |s: &[u8], scratch: &mut Scratch| (path.record)(s, 0, &f, &mut rec, scratch);
            let lean = |s: &[u8], scratch: &Scratch| {
                let mut rec = Record::with_fields(f.len());
                match known_keys::<Swar>(s, 1, &scratch.shape[..scratch.lean], &mut rec) {
                    Some(Known::End(end)) => Some(end),
                    Some(Known::Key { ordinal, .. }) => {
                        assert!(ordinal < 3);
                        None
                    }
                    None => panic!("known_keys gave up"),
                }
            };
            assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
            assert_eq!(lean(compact, &scratch), Some(compact.len() - 16), "{level:?}");
            assert_eq!(lean(spaced, &scratch), None, "{level:?}: the compact shape stops before a space");
            assert_eq!(read(spaced, &mut scratch), Some(spaced.len() - 16));
            assert_eq!((scratch.shape.len(), scratch.lean), (3, 3), "{level:?}");
            assert_eq!(lean(spaced, &scratch), Some(spaced.len() - 16), "{level:?}: the spaced layout is learnt");
            assert_eq!(read(spaced, &mut scratch), Some(spaced.len() - 16));
            assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
            assert_eq!(lean(compact, &scratch), Some(compact.len() - 16), "{level:?}: and the compact one again");
            // `,"kpi":` then ten tabs: 17 bytes, compared from the quote.
            assert_eq!(read(wide, &mut scratch), Some(wide.len() - 16));
            assert_eq!((scratch.shape.len(), scratch.lean), (3, 1), "{level:?}");
            assert!(scratch.shape[1].from_quote && !scratch.shape[2].from_quote, "{level:?}");
            assert_eq!(read(wide, &mut scratch), read(wide, &mut Scratch::default()));
            assert_eq!(read(compact, &mut scratch), Some(compact.len() - 16));
        }
        // Judged as if unseen whatever came before.
        for a in [compact, spaced, wide] {
            for b in [compact, spaced, wide] {
                let got = read_all(&[a, b, b, a]);
                assert_eq!((&got[1], &got[3]), (&read(b), &read(a)));
                assert_eq!(got[2], got[1]);
            }
        }
    }

    #[test]
    fn reads_plain_nested_and_escaped_records() {
        let s = br#"{"time":1454020570036,"kpi":-12.5e+3,"host":"srv-1","note":"a b"} "#;
        let (end, n, v) = read(s).unwrap();
        assert_eq!((end, n), (s.len() - 1, 4));
        assert_eq!(v, vec![Some(b"-12.5e+3".to_vec()), Some(b"srv-1".to_vec()), Some(b"1454020570036".to_vec())]);
        let s = br#"{ "time" : 1 , "meta":{"k":1,"ok":true,"tags":["a","b\"",null,2,[]],"e":{}},"msg":"say \"hi\" \u00e9 \xc3\xa9","user":null}"#;
        assert!(read(s).is_none(), "nested array: general path");
        let s = br#"{ "time" : 1 , "meta":{"k":1,"ok":true,"tags":["a","b\"",null,2],"e":{}},"msg":"say \"hi\" \u00e9","user":null}x"#;
        let (end, n, v) = read(s).unwrap();
        assert_eq!((end, n), (s.len() - 1, 5));
        assert_eq!(v, vec![None, None, Some(b"1".to_vec())]);
        assert_eq!(read(b"{\"a\":\"\xc3\xa9\xe2\x82\xac\",\"time\":2}").unwrap().1, 2);
        assert_eq!(read(br#"{"time":true,"host":false,"kpi":"x"}}"#).unwrap().2[2], Some(b"true".to_vec()));
    }

    #[test]
    fn gives_up_on_what_the_general_path_decides() {
        for s in [
            &br#"{"time":1,"time":2}"#[..],
            br#"{"a":{"b":1,"b":2}}"#,
            br#"{"host":"a\"b"}"#,
            br#"{"host":["a"]}"#,
            br#"{"\u0061":1}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":1e}"#,
            br#"{"a":tru}"#,
            br#"{"a":truex}"#,
            br#"{"a":"\x"}"#,
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\xff\"}",
            br#"{"a":1,}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":1 /* c */}"#,
            br#"{"a":1"#,
            br#"{"a":12"#,
            br#"{"a":"x"#,
            br#"{"a":1}"#, // ends the buffer: `1` might continue (`}` is there, but see below)
        ] {
            if s == br#"{"a":1}"# {
                assert!(read(s).is_some());
                continue;
            }
            assert!(read(s).is_none(), "{}", String::from_utf8_lossy(s));
        }
    }

    /// Keys whose Bloom bits collide are still told apart exactly; a record with so many keys
    /// that they collide more than MAX_RESCANS times is left to the general path.
    #[test]
    fn bloom_collisions_are_resolved_exactly() {
        let object = |n: usize, extra: &str| {
            let keys: Vec<String> = (0..n).map(|i| format!("\"key{i}\":1")).collect();
            format!("{{{}{extra}}}", keys.join(","))
        };
        assert_eq!(read(object(24, "").as_bytes()).map(|r| r.1), Some(24));
        assert!(read(object(24, ",\"key7\":2").as_bytes()).is_none());
        assert!(read(object(200, "").as_bytes()).is_none(), "200 keys collide too often");
    }

    #[test]
    fn swar_digits_and_numbers() {
        for (s, want) in [("12345678901234567890,", Some(20)), ("0,", Some(1)), ("-0.5e-7}", Some(7)), ("1/", Some(1)),
            ("123456789a", None), ("12345678:", Some(8)), ("1234567:", Some(7)), ("-", None), ("00", None)] {
            assert_eq!(number_general(s.as_bytes(), 0), want, "{s}");
        }
        for b in 0..=255u8 {
            let mut s = *b"11111111111";
            s[5] = b;
            assert_eq!(digits_end(&s, 0), if b.is_ascii_digit() { 11 } else { 5 });
        }
    }

    /// The 16-byte window settles a number exactly as the general reading does, at every level,
    /// wherever the number starts and ends relative to the window and the buffer, and
    /// whatever follows it.
    #[test]
    fn windowed_numbers_agree_with_the_general_reading() {
        fn check<F: StopFinder>(s: &[u8]) {
            for p in 0..s.len() {
                assert_eq!(number::<F>(s, p), number_general(s, p), "{} at {p}", String::from_utf8_lossy(s));
            }
        }
        let heads = ["0", "-0", "7", "-7", "01", "-01", "00", "-", "", "1454020570036", "123456789012345",
            "1234567890123456", "0.5", "12.", "-12.25", "1.2.3", ".5", "-.5", "1e5", "1E+5", "2.5e-3", "1e", "0.0",
            "0.123456789012345", "123456789012.3456", "--1", "-123456789012345", "12345678901234.", "1.e5"];
        let tails = ["", ",", "}", " ", "]", "x", "e", "E", ".", "-", "+", "5", "\"", "a", ":", "\u{e9}"];
        for h in heads {
            for t in tails {
                for filler in 0..18 {
                    let s = format!("{h}{t}{}", ",".repeat(filler));
                    check::<Swar>(s.as_bytes());
                    #[cfg(target_arch = "x86_64")]
                    check::<arch::Sse2Finder>(s.as_bytes());
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx2") {
                        check::<arch::Avx2Finder>(s.as_bytes());
                    }
                    #[cfg(target_arch = "aarch64")]
                    check::<arch::NeonFinder>(s.as_bytes());
                }
            }
        }
    }

    /// Record-like bodies: keys wanted and not, nested objects, arrays, escapes, repeats,
    /// whitespace, numbers good and bad, and the odd stray byte.
    fn recordish() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        const ATOMS: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\n",
            b"\"time\":",
            b"\"kpi\":",
            b"\"host\":",
            b"\"note\":",
            b"\"a\":",
            b"\"key7\":",
            b"\"kpi2345678\":",
            b"\"meta\":{",
            b"\"h\\u0061\":",
            b"\"srv-1\"",
            b"\"say \\\"hi\\\"\"",
            b"\"\\u00e9\\x\"",
            b"\"\xc3\xa9\"",
            b"\"\xff\"",
            b"\"\x01\"",
            b"1454020570036",
            b"-12.5e+3",
            b"0",
            b"01",
            b"1.",
            b"true",
            b"false",
            b"null",
            b"nul",
            b"/**/",
            b"[\"a\",1,null]",
            b"[]",
            b"{}",
            b"123456789012345678901234",
        ];
        let atoms = proptest::sample::select(ATOMS);
        let loose = proptest::collection::vec(atoms.clone(), 0..40).prop_map(|v| {
            let mut out = b"{".to_vec();
            for a in v {
                out.extend_from_slice(a);
            }
            out
        });
        // Mostly well-formed records: pairs of a key and a value, some values nested objects,
        // with an atom slipped in now and then.
        const KEYS: &[&[u8]] = &[b"time", b"kpi", b"host", b"note", b"a", b"b", b"key7", b"kpi2345678", b"kpi2345679", b"meta", b"",
            b"kpi23456789012", b"kpi234567890123", b"kpi2345678901234"];
        const VALUES: &[&[u8]] = &[b"1454020570036", b"-12.5e+3", b"0", b"1.5", b"\"srv-1\"", b"\"say \\\"hi\\\"\"",
            b"\"\\u00e9\"", b"\"\xc3\xa9\"", b"true", b"false", b"null", b"[]", b"{}", b"[1,\"x\",true]", b"\"\"",
            b"[ 1 , 2 ]", b"{\"k\":1,\"ok\":true,\"tags\":[\"a\"]}", b"{\"k\":1,\"k\":2}", b"{\"x\":{\"y\":null}}"];
        let pair = (proptest::sample::select(KEYS), proptest::sample::select(VALUES), 0..8u8, atoms);
        let tidy = proptest::collection::vec(pair, 0..8).prop_map(|pairs| {
            let mut out = b"{".to_vec();
            for (i, (k, v, ws, atom)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Some whitespace before the key, around the colon or after the value
                // (`json.dumps` puts one space after `,` and `:`).
                match ws {
                    0 => out.extend_from_slice(b" \n\t"),
                    4 | 5 => out.push(b' '),
                    _ => {}
                }
                out.push(b'"');
                out.extend_from_slice(k);
                out.extend_from_slice(if ws == 3 { b"\" :" } else { b"\":" });
                if ws == 1 || ws == 5 {
                    out.push(b' ');
                }
                out.extend_from_slice(v);
                match ws {
                    2 => out.extend_from_slice(atom),
                    6 => out.push(b' '),
                    _ => {}
                }
            }
            out.extend_from_slice(b"} ");
            out
        });
        prop_oneof![loose, tidy]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::ingest::fuzz::cases(20000), ..Default::default() })]

        /// Whenever the fast path reads a record, the general tokenizer and reader read the
        /// same record from the same `{`: same end, leaf count and values.
        #[test]
        fn fast_path_agrees_with_the_general_reader(bodies in proptest::collection::vec(recordish(), 1..5)) {
            use super::super::reader::Reader;
            use super::super::token::Tokenizer;
            let f = fields();
            // Each body twice, so that the second reading meets its own shape.
            let records: Vec<&[u8]> = bodies.iter().flat_map(|b| [b.as_slice(), b.as_slice()]).collect();
            for (body, verdict) in records.iter().zip(read_all(&records)) {
            if let Some((end, n, values)) = verdict {
                let mut tok = Tokenizer::new();
                let mut rec = Record::with_fields(f.len());
                let mut pos = 0;
                let mut safe = (0, tok.mark());
                let got = Reader::default().read(&mut tok, &f, body, &mut pos, false, &mut rec, &mut safe);
                proptest::prop_assert_eq!(got.map(|r| r.errors), Ok(0), "{}", String::from_utf8_lossy(body));
                proptest::prop_assert_eq!(pos, end);
                proptest::prop_assert_eq!(rec.n, n);
                let general: Vec<Option<Vec<u8>>> = (0..f.len()).map(|i| rec.value(body, i).map(<[u8]>::to_vec)).collect();
                proptest::prop_assert_eq!(general, values);
            }
            }
        }
    }
}
