//! SMILE bodies (`Content-Type: application/smile`), Jackson's binary JSON, turned into JSON text
//! for the ordinary reader.
//!
//! Elasticsearch reads a SMILE `_data` body piece by piece, each piece running up to and
//! including the next 0xFF byte (SMILE's end-of-content marker, which encoded content never
//! holds outside raw binary); bytes after the last 0xFF are never read. Each piece is parsed as
//! a SMILE document: its `:)\n` header, then root values until the marker (or a second header,
//! where Jackson stops). Here each piece is gathered whole ([`SmileSplitter`]) and transcoded
//! ([`transcode`]) one root value at a time: the token stream is kept exactly, so records,
//! fields, duplicates and the rest are judged by the JSON path as they would be for the same
//! documents sent as JSON. Scalars become the text Jackson gives for them (`getText()`), which
//! is what Elasticsearch reads: Java's `Float`/`Double`/`BigDecimal` `toString` for numbers
//! (quoted when not finite, as JSON has no `NaN`), base64 for binary.
//!
//! Not on the fast path: SMILE is what the Java test runner may send, not what shippers send.
//! Format: the public Smile format specification (FasterXML, 1.0).

use std::fmt::Write as _; // `write!` into a String
use std::io::Write as _; // and into a Vec<u8>

use super::stream::StreamError;

#[derive(Debug, PartialEq, Eq)]
pub enum SmileError {
    /// Not a well-formed SMILE document.
    Malformed,
    /// A root value's JSON text would pass the bound given (shared strings can make it many
    /// times the size of its SMILE).
    TooLarge,
}

type Result<T> = std::result::Result<T, SmileError>;

const HEADER: &[u8; 3] = b":)\n";
const END_OF_CONTENT: u8 = 0xFF;
const END_OF_STRING: u8 = 0xFC;
/// Shared-string tables hold at most this many entries, then start again empty.
const MAX_SHARED: usize = 1024;
/// Containers nest at most this deep (Jackson's default limit since 2.15).
const MAX_DEPTH: usize = 1000;

/// Gathers a body's pieces: each ends with (and holds) a 0xFF.
#[derive(Default)]
pub struct SmileSplitter {
    piece: Vec<u8>,
}

impl SmileSplitter {
    /// Feed the next bytes of the body; `on_piece` gets each piece completed by a 0xFF.
    /// Errors of `on_piece` stop the feed and are returned.
    pub fn feed<E>(&mut self, mut data: &[u8], mut on_piece: impl FnMut(&[u8]) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
        while let Some(at) = memchr::memchr(END_OF_CONTENT, data) {
            let done = if self.piece.is_empty() {
                on_piece(&data[..=at])
            } else {
                self.piece.extend_from_slice(&data[..=at]);
                let r = on_piece(&self.piece);
                self.piece.clear();
                r
            };
            done?;
            data = &data[at + 1..];
        }
        self.piece.extend_from_slice(data);
        Ok(())
    }

    /// Bytes of the piece still open (for the document size limit).
    pub fn pending(&self) -> usize {
        self.piece.len()
    }

    /// The end of the body: what follows the last 0xFF is not read, as in Elasticsearch.
    pub fn finish(&mut self) {
        self.piece = Vec::new();
    }
}

/// A SMILE request body in progress: its pieces, transcoded as each completes.
pub struct SmileBody {
    splitter: SmileSplitter,
    json: Vec<u8>,
    /// The most SMILE bytes a piece may have.
    max_piece: usize,
    /// The most JSON text a root value may make (shared strings can make that many times the
    /// size of its SMILE): the job's document limit.
    max_document: usize,
}

impl SmileBody {
    pub fn new(max_piece: usize, max_document: usize) -> Self {
        SmileBody { splitter: SmileSplitter::default(), json: Vec::new(), max_piece, max_document }
    }

    /// Feed the next bytes of the body; `read` gets the JSON text of every root value of every
    /// piece completed.
    pub fn feed(&mut self, data: &[u8], mut read: impl FnMut(&[u8]) -> std::result::Result<(), StreamError>) -> std::result::Result<(), StreamError> {
        let (json, max_piece, max_document) = (&mut self.json, self.max_piece, self.max_document);
        let piece_too_large = StreamError::DocumentTooLarge { limit: max_piece };
        self.splitter.feed(data, |piece| {
            if piece.len() > max_piece {
                return Err(piece_too_large);
            }
            let errors = |e| match e {
                SmileError::Malformed => StreamError::Malformed,
                SmileError::TooLarge => StreamError::DocumentTooLarge { limit: max_document },
            };
            let done = transcode(piece, max_document, json, &mut read, errors);
            if json.capacity() > KEEP_JSON_BYTES {
                *json = Vec::new(); // a large document's text is not kept for the next one
            }
            done
        })?;
        if self.splitter.pending() > max_piece {
            return Err(piece_too_large);
        }
        Ok(())
    }

    /// The end of the body (see [`SmileSplitter::finish`]).
    pub fn finish(&mut self) {
        self.splitter.finish();
    }
}

/// The JSON text buffer a body keeps between pieces.
const KEEP_JSON_BYTES: usize = 1 << 20;

/// The JSON text of a whole `_data` SMILE body as the engine reads it (a root value per line),
/// with no size limit.
pub fn body_to_json(body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() * 2);
    let mut smile = SmileBody::new(usize::MAX, usize::MAX);
    smile
        .feed(body, |value| {
            out.extend_from_slice(value);
            Ok(())
        })
        .map_err(|_| SmileError::Malformed)?;
    smile.finish();
    Ok(out)
}

/// The JSON text of the first root value of a SMILE document, at most `max_json` bytes:
/// another API's request body, which Elasticsearch parses as one document. None when it holds
/// no value.
pub fn document_to_json(doc: &[u8], max_json: usize) -> Result<Option<Vec<u8>>> {
    let mut json = Vec::new();
    let mut first = None;
    let mut keep = |value: &[u8]| -> Result<()> {
        if first.is_none() {
            first = Some(value.to_vec());
        }
        Ok(())
    };
    transcode(doc, max_json, &mut json, &mut keep, |e| e)?;
    Ok(first)
}

/// Hands `sink` the JSON text of each root value of SMILE document `piece` (a line each, in
/// `buf`), each at most `max_value` bytes; stops at the end-of-content marker, the end, or a
/// second header (where Jackson's parser ends the document).
pub fn transcode<E>(piece: &[u8], max_value: usize, buf: &mut Vec<u8>, sink: &mut impl FnMut(&[u8]) -> std::result::Result<(), E>,
                    errors: impl Fn(SmileError) -> E) -> std::result::Result<(), E> {
    let mut d = Decoder { buf: piece, pos: 0, shared_names: None, shared_values: None, out: buf, max_out: max_value, depth: 0 };
    d.header().map_err(&errors)?;
    loop {
        match d.buf.get(d.pos) {
            None | Some(&END_OF_CONTENT) => return Ok(()),
            Some(_) if d.buf[d.pos..].starts_with(HEADER) => return Ok(()),
            Some(_) => {
                d.out.clear();
                d.value().map_err(&errors)?;
                d.out.push(b'\n');
                sink(d.out)?;
            }
        }
    }
}

struct Decoder<'a, 'o> {
    buf: &'a [u8],
    pos: usize,
    /// Tables of already-seen names and short values, when the header enables them.
    shared_names: Option<Vec<&'a [u8]>>,
    shared_values: Option<Vec<&'a [u8]>>,
    out: &'o mut Vec<u8>,
    max_out: usize,
    /// Containers open around the value being read.
    depth: usize,
}

impl<'a> Decoder<'a, '_> {
    fn header(&mut self) -> Result<()> {
        let head = self.take(4)?;
        if &head[..3] != HEADER || head[3] & 0xF0 != 0 {
            return Err(SmileError::Malformed); // another version, or no header (Elasticsearch requires one)
        }
        self.shared_names = (head[3] & 0x01 != 0).then(Vec::new);
        self.shared_values = (head[3] & 0x02 != 0).then(Vec::new);
        Ok(())
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(SmileError::Malformed)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(SmileError::Malformed)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Bytes up to the end-of-string marker (which is consumed).
    fn until_end_marker(&mut self) -> Result<&'a [u8]> {
        let len = memchr::memchr(END_OF_STRING, &self.buf[self.pos..]).ok_or(SmileError::Malformed)?;
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len + 1;
        Ok(s)
    }

    /// An unsigned variable-length integer: 7 bits a byte, the last byte marked by its high
    /// bit and holding 6.
    fn vint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for _ in 0..10 {
            let b = self.byte()?;
            if b & 0x80 != 0 {
                return Ok((v << 6) | u64::from(b & 0x3F));
            }
            v = (v << 7) | u64::from(b);
        }
        Err(SmileError::Malformed)
    }

    /// `n` bits spread over 7-bit bytes, most significant first (float and double).
    fn seven_bit_word(&mut self, bytes: usize) -> Result<u64> {
        let mut v: u64 = 0;
        for &b in self.take(bytes)? {
            if b & 0x80 != 0 {
                return Err(SmileError::Malformed);
            }
            v = (v << 7) | u64::from(b);
        }
        Ok(v)
    }

    /// Binary data sent 7 bits a byte (every 7 bytes as 8, a last group of n bytes as n + 1).
    fn seven_bit_binary(&mut self) -> Result<Vec<u8>> {
        let len = usize::try_from(self.vint()?).map_err(|_| SmileError::Malformed)?;
        let encoded = (len / 7).checked_mul(8).and_then(|n| n.checked_add(if len % 7 == 0 { 0 } else { len % 7 + 1 }));
        let src = self.take(encoded.ok_or(SmileError::Malformed)?)?; // there, before anything is reserved
        let mut out = Vec::with_capacity(len);
        for group in src.chunks(8) {
            let n = group.len();
            if n == 8 {
                let v = group.iter().fold(0u64, |v, &b| (v << 7) | u64::from(b & 0x7F));
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            } else {
                // n - 1 whole bytes: n - 1 groups of 7 bits, then the rest right-aligned.
                let mut v = u64::from(group[0] & 0x7F);
                for (i, &b) in group[1..n - 1].iter().enumerate() {
                    v = (v << 7) | u64::from(b & 0x7F);
                    out.push((v >> (7 - (i + 1))) as u8);
                }
                v <<= n - 1;
                out.push((v as u8).wrapping_add(group[n - 1] & 0x7F));
            }
        }
        Ok(out)
    }

    /// A `BigInteger`'s two's-complement bytes (Java refuses none).
    fn big_integer_bytes(&mut self) -> Result<Vec<u8>> {
        let bytes = self.seven_bit_binary()?;
        if bytes.is_empty() {
            return Err(SmileError::Malformed);
        }
        Ok(bytes)
    }

    fn value(&mut self) -> Result<()> {
        if self.out.len() > self.max_out {
            return Err(SmileError::TooLarge);
        }
        let b = self.byte()?;
        match b {
            0x01..=0x1F => self.shared_value(usize::from(b - 1))?,
            0x20 => self.out.extend_from_slice(b"\"\""),
            0x21 => self.out.extend_from_slice(b"null"),
            0x22 => self.out.extend_from_slice(b"false"),
            0x23 => self.out.extend_from_slice(b"true"),
            0x24 => {
                let z = self.vint()?;
                u32::try_from(z).map_err(|_| SmileError::Malformed)?; // a 32-bit int
                let _ = write!(self.out, "{}", unzigzag(z));
            }
            0x25 => {
                let z = self.vint()?;
                let _ = write!(self.out, "{}", unzigzag(z));
            }
            0x26 => {
                let bytes = self.big_integer_bytes()?;
                self.out.extend_from_slice(big_integer(&bytes).as_bytes());
            }
            0x28 => {
                let bits = self.seven_bit_word(5)? as u32;
                java_float(f64::from(f32::from_bits(bits)), &f32::from_bits(bits).to_string(), self.out);
            }
            0x29 => {
                let v = f64::from_bits(self.seven_bit_word(10)?);
                java_float(v, &v.to_string(), self.out);
            }
            0x2A => {
                let z = self.vint()?;
                u32::try_from(z).map_err(|_| SmileError::Malformed)?; // Java's int scale
                let scale = unzigzag(z);
                let bytes = self.big_integer_bytes()?;
                let text = big_decimal(&big_integer(&bytes), scale);
                self.out.extend_from_slice(text.as_bytes());
            }
            0x40..=0x5F => self.text_value(usize::from(b & 0x1F) + 1)?,
            0x60..=0x7F => self.text_value(usize::from(b & 0x1F) + 33)?,
            0x80..=0x9F => self.text_value(usize::from(b & 0x1F) + 2)?,
            0xA0..=0xBF => self.text_value(usize::from(b & 0x1F) + 34)?,
            0xC0..=0xDF => {
                let _ = write!(self.out, "{}", unzigzag(u64::from(b & 0x1F)));
            }
            0xE0 | 0xE4 => {
                let s = self.until_end_marker()?;
                json_string(s, self.out)?;
            }
            0xE8 => {
                let bytes = self.seven_bit_binary()?;
                base64_string(&bytes, self.out);
            }
            0xEC..=0xEF => {
                let ix = (usize::from(b & 0x03) << 8) | usize::from(self.byte()?);
                self.shared_value(ix)?
            }
            0xF8 => self.array()?,
            0xFA => self.object()?,
            0xFD => {
                let len = usize::try_from(self.vint()?).map_err(|_| SmileError::Malformed)?;
                let bytes = self.take(len)?;
                base64_string(bytes, self.out);
            }
            _ => return Err(SmileError::Malformed),
        }
        Ok(())
    }

    /// A tiny or short string (at most 65 bytes): every one is shared when sharing is on.
    fn text_value(&mut self, len: usize) -> Result<()> {
        let s = self.take(len)?;
        json_string(s, self.out)?;
        if let Some(table) = &mut self.shared_values {
            remember(table, s);
        }
        Ok(())
    }

    fn shared_value(&mut self, ix: usize) -> Result<()> {
        let s = *self.shared_values.as_ref().and_then(|t| t.get(ix)).ok_or(SmileError::Malformed)?;
        json_string(s, self.out)
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SmileError::Malformed);
        }
        Ok(())
    }

    fn array(&mut self) -> Result<()> {
        self.enter()?;
        self.out.push(b'[');
        let mut first = true;
        loop {
            if *self.buf.get(self.pos).ok_or(SmileError::Malformed)? == 0xF9 {
                self.pos += 1;
                self.out.push(b']');
                self.depth -= 1;
                return Ok(());
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.value()?;
        }
    }

    fn object(&mut self) -> Result<()> {
        self.enter()?;
        self.out.push(b'{');
        let mut first = true;
        loop {
            let b = self.byte()?;
            if b == 0xFB {
                self.out.push(b'}');
                self.depth -= 1;
                return Ok(());
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            let name: &[u8] = match b {
                0x20 => b"",
                0x30..=0x33 => {
                    let ix = (usize::from(b & 0x03) << 8) | usize::from(self.byte()?);
                    self.shared_name(ix)?
                }
                0x34 => {
                    let s = self.until_end_marker()?;
                    self.new_name(s)
                }
                0x40..=0x7F => self.shared_name(usize::from(b & 0x3F))?,
                0x80..=0xBF => {
                    let s = self.take(usize::from(b & 0x3F) + 1)?;
                    self.new_name(s)
                }
                0xC0..=0xF7 => {
                    let s = self.take(usize::from(b & 0x3F) + 2)?;
                    self.new_name(s)
                }
                _ => return Err(SmileError::Malformed),
            };
            json_string(name, self.out)?;
            self.out.push(b':');
            self.value()?;
        }
    }

    fn new_name(&mut self, s: &'a [u8]) -> &'a [u8] {
        if let Some(table) = &mut self.shared_names {
            remember(table, s);
        }
        s
    }

    fn shared_name(&self, ix: usize) -> Result<&'a [u8]> {
        self.shared_names.as_ref().and_then(|t| t.get(ix)).copied().ok_or(SmileError::Malformed)
    }
}

/// The signed value of a ZigZag-encoded one (0, -1, 1, -2, …).
fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

fn remember<'a>(table: &mut Vec<&'a [u8]>, s: &'a [u8]) {
    if table.len() == MAX_SHARED {
        table.clear();
    }
    table.push(s);
}

/// A JSON string of UTF-8 text `s`.
fn json_string(s: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let s = std::str::from_utf8(s).map_err(|_| SmileError::Malformed)?;
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
    Ok(())
}

/// Binary as Jackson's `getText()` gives it: base64 (MIME alphabet, no line feeds), quoted.
fn base64_string(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for group in bytes.chunks(3) {
        let v = group.iter().enumerate().fold(0u32, |v, (i, &b)| v | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= group.len() { ALPHABET[(v >> (18 - 6 * i) & 0x3F) as usize] } else { b'=' });
        }
    }
    out.push(b'"');
}

/// The decimal text of a two's-complement big-endian integer (Java's `BigInteger` bytes).
fn big_integer(bytes: &[u8]) -> String {
    let negative = bytes.first().is_some_and(|&b| b & 0x80 != 0);
    // Magnitude, as base-1e9 limbs (least significant first).
    let mut mag: Vec<u8> = bytes.to_vec();
    if negative {
        // two's complement: invert and add one
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    let mut limbs: Vec<u32> = Vec::new();
    for &byte in &mag {
        let mut carry = u64::from(byte);
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut text = String::new();
    if negative && limbs.iter().any(|&l| l != 0) {
        text.push('-');
    }
    match limbs.split_last() {
        None => text.push('0'),
        Some((top, rest)) => {
            let _ = write!(text, "{top}");
            for limb in rest.iter().rev() {
                let _ = write!(text, "{limb:09}");
            }
        }
    }
    text
}

/// Java's `BigDecimal.toString()` of `unscaled` × 10^-`scale`: plain when the scale is not
/// negative and the adjusted exponent is at least -6, else scientific (`1.23E+5`).
fn big_decimal(unscaled: &str, scale: i64) -> String {
    let (sign, digits) = unscaled.strip_prefix('-').map_or(("", unscaled), |d| ("-", d));
    let adjusted = digits.len() as i64 - 1 - scale;
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as usize;
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            return format!("{sign}{int}.{frac}");
        }
        return format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()));
    }
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
    format!("{sign}{mantissa}E{}{adjusted}", if adjusted >= 0 { "+" } else { "" })
}

/// Java's `Float.toString`/`Double.toString` (JDK 19+: the shortest digits that round-trip,
/// which Rust's `Display` also gives, as `shortest`), laid out as Java does: plain for
/// 10^-3 <= |v| < 10^7 with at least one fractional digit, else `d.dddE±n`; `NaN` and the
/// infinities quoted, as JSON cannot hold them bare (the text is what counts). (Where one digit
/// would do, Java may print a closer two-digit form; that happens only for a few subnormal
/// values, such as `4.9E-324` for the smallest double, and is not reproduced.)
fn java_float(v: f64, shortest: &str, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
        return;
    }
    let (sign, text) = shortest.strip_prefix('-').map_or(("", shortest), |t| ("-", t));
    // Rust prints plain decimals only: split into significant digits and a decimal exponent.
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let all = format!("{int}{frac}");
    let lead = all.bytes().take_while(|&b| b == b'0').count();
    let digits = all[lead..].trim_end_matches('0');
    out.extend_from_slice(sign.as_bytes());
    if digits.is_empty() {
        out.extend_from_slice(b"0.0");
        return;
    }
    // value = 0.DIGITS × 10^exp10
    let exp10 = int.len() as i64 - lead as i64;
    if (-2..=7).contains(&exp10) {
        let text = if exp10 <= 0 {
            format!("0.{}{digits}", "0".repeat((-exp10) as usize))
        } else if digits.len() as i64 <= exp10 {
            format!("{digits}{}.0", "0".repeat((exp10 - digits.len() as i64) as usize))
        } else {
            let (i, f) = digits.split_at(exp10 as usize);
            format!("{i}.{f}")
        };
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let (first, rest) = digits.split_at(1);
    let rest = if rest.is_empty() { "0" } else { rest };
    let _ = write!(out, "{first}.{rest}E{}", exp10 - 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON text of `piece`'s root values, a line each.
    fn json(piece: &[u8]) -> Result<String> {
        let mut out = String::new();
        let mut keep = |v: &[u8]| -> Result<()> {
            out.push_str(std::str::from_utf8(v).unwrap());
            Ok(())
        };
        transcode(piece, usize::MAX, &mut Vec::new(), &mut keep, |e| e)?;
        Ok(out)
    }

    #[test]
    fn java_float_layout() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (12345678.0, "1.2345678E7"),
            (1e7, "1.0E7"),
            (-132.2046, "-132.2046"),
            (0.0, "0.0"),
            (1e300, "1.0E300"),
            (123.0, "123.0"),
        ];
        for &(v, want) in cases {
            let mut out = Vec::new();
            java_float(v, &v.to_string(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v}");
        }
        let mut out = Vec::new();
        java_float(f64::from(1.1f32), &1.1f32.to_string(), &mut out);
        assert_eq!(out, b"1.1");
    }

    #[test]
    fn big_numbers() {
        assert_eq!(big_integer(&[0x01, 0x00]), "256");
        assert_eq!(big_integer(&[0xFF]), "-1");
        assert_eq!(big_integer(&[0xFF, 0x00]), "-256");
        assert_eq!(big_integer(&[0x00]), "0");
        assert_eq!(big_integer(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]), "18446744073709551616");
        assert_eq!(big_decimal("12345", 2), "123.45");
        assert_eq!(big_decimal("12345", 7), "0.0012345");
        assert_eq!(big_decimal("12345", -3), "1.2345E+7");
        assert_eq!(big_decimal("1", 10), "1E-10");
        assert_eq!(big_decimal("-5", 0), "-5");
    }

    #[test]
    fn base64() {
        for (bytes, want) in [(&b""[..], "\"\""), (b"f", "\"Zg==\""), (b"fo", "\"Zm8=\""), (b"foo", "\"Zm9v\""), (b"foob", "\"Zm9vYg==\"")] {
            let mut out = Vec::new();
            base64_string(bytes, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn a_hand_made_document() {
        // {"a":1,"b":"x","a":[true,null]} then {"b":-3}: names shared, small ints.
        let doc = [b':', b')', b'\n', 0x01, 0xFA, 0x80, b'a', 0xC2, 0x80, b'b', 0x40, b'x', 0x40, 0xF8, 0x23, 0x21, 0xF9, 0xFB, 0xFA, 0x41, 0xC5, 0xFB];
        assert_eq!(json(&doc).unwrap(), "{\"a\":1,\"b\":\"x\",\"a\":[true,null]}\n{\"b\":-3}\n");
        assert_eq!(json(&doc[4..]), Err(SmileError::Malformed), "a header is required");
        for cut in 5..doc.len() - 1 {
            if cut != 18 {
                assert_eq!(json(&doc[..cut]), Err(SmileError::Malformed), "cut at {cut}");
            }
        }
        // The end-of-content marker, or a second header, ends the document (Jackson stops there).
        let mut more = doc.to_vec();
        more.extend_from_slice(b"\xff\xfa\xfb");
        assert_eq!(json(&more).unwrap(), json(&doc).unwrap());
        let mut two = doc[..18].to_vec();
        two.extend_from_slice(&doc);
        assert_eq!(json(&two).unwrap(), "{\"a\":1,\"b\":\"x\",\"a\":[true,null]}\n");
    }

    #[test]
    fn what_jackson_refuses_is_refused() {
        let doc = |body: &[u8]| [&b":)\n\x03"[..], body].concat();
        // nesting past Jackson's limit, without exhausting the stack
        assert_eq!(json(&doc(&[0xF8; 500_000])), Err(SmileError::Malformed));
        let mut deep = doc(&[0xF8; MAX_DEPTH]);
        deep.extend_from_slice(&[0xF9; MAX_DEPTH]);
        assert!(json(&deep).is_ok());
        // binary and big numbers whose length cannot be (overflow, or more than there is)
        for token in [0xE8, 0x26, 0x2A] {
            let scale: &[u8] = if token == 0x2A { &[0x80] } else { &[] };
            let huge = [&[token][..], scale, &[0x1F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0xBF]].concat();
            assert_eq!(json(&doc(&huge)), Err(SmileError::Malformed), "{token:x}");
        }
        // a BigInteger of no bytes; a BigDecimal scale past 32 bits
        assert_eq!(json(&doc(&[0x26, 0x80])), Err(SmileError::Malformed));
        assert_eq!(json(&doc(&[0x2A, 0x7F, 0x7F, 0x7F, 0x7F, 0xBF, 0x81, 0x00, 0x01])), Err(SmileError::Malformed));
        assert_eq!(json(&doc(&[0x2A, 0x84, 0x81, 0x00, 0x01])).unwrap(), "0.01\n");
    }

    #[test]
    fn not_finite_doubles_are_quoted() {
        for (v, want) in [(f64::NAN, "\"NaN\""), (f64::INFINITY, "\"Infinity\""), (f64::NEG_INFINITY, "\"-Infinity\"")] {
            let mut out = Vec::new();
            java_float(v, &v.to_string(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn each_root_value_is_bounded_not_the_piece() {
        // [s, ref, ref, ...]: one 64-byte shared string, then 1,000 one-byte references to it.
        let mut doc = b":)\n\x02\xf8\x7f".to_vec();
        doc.extend_from_slice(&[b'x'; 64]);
        doc.extend_from_slice(&[0x01; 1000]);
        doc.push(0xF9);
        assert_eq!(json(&doc).unwrap().len(), 1 + 1001 * 67 + 1);
        let mut keep = |_: &[u8]| -> Result<()> { Ok(()) };
        assert_eq!(transcode(&doc, 10_000, &mut Vec::new(), &mut keep, |e| e), Err(SmileError::TooLarge));
        // 2,000 small root values of the same size pass a bound that the whole would not
        let mut many = b":)\n\x02".to_vec();
        for _ in 0..2000 {
            many.extend_from_slice(&[0x7f]);
            many.extend_from_slice(&[b'x'; 64]);
        }
        assert_eq!(transcode(&many, 100, &mut Vec::new(), &mut keep, |e| e), Ok(()));
        // the document limit: on a piece's SMILE bytes and on a root value's JSON text
        let mut piece = doc.clone();
        piece.push(0xFF);
        let read = |_: &[u8]| -> std::result::Result<(), StreamError> { Ok(()) };
        assert_eq!(SmileBody::new(1000, 100_000).feed(&piece, read), Err(StreamError::DocumentTooLarge { limit: 1000 }));
        assert_eq!(SmileBody::new(100_000, 10_000).feed(&piece, read), Err(StreamError::DocumentTooLarge { limit: 10_000 }));
        assert_eq!(SmileBody::new(100_000, 100_000).feed(&piece, read), Ok(()));
    }

    #[test]
    fn pieces_end_at_every_marker_in_any_chunking_and_the_rest_is_not_read() {
        let body = b"ab\xffcd\xff\xffe";
        for step in 1..=body.len() {
            let mut got = Vec::new();
            let mut s = SmileSplitter::default();
            for chunk in body.chunks(step) {
                s.feed(chunk, |p| -> std::result::Result<(), ()> {
                    got.push(p.to_vec());
                    Ok(())
                })
                .unwrap();
            }
            s.finish();
            assert_eq!(got, [&b"ab\xff"[..], b"cd\xff", b"\xff"], "step {step}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut piece = b":)\n\x03".to_vec();
            piece.extend_from_slice(&bytes);
            let _ = json(&piece);
            let _ = json(&bytes);
        }
    }
}
