//! The lexical pieces of JSON, shared by the tokenizer ([`super::token`]), the unit scanner
//! ([`super::scanner`]) and the record fast path: whitespace and run bytes, comments, strings
//! (validated: escapes, control characters, UTF-8), numbers and literals, and unescaping.

use super::token::{Stop, Text, Tok};
use crate::arch;

#[inline(always)]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Bytes that continue a number or literal token ("run"): anything else ends it. One table
/// load: every number and literal asks it at least once.
#[inline(always)]
pub fn is_run_byte(b: u8) -> bool {
    RUN_BYTES[usize::from(b)]
}

const RUN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
        i += 1;
    }
    table
};

/// Skip one comment starting at the `/` at `p`.
#[cold]
pub(super) fn skip_comment(buf: &[u8], p: usize, complete: bool) -> Result<usize, Stop> {
    match buf.get(p + 1) {
        None => Err(if complete { Stop::Error { resume: p + 1 } } else { Stop::Eof }),
        Some(b'/') => match memchr::memchr(b'\n', &buf[p + 2..]) {
            Some(i) => Ok(p + 2 + i + 1),
            None if complete => Ok(buf.len()),
            None => Err(Stop::Eof),
        },
        Some(b'*') => match memchr::memmem::find(&buf[p + 2..], b"*/") {
            Some(i) => Ok(p + 2 + i + 2),
            None if complete => Err(Stop::Error { resume: buf.len() }),
            None => Err(Stop::Eof),
        },
        Some(_) => Err(Stop::Error { resume: p + 1 }),
    }
}

/// Scan the string whose opening quote is at `q`, validating escapes, control characters and
/// UTF-8. On malformed contents, recovery resumes at the opening quote so that it skips the
/// string as a whole.
#[inline]
pub fn scan_string(buf: &[u8], q: usize) -> Result<Text, Stop> {
    let start = q + 1;
    let mut p = start;
    let mut escaped = false;
    loop {
        p += arch::find_string_stop(&buf[p..]);
        let Some(&b) = buf.get(p) else { return Err(Stop::Eof) };
        match b {
            b'"' => return Ok(Text { start, end: p, escaped }),
            b'\\' => {
                escaped = true;
                p = scan_escape(buf, p).map_err(|e| fix_resume(e, q))?;
            }
            0x80..=0xff => p = scan_utf8(buf, p).map_err(|e| fix_resume(e, q))?,
            _ => return Err(Stop::Error { resume: q }), // unescaped control character
        }
    }
}

pub(super) fn fix_resume(e: Stop, q: usize) -> Stop {
    match e {
        Stop::Eof => Stop::Eof,
        Stop::Error { .. } => Stop::Error { resume: q },
    }
}

/// Validate the escape at `p` (a backslash); the position after it.
#[cold]
pub(super) fn scan_escape(buf: &[u8], p: usize) -> Result<usize, Stop> {
    let Some(&e) = buf.get(p + 1) else { return Err(Stop::Eof) };
    match e {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(p + 2),
        b'u' => {
            for i in 0..4 {
                let Some(&h) = buf.get(p + 2 + i) else { return Err(Stop::Eof) };
                if !h.is_ascii_hexdigit() {
                    return Err(Stop::Error { resume: 0 });
                }
            }
            Ok(p + 6)
        }
        _ => Err(Stop::Error { resume: 0 }),
    }
}

/// Validate one UTF-8 encoded character starting at `p`; the position after it.
#[cold]
pub(super) fn scan_utf8(buf: &[u8], p: usize) -> Result<usize, Stop> {
    let lead = buf[p];
    let width = match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Err(Stop::Error { resume: 0 }),
    };
    if buf.len() < p + width {
        // Could still be valid once the rest arrives, if what we have is a valid prefix.
        let have = &buf[p..];
        return match std::str::from_utf8(have) {
            Err(e) if e.error_len().is_none() => Err(Stop::Eof),
            _ => Err(Stop::Error { resume: 0 }),
        };
    }
    match std::str::from_utf8(&buf[p..p + width]) {
        Ok(_) => Ok(p + width),
        Err(_) => Err(Stop::Error { resume: 0 }),
    }
}

/// Scan a number or literal at `p`. A run that is not a valid JSON number, `true`, `false` or
/// `null` is one bad token; recovery resumes after it.
#[inline]
pub(super) fn scan_run(buf: &[u8], p: usize, complete: bool) -> Result<(Tok, usize), Stop> {
    let mut q = p;
    while q < buf.len() && is_run_byte(buf[q]) {
        q += 1;
    }
    if q == buf.len() && !complete {
        return Err(Stop::Eof);
    }
    let run = &buf[p..q];
    let tok = match run {
        b"true" => Tok::True,
        b"false" => Tok::False,
        b"null" => Tok::Null,
        _ if is_json_number(run) => Tok::Num(p, q),
        _ => return Err(Stop::Error { resume: q }),
    };
    Ok((tok, q))
}

/// Where the JSON number `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` starting at `p`
/// ends (what follows it is not looked at); None when no such number starts there.
#[inline]
pub(super) fn json_number_end(buf: &[u8], p: usize) -> Option<usize> {
    let digits_end = |i: usize| i + arch::swar_digit_run(&buf[i..]);
    let mut i = p + usize::from(buf.get(p) == Some(&b'-'));
    match buf.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(i + 1),
        _ => return None,
    }
    if buf.get(i) == Some(&b'.') {
        let d = i + 1;
        i = digits_end(d);
        if i == d {
            return None;
        }
    }
    if matches!(buf.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(buf.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let d = i;
        i = digits_end(d);
        if i == d {
            return None;
        }
    }
    Some(i)
}

/// Whether all of `s` is one JSON number.
#[inline]
pub fn is_json_number(s: &[u8]) -> bool {
    json_number_end(s, 0) == Some(s.len())
}

/// Append the unescaped form of a validated string's contents to `out` (cleared first).
/// Lone surrogates become U+FFFD.
pub fn unescape_into(raw: &[u8], escaped: bool, out: &mut Vec<u8>) {
    out.clear();
    if !escaped {
        out.extend_from_slice(raw);
        return;
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        let c = match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(&raw[i..i + 4]);
                i += 4;
                let cp = if (0xd800..0xdc00).contains(&hi)
                    && raw.get(i) == Some(&b'\\')
                    && raw.get(i + 1) == Some(&b'u')
                    && raw.len() >= i + 6
                {
                    let lo = hex4(&raw[i + 2..i + 6]);
                    if (0xdc00..0xe000).contains(&lo) {
                        i += 6;
                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                    } else {
                        0xfffd
                    }
                } else {
                    hi
                };
                let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                continue;
            }
            other => other, // `"`, `\`, `/`
        };
        out.push(c);
    }
}

pub(super) fn hex4(h: &[u8]) -> u32 {
    h.iter().fold(0, |acc, &d| acc * 16 + (d as char).to_digit(16).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::is_json_number;

    #[test]
    fn numbers_follow_the_json_grammar() {
        for ok in ["0", "-0", "12", "1.5", "1e5", "1E+5", "-2.5e-3", "1454020569000"] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1.2.3", "NaN"] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
