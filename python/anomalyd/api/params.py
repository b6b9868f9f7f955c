"""Request parameters the Elasticsearch way: query string or JSON body, strictly checked."""

from __future__ import annotations

import json
from typing import Any

import simdjson
from aiohttp import hdrs, web

from .._native import DocumentTooLargeError, parse_date_param, smile_to_json
from ..clock import now_ms
from ..encoding import content_coding, decode_whole
from ..errors import EsError, SimpleError, bad_request
from ..keys import SETTINGS

#: Parameters every Elasticsearch endpoint accepts.
COMMON = frozenset({"pretty", "human", "error_trace", "filter_path", "format"})

JSON_TYPES = ("application/json", "application/x-ndjson")
VENDOR_TYPES = ("application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson")
SMILE_TYPES = ("application/smile", "application/vnd.elasticsearch+smile")
STREAMLESS_TYPES = {"application/yaml": "yaml", "application/cbor": "cbor",
                    "application/vnd.elasticsearch+yaml": "yaml", "application/vnd.elasticsearch+cbor": "cbor"}


#: Content-Type values already accepted, and whether each is SMILE: clients send the same one or
#: two on every request, and parsing the header was a visible share of a small request's cost.
_ACCEPTED_TYPES: dict[str, bool] = {}


def smile_body(request: web.Request, *, streaming: bool = False) -> bool:
    """Whether the body is SMILE rather than JSON; 406 when it is neither (JSON is plain, NDJSON
    or the compatible-with vendor types)."""
    raw = request.headers.get(hdrs.CONTENT_TYPE)  # an `istr`: no case-folding per request
    smile = _ACCEPTED_TYPES.get(raw)  # type: ignore[arg-type]
    if smile is not None:
        return smile
    if raw is None:
        raise SimpleError(406, "Content-Type header is missing")
    mime = request.content_type
    if mime in JSON_TYPES or mime in VENDOR_TYPES or mime in SMILE_TYPES:
        smile = mime in SMILE_TYPES
        if len(_ACCEPTED_TYPES) < 64:
            _ACCEPTED_TYPES[raw] = smile
        return smile
    if streaming and mime in STREAMLESS_TYPES:
        raise SimpleError(406, f"Content-Type [{STREAMLESS_TYPES[mime]}] does not support stream parsing. Use JSON or SMILE instead")
    raise SimpleError(406, f"Content-Type header [{raw}] is not supported")


async def json_body(request: web.Request, *, required: bool = False) -> dict[str, Any] | None:
    """The request body as a dict; an empty body (with any JSON content type) is no body."""
    if not request.body_exists:
        if required:
            raise bad_request("request body is required", "parse_exception")
        return None
    coding = content_coding(request)
    raw = await request.read()
    if coding is not None:
        raw = decode_whole(raw, coding, request.app[SETTINGS].max_content_length)
    if not raw.strip():
        if required:
            raise bad_request("request body is required", "parse_exception")
        return None
    if smile_body(request):
        limit = request.app[SETTINGS].max_content_length
        try:
            raw = smile_to_json(raw, max_document=limit)
        except DocumentTooLargeError:  # its JSON text, as a gzip body's decoded size
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=limit + 1) from None
        except ValueError:
            raise EsError(400, "x_content_parse_exception", "Failed to parse request body: malformed SMILE") from None
    try:
        try:
            body = simdjson.loads(raw)
        except RuntimeError as e:
            if "BIGINT" not in str(e):
                raise ValueError(str(e)) from None  # e.g. nested too deep
            body = json.loads(raw)  # an integer beyond 64 bits, which Jackson reads
    except (ValueError, RecursionError) as e:
        raise EsError(400, "x_content_parse_exception", _parse_failure(raw, e)) from None
    if not isinstance(body, dict):
        raise EsError(400, "x_content_parse_exception", "request body must be a JSON object")
    return body


#: simdjson's error codes, in words.
_PARSE_ERRORS = {"DEPTH_ERROR": "nested too deep", "UTF8_ERROR": "invalid UTF-8", "NUMBER_ERROR": "a malformed number",
                 "BIGINT_ERROR": "a number out of range", "NUMBER_OUT_OF_RANGE": "a number out of range",
                 "STRING_ERROR": "a malformed string", "UNESCAPED_CHARS": "a control character in a string",
                 "UNCLOSED_STRING": "an unterminated string", "EMPTY": "no JSON document"}
#: Bodies up to this size are parsed again, for the position of what is wrong (a larger one
#: would hold the event loop for long; its message names the fault only).
_POSITION_MAX_BYTES = 1 << 16


def _parse_failure(raw: bytes, error: Exception) -> str:
    """What is wrong with a body that does not parse, and where (`[line:column]`, as Jackson's
    messages say it), in words rather than the fast parser's internal error names."""
    text = str(error)
    what = next((words for code, words in _PARSE_ERRORS.items() if code in text), None)
    if isinstance(error, RecursionError):
        what = "nested too deep"
    if b"\x00" in raw[:4]:
        what = "not UTF-8 (UTF-16 and UTF-32 bodies are read only by the _data API)"
    if what is None and len(raw) <= _POSITION_MAX_BYTES:
        try:
            json.loads(raw)
        except json.JSONDecodeError as e:
            return f"[{e.lineno}:{e.colno}] Failed to parse request body: {e.msg.removesuffix(' at')}"
        except (ValueError, RecursionError):
            pass
    return f"Failed to parse request body: {what or 'malformed JSON'}"


def reject_unknown_query(request: web.Request, allowed: frozenset[str]) -> None:
    for name in request.query:
        if name not in allowed and name not in COMMON:
            raise bad_request(f"request [{request.path}] contains unrecognized parameter: [{name}]")


async def merged_params(request: web.Request, allowed: frozenset[str], parser: str) -> dict[str, Any]:
    """Query parameters and body fields together; a body field wins, unknown ones are 400s."""
    reject_unknown_query(request, allowed)
    params: dict[str, Any] = {k: v for k, v in request.query.items() if k not in COMMON}
    body = await json_body(request)
    for k, v in (body or {}).items():
        if k not in allowed:
            raise EsError(400, "x_content_parse_exception", f"[{parser}] unknown field [{k}]")
        params[k] = v
    return params


def as_bool(params: dict[str, Any], name: str, default: bool) -> bool:
    v = params.get(name)
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if v == "":
        return True  # `?force` alone means true, as in Elasticsearch
    if v in ("true", "false"):
        return v == "true"
    raise bad_request(f"Failed to parse value [{v}] as only [true] or [false] are allowed.")


def as_str(params: dict[str, Any], name: str) -> str | None:
    v = params.get(name)
    if v is None:
        return None
    return str(v).lower() if isinstance(v, bool) else str(v)


def date_param(name: str, value: Any, *, wrapped: bool = False) -> int | None:
    """A date parameter in epoch ms (None when absent), or Elasticsearch's 400 when unparseable:
    a `parse_exception`, which 8.x wraps in a `status_exception` for `_data` and `_flush`."""
    if value is None or value == "":
        return None
    ms = parse_date_param(str(value), now_ms())
    if ms is None:
        reason = f"Query param [{name}] with value [{value}] cannot be parsed as a date or converted to a number (epoch)."
        cause = EsError(400, "parse_exception", reason)
        raise EsError(400, "status_exception", reason, caused_by=cause) if wrapped else cause
    return ms
