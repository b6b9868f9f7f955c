//! java.time `DateTimeFormatter` patterns for `data_description.time_format`, and the ISO-8601
//! dates of request parameters.
//!
//! Behaviour follows Elasticsearch's timestamp converter: lenient parsing (a number between
//! non-digits may have any width, adjacent numbers keep their pattern widths), UTC unless the
//! pattern has an offset, the current year unless it has a year, and a pattern is refused when
//! it cannot produce a complete timestamp.
//!
//! It is fast because all pattern work happens once at compile time: the pattern becomes a short
//! list of items whose digit widths are already settled, and a parse is one forward pass over the
//! bytes with no allocation, followed by integer calendar arithmetic. A text laid out exactly at
//! the pattern's widths (most ISO timestamps) takes a straighter pass still (`parse_laid_out`).
//! Zones (`z`, `VV`) are read in `super::zone`.

use super::calendar::{civil_from_days, current_utc_year, days_from_civil, days_in_month, is_leap};
use super::zone::{offset_at_local, parse_zone, Zone, ZoneStyle};

/// A compiled java.time pattern.
#[derive(Debug, Clone)]
pub struct DatePattern {
    items: Vec<Item>,
    /// Java fixes the default year when the converter is built, not per record.
    default_year: i64,
    /// As in Java, an offset or zone anywhere in the pattern, even in an optional section, is
    /// required.
    has_offset: bool,
    /// Only literals, offsets and numbers that stand alone (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`): a
    /// text laid out at the pattern's widths is read by [`parse_laid_out`] first.
    laid_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    /// `yy`: two digits mean 2000-2099.
    Year2,
    Month,
    Day,
    Hour,
    /// `h`: 1-12 (0 is tolerated, as by java.time's default resolver).
    Hour12,
    /// `k`: 1-24, where 24 is midnight (0 is tolerated, as by java.time's default resolver).
    ClockHour,
    /// `K`: 0-11, with AM/PM.
    HourOfAmPm,
    /// `D`: 1-366; without month and day it makes the date with the year.
    DayOfYear,
    AmPm,
    Minute,
    Second,
    Nano,
    /// 1 (Monday) to 7; must be the date's weekday, as java.time's cross-check requires.
    DayOfWeek,
    Offset,
}

#[derive(Debug, Clone)]
enum Item {
    Literal(Vec<u8>),
    /// At least `min` and at most `max` digits, leaving `reserve` digits for the fixed-width
    /// numbers directly after it.
    Number {
        field: Field,
        min: usize,
        max: usize,
        reserve: usize,
        /// The pattern's width, which printing pads to (Java prints `HH` as `00`).
        width: usize,
        /// A `+` may lead it: java.time's lenient parse takes a sign before any number whose
        /// pattern width varies (`y`, `yyyy`, `d`, `DD`), not before fixed ones (`dd`, `yy`, `SSS`).
        /// (A `-` there is taken too, but no field here can then be in range, but for `-0`.)
        signed: bool,
    },
    /// English month or weekday names (full or abbreviated) or AM/PM, case-sensitive as in java.time.
    Name(Field),
    /// `±HH[[:]MM[[:]SS]]`; colons exactly when the pattern has them. `zero` is what the letter
    /// prints for UTC (`Z`, `+00`, `+0000` or `+00:00`), which java.time reads first: so `x`
    /// reads `+0000` as `+00` and then stops.
    Offset {
        colon: bool,
        zero: &'static [u8],
    },
    /// `GMT`, or `GMT` and `±H[H][:MM[:SS]]` (`O`) or `±HH:MM[:SS]` (`full`: `OOOO`, `ZZZZ`).
    LocalizedOffset {
        full: bool,
    },
    /// A zone name or id (`z`, `zzzz`, `VV`).
    Zone(ZoneStyle),
    Optional(Vec<Item>),
}

impl Item {
    fn number(field: Field, min: usize, max: usize) -> Self {
        Item::Number {
            field,
            min,
            max,
            reserve: 0,
            width: min,
            signed: false,
        }
    }
}

/// The first number of a run of adjacent numbers, and its width when read strictly.
#[derive(Clone, Copy)]
struct Run {
    index: usize,
    strict: (usize, usize),
}

#[rustfmt::skip]
const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// Optional sections nest at most this deep; deeper patterns are refused.
const MAX_NESTING: usize = 8;

impl DatePattern {
    /// None when the pattern is invalid or cannot yield a complete timestamp.
    pub(super) fn compile(pattern: &str) -> Option<Self> {
        Self::compile_in(pattern, current_utc_year())
    }

    /// [`Self::compile`] with `default_year` for patterns without a year.
    fn compile_in(pattern: &str, default_year: i64) -> Option<Self> {
        let mut rest = pattern.as_bytes();
        let items = compile_seq(&mut rest, 0)?;
        // Java's check: what the pattern prints for the epoch must parse back to a timestamp,
        // the year defaulted as for records. So adjacent numbers that cannot be told apart
        // (`yyyyDHH`) are refused, and a yearless pattern with a weekday passes only in years
        // that begin on a Thursday, as the epoch did (in Elasticsearch too).
        let mut text = Vec::new();
        print_epoch(&items, &mut text);
        let mut sample = Fields::default();
        if parse_seq(&items, &text, 0, &mut sample)? != text.len() {
            return None;
        }
        let has_offset = sample.offset.is_some() || sample.zone.is_some(); // every optional section is printed
        resolve(&sample, default_year, has_offset, Resolver::Smart)?;
        let laid_out = is_laid_out(&items);
        Some(Self {
            items,
            default_year,
            has_offset,
            laid_out,
        })
    }

    /// Epoch milliseconds, or None when the text does not match or is not a valid date.
    pub(super) fn parse_ms(&self, text: &[u8]) -> Option<i64> {
        if self.laid_out {
            let mut fields = Fields::default();
            if parse_laid_out(&self.items, text, &mut fields).is_some() {
                return resolve(&fields, self.default_year, self.has_offset, Resolver::Smart);
            }
        }
        let mut fields = Fields::default();
        if parse_seq(&self.items, text, 0, &mut fields)? != text.len() {
            return None;
        }
        resolve(&fields, self.default_year, self.has_offset, Resolver::Smart)
    }
}

/// Compiles up to the `]` closing this nesting level (or the end, which closes all of them).
fn compile_seq(p: &mut &[u8], depth: usize) -> Option<Vec<Item>> {
    let mut items = Vec::new();
    let mut run = None;
    while let Some(&c) = p.first() {
        *p = &p[1..];
        match c {
            b'A'..=b'Z' | b'a'..=b'z' => {
                let n = 1 + p.iter().take_while(|&&b| b == c).count();
                *p = &p[n - 1..];
                match letters(c, n)? {
                    Item::Number {
                        field, min, max, ..
                    } => {
                        push_number(&mut items, &mut run, field, (min, max));
                        continue;
                    }
                    item => items.push(item),
                }
            }
            b'\'' => {
                // '' is a quote, inside a quoted literal too; a lone '' is just a quote.
                let mut text = Vec::new();
                loop {
                    match *p {
                        [b'\'', b'\'', rest @ ..] => {
                            text.push(b'\'');
                            *p = rest;
                        }
                        [b'\'', rest @ ..] => {
                            *p = rest;
                            break;
                        }
                        [b, rest @ ..] => {
                            text.push(*b);
                            *p = rest;
                        }
                        [] => return None, // unterminated literal
                    }
                }
                if text.is_empty() {
                    text.push(b'\'');
                }
                push_literal(&mut items, &text);
            }
            b'[' if depth < MAX_NESTING => items.push(Item::Optional(compile_seq(p, depth + 1)?)),
            b']' if depth > 0 => return Some(items),
            b'[' | b']' | b'{' | b'}' | b'#' => return None,
            _ => push_literal(&mut items, &[c]),
        }
        // Anything but a number ends a run of adjacent numbers.
        run = None;
    }
    Some(items)
}

/// The item for a run of `n` pattern letters `c`; numbers carry their strict widths.
fn letters(c: u8, n: usize) -> Option<Item> {
    use Field::*;
    // One letter: 1 to 18 digits; two letters: exactly two.
    let one_or_two = |field| Item::number(field, n, if n == 2 { 2 } else { 18 });
    let colon = n == 3 || n == 5;
    Some(match (c, n) {
        // `u` (proleptic year) is refused: Elasticsearch defaults the year-of-era, which then
        // conflicts with it, so no timestamp can be derived from such a pattern.
        (b'y', 2) => Item::number(Year2, 2, 2),
        (b'y', 1..=18) => Item::number(Year, n, 18),
        (b'M', 1 | 2) => one_or_two(Month),
        (b'M', 3..=5) => Item::Name(Month),
        (b'd', 1 | 2) => one_or_two(Day),
        (b'H', 1 | 2) => one_or_two(Hour),
        (b'h', 1 | 2) => one_or_two(Hour12),
        (b'k', 1 | 2) => one_or_two(ClockHour),
        (b'K', 1 | 2) => one_or_two(HourOfAmPm),
        (b'D', 1) => Item::number(DayOfYear, 1, 18),
        (b'D', 2) => Item::number(DayOfYear, 2, 3),
        (b'D', 3) => Item::number(DayOfYear, 3, 3),
        (b'm', 1 | 2) => one_or_two(Minute),
        (b's', 1 | 2) => one_or_two(Second),
        (b'S', 1..=9) => Item::number(Nano, n, n),
        (b'E', 1..=5) => Item::Name(DayOfWeek),
        (b'a', 1) => Item::Name(AmPm),
        (b'X', 1..=5) => Item::Offset { colon, zero: b"Z" },
        (b'x', 1) => Item::Offset { colon, zero: b"+00" },
        (b'x', 2..=5) => Item::Offset {
            colon,
            zero: if colon { b"+00:00" } else { b"+0000" },
        },
        (b'Z', 1..=3) => Item::Offset {
            colon: false,
            zero: b"+0000",
        },
        (b'Z', 4) => Item::LocalizedOffset { full: true },
        (b'Z', 5) => Item::Offset {
            colon: true,
            zero: b"Z",
        },
        (b'z', 1..=3) => Item::Zone(ZoneStyle::Short),
        (b'z', 4) => Item::Zone(ZoneStyle::Full),
        (b'V', 2) => Item::Zone(ZoneStyle::Id),
        (b'v', 1) => Item::Zone(ZoneStyle::Short),
        (b'v', 4) => Item::Zone(ZoneStyle::Full),
        (b'O', 1 | 4) => Item::LocalizedOffset { full: n == 4 },
        _ => return None,
    })
}

/// Appends a number with java.time's "adjacent value parsing": a fixed-width number right after
/// another number is read at exactly its width and the run's first number leaves room for it
/// (so `yyyyMMdd` works); a variable-width one ends the run and pins the previous first number
/// to its strict width. Numbers outside runs are lenient: 1 to 9 digits. A fraction (`S…`) is
/// lenient wherever it stands: 0 to 9 digits (`ss.SSS` reads `03.`, `03.5` and `03.123456`);
/// a run's first number leaves the fraction's pattern width for it (`ssSSS`), but a fraction
/// leaves nothing for the numbers after it, so `ss.SSSHH` cannot read what it prints and is
/// refused, as java.time refuses it.
///
/// `yy` is java.time's reduced-value parser, which lenient parsing never treats as fixed-width:
/// after a run is ended by a variable-width number it reads greedily (its room for the fixed
/// ones is gone), and as a fixed number inside a run it reads greedily too; so `ddMMyyHH` and
/// `yyMMddH` cannot read back what they print, in Java and here.
fn push_number(items: &mut Vec<Item>, run: &mut Option<Run>, field: Field, strict: (usize, usize)) {
    let fixed = strict.0 == strict.1;
    if let Some(first) = *run {
        let first_fixed = first.strict.0 == first.strict.1;
        if let Item::Number {
            field: first_field,
            min,
            max,
            reserve,
            ..
        } = &mut items[first.index]
        {
            // A fraction first in the run takes up to 9 digits whatever follows (java.time's
            // lenient fraction ignores the widths after it): it stays as it is.
            if *first_field != Field::Nano {
                if fixed {
                    *reserve += strict.1;
                }
                if *first_field == Field::Year2 && !fixed {
                    (*min, *max, *reserve) = (1, 9, 0);
                } else if first_fixed || !fixed {
                    (*min, *max) = first.strict;
                }
            }
        }
        if fixed {
            let (min, max) = match field {
                Field::Year2 => (1, 9),
                Field::Nano => (0, 9),
                _ => strict,
            };
            items.push(Item::Number {
                field,
                min,
                max,
                reserve: 0,
                width: strict.0,
                signed: false,
            });
            return;
        }
    }
    *run = Some(Run {
        index: items.len(),
        strict,
    });
    items.push(Item::Number {
        field,
        min: if field == Field::Nano { 0 } else { 1 },
        max: 9,
        reserve: 0,
        width: strict.0,
        signed: !fixed,
    });
}

fn push_literal(items: &mut Vec<Item>, text: &[u8]) {
    match items.last_mut() {
        Some(Item::Literal(lit)) => lit.extend_from_slice(text),
        _ => items.push(Item::Literal(text.to_vec())),
    }
}

/// What the pattern prints for 1970-01-01T00:00:00Z, as java.time does: numbers padded to their
/// pattern width, short English names, every optional section.
fn print_epoch(items: &[Item], out: &mut Vec<u8>) {
    for item in items {
        match item {
            Item::Literal(lit) => out.extend_from_slice(lit),
            Item::Number { field, width, .. } => {
                let value = match field {
                    Field::Year => 1970,
                    Field::Year2 => 70,
                    Field::Month | Field::Day | Field::DayOfYear => 1,
                    Field::Hour12 => 12,
                    Field::ClockHour => 24, // midnight, as java.time prints it
                    Field::DayOfWeek => 4,  // the epoch was a Thursday
                    _ => 0,
                };
                out.extend_from_slice(format!("{value:0width$}").as_bytes());
            }
            Item::Name(Field::Month) => out.extend_from_slice(b"Jan"),
            Item::Name(Field::DayOfWeek) => out.extend_from_slice(b"Thu"),
            Item::Name(_) => out.extend_from_slice(b"AM"),
            Item::Offset { zero, .. } => out.extend_from_slice(zero),
            Item::LocalizedOffset { .. } => out.extend_from_slice(b"GMT"),
            Item::Zone(_) => out.push(b'Z'),
            Item::Optional(inner) => print_epoch(inner, out),
        }
    }
}

/// Parsed values, before validation.
#[derive(Debug, Clone, Copy, Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    hour12: Option<i64>,
    clock_hour: Option<i64>,
    hour_of_ampm: Option<i64>,
    ampm: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    nano: Option<i64>,
    offset: Option<i64>,
    /// A time zone (see `zone`): its rules give the offset when the text has none.
    zone: Option<Zone>,
    weekday: Option<i64>,
    day_of_year: Option<i64>,
}

impl Fields {
    /// None when the field was already parsed with another value (java.time calls that a conflict).
    fn set(&mut self, field: Field, value: i64) -> Option<()> {
        let slot = match field {
            Field::Year | Field::Year2 => &mut self.year,
            Field::Month => &mut self.month,
            Field::Day => &mut self.day,
            Field::Hour => &mut self.hour,
            Field::Hour12 => &mut self.hour12,
            Field::ClockHour => &mut self.clock_hour,
            Field::HourOfAmPm => &mut self.hour_of_ampm,
            Field::DayOfYear => &mut self.day_of_year,
            Field::AmPm => &mut self.ampm,
            Field::Minute => &mut self.minute,
            Field::Second => &mut self.second,
            Field::Nano => &mut self.nano,
            Field::Offset => &mut self.offset,
            Field::DayOfWeek => &mut self.weekday,
        };
        if slot.is_some_and(|old| old != value) {
            return None;
        }
        *slot = Some(value);
        Some(())
    }
}

/// Parses `items` from `s[pos..]`; returns the end position.
fn parse_seq(items: &[Item], s: &[u8], mut pos: usize, f: &mut Fields) -> Option<usize> {
    for item in items {
        let rest = &s[pos..];
        pos += match item {
            Item::Literal(_) | Item::Offset { .. } => parse_literal_or_offset(item, rest, f)?,
            Item::Number {
                field,
                min,
                max,
                reserve,
                signed,
                ..
            } => {
                let sign = usize::from(*signed && rest.first() == Some(&b'+'));
                let rest = &rest[sign..];
                let available = count_digits(rest, max + reserve);
                let n = available.saturating_sub(*reserve).max(*min);
                if n > available {
                    return None;
                }
                let value = number_value(*field, n, digits(&rest[..n]));
                // java.time sets a fraction of no digits to 0, unless the text ended where it
                // begins (then it sets nothing).
                if n > 0 || !rest.is_empty() {
                    f.set(*field, value)?;
                }
                sign + n
            }
            Item::Name(field) => {
                let (value, n) = parse_name(*field, rest)?;
                f.set(*field, value)?;
                n
            }
            Item::LocalizedOffset { full } => {
                let (value, n) = parse_localized_offset(rest, *full)?;
                f.set(Field::Offset, value)?;
                n
            }
            Item::Zone(style) => {
                // A second zone replaces the first, as in java.time (no conflict).
                let (zone, n) = parse_zone(rest, *style)?;
                f.zone = Some(zone);
                n
            }
            Item::Optional(inner) => {
                // A failed optional section leaves nothing behind.
                let mut trial = *f;
                match parse_seq(inner, s, pos, &mut trial) {
                    Some(end) => {
                        *f = trial;
                        end - pos
                    }
                    None => 0,
                }
            }
        };
    }
    Some(pos)
}

/// Whether [`parse_laid_out`] can read this pattern: literals, offsets, and numbers with no
/// number beside them whose pattern width the lenient reading allows.
fn is_laid_out(items: &[Item]) -> bool {
    let number = |i: &Item| matches!(i, Item::Number { .. });
    items.iter().all(|i| match i {
        Item::Literal(_) | Item::Offset { .. } => true,
        Item::Number { min, max, reserve, width, .. } => *reserve == 0 && (*min..=*max).contains(width) && *width > 0,
        _ => false,
    }) && !items.windows(2).any(|w| number(&w[0]) && number(&w[1]))
}

/// The common case of [`parse_seq`], faster: every number at its pattern width, each followed
/// by a non-digit, and nothing left over. It then reads exactly what `parse_seq` reads (a
/// lenient number stops at the first non-digit); None sends the text to `parse_seq`.
fn parse_laid_out(items: &[Item], s: &[u8], f: &mut Fields) -> Option<()> {
    let mut pos = 0;
    for item in items {
        let Item::Number { field, width, .. } = item else {
            pos += parse_literal_or_offset(item, &s[pos..], f)?;
            continue;
        };
        let rest = &s[pos..];
        let mut value = 0;
        for &b in rest.get(..*width)? {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            value = value * 10 + i64::from(d);
        }
        if rest.get(*width).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        f.set(*field, number_value(*field, *width, value))?;
        pos += width;
    }
    (pos == s.len()).then_some(())
}

/// A literal or an offset at the start of `rest` (for `parse_seq` and `parse_laid_out`): its length.
#[inline(always)]
fn parse_literal_or_offset(item: &Item, rest: &[u8], f: &mut Fields) -> Option<usize> {
    match item {
        Item::Literal(lit) => rest.starts_with(lit).then_some(lit.len()),
        Item::Offset { colon, zero } => {
            let (value, n) = parse_offset(rest, *colon, zero)?;
            f.set(Field::Offset, value)?;
            Some(n)
        }
        _ => None,
    }
}

/// A number's value from its `n` digits: `yy` of two digits is 2000-2099, a fraction is nanoseconds.
fn number_value(field: Field, n: usize, value: i64) -> i64 {
    match field {
        Field::Year2 if n == 2 => 2000 + value,
        // n <= 9: fractions never get a wider width.
        Field::Nano => value * 10_i64.pow(9 - n as u32),
        _ => value,
    }
}

fn count_digits(s: &[u8], max: usize) -> usize {
    s.iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// The value of a short run of ASCII digits.
fn digits(s: &[u8]) -> i64 {
    s.iter().fold(0, |v, &b| v * 10 + i64::from(b - b'0'))
}

/// A name and its length; java.time's lenient mode also takes the field's number instead.
fn parse_name(field: Field, s: &[u8]) -> Option<(i64, usize)> {
    let (names, first): (&[&str], i64) = match field {
        Field::Month => (&MONTHS, 1),
        Field::DayOfWeek => (&DAYS, 1),
        _ => (&["AM", "PM"], 0),
    };
    // Full names first, so that "June" is not taken as "Jun" followed by "e".
    let full = names.iter().map(|name| name.as_bytes());
    let short = names
        .iter()
        .map(|name| &name.as_bytes()[..3.min(name.len())]);
    // Case-sensitive, as java.time parses unless told otherwise (Elasticsearch does not).
    for (i, name) in full.chain(short).enumerate() {
        if s.get(..name.len()) == Some(name) {
            return Some((first + (i % names.len()) as i64, name.len()));
        }
    }
    // Lenient java.time reads a name it does not find as the field's number, a `+` allowed.
    let sign = usize::from(s.first() == Some(&b'+'));
    let n = count_digits(&s[sign..], 9);
    (n > 0).then(|| (digits(&s[sign..sign + n]), sign + n))
}

/// An offset in seconds east of UTC and its length: `±HH[[:]MM[[:]SS]]` (java.time's lenient
/// reading: minutes and seconds optional, colons exactly when `colon`), or `zero` (what UTC
/// prints as), which is tried first.
fn parse_offset(s: &[u8], colon: bool, zero: &[u8]) -> Option<(i64, usize)> {
    if s.starts_with(zero) {
        return Some((0, zero.len()));
    }
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |at: usize| {
        s.get(at..at + 2)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(digits)
    };
    let mut secs = two(1)? * 3600;
    let mut len = 3;
    for unit in [60, 1] {
        if colon && s.get(len) != Some(&b':') {
            break;
        }
        let Some(value) = two(len + usize::from(colon)) else {
            break;
        };
        if value > 59 {
            return None;
        }
        secs += value * unit;
        len += 2 + usize::from(colon);
    }
    // ZoneOffset's limit.
    (secs <= 18 * 3600).then_some((sign * secs, len))
}

/// A localized offset in seconds and its length: `GMT` alone, or `GMT` and `±H[H][:MM[:SS]]`
/// (`full`: `±HH:MM[:SS]`). A sign must be followed by an offset; minutes and seconds of 60 to
/// 99 are added on, as java.time's lenient reading adds them.
fn parse_localized_offset(s: &[u8], full: bool) -> Option<(i64, usize)> {
    let rest = s.strip_prefix(b"GMT")?;
    let sign = match rest.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some((0, 3)),
    };
    let hours = count_digits(&rest[1..], 2);
    if hours == 0 || (full && hours < 2) {
        return None;
    }
    let mut secs = digits(&rest[1..1 + hours]) * 3600;
    let mut len = 1 + hours;
    for (unit, required) in [(60, full), (1, false)] {
        match rest.get(len..len + 3) {
            Some([b':', d @ ..]) if d.iter().all(u8::is_ascii_digit) => {
                secs += digits(d) * unit;
                len += 3;
            }
            _ if required => return None,
            _ => break,
        }
    }
    // ZoneOffset's limit.
    (secs <= 18 * 3600).then_some((sign * secs, 3 + len))
}

/// How java.time resolves the fields: `time_format` patterns with its default (SMART),
/// Elasticsearch's `strict_date_optional_time` parameters strictly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resolver {
    Smart,
    Strict,
}

/// Validates the parsed fields and turns them into epoch milliseconds.
fn resolve(f: &Fields, default_year: i64, has_offset: bool, resolver: Resolver) -> Option<i64> {
    let smart = resolver == Resolver::Smart;
    let year = f.year.unwrap_or(default_year);
    // java.time's year range (a pattern's `yyyy` is the year of the era: 0 is not one); it
    // also keeps the arithmetic below far from overflow.
    let first_year = if smart { 1 } else { -999_999_999 };
    if !(first_year..=999_999_999).contains(&year) {
        return None;
    }
    let (month, day) = match (f.month, f.day, f.day_of_year) {
        (Some(month), Some(day), _) => {
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
                return None;
            }
            // The SMART resolver clips a day past the month's end to its last day (Feb 30 is
            // Feb 28).
            let last = days_in_month(year, month);
            match day > last {
                true if smart => (month, last),
                true => return None,
                false => (month, day),
            }
        }
        // A day of the year makes the date with the year (366 only in a leap year).
        (_, _, Some(day_of_year)) => {
            if !(1..=365 + i64::from(is_leap(year))).contains(&day_of_year) {
                return None;
            }
            let days = days_from_civil(year, 1, 1) + day_of_year - 1;
            let (_, month, day) = civil_from_days(days);
            (month, day)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    // java.time cross-checks the date's other fields parsed against it: the month or day a
    // day of the year left over, the day of the year beside a month and day, the weekday (all
    // before 24:00 moves the date on).
    let from_month_and_day = f.month.is_some() && f.day.is_some();
    if (!from_month_and_day && (f.month.is_some_and(|m| m != month) || f.day.is_some_and(|d| d != day)))
        || (from_month_and_day && f.day_of_year.is_some_and(|d| d != days - days_from_civil(year, 1, 1) + 1))
        || f.weekday.is_some_and(|w| w != (days + 3).rem_euclid(7) + 1)
    {
        return None;
    }
    // The hour, from every field that gives one; they must agree. `h` (12 is 0) and `K` are an
    // hour of AM/PM: with AM/PM each gives the hour, and with or without, each must be the
    // hour's (checked below). `k` 24 is midnight.
    let of_ampm = |h: Option<i64>, last: i64| match h {
        Some(h) if !(0..=last).contains(&h) => Err(()),
        h => Ok(h.map(|h| h % 12)),
    };
    let hours_of_ampm = [of_ampm(f.hour12, 12).ok()?, of_ampm(f.hour_of_ampm, 11).ok()?];
    let from_ampm = f.ampm.map(|ampm| hours_of_ampm.map(|h| h.map(|h| ampm * 12 + h)));
    let from_clock = match f.clock_hour {
        Some(k) if (0..=24).contains(&k) => Some(k % 24),
        Some(_) => return None,
        None => None,
    };
    let mut hour = f.hour;
    for h in from_ampm.into_iter().flatten().chain([from_clock]).flatten() {
        match hour {
            Some(other) if other != h => return None,
            _ => hour = Some(h),
        }
    }
    let hour = hour?;
    // java.time only fills in missing time fields from the right: HH alone is a time, HH:ss is not.
    if (f.minute.is_none() && (f.second.is_some() || f.nano.is_some()))
        || (f.second.is_none() && f.nano.is_some())
    {
        return None;
    }
    let (minute, second) = (f.minute.unwrap_or(0), f.second.unwrap_or(0));
    // The SMART resolver reads 24:00:00 (and nothing else at hour 24) as the next day's midnight.
    let end_of_day = smart && hour == 24 && minute == 0 && second == 0 && f.nano.unwrap_or(0) == 0 && f.ampm.is_none();
    let hour = if end_of_day { 0 } else { hour };
    if !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
        || f.ampm.is_some_and(|ampm| ampm != hour / 12)
        || hours_of_ampm.iter().flatten().any(|&h| h != hour % 12)
    {
        return None;
    }
    let days = days + i64::from(end_of_day);
    // An offset gives the instant; a zone without one gives it by its rules (Java's `Parsed`).
    let offset = match (has_offset, f.offset, f.zone) {
        (false, ..) => 0,
        (true, Some(offset), _) => offset,
        (true, None, Some(zone)) => offset_at_local(zone, days * 86_400 + hour * 3600 + minute * 60 + second)?,
        (true, None, None) => return None,
    };
    let secs_of_day = hour * 3600 + minute * 60 + second - offset;
    days
        .checked_mul(86_400_000)?
        .checked_add(secs_of_day * 1000 + f.nano.unwrap_or(0) / 1_000_000)
}

/// Elasticsearch's `strict_date_optional_time`:
/// `yyyy[-MM[-dd]][T[HH[:mm[:ss[(.|,)S{1,9}]]][Z|±HH[[:]MM[[:]SS]]]]]`, UTC when no offset.
pub(super) fn parse_iso_ms(s: &[u8]) -> Option<i64> {
    let num = |at: usize, n: usize| {
        s.get(at..at + n)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(digits)
    };
    let is = |at: usize, c: u8| s.get(at) == Some(&c);
    let mut f = Fields {
        year: Some(num(0, 4)?),
        month: Some(1),
        day: Some(1),
        hour: Some(0),
        offset: Some(0),
        ..Fields::default()
    };
    // A separator not followed by its digits can only leave trailing text, so fail at once.
    let mut pos = 4;
    if is(pos, b'-') {
        f.month = Some(num(pos + 1, 2)?);
        pos += 3;
        if is(pos, b'-') {
            f.day = Some(num(pos + 1, 2)?);
            pos += 3;
        }
    }
    if is(pos, b'T') {
        pos += 1;
        if let Some(hour) = num(pos, 2) {
            f.hour = Some(hour);
            pos += 2;
            if is(pos, b':') {
                f.minute = Some(num(pos + 1, 2)?);
                pos += 3;
                if is(pos, b':') {
                    f.second = Some(num(pos + 1, 2)?);
                    pos += 3;
                    if is(pos, b'.') || is(pos, b',') {
                        let n = count_digits(&s[pos + 1..], 9);
                        if n == 0 {
                            return None;
                        }
                        f.nano = Some(digits(&s[pos + 1..pos + 1 + n]) * 10_i64.pow(9 - n as u32));
                        pos += 1 + n;
                    }
                }
            }
            // The offset belongs to the time: a bare `T` takes none.
            if pos < s.len() {
                let (offset, n) = parse_offset(&s[pos..], is(pos + 3, b':'), b"Z")?;
                f.offset = Some(offset);
                pos += n;
            }
        }
    }
    if pos != s.len() {
        return None;
    }
    resolve(&f, 0, true, Resolver::Strict)
}

#[cfg(test)]
#[rustfmt::skip] // keeps the case tables one case per line
mod tests;
