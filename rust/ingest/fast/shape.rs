//! The shape of the previous record: its top-level keys where they stood, recognised in the
//! next record by two masked compares each ([`KnownKey`]), and the lean loop that reads a
//! record while it follows that shape ([`known_keys`]).

use super::values::scalar;
use super::*;

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
pub(super) struct KnownKey {
    /// The bytes compared, with masks covering exactly those bytes.
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) mask_lo: u64,
    pub(super) mask_hi: u64,
    /// How many bytes are compared: the compare's start plus this is the value's first byte
    /// (or, `from_quote`, the byte after the colon).
    pub(super) end: usize,
    /// Compared from the key's first byte rather than from the end of the previous value.
    pub(super) from_quote: bool,
    /// The Bloom filter of the record's keys up to this one: a known key comes after the
    /// shape's keys before it (see [`known_keys`]), so this is the filter there too.
    pub(super) bloom: u64,
    pub(super) slot: Option<usize>,
}

/// The `N` bytes at `p`, if the buffer has them; written so that no `p + N` overflow check is
/// needed.
#[inline(always)]
pub(super) fn bytes_at<const N: usize>(buf: &[u8], p: usize) -> Option<&[u8; N]> {
    buf.get(p..)?.first_chunk::<N>()
}

/// Mask of the low `n` bytes of a word (`n` <= 8).
#[inline(always)]
pub(super) fn low_bytes(n: usize) -> u64 {
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
    pub(super) fn new(buf: &[u8], after: usize, start: usize, colon: usize, value: usize, bloom: u64, slot: Option<usize>) -> Option<KnownKey> {
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
    pub(super) fn is_at(&self, buf: &[u8], from: usize) -> bool {
        let Some(b) = bytes_at::<16>(buf, from) else { return false };
        let (lo, hi) = b.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(hi.try_into().expect("8 bytes"));
        ((lo ^ self.lo) & self.mask_lo) | ((hi ^ self.hi) & self.mask_hi) == 0
    }
}

/// Where [`known_keys`] stopped.
pub(super) enum Known {
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
pub(super) fn known_keys<F: StopFinder>(buf: &[u8], mut at: usize, shape: &[KnownKey], rec: &mut Record) -> Option<Known> {
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
pub(super) fn relearn(buf: &[u8], after: usize, shape: &mut [KnownKey], lean: &mut usize, ordinal: usize) {
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
