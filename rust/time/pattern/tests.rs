//! java.time patterns as java.time answers them: letters, leniency, adjacent values, offsets,
//! refusals.


use super::*;
use crate::time::calendar::year_of_days;
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
        "yyyy-MM-dd HH:mm:ss.SSSSSSSSSS", "yyyy-MM-dd HH aa",
        "yyyy-MM-dd HH zzzzz", "yyyy-MM-dd HH V", "yyyy-MM-dd HH VVV", "yyyy-MM-dd HH vv", "yyyy-MM-dd HH OO", "yyyy-MM-dd HH XXXXXX", "yyyy-MM-dd HH 'T",
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
                    "yyMMddHHmmss", "yyMMdd HH:mm", "dd/MM/yy HH:mm:ss", "ddMMyy HH", "yyMMddHHmmssSSS", "HHmm ddMMyy",
                    "yyyy-MM-dd HH z", "EEE MMM dd HH:mm:ss zzz yyyy", "yyyy-MM-dd HH zzzz", "yyyy-MM-dd HH VV",
                    "yyyy-MM-dd HH v", "yyyy-MM-dd HH vvvv", "yyyy-MM-dd HH O", "yyyy-MM-dd HH OOOO",
                    "yyyy-MM-dd HH ZZZZ"];
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

    /// The laid-out reading agrees with the general one on texts near the layout: digits,
    /// signs, separators and offsets shuffled, widths off by one.
    #[test]
    fn laid_out_reading_agrees_with_the_general_one(
        text in "[+]?[0-9]{3,5}-[0-9]{1,3}-[0-9]{1,3}[T ][0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}([.,][0-9]{0,10})?(Z|[+-][0-9]{2}(:?[0-9]{2}){0,2})?",
    ) {
        for pattern in ["yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yyyy-MM-dd HH:mm:ss,SSS", "yyyy-MM-dd'T'HH:mm:ssZ",
                        "yy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm:ss.SSSSSSx", "y-M-d H:m:s"] {
            let p = DatePattern::compile(pattern).unwrap();
            prop_assert!(p.laid_out, "{}", pattern);
            let mut fields = Fields::default();
            let general = parse_seq(&p.items, text.as_bytes(), 0, &mut fields)
                .filter(|&end| end == text.len())
                .and_then(|_| resolve(&fields, p.default_year, p.has_offset, Resolver::Smart));
            prop_assert_eq!(p.parse_ms(text.as_bytes()), general, "{} {}", pattern, text);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[0-9a-zA-Z:+.'\\[\\]/_ -]{0,30}", zone in "(PST|GMT|UTC|UT|Europe/Paris|America/|Z|\\+|-)?[0-9:+/-]{0,8}") {
        for pattern in ["yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yyyyMMddHHmmss", "MMM d[ yy] h a", "yyyy-MM-dd HH z",
                        "yyyy-MM-dd HH[ zzzz]", "yyyyMMddHHVV", "yyyy-MM-dd HH O", "yyyy-MM-dd HH OOOO"] {
            let pattern = DatePattern::compile(pattern).unwrap();
            let _ = pattern.parse_ms(text.as_bytes());
            let _ = pattern.parse_ms(format!("2026-07-01 10 {zone}{text}").as_bytes());
        }
        for pattern in ["yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yyyyMMddHHmmss", "MMM d[ yy] h a"] {
            let _ = DatePattern::compile(pattern).unwrap().parse_ms(text.as_bytes());
        }
        let _ = parse_iso_ms(text.as_bytes());
        if let Some(pattern) = DatePattern::compile(&text) {
            let _ = pattern.parse_ms(text.as_bytes());
        }
    }
}

/// Patterns and texts against java.time's own answers (`java_cases.tsv`, written by a Java
/// harness building the formatter as Elasticsearch does): fractions, signs, adjacent numbers,
/// optional sections, patterns it refuses. Only patterns with a year, so that the answers do
/// not depend on the year the test runs in.
#[test]
fn java_time_answers() {
    let mut compiled: std::collections::HashMap<&str, Option<DatePattern>> = Default::default();
    let mut checked = 0;
    for line in include_str!("java_cases.tsv").lines().filter(|l| !l.starts_with('#')) {
        let mut cols = line.split('\t');
        let (pattern, text, java) = (cols.next().unwrap(), cols.next().unwrap(), cols.next().unwrap());
        let ours = match compiled.entry(pattern).or_insert_with(|| DatePattern::compile(pattern)) {
            None => "BADPATTERN".to_string(),
            Some(p) => p.parse_ms(text.as_bytes()).map_or("ERR".to_string(), |ms| ms.to_string()),
        };
        assert_eq!(ours, java, "{pattern:?} {text:?}");
        checked += 1;
    }
    assert!(checked > 500);
}
