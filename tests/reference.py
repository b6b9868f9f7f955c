"""Plain-Python reference model of POST _data accounting (post-data.md §1-§4, §5.3).

Well-formed top-level documents are parsed by pysimdjson (the independent oracle); only
malformed documents (and Elasticsearch's nested-array quirk) go through the small Jackson-like
tokenizer below, which follows anomalyd's documented recovery model.
"""

from __future__ import annotations

import json
import math
import re

import simdjson

PARSE_ERRORS_LIMIT = 100
WS = b" \n\r\t"
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


class Malformed(Exception):
    pass


class OutsideWindow(Exception):
    """A processed record falls before the oldest bucket of a full diagnostics window."""


class _TokError(Exception):
    def __init__(self, resume: int):
        self.resume = resume


class _End(Exception):
    """Input ended between tokens."""


class _Done(Exception):
    pass


class _TopError(Exception):
    def __init__(self, resume: int):
        self.resume = resume


# ---------------------------------------------------------------- time (Java Double.parseDouble)

_DEC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?\Z")
_HEX = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP]([+-]?\d+)[fFdD]?\Z")
_SPECIAL = re.compile(r"([+-]?)(NaN|Infinity)\Z")


def java_parse_double(text: str) -> float | None:
    s = text
    i, j = 0, len(s)
    while i < j and ord(s[i]) <= 32:
        i += 1
    while j > i and ord(s[j - 1]) <= 32:
        j -= 1
    s = s[i:j]
    if not s:
        return None
    m = _SPECIAL.match(s)
    if m:
        v = math.nan if m.group(2) == "NaN" else math.inf
        return -v if m.group(1) == "-" else v
    if _DEC.match(s):
        return float(s.rstrip("fFdD"))
    m = _HEX.match(s)
    if m:
        try:
            v = float.fromhex("0x" + m.group(2) + "p" + m.group(3))
        except OverflowError:
            v = math.inf
        return -v if m.group(1) == "-" else v
    return None


def java_long(d: float) -> int:
    if math.isnan(d):
        return 0
    if d >= 2.0**63:
        return I64_MAX
    if d <= -(2.0**63):
        return I64_MIN
    return int(d)


def parse_time_ms(value, fmt: str) -> int | None:
    """value: None (absent), ('num', float) or ('text', str)."""
    if value is None:
        return None
    kind, v = value
    d = float(v) if kind == "num" else java_parse_double(v)
    if d is None:
        return None
    scale = 1000 if fmt == "epoch" else 1
    return (java_long(d) * scale - I64_MIN) % 2**64 + I64_MIN  # Java's long multiply wraps


# ---------------------------------------------------------------- job config


class JobConfig:
    def __init__(self, job_id, span_s, latency_s, time_format, analysis_fields, time_field="time"):
        self.job_id = job_id
        self.span_ms = span_s * 1000
        self.latency_s = latency_s
        self.time_format = time_format
        self.analysis_fields = list(analysis_fields)
        self.time_field = time_field
        self.fields = self.analysis_fields + [time_field]

    def to_json(self) -> str:
        dets = [{"function": "metric", "field_name": self.analysis_fields[0]}]
        if len(self.analysis_fields) > 1:
            dets[0]["by_field_name"] = self.analysis_fields[1]
        ac = {"bucket_span": f"{self.span_ms // 1000}s", "detectors": dets,
              "influencers": self.analysis_fields[2:]}
        if self.latency_s:
            ac["latency"] = f"{self.latency_s}s"
        return json.dumps({"job_id": self.job_id, "analysis_config": ac,
                           "data_description": {"time_field": self.time_field,
                                                "time_format": self.time_format}})


# ---------------------------------------------------------------- strings


def _is_run(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in (43, 45, 46)


_NUM = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


def unescape(raw: bytes) -> str:
    """Contents of a validated JSON string; lone surrogates become U+FFFD."""
    units: list[int] = []  # code points, surrogates kept as-is for pairing
    i = 0
    s = raw
    while i < len(s):
        b = s[i]
        if b != 0x5C:
            j = s.find(b"\\", i)
            j = len(s) if j < 0 else j
            units.extend(ord(c) for c in s[i:j].decode("utf-8"))
            i = j
            continue
        e = s[i + 1]
        if e == ord("u"):
            units.append(int(s[i + 2:i + 6], 16))
            i += 6
        else:
            units.append({ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9}.get(e, e))
            i += 2
    out = []
    k = 0
    while k < len(units):
        u = units[k]
        if 0xD800 <= u < 0xDC00 and k + 1 < len(units) and 0xDC00 <= units[k + 1] < 0xE000:
            out.append(chr(0x10000 + ((u - 0xD800) << 10) + (units[k + 1] - 0xDC00)))
            k += 2
            continue
        out.append("\ufffd" if 0xD800 <= u < 0xE000 else chr(u))
        k += 1
    return "".join(out)


# ---------------------------------------------------------------- tokenizer (Jackson's view)

V, KEY_OR_END, KEY, COLON, COMMA_OR_END, VALUE_OR_END = range(6)
START_OBJ, END_OBJ, START_ARR, END_ARR = "{", "}", "[", "]"


class Tokenizer:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0
        self.frames: list[list] = []  # [is_object, expect, seen_keys]

    def at_top_level(self):
        return not any(f[0] for f in self.frames)

    def record_depth(self):
        for i, f in enumerate(self.frames):
            if f[0]:
                return len(self.frames) - i
        return 0

    def open_arrays(self):
        return len(self.frames) - self.record_depth()

    def after_value(self):
        if self.frames:
            self.frames[-1][1] = COMMA_OR_END

    def leave_record(self):
        d = self.record_depth()
        del self.frames[len(self.frames) - d:]
        self.after_value()

    def skip_ws(self):
        buf = self.buf
        while True:
            if self.pos >= len(buf):
                raise _End
            b = buf[self.pos]
            if b in WS:
                self.pos += 1
            elif b == 0x2F:
                p = self.pos
                nxt = buf[p + 1] if p + 1 < len(buf) else None
                if nxt == 0x2F:
                    k = buf.find(b"\n", p + 2)
                    self.pos = len(buf) if k < 0 else k + 1
                elif nxt == 0x2A:
                    k = buf.find(b"*/", p + 2)
                    if k < 0:
                        raise Malformed("body ends inside a comment")
                    self.pos = k + 2
                else:
                    raise _TokError(p + 1)
            else:
                return

    def next(self):
        buf = self.buf
        while True:
            self.skip_ws()
            p = self.pos
            b = buf[p]
            expect = self.frames[-1][1] if self.frames else V
            if expect == V:
                return self.value()
            if expect in (KEY_OR_END, KEY):
                if b == 0x22:
                    return self.key()
                if b == 0x7D and expect == KEY_OR_END:
                    return self.close(True)
                raise _TokError(p)
            if expect == COLON:
                if b != 0x3A:
                    raise _TokError(p)
                self.pos = p + 1
                self.frames[-1][1] = V
                continue
            if expect == COMMA_OR_END:
                obj = self.frames[-1][0]
                if b == 0x2C:
                    self.pos = p + 1
                    self.frames[-1][1] = KEY if obj else V
                    continue
                if b == 0x7D and obj:
                    return self.close(True)
                if b == 0x5D and not obj:
                    return self.close(False)
                raise _TokError(p)
            # VALUE_OR_END
            if b == 0x5D:
                return self.close(False)
            return self.value()

    def close(self, obj):
        self.pos += 1
        self.frames.pop()
        self.after_value()
        return END_OBJ if obj else END_ARR

    def value(self):
        buf, p = self.buf, self.pos
        b = buf[p]
        if b == 0x22:
            end = self.scan_string(p)
            self.pos = end + 1
            self.after_value()
            return ("str", unescape(buf[p + 1:end]))
        if b == 0x7B:
            self.pos = p + 1
            self.frames.append([True, KEY_OR_END, set()])
            return START_OBJ
        if b == 0x5B:
            self.pos = p + 1
            self.frames.append([False, VALUE_OR_END, None])
            return START_ARR
        if _is_run(b):
            q = p
            while q < len(buf) and _is_run(buf[q]):
                q += 1
            run = buf[p:q]
            if run in (b"true", b"false", b"null"):
                tok = (run.decode(),)
            elif _NUM.match(run):
                tok = ("num", run.decode())
            else:
                raise _TokError(q)
            self.pos = q
            self.after_value()
            return tok
        if b >= 0x80 or b not in b"}],:":
            raise _TokError(p + 1)
        raise _TokError(p)

    def key(self):
        buf, p = self.buf, self.pos
        end = self.scan_string(p)
        self.pos = end + 1
        k = unescape(buf[p + 1:end])
        seen = self.frames[-1][2]
        if k in seen:
            raise _TokError(self.pos)
        seen.add(k)
        self.frames[-1][1] = COLON
        return ("key", k)

    def scan_string(self, q: int) -> int:
        """Index of the closing quote of the valid string opening at q."""
        buf = self.buf
        p = q + 1
        n = len(buf)
        while True:
            if p >= n:
                raise Malformed("body ends inside a string")
            b = buf[p]
            if b == 0x22:
                return p
            if b == 0x5C:
                if p + 1 >= n:
                    raise Malformed("body ends inside a string")
                e = buf[p + 1]
                if e in b'"\\/bfnrt':
                    p += 2
                elif e == ord("u"):
                    h = buf[p + 2:p + 6]
                    if not all(c in b"0123456789abcdefABCDEF" for c in h):
                        if len(h) < 4 and all(c in b"0123456789abcdefABCDEF" for c in h):
                            raise Malformed("body ends inside a string")
                        raise _TokError(q)
                    p += 6
                else:
                    raise _TokError(q)
            elif b < 0x20:
                raise _TokError(q)
            elif b >= 0x80:
                width = 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 0
                if width == 0:
                    raise _TokError(q)
                try:
                    buf[p:p + width].decode("utf-8")
                except UnicodeDecodeError:
                    raise _TokError(q)
                if p + width > n:
                    raise Malformed("body ends inside a string")
                p += width
            else:
                p += 1


# ---------------------------------------------------------------- recovery


def _skip_string(buf: bytes, q: int) -> int:
    i = q + 1
    while True:
        if i >= len(buf):
            raise Malformed("body ends inside a string")
        if buf[i] == 0x22:
            return i + 1
        if buf[i] == 0x5C:
            if i + 1 >= len(buf):
                raise Malformed("body ends inside a string")
            i += 2
        else:
            i += 1


def _recovery_item(buf: bytes, p: int):
    """('open'|'close'|'skip'|'bad', end)."""
    b = buf[p]
    if b in b"{[":
        return "open", p + 1
    if b in b"}]":
        return "close", p + 1
    if b in b",:":
        return "skip", p + 1
    if b == 0x22:
        return "skip", _skip_string(buf, p)
    if b == 0x2F:
        nxt = buf[p + 1] if p + 1 < len(buf) else None
        if nxt == 0x2F:
            k = buf.find(b"\n", p + 2)
            return "skip", len(buf) if k < 0 else k + 1
        if nxt == 0x2A:
            k = buf.find(b"*/", p + 2)
            if k < 0:
                raise Malformed("body ends inside a comment")
            return "skip", k + 2
        return "bad", p + 1
    if _is_run(b):
        q = p
        while q < len(buf) and _is_run(buf[q]):
            q += 1
        run = buf[p:q]
        return ("skip" if run in (b"true", b"false", b"null") or _NUM.match(run) else "bad"), q
    return "bad", p + 1


def _skip_record(buf: bytes, p: int, depth: int):
    errors = 0
    while True:
        while p < len(buf) and buf[p] in WS:
            p += 1
        if p >= len(buf):
            raise Malformed("body ends inside a record")
        kind, end = _recovery_item(buf, p)
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return end, errors
        elif kind == "bad":
            errors += 1
        p = end


def _unit_end(buf: bytes, p: int) -> int | None:
    """End of the bracket-balanced unit opening at buf[p] == '{' (strings, comments skipped)."""
    depth = 0
    n = len(buf)
    while p < n:
        b = buf[p]
        if b in b"{[":
            depth += 1
        elif b in b"}]":
            depth -= 1
            if depth == 0:
                return p + 1
        elif b == 0x22:
            i = p + 1
            while i < n and buf[i] != 0x22:
                i += 2 if buf[i] == 0x5C else 1
            if i >= n:
                return None
            p = i
        elif b == 0x2F and p + 1 < n and buf[p + 1] in b"/*":
            if buf[p + 1] == 0x2F:
                k = buf.find(b"\n", p + 2)
                p = n if k < 0 else k
            else:
                k = buf.find(b"*/", p + 2)
                if k < 0:
                    return None
                p = k + 1
        p += 1
    return None


# ---------------------------------------------------------------- records


class Rec:
    __slots__ = ("n", "values")

    def __init__(self):
        self.n = 0
        self.values: dict[str, tuple] = {}  # required field name -> ('num'|'text', value)


class _Quirk(Exception):
    pass


def _simdjson_record(doc: bytes, fields: set) -> Rec | None:
    """The record of a well-formed document, or None when pysimdjson refuses it (or the
    document has duplicate keys or hits the nested-array quirk)."""
    try:
        root = simdjson.Parser().parse(doc)
        _check(root)
        rec = Rec()
        _walk(root, "", rec, fields)
        return rec
    except (ValueError, RuntimeError, _Quirk):
        return None


def _check(v):
    """Duplicate keys anywhere make the document malformed."""
    if isinstance(v, simdjson.Object):
        keys = list(v.keys())
        if any("\x00" in k for k in keys):
            raise ValueError("NUL in a key: pysimdjson cannot look it up")
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        for k in keys:
            _check(v[k])
    elif isinstance(v, simdjson.Array):
        for x in v:
            _check(x)


def _leaves(v, out):
    if isinstance(v, simdjson.Array):
        raise _Quirk  # a nested array ends Elasticsearch's collection early
    if isinstance(v, simdjson.Object):
        for k in v.keys():
            _leaves(v[k], out)
    elif v is not None:
        out.append(v)


def _scalar(v):
    if v is True:
        return ("text", "true")
    if v is False:
        return ("text", "false")
    if isinstance(v, str):
        return ("text", v)
    return ("num", float(v))


def _walk(obj, path, rec, fields):
    for k in list(obj.keys()):
        v = obj[k]
        name = path + k
        if isinstance(v, simdjson.Object):
            _walk(v, name + ".", rec, fields)
        elif v is None:
            pass
        else:
            rec.n += 1
            if name in fields:
                if isinstance(v, simdjson.Array):
                    items = []
                    for x in v:
                        _leaves(x, items)
                    if len(items) == 1:
                        rec.values[name] = _scalar(items[0])
                    else:
                        rec.values[name] = ("text", ",".join("x" for _ in items))
                else:
                    rec.values[name] = _scalar(v)


def jackson_text(buf: bytes) -> tuple[bytes, bool, bool]:
    """The body as UTF-8, in the encoding Jackson detects from its first 4 bytes (a mark, or the
    zero bytes of ASCII in UTF-16 or UTF-32); whether it breaks off (a UTF-32 unit past U+10FFFF,
    a cut unit, a byte order Jackson refuses: then the text before the break is read); and
    whether it was UTF-8 (only then is a leading U+FEFF a mark to drop). UTF-16 as Java's
    decoder reads it: a high surrogate takes the unit after it (unless a low one) into one
    U+FFFD, as does a lone last byte; UTF-32 as Jackson's reader: units may pair as surrogates,
    a lone one (which UTF-8 cannot hold) is U+FFFD and keeps the unit after it."""
    def chars(units: list[int], swallow: bool) -> str:
        out, i = [], 0
        while i < len(units):
            u = units[i]
            if 0xD800 <= u < 0xDC00:
                if i + 1 < len(units) and 0xDC00 <= units[i + 1] < 0xE000:
                    out.append(chr(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00)))
                    i += 2
                    continue
                out.append("\ufffd")
                i += 2 if swallow and i + 1 < len(units) else 1
                continue
            out.append("\ufffd" if 0xDC00 <= u < 0xE000 else chr(u))
            i += 1
        return "".join(out)

    def utf16(rest: bytes, order: str) -> tuple[bytes, bool, bool]:
        units = [int.from_bytes(rest[i:i + 2], order) for i in range(0, len(rest) - 1, 2)]
        text = chars(units, swallow=True)
        if len(rest) % 2 and not (units and 0xD800 <= units[-1] < 0xDC00):
            text += "\ufffd"  # a lone last byte (after a high surrogate, one U+FFFD for both)
        return text.encode(), False, False

    def utf32(rest: bytes, order: str) -> tuple[bytes, bool, bool]:
        units = []
        for i in range(0, len(rest) - len(rest) % 4, 4):
            u = int.from_bytes(rest[i:i + 4], order)
            if u > 0x10FFFF:
                return chars(units, swallow=False).encode(), True, False
            units.append(u)
        return chars(units, swallow=False).encode(), len(rest) % 4 != 0, False

    if len(buf) >= 4:
        quad = int.from_bytes(buf[:4], "big")
        if quad == 0x0000FEFF:
            return utf32(buf[4:], "big")
        if quad == 0xFFFE0000:
            return utf32(buf[4:], "little")
        if quad in (0x0000FFFE, 0xFEFF0000):
            return b"", True, False
        if quad >> 16 == 0xFEFF:
            return utf16(buf[2:], "big")
        if quad >> 16 == 0xFFFE:
            return utf16(buf[2:], "little")
        if quad >> 8 == 0xEFBBBF:
            return buf, False, True
        if quad >> 8 == 0:
            return utf32(buf, "big")
        if quad & 0x00FFFFFF == 0:
            return utf32(buf, "little")
        if quad & 0xFF00FFFF == 0 or quad & 0xFFFF00FF == 0:
            return b"", True, False
    if len(buf) >= 2 and buf[0] == 0:
        return utf16(buf, "big")
    if len(buf) >= 2 and buf[1] == 0:
        return utf16(buf, "little")
    return buf, False, True


class BodyParser:
    """Records of one whole body; raises Malformed where the request fails."""

    def __init__(self, buf: bytes, fields: list[str]):
        buf, self.broken, utf8 = jackson_text(buf)
        if utf8 and buf.startswith(b"\xef\xbb\xbf"):
            buf = buf[3:]
        self.buf = buf
        self.fields = set(fields)
        self.tok = Tokenizer(buf)
        self.errors = 0
        self.simdjson_docs = 0

    def add_errors(self, n):
        self.errors += n
        if self.errors >= PARSE_ERRORS_LIMIT:
            raise Malformed("too many parse errors")

    def records(self):
        tok, buf = self.tok, self.buf
        deferred = []
        top_recovery = False
        while True:
            if top_recovery:
                p = tok.pos
                while p < len(buf) and buf[p] in WS:
                    p += 1
                if p >= len(buf):
                    break
                kind, end = _recovery_item(buf, p)
                tok.pos = end
                if kind == "open" and buf[p] == 0x5B:
                    tok.frames.append([False, VALUE_OR_END, None])
                elif kind == "open":
                    end, errs = _skip_record(buf, p + 1, 1)
                    tok.pos = end
                    self.add_errors(errs)
                    if buf[end - 1] == 0x7D:
                        top_recovery = False
                        tok.after_value()
                        yield Rec()
                elif kind == "close" and buf[p] == 0x5D:
                    if tok.open_arrays() > 0:
                        tok.frames.pop()
                        tok.after_value()
                    else:
                        self.add_errors(1)
                elif kind in ("close", "bad"):
                    self.add_errors(1)
                continue
            try:
                rec, errs = self.read()
            except _Done:
                break
            except _TopError as e:
                top_recovery = True
                tok.pos = e.resume
                continue
            self.add_errors(errs)
            if tok.at_top_level():
                yield from deferred
                deferred = []
                yield rec
            else:
                deferred.append(rec)
        if self.broken:
            raise Malformed("the text breaks off (UTF-32)")
        if top_recovery:
            yield Rec()
        if tok.open_arrays() > 0:
            raise Malformed("unclosed top-level array")

    def _try_simdjson(self):
        tok, buf = self.tok, self.buf
        if not tok.at_top_level():
            return None
        expect = tok.frames[-1][1] if tok.frames else V
        if expect not in (V, VALUE_OR_END):
            return None
        save = tok.pos
        try:
            tok.skip_ws()
        except (_End, _TokError, Malformed):
            tok.pos = save
            return None
        p = tok.pos
        if buf[p] != 0x7B:
            return None
        end = _unit_end(buf, p)
        rec = None if end is None else _simdjson_record(buf[p:end], self.fields)
        if rec is None:
            return None
        self.simdjson_docs += 1
        tok.pos = end
        tok.after_value()
        return rec

    def read(self):
        tok = self.tok
        rec = self._try_simdjson()
        if rec is not None:
            return rec, 0
        rec = Rec()
        prefix: list[str] = []
        path = ""
        while True:
            try:
                t = tok.next()
            except _End:
                if tok.at_top_level() and not prefix and rec.n == 0:
                    raise _Done
                raise Malformed("body ends inside a record")
            except _TokError as e:
                return self.recover(e.resume, rec)
            if t == END_OBJ:
                if not prefix:
                    return rec, 0
                path = prefix.pop()
            elif isinstance(t, tuple) and t[0] == "key":
                try:
                    path = self.field_value(rec, t[1], path, prefix)
                except _End:
                    raise Malformed("body ends inside a record")
                except _TokError as e:
                    return self.recover(e.resume, rec)

    def recover(self, resume, rec):
        tok = self.tok
        if tok.at_top_level():
            raise _TopError(resume)
        end, errors = _skip_record(self.buf, resume, tok.record_depth())
        tok.pos = end
        tok.leave_record()
        return rec, errors

    def field_value(self, rec, key, path, prefix):
        tok = self.tok
        v = tok.next()
        name = path + key
        used = name in self.fields
        if v == START_OBJ:
            prefix.append(path)
            return name + "."
        if v == START_ARR:
            rec.n += 1
            if used:
                items = []
                while True:
                    t = tok.next()
                    if t == END_ARR:
                        break
                    if isinstance(t, tuple) and t[0] in ("str", "num"):
                        items.append(t[1])
                    elif isinstance(t, tuple) and t[0] in ("true", "false"):
                        items.append(t[0])
                rec.values[name] = ("text", ",".join(items))
            else:
                depth = 1
                while depth:
                    t = tok.next()
                    if t in (START_ARR, START_OBJ):
                        depth += 1
                    elif t in (END_ARR, END_OBJ):
                        depth -= 1
        elif isinstance(v, tuple) and v[0] in ("str", "num"):
            rec.n += 1
            if used:
                rec.values[name] = ("text", v[1])
        elif isinstance(v, tuple) and v[0] in ("true", "false"):
            rec.n += 1
            if used:
                rec.values[name] = ("text", v[0])
        return path


# ---------------------------------------------------------------- bucket diagnostics (§4)


class Diagnostics:
    def __init__(self, span_ms: int, latency_ms: int):
        self.span = span_ms
        self.size = max(-(-latency_ms // span_ms), 10)
        self.window: list[list[int]] = []  # [start, count], oldest .. newest
        self.last_emitted = None
        self.pending = [0, 0, 0]  # buckets, empty, sparse
        self.latest_empty = None
        self.latest_sparse = None

    def _emit(self, start, count):
        if self.last_emitted is not None and start <= self.last_emitted:
            return
        self.last_emitted = start
        self.pending[0] += 1
        if count == 0:
            self.pending[1] += 1
            self.latest_empty = start
            return
        total = sum(c for _, c in self.window)
        slots = (self.window[-1][0] - self.window[0][0]) // self.span + 1
        avg = total / slots
        if math.log(avg) - math.log(count) > 2:
            self.pending[2] += 1
            self.latest_sparse = start

    def _advance(self):
        if len(self.window) == self.size:
            start, count = self.window[0]
            self._emit(start, count)
            self.window.pop(0)
        self.window.append([self.window[-1][0] + self.span, 0])

    def add(self, t_ms: int):
        start = (t_ms // self.span) * self.span
        if not self.window:
            self.window.append([start, 0])
        steps = (start - self.window[-1][0]) // self.span
        if steps > 3 * self.size:
            # After `size` steps the window is all empty; each further step emits one empty bucket.
            for _ in range(self.size):
                self._advance()
            rest = steps - 2 * self.size
            first = self.window[0][0]
            last = first + (rest - 1) * self.span
            self.pending[0] += rest
            self.pending[1] += rest
            self.latest_empty = last
            self.last_emitted = last
            self.window = [[s + rest * self.span, c] for s, c in self.window]
        while start > self.window[-1][0]:
            self._advance()
        oldest = self.window[0][0]
        if start < oldest:
            # Before the window's first bucket (a latency lets it in): Elasticsearch's window
            # reaches back to it while the ring has room, with empty buckets in between.
            if (self.window[-1][0] - start) // self.span >= self.size:
                raise OutsideWindow("record before a full diagnostics window: post-data.md §4 does not say")
            self.window[:0] = [[s, 0] for s in range(start, oldest, self.span)]
            oldest = start
        self.window[(start - oldest) // self.span][1] += 1

    def flush(self):
        for start, count in self.window[:-1]:
            self._emit(start, count)

    def take(self):
        p, self.pending = self.pending, [0, 0, 0]
        return p


# ---------------------------------------------------------------- the job


COUNTERS = ["processed_record_count", "input_bytes", "input_field_count", "invalid_date_count",
            "missing_field_count", "out_of_order_timestamp_count", "empty_bucket_count",
            "sparse_bucket_count", "bucket_count"]
DATES = ["earliest_record_timestamp", "latest_record_timestamp", "last_data_time",
         "latest_empty_bucket_timestamp", "latest_sparse_bucket_timestamp", "log_time"]


def _new_counts():
    d = {k: 0 for k in COUNTERS}
    d.update({k: None for k in DATES})
    return d


def render(job_id: str, c: dict, a: int) -> dict:
    out = {"job_id": job_id, "processed_record_count": c["processed_record_count"],
           "processed_field_count": max(0, c["processed_record_count"] * a - c["missing_field_count"])}
    for k in COUNTERS[1:]:
        out[k] = c[k]
    for k in DATES:
        if c[k] is not None:
            out[k] = c[k]
    out["input_record_count"] = (c["processed_record_count"] + c["out_of_order_timestamp_count"]
                                 + c["invalid_date_count"])
    return out


class ReferenceJob:
    def __init__(self, cfg: JobConfig):
        self.cfg = cfg
        self.totals = _new_counts()
        self.L = 0  # out-of-order reference time (§3): persisted latest or 0
        self.latest = None
        self.earliest = None
        self.diag = Diagnostics(cfg.span_ms, cfg.latency_s * 1000)
        self.requests = 0
        self.last_parser = None

    def _transfer(self, req):
        # Counted into the request only: the request is folded into the totals afterwards,
        # so each finished bucket reaches the lifetime totals exactly once.
        b, e, s = self.diag.take()
        req["bucket_count"] += b
        req["empty_bucket_count"] += e
        req["sparse_bucket_count"] += s
        for c in (req, self.totals):
            if self.diag.latest_empty is not None:
                c["latest_empty_bucket_timestamp"] = self.diag.latest_empty
            if self.diag.latest_sparse is not None:
                c["latest_sparse_bucket_timestamp"] = self.diag.latest_sparse

    def _account(self, rec: Rec, req):
        cfg = self.cfg
        req["input_field_count"] += max(rec.n - 1, 0)
        req["missing_field_count"] += sum(1 for f in cfg.fields if f not in rec.values)
        t = parse_time_ms(rec.values.get(cfg.time_field), cfg.time_format)
        if t is None:
            req["invalid_date_count"] += 1
            return
        b = (self.L // cfg.span_ms) * cfg.span_ms
        t_s = abs(t) // 1000 * (1 if t >= 0 else -1)
        if t_s < b // 1000 - cfg.latency_s:
            req["out_of_order_timestamp_count"] += 1
            lt = req["latest_record_timestamp"]
            req["latest_record_timestamp"] = t if lt is None else max(lt, t)
            return
        req["processed_record_count"] += 1
        self.L = max(self.L, t)
        self.latest = t if self.latest is None else max(self.latest, t)
        req["latest_record_timestamp"] = self.latest
        if self.earliest is None:
            self.earliest = t
            req["earliest_record_timestamp"] = t
        self.diag.add(t)

    def _fold(self, req):
        for k in COUNTERS:
            self.totals[k] += req[k]
        self.totals["latest_record_timestamp"] = self.latest
        self.totals["earliest_record_timestamp"] = self.earliest

    def post(self, body: bytes, now_ms: int):
        """(True, response dict) or (False, None) when the request fails (Malformed)."""
        self.requests += 1
        req = _new_counts()
        self._transfer(req)
        req["input_bytes"] = len(body)
        parser = BodyParser(body, self.cfg.fields)
        self.last_parser = parser
        try:
            for rec in parser.records():
                self._account(rec, req)
        except Malformed:
            self._fold(req)
            return False, None
        self.diag.flush()
        self._transfer(req)
        req["last_data_time"] = now_ms
        resp = render(self.cfg.job_id, req, len(self.cfg.analysis_fields))
        self._fold(req)
        self.totals["last_data_time"] = now_ms
        self.totals["log_time"] = now_ms  # the totals are stamped for persisting as a request succeeds
        return True, resp

    def stats(self) -> dict:
        a = len(self.cfg.analysis_fields) if self.requests else 1
        return render(self.cfg.job_id, self.totals, a)
