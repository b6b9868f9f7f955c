"""`?pretty`: JSON answers laid out as Elasticsearch's (Jackson's) pretty printer does.

Objects one field per line, two spaces per level, `"name" : value`; arrays on the line they open
on (`[ 1, 2 ]`, `[ ]`, `{ }`); a newline at the end. curl users add `?pretty` to every call, as
Elasticsearch's documentation does. Only requests that ask pay for it: the answer is re-rendered
from the JSON the handler wrote.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def wants_pretty(request: web.Request) -> bool:
    value = request.query.get("pretty")
    return value is not None and value != "false"


def _render(value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{ }")
            return
        inner = indent + "  "
        out.append("{\n")
        for i, (k, v) in enumerate(value.items()):
            out.append(f"{inner}{json.dumps(k, ensure_ascii=False)} : ")
            _render(v, inner, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[ ]")
            return
        out.append("[ ")
        for i, v in enumerate(value):
            if i:
                out.append(", ")
            _render(v, indent, out)
        out.append(" ]")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def render(body: bytes) -> bytes:
    """A JSON document, pretty."""
    out: list[str] = []
    _render(json.loads(body), "", out)
    out.append("\n")
    return "".join(out).encode()


def prettify(response: web.StreamResponse) -> None:
    """Lay out `response`'s JSON body, if it has one."""
    if isinstance(response, web.Response) and response.content_type == "application/json":
        body = response.body
        if isinstance(body, bytes) and body:
            response.body = render(body)
