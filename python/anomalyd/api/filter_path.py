"""`?filter_path=`: Elasticsearch's response filtering, for successful JSON answers.

Comma-separated dotted paths; `*` within a name matches any characters, `**` any number of
levels; a path starting with `-` removes what it matches. Arrays are transparent (paths name no
indices). Objects left empty are dropped; a response with nothing left is `{}`. Error answers are
not filtered, as in Elasticsearch.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from aiohttp import web

Pattern = tuple[str, ...]
_NOTHING = object()


@lru_cache(maxsize=256)
def _name(segment: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in segment.split("*")))


def _step(key: str, patterns: list[Pattern]) -> tuple[list[Pattern], bool]:
    """The patterns that continue below `key`, and whether one ends at it."""
    below: list[Pattern] = []
    ends = False
    for p in patterns:
        head, rest = p[0], p[1:]
        if head == "**":
            below.append(p)  # `**` spans this level too ...
            if rest:  # ... or none
                more, end = _step(key, [rest])
                below += more
                ends |= end
            else:
                ends = True
        elif _name(head).fullmatch(key):
            if rest:
                below.append(rest)
            else:
                ends = True
    return below, ends


def _keep(value: Any, patterns: list[Pattern]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            below, ends = _step(k, patterns)
            if ends:
                out[k] = v
            elif below and (sub := _keep(v, below)) is not _NOTHING:
                out[k] = sub
        return out or _NOTHING
    if isinstance(value, list):
        items = [x for x in (_keep(v, patterns) for v in value) if x is not _NOTHING]
        return items or _NOTHING
    return _NOTHING


def _drop(value: Any, patterns: list[Pattern]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            below, ends = _step(k, patterns)
            if ends:
                continue
            out[k] = _drop(v, below) if below else v
        return out
    if isinstance(value, list):
        return [_drop(v, patterns) for v in value]
    return value


def apply(doc: Any, expression: str) -> Any:
    paths = [p.strip() for p in expression.split(",") if p.strip()]
    keep = [tuple(p.split(".")) for p in paths if not p.startswith("-")]
    drop = [tuple(p[1:].split(".")) for p in paths if p.startswith("-") and len(p) > 1]
    if keep:
        doc = _keep(doc, keep)
        if doc is _NOTHING:
            return {}
    return _drop(doc, drop) if drop else doc


def filter_response(request: web.Request, response: web.StreamResponse) -> None:
    """Filter `response`'s JSON body by the request's `filter_path`, if it asks and succeeded."""
    expression = request.query.get("filter_path")
    if not expression or response.status >= 300:
        return
    if isinstance(response, web.Response) and response.content_type == "application/json":
        body = response.body
        if isinstance(body, bytes) and body:
            response.body = json.dumps(apply(json.loads(body), expression), separators=(",", ":"),
                                       ensure_ascii=False).encode()
