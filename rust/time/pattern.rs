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
//! bytes with no allocation, followed by integer calendar arithmetic.

use std::time::{SystemTime, UNIX_EPOCH};

/// A compiled java.time pattern.
#[derive(Debug, Clone)]
pub struct DatePattern {
    items: Vec<Item>,
    /// Java fixes the default year when the converter is built, not per record.
    default_year: i64,
    /// As in Java, an offset anywhere in the pattern, even in an optional section, is required.
    has_offset: bool,
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
        signed: bool,
    },
    /// English month or weekday names (full or abbreviated) or AM/PM, case-sensitive as in java.time.
    Name(Field),
    /// `±HH[[:]MM[[:]SS]]`; colons exactly when the pattern has them. `Z` too when `z`.
    Offset {
        colon: bool,
        z: bool,
    },
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
        let has_offset = sample.offset.is_some(); // every optional section is printed
        resolve(&sample, default_year, has_offset, Resolver::Smart)?;
        Some(Self {
            items,
            default_year,
            has_offset,
        })
    }

    /// Epoch milliseconds, or None when the text does not match or is not a valid date.
    pub(super) fn parse_ms(&self, text: &[u8]) -> Option<i64> {
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
        (b'X', 1..=5) => Item::Offset { colon, z: true },
        (b'x', 1..=5) => Item::Offset { colon, z: false },
        (b'Z', 1..=3) => Item::Offset {
            colon: false,
            z: false,
        },
        (b'Z', 5) => Item::Offset {
            colon: true,
            z: true,
        },
        _ => return None,
    })
}

/// Appends a number with java.time's "adjacent value parsing": a fixed-width number right after
/// another number is read at exactly its width and the run's first number leaves room for it
/// (so `yyyyMMdd` works); a variable-width one ends the run and pins the previous first number
/// to its strict width. Numbers outside runs are lenient: 1 to 9 digits. A fraction (`S…`) is
/// lenient wherever it stands: 0 to 9 digits (`ss.SSS` reads `03.`, `03.5` and `03.123456`),
/// while a run's first number still leaves its pattern width for it.
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
            if fixed {
                *reserve += strict.1;
            }
            if *first_field == Field::Year2 && !fixed {
                (*min, *max, *reserve) = (1, 9, 0);
            } else if first_fixed || !fixed {
                (*min, *max) = first.strict;
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
            Item::Offset { z: true, .. } => out.push(b'Z'),
            Item::Offset { colon, .. } => out.extend_from_slice(if *colon { b"+00:00" } else { b"+0000" }),
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
            Item::Literal(lit) => {
                if !rest.starts_with(lit) {
                    return None;
                }
                lit.len()
            }
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
                let value = digits(&rest[..n]);
                let value = match field {
                    Field::Year2 if n == 2 => 2000 + value,
                    // n <= 9: fractions never get a wider width.
                    Field::Nano => value * 10_i64.pow(9 - n as u32),
                    _ => value,
                };
                // A fraction of no digits sets nothing, as in java.time.
                if n > 0 {
                    f.set(*field, value)?;
                }
                sign + n
            }
            Item::Name(field) => {
                let (value, n) = parse_name(*field, rest)?;
                f.set(*field, value)?;
                n
            }
            Item::Offset { colon, z } => {
                let (value, n) = parse_offset(rest, *colon, *z)?;
                f.set(Field::Offset, value)?;
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
    let n = count_digits(s, 9);
    (n > 0).then(|| (digits(&s[..n]), n))
}

/// An offset in seconds east of UTC and its length: `±HH[[:]MM[[:]SS]]` (java.time's lenient
/// reading: minutes and seconds optional, colons exactly when `colon`), or `Z` when `z`.
fn parse_offset(s: &[u8], colon: bool, z: bool) -> Option<(i64, usize)> {
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        b'Z' if z => return Some((0, 1)),
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
    let offset = if has_offset { f.offset? } else { 0 };
    let secs_of_day = hour * 3600 + minute * 60 + second - offset;
    (days + i64::from(end_of_day))
        .checked_mul(86_400_000)?
        .checked_add(secs_of_day * 1000 + f.nano.unwrap_or(0) / 1_000_000)
}

/// Elasticsearch's `strict_date_optional_time`:
/// `yyyy[-MM[-dd]][T[HH[:mm[:ss[(.|,)S{1,9}]]]][Z|±HH[[:]MM[[:]SS]]]]`, UTC when no offset.
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
        }
        if pos < s.len() {
            let (offset, n) = parse_offset(&s[pos..], is(pos + 3, b':'), true)?;
            f.offset = Some(offset);
            pos += n;
        }
    }
    if pos != s.len() {
        return None;
    }
    resolve(&f, 0, true, Resolver::Strict)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 => 28 + i64::from(is_leap(year)),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm: years start
/// in March, so the leap day is the last day of a year and months have a closed-form length).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_based_month + 2) / 5 + 1;
    let month = if march_based_month < 10 { march_based_month + 3 } else { march_based_month - 9 };
    // January and February belong to the next year.
    (era * 400 + year_of_era + i64::from(month <= 2), month, day)
}

/// The civil year of a day count.
fn year_of_days(days: i64) -> i64 {
    civil_from_days(days).0
}

fn current_utc_year() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    year_of_days(secs.div_euclid(86_400))
}

#[cfg(test)]
#[rustfmt::skip] // keeps the case tables one case per line
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2014-06-23T00:00:00Z
    const T: i64 = 1_403_481_600_000;

    /// Parses each (pattern, text) and compares with the expected epoch milliseconds.
    fn check(cases: &[(&str, &str, Option<i64>)]) {
        for &(pattern, text, want) in cases {
            let compiled = DatePattern::compile(pattern);
            let compiled = compiled.unwrap_or_else(|| panic!("{pattern:?} refused"));
            assert_eq!(compiled.parse_ms(text.as_bytes()), want, "{pattern:?} {text:?}");
        }
    }

    #[test]
    fn common_patterns() {
        check(&[
            ("yyyy-MM-dd'T'HH:mm:ssX", "2014-06-23T00:00:00Z", Some(T)),
            ("yyyy-MM-dd HH:mm:ss", "2016-01-01 12:00:00", Some(1_451_649_600_000)),
            ("dd/MMM/yyyy:HH:mm:ss Z", "10/Oct/2000:13:55:36 -0700", Some(971_211_336_000)),
            ("dd/MMM/yyyy:HH:mm:ss Z", "10/OCT/2000:13:55:36 -0700", None), // names are case-sensitive
            ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2014-06-23T02:00:00.250+02:00", Some(T + 250)),
            ("EEE, dd MMM yyyy HH:mm:ss Z", "Mon, 23 Jun 2014 00:00:00 +0000", Some(T)),
            ("EEEE, MMMM d, yyyy h:mm a", "Monday, June 23, 2014 12:00 AM", Some(T)),
            ("yyyyMMddHHmmss", "20140623000000", Some(T)),
            ("ddMMyyyy HH", "23062014 00", Some(T)),
            ("yyyy-MM-dd HH", "2014-06-23 00", Some(T)),
            ("dd/MM/yy HH:mm", "23/06/14 00:00", Some(T)),
            ("dd/MM/yy HH:mm", "01/01/99 00:00", Some(4_070_908_800_000)),
            ("yyyy-MM-dd'T'HH:mm:ss''", "2014-06-23T00:00:00'", Some(T)),
            ("'day' d 'of' M, y 'at' H", "day 23 of 6, 2014 at 0", Some(T)),
            ("yyyy-MM-dd HH:mm:ss", "1969-12-31 23:59:59", Some(-1000)),
        ]);
    }

    #[test]
    fn lenient_widths() {
        // Numbers between separators take any width; adjacent ones keep the pattern's.
        check(&[
            ("yyyy-MM-dd HH:mm:ss", "2014-6-23 0:0:0", Some(T)),
            ("yyyy-MM-dd HH:mm:ss", "2014-006-023 00:00:00", Some(T)),
            ("yyyyMMdd HH", "2014623 00", None),
            ("HHmm dd MM yyyy", "1230 23 06 2014", Some(T + 45_000_000)),
            ("MMM d yyyy HH", "6 23 2014 00", Some(T)), // a month name may be its number
        ]);
    }

    #[test]
    fn fractions() {
        let p = "yyyy-MM-dd HH:mm:ss.SSS";
        check(&[
            (p, "2014-06-23 00:00:00.123", Some(T + 123)),
            (p, "2014-06-23 00:00:00.1", Some(T + 100)),
            (p, "2014-06-23 00:00:00.123456789", Some(T + 123)),
            (p, "2014-06-23 00:00:00.1234567891", None),
            (p, "2014-06-23 00:00:00.", Some(T)), // no digits: lenient java.time takes that
            (p, "2014-06-23 00:00:00.+5", None),
            ("yyyy-MM-dd HH:mm:ss.SSSSSS", "1969-12-31 23:59:59.500001", Some(-500)),
            ("yyyyMMddHHmmssSSS", "20140623000000042", Some(T + 42)),
            ("yyyyMMddHHmmssSSS", "2014062300000004", None),
            // right after the seconds, the fraction takes what the seconds leave, none included
            ("yyyy-MM-dd HH:mm:ssSSS", "2014-06-23 00:00:01", Some(T + 1000)),
            ("yyyy-MM-dd HH:mm:ssSSS", "2014-06-23 00:00:021", Some(T + 2100)),
        ]);
    }

    /// A lenient `+` before a number whose pattern width varies, never before a fixed one; `-`
    /// makes a year of era or a field below its range. Each case as java.time answers it.
    #[test]
    fn signs() {
        check(&[
            ("yyyy-MM-dd HH:mm:ss", "+2014-06-23 00:00:04", Some(T + 4000)),
            ("yyyy-MM-dd HH:mm:ss", "-2014-06-23 00:00:04", None),
            ("yyyy-MM-dd HH:mm:ss", "2014-06-+23 00:00:04", None),
            ("yyyy-M-d H:m:s", "2014-+6-+23 +0:+0:+4", Some(T + 4000)),
            ("yyyyMMddHHmmssSSS", "+20140623000000042", Some(T + 42)),
            ("yyyy-DD HH", "2014-+174 00", Some(T)),
            ("yyyy-DDD HH", "2014-+174 00", None),
        ]);
    }

    #[test]
    fn am_pm() {
        let p = "yyyy-MM-dd hh:mm:ss a";
        let jan_1_2016 = 1_451_606_400_000;
        check(&[
            (p, "2016-01-01 12:00:00 AM", Some(jan_1_2016)),
            (p, "2016-01-01 12:30:00 PM", Some(jan_1_2016 + 45_000_000)),
            (p, "2016-01-01 01:00:00 PM", Some(jan_1_2016 + 46_800_000)),
            (p, "2016-01-01 01:00:00 pm", None), // names are case-sensitive
            (p, "2016-01-01 13:00:00 PM", None),
            ("yyyy-MM-dd HH a", "2016-01-01 13 PM", Some(jan_1_2016 + 46_800_000)),
            ("yyyy-MM-dd HH a", "2016-01-01 13 AM", None),
        ]);
    }

    #[test]
    fn offsets() {
        check(&[
            ("yyyy-MM-dd HH:mmXXX", "2014-06-23 05:30+05:30", Some(T)),
            ("yyyy-MM-dd HH:mmXXX", "2014-06-23 00:00Z", Some(T)),
            ("yyyy-MM-dd HH:mmXXX", "2014-06-23 05:30+0530", None),
            ("yyyy-MM-dd HH:mmXX", "2014-06-23 05:30+0530", Some(T)),
            ("yyyy-MM-dd HH:mmX", "2014-06-22 19:00-05", Some(T)),
            ("yyyy-MM-dd HH:mmX", "2014-06-22 18:30-0530", Some(T)),
            ("yyyy-MM-dd HH:mmxxx", "2014-06-23 00:00+00:00", Some(T)),
            ("yyyy-MM-dd HH:mmxxx", "2014-06-23 00:00Z", None),
            ("yyyy-MM-dd HH:mm:ssZZZZZ", "2014-06-23 00:00:30+00:00:30", Some(T)),
            ("yyyy-MM-dd HH:mm Z", "2014-06-23 00:00 Z", None),
            ("yyyy-MM-dd HH:mm Z", "2014-06-23 00:00 +1900", None),
            ("yyyy-MM-dd HH:mm Z", "2014-06-23 00:00 +0060", None),
        ]);
    }

    #[test]
    fn optional_sections() {
        let p = "yyyy-MM-dd HH:mm[:ss][.SSS]";
        check(&[
            (p, "2014-06-23 00:00", Some(T)),
            (p, "2014-06-23 00:00:01.5", Some(T + 1500)),
            (p, "2014-06-23 00:00.5", None), // a fraction needs seconds
            ("yyyy-MM-dd[ HH]", "2014-06-23 00", Some(T)),
            // An offset in an optional section is still required, as in Java.
            ("yyyy-MM-dd HH:mm[X]", "2014-06-23 00:00Z", Some(T)),
            ("yyyy-MM-dd HH:mm[X]", "2014-06-23 00:00", None),
        ]);
    }

    #[test]
    fn leap_days_and_ranges() {
        let p = "yyyy-MM-dd HH:mm:ss";
        check(&[
            (p, "2016-02-29 00:00:00", Some(1_456_704_000_000)),
            (p, "2000-02-29 00:00:00", Some(951_782_400_000)),
            // A year too large for epoch milliseconds is invalid, not a panic.
            (p, "999999999-01-01 00:00:00", None),
        ]);
        // java.time's SMART resolver: a day past the month's end is its last day, and 24:00:00
        // is the next day's midnight (checked against a JDK).
        let day = |y, m, d| Some(days_from_civil(y, m, d) * 86_400_000);
        check(&[
            (p, "2015-02-29 00:00:00", day(2015, 2, 28)),
            (p, "1900-02-29 00:00:00", day(1900, 2, 28)),
            (p, "2016-02-31 00:00:00", day(2016, 2, 29)),
            (p, "2014-06-31 00:00:00", day(2014, 6, 30)),
            (p, "2014-01-01 24:00:00", day(2014, 1, 2)),
            (p, "2014-12-31 24:00:00", day(2015, 1, 1)),
        ]);
        for bad in [
            "2014-13-01 00:00:00", "2014-00-01 00:00:00", "2014-01-00 00:00:00", "0000-01-01 00:00:00",
            "2014-01-32 00:00:00", "2014-01-01 24:00:01", "2014-01-01 24:01:00", "2014-01-01 25:00:00",
            "2014-01-01 00:60:00",
            "2014-01-01 00:00:60", "2014-01-01 00:00:0x", "2014-01-01 00:00:00 ",
            " 2014-01-01 00:00:00", "2014-01-01T00:00:00", "2014-01-01 00:00", "",
        ] {
            check(&[(p, bad, None)]);
        }
    }

    #[test]
    fn names_are_matched_fully_and_case_sensitively() {
        check(&[
            ("d MMM yyyy HH", "23 June 2014 00", Some(T)),
            ("d MMM yyyy HH", "23 jun 2014 00", None),
            ("d MMM yyyy HH", "23 JUN 2014 00", None),
            ("d MMM yyyy HH", "23 Juni 2014 00", None),
            ("d MMMM yyyy HH", "1 Sep 2014 00", Some(1_409_529_600_000)),
            ("d MMMM yyyy HH", "1 sep 2014 00", None),
            ("yyyy-MM-dd h a", "2014-09-01 12 am", None),
            ("EEE d MMM yyyy HH", "Frid 1 Sep 2014 00", None),
        ]);
    }

    /// A weekday must be the date's (java.time's cross-check, checked against a JDK): after the
    /// SMART resolver has clipped the day, and before 24:00 moves the date on; a number in its
    /// place (lenient parsing) is compared as the ISO weekday, 1 = Monday.
    #[test]
    fn weekdays_are_checked_against_the_date() {
        let day = |y, m, d| Some(days_from_civil(y, m, d) * 86_400_000);
        let p = "EEE yyyy-MM-dd HH:mm";
        check(&[
            (p, "Mon 2017-01-02 00:00", day(2017, 1, 2)),
            (p, "Tue 2017-01-02 00:00", None),
            ("EEEE yyyy-MM-dd HH:mm", "Sunday 1970-01-04 00:00", day(1970, 1, 4)),
            ("EEEE yyyy-MM-dd HH:mm", "Thursday 1970-01-04 00:00", None),
            (p, "Wed 1969-12-31 00:00", day(1969, 12, 31)),
            (p, "Sat 2015-02-29 00:00", day(2015, 2, 28)),
            (p, "Sun 2015-02-29 00:00", None),
            (p, "Mon 2017-01-02 24:00", day(2017, 1, 3)),
            (p, "Tue 2017-01-02 24:00", None),
            (p, "1 2017-01-02 00:00", day(2017, 1, 2)),
            (p, "2 2017-01-02 00:00", None),
            (p, "8 2017-01-02 00:00", None),
            ("EEE EEE yyyy-MM-dd HH:mm", "Mon Mon 2017-01-02 00:00", day(2017, 1, 2)),
            ("EEE EEE yyyy-MM-dd HH:mm", "Mon Tue 2017-01-02 00:00", None),
        ]);
        // Without a year, the pattern itself is checked in the current year (Elasticsearch
        // formats the epoch, a Thursday, and parses it back in that year): 2026 began on a
        // Thursday, 2027 on a Friday.
        let yearless = "EEE MMM dd HH:mm:ss";
        let in_2026 = DatePattern::compile_in(yearless, 2026).expect("2026 began on a Thursday");
        assert_eq!(in_2026.parse_ms(b"Mon Jun 22 00:00:00"), day(2026, 6, 22));
        assert_eq!(in_2026.parse_ms(b"Tue Jun 22 00:00:00"), None);
        assert!(DatePattern::compile_in(yearless, 2027).is_none());
        assert!(DatePattern::compile_in("MMM dd HH:mm:ss", 2027).is_some());
        // Every weekday name against days around the epoch and a leap day.
        let days = [(1969, 12, 18..=31), (1970, 1, 1..=14), (2016, 2, 22..=29), (2016, 3, 1..=7)];
        for (y, m, range) in days {
            for dd in range {
                let d = days_from_civil(y, m, dd);
                for (w, name) in DAYS.iter().enumerate() {
                    let text = format!("{} {y:04}-{m:02}-{dd:02} 00:00", &name[..3]);
                    let ok = (d + 3).rem_euclid(7) == w as i64;
                    check(&[(p, &text, ok.then_some(d * 86_400_000))]);
                }
            }
        }
    }

    #[test]
    fn missing_year_is_current_year() {
        let year = current_utc_year();
        assert!((2024..3000).contains(&year));
        let want = days_from_civil(year, 6, 23) * 86_400_000 + 3_600_000;
        check(&[("MM-dd HH:mm:ss", "06-23 01:00:00", Some(want))]);
    }

    #[test]
    fn refused_and_accepted_patterns() {
        for pattern in [
            // incomplete: no time, no date, no day, no month, 12-hour clock without AM/PM,
            // seconds without minutes, a fraction without seconds
            "", "yyyy-MM-dd", "HH:mm:ss", "yyyy-MM HH", "yyyy-dd HH", "yyyy-MM-dd hh:mm",
            "yyyy-MM-dd HH:ss", "yyyy-MM-dd HH:mm.SSS",
            // unknown or unsupported letters and counts, reserved characters, bad nesting
            "yyyy-MM-dd'T'HH:mm:ssq", "yyyy-MM-dd HHH", "ddd-MM-yyyy HH", "MMMMMM dd yyyy HH",
            "yyyy-MM-dd HH:mm:ss.SSSSSSSSSS", "yyyy-MM-dd HH aa", "yyyy-MM-dd HH ZZZZ",
            "yyyy-MM-dd HH z", "yyyy-MM-dd HH VV", "yyyy-MM-dd HH XXXXXX", "yyyy-MM-dd HH 'T",
            "yyyy-MM-dd HH]", "yyyy-MM-dd HH {", "yyyy-MM-dd HH #", "uuuu-MM-dd HH:mm:ss",
            "[[[[[[[[[yyyy-MM-dd HH]]]]]]]]]",
            // what they print for the epoch does not read back: a variable-width number between
            // adjacent ones takes the digits of the next (as java.time's check finds)
            "yyyyDHH", "yyyyMdHH", "yyyyMMdH",
            // `yy` reads greedily when lenient unless it leads a run of fixed widths to its end
            "yyMMddH", "yyMMddHmm", "yyDDDH", "yyMMdHH", "ddMMyyHH", "ddMMyyHHmm", "MMddyyH",
        ] {
            assert!(DatePattern::compile(pattern).is_none(), "{pattern:?}");
        }
        let accepted = ["MM-dd HH", "yyyy-MM-dd h a", "[yyyy-MM-dd HH", "yyyy-MM-dd HH ''", "yyyyMMddHH",
                        "yyyyDDDHH", "yyyyMMdd'T'HHmmss.SSSZ", "dd/MMM/yyyy:HH:mm:ss xx", "EEE, dd MMM yyyy HH:mm:ss XXX",
                        "yyMMddHHmmss", "yyMMdd HH:mm", "dd/MM/yy HH:mm:ss", "ddMMyy HH", "yyMMddHHmmssSSS", "HHmm ddMMyy"];
        for pattern in accepted {
            assert!(DatePattern::compile(pattern).is_some(), "{pattern:?}");
        }
    }

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1600, 1, 1), -135_140);
        assert_eq!(year_of_days(-1), 1969);
        assert_eq!(year_of_days(0), 1970);
        assert_eq!(year_of_days(11_016), 2000);
        // Every day of four centuries goes there and back.
        for days in days_from_civil(1899, 12, 1)..days_from_civil(2300, 3, 1) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }

    /// `k` (1-24, 24 is midnight), `K` (0-11, with AM/PM) and `D` (day of the year), resolved
    /// and cross-checked as java.time's default resolver does them.
    #[test]
    fn clock_hours_and_days_of_the_year() {
        let day = |y, m, d| Some(days_from_civil(y, m, d) * 86_400_000);
        let hour = |y, m, d, h: i64| day(y, m, d).map(|ms| ms + h * 3_600_000);
        check(&[
            ("yyyy-MM-dd kk:mm", "2014-06-23 24:00", day(2014, 6, 23)), // midnight, not the next day
            ("yyyy-MM-dd kk:mm", "2014-06-23 13:00", hour(2014, 6, 23, 13)),
            ("yyyy-MM-dd kk:mm", "2014-06-23 00:00", day(2014, 6, 23)), // 0 tolerated
            ("yyyy-MM-dd kk:mm", "2014-06-23 25:00", None),
            ("yyyy-MM-dd HH kk", "2014-06-23 13 13", hour(2014, 6, 23, 13)),
            ("yyyy-MM-dd HH kk", "2014-06-23 00 24", day(2014, 6, 23)),
            ("yyyy-MM-dd HH kk", "2014-06-23 13 14", None),
            ("yyyy-MM-dd K a", "2014-06-23 0 PM", hour(2014, 6, 23, 12)),
            ("yyyy-MM-dd K a", "2014-06-23 11 AM", hour(2014, 6, 23, 11)),
            ("yyyy-MM-dd K a", "2014-06-23 12 PM", None),
            ("yyyy-DDD HH", "2014-174 00", day(2014, 6, 23)),
            ("yyyy-D HH", "2016-60 00", day(2016, 2, 29)),
            ("yyyy-D HH", "2015-60 00", day(2015, 3, 1)),
            ("yyyy-D HH", "2016-366 00", day(2016, 12, 31)),
            ("yyyy-D HH", "2015-366 00", None), // not a leap year: no 366th day, even when SMART
            ("yyyy-D HH", "2015-0 00", None),
            ("yyyy-MM-dd DDD HH", "2014-06-23 174 00", day(2014, 6, 23)),
            ("yyyy-MM-dd DDD HH", "2014-06-23 175 00", None),
            ("yyyy-MM DDD HH", "2014-06 174 00", day(2014, 6, 23)),
            ("yyyy-MM DDD HH", "2014-07 174 00", None),
            // Without AM/PM, `h` and `K` beside an hour must be its hour of AM/PM.
            ("yyyy-MM-dd HH K", "2014-06-23 13 1", hour(2014, 6, 23, 13)),
            ("yyyy-MM-dd HH K", "2014-06-23 13 5", None),
            ("yyyy-MM-dd HH K", "2014-06-23 13 12", None),
            ("yyyy-MM-dd kk K", "2014-06-23 24 0", day(2014, 6, 23)),
            ("yyyy-MM-dd HH h", "2014-06-23 12 12", hour(2014, 6, 23, 12)),
            ("yyyy-MM-dd HH h", "2014-06-23 13 1", hour(2014, 6, 23, 13)),
            ("yyyy-MM-dd HH h", "2014-06-23 13 13", None),
            ("yyyy-MM-dd HH:mm h", "2014-06-23 24:00 12", day(2014, 6, 24)),
            ("EEE yyyy-DDD HH", "Mon 2014-174 00", day(2014, 6, 23)),
            ("EEE yyyy-DDD HH", "Tue 2014-174 00", None),
        ]);
        for pattern in ["yyyy-MM-dd K", "yyyy-MM-dd KK:mm", "yyyy-DDDD HH", "yyyy HH"] {
            assert!(DatePattern::compile(pattern).is_none(), "{pattern:?}");
        }
    }

    proptest! {
        #[test]
        fn days_match_a_day_by_day_count(
            year in 1600i64..2400, month in 1i64..=12, day_seed in 0i64..31,
        ) {
            // Drawn within the month (rejecting impossible days instead runs out of rejects
            // when PROPTEST_CASES is raised).
            let day = 1 + day_seed % days_in_month(year, month);
            let whole_years: i64 = (year.min(1970)..year.max(1970))
                .map(|y| 365 + i64::from(is_leap(y)))
                .sum();
            let in_year = (1..month).map(|m| days_in_month(year, m)).sum::<i64>() + day - 1;
            let want = if year >= 1970 { whole_years + in_year } else { in_year - whole_years };
            prop_assert_eq!(days_from_civil(year, month, day), want);
            prop_assert_eq!(year_of_days(want), year);
        }

        #[test]
        fn printed_timestamps_parse_back(
            secs in -2_000_000_000i64..4_000_000_000, ms in 0i64..1000,
        ) {
            let pattern = DatePattern::compile("yyyy-MM-dd'T'HH:mm:ss.SSSX").unwrap();
            let days = secs.div_euclid(86_400);
            let year = year_of_days(days);
            let month = (1..=12).rev().find(|&m| days_from_civil(year, m, 1) <= days).unwrap();
            let day = days - days_from_civil(year, month, 1) + 1;
            let t = secs.rem_euclid(86_400);
            let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
            let text = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z");
            let want = Some(secs * 1000 + ms);
            prop_assert_eq!(pattern.parse_ms(text.as_bytes()), want);
            prop_assert_eq!(parse_iso_ms(text.as_bytes()), want);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[0-9a-zA-Z:+.'\\[\\] -]{0,30}") {
            for pattern in ["yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yyyyMMddHHmmss", "MMM d[ yy] h a"] {
                let _ = DatePattern::compile(pattern).unwrap().parse_ms(text.as_bytes());
            }
            let _ = parse_iso_ms(text.as_bytes());
            if let Some(pattern) = DatePattern::compile(&text) {
                let _ = pattern.parse_ms(text.as_bytes());
            }
        }
    }
}
