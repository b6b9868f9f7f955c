//! Time zones in `time_format` patterns: `z`, `zz`, `zzz` and `v` (short names: `PST`, `PT`,
//! `CET`, and zone ids), `zzzz` and `vvvv` (long names: `Pacific Standard Time`) and `VV` (zone
//! ids), read as java.time reads them in Elasticsearch, and the zone's offset at a local date and
//! time. (`O`, `GMT+8`, is an offset, not a zone: see `pattern`.)
//!
//! Which texts each letter takes, and the zone each names, are java.time's own answers with
//! English CLDR names (`zone_names.tsv`): a name gives its zone, whose rules then give the offset
//! (`PST` in July is daylight time, as in Java). Offsets (`+01:00`, `GMT+01:00`, `UTC-05`) are
//! read by rule. Rules come from the tz database bundled with jiff; a local time in a gap moves
//! on by the gap and one in an overlap takes the earlier offset, as `ZonedDateTime.ofLocal` does.
//!
//! It is fast enough for a per-record call: the names are sorted once and searched by bisection,
//! each zone's rules are looked up once, and the stretch of time over which the last zone's
//! offset holds is remembered, so that records in the same zone and season skip the rules.

use std::cell::Cell;
use std::sync::OnceLock;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Which names a pattern letter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZoneStyle {
    /// `z`, `zz`, `zzz`, `v` (java.time reads generic names with the same names).
    Short,
    /// `zzzz`, `vvvv`.
    Full,
    /// `VV`.
    Id,
}

/// A parsed zone, as a pattern field's value: a fixed offset in seconds east of UTC (within
/// ±18 h), or [`REGION`] plus the index of a zone with rules.
pub(super) type Zone = i64;
const REGION: Zone = 1 << 32;

struct Names {
    /// Per style (`Short`, `Full`, `Id`): (name, zone), sorted by name.
    sorted: [Vec<(&'static [u8], Zone)>; 3],
    /// The zone ids that have rules, and their rules once looked up (None: not in the database).
    ids: Vec<&'static str>,
    rules: Vec<OnceLock<Option<TimeZone>>>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut ids: Vec<&'static str> = Vec::new();
        let mut sorted: [Vec<(&'static [u8], Zone)>; 3] = Default::default();
        for line in include_str!("zone_names.tsv").lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let text = cols.next().expect("zone name");
            for (style, id) in cols.enumerate() {
                if id == "-" {
                    continue;
                }
                let zone = if let Some(offset) = fixed_id(id) {
                    offset
                } else {
                    let at = ids.iter().position(|&x| x == id).unwrap_or_else(|| {
                        ids.push(id);
                        ids.len() - 1
                    });
                    REGION + at as Zone
                };
                sorted[style].push((text.as_bytes(), zone));
            }
        }
        for list in &mut sorted {
            list.sort_unstable();
        }
        let rules = ids.iter().map(|_| OnceLock::new()).collect();
        Names { sorted, ids, rules }
    })
}

/// java.time's `SystemV` ids, which the tz database no longer has: the fixed ones as their
/// offsets, the ones with daylight time as POSIX rules (daylight time from the last Sunday of
/// April to the last Sunday of October, the 1976-1986 US rule, which java.time still applies;
/// its 1974-1975 exceptions are not kept).
const SYSTEMV: [(&str, &str); 13] = [
    ("SystemV/AST4", "-04"), ("SystemV/EST5", "-05"), ("SystemV/CST6", "-06"), ("SystemV/MST7", "-07"),
    ("SystemV/PST8", "-08"), ("SystemV/YST9", "-09"), ("SystemV/HST10", "-10"),
    ("SystemV/AST4ADT", "AST4ADT,M4.5.0,M10.5.0"), ("SystemV/EST5EDT", "EST5EDT,M4.5.0,M10.5.0"),
    ("SystemV/CST6CDT", "CST6CDT,M4.5.0,M10.5.0"), ("SystemV/MST7MDT", "MST7MDT,M4.5.0,M10.5.0"),
    ("SystemV/PST8PDT", "PST8PDT,M4.5.0,M10.5.0"), ("SystemV/YST9YDT", "YST9YDT,M4.5.0,M10.5.0"),
];

/// What a `SystemV` id stands for (an offset or a POSIX rule).
fn systemv(id: &str) -> Option<&'static str> {
    SYSTEMV.iter().find(|(old, _)| *old == id).map(|(_, now)| *now)
}

/// The offset of a zone id that is one (`Z`, and the fixed `SystemV` ids).
fn fixed_id(id: &str) -> Option<Zone> {
    let id = systemv(id).unwrap_or(id);
    match id {
        "Z" => Some(0),
        _ => parse_offset(id.as_bytes()).read().map(|(offset, _)| offset),
    }
}

/// The zone at the start of `s` and its length, as `style` reads it.
pub(super) fn parse_zone(s: &[u8], style: ZoneStyle) -> Option<(Zone, usize)> {
    match s.first()? {
        b'+' | b'-' => return parse_offset(s).read(),
        _ => {}
    }
    // `UTC`, `GMT` and `UT` may carry an offset (`GMT+01:00`); alone (or before an offset that
    // does not read, as `UTC+1`) they are UTC. `GMT0` is a zone id of its own (in the table).
    for prefix in [&b"UTC"[..], b"GMT", b"UT"] {
        if s.starts_with(prefix) && !s.starts_with(b"GMT0") {
            return match parse_offset(&s[prefix.len()..]) {
                Offset::Read(offset, n) => Some((offset, prefix.len() + n)),
                Offset::Absent => Some((0, prefix.len())),
                Offset::Invalid => None,
            };
        }
    }
    let index = match style {
        ZoneStyle::Short => 0,
        ZoneStyle::Full => 1,
        ZoneStyle::Id => 2,
    };
    let names = &names().sorted[index];
    // Records mostly repeat the last zone: it is the answer when it begins `s` and none of the
    // longer names that begin with it (which sort right after it) does.
    let last = LAST_NAME.get()[index];
    if let Some(&(name, zone)) = names.get(last) {
        let longer = names[last + 1..].iter().take_while(|(longer, _)| longer.starts_with(name));
        if s.starts_with(name) && !longer.clone().any(|(longer, _)| s.starts_with(longer)) {
            return Some((zone, name.len()));
        }
    }
    let (at, zone, n) = longest_prefix(names, s)?;
    LAST_NAME.with(|cell| {
        let mut lasts = cell.get();
        lasts[index] = at;
        cell.set(lasts);
    });
    Some((zone, n))
}

/// The longest name that begins `s` (java.time takes the longest), by binary search: the names
/// that begin `s` sort at or before it, longer ones later, so the first found walking back from
/// where `s` would go is the longest; names with another first byte cannot begin it. Its index,
/// zone and length.
fn longest_prefix(names: &[(&'static [u8], Zone)], s: &[u8]) -> Option<(usize, Zone, usize)> {
    let end = names.partition_point(|(name, _)| *name <= s);
    names[..end]
        .iter()
        .enumerate()
        .rev()
        .take_while(|(_, (name, _))| name.first() == s.first())
        .find(|(_, (name, _))| s.starts_with(name))
        .map(|(at, &(name, zone))| (at, zone, name.len()))
}

/// An offset zone id as java.time reads it.
enum Offset {
    /// No `±HH` here (hours of 60 or more are no hours, for java.time).
    Absent,
    /// `±HH` past 18 hours (and under 60): the text is not a date.
    Invalid,
    Read(Zone, usize),
}

impl Offset {
    fn read(self) -> Option<(Zone, usize)> {
        match self {
            Offset::Read(offset, n) => Some((offset, n)),
            _ => None,
        }
    }
}

/// `±HH[:MM[:SS]]`, as java.time reads an offset zone id (`+0100` stops after the hours).
fn parse_offset(s: &[u8]) -> Offset {
    let sign = match s.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Offset::Absent,
    };
    let two = |at: usize| {
        s.get(at..at + 2)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
    };
    let Some(hours) = two(1).filter(|&h| h < 60) else { return Offset::Absent };
    let mut secs = hours * 3600;
    let mut len = 3;
    for unit in [60, 1] {
        match (s.get(len), two(len + 1)) {
            (Some(b':'), Some(v)) if v < 60 => {
                secs += v * unit;
                len += 3;
            }
            _ => break,
        }
    }
    if secs > 18 * 3600 {
        return Offset::Invalid;
    }
    Offset::Read(sign * secs, len)
}

/// A zone id's rules: the tz database's, or the POSIX rule of a `SystemV` id.
fn rules(id: &str) -> Option<TimeZone> {
    match systemv(id) {
        Some(posix) => TimeZone::posix(posix).ok(),
        None => TimeZone::get(id).ok(),
    }
}

/// Where the last region zone read on this thread keeps one offset: [from, until) in UTC seconds.
#[derive(Clone, Copy)]
struct Span {
    zone: Zone,
    from: i64,
    until: i64,
    offset: i64,
}

thread_local! {
    static LAST: Cell<Option<Span>> = const { Cell::new(None) };
    /// Per style, the index of the last name read on this thread.
    static LAST_NAME: Cell<[usize; 3]> = const { Cell::new([usize::MAX; 3]) };
}

/// 400 Gregorian years in seconds, and a local time well inside the years jiff's rules reach.
const CYCLE: i64 = 146_097 * 86_400;
const MAX_LOCAL: i64 = 253_000_000_000; // 9987-03-…

/// No zone's offset changes by a day or more, so a local time whose instant is a day inside a
/// span is in no gap or overlap, and takes the span's offset.
const MARGIN: i64 = 86_400;

/// The zone's offset (seconds east of UTC) for a local date and time given as seconds since
/// 1970-01-01T00:00 local. None when the zone has no rules here or the time is out of range.
pub(super) fn offset_at_local(zone: Zone, local_secs: i64) -> Option<i64> {
    if zone < REGION {
        return Some(zone);
    }
    if let Some(span) = LAST.get() {
        let at = local_secs.saturating_sub(span.offset);
        if span.zone == zone && at.saturating_sub(MARGIN) >= span.from && at.saturating_add(MARGIN) < span.until {
            return Some(span.offset);
        }
    }
    let names = names();
    let at = usize::try_from(zone - REGION).ok()?;
    let tz = names.rules.get(at)?.get_or_init(|| rules(names.ids[at])).as_ref()?;
    // Outside the years the rules reach (±9999), shift by whole 400-year cycles, which keep the
    // calendar and weekdays: the earliest offset before them, the last rule after them.
    let cycles = if local_secs > MAX_LOCAL {
        (local_secs - MAX_LOCAL + CYCLE - 1) / CYCLE
    } else if local_secs < -MAX_LOCAL {
        -((-MAX_LOCAL - local_secs + CYCLE - 1) / CYCLE)
    } else {
        0
    };
    let local_secs = local_secs - cycles * CYCLE;
    let local = TimeZone::UTC.to_datetime(Timestamp::from_second(local_secs).ok()?);
    let instant = tz.to_ambiguous_timestamp(local).compatible().ok()?;
    let offset = local_secs - instant.as_second();
    // The transitions around the instant bound its offset's span (none: it holds for ever). A
    // local time in a gap took the offset before it, not the span's own.
    let span_offset = i64::from(tz.to_offset(instant).seconds());
    let after = Timestamp::from_second(instant.as_second() + 1).ok();
    let from = after.and_then(|t| tz.preceding(t).next()).map_or(i64::MIN, |t| t.timestamp().as_second());
    let until = tz.following(instant).next().map_or(i64::MAX, |t| t.timestamp().as_second());
    LAST.set(Some(Span { zone, from, until, offset: span_offset }));
    Some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_offsets_and_ids() {
        let short = |s: &str| parse_zone(s.as_bytes(), ZoneStyle::Short);
        assert_eq!(short("+01:00 x"), Some((3600, 6)));
        assert_eq!(short("-00:30:15"), Some((-1815, 9)));
        assert_eq!(short("+0100"), Some((3600, 3)));
        assert_eq!(short("+19:00"), None);
        assert_eq!(short("GMT+01"), Some((3600, 6)));
        assert_eq!(short("UTC"), Some((0, 3)));
        assert_eq!(short("UT-05:00"), Some((-18000, 8)));
        assert_eq!(short("Z"), Some((0, 1)));
        let (pst, 3) = short("PST 2026").unwrap() else { panic!() };
        // the longest name wins: not `America/Argentina` ... but the whole id
        let (_, n) = short("America/Argentina/Buenos_Aires 2026").unwrap();
        assert_eq!(n, "America/Argentina/Buenos_Aires".len());
        // the last name read is remembered, but never stands in for a longer one
        assert_eq!(short("PST8PDT 2026").map(|(_, n)| n), Some(7));
        assert_eq!(short("PST 2026"), Some((pst, 3)));
        assert_eq!(short("PST8PDT 2026").map(|(_, n)| n), Some(7));
        assert_eq!(parse_zone(b"PST", ZoneStyle::Full), None);
        assert_eq!(parse_zone(b"PST", ZoneStyle::Id), None);
        // 2026-07-01T10:00 local in Los Angeles is daylight time; 2026-03-08T02:30 is in the gap.
        let local = |days: i64, secs: i64| days * 86_400 + secs;
        assert_eq!(offset_at_local(pst, local(20635, 36_000)), Some(-7 * 3600));
        assert_eq!(offset_at_local(pst, local(20520, 9_000)), Some(-8 * 3600));
        assert_eq!(offset_at_local(3600, 0), Some(3600));
        // A local time in a gap (02:30 on 2026-03-08 in Los Angeles) takes the offset before it,
        // and leaves behind the span after it with that span's own offset.
        assert_eq!(offset_at_local(pst, local(20520, 9_000)), Some(-8 * 3600));
        assert_eq!(offset_at_local(pst, local(20635, 36_000)), Some(-7 * 3600));
        // The remembered span never answers near its ends: every local time around the 2026
        // transitions of Los Angeles (each minute, either side) and Lord Howe (half-hour
        // shifts) agrees with the rules asked afresh.
        for (zone, days) in [(pst, [20520, 20758]), (short("Australia/Lord_Howe").unwrap().0, [20547, 20729])] {
            for minute in (days[0] * 1440 - 3000..days[0] * 1440 + 3000).chain(days[1] * 1440 - 3000..days[1] * 1440 + 3000) {
                let cached = offset_at_local(zone, minute * 60);
                LAST.set(None);
                assert_eq!(cached, offset_at_local(zone, minute * 60), "minute {minute}");
            }
        }
    }
}
