//! The fast path for the common record: one flat object of plain keys and scalar values.
//!
//! Most records are `{"time":…,"kpi":…,"host":"…"}`: no nesting, no escapes, no errors. For
//! those, one straight loop reads keys and values directly from the bytes, with the duplicate
//! check reduced to a Bloom bit and no per-token state machine. Anything else — an escape, a
//! nested value, a possible duplicate, a syntax error, the end of the buffer — makes it give up
//! (`None`) before any effect, and the general tokenizer and reader take the record from its
//! `{`. So the fast path decides nothing the general path would decide differently.

use super::fields::{FieldSet, Record, Slot};
use super::token::{is_json_number, is_run_byte, is_ws, key_bloom_bit, key_word};
use crate::arch;

#[inline(always)]
fn skip_ws(buf: &[u8], mut p: usize) -> usize {
    while p < buf.len() && is_ws(buf[p]) {
        p += 1;
    }
    p
}

/// A plain string (no escapes, controls or non-ASCII) opening at `q`: its end quote.
#[inline(always)]
fn plain_string(buf: &[u8], q: usize) -> Option<usize> {
    let start = q + 1;
    let end = start + arch::find_string_stop(buf.get(start..)?);
    (buf.get(end) == Some(&b'"')).then_some(end)
}

/// Read the flat record whose `{` is at `open`; the position after its `}`.
#[inline]
pub fn flat_record(buf: &[u8], open: usize, fields: &FieldSet, rec: &mut Record) -> Option<usize> {
    rec.clear();
    let mut bloom = 0u64;
    let mut p = skip_ws(buf, open + 1);
    if *buf.get(p)? == b'}' {
        return Some(p + 1);
    }
    loop {
        if *buf.get(p)? != b'"' {
            return None;
        }
        let key_end = plain_string(buf, p)?;
        let key = &buf[p + 1..key_end];
        let word = key_word(key);
        let bit = key_bloom_bit(key.len(), word);
        if bloom & bit != 0 {
            return None; // possibly a duplicate: the general path decides
        }
        bloom |= bit;
        p = skip_ws(buf, key_end + 1);
        if *buf.get(p)? != b':' {
            return None;
        }
        p = skip_ws(buf, p + 1);
        let slot = fields.lookup(key);
        match *buf.get(p)? {
            b'"' => {
                let end = plain_string(buf, p)?;
                rec.n += 1;
                if let Some(i) = slot {
                    rec.slots[i] = Slot::Input(p + 1, end);
                }
                p = end + 1;
            }
            b if is_run_byte(b) => {
                let mut q = p;
                while q < buf.len() && is_run_byte(buf[q]) {
                    q += 1;
                }
                if q == buf.len() {
                    return None;
                }
                let value: Option<&'static [u8]> = match &buf[p..q] {
                    b"true" => Some(b"true"),
                    b"false" => Some(b"false"),
                    b"null" => None,
                    run if is_json_number(run) => {
                        rec.n += 1;
                        if let Some(i) = slot {
                            rec.slots[i] = Slot::Input(p, q);
                        }
                        p = q;
                        Some(b"")
                    }
                    _ => return None,
                };
                if p != q {
                    if let Some(v) = value {
                        rec.n += 1;
                        if let Some(i) = slot {
                            rec.slots[i] = Slot::Static(v);
                        }
                    }
                    p = q;
                }
            }
            _ => return None, // nested object or array, or malformed
        }
        p = skip_ws(buf, p);
        match *buf.get(p)? {
            b',' => p = skip_ws(buf, p + 1),
            b'}' => return Some(p + 1),
            _ => return None,
        }
    }
}
