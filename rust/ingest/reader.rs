//! Elasticsearch's record reader, token for token.
//!
//! A record is whatever the tokens yield up to the `}` that closes the object at nesting level
//! zero; tokens that are not keys are ignored at that level, which is why top-level arrays,
//! commas and scalars are harmless. Nested objects flatten into dotted names. A scalar or an
//! array counts one field, `null` counts nothing. Arrays of a field the job uses are collected
//! as text joined by `,` until the first `]` (even a nested one); arrays of other fields are
//! skipped whole. These rules, quirks included, are `post-data.md` §2.1.
//!
//! On a syntax error the fields read so far are kept and the rest of the record is skipped
//! (see [`super::scanner`]); the partial record then goes through the pipeline like any other.
//!
//! Why it is fast: one pass over the tokens with no allocation per record; names of nested
//! fields are only built when a configured name contains a dot.

use super::fields::{FieldSet, Record, Slot};
use super::scanner::{self, NeedMore};
use super::lex::unescape_into;
use super::token::{Mark, Stop, Text, Tok, Tokenizer};

/// Why reading stopped without a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// The buffer ended between top-level units.
    End,
    /// The buffer ended inside a unit.
    NeedMore,
    /// A syntax error at top level (outside any record): top-level recovery must run.
    TopLevelError { resume: usize },
}

/// A record was read; `errors` parse errors were met while recovering inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    pub errors: u32,
}

/// Reusable reader state.
#[derive(Default)]
pub struct Reader {
    /// Lengths of `path` for each open nested object (dotted-name prefixes).
    prefix_lens: Vec<usize>,
    path: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Reader {
    /// Bytes its buffers hold on to.
    #[cfg(test)]
    pub fn retained_bytes(&self) -> usize {
        self.path.capacity() + self.key.capacity() + self.value.capacity() + 8 * self.prefix_lens.capacity()
    }

    /// Give back what a deeply nested or long-keyed body made the buffers grow to.
    pub fn trim(&mut self, keep: usize) {
        for buffer in [&mut self.path, &mut self.key, &mut self.value] {
            buffer.clear();
            buffer.shrink_to(keep);
        }
        self.prefix_lens.clear();
        self.prefix_lens.shrink_to(keep);
    }

    /// Read the next record of `buf` from `*pos` into `rec`.
    ///
    /// `safe` is updated to every position (with the tokenizer state there) where reading may
    /// later resume after the buffer is cut: between top-level units.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        tok: &mut Tokenizer,
        fields: &FieldSet,
        buf: &[u8],
        pos: &mut usize,
        complete: bool,
        rec: &mut Record,
        safe: &mut (usize, Mark),
    ) -> Result<Read, Pause> {
        rec.clear();
        self.prefix_lens.clear();
        self.path.clear();
        loop {
            let t = match tok.next(buf, pos, complete) {
                Ok(t) => t,
                Err(Stop::Eof) => {
                    return Err(if tok.at_top_level() && self.prefix_lens.is_empty() && rec.n == 0 {
                        Pause::End
                    } else {
                        Pause::NeedMore
                    })
                }
                Err(Stop::Error { resume }) => return self.recover(tok, buf, pos, resume, complete),
            };
            match t {
                Tok::EndObject => {
                    if self.prefix_lens.is_empty() {
                        if tok.at_top_level() {
                            *safe = (*pos, tok.mark());
                        }
                        return Ok(Read { errors: 0 });
                    }
                    let len = self.prefix_lens.pop().unwrap_or(0);
                    self.path.truncate(len);
                }
                Tok::Key(k) => {
                    if let Err(stop) = self.field_value(tok, fields, buf, pos, complete, rec, k) {
                        return match stop {
                            Stop::Eof => Err(Pause::NeedMore),
                            Stop::Error { resume } => self.recover(tok, buf, pos, resume, complete),
                        };
                    }
                }
                _ => {
                    if tok.at_top_level() {
                        *safe = (*pos, tok.mark());
                    }
                }
            }
        }
    }

    fn recover(
        &mut self,
        tok: &mut Tokenizer,
        buf: &[u8],
        pos: &mut usize,
        resume: usize,
        complete: bool,
    ) -> Result<Read, Pause> {
        if tok.at_top_level() {
            return Err(Pause::TopLevelError { resume });
        }
        match scanner::skip_record(buf, resume, tok.record_depth(), complete) {
            Ok((end, errors)) => {
                *pos = end;
                tok.leave_record();
                Ok(Read { errors })
            }
            Err(NeedMore) => Err(Pause::NeedMore),
        }
    }

    /// The dotted name of key `k` at the current nesting, in `self.key`.
    #[inline]
    fn name<'a>(&'a mut self, buf: &'a [u8], k: Text) -> &'a [u8] {
        if self.prefix_lens.is_empty() && !k.escaped {
            return &buf[k.start..k.end];
        }
        unescape_into(&buf[k.start..k.end], k.escaped, &mut self.value);
        self.key.clear();
        self.key.extend_from_slice(&self.path);
        self.key.extend_from_slice(&self.value);
        &self.key
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn field_value(
        &mut self,
        tok: &mut Tokenizer,
        fields: &FieldSet,
        buf: &[u8],
        pos: &mut usize,
        complete: bool,
        rec: &mut Record,
        k: Text,
    ) -> Result<(), Stop> {
        let v = tok.next(buf, pos, complete)?;
        let nested = !self.prefix_lens.is_empty();
        let slot = if nested && !fields.any_dotted() {
            None
        } else {
            let name = self.name(buf, k);
            fields.lookup(name)
        };
        match v {
            Tok::StartObject => {
                // Nested object: its leaves are named `<key>.<leaf>`.
                self.prefix_lens.push(self.path.len());
                if fields.any_dotted() {
                    unescape_into(&buf[k.start..k.end], k.escaped, &mut self.value);
                    self.path.extend_from_slice(&self.value);
                    self.path.push(b'.');
                }
            }
            Tok::StartArray => {
                rec.n += 1;
                match slot {
                    Some(i) => self.collect_array(tok, buf, pos, complete, rec, i)?,
                    None => skip_array(tok, buf, pos, complete)?,
                }
            }
            Tok::Str(t) => {
                rec.n += 1;
                if let Some(i) = slot {
                    let value = if t.escaped {
                        let s = rec.arena.len();
                        unescape_into(&buf[t.start..t.end], true, &mut self.value);
                        rec.arena.extend_from_slice(&self.value);
                        Slot::Arena(s, rec.arena.len())
                    } else {
                        Slot::Input(t.start, t.end)
                    };
                    rec.set(i, value);
                }
            }
            Tok::Num(s, e) => {
                rec.n += 1;
                if let Some(i) = slot {
                    rec.set(i, Slot::Input(s, e));
                }
            }
            Tok::True | Tok::False => {
                rec.n += 1;
                if let Some(i) = slot {
                    rec.set(i, Slot::Static(if v == Tok::True { b"true" } else { b"false" }));
                }
            }
            Tok::Null => {}
            // The tokenizer only yields a value after a key.
            Tok::EndObject | Tok::EndArray | Tok::Key(_) => {}
        }
        Ok(())
    }

    /// Collect an array's scalars as `a,b,c` until the first `]` of any depth (Elasticsearch
    /// stops there; what follows a nested array is then read as ordinary tokens).
    fn collect_array(
        &mut self,
        tok: &mut Tokenizer,
        buf: &[u8],
        pos: &mut usize,
        complete: bool,
        rec: &mut Record,
        i: usize,
    ) -> Result<(), Stop> {
        let start = rec.arena.len();
        let mut first = true;
        loop {
            let (s, e, escaped): (usize, usize, bool) = match tok.next(buf, pos, complete)? {
                Tok::EndArray => break,
                Tok::Str(t) => (t.start, t.end, t.escaped),
                Tok::Num(s, e) => (s, e, false),
                Tok::True => {
                    push_item(&mut rec.arena, &mut first, b"true");
                    continue;
                }
                Tok::False => {
                    push_item(&mut rec.arena, &mut first, b"false");
                    continue;
                }
                _ => continue, // null, `{`, `}`, keys, nested `[`
            };
            unescape_into(&buf[s..e], escaped, &mut self.value);
            push_item(&mut rec.arena, &mut first, &self.value);
        }
        rec.set(i, Slot::Arena(start, rec.arena.len()));
        Ok(())
    }
}

#[inline]
fn push_item(arena: &mut Vec<u8>, first: &mut bool, item: &[u8]) {
    if !*first {
        arena.push(b',');
    }
    *first = false;
    arena.extend_from_slice(item);
}

/// Skip an array (and everything in it) whose `[` was just read.
fn skip_array(tok: &mut Tokenizer, buf: &[u8], pos: &mut usize, complete: bool) -> Result<(), Stop> {
    let mut depth = 1usize;
    while depth > 0 {
        match tok.next(buf, pos, complete)? {
            Tok::StartArray | Tok::StartObject => depth += 1,
            Tok::EndArray | Tok::EndObject => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}
