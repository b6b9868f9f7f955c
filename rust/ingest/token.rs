//! A validating JSON tokenizer with Jackson's view of the input.
//!
//! Elasticsearch reads `_data` bodies with one streaming Jackson parser, and its record reader
//! acts on tokens, not on a tree: that is why a top-level array "works", why a duplicate key or a
//! comment matters, and where malformed input is noticed. This tokenizer yields the same tokens
//! over a byte buffer, validating as it goes (syntax, escapes, UTF-8 inside strings, duplicate
//! keys per object) and allowing `/* */` and `//` comments as Elasticsearch's parser does.
//!
//! Why it is fast: it is a flat state machine over a borrowed slice (no allocation per token, no
//! tree); strings are skipped with the SIMD stop-byte search of [`crate::arch`] and only keys are
//! compared, as one length plus one 8-byte word in the common case.
//!
//! The tokenizer never reads past the buffer: when a token is cut by the end of the buffer it
//! answers [`Stop::Eof`] and the caller re-feeds the whole unit once more bytes have arrived.

use std::collections::HashSet;

use super::lex::{is_run_byte, is_ws, scan_run, scan_string, skip_comment, unescape_into};

/// A string token's contents (between the quotes) as byte offsets into the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text {
    pub start: usize,
    pub end: usize,
    /// True when the contents hold a backslash escape and must be unescaped before use.
    pub escaped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    StartObject,
    EndObject,
    StartArray,
    EndArray,
    Key(Text),
    Str(Text),
    /// A number's raw token text, as byte offsets.
    Num(usize, usize),
    True,
    False,
    Null,
}

/// Why no token was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The buffer ended inside a token, or before the next one.
    Eof,
    /// Malformed input; error recovery should scan from `resume`.
    Error { resume: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Right after `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    Value,
    /// After a value inside a container.
    CommaOrEnd,
    /// Right after `[`: a value or `]`.
    ValueOrEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    object: bool,
    expect: Expect,
}

/// A key already seen in the innermost objects, for duplicate detection.
#[derive(Clone, Copy)]
struct SeenKey {
    len: u32,
    word: u64,
    text: Text,
}

/// Tokenizer state: the open containers. Outside a record only top-level arrays are open.
#[derive(Default, Clone)]
pub struct Tokenizer {
    frames: Vec<Frame>,
    /// Number of objects among `frames`; zero means "at top level".
    objects: usize,
    seen: Vec<SeenKey>,
    /// For each open object: where its keys start in `seen`, and a 64-bit Bloom filter of
    /// them, so that the usual all-distinct keys skip the comparisons.
    seen_marks: Vec<(usize, u64)>,
    /// The unescaped keys of each open object that has more than [`EXACT_KEYS_FROM`] keys,
    /// innermost last, tagged with the object's `seen_marks` index: past that many keys the
    /// Bloom filter is saturated, and comparing each key with all the others would make an
    /// object of n keys cost n² (a few hundred KB of keys could stall the server).
    exact: Vec<(usize, HashSet<Box<[u8]>>)>,
    scratch_a: Vec<u8>,
    scratch_b: Vec<u8>,
}

/// Top-level position saved at a unit start, to rewind to when the unit is cut by a chunk end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    frames: usize,
    top: Option<Frame>,
}

/// The first (up to) 8 bytes of a key as a little-endian word, for quick comparisons.
#[inline(always)]
pub fn key_word(key: &[u8]) -> u64 {
    if key.len() >= 8 {
        return u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    }
    // Built in a register: a byte-wise copy to the stack followed by one wide load would
    // stall store forwarding on every key.
    let mut w = 0u64;
    for (i, &b) in key.iter().enumerate() {
        w |= (b as u64) << (8 * i);
    }
    w
}

/// The top `bits` bits of a multiplicative hash of a key's length and first word.
#[inline(always)]
pub fn key_hash(len: usize, word: u64, mult: u64, bits: u32) -> usize {
    ((word ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(mult) >> (64 - bits)) as usize
}

/// Top-level arrays open at once, at most: Jackson's nesting limit (`StreamReadConstraints`, 1000
/// since 2.15, kept by Elasticsearch). One more `[` is a syntax error, counted like any other, so
/// that `[[[[…` (outside any document, so no document limit applies) cannot grow the stack of open
/// arrays without bound.
pub const MAX_TOP_ARRAYS: usize = 1000;

/// Keys an object may have before its duplicates are found with a hash set (see `exact`).
const EXACT_KEYS_FROM: usize = 32;

/// Buffer capacity kept between bodies; a pathological body (millions of nested objects or
/// keys) leaves no more than this behind per job.
pub(super) const KEEP_CAPACITY: usize = 1 << 12;

/// A key's bit in a per-object 64-bit Bloom filter (duplicate detection).
#[inline(always)]
pub fn key_bloom_bit(len: usize, word: u64) -> u64 {
    1u64 << key_hash(len, word, 0x2545_f491_4f6c_dd1d, 6)
}

impl Tokenizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no object is open: between records (possibly inside top-level arrays).
    #[inline]
    pub fn at_top_level(&self) -> bool {
        self.objects == 0
    }

    /// True at top level outside any top-level array: a record there is a whole unit, and
    /// ending it changes no tokenizer state.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.frames.is_empty()
    }

    /// Containers open inside the current record (0 at top level).
    #[inline]
    pub fn record_depth(&self) -> usize {
        match self.frames.iter().position(|f| f.object) {
            Some(i) => self.frames.len() - i,
            None => 0,
        }
    }

    /// Open top-level arrays.
    pub fn open_arrays(&self) -> usize {
        self.frames.len() - self.record_depth()
    }

    pub fn mark(&self) -> Mark {
        debug_assert!(self.at_top_level());
        Mark { frames: self.frames.len(), top: self.frames.last().copied() }
    }

    /// Bytes its buffers hold on to.
    #[cfg(test)]
    pub fn retained_bytes(&self) -> usize {
        use std::mem::size_of;
        self.frames.capacity() * size_of::<Frame>() + self.seen.capacity() * size_of::<SeenKey>()
            + self.seen_marks.capacity() * 16 + self.exact.capacity() * 64
            + self.scratch_a.capacity() + self.scratch_b.capacity()
    }

    /// The state of [`Tokenizer::new`] (a new body), keeping the buffers' usual capacity.
    pub fn reset(&mut self) {
        self.frames.clear();
        self.objects = 0;
        self.seen.clear();
        self.seen_marks.clear();
        self.exact.clear();
        self.frames.shrink_to(KEEP_CAPACITY);
        self.seen.shrink_to(KEEP_CAPACITY);
        self.seen_marks.shrink_to(KEEP_CAPACITY);
        self.exact.shrink_to(KEEP_CAPACITY);
    }

    pub fn rewind(&mut self, mark: Mark) {
        self.frames.truncate(mark.frames);
        if let (Some(top), Some(last)) = (mark.top, self.frames.last_mut()) {
            *last = top;
        }
        self.objects = 0;
        self.seen.clear();
        self.seen_marks.clear();
        self.exact.clear();
    }

    /// After error recovery skipped the rest of a record: drop the record's containers and
    /// count the record as one value of the enclosing top-level array, if any.
    pub fn leave_record(&mut self) {
        let depth = self.record_depth();
        self.frames.truncate(self.frames.len() - depth);
        self.objects = 0;
        self.seen.clear();
        self.seen_marks.clear();
        self.exact.clear();
        self.after_value();
    }

    /// A top-level error was recovered from: the top-level array (if any) may continue.
    pub fn after_top_level_recovery(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            f.expect = Expect::CommaOrEnd;
        }
    }

    /// Whether another `[` at top level would open more than [`MAX_TOP_ARRAYS`].
    #[inline]
    fn top_arrays_full(&self) -> bool {
        self.at_top_level() && self.frames.len() >= MAX_TOP_ARRAYS
    }

    /// Open a top-level array during top-level recovery; false (nothing opened) beyond
    /// [`MAX_TOP_ARRAYS`].
    pub fn open_top_array(&mut self) -> bool {
        debug_assert!(self.at_top_level());
        if self.top_arrays_full() {
            return false;
        }
        self.frames.push(Frame { object: false, expect: Expect::ValueOrEnd });
        true
    }

    /// Close one top-level array during top-level recovery.
    pub fn close_top_array(&mut self) {
        debug_assert!(self.at_top_level());
        self.frames.pop();
        self.after_value();
    }

    /// At top level, where a record may start: skip a pending `,` of a top-level array and
    /// report whether a value (a record) may come next.
    #[inline]
    pub fn ready_for_record(&mut self, buf: &[u8], pos: &mut usize) -> bool {
        match self.frames.last_mut() {
            None => true,
            Some(f) => match f.expect {
                Expect::Value | Expect::ValueOrEnd => true,
                Expect::CommaOrEnd if buf.get(*pos) == Some(&b',') => {
                    let mut p = *pos + 1;
                    while p < buf.len() && is_ws(buf[p]) {
                        p += 1;
                    }
                    if buf.get(p) != Some(&b'{') {
                        return false;
                    }
                    *pos = p;
                    f.expect = Expect::Value;
                    true
                }
                _ => false,
            },
        }
    }

    /// A record read by the fast path ended: it was one value of the enclosing array.
    #[inline]
    pub fn record_done(&mut self) {
        self.after_value();
    }

    #[inline]
    fn after_value(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            f.expect = Expect::CommaOrEnd;
        }
    }

    /// The next token of `buf` from `*pos`. `complete` says that `buf` ends where the input
    /// ends (a number at the very end is then whole rather than possibly cut).
    #[inline]
    pub fn next(&mut self, buf: &[u8], pos: &mut usize, complete: bool) -> Result<Tok, Stop> {
        loop {
            skip_ws(buf, pos, complete)?;
            let p = *pos;
            let b = buf[p];
            let expect = match self.frames.last() {
                Some(f) => f.expect,
                None => Expect::Value, // root: any value, no separators needed
            };
            match expect {
                Expect::Value => return self.value(buf, pos, complete),
                Expect::KeyOrEnd | Expect::Key => {
                    if b == b'"' {
                        return self.key(buf, pos);
                    }
                    if b == b'}' && expect == Expect::KeyOrEnd {
                        return Ok(self.close(pos, true));
                    }
                    return Err(Stop::Error { resume: p });
                }
                Expect::Colon => {
                    if b != b':' {
                        return Err(Stop::Error { resume: p });
                    }
                    *pos = p + 1;
                    self.set_expect(Expect::Value);
                }
                Expect::CommaOrEnd => {
                    let object = self.frames.last().is_some_and(|f| f.object);
                    match b {
                        b',' => {
                            *pos = p + 1;
                            self.set_expect(if object { Expect::Key } else { Expect::Value });
                        }
                        b'}' if object => return Ok(self.close(pos, true)),
                        b']' if !object => return Ok(self.close(pos, false)),
                        _ => return Err(Stop::Error { resume: p }),
                    }
                }
                Expect::ValueOrEnd => {
                    if b == b']' {
                        return Ok(self.close(pos, false));
                    }
                    return self.value(buf, pos, complete);
                }
            }
        }
    }

    #[inline]
    fn set_expect(&mut self, e: Expect) {
        if let Some(f) = self.frames.last_mut() {
            f.expect = e;
        }
    }

    #[inline(always)]
    fn close(&mut self, pos: &mut usize, object: bool) -> Tok {
        *pos += 1;
        self.frames.pop();
        if object {
            self.objects -= 1;
            let mark = self.seen_marks.pop().map_or(0, |m| m.0);
            self.seen.truncate(mark);
            if self.exact.last().is_some_and(|e| e.0 == self.seen_marks.len()) {
                self.exact.pop();
            }
        }
        self.after_value();
        if object {
            Tok::EndObject
        } else {
            Tok::EndArray
        }
    }

    #[inline(always)]
    fn value(&mut self, buf: &[u8], pos: &mut usize, complete: bool) -> Result<Tok, Stop> {
        let p = *pos;
        match buf[p] {
            b'"' => {
                let text = scan_string(buf, p)?;
                *pos = text.end + 1;
                self.after_value();
                Ok(Tok::Str(text))
            }
            b'{' => {
                *pos = p + 1;
                self.frames.push(Frame { object: true, expect: Expect::KeyOrEnd });
                self.objects += 1;
                self.seen_marks.push((self.seen.len(), 0));
                Ok(Tok::StartObject)
            }
            b'[' => {
                if self.top_arrays_full() {
                    return Err(Stop::Error { resume: p + 1 });
                }
                *pos = p + 1;
                self.frames.push(Frame { object: false, expect: Expect::ValueOrEnd });
                Ok(Tok::StartArray)
            }
            b if is_run_byte(b) => {
                let (tok, end) = scan_run(buf, p, complete)?;
                *pos = end;
                self.after_value();
                Ok(tok)
            }
            b if b.is_ascii() && !matches!(b, b'}' | b']' | b',' | b':') => {
                // Not a token start at all (e.g. `'`, `#`): consume it as the bad token.
                Err(Stop::Error { resume: p + 1 })
            }
            b if !b.is_ascii() => Err(Stop::Error { resume: p + 1 }),
            _ => Err(Stop::Error { resume: p }),
        }
    }

    #[inline(always)]
    fn key(&mut self, buf: &[u8], pos: &mut usize) -> Result<Tok, Stop> {
        let p = *pos;
        let text = scan_string(buf, p)?;
        *pos = text.end + 1;
        if self.is_duplicate(buf, text) {
            return Err(Stop::Error { resume: *pos });
        }
        self.set_expect(Expect::Colon);
        Ok(Tok::Key(text))
    }

    /// Jackson's strict duplicate detection, per object. A Bloom bit per key settles the usual
    /// case; only a possible repeat compares keys (escaped ones in their unescaped form).
    #[inline(always)]
    fn is_duplicate(&mut self, buf: &[u8], text: Text) -> bool {
        let raw = &buf[text.start..text.end];
        let (len, word) = (raw.len() as u32, key_word(raw));
        let object = self.seen_marks.len();
        let Some(&mut (mark, ref mut bloom)) = self.seen_marks.last_mut() else { return false };
        if self.exact.last().is_some_and(|e| e.0 + 1 == object) {
            return self.is_duplicate_exact(raw, text.escaped);
        }
        let bit = key_bloom_bit(len as usize, word);
        let maybe = *bloom & bit != 0 || text.escaped;
        // An escaped key's raw bytes say nothing about its value: compare every later key.
        *bloom |= if text.escaped { u64::MAX } else { bit };
        if maybe && self.compare_seen(buf, mark, text, len, word) {
            return true;
        }
        self.seen.push(SeenKey { len, word, text });
        if self.seen.len() - mark == EXACT_KEYS_FROM {
            self.index_keys(buf, mark, object - 1);
        }
        false
    }

    /// The object's keys so far into a hash set, which decides for its later keys.
    #[cold]
    #[inline(never)]
    fn index_keys(&mut self, buf: &[u8], mark: usize, object: usize) {
        let mut keys = HashSet::with_capacity(2 * EXACT_KEYS_FROM);
        for k in &self.seen[mark..] {
            unescape_into(&buf[k.text.start..k.text.end], k.text.escaped, &mut self.scratch_a);
            keys.insert(Box::from(&self.scratch_a[..]));
        }
        self.exact.push((object, keys));
    }

    #[cold]
    #[inline(never)]
    fn is_duplicate_exact(&mut self, raw: &[u8], escaped: bool) -> bool {
        unescape_into(raw, escaped, &mut self.scratch_a);
        let keys = &mut self.exact.last_mut().expect("an indexed object").1;
        !keys.insert(Box::from(&self.scratch_a[..]))
    }

    #[cold]
    fn compare_seen(&mut self, buf: &[u8], mark: usize, text: Text, len: u32, word: u64) -> bool {
        let raw = &buf[text.start..text.end];
        for k in &self.seen[mark..] {
            if text.escaped || k.text.escaped {
                unescape_into(&buf[k.text.start..k.text.end], k.text.escaped, &mut self.scratch_a);
                unescape_into(raw, text.escaped, &mut self.scratch_b);
                if self.scratch_a == self.scratch_b {
                    return true;
                }
            } else if k.len == len && k.word == word && buf[k.text.start..k.text.end] == *raw {
                return true;
            }
        }
        false
    }
}

/// Skip JSON whitespace and comments, leaving `*pos` at the next significant byte. On Eof,
/// `*pos` is past everything skipped completely (a comment cut by the buffer end is not).
#[inline(always)]
fn skip_ws(buf: &[u8], pos: &mut usize, complete: bool) -> Result<(), Stop> {
    loop {
        match buf.get(*pos) {
            None => return Err(Stop::Eof),
            Some(&b) if is_ws(b) => *pos += 1,
            Some(b'/') => *pos = skip_comment(buf, *pos, complete)?,
            Some(_) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<Result<Tok, Stop>> {
        tokens_of(s.as_bytes())
    }

    fn tokens_of(s: &[u8]) -> Vec<Result<Tok, Stop>> {
        let mut t = Tokenizer::new();
        let mut pos = 0;
        let mut out = vec![];
        loop {
            let r = t.next(s, &mut pos, true);
            let stop = r.is_err();
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn a_record_tokenizes() {
        let toks = tokens(r#"{"a":1,"b":[true,null],"c":{"d":"x"}}"#);
        assert_eq!(toks.len(), 15);
        assert_eq!(toks[0], Ok(Tok::StartObject));
        assert_eq!(toks[13], Ok(Tok::EndObject));
        assert_eq!(toks[14], Err(Stop::Eof));
    }

    #[test]
    fn duplicate_keys_are_errors_even_when_escaped() {
        let toks = tokens(r#"{"a":1,"a":2}"#);
        assert!(matches!(toks.last(), Some(Err(Stop::Error { resume: 10 }))));
        let toks = tokens(r#"{"a":1,"\u0061":2}"#);
        assert!(matches!(toks.last(), Some(Err(Stop::Error { .. }))));
        let toks = tokens(r#"{"\u0061":1,"a":2}"#);
        assert!(matches!(toks.last(), Some(Err(Stop::Error { .. }))));
        let toks = tokens(r#"{"a":{"a":1},"b":{"a":1}}"#);
        assert_eq!(toks.last(), Some(&Err(Stop::Eof)));
    }

    /// Objects of many keys: past EXACT_KEYS_FROM the hash set decides, with the same answers
    /// (a repeat anywhere, escaped or not, is an error at the repeat; distinct keys are not),
    /// nested objects keep sets of their own, and a closed object's set goes with it.
    #[test]
    fn duplicates_among_many_keys_are_found_exactly() {
        let object = |keys: &[String]| {
            let body: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
            format!("{{{}}}", body.join(","))
        };
        let many: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
        for n in [EXACT_KEYS_FROM - 1, EXACT_KEYS_FROM, EXACT_KEYS_FROM + 1, 500] {
            let toks = tokens(&object(&many[..n]));
            assert_eq!(toks.last(), Some(&Err(Stop::Eof)), "{n} distinct keys");
            for (first, repeat) in [(0, n - 1), (n / 2, n - 1), (n - 2, n - 1)] {
                let mut keys = many[..n].to_vec();
                keys[repeat] = keys[first].clone();
                let text = object(&keys);
                let at = text.find(&format!(",\"{}\":1}}", keys[repeat])).expect("the repeat") + keys[repeat].len() + 3;
                assert_eq!(tokens(&text).last(), Some(&Err(Stop::Error { resume: at })), "{n} keys, {first} at {repeat}");
                keys[repeat] = format!("\\u006b{}", &keys[first][1..]); // the same key, escaped
                assert!(matches!(tokens(&object(&keys)).last(), Some(Err(Stop::Error { .. }))), "{n} keys, escaped");
            }
        }
        // A nested object of many keys, then more keys of the outer object: each its own set.
        let inner = object(&many[..100]);
        let text = format!("{{\"a\":1,\"x\":{inner},{}}}", &object(&many[..100])[1..object(&many[..100]).len() - 1]);
        assert_eq!(tokens(&text).last(), Some(&Err(Stop::Eof)));
        let text = format!("{{\"k5\":1,\"x\":{inner},{}}}", &object(&many[..100])[1..object(&many[..100]).len() - 1]);
        assert!(matches!(tokens(&text).last(), Some(Err(Stop::Error { .. }))), "k5 repeats after the inner object");
        // The outer object's set is open while the inner one builds its own: a key of the inner
        // object is new to the outer one, a key of the outer object's first 100 repeats.
        let outer: Vec<String> = (0..100).map(|i| format!("\"o{i}\":1")).collect();
        for (last, repeats) in [("k5", false), ("o77", true), ("\\u006f77", true), ("o100", false)] {
            let text = format!("{{{},\"x\":{inner},\"{last}\":1}}", outer.join(","));
            let end = tokens(&text).last().cloned();
            assert_eq!(matches!(end, Some(Err(Stop::Error { .. }))), repeats, "{last}: {end:?}");
        }
    }

    #[test]
    fn missing_comma_resumes_at_the_unexpected_token() {
        let s = r#"{"time":"2" "value":"2.0"}"#;
        let toks = tokens(s);
        assert_eq!(toks.last(), Some(&Err(Stop::Error { resume: 12 })));
    }

    #[test]
    fn comments_are_whitespace() {
        let toks = tokens("/* c */ {\"a\" // x\n : 1}");
        assert_eq!(toks[0], Ok(Tok::StartObject));
        assert_eq!(toks.len(), 5);
    }

    #[test]
    fn cut_tokens_ask_for_more() {
        let mut t = Tokenizer::new();
        let cut: [&[u8]; 5] = [br#"{"ab"#, br#"{"a":12"#, br#"{"a":tr"#, b"{\"a\":\"\\u00", b"{\"a\":\"\xc3"];
        for s in cut {
            let mut t2 = t.clone();
            let mut pos = 0;
            let mut last = Ok(Tok::Null);
            while last.is_ok() {
                last = t2.next(s, &mut pos, false);
            }
            assert_eq!(last, Err(Stop::Eof), "{s:?}");
        }
        let mut pos = 0;
        assert_eq!(t.next(b"12", &mut pos, false), Err(Stop::Eof));
        assert!(matches!(t.next(b"12", &mut pos, true), Ok(Tok::Num(0, 2))));
    }

    #[test]
    fn invalid_strings_resume_at_their_quote() {
        let bad: [&[u8]; 3] = [b"{\"a\":\"x\\qy\"}", b"{\"a\":\"x\ny\"}", b"{\"a\":\"\xff\"}"];
        for s in bad {
            let toks = tokens_of(s);
            assert_eq!(toks.last(), Some(&Err(Stop::Error { resume: 5 })), "{s:?}");
        }
    }

    #[test]
    fn unescaping() {
        let mut out = vec![];
        unescape_into(br#"a\"b\\c\/\n\u00e9\ud83d\ude00\ud800x"#, true, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\"b\\c/\né😀\u{fffd}x");
    }
}
