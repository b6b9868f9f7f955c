//! JSON bodies in UTF-16 or UTF-32, recognised as Jackson recognises them and re-encoded as
//! UTF-8 for the reader.
//!
//! Elasticsearch parses a `_data` body with Jackson, which looks at its first four bytes: a
//! byte-order mark, or the zero bytes that ASCII text has in a wider encoding (`{` is `00 7B`
//! in UTF-16BE). So a file saved as UTF-16 (Windows PowerShell's default) posts as it is;
//! `input_bytes` still counts the bytes as sent. UTF-16 is read as Java's decoder reads it
//! (an unpaired surrogate, with the unit after a high one, or a lone last byte becomes U+FFFD);
//! UTF-32 as Jackson's reader does (its units may pair as surrogates; one past U+10FFFF fails
//! the request, as do the byte orders Jackson refuses, 2143 and 3412). One difference: after
//! such a unit the text before it is read, where Jackson loses what it had decoded of its
//! current read block (up to 8,000 bytes).
//!
//! The common case costs one look at the first bytes of a body: UTF-8 passes straight through.

use super::stream::StreamError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Utf16 { big_endian: bool },
    Utf32 { big_endian: bool },
}

/// The body's encoding from its first bytes (at least 4, or all of a shorter body), and how
/// many of them are a byte-order mark to drop (a UTF-8 mark is left to the reader). None for
/// the byte orders Jackson refuses.
pub fn detect(head: &[u8]) -> Option<(Charset, usize)> {
    use Charset::*;
    if let [a, b, c, d, ..] = *head {
        let quad = u32::from_be_bytes([a, b, c, d]);
        match quad {
            0x0000_FEFF => return Some((Utf32 { big_endian: true }, 4)),
            0xFFFE_0000 => return Some((Utf32 { big_endian: false }, 4)),
            0x0000_FFFE | 0xFEFF_0000 => return None,
            _ => {}
        }
        match quad >> 16 {
            0xFEFF => return Some((Utf16 { big_endian: true }, 2)),
            0xFFFE => return Some((Utf16 { big_endian: false }, 2)),
            _ => {}
        }
        if quad >> 8 == 0xEF_BBBF {
            return Some((Utf8, 0));
        }
        if quad >> 8 == 0 {
            return Some((Utf32 { big_endian: true }, 0));
        }
        if quad & 0x00FF_FFFF == 0 {
            return Some((Utf32 { big_endian: false }, 0));
        }
        if quad & !0x00FF_0000 == 0 || quad & !0x0000_FF00 == 0 {
            return None;
        }
    }
    if let [a, b, ..] = *head {
        if a == 0 {
            return Some((Utf16 { big_endian: true }, 0));
        }
        if b == 0 {
            return Some((Utf16 { big_endian: false }, 0));
        }
    }
    Some((Utf8, 0))
}

/// A UTF-16 or UTF-32 body in progress, re-encoded as UTF-8.
pub struct Recoder {
    charset: Charset,
    /// The bytes of a code unit not complete yet.
    partial: Vec<u8>,
    /// A high surrogate waiting for its low half (UTF-16).
    high: Option<u16>,
    out: Vec<u8>,
}

impl Recoder {
    pub fn new(charset: Charset) -> Self {
        Recoder { charset, partial: Vec::new(), high: None, out: Vec::new() }
    }

    /// Feed the next bytes of the body; `read` gets their UTF-8 text.
    pub fn feed(&mut self, mut data: &[u8], read: impl FnOnce(&[u8]) -> Result<(), StreamError>) -> Result<(), StreamError> {
        let unit = match self.charset {
            Charset::Utf8 => return read(data),
            Charset::Utf16 { .. } => 2,
            Charset::Utf32 { .. } => 4,
        };
        self.out.clear();
        if !self.partial.is_empty() {
            let need = (unit - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..need]);
            data = &data[need..];
            if self.partial.len() < unit {
                return Ok(());
            }
            let whole = std::mem::take(&mut self.partial);
            if let Err(e) = self.units(&whole) {
                return read(&self.out).and(Err(e));
            }
        }
        let whole = data.len() / unit * unit;
        let units = self.units(&data[..whole]);
        self.partial.extend_from_slice(&data[whole..]);
        // The text before an invalid unit is read first, so that what is counted does not
        // depend on where the body was cut into pieces.
        read(&self.out)?;
        units
    }

    /// The end of the body: what is left of a code unit or surrogate pair.
    pub fn finish(&mut self, read: impl FnOnce(&[u8]) -> Result<(), StreamError>) -> Result<(), StreamError> {
        self.out.clear();
        match self.charset {
            Charset::Utf32 { .. } if !self.partial.is_empty() => return Err(StreamError::Malformed),
            _ if self.high.is_some() && !self.partial.is_empty() => {
                push_char(&mut self.out, char::REPLACEMENT_CHARACTER); // Java: one for both
            }
            _ if !self.partial.is_empty() || self.high.is_some() => push_char(&mut self.out, char::REPLACEMENT_CHARACTER),
            _ => {}
        }
        self.partial.clear();
        self.high = None;
        if self.out.is_empty() {
            Ok(())
        } else {
            read(&self.out)
        }
    }

    fn units(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        match self.charset {
            Charset::Utf8 => self.out.extend_from_slice(bytes),
            Charset::Utf16 { big_endian } => {
                for pair in bytes.chunks_exact(2) {
                    let u = if big_endian { u16::from_be_bytes([pair[0], pair[1]]) } else { u16::from_le_bytes([pair[0], pair[1]]) };
                    self.surrogate_aware(u32::from(u), true);
                }
            }
            Charset::Utf32 { big_endian } => {
                for quad in bytes.chunks_exact(4) {
                    let q = [quad[0], quad[1], quad[2], quad[3]];
                    let v = if big_endian { u32::from_be_bytes(q) } else { u32::from_le_bytes(q) };
                    if v > 0x10FFFF {
                        return Err(StreamError::Malformed); // Jackson's UTF-32 reader refuses only these
                    }
                    self.surrogate_aware(v, false);
                }
            }
        }
        Ok(())
    }

    /// One code unit (UTF-16) or code point (UTF-32, where Java's chars may be surrogates too).
    /// A high surrogate and a low one after it make one character. Otherwise, as Java's UTF-16
    /// decoder, a high surrogate is U+FFFD together with the unit after it (`swallow`); Jackson's
    /// UTF-32 reader keeps that unit, and its lone surrogate, which UTF-8 cannot hold, is U+FFFD.
    fn surrogate_aware(&mut self, u: u32, swallow: bool) {
        if let Some(high) = self.high.take() {
            if (0xDC00..0xE000).contains(&u) {
                let c = char::from_u32(0x10000 + ((u32::from(high) - 0xD800) << 10) + (u - 0xDC00));
                push_char(&mut self.out, c.unwrap_or(char::REPLACEMENT_CHARACTER));
                return;
            }
            push_char(&mut self.out, char::REPLACEMENT_CHARACTER);
            if swallow {
                return;
            }
        }
        match u {
            0xD800..=0xDBFF => self.high = Some(u as u16),
            _ => push_char(&mut self.out, char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER)),
        }
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str, charset: Charset, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let put16 = |u: u16, big: bool, out: &mut Vec<u8>| out.extend_from_slice(&if big { u.to_be_bytes() } else { u.to_le_bytes() });
        match charset {
            Charset::Utf8 => out.extend_from_slice(text.as_bytes()),
            Charset::Utf16 { big_endian } => {
                if bom {
                    put16(0xFEFF, big_endian, &mut out);
                }
                for u in text.encode_utf16() {
                    put16(u, big_endian, &mut out);
                }
            }
            Charset::Utf32 { big_endian } => {
                let chars = if bom { Some('\u{FEFF}') } else { None }.into_iter().chain(text.chars());
                for c in chars {
                    let v = c as u32;
                    out.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
                }
            }
        }
        out
    }

    /// Decode `body` fed in `step`-byte pieces; the UTF-8 text or the error.
    fn decode(body: &[u8], step: usize) -> Result<String, StreamError> {
        let head = &body[..body.len().min(4)];
        let (charset, bom) = detect(head).ok_or(StreamError::Malformed)?;
        let mut r = Recoder::new(charset);
        let mut text = Vec::new();
        for piece in body[bom..].chunks(step.max(1)) {
            r.feed(piece, |t| {
                text.extend_from_slice(t);
                Ok(())
            })?;
        }
        r.finish(|t| {
            text.extend_from_slice(t);
            Ok(())
        })?;
        Ok(String::from_utf8(text).unwrap())
    }

    #[test]
    fn every_encoding_jackson_detects_reads_the_same_in_any_chunking() {
        let text = "{\"time\":1,\"名\":\"é😀\"}\n {\"x\":[true]}";
        for charset in [
            Charset::Utf16 { big_endian: true },
            Charset::Utf16 { big_endian: false },
            Charset::Utf32 { big_endian: true },
            Charset::Utf32 { big_endian: false },
        ] {
            for bom in [false, true] {
                let body = encode(text, charset, bom);
                assert_eq!(detect(&body[..4]), Some((charset, if bom { body.len() - encode(text, charset, false).len() } else { 0 })));
                for step in [1, 2, 3, 5, 7, 1000] {
                    assert_eq!(decode(&body, step).unwrap(), text, "{charset:?} bom {bom} step {step}");
                }
            }
        }
        assert_eq!(detect(b"{\"a\":1}"), Some((Charset::Utf8, 0)));
        assert_eq!(detect(b"\xef\xbb\xbf{}"), Some((Charset::Utf8, 0)), "the reader drops a UTF-8 mark");
        assert_eq!(detect(b"{"), Some((Charset::Utf8, 0)));
        assert_eq!(detect(b""), Some((Charset::Utf8, 0)));
        assert_eq!(detect(b"\x00{"), Some((Charset::Utf16 { big_endian: true }, 0)));
    }

    #[test]
    fn broken_text_as_java_reads_it() {
        // UTF-16: an unpaired surrogate, or a last odd byte, is U+FFFD
        // UTF-16: a high surrogate takes the unit after it into its U+FFFD (Java's decoder)
        let lone_high = [0x00, b'{', 0xD8, 0x3D, 0x00, b'}'];
        assert_eq!(decode(&lone_high, 1).unwrap(), "{\u{FFFD}");
        let high_high_low = [0x00, b'{', 0xD8, 0x3D, 0xD8, 0x3D, 0xDE, 0x00];
        assert_eq!(decode(&high_high_low, 3).unwrap(), "{\u{FFFD}\u{FFFD}");
        let lone_low = [b'{', 0x00, 0x00, 0xDC, b'}', 0x00];
        assert_eq!(decode(&lone_low, 3).unwrap(), "{\u{FFFD}}");
        // UTF-32: surrogates pair as Java chars; a lone one keeps the unit after it
        assert_eq!(decode(&[0, 0, 0, b'{', 0, 0, 0xD8, 0x3D, 0, 0, 0xDE, 0x00], 5).unwrap(), "{😀");
        assert_eq!(decode(&[0, 0, 0, b'{', 0, 0, 0xD8, 0x3D, 0, 0, 0, b'Y'], 5).unwrap(), "{\u{FFFD}Y");
        assert_eq!(decode(&[0x00, b'{', 0x00, b'}', 0x00], 2).unwrap(), "{}\u{FFFD}");
        assert_eq!(decode(&[0x00, b'{', 0xD8, 0x3D], 4).unwrap(), "{\u{FFFD}");
        // UTF-32: an invalid code point or a cut unit fails; so do the byte orders Jackson refuses
        assert_eq!(decode(&[0, 0, 0, b'{', 0, 0x11, 0, 0], 4), Err(StreamError::Malformed));
        assert_eq!(decode(&[0, 0, 0, b'{', 0, 0], 4), Err(StreamError::Malformed));
        assert_eq!(detect(&[0, 0, b'{', 0]), None);
        assert_eq!(detect(&[0, b'{', 0, 0]), None);
        assert_eq!(detect(&[0x00, 0x00, 0xFF, 0xFE]), None);
    }
}
