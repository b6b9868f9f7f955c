//! Timestamps as Elasticsearch ML reads them: the record time field
//! (`data_description.time_format`) and the date parameters of the HTTP layer.
//!
//! Formats are compiled once per job into a `TimeFormat`, so the per-record call is a single
//! match: `epoch`/`epoch_ms` go through an integer fast path (see `epoch`), patterns through a
//! precompiled item list (see `pattern`). Nothing here allocates per record.

mod calendar;
mod epoch;
mod pattern;
mod zone;

pub use pattern::DatePattern;

/// A compiled data_description.time_format.
#[derive(Debug, Clone)]
pub enum TimeFormat {
    Epoch,
    EpochMs,
    /// Boxed, so that the enum has a tag of its own: per record, telling the epoch formats
    /// apart is then one byte compare rather than a decode of the pattern's niche.
    Pattern(Box<DatePattern>),
}

impl TimeFormat {
    /// "epoch" | "epoch_ms" | a java.time DateTimeFormatter pattern.
    /// Err carries exactly: `Invalid Time format string '<fmt>'` (for patterns that are invalid or
    /// cannot yield a complete timestamp; a pattern without a year takes the current UTC year).
    pub fn compile(fmt: &str) -> Result<TimeFormat, String> {
        match fmt {
            "epoch" => Ok(Self::Epoch),
            "epoch_ms" => Ok(Self::EpochMs),
            _ => DatePattern::compile(fmt)
                .map(|p| Self::Pattern(Box::new(p)))
                .ok_or_else(|| format!("Invalid Time format string '{fmt}'")),
        }
    }

    /// Parse the time field's value text (a JSON string's unescaped contents, or a JSON number's
    /// raw token text) into epoch milliseconds. None = invalid date.
    #[inline(always)]
    pub fn parse_ms(&self, text: &[u8]) -> Option<i64> {
        match self {
            Self::Epoch => epoch::epoch_to_ms(text, 1000),
            Self::EpochMs => epoch::epoch_to_ms(text, 1),
            Self::Pattern(pattern) => pattern.parse_ms(text),
        }
    }
}

/// "now" → now; an integer string: seconds if its length is <= 10, else milliseconds; otherwise
/// an ISO-8601 date (strict_date_optional_time: yyyy[-MM[-dd]], optional
/// `'T'[HH[:mm[:ss[.SSS...]]]]` and optional `Z` or `±HH[[:]MM[[:]SS]]` offset; UTC when no offset) or epoch
/// milliseconds with a fraction. Returns epoch milliseconds, None when unparseable or negative
/// (Elasticsearch TimeUtils.dateStringToEpoch).
pub fn parse_date_param(text: &str, now_ms: i64) -> Option<i64> {
    let ms = if text == "now" {
        now_ms
    } else if let Ok(number) = text.parse::<i64>() {
        // Java's Long.parseLong, like this, refuses any padding, so its `trim().length() <= 10`
        // is simply the length.
        if text.len() <= 10 {
            number * 1000
        } else {
            number
        }
    } else {
        epoch_millis_fraction(text).or_else(|| pattern::parse_iso_ms(text.as_bytes()))?
    };
    (ms >= 0).then_some(ms)
}

/// The `epoch_millis` half of Elasticsearch's default date format also takes up to six
/// fractional digits (fractions of a millisecond, dropped here). Negative values cannot pass.
fn epoch_millis_fraction(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.')?;
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNE_23_2014: i64 = 1_403_481_600_000;

    #[test]
    fn compile_formats() {
        assert!(matches!(
            TimeFormat::compile("epoch"),
            Ok(TimeFormat::Epoch)
        ));
        assert!(matches!(
            TimeFormat::compile("epoch_ms"),
            Ok(TimeFormat::EpochMs)
        ));
        assert!(matches!(
            TimeFormat::compile("yyyy-MM-dd HH:mm"),
            Ok(TimeFormat::Pattern(_))
        ));
        for bad in [
            "EPOCH",
            "epoch_millis",
            "yyyy-MM-dd",
            "yyyy-MM-dd HH:mm q",
            "",
        ] {
            assert_eq!(
                TimeFormat::compile(bad).unwrap_err(),
                format!("Invalid Time format string '{bad}'")
            );
        }
    }

    #[test]
    fn parse_each_format() {
        let parse =
            |fmt: &str, text: &str| TimeFormat::compile(fmt).unwrap().parse_ms(text.as_bytes());
        assert_eq!(parse("epoch", "1403481600"), Some(JUNE_23_2014));
        assert_eq!(parse("epoch", "1403481600.9"), Some(JUNE_23_2014));
        assert_eq!(parse("epoch", "1.4e9"), Some(1_400_000_000_000));
        assert_eq!(parse("epoch", " 12 "), Some(12_000));
        assert_eq!(parse("epoch", ""), None);
        assert_eq!(parse("epoch", "2014-06-23"), None);
        assert_eq!(parse("epoch_ms", "1403481600000"), Some(JUNE_23_2014));
        assert_eq!(parse("epoch_ms", "1403481600000.9"), Some(JUNE_23_2014));
        assert_eq!(parse("epoch_ms", "0x1p3"), Some(8));
        assert_eq!(
            parse("yyyy-MM-dd'T'HH:mm:ssX", "2014-06-23T00:00:00Z"),
            Some(JUNE_23_2014)
        );
        assert_eq!(parse("yyyy-MM-dd'T'HH:mm:ssX", "1403481600000"), None);
    }

    #[test]
    fn date_params() {
        let now = 1_700_000_000_123;
        let p = |text: &str| parse_date_param(text, now);
        assert_eq!(p("now"), Some(now));
        assert_eq!(p("1403481600"), Some(JUNE_23_2014));
        assert_eq!(p("1403481600000"), Some(JUNE_23_2014));
        assert_eq!(p("12345678901"), Some(12_345_678_901)); // 11 chars: milliseconds
        assert_eq!(p("+12"), Some(12_000));
        assert_eq!(p("0"), Some(0));
        assert_eq!(p("1403481600000.5"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23T00:00:00Z"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23T02:00:00+02:00"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-22T22:00-0200"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23T00:00:00.123Z"), Some(JUNE_23_2014 + 123));
        assert_eq!(p("2014-06-23T00:00:00,5"), Some(JUNE_23_2014 + 500));
        assert_eq!(p("2014-06-23T00"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23T"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06-23TZ"), None); // the offset belongs to a time
        assert_eq!(p("2014-06-23T+01:00"), None);
        assert_eq!(p("2014-06-23T01+01:00"), Some(JUNE_23_2014));
        assert_eq!(p("2014-06"), Some(1_401_580_800_000));
        assert_eq!(p("2014"), Some(2_014_000)); // an integer first: seconds
        for bad in [
            "",
            "-1",
            "-1403481600000",
            " 12",
            "12 ",
            "1e9",
            "Now",
            "junk",
            "1969-12-31",
            "2014-13-01",
            "2014-02-29",
            "2014-06-23T24:00",
            "2014-06-23 00:00",
            "2014-6-23",
            "2014-06-23T00:00:00.Z",
            "2014-06-23T00:00:00+25:00",
            "99999999999999999999",
            "1403481600.1234567",
            "-0.5",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
