//! Values as the fast path reads them: whitespace, keys' first words, numbers, literals,
//! strings, arrays of scalars, each validated as the tokenizer would and skipped without a
//! state machine; and the rare re-reads (a Bloom collision's duplicate-key check, skipping a
//! value already read).

use super::*;

#[inline(always)]
pub(super) fn skip_ws(buf: &[u8], mut p: usize) -> usize {
    while p < buf.len() && is_ws(buf[p]) {
        p += 1;
    }
    p
}

/// The first byte at or after `p` that is not whitespace, with its position. Records rarely
/// have whitespace inside, so that case is out of line.
#[inline(always)]
pub(super) fn peek(buf: &[u8], p: usize) -> Option<(usize, u8)> {
    let b = *buf.get(p)?;
    if b > b' ' {
        return Some((p, b));
    }
    peek_past_ws(buf, p)
}

#[inline(never)]
pub(super) fn peek_past_ws(buf: &[u8], p: usize) -> Option<(usize, u8)> {
    let p = skip_ws(buf, p);
    Some((p, *buf.get(p)?))
}

/// [`key_word`] of `buf[start..start + len]`, with one masked 8-byte load when the buffer
/// allows (it usually does: the key's closing quote and more follow it).
#[inline(always)]
pub(super) fn key_word_at(buf: &[u8], start: usize, len: usize) -> u64 {
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

/// A JSON number `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` starting at `p` and ending
/// where the run of number/literal bytes ends (as the tokenizer's run does); its end. None for
/// anything else, including a run cut by the buffer end.
///
/// A record's numbers are short and rarely have exponents: when the number and the byte after
/// it lie in the 16 bytes at `p`, one digit mask of those bytes ([`StopFinder::non_digits`])
/// finds the integer and fraction digits with a shift and a trailing-zero count each. Anything
/// else (an exponent, a longer number, the buffer's end near) takes [`number_general`].
#[inline(always)]
pub(super) fn number<F: StopFinder>(buf: &[u8], p: usize) -> Option<usize> {
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

/// [`number`] for any length: a whole JSON number, ending where the run ends.
#[inline(never)]
pub(super) fn number_general(buf: &[u8], p: usize) -> Option<usize> {
    let i = json_number_end(buf, p)?;
    (!is_run_byte(*buf.get(i)?)).then_some(i)
}

/// `lit` at `p` as a whole run; the position after it.
#[inline(always)]
pub(super) fn literal(buf: &[u8], p: usize, lit: &[u8]) -> Option<usize> {
    let end = p + lit.len();
    (buf.get(p..end)? == lit && !is_run_byte(*buf.get(end)?)).then_some(end)
}

/// The string whose opening quote is at `q`, validated as the tokenizer validates it: its
/// closing quote and whether it holds escapes. None on anything invalid or cut.
#[inline(always)]
pub(super) fn string<F: StopFinder>(buf: &[u8], q: usize) -> Option<(usize, bool)> {
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
                p = scan_escape(buf, p).ok()?;
            }
            0x80..=0xff => p = scan_utf8(buf, p).ok()?,
            _ => return None, // unescaped control character
        }
        p = F::find(buf, p);
    }
}

/// An array of scalars whose `[` is at `open`, skipped; the position after its `]`.
/// Containers inside go to the general path.
#[inline(never)]
pub(super) fn scalar_array<F: StopFinder>(buf: &[u8], open: usize) -> Option<usize> {
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
pub(super) fn repeats_a_key<F: StopFinder>(buf: &[u8], p: usize, until: usize, key: &[u8]) -> bool {
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
pub(super) fn skip_value<F: StopFinder>(buf: &[u8], mut p: usize) -> usize {
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
pub(super) fn scalar<F: StopFinder>(buf: &[u8], p: usize, b: u8, slot: Option<usize>, rec: &mut Record) -> Option<(usize, u32)> {
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
