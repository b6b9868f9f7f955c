"""`anomalyd.api.datemath`: the results API's dates, against Python's calendar and on any text."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from anomalyd.api import datemath

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NOW = 1_621_259_112_345  # 2021-05-17T13:45:12.345Z, a Monday


def ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


def utc(*args: int) -> int:
    return ms(datetime(*args, tzinfo=timezone.utc))


def test_calendar_agrees_with_python_and_round_trips():
    rnd = random.Random(5)
    for _ in range(5000):
        days = rnd.randint(-719_162, 2_932_896)  # 0001-01-01 .. 9999-12-31
        d = (EPOCH + timedelta(days=days)).date()
        assert datemath.civil(days) == (d.year, d.month, d.day)
    for days in (-10**9, -719_469, -1, 0, 10**9):
        assert datemath._days(*datemath.civil(days)) == days


def test_elasticsearch_date_forms():
    cases = {
        "2021": utc(2021, 1, 1), "0000": datemath._days(0, 1, 1) * datemath.DAY_MS, "-1": -1, "1600898400": 1600898400,
        "1969-12-31": -86_400_000, "2021-05": utc(2021, 5, 1), "2021-05-03T10:20:30.5Z": utc(2021, 5, 3, 10, 20, 30, 500_000),
        "2021-05-03T10:20+05:30": utc(2021, 5, 3, 4, 50), "2021-05-03T10-0030": utc(2021, 5, 3, 10, 30),
        "now": NOW, "now-d": NOW - 86_400_000, "now/d": utc(2021, 5, 17), "now/1d": utc(2021, 5, 17),
        "now/w": utc(2021, 5, 17), "now-1M+3d/w": utc(2021, 4, 19), "now/y": utc(2021, 1, 1),
        "-1.5": -2, "-1.0": -1, "-10": -10, "-0.25": -1, "12.75": 12, "2021-01-31||+1M": utc(2021, 2, 28), "2020-02-29||+1y": utc(2021, 2, 28), "2021-05-03||-1h/h": utc(2021, 5, 2, 23),
    }
    for text, want in cases.items():
        assert datemath.parse(text, NOW) == want, text


def test_rounding_up_takes_the_last_millisecond_of_what_the_text_names():
    cases = {
        "2020-09-13": utc(2020, 9, 14) - 1, "2020-09": utc(2020, 10, 1) - 1, "2020": utc(2021, 1, 1) - 1,
        "2020-09-13T12:00:00Z": utc(2020, 9, 13, 12, 0, 1) - 1, "2020-09-13T12:00:00.5Z": utc(2020, 9, 13, 12, 0, 0, 500_000),
        "now/d": utc(2021, 5, 18) - 1, "2020-09-13||+1d": utc(2020, 9, 14), "1600000000000": 1600000000000,
        "2020T10": utc(2020, 1, 1, 11) - 1, "2020-09T10:30": utc(2020, 9, 1, 10, 31) - 1,
    }
    for text, want in cases.items():
        assert datemath.parse(text, NOW, round_up=True) == want, text


def test_not_dates():
    for text in ("", "soon", "now-1x", "now/2d", "2014-06-23||+1", "now-3000000000s", "9" * 20, "9" * 5000,
                 "2021-13-01", "2021-02-30", "2021-05-03T25", "2021-05-03 10:20", " 2021", "2021-05-03T10:00+19:00",
                 "2021-05-03T10:00+05:99", "\u0661\u0669\u0667\u0660", "2021-05-03TZ", "2021-05-03T+01:00"):
        assert datemath.parse(text, NOW) is None, text


def test_any_text_is_a_long_or_none():
    rnd = random.Random(1)
    alphabet = "0123456789-+:/|.,TZnowyMwdhHms \u0661x"
    for _ in range(20000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        text = rnd.choice(("", "now", "2021-05-03T10:20:30")) + text
        for up in (False, True):
            t = datemath.parse(text, NOW, round_up=up)
            assert t is None or -(1 << 63) <= t < (1 << 63), (text, t)


def test_iso_dates_read_as_the_native_date_parameters_read_them():
    """One format, two readers (the results API here, `_data`/`_flush` parameters natively):
    every ISO text gets the same answer from both, random texts included."""
    from anomalyd._native import parse_date_param

    cases = ["2014-06-23T", "2014-06-23TZ", "2014-06-23T10+01:00:30", "2014-06-23T10+010030", "2014-06-23T10+01:0030",
             "2014-06-23T10:20:30,123456789-18:00", "2014-06-23T10-18:00:01", "2014-06-23T10:20:30.Z", "2014-06",
             "2014-06-23T10:20:30.1234567891Z", "2014-06-23T1", "2014-06-23T10:2", "2014-02-29", "2016-02-29T23:59:59Z"]
    rnd = random.Random(3)
    alphabet = "0123456789-+:.,TZ"
    cases += ["2014T00", "2014-06T13", "2014T13:05Z", "2014-06T", "2014TZ"]
    for _ in range(20000):
        head = rnd.choice(("2014", "2014-06", "2014-06-23"))
        cases.append(head + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 16))))
    for text in cases:
        if text.lstrip("-").isdigit():
            continue  # numbers follow each API's own rule (epoch ms here, seconds or ms there)
        assert datemath.parse(text, NOW) == parse_date_param(text, NOW), text
