"""Dates as Elasticsearch reads the results API's `start`, `end` and `timestamp`.

There they are bounds of a query on the results' `timestamp`, a `date` field: its format is
`strict_date_optional_time||epoch_millis` (so `2021` is a year, but any other number, `-1` and
`1600898400` too, is epoch milliseconds), and date math applies (`now-1d`, `now/d`,
`2021-05-01||+1M/d`). A bound is read rounded down (`gte`, `lt`) or up (the end of a bucket
`timestamp`'s match, so `2020-09-13` matches that whole day): missing fields and `/unit` roundings
take their first or their last millisecond. All in UTC, in integer calendar arithmetic over the
whole range of epoch-ms longs. The `_flush` and `_data` parameters follow other rules
(`params.date_param`).
"""

from __future__ import annotations

import re

DAY_MS = 86_400_000
_LONG = 1 << 63
# ASCII digits only, as java.time parses dates (date math's numbers take any digits, as Java's
# Character.isDigit does).
# epoch_millis takes up to six digits of a millisecond's fraction too (dropped).
_EPOCH_MILLIS = re.compile(r"(-?\d{1,19})(?:\.\d{0,6})?", re.ASCII)
# strict_date_optional_time: yyyy[-MM[-dd]][T[HH[:mm[:ss[.fraction]]][offset]]], the offset
# `Z` or ±HH[[:]MM[[:]SS]] after an hour (the native parser of the `_data` and `_flush` dates
# reads the same).
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T(?:(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}(?:(:?)\d{2}(?:\9\d{2})?)?)?)?)?", re.ASCII)
_OP = re.compile(r"([+\-/])(\d{0,10})([yMwdhHms])")
#: Java's Integer.MAX_VALUE: a date-math number is an int there.
_INT_MAX = (1 << 31) - 1
#: The unit an ISO text names, by how many fields after the year it has.
_PRECISION = ("y", "M", "d", "h", "m", "s")
_FIXED_MS = {"w": 7 * DAY_MS, "d": DAY_MS, "h": 3_600_000, "H": 3_600_000, "m": 60_000, "s": 1000}


def parse(text: str, now_ms: int, *, round_up: bool = False) -> int | None:
    """`text` in epoch ms, or None when it is not a date Elasticsearch would read."""
    if text.startswith("now"):
        anchor: int | None = now_ms
        ops = text[3:]
    elif "||" in text:
        base, ops = text.split("||", 1)
        anchor = _date(base, False)  # the anchor itself is never rounded up, only a `/unit`
    else:
        anchor, ops = _date(text, round_up), ""
    if anchor is None:
        return None
    t = _math(anchor, ops, round_up)
    return t if t is not None and -_LONG <= t < _LONG else None


def _date(text: str, round_up: bool) -> int | None:
    if (m := _EPOCH_MILLIS.fullmatch(text)) and not (len(text) == 4 and text.isdigit()):
        whole, fraction = int(m.group(1)), text[len(m.group(1)) + 1:]
        # a fraction of a millisecond before the epoch lies in the millisecond before (floor)
        return whole - 1 if text.startswith("-") and fraction.strip("0") else whole
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset, _ = m.groups()
    if not (1 <= int(month or 1) <= 12 and 1 <= int(day or 1) <= _month_days(int(year), int(month or 1))
            and int(hour or 0) <= 23 and int(minute or 0) <= 59 and int(second or 0) <= 59):
        return None
    t = _days(int(year), int(month or 1), int(day or 1)) * DAY_MS + (
        int(hour or 0) * 3_600_000 + int(minute or 0) * 60_000 + int(second or 0) * 1000 + int((fraction or "0")[:3].ljust(3, "0")))
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        hours, minutes, seconds = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:] or 0)
        shift = hours * 3_600_000 + minutes * 60_000 + seconds * 1000
        if minutes > 59 or seconds > 59 or shift > 18 * 3_600_000:  # java.time's ZoneOffset range
            return None
        t -= shift if offset[0] == "+" else -shift
    if round_up:  # the last millisecond of the period the text names
        if fraction is None:  # the unit of the last field given
            given = [g is not None for g in (month, day, hour, minute, second)]
            t = _plus(t, 1, _PRECISION[max((i + 1 for i, g in enumerate(given) if g), default=0)]) - 1
    return t


def _math(t: int, ops: str, round_up: bool) -> int | None:
    at = 0
    while at < len(ops):
        m = _OP.match(ops, at)
        if m is None:
            return None
        op, n, unit = m.groups()
        count = int(n) if n else 1
        if count > _INT_MAX:
            return None
        if op == "/":
            if count != 1:
                return None  # rounding takes one unit only
            t = _floor(t, unit)
            if round_up:
                t = _plus(t, 1, unit) - 1
        else:
            t = _plus(t, count * (1 if op == "+" else -1), unit)
        at = m.end()
    return t


def _plus(t: int, n: int, unit: str) -> int:
    if unit not in ("y", "M"):
        return t + n * _FIXED_MS[unit]
    days, ms = divmod(t, DAY_MS)
    year, month, day = civil(days)
    carry, month0 = divmod(month - 1 + n * (12 if unit == "y" else 1), 12)
    y, m = year + carry, month0 + 1
    return _days(y, m, min(day, _month_days(y, m))) * DAY_MS + ms  # as java.time's plusMonths


def _floor(t: int, unit: str) -> int:
    days, ms = divmod(t, DAY_MS)
    if unit in _FIXED_MS and unit != "w":
        return t - ms % _FIXED_MS[unit]
    if unit == "w":
        return (days - (days + 3) % 7) * DAY_MS  # ISO weeks start on Monday; 1970-01-01 was a Thursday
    y, m, _ = civil(days)
    return _days(y, m if unit == "M" else 1, 1) * DAY_MS


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _days(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (year 0 and before too)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def civil(days: int) -> tuple[int, int, int]:
    """The date `days` after 1970-01-01 (eras of 400 years, March-based years): the inverse of
    `_days`."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d
