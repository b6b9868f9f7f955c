"""Elasticsearch's own REST tests (`tests/conformance/`, from elastic/elasticsearch-clients-tests)
run unchanged against `anomalyd serve` through the official Python client, by a small runner of
the YAML test format (`wire-compat.md` §7.6–7.9): `setup` / test / `teardown` per test, state reset
in between with `POST _features/_reset`, `do` mapped onto the client's API methods, and the
`match` / `is_true` / `is_false` / `gt(e)` / `lt(e)` / `length` assertions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import ApiError, Elasticsearch

from conftest import Server, es8_path

HERE = Path(__file__).resolve().parent / "conformance"
#: `catch:` names and the statuses they stand for (`request`: any other error status).
CATCH = {"bad_request": 400, "unauthorized": 401, "forbidden": 403, "missing": 404, "request_timeout": 408,
         "conflict": 409, "unavailable": 503}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without the timestamp resolver: dates stay strings, as in the runners."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(name: str) -> tuple[list[dict], list[dict], dict[str, list[dict]]]:
    """(setup, teardown, tests) of one file."""
    docs = [d for d in yaml.load_all((HERE / name).read_text(), Loader=_Loader) if d]
    setup: list[dict] = []
    teardown: list[dict] = []
    tests: dict[str, list[dict]] = {}
    for doc in docs:
        for key, steps in doc.items():
            if key == "requires":
                continue
            if key == "setup":
                setup = steps
            elif key == "teardown":
                teardown = steps
            else:
                tests[key] = steps
    return setup, teardown, tests


def lookup(value: Any, path: str) -> Any:
    """`jobs.0.state`, `_source.input_bytes`, `node.attributes.ml\\.machine_memory`."""
    if path in ("", "$body"):
        return value
    for part in (p.replace("\0", ".") for p in path.replace("\\.", "\0").split(".")):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def is_regex(expected: Any) -> bool:
    return isinstance(expected, str) and len(expected) > 1 and expected.startswith("/") and expected.endswith("/")


def java_str(value: Any) -> str:
    """How the Java runner sees a value as text (`is_true`, `is_false`, regex matches)."""
    return "true" if value is True else "false" if value is False else str(value)


def same(actual: Any, expected: Any) -> bool:
    """`match` equality: numbers compare by value, booleans only with booleans, containers deep."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(actual) == float(expected)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    return type(actual) is type(expected) and actual == expected


def matches(actual: Any, expected: Any) -> bool:
    if is_regex(expected):  # compiled with COMMENTS, as the Java runner's `match` does
        return actual is not None and re.search(expected[1:-1], java_str(actual), re.X) is not None
    return same(actual, expected)


#: `skip: features` this runner supports (wire-compat.md §7.9).
FEATURES = {"headers", "warnings", "allowed_warnings", "contains", "gtelte"}


class Runner:
    def __init__(self, es: Elasticsearch) -> None:
        self.es = es
        self.last: Any = None

    def run(self, steps: list[dict]) -> None:
        for step in steps:
            ((kind, arg),) = step.items()
            if kind == "do":
                self.do(dict(arg))
            elif kind == "skip":
                features = arg.get("features", [])
                missing = set([features] if isinstance(features, str) else features) - FEATURES
                if missing:
                    pytest.skip(f"needs runner features {sorted(missing)}")
            else:
                self.check(kind, arg)

    def do(self, spec: dict) -> None:
        catch = spec.pop("catch", None)
        expected_warnings = spec.pop("warnings", [])
        spec.pop("allowed_warnings", None)
        headers = spec.pop("headers", None)
        ((api, params),) = spec.items()
        params = dict(params or {})
        client = self.es
        if "ignore" in params:
            client = client.options(ignore_status=params.pop("ignore"))
        if headers:
            client = client.options(headers=headers)
        body = params.get("body")
        if isinstance(body, str):
            try:
                params["body"] = json.loads(body)
            except ValueError:
                pass  # NDJSON text goes as it is
        if "from" in params:
            params["from_"] = params.pop("from")
        target: Any = client
        for part in api.split("."):
            target = getattr(target, part)
        try:
            with warnings.catch_warnings(record=True) as received:
                warnings.simplefilter("always")
                response = target(**params)
        except ApiError as e:
            assert catch is not None, f"{api} failed: {e.meta.status} {e.body}"
            status = CATCH.get(catch)
            if status is not None:
                assert e.meta.status == status, f"{api}: {e.meta.status} instead of {status}: {e.body}"
            elif is_regex(catch):  # no COMMENTS flag here, as in the Java runner
                assert re.search(catch[1:-1], json.dumps(e.body)), f"{api}: {e.body} does not match {catch}"
            else:
                assert catch == "request" and e.meta.status >= 400
            self.last = e.body
            return
        assert catch is None, f"{api} succeeded, expected {catch}: {response.body}"
        got = {str(w.message) for w in received}
        assert set(expected_warnings) <= got, f"{api}: warnings {sorted(got)}, expected {expected_warnings}"
        self.last = response.body

    def check(self, kind: str, arg: Any) -> None:
        if kind in ("is_true", "is_false"):
            value = lookup(self.last, arg)
            truthy = value is not None and java_str(value) not in ("", "false", "0")
            assert truthy == (kind == "is_true"), f"{kind} {arg}: {value!r}"
            return
        ((path, expected),) = arg.items()
        value = lookup(self.last, path)
        if kind == "match":
            assert matches(value, expected), f"match {path}: {value!r} != {expected!r}"
        elif kind == "length":
            assert value is not None and len(value) == expected, f"length {path}: {value!r}"
        else:
            compare = {"gt": value > expected, "gte": value >= expected, "lt": value < expected,
                       "lte": value <= expected}[kind]
            assert compare, f"{kind} {path}: {value!r} vs {expected!r}"


CASES = [(name, test) for name in ("post_data.yml", "jobs_crud.yml") for test in load(name)[2]]


def run_case(url: str, name: str, test: str) -> None:
    setup, teardown, tests = load(name)
    es = Elasticsearch(url, request_timeout=30)
    es.perform_request("POST", "/_features/_reset", headers={"accept": "application/json"})
    runner = Runner(es)
    runner.run(setup)
    try:
        runner.run(tests[test])
    finally:
        runner.run(teardown)


@pytest.mark.parametrize("name,test", CASES, ids=[f"{n}::{t}" for n, t in CASES])
def test_elasticsearch_rest_test(server: Server, name: str, test: str) -> None:
    run_case(server.url, name, test)


def test_elasticsearch_rest_tests_with_client_8x(server: Server) -> None:
    """The same files driven by the previous major of the client (in a subprocess)."""
    env = {**os.environ, "PYTHONPATH": str(es8_path())}
    r = subprocess.run([sys.executable, __file__, server.url], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["8.19.3", str(len(CASES))]


if __name__ == "__main__":  # python test_conformance.py URL: every case, with whichever client imports
    import elasticsearch

    for case in CASES:
        run_case(sys.argv[1], *case)
    print(elasticsearch.__versionstr__, len(CASES))
