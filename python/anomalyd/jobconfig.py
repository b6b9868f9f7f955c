"""Validation and defaults for ``PUT _ml/anomaly_detectors/<job_id>``, as Elasticsearch 8.x does them.

``build_job_config`` turns a request body into the complete job config Elasticsearch returns (defaults
filled in, keys in Elasticsearch's order) or raises ``ConfigError`` with Elasticsearch's messages.

Errors follow Elasticsearch's strict ``ObjectParser``: a failure inside a field is wrapped once per
object level ("[job_details] failed to parse field [analysis_config]", caused by "[analysis_config]
failed to parse field [detectors]", caused by the real message), so ``ConfigError`` (an ``EsError``) has
``caused_by``, and its ``body()`` names the ``root_cause`` as Elasticsearch guesses it. Elasticsearch
prefixes parse errors with the JSON position ("[3:5] "); we see a decoded dict, so that prefix is left
out. Checks made after parsing (ids, retention, duplicate detectors, time field) are top-level
``illegal_argument_exception`` errors, as in Elasticsearch.

Also here: ``validate_job_id``, ``validate_groups``, ``parse_time_value``, ``request_time_value``, and the
parsing pieces and ``check_*`` rules ``jobupdate`` (the ``_update`` API) shares.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ._native import SUPPORTED_FUNCTIONS
from .errors import EsError

__all__ = ["ConfigError", "validate_job_id", "validate_groups", "build_job_config", "analysis_fields",
           "parse_time_value", "request_time_value"]

X, IAE, STATUS = "x_content_parse_exception", "illegal_argument_exception", "status_exception"
_ES_TYPES = {STATUS, "parse_exception", "resource_already_exists_exception"}  # ElasticsearchException subclasses


class ConfigError(EsError):
    """A validation failure, as Elasticsearch's parsers and builders raise them; ``caused_by``
    holds the nested cause, if any."""

    def __init__(self, reason: str, *, status: int = 400, type: str = IAE, caused_by: ConfigError | None = None):
        super().__init__(status, type, reason, caused_by=caused_by)

    def root_cause(self) -> EsError:
        """ElasticsearchException.guessRootCauses: descend through parse errors and Elasticsearch
        exceptions only (a plain Java exception inside one is not the root named)."""
        err: EsError = self
        while (nxt := err.caused_by) is not None and (
                (err.type == X and nxt.type in _ES_TYPES | {X}) or (err.type in _ES_TYPES and nxt.type in _ES_TYPES)):
            err = nxt
        return err


# ------------------------------------------------------------------------------------------ data tables
FUNCTIONS = ("count", "low_count", "high_count", "non_zero_count", "low_non_zero_count", "high_non_zero_count",
             "distinct_count", "low_distinct_count", "high_distinct_count", "rare", "freq_rare", "info_content",
             "low_info_content", "high_info_content", "metric", "mean", "low_mean", "high_mean", "avg", "low_avg",
             "high_avg", "median", "low_median", "high_median", "min", "max", "sum", "low_sum", "high_sum",
             "non_null_sum", "low_non_null_sum", "high_non_null_sum", "varp", "low_varp", "high_varp",
             "time_of_day", "time_of_week", "lat_long")  # DetectorFunction, in enum order
SHORTCUTS = {"nzc": "non_zero_count", "low_nzc": "low_non_zero_count", "high_nzc": "high_non_zero_count",
             "dc": "distinct_count", "low_dc": "low_distinct_count", "high_dc": "high_distinct_count"}
COUNT_WITHOUT_FIELD = set(FUNCTIONS[:6]) | {"time_of_day", "time_of_week"}
FIELD_NAME_FUNCTIONS = set(FUNCTIONS[6:9]) | set(FUNCTIONS[11:35]) | {"lat_long"}
BY_FIELD_REQUIRED, OVER_FIELD_REQUIRED = {"rare", "freq_rare"}, {"freq_rare"}
# the non_null_sum family joined this set in Elasticsearch 9.3.0 / 9.2.4 / 8.19.10
NO_OVER_FIELD = set(FUNCTIONS[3:6]) | set(FUNCTIONS[29:32])
NO_RULE_CONDITIONS = {"lat_long", "metric", "rare", "freq_rare"}
ML_CATEGORY, MAX_ID_LENGTH = "mlcategory", 64
_ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")  # MlStrings: '.' is accepted, though undocumented
_ID_RULE = "can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with " \
           "alphanumeric"
_ENUM = "No enum constant org.elasticsearch.xpack.core.ml.job.config."

# ObjectParser.ValueType: the JSON tokens each kind of field accepts
STR, STR_OR_NULL = {"VALUE_STRING"}, {"VALUE_STRING", "VALUE_NULL"}
NUM, BOOL = {"VALUE_NUMBER", "VALUE_STRING"}, {"VALUE_BOOLEAN", "VALUE_STRING"}
STR_ARRAY, OBJ, OBJ_ARRAY = {"START_ARRAY", "VALUE_STRING"}, {"START_OBJECT"}, {"START_OBJECT", "START_ARRAY"}
OBJ_OR_STR, VALUE = {"START_OBJECT", "VALUE_STRING"}, {"VALUE_BOOLEAN", "VALUE_NULL", "VALUE_NUMBER", "VALUE_STRING"}

_UNIT_NANOS = {"nanos": 1, "micros": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
               "d": 86400 * 10**9}
_BYTE_UNITS = {"k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30, "t": 2**40,
               "tb": 2**40, "p": 2**50, "pb": 2**50, "b": 1}  # checked in this order, as Elasticsearch does
_LONG_MIN, _LONG_MAX = -2**63, 2**63 - 1
_LONG_RE = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DOUBLE_RE = re.compile(_DECIMAL_RE.pattern + r"[fFdD]?|[+-]?(NaN|Infinity)")


# -------------------------------------------------------------------------------------- generic parsing
def _token(v: Any) -> str:
    if isinstance(v, bool):
        return "VALUE_BOOLEAN"
    return {type(None): "VALUE_NULL", int: "VALUE_NUMBER", float: "VALUE_NUMBER", str: "VALUE_STRING",
            dict: "START_OBJECT", list: "START_ARRAY"}.get(type(v), "VALUE_EMBEDDED_OBJECT")


def _similarity(a: str, b: str) -> float:
    """Lucene's LevenshteinDistance.getDistance: 1 - edits / longer length."""
    if not a or not b:
        return float(a == b)
    prev = list(range(len(a) + 1))
    for j, cb in enumerate(b, 1):
        cur = [j]
        for i, ca in enumerate(a, 1):
            cur.append(min(cur[i - 1] + 1, prev[i] + 1, prev[i - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def _unknown_field(parser: str, field: str, candidates: Any) -> ConfigError:
    """SuggestingErrorOnUnknown: candidates more than 0.5 similar, best first."""
    scored = sorted((-s, c) for c in candidates if (s := _similarity(field, c)) > 0.5)
    names = [c for _, c in scored]
    hint = f" did you mean [{names[0]}]?" if len(names) == 1 else \
        f" did you mean any of [{', '.join(names)}]?" if names else ""
    return ConfigError(f"[{parser}] unknown field [{field}]{hint}", type=X)


def _failed(parser: str, field: str, cause: ConfigError) -> ConfigError:
    return ConfigError(f"[{parser}] failed to parse field [{field}]", type=X, caused_by=cause)


Fields = dict[str, tuple[set[str], Callable[[Any], Any]]]


def _parse_object(name: str, raw: dict, fields: Fields, *, ctor: tuple[str, ...] = (), required: tuple[str, ...] = (),
                  build: Callable[[dict], None] | None = None, late: tuple[str, ...] = ()) -> dict[str, Any]:
    """A strict ObjectParser (a ConstructingObjectParser when ``ctor`` names constructor arguments).

    Fields are converted in document order. ``build`` runs when the last constructor argument arrives, or
    at the end if optional ones are missing; ``late`` fields met before that are converted afterwards,
    last first, as Elasticsearch runs queued setters."""
    values: dict[str, Any] = {}
    queued: list[tuple[str, Any]] = []

    def finish() -> None:
        try:
            if build:
                build(values)
            for key, v in reversed(queued):
                try:
                    values[key] = fields[key][1](v)
                except ConfigError as e:
                    raise _failed(name, key, e) from None
        except ConfigError as e:
            raise ConfigError(f"{'f' if e.type == X else 'F'}ailed to build [{name}] after last required field "
                              "arrived", type=X, caused_by=e) from None

    done = not ctor
    for key, v in raw.items():
        if key not in fields:
            raise _unknown_field(name, key, fields)
        tokens, convert = fields[key]
        if (tok := _token(v)) not in tokens:
            raise ConfigError(f"[{name}] {key} doesn't support values of type: {tok}", type=X)
        if key in late and not done:
            queued.append((key, v))
            continue
        try:
            values[key] = convert(v)
            if not done and all(k in values for k in ctor):
                done = True
                finish()
        except ConfigError as e:
            raise _failed(name, key, e) from None
    if not done:
        if missing := [k for k in required if k not in values]:
            raise ConfigError(f"Required [{', '.join(missing)}]")
        finish()
    return values


def _objects(v: Any) -> list[dict]:
    """An object array; a single object counts as an array of one."""
    items = [v] if isinstance(v, dict) else v
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"Expected START_OBJECT but was: {_token(item)}", type=X)
    return items


def _strings(v: Any) -> list[str]:
    """A string array (a single string counts); scalars are taken through their text, as p.text() does."""
    def text(item: Any) -> str:
        if isinstance(item, (dict, list)):
            raise ConfigError(f"Can't get text on a {_token(item)}", type="illegal_state_exception")
        if isinstance(item, bool):
            return "true" if item else "false"
        return "null" if item is None else str(item)
    return [v] if isinstance(v, str) else [text(item) for item in v]


def _long(v: Any) -> int:
    """XContentParser.longValue() with coercion: numbers and numeric strings, fractions truncated."""
    if isinstance(v, str):
        if not _DECIMAL_RE.fullmatch(v):
            raise ConfigError(f'For input string: "{v}"')
        n = int(v) if _LONG_RE.fullmatch(v) else int(float(v))
    else:
        n = int(v)
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise ConfigError(f"Value [{v}] is out of range for a long")
    return n


def _bool(v: Any) -> bool:
    if not isinstance(v, bool) and v not in ("true", "false"):
        raise ConfigError(f"Failed to parse value [{v}] as only [true] or [false] are allowed.")
    return v in (True, "true")


def _double(v: Any) -> float:
    if not isinstance(v, str):
        return float(v)
    if not _DOUBLE_RE.fullmatch(v.strip()):
        raise ConfigError(f'For input string: "{v}"', type="number_format_exception")
    return float(v.strip().rstrip("fFdD").replace("Infinity", "inf"))


def _enum(cls: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    def convert(v: str) -> str:
        if v.lower() not in allowed:
            raise ConfigError(f"{_ENUM}{cls}.{v.upper()}")
        return v.lower()
    return convert


def _num(n: int) -> str:
    """java.text.MessageFormat's rendering of a number (Locale.ROOT groups thousands)."""
    return f"{n:,}"


# ---------------------------------------------------------------------------------- time and byte values
class _TimeValue:
    """org.elasticsearch.core.TimeValue: a duration in the unit it was written with."""

    def __init__(self, duration: int, unit: str):
        self.duration, self.unit = duration, unit
        self.nanos = max(_LONG_MIN, min(_LONG_MAX, duration * _UNIT_NANOS[unit]))  # TimeUnit saturates

    @property
    def seconds(self) -> int:  # TimeValue.seconds(): truncated towards zero
        return -(-self.nanos // 10**9) if self.nanos < 0 else self.nanos // 10**9

    def string_rep(self) -> str:  # getStringRep(): how configs echo the value
        return str(self.duration) if self.duration < 0 else f"{self.duration}{self.unit}"

    def __str__(self) -> str:  # toString(): the largest unit, at most one (truncated) decimal
        if self.duration < 0 or self.nanos == 0:
            return str(self.duration) if self.duration < 0 else "0s"
        unit = next((u for u in ("d", "h", "m", "s", "ms", "micros") if self.nanos >= _UNIT_NANOS[u]), "nanos")
        whole, _, fraction = repr(self.nanos / _UNIT_NANOS[unit]).partition(".")
        return (whole if fraction[:1] in ("", "0") else f"{whole}.{fraction[0]}") + unit


def _time_value(text: str, setting: str) -> _TimeValue:
    """TimeValue.parseTimeValue with Elasticsearch's messages."""
    normalized = text.lower().strip()
    unit = next((u for u in ("nanos", "micros", "ms", "s") if normalized.endswith(u)), None)
    unit = unit or ("m" if text.endswith("m") else None)  # minutes are case-sensitive: 'M' would be months
    unit = unit or next((u for u in ("h", "d") if normalized.endswith(u)), None)
    if unit is None:
        if re.fullmatch(r"-0*1|0+", normalized):
            return _TimeValue(-1 if normalized.startswith("-") else 0, "ms")
        raise ConfigError(f"failed to parse setting [{setting}] with value [{text}] as a time value: unit is "
                          "missing or unrecognized")
    number = normalized[:-len(unit)].strip()
    if _LONG_RE.fullmatch(number) and _LONG_MIN <= int(number) <= _LONG_MAX:
        if int(number) < -1:
            raise ConfigError(f"failed to parse setting [{setting}] with value [{text}] as a time value: negative "
                              "durations are not supported")
        return _TimeValue(int(number), unit)
    fractional = ", fractional time values are not supported" if _DOUBLE_RE.fullmatch(number) else ""
    raise ConfigError(f"failed to parse [{text}]{fractional}")


def request_time_value(value: Any, setting: str, body_parser: str | None = None) -> tuple[float | None, str]:
    """A request's time value (`?timeout=30s`): seconds (None for -1, no limit) and its
    rendering in messages (TimeValue.toString()). A malformed query parameter is the REST
    layer's parse_exception; a body field (`body_parser` names the request's object parser)
    must be a string, and a malformed one is an x_content_parse_exception caused by it."""
    if body_parser is not None and not isinstance(value, str):
        raise ConfigError(f"[{body_parser}] {setting} doesn't support values of type: {_token(value)}", type=X)
    try:
        tv = _time_value(str(value), setting)
    except ConfigError as e:
        cause = ConfigError(e.reason, type="parse_exception")
        if body_parser is None:
            raise cause from None
        raise ConfigError(f"[{body_parser}] failed to parse field [{setting}]", type=X, caused_by=cause) from None
    return (None if tv.nanos < 0 else tv.nanos / 1e9), str(tv)


def parse_time_value(s: str, setting: str) -> int:
    """An Elasticsearch time value ("5m", "1h", "30s", "100ms", "-1", "0") in milliseconds.

    Raises ConfigError (illegal_argument_exception) with Elasticsearch's message."""
    nanos = _time_value(s, setting).nanos
    return -(-nanos // 10**6) if nanos < 0 else nanos // 10**6


def _byte_size_mb(text: str, setting: str) -> int:
    """ByteSizeValue.parseBytesSizeValue(text).getMb(): whole MiB, truncated."""
    def fail(detail: str = "", decimals: str = "") -> ConfigError:
        return ConfigError(f"failed to parse setting [{setting}] with {decimals}value [{text}]{detail}",
                           type="parse_exception")
    if text in ("0", "0b", "0B", "1b", "1B", "-1", "-1b", "-1B"):
        return 0
    lower = text.lower().strip()
    if (suffix := next((s for s in _BYTE_UNITS if lower.endswith(s)), None)) is None:
        raise fail(" as a size in bytes: unit is missing or unrecognized")
    number, scale = lower[:-len(suffix)].strip(), _BYTE_UNITS[suffix]
    if _LONG_RE.fullmatch(number):
        if not 0 <= int(number) * scale <= _LONG_MAX:
            raise fail(" as a size in bytes")
        return int(number) * scale // 2**20
    if scale == 1 or not (m := re.fullmatch(r"([0-9]*)\.([0-9]*)", number)) or number == ".":
        raise fail()
    if len(m[2]) > 2:
        raise fail(decimals="more than two decimals in ")
    units = int(m[1] or 0) * 100 + int((m[2] + "00")[:2])  # hundredths of a unit, rounded up to whole bytes
    return -(-units * scale // 100) // 2**20


# -------------------------------------------------------------------------------------------- detectors
def _quote(field: str) -> str:
    """MlStrings.doubleQuoteIfNotAlphaNumeric."""
    return field if not re.search(r"[^A-Za-z0-9_]", field) else '"' + field.replace('"', '\\"') + '"'


def _default_description(d: dict) -> str:
    """DefaultDetectorDescription, e.g. "metric(responsetime) by airline"."""
    parts = [d["function"] + (f"({_quote(d['field_name'])})" if d.get("field_name") else "")]
    parts += [f"{word} {_quote(d[key])}" for word, key in (("by", "by_field_name"), ("over", "over_field_name"))
              if d.get(key)]
    parts += ["usenull=true"] if d.get("use_null") else []
    parts += [f"partitionfield={_quote(d['partition_field_name'])}"] if d.get("partition_field_name") else []
    return " ".join(parts + ([f"excludefrequent={d['exclude_frequent']}"] if "exclude_frequent" in d else []))


def _function(name: str) -> str:
    if name not in FUNCTIONS and name not in SHORTCUTS:
        raise ConfigError(f"Unknown function '{name}'")
    return SHORTCUTS.get(name, name)


def _verify_field_name(field: str | None) -> None:
    if field is not None and re.search(r'["\\\x00-\x1f\x7f-\x9f]', field):
        raise ConfigError(f"Invalid field name '{field}'. Field names including over, by and partition fields "
                          "cannot contain any of these characters: \",\\", type=STATUS)
    if field == ".":
        raise ConfigError("Invalid field name '.'. Field names including over, by and partition fields cannot "
                          "be '.'", type=STATUS)


def _condition(raw: dict) -> dict:
    fields = {"applies_to": (STR, _enum("RuleCondition.AppliesTo", ("actual", "typical", "diff_from_typical",
                                                                      "time"))),
              "operator": (STR, _enum("Operator", ("gt", "gte", "lt", "lte"))), "value": (NUM, _double)}
    c = _parse_object("rule_condition", raw, fields, ctor=tuple(fields), required=tuple(fields))
    return {k: c[k] for k in fields}


def _scope(raw: dict) -> dict:
    fields = {"filter_id": (STR, str), "filter_type": (STR, _enum("FilterRef.FilterType", ("include", "exclude")))}
    scope = {}
    for field, ref in raw.items():
        if not isinstance(ref, dict):
            raise ConfigError(f"Expected START_OBJECT but was: {_token(ref)}", type=X)
        r = _parse_object("filter_ref", ref, fields, ctor=tuple(fields), required=("filter_id",))
        scope[field] = {"filter_id": r["filter_id"], "filter_type": r.get("filter_type", "include")}
    return scope


def _rule(raw: dict) -> dict:
    action = _enum("RuleAction", ("skip_result", "skip_model_update"))
    r = _parse_object("detection_rule", raw, {
        "actions": (STR_ARRAY, lambda v: {action(a) for a in _strings(v)}), "scope": (OBJ, _scope),
        "conditions": (OBJ_ARRAY, lambda v: [_condition(c) for c in _objects(v)])})
    if not r.get("scope") and not r.get("conditions"):
        raise ConfigError("Invalid detector rule: at least scope or a condition is required", type=STATUS)
    actions = r.get("actions", {"skip_result"})
    return {"actions": [a for a in ("skip_result", "skip_model_update") if a in actions],
            **{k: r[k] for k in ("scope", "conditions") if r.get(k)}}


def _detector(raw: dict) -> dict:
    """Detector.STRICT_PARSER then Detector.Builder.build(), with its checks in its order."""
    text = (STR, str)
    d = _parse_object("detector", raw, {
        "detector_description": text, "function": (STR, _function), "field_name": text, "by_field_name": text,
        "over_field_name": text, "partition_field_name": text, "use_null": (BOOL, _bool),
        "exclude_frequent": (STR, _enum("Detector.ExcludeFrequent", ("all", "none", "by", "over"))),
        "custom_rules": (OBJ_ARRAY, lambda v: [_rule(r) for r in _objects(v)]), "detector_index": (NUM, _long)})
    fn, field = d.get("function"), d.get("field_name")
    by, over, part = d.get("by_field_name"), d.get("over_field_name"), d.get("partition_field_name")
    shown = fn or "null"  # how MessageFormat renders a missing function
    for failed, message in [
            (not (field or by or over) and fn not in COUNT_WITHOUT_FIELD, "Unless a count or temporal function is "
             "used one of field_name, by_field_name or over_field_name must be set"),
            (not field and fn in FIELD_NAME_FUNCTIONS, f"field_name must be set when the '{fn}' function is used"),
            (bool(field) and fn not in FIELD_NAME_FUNCTIONS, f"field_name cannot be used with function '{shown}'"),
            (not by and fn in BY_FIELD_REQUIRED, f"by_field_name must be set when the '{fn}' function is used"),
            (not over and fn in OVER_FIELD_REQUIRED, f"over_field_name must be set when the '{fn}' function is used"),
            (bool(over) and fn in NO_OVER_FIELD, f"over_field_name cannot be used with function '{fn}'")]:
        if failed:
            raise ConfigError(message, type=STATUS)
    for name in (field, by, over, part):
        _verify_field_name(name)
    fn = fn or "metric"  # Elasticsearch builds a function-less detector as 'metric'
    scope_fields = sorted({f for f in (by, over, part) if f is not None})
    for rule in d.get("custom_rules", []):
        if rule.get("conditions") and rule["conditions"][0]["applies_to"] != "time" and fn in NO_RULE_CONDITIONS:
            raise ConfigError(f"Invalid detector rule: function {fn} only supports conditions that apply to time",
                              type=STATUS)
        if bad := next((k for k in rule.get("scope", {}) if k not in scope_fields), None):
            choice = f"select from [{', '.join(scope_fields)}]" if scope_fields else \
                "detector has no available fields for scoping"
            raise ConfigError(f"Invalid detector rule: scope field '{bad}' is invalid; {choice}", type=STATUS)
    for a, b, va, vb in (("partition_field_name", "by_field_name", part, by),
                         ("partition_field_name", "over_field_name", part, over),
                         ("by_field_name", "over_field_name", by, over)):
        if va and va == vb:
            raise ConfigError(f"{a} and {b} cannot be the same: '{va}'", type=STATUS)
    for word in ("count", "by", "over"):
        for key, value in (("by_field_name", by), ("over_field_name", over)):
            if value == word:
                raise ConfigError(f"'{word}' is not a permitted value for {key}", type=STATUS)
    out = {"function": fn, **{k: d[k] for k in ("field_name", "by_field_name", "over_field_name",
                                                 "partition_field_name") if k in d}}
    out |= ({"use_null": True} if d.get("use_null") else {}) | {k: d[k] for k in ("exclude_frequent",
                                                                                "custom_rules") if d.get(k)}
    return {"detector_description": d.get("detector_description", _default_description(out)), **out}


# ------------------------------------------------------------------------------------- analysis_config
def _check_seconds(tv: _TimeValue, field: str, *, positive: bool) -> None:
    """TimeUtils.checkPositiveMultiple / checkNonNegativeMultiple in whole seconds."""
    if tv.nanos <= 0 if positive else tv.nanos < 0:
        raise ConfigError(f"{field} cannot be less {'or equal ' if positive else ''}than 0. Value = {tv}")
    if tv.nanos % 10**9:
        raise ConfigError(f"{field} has to be a multiple of 1s; actual was '{tv}'")


def _check_categorization(c: dict, detectors: list[dict]) -> None:
    cat_field, filters = c.get("categorization_field_name"), c.get("categorization_filters") or []
    uses_category = any(ML_CATEGORY in _split_fields(d) for d in detectors)
    for failed, message in [
            (uses_category and cat_field is None,
             "categorization_field_name must be set for mlcategory to be available"),
            (cat_field is not None and not uses_category,
             "categorization_field_name is set but mlcategory is not used in any detector by/over/partition field"),
            ("categorization_analyzer" in c and cat_field is None,
             "categorization_analyzer requires setting categorization_field_name"),
            (bool(filters) and "categorization_analyzer" in c, "categorization_filters cannot be used with "
             "categorization_analyzer - instead specify them as pattern_replace char_filters in the analyzer"),
            (bool(filters) and cat_field is None, "categorization_filters require setting categorization_field_name"),
            (len(set(filters)) != len(filters), "categorization_filters contain duplicates"),
            ("" in filters, "categorization_filters are not allowed to contain empty strings")]:
        if failed:
            raise ConfigError(message, type=STATUS)
    for pattern in filters:
        try:
            re.compile(pattern)  # Python's regex syntax stands in for java.util.regex
        except re.error:
            raise ConfigError(f"categorization_filters contains invalid regular expression '{pattern}'",
                              type=STATUS) from None
    if not c.get("per_partition_categorization", {}).get("enabled"):
        return
    if cat_field is None:
        raise ConfigError("categorization_field_name must be set when per-partition categorization is enabled",
                          type=STATUS)
    seen = None
    for d in detectors:
        if ML_CATEGORY in _split_fields(d) and (part := d.get("partition_field_name")) in (ML_CATEGORY, None):
            raise ConfigError("mlcategory cannot be used as a partition_field_name when per-partition categorization "
                              "is enabled" if part else "partition_field_name must be set for detectors that reference "
                              "mlcategory when per-partition categorization is enabled", type=STATUS)
        if (part := d.get("partition_field_name")) is not None:
            if seen is not None and seen != part:
                raise ConfigError(f"partition_field_name cannot vary between detectors when per-partition "
                                  f"categorization is enabled: [{seen}] and [{part}] are used", type=STATUS)
            seen = part


def _split_fields(d: dict) -> set[str]:
    return {d[k] for k in ("by_field_name", "over_field_name", "partition_field_name") if k in d}


def check_prune_window(window: _TimeValue, span: _TimeValue) -> None:
    if window.seconds % span.seconds or window.seconds // span.seconds < 2:
        how = "a multiple of" if window.seconds % span.seconds else "at least 2 times greater than"
        raise ConfigError(f"model_prune_window [{window}] must be {how} bucket_span [{span}]", type=STATUS)


def _build_analysis_config(c: dict) -> None:
    """AnalysisConfig.Builder.build(): the checks that need the whole object, in Elasticsearch's order."""
    span = c.setdefault("bucket_span", _TimeValue(5, "m"))
    _check_seconds(span, "bucket_span", positive=True)
    if (window := c.get("model_prune_window")) is not None:
        check_prune_window(window, span)
    if "latency" in c:
        _check_seconds(c["latency"], "latency", positive=False)
    if not (detectors := c["detectors"]):
        raise ConfigError("No detectors configured", type=STATUS)
    _verify_field_name(c.get("summary_count_field_name"))
    _verify_field_name(c.get("categorization_field_name"))
    _check_categorization(c, detectors)
    if c.get("summary_count_field_name") and any(d["function"] == "metric" for d in detectors):
        raise ConfigError("The 'metric' function cannot be used in jobs that will take pre-summarized input",
                          type=STATUS)
    terms = sorted(set().union(*map(_split_fields, detectors), c.get("influencers", [])) - {""})
    for prev, term in zip(terms, terms[1:]):
        if term.startswith(prev + "."):
            raise ConfigError(f"Fields [{prev}] and [{term}] cannot both be used in the same analysis_config",
                              type=STATUS)


def _per_partition(raw: dict) -> dict:
    def build(v: dict) -> None:
        if not v["enabled"] and v.get("stop_on_warn"):
            raise ConfigError("stop_on_warn cannot be true in per_partition_categorization when enabled is false",
                              type=STATUS)
    v = _parse_object("per_partition_categorization", raw, {"enabled": (BOOL, _bool), "stop_on_warn": (BOOL, _bool)},
                      ctor=("enabled", "stop_on_warn"), required=("enabled",), build=build)
    return {"enabled": v["enabled"], **({"stop_on_warn": v.get("stop_on_warn", False)} if v["enabled"] else {})}


def _index_detectors(c: dict) -> None:
    """AnalysisConfig.Builder(detectors): numbers the detectors and rebuilds them, by then a function-less
    detector is 'metric' and needs a field_name."""
    for i, d in enumerate(c["detectors"]):
        d["detector_index"] = i
        if d["function"] == "metric" and not d.get("field_name"):
            raise ConfigError("field_name must be set when the 'metric' function is used", type=STATUS)


def _analysis_config(raw: dict) -> dict:
    def time(field: str) -> tuple[set[str], Callable[[str], _TimeValue]]:
        return STR, lambda v: _time_value(v, field)
    c = _parse_object("analysis_config", raw, {
        "detectors": (OBJ_ARRAY, lambda v: [_detector(d) for d in _objects(v)]), "bucket_span": time("bucket_span"),
        "categorization_field_name": (STR, str), "categorization_filters": (STR_ARRAY, _strings),
        "categorization_analyzer": (OBJ_OR_STR, lambda v: v), "per_partition_categorization": (OBJ, _per_partition),
        "latency": time("latency"), "summary_count_field_name": (STR, str), "influencers": (STR_ARRAY, _strings),
        "multivariate_by_fields": (BOOL, _bool), "model_prune_window": time("model_prune_window")},
        ctor=("detectors",), required=("detectors",), build=_index_detectors,
        late=("bucket_span", "latency", "model_prune_window"))
    _build_analysis_config(c)
    return c


def _default_prune_window(span: _TimeValue) -> str:
    """8.1+ default: the greater of 30d and 20 bucket spans (kept a whole number of bucket spans)."""
    secs = -(-max(30 * 86400, 20 * span.seconds) // span.seconds) * span.seconds
    unit = next(u for u in ("d", "h", "m", "s") if secs * 10**9 % _UNIT_NANOS[u] == 0)
    return f"{secs * 10**9 // _UNIT_NANOS[unit]}{unit}"


def _analysis_config_out(c: dict) -> dict:
    """AnalysisConfig.toXContent."""
    out: dict[str, Any] = {"bucket_span": c["bucket_span"].string_rep()}
    out |= {k: c[k] for k in ("categorization_field_name", "categorization_filters", "categorization_analyzer")
            if k in c}
    if "categorization_field_name" in c:
        out["per_partition_categorization"] = c.get("per_partition_categorization", {"enabled": False})
    out |= {"latency": c["latency"].string_rep()} if "latency" in c else {}
    out |= {k: c[k] for k in ("summary_count_field_name",) if k in c}
    out |= {"detectors": c["detectors"], "influencers": c.get("influencers", [])}
    out |= {k: c[k] for k in ("multivariate_by_fields",) if k in c}
    window = c.get("model_prune_window")
    return out | {"model_prune_window": window.string_rep() if window else _default_prune_window(c["bucket_span"])}


# ---------------------------------------------------------------------------------- the other objects
def _analysis_limits(raw: dict) -> dict:
    def memory(v: Any) -> int:
        if isinstance(v, (bool, type(None))):
            raise ConfigError(f"Unsupported token [{_token(v)}]")
        return _byte_size_mb(v, "model_memory_limit") if isinstance(v, str) else _long(v)

    def build(v: dict) -> None:  # the AnalysisLimits constructor
        if (mml := v.get("model_memory_limit")) is not None and mml < 1:
            raise ConfigError(f"model_memory_limit must be at least 1 MiB. Value = {_num(mml)}", type=STATUS)
        if (cel := v.get("categorization_examples_limit")) is not None and cel < 0:
            raise ConfigError(f"categorization_examples_limit cannot be less than 0. Value = {_num(cel)}", type=STATUS)
    fields = {"model_memory_limit": (VALUE, memory), "categorization_examples_limit": (NUM, _long)}
    return _parse_object("analysis_limits", raw, fields, ctor=tuple(fields), build=build)


def _data_description(raw: dict, check_time_format: Callable[[str], None]) -> dict:
    def time_format(fmt: str) -> str:
        if fmt not in ("epoch", "epoch_ms"):
            try:
                check_time_format(fmt)
            except ValueError as e:
                raise ConfigError(str(e) or f"Invalid Time format string '{fmt}'", type=STATUS) from None
        return fmt
    # 8.x knows only xcontent; the retired 'delimited' is still accepted and treated as xcontent
    d = _parse_object("data_description", raw, {
        "format": (STR, _enum("DataDescription.DataFormat", ("xcontent", "delimited"))), "time_field": (STR, str),
        "time_format": (STR, time_format)})
    return {"time_field": d.get("time_field", "time"), "time_format": d.get("time_format", "epoch_ms")}


def _model_plot_config(raw: dict) -> dict:
    fields = {"enabled": (BOOL, _bool), "terms": (STR, str), "annotations_enabled": (BOOL, _bool)}
    v = _parse_object("model_plot_config", raw, fields, ctor=tuple(fields), required=("enabled",))
    return {"enabled": v["enabled"], **{k: v[k] for k in ("terms",) if k in v},
            "annotations_enabled": v.get("annotations_enabled", v["enabled"])}


def _date(name: str) -> Callable[[Any], Any]:
    def convert(v: Any) -> Any:  # TimeUtils.parseTimeField: a number or a date string
        if isinstance(v, (bool, type(None))):
            raise ConfigError(f"unexpected token [{_token(v)}] for [{name}]")
        return v
    return convert


# ----------------------------------------------------------------------------------------------- the job
def validate_job_id(job_id: str) -> None:
    """MlStrings.isValidId, then the length limit, with Elasticsearch's messages."""
    if not _ID_RE.fullmatch(job_id):
        raise ConfigError(f"Invalid job_id; '{job_id}' {_ID_RULE}")
    if len(job_id) > MAX_ID_LENGTH:
        raise ConfigError(f"The job id cannot contain more than {MAX_ID_LENGTH} characters.")


def validate_groups(job_id: str, groups: list[str]) -> None:
    """Group ids follow the job id rule and differ from the job's own id."""
    for group in groups:
        if not _ID_RE.fullmatch(group):
            raise ConfigError(f"Invalid group id '{group}'; must be non-empty string and may contain lowercase "
                              f"alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with "
                              f"alphanumeric")
        if group == job_id:
            raise names_clash(group)


def names_clash(name: str) -> ConfigError:
    """A job id that is also a group name (ids and groups share one namespace when expanded)."""
    return ConfigError(f"job and group names must be unique but job [{name}] and group [{name}] have the same name",
                       type="resource_already_exists_exception")


def _not_less(value: int | None, minimum: int, field: str) -> None:
    if value is not None and value < minimum:
        raise ConfigError(f"{field} cannot be less than {_num(minimum)}. Value = {_num(value)}")


def check_persist_interval(interval: _TimeValue) -> None:
    if interval.nanos % 10**9:
        raise ConfigError(f"background_persist_interval has to be a multiple of 1s; actual was '{interval}'")
    _not_less(interval.seconds, 3600, "background_persist_interval")


def check_snapshot_retention(retention: int, daily: int | None) -> None:
    _not_less(retention, 0, "model_snapshot_retention_days")
    _not_less(daily, 0, "daily_model_snapshot_retention_after_days")
    if daily is not None and daily > retention:
        raise ConfigError(f"The value of daily_model_snapshot_retention_after_days [{_num(daily)}] cannot be greater "
                          f"than model_snapshot_retention_days [{_num(retention)}]")


def _validate_job(job_id: str, j: dict) -> None:
    """Job.Builder.validateInputFields, validateDetectorsAreUnique, invalidCreateTimeSettings, in order."""
    if "analysis_config" not in j:
        raise ConfigError("An analysis_config must be set")
    if "data_description" not in j:
        raise ConfigError("A data_description must be set")
    ac = j["analysis_config"]
    if j["data_description"]["time_field"] in analysis_fields({"analysis_config": ac}):
        raise ConfigError("data_description.time_field may not be used in the analysis_config")
    if (interval := j.get("background_persist_interval")) is not None:
        check_persist_interval(interval)
    _not_less(j.get("renormalization_window_days"), 0, "renormalization_window_days")
    _not_less(j.get("results_retention_days"), 0, "results_retention_days")
    validate_job_id(job_id)
    check_snapshot_retention(j.get("model_snapshot_retention_days", 10), j.get("daily_model_snapshot_retention_after_days"))
    validate_groups(job_id, j.get("groups", []))
    if (index := j.get("results_index_name")) and not _ID_RE.fullmatch(index):
        raise ConfigError(f"Invalid results_index_name; '{index}' {_ID_RULE}")
    seen: list[dict] = []
    for d in ac["detectors"]:
        if (canonical := {k: v for k, v in d.items() if k != "detector_index"}) in seen:
            raise ConfigError(f"Duplicate detectors are not allowed: [{d['detector_description']}]")
        seen.append(canonical)
    if illegal := [k for k in ("model_snapshot_id", "finished_time", "create_time") if j.get(k) is not None]:
        raise ConfigError(f"The job is configured with fields [{','.join(illegal)}] that are illegal to set at job "
                          "creation")


def check_supported(config: dict) -> None:
    """Refuse, with a clear 400, what Elasticsearch accepts but anomalyd does not analyse yet
    (run on a valid config): a job must never be silently counted without its detectors."""
    for d in config["analysis_config"]["detectors"]:
        fn = d.get("function") or "metric"
        fn = SHORTCUTS.get(fn, fn)
        if fn not in SUPPORTED_FUNCTIONS:
            raise ConfigError(f"Function [{fn}] is not supported by anomalyd yet; supported functions: "
                              f"[{', '.join(SUPPORTED_FUNCTIONS)}]")
        if d.get("over_field_name"):
            raise ConfigError("over_field_name (population analysis) is not supported by anomalyd yet")
        if ML_CATEGORY in (d.get("by_field_name"), d.get("partition_field_name")):
            raise ConfigError("categorization (mlcategory) is not supported by anomalyd yet")
        if d.get("custom_rules"):
            raise ConfigError("custom_rules are not supported by anomalyd yet")


def build_job_config(job_id: str, body: dict, *, now_ms: int, job_version: str,
                     check_time_format: Callable[[str], None]) -> dict:
    """Validate a PUT _ml/anomaly_detectors/<job_id> body and return the full config as Elasticsearch returns it
    (defaults filled in, keys in Elasticsearch's order).

    ``check_time_format(fmt)`` must raise ValueError("Invalid Time format string '<fmt>'") for a bad
    data_description.time_format; it is not called for "epoch" and "epoch_ms". Raises ConfigError."""
    if not isinstance(body, dict):
        raise ConfigError(f"Expected START_OBJECT but was: {_token(body)}", type=X)
    text, days, as_is = (STR, str), (NUM, _long), (lambda v: v)
    j = _parse_object("job_details", body, {
        "job_id": text, "job_type": text, "job_version": text, "groups": (STR_ARRAY, _strings),
        "description": (STR_OR_NULL, as_is), "create_time": (VALUE, _date("create_time")),
        "finished_time": (VALUE, _date("finished_time")), "analysis_config": (OBJ, _analysis_config),
        "analysis_limits": (OBJ, _analysis_limits),
        "data_description": (OBJ, lambda v: _data_description(v, check_time_format)),
        "model_plot_config": (OBJ, _model_plot_config), "renormalization_window_days": days,
        "background_persist_interval": (STR, lambda v: _time_value(v, "background_persist_interval")),
        "results_retention_days": days, "model_snapshot_retention_days": days,
        "daily_model_snapshot_retention_after_days": days, "custom_settings": (OBJ, as_is),
        "model_snapshot_id": (STR_OR_NULL, as_is), "model_snapshot_min_version": (STR_OR_NULL, as_is),
        "results_index_name": text, "deleting": (BOOL, _bool), "allow_lazy_open": (BOOL, _bool),
        "blocked": (OBJ, as_is), "datafeed_config": (OBJ, as_is)})
    if j.get("job_id", job_id) != job_id:
        raise ConfigError(f"Inconsistent job_id; '{j['job_id']}' specified in the body differs from '{job_id}' "
                          "specified as a URL argument")
    if "datafeed_config" in j:
        raise ConfigError("datafeeds are not supported by anomalyd: remove [datafeed_config] and send data with the "
                          "post data API (POST _ml/anomaly_detectors/<job_id>/_data)")
    _validate_job(job_id, j)
    # job_type, job_version, deleting, blocked and model_snapshot_min_version from the body are not kept
    limits, retention = j.get("analysis_limits", {}), j.get("model_snapshot_retention_days", 10)
    daily = j.get("daily_model_snapshot_retention_after_days", 1 if retention > 1 else None)
    index = j.get("results_index_name") or "shared"
    config: dict[str, Any] = {"job_id": job_id, "job_type": "anomaly_detector", "job_version": job_version,
                              "create_time": now_ms}
    config |= {k: j[k] for k in ("custom_settings", "groups", "description") if j.get(k) not in (None, [])}
    config |= {"analysis_config": _analysis_config_out(j["analysis_config"]),
               "analysis_limits": {"model_memory_limit": f"{limits.get('model_memory_limit', 1024)}mb",
                                   "categorization_examples_limit": limits.get("categorization_examples_limit", 4)},
               "data_description": j["data_description"]}
    config |= {k: j[k] for k in ("model_plot_config", "renormalization_window_days") if k in j}
    if "background_persist_interval" in j:
        config["background_persist_interval"] = j["background_persist_interval"].string_rep()
    config["model_snapshot_retention_days"] = retention
    config |= {k: v for k, v in (("daily_model_snapshot_retention_after_days", daily),
                                 ("results_retention_days", j.get("results_retention_days"))) if v is not None}
    config["results_index_name"] = index if index == "shared" or index.startswith("custom-") else f"custom-{index}"
    config["allow_lazy_open"] = j.get("allow_lazy_open", False)
    return config


def analysis_fields(config: dict) -> list[str]:
    """The distinct input fields the analysis uses, in order of first appearance: each detector's field_name
    and by/over/partition fields, then influencers, categorization_field_name and summary_count_field_name
    (the time field may be none of them; the engine's own list is `rust/config.rs`)."""
    ac = config["analysis_config"]
    names = [d.get(k) for d in ac["detectors"]
             for k in ("field_name", "by_field_name", "over_field_name", "partition_field_name")]
    names += [*ac.get("influencers", []), ac.get("categorization_field_name"), ac.get("summary_count_field_name")]
    return list(dict.fromkeys(n for n in names if n not in (None, "")))
