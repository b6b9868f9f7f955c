"""Request bodies' Content-Encoding: gzip and deflate undone as the body arrives.

aiohttp's own decoding is turned off (`auto_decompress=False`, app.py) because it answers some
failures in plain text from outside any handler (a deflate body cut short, `br`), accepts a gzip
body cut short or followed by junk without a word, and passes `x-gzip` on still compressed. Here:
- every failure is a 400 in Elasticsearch's envelope, and an unsupported coding a 415;
- the end of the compressed data is checked: a body that stops inside it, or carries anything
  but another gzip member (or gzip(1)'s zero padding) after it, is refused;
- the decoded body comes out in pieces of at most `PIECE_BYTES`, so memory stays flat however
  well a body compresses.

ISA-L inflates when it is installed: about three times stdlib zlib's speed, and inflating is
most of a gzip body's cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import hdrs, web

from .errors import SimpleError, UnreadableBody

try:
    from isal import isal_zlib as _zlib

    BACKEND = "isal"
except ImportError:  # pragma: no cover - no wheel for this platform
    import zlib as _zlib  # type: ignore[no-redef]

    BACKEND = "zlib"

#: Most decoded bytes handed on at a time.
PIECE_BYTES = 256 << 10

#: zlib's window bits per coding: gzip framing, or zlib framing (raw deflate is told apart by
#: its first byte, as aiohttp and browsers accept it).
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15, "x-deflate": 15}
_RAW_DEFLATE = -15
_GZIP_ID1 = 0x1F


def content_coding(request: web.Request) -> str | None:
    """The body's content coding (lower case), None for none; 415 for one anomalyd cannot undo."""
    raw = request.headers.get(hdrs.CONTENT_ENCODING)  # an `istr`: no case-folding per request
    if raw is None:
        return None
    name = raw.strip().lower()
    if name in _WBITS:
        return name
    if name in ("", "identity"):
        return None
    raise SimpleError(415, f"Content-Encoding header [{raw}] is not supported: anomalyd decodes gzip and deflate")


class BodyDecoder:
    """One body's decoding: `decode` each piece as it arrives, then `finish`."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = _WBITS[coding] == 31
        self._inflater: Any = None
        #: A gzip member ended and only zero padding followed: nothing else may come.
        self._padding = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of `data`, the body's next piece, in pieces of at most PIECE_BYTES."""
        while True:
            inflater = self._inflater
            if inflater is None or inflater.eof:
                if not data:
                    return
                data = self._next_stream(data)
                continue
            try:
                out = inflater.decompress(data, PIECE_BYTES)
            except _zlib.error:
                raise self._error("the compressed data is corrupt") from None
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if out:
                yield out
            # A full piece may leave more output inside the inflater with no input left.
            if not data and len(out) < PIECE_BYTES and not inflater.eof:
                return

    def finish(self) -> None:
        """The body has ended: refused unless its compressed data ended too (an empty body is none)."""
        if self._inflater is not None and not self._inflater.eof:
            raise self._error("the body ends inside its compressed data")

    def _next_stream(self, data: bytes) -> bytes:
        """Start the first stream, or after one ended, the next gzip member: what is left of `data`."""
        if self._inflater is None:
            wbits = 31 if self._gzip else 15 if data[0] & 0x0F == 8 else _RAW_DEFLATE
            self._inflater = _zlib.decompressobj(wbits=wbits)
            return data
        if self._gzip:
            rest = data.lstrip(b"\0")
            if len(rest) < len(data):
                self._padding = True
            if not rest:
                return rest
            if rest[0] == _GZIP_ID1 and not self._padding:
                self._inflater = _zlib.decompressobj(wbits=31)
                return rest
        raise self._error("data follows the end of its compressed data")

    def _error(self, what: str) -> UnreadableBody:
        return UnreadableBody(f"Can not decode content-encoding: {self.coding}: {what}")


def decode_whole(raw: bytes, coding: str, limit: int) -> bytes:
    """A whole body decoded; 413 (as aiohttp's own limit) when it decodes to more than `limit` bytes."""
    decoder = BodyDecoder(coding)
    pieces, size = [], 0
    for piece in decoder.decode(raw):
        size += len(piece)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        pieces.append(piece)
    decoder.finish()
    return b"".join(pieces)
