"""Logging: requests aiohttp cannot parse are one info line, not an error with a traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage, TransferEncodingError

from anomalyd.logs import _bad_http_is_one_line


def _record(level: int, msg: str, args: tuple, error: BaseException | None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord("aiohttp.server", level, __file__, 1, msg, args, exc_info)


def test_bad_http_is_lowered_to_one_info_line() -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.INFO)
    r = _record(logging.ERROR, "Error handling request from %s", ("10.0.0.1",), TransferEncodingError("Not enough data to satisfy transfer length header."))
    assert _bad_http_is_one_line(r)
    assert (r.levelno, r.exc_info) == (logging.INFO, None)
    assert r.getMessage() == "bad_http_request remote=10.0.0.1 error='Not enough data to satisfy transfer length header.'"
    # Without the remote address among the arguments, the line still renders.
    r = _record(logging.ERROR, "Unhandled exception", (), BadHttpMessage("bad chunk"))
    assert _bad_http_is_one_line(r) and r.getMessage() == "bad_http_request remote=- error='bad chunk'"


def test_other_records_pass_unchanged_and_levels_are_never_raised() -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.DEBUG)
    debug = _record(logging.DEBUG, "Error handling request from %s", ("x",), BadHttpMessage("https on http"))
    other = _record(logging.ERROR, "Error handling request from %s", ("x",), RuntimeError("a bug"))
    for r in (debug, other):
        level, msg = r.levelno, r.getMessage()
        assert _bad_http_is_one_line(r) and (r.levelno, r.getMessage()) == (level, msg)
    logging.getLogger("aiohttp.server").setLevel(logging.WARNING)
    quiet = _record(logging.ERROR, "Error handling request from %s", ("x",), BadHttpMessage("bad"))
    assert not _bad_http_is_one_line(quiet), "dropped where info lines are not wanted"
    logging.getLogger("aiohttp.server").setLevel(logging.NOTSET)
