//! Document boundaries without parsing: the carry-over splitter and malformed-input recovery.
//!
//! Both need the same knowledge and nothing more: where strings and comments are, and how deep
//! the brackets go. [`UnitScanner`] keeps that as a few words of state across chunks, so a
//! document cut by a chunk end is completed by scanning only the new bytes (every byte is looked
//! at once; no quadratic re-parsing of a large document arriving in small pieces).
//! [`skip_record`] and [`top_level_unit`] implement the recovery rule: after a syntax error the
//! rest of the record is skipped to its closing bracket, and each malformed token met on the way
//! counts one parse error.
//!
//! A *unit* is what the top level is made of: a record (`{` to its matching closer), a string, a
//! number or literal, a comment, or a single other byte (`[`, `]`, `,`, stray characters). Units
//! are where a chunk can be cut and resumed.

use super::lex::{is_json_number, is_run_byte, is_ws};
use crate::arch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnitKind {
    #[default]
    None,
    Record,
    String,
    Run,
    Comment,
    Single,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    #[default]
    Between,
    Str,
    StrEscape,
    Run,
    Slash,
    LineComment,
    BlockComment,
    BlockStar,
}

/// Resumable finder of the end of the current unit.
#[derive(Clone, Debug, Default)]
pub struct UnitScanner {
    kind: UnitKind,
    state: State,
    depth: u32,
}

impl UnitScanner {
    /// True while the pending unit cannot end at end of input (an open record, string or
    /// block comment): the body would end inside a document.
    pub fn needs_more(&self) -> bool {
        match self.kind {
            UnitKind::Record | UnitKind::String => true,
            UnitKind::Comment => matches!(self.state, State::BlockComment | State::BlockStar),
            _ => false,
        }
    }

    /// Scan `bytes`, which continue the unit. Returns how many of them complete it, or None
    /// when the unit goes on past them. Resets itself after a unit is found.
    pub fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Between => {
                    if self.kind == UnitKind::None {
                        if is_ws(b) {
                            i += 1;
                            continue;
                        }
                        self.kind = match b {
                            b'{' => UnitKind::Record,
                            b'"' => UnitKind::String,
                            b'/' => UnitKind::Comment,
                            b if is_run_byte(b) => UnitKind::Run,
                            _ => UnitKind::Single,
                        };
                        match self.kind {
                            UnitKind::Record => self.depth = 1,
                            UnitKind::String => self.state = State::Str,
                            UnitKind::Comment => self.state = State::Slash,
                            UnitKind::Run => self.state = State::Run,
                            _ => return self.done(i + 1),
                        }
                        i += 1;
                        continue;
                    }
                    // Inside a record.
                    match b {
                        b'"' => self.state = State::Str,
                        b'/' => self.state = State::Slash,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                return self.done(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                State::Str => {
                    i += arch::find_quote_or_backslash(&bytes[i..]);
                    if i < bytes.len() {
                        if bytes[i] == b'"' {
                            self.state = State::Between;
                            if self.kind == UnitKind::String {
                                return self.done(i + 1);
                            }
                        } else {
                            self.state = State::StrEscape;
                        }
                        i += 1;
                    }
                }
                State::StrEscape => {
                    self.state = State::Str;
                    i += 1;
                }
                State::Run => {
                    if !is_run_byte(b) {
                        return self.done(i);
                    }
                    i += 1;
                }
                State::Slash => match b {
                    b'/' => {
                        self.state = State::LineComment;
                        i += 1;
                    }
                    b'*' => {
                        self.state = State::BlockComment;
                        i += 1;
                    }
                    _ => {
                        self.state = State::Between;
                        if self.kind == UnitKind::Comment {
                            return self.done(i);
                        }
                    }
                },
                State::LineComment => match memchr::memchr(b'\n', &bytes[i..]) {
                    Some(k) => {
                        i += k + 1;
                        self.state = State::Between;
                        if self.kind == UnitKind::Comment {
                            return self.done(i);
                        }
                    }
                    None => i = bytes.len(),
                },
                State::BlockComment => match memchr::memchr(b'*', &bytes[i..]) {
                    Some(k) => {
                        i += k + 1;
                        self.state = State::BlockStar;
                    }
                    None => i = bytes.len(),
                },
                State::BlockStar => {
                    i += 1;
                    self.state = match b {
                        b'/' => State::Between,
                        b'*' => State::BlockStar,
                        _ => State::BlockComment,
                    };
                    if self.state == State::Between && self.kind == UnitKind::Comment {
                        return self.done(i);
                    }
                }
            }
        }
        None
    }

    fn done(&mut self, end: usize) -> Option<usize> {
        *self = UnitScanner::default();
        Some(end)
    }
}

/// Recovery ran out of input: the caller must wait for more (or fail at end of body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedMore;

/// Skip a string whose opening quote is at `q` without validating it; the position after it.
fn skip_string(buf: &[u8], q: usize) -> Result<usize, NeedMore> {
    let mut i = q + 1;
    loop {
        i += arch::find_quote_or_backslash(&buf[i..]);
        match buf.get(i) {
            None => return Err(NeedMore),
            Some(b'"') => return Ok(i + 1),
            Some(_) => {
                if i + 1 >= buf.len() {
                    return Err(NeedMore);
                }
                i += 2;
            }
        }
    }
}

/// What recovery found at one position: how far it went and whether it was malformed.
enum Item {
    Open,
    Close(u8),
    /// Consumed harmlessly up to the given position.
    Skip(usize),
    /// A malformed token ending at the given position.
    Bad(usize),
}

/// Classify the token at `p` (not whitespace) for recovery.
fn recovery_item(buf: &[u8], p: usize, complete: bool) -> Result<Item, NeedMore> {
    let b = buf[p];
    Ok(match b {
        b'{' | b'[' => Item::Open,
        b'}' | b']' => Item::Close(b),
        b',' | b':' => Item::Skip(p + 1),
        b'"' => Item::Skip(skip_string(buf, p)?),
        b'/' => match buf.get(p + 1) {
            None if !complete => return Err(NeedMore),
            Some(b'/') => match memchr::memchr(b'\n', &buf[p + 2..]) {
                Some(k) => Item::Skip(p + 2 + k + 1),
                None if complete => Item::Skip(buf.len()),
                None => return Err(NeedMore),
            },
            Some(b'*') => match memchr::memmem::find(&buf[p + 2..], b"*/") {
                Some(k) => Item::Skip(p + 2 + k + 2),
                None => return Err(NeedMore),
            },
            _ => Item::Bad(p + 1),
        },
        b if is_run_byte(b) => {
            let mut q = p;
            while q < buf.len() && is_run_byte(buf[q]) {
                q += 1;
            }
            if q == buf.len() && !complete {
                return Err(NeedMore);
            }
            let run = &buf[p..q];
            if matches!(run, b"true" | b"false" | b"null") || is_json_number(run) {
                Item::Skip(q)
            } else {
                Item::Bad(q)
            }
        }
        _ => Item::Bad(p + 1),
    })
}

/// Record-level recovery: from `from`, inside a record whose containers are `depth` deep, skip
/// to the closer that ends the record. Returns the position after it and the parse errors met.
pub fn skip_record(buf: &[u8], from: usize, mut depth: usize, complete: bool) -> Result<(usize, u32), NeedMore> {
    let mut p = from;
    let mut errors = 0u32;
    loop {
        while p < buf.len() && is_ws(buf[p]) {
            p += 1;
        }
        if p >= buf.len() {
            return Err(NeedMore);
        }
        match recovery_item(buf, p, complete)? {
            Item::Open => {
                depth += 1;
                p += 1;
            }
            Item::Close(_) => {
                depth -= 1;
                p += 1;
                if depth == 0 {
                    return Ok((p, errors));
                }
            }
            Item::Skip(q) => p = q,
            Item::Bad(q) => {
                errors += 1;
                p = q;
            }
        }
    }
}

/// One step of top-level recovery, which lasts until an object opened during it closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopStep {
    /// Only whitespace up to the end of the buffer.
    Idle,
    /// A unit was consumed; `closed_object` ends recovery.
    Unit { end: usize, errors: u32, closed_object: bool },
    /// `[` at top level: a new top-level array opens.
    OpenArray { end: usize },
    /// `]` at top level: closes a top-level array if one is open, else it is an error.
    CloseArray { end: usize },
}

/// Process the next top-level unit from `from` during top-level recovery.
pub fn top_level_unit(buf: &[u8], from: usize, complete: bool) -> Result<TopStep, NeedMore> {
    let mut p = from;
    while p < buf.len() && is_ws(buf[p]) {
        p += 1;
    }
    if p >= buf.len() {
        return Ok(TopStep::Idle);
    }
    Ok(match recovery_item(buf, p, complete)? {
        Item::Open if buf[p] == b'[' => TopStep::OpenArray { end: p + 1 },
        Item::Open => {
            let (end, errors) = skip_record(buf, p + 1, 1, complete)?;
            TopStep::Unit { end, errors, closed_object: buf[end - 1] == b'}' }
        }
        Item::Close(b']') => TopStep::CloseArray { end: p + 1 },
        Item::Close(_) => TopStep::Unit { end: p + 1, errors: 1, closed_object: false },
        Item::Skip(end) => TopStep::Unit { end, errors: 0, closed_object: false },
        Item::Bad(end) => TopStep::Unit { end, errors: 1, closed_object: false },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(input: &str) -> Vec<String> {
        let mut s = UnitScanner::default();
        let mut out = vec![];
        let mut rest = input.as_bytes();
        while let Some(k) = s.scan(rest) {
            out.push(String::from_utf8_lossy(&rest[..k]).trim().to_string());
            rest = &rest[k..];
        }
        out
    }

    #[test]
    fn units_of_a_body() {
        let got = units("{\"a\":\"}\\\"\"}\n[ {\"b\":[1,{}]} , 12 true \"s\" /* } */ // x\n :");
        assert_eq!(
            got,
            vec!["{\"a\":\"}\\\"\"}", "[", "{\"b\":[1,{}]}", ",", "12", "true", "\"s\"", "/* } */", "// x", ":"]
        );
    }

    /// Feed `input` in pieces of `step` bytes; the units found, as strings.
    fn units_chunked(input: &[u8], step: usize) -> Vec<String> {
        let mut s = UnitScanner::default();
        let mut out = vec![];
        let mut unit = Vec::new();
        for chunk in input.chunks(step) {
            let mut rest = chunk;
            while let Some(k) = s.scan(rest) {
                unit.extend_from_slice(&rest[..k]);
                out.push(String::from_utf8_lossy(&unit).trim().to_string());
                unit.clear();
                rest = &rest[k..];
            }
            unit.extend_from_slice(rest);
        }
        out
    }

    #[test]
    fn any_chunking_gives_the_same_boundaries() {
        let input = b"{\"a\":\"x\\\"}\"} {\"b\":{\"c\":[]}}/**/12 [\"s\\\\\"//c\n ";
        let whole = units_chunked(input, input.len());
        assert_eq!(whole.len(), 7, "{whole:?}");
        for step in 1..input.len() {
            assert_eq!(units_chunked(input, step), whole, "step {step}");
        }
    }

    #[test]
    fn record_recovery_skips_to_the_record_end_counting_bad_tokens() {
        let buf = br#"{"time":"2" "value":"2.0"} {"next":1}"#;
        assert_eq!(skip_record(buf, 12, 1, true), Ok((26, 0)));
        let buf = br#"{"a": xyz ' 1 ]}"#;
        assert_eq!(skip_record(buf, 5, 1, true), Ok((15, 2)));
        assert_eq!(skip_record(br#"{"a":[1,"#, 5, 1, false), Err(NeedMore));
    }

    #[test]
    fn top_level_recovery_swallows_the_next_record() {
        let buf = br#":"2.0"} {"time":3}"#;
        let mut p = 0;
        let mut steps = vec![];
        loop {
            match top_level_unit(buf, p, true).unwrap() {
                TopStep::Unit { end, errors, closed_object } => {
                    steps.push((errors, closed_object));
                    p = end;
                    if closed_object {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(steps, vec![(0, false), (0, false), (1, false), (0, true)]);
    }
}
