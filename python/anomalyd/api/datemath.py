"""Dates as Elasticsearch reads the results API's `start`, `end` and `timestamp`.

There they are bounds of a range query on the results' `timestamp`, a `date` field: its format is
`strict_date_optional_time||epoch_millis` (so `2021` is a year, but any other number, `-1` and
`1600898400` too, is epoch milliseconds), and date math applies (`now-1d`, `now/d`,
`2021-05-01||+1M/d`), rounding down as `gte` and `lt` bounds round. The `_flush` and `_data`
parameters follow other rules (`params.date_param`).
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone

from .._native import parse_date_param

_EPOCH_MILLIS = re.compile(r"-?\d+")
_YEAR = re.compile(r"\d{4}")
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_STEP = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "H": timedelta(hours=1),
         "m": timedelta(minutes=1), "s": timedelta(seconds=1)}


def parse(text: str, now_ms: int) -> int | None:
    """`text` in epoch ms, or None when it is not a date."""
    if text.startswith("now"):
        anchor: int | None = now_ms
        ops = text[3:]
    elif "||" in text:
        base, ops = text.split("||", 1)
        anchor = _date(base)
    else:
        return _date(text)
    return None if anchor is None else _math(anchor, ops)


def _date(text: str) -> int | None:
    if _EPOCH_MILLIS.fullmatch(text) and not _YEAR.fullmatch(text):
        return int(text)
    if _YEAR.fullmatch(text):
        return int(datetime(int(text), 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    if not text[:1].isdigit():
        return None  # `now` and the other words the `_flush` parser knows are not dates here
    return parse_date_param(text, 0)


def _math(anchor_ms: int, ops: str) -> int | None:
    """Apply `+1d`, `-2M`, `/h`… in turn, in UTC; None when `ops` is not date math."""
    try:
        t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=anchor_ms)
        at = 0
        while at < len(ops):
            m = _MATH.match(ops, at)
            if m is None:
                return None
            sign, n, unit, rounding = m.groups()
            if rounding is not None:
                t = _round_down(t, rounding)
            elif unit in ("y", "M"):
                months = (12 if unit == "y" else 1) * int(n) * (1 if sign == "+" else -1)
                t = _plus_months(t, months)
            else:
                t += _STEP[unit] * int(n) * (1 if sign == "+" else -1)
            at = m.end()
    except (OverflowError, ValueError):
        return None
    return (t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def _plus_months(t: datetime, months: int) -> datetime:
    """As java.time's `plusMonths`: the day kept, or the month's last day when it has fewer."""
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def _round_down(t: datetime, unit: str) -> datetime:
    t = t.replace(microsecond=0)
    if unit == "s":
        return t
    t = t.replace(second=0)
    if unit == "m":
        return t
    t = t.replace(minute=0)
    if unit in ("h", "H"):
        return t
    t = t.replace(hour=0)
    if unit == "d":
        return t
    if unit == "w":
        return t - timedelta(days=t.weekday())  # ISO weeks start on Monday
    t = t.replace(day=1)
    return t if unit == "M" else t.replace(month=1)
