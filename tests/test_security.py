"""Security: the endpoint × role matrix, 401/403 shapes, API keys, the official client, HTTPS."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import structlog
from conftest import ANOMALYD, POST_DATA_JOB, Server
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch

from anomalyd import security
from anomalyd.api.routes import MISS_PATH
from anomalyd.app import create_app
from anomalyd.cli import is_loopback
from anomalyd.privileges import ACTIONS
from anomalyd.security import SecurityStore
from anomalyd.settings import Settings

PASSWORD = "s3cret-pw"
USERS = {"root": "superuser", "mladmin": "machine_learning_admin", "mluser": "machine_learning_user"}
JOB = "/_ml/anomaly_detectors/nojob"
BODY = (
    b'{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}\n'
    b'{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}'
)
CHALLENGES = ['Basic realm="security", charset="UTF-8"', "ApiKey"]

MANAGE, MONITOR, ANY, SECURITY, CLUSTER_MONITOR = "manage", "monitor", "any", "security", "cluster_monitor"
# Every endpoint, on a job that does not exist: authorization must come before that check.
ENDPOINTS = [
    ("GET", "/", None, ANY, "cluster:monitor/main"),
    ("GET", "/_cluster/health", None, ANY, ""),
    ("GET", "/healthz", None, ANY, ""),
    ("GET", "/readyz", None, ANY, ""),
    ("GET", "/metrics", None, MONITOR, ""),
    ("GET", "/_nodes/http", None, CLUSTER_MONITOR, "cluster:monitor/nodes/info"),
    ("GET", "/_ml/anomaly_detectors", None, MONITOR, "cluster:monitor/xpack/ml/job/get"),
    ("GET", JOB, None, MONITOR, "cluster:monitor/xpack/ml/job/get"),
    ("GET", "/_ml/anomaly_detectors/_stats", None, MONITOR, "cluster:monitor/xpack/ml/job/stats/get"),
    ("GET", JOB + "/_stats", None, MONITOR, "cluster:monitor/xpack/ml/job/stats/get"),
    ("PUT", JOB, {}, MANAGE, "cluster:admin/xpack/ml/job/put"),
    ("DELETE", JOB, None, MANAGE, "cluster:admin/xpack/ml/job/delete"),
    ("POST", JOB + "/_update", {}, MANAGE, "cluster:admin/xpack/ml/job/update"),
    ("GET", "/.ml-anomalies-j/_doc/j_data_counts", None, MONITOR, "indices:data/read/get"),
    ("POST", JOB + "/_open", None, MANAGE, "cluster:admin/xpack/ml/job/open"),
    ("POST", JOB + "/_close", None, MANAGE, "cluster:admin/xpack/ml/job/close"),
    ("POST", JOB + "/_flush", None, MANAGE, "cluster:admin/xpack/ml/job/flush"),
    ("POST", JOB + "/_data", BODY, MANAGE, "cluster:admin/xpack/ml/job/data/post"),
    ("POST", "/_features/_reset", None, MANAGE, "cluster:admin/features/reset"),
    ("POST", "/_security/api_key", {"name": "k"}, SECURITY, "cluster:admin/xpack/security/api_key/create"),
    ("DELETE", "/_security/api_key", {"ids": ["none"]}, SECURITY, "cluster:admin/xpack/security/api_key/invalidate"),
    ("GET", "/_security/_authenticate", None, ANY, ""),
]
ALLOWED = {
    "superuser": {ANY, MONITOR, MANAGE, SECURITY, CLUSTER_MONITOR},
    "machine_learning_admin": {ANY, MONITOR, MANAGE},
    "machine_learning_user": {ANY, MONITOR},
}
GRANTS = {MANAGE: "manage_ml,manage,all", MONITOR: "monitor_ml,manage_ml,monitor,manage,all", SECURITY: "all",
          CLUSTER_MONITOR: "monitor,manage,all"}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch) -> None:
    # The cost is stored with each hash, so test users stay cheap in subprocess servers too.
    monkeypatch.setattr(security, "SCRYPT_N", 1 << 10)


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def add_users(data_dir: Path) -> SecurityStore:
    store = SecurityStore(data_dir)
    for name, role in USERS.items():
        store.add_user(name, PASSWORD, [role])
    return store


@pytest.fixture
async def secure(aiohttp_client, settings: Settings):
    add_users(settings.data_dir)
    return await aiohttp_client(create_app(dataclasses.replace(settings, security=True)))


async def send(client, method: str, path: str, body, headers: dict[str, str] | None = None):
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    r = await client.request(method, path, data=body, headers=headers)
    return r.status, r.headers, (await r.read())


@pytest.mark.parametrize("user", [None, *USERS])
async def test_matrix(aiohttp_client, tmp_path: Path, secure, user: str | None) -> None:
    plain = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "plain", commit_interval=0.0)))
    for method, path, body, needs, action in ENDPOINTS:
        status, headers, raw = await send(secure, method, path, body, basic(user) if user else None)
        where = f"{user} {method} {path}"
        if user is None:
            assert status == 401, where
            assert headers.getall("WWW-Authenticate") == CHALLENGES
            assert json.loads(raw)["error"]["reason"] == f"missing authentication credentials for REST request [{path}]"
            continue
        role = USERS[user]
        if needs not in ALLOWED[role]:
            assert status == 403, where
            reason = (f"action [{action}] is unauthorized for user [{user}] with effective roles [{role}], "
                      f"this action is granted by the cluster privileges [{GRANTS[needs]}]")
            assert json.loads(raw) == {"error": {"root_cause": [{"type": "security_exception", "reason": reason}],
                                                 "type": "security_exception", "reason": reason}, "status": 403}
            continue
        if path.startswith("/_security"):
            assert status == 200, where
            continue
        # Past authorization, the endpoint answers exactly as it does with security off.
        ref_status, _, ref_raw = await send(plain, method, path, body)
        assert status == ref_status, where
        if path.startswith("/_ml") or path.startswith("/_features"):
            assert raw == ref_raw, where


def test_every_route_has_an_action(settings: Settings) -> None:
    app = create_app(settings)
    # (a route's trailing-slash twin is its own endpoint, with its action)
    routes = {(r.method, r.resource.canonical.rstrip("/") or "/") for r in app.router.routes() if r.method != "HEAD"}
    assert routes - set(ACTIONS) == {("*", MISS_PATH)}  # the catch-all: "no route" (404/405)


async def test_requests_no_route_takes_need_any_user_then_get_400_or_405(secure) -> None:
    # The catch-all route is authorized like any other: credentials first, then the answer.
    r = await secure.get("/_nothing_here")
    assert r.status == 401
    r = await secure.get("/_nothing_here", headers=basic("mluser"))
    assert r.status == 400
    assert await r.json() == {"error": "no handler found for uri [/_nothing_here] and method [GET]", "status": 400}
    # A known path with another method: 405, not 403, even for a user who may not post data.
    r = await secure.get(JOB + "/_data", headers=basic("mluser"))
    assert r.status == 405 and r.headers["Allow"] == "POST"
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"


async def test_a_body_where_none_is_taken_is_400_after_credentials_before_privileges(secure) -> None:
    """Elasticsearch's order: credentials (401), its REST layer's refusal of a body the API does
    not take (400), then the action's privileges (403)."""
    body = {"Content-Type": "application/json"}
    r = await secure.delete(JOB, data=b"{}", headers=body)
    assert r.status == 401
    r = await secure.delete(JOB, data=b"{}", headers={**body, **basic("mluser")})  # may not delete jobs
    assert r.status == 400 and (await r.json())["error"]["reason"] == f"request [DELETE {JOB}] does not support having a body"
    r = await secure.delete(JOB, headers=basic("mluser"))
    assert r.status == 403


@pytest.mark.settings(max_content_length=100)
async def test_an_oversized_body_is_413_before_credentials(secure) -> None:
    """The HTTP layer's size limit comes before authentication, as in Elasticsearch."""
    r = await secure.put(JOB, data=b"x" * 200, headers={"Content-Type": "application/json"})
    assert (r.status, await r.read()) == (413, b"")


async def test_401_shape_and_failed_attempts_logged(secure) -> None:
    r = await secure.get("/_ml/anomaly_detectors?pretty")
    reason = "missing authentication credentials for REST request [/_ml/anomaly_detectors?pretty]"
    header = {"WWW-Authenticate": CHALLENGES}
    assert await r.json() == {
        "error": {"root_cause": [{"type": "security_exception", "reason": reason, "header": header}],
                  "type": "security_exception", "reason": reason, "header": header},
        "status": 401,
    }
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    with structlog.testing.capture_logs() as logs:
        r = await secure.get("/", headers=basic("mluser", "wrong-password"))
        assert r.status == 401
        assert (await r.json())["error"]["reason"] == "unable to authenticate user [mluser] for REST request [/]"
        r = await secure.get("/", headers=basic("ghost"))
        assert r.status == 401
        r = await secure.get("/", headers={"Authorization": "ApiKey " + base64.b64encode(b"id:nope").decode()})
        assert r.status == 401
        assert r.headers.getall("WWW-Authenticate") == CHALLENGES
    failures = [e for e in logs if e["event"] == "authentication failed"]
    assert [e["principal"] for e in failures] == ["mluser", "ghost", "id"]
    assert all(e["remote"] == "127.0.0.1" for e in failures)
    assert "wrong-password" not in repr(logs) and "nope" not in repr(logs)
    r = await secure.get("/", headers={"Authorization": "Basic !!!"})
    assert r.status == 401


async def test_api_keys(secure) -> None:
    root = basic("root")
    r = await secure.post("/_security/api_key", headers=root,
                          json={"name": "stats-only", "role_descriptors": {"r": {"cluster": ["monitor_ml"]}}})
    assert r.status == 200
    created = await r.json()
    assert list(created) == ["id", "name", "api_key", "encoded"] and len(created["id"]) == 20
    assert base64.b64decode(created["encoded"]).decode() == f"{created['id']}:{created['api_key']}"
    key = {"Authorization": "ApiKey " + created["encoded"]}
    assert (await secure.get("/_ml/anomaly_detectors/_stats", headers=key)).status == 200
    me = await (await secure.get("/_security/_authenticate", headers=key)).json()
    assert (me["username"], me["authentication_type"], me["api_key"]["name"]) == ("root", "api_key", "stats-only")
    r = await secure.put(JOB, headers=key, json=POST_DATA_JOB)
    assert r.status == 403
    assert (await r.json())["error"]["reason"] == (
        f"action [cluster:admin/xpack/ml/job/put] is unauthorized for API key id [{created['id']}] of user [root], "
        "this action is granted by the cluster privileges [manage_ml,manage,all]")
    # A key never exceeds its owner: an ML admin's privileges stay the limit whatever the descriptors say.
    r = await secure.delete("/_security/api_key", headers=root, json={"ids": [created["id"]]})
    assert await r.json() == {"invalidated_api_keys": [created["id"]], "previously_invalidated_api_keys": [], "error_count": 0}
    assert (await secure.get("/", headers=key)).status == 401
    r = await secure.delete("/_security/api_key", headers=root, json={"name": "stats-only"})
    assert (await r.json())["previously_invalidated_api_keys"] == [created["id"]]

    expiring = await (await secure.post("/_security/api_key", headers=root, json={"name": "brief", "expiration": "50ms"})).json()
    assert "expiration" in expiring
    time.sleep(0.1)
    assert (await secure.get("/", headers={"Authorization": "ApiKey " + expiring["encoded"]})).status == 401

    r = await secure.post("/_security/api_key", headers=root,
                          json={"name": "x", "role_descriptors": {"r": {"cluster": ["monitor_ml"], "indices": [{"names": ["*"]}]}}})
    assert r.status == 400
    r = await secure.post("/_security/api_key", headers=root, json={"name": "x", "role_descriptors": {"r": {"cluster": ["read"]}}})
    assert r.status == 400 and "unknown cluster privilege [read]" in (await r.json())["error"]["reason"]


async def test_custom_role_and_live_changes(secure, settings: Settings) -> None:
    store = SecurityStore(settings.data_dir)
    store.put_role("ops", ["monitor"])
    store.add_user("olga", PASSWORD, ["ops"])
    assert (await secure.get("/_ml/anomaly_detectors", headers=basic("olga"))).status == 200
    r = await secure.post(JOB + "/_open", headers=basic("olga"))
    assert r.status == 403 and "with effective roles [ops]" in (await r.json())["error"]["reason"]
    store.delete_user("olga")  # noticed on the next request, even though her password was cached
    assert (await secure.get("/", headers=basic("olga"))).status == 401


async def test_security_endpoints_when_security_is_off(client) -> None:
    r = await client.get("/_security/_authenticate")
    assert r.status == 500 and "Security must be explicitly enabled" in (await r.json())["error"]["reason"]


async def test_counts_match_with_security_off(aiohttp_client, tmp_path: Path, secure) -> None:
    plain = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "plain", commit_interval=0.0)))
    j = "/_ml/anomaly_detectors/post-data-job"
    results = []
    for c, headers in ((plain, {}), (secure, basic("mladmin"))):
        assert (await c.put(j, json=POST_DATA_JOB, headers=headers)).status == 200
        assert (await c.post(j + "/_open", headers=headers)).status == 200
        r = await c.post(j + "/_data", data=BODY, headers={**headers, "Content-Type": "application/x-ndjson"})
        assert r.status == 202
        counts = await r.json()
        results.append({k: v for k, v in counts.items() if not k.endswith("_time") and "timestamp" not in k})
    assert results[0] == results[1]
    assert results[0]["processed_record_count"] == 2


def test_insecure_public_bind_is_refused(tmp_path: Path) -> None:
    r = subprocess.run([str(ANOMALYD), "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "refusing to serve [0.0.0.0] without security" in r.stderr and "--allow-insecure" in r.stderr
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.1.2.3")


def test_bad_flag_values_are_usage_errors(tmp_path: Path) -> None:
    """A size or duration flag (or its variable) that does not parse is click's usage error,
    naming the flag, not a traceback."""
    for args, env, flag in ((["--read-timeout", "1min"], {}, "--read-timeout"),
                            (["--max-content-length", "100MiB"], {}, "--max-content-length"),
                            ([], {"ANOMALYD_SNAPSHOT_INTERVAL": "abc"}, "--snapshot-interval")):
        r = subprocess.run([str(ANOMALYD), "serve", "--data-dir", str(tmp_path), *args], capture_output=True,
                           text=True, timeout=30, env={**os.environ, **env})
        assert r.returncode == 2 and f"Invalid value for '{flag}'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _es_job_flow(es: Elasticsearch) -> dict:
    es.ml.put_job(job_id="post-data-job", **{k: v for k, v in POST_DATA_JOB.items() if k != "job_id"})
    es.ml.open_job(job_id="post-data-job")
    docs = [json.loads(line) for line in BODY.splitlines()]
    counts = es.ml.post_data(job_id="post-data-job", data=docs)
    es.ml.close_job(job_id="post-data-job")
    return dict(counts)


@pytest.fixture
def secure_server(tmp_path: Path):
    add_users(tmp_path / "data")
    srv = Server(tmp_path / "data", "--security").start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.stop()


def test_official_client_basic_auth_and_api_key(secure_server: Server) -> None:
    url = secure_server.url
    with Elasticsearch(url, basic_auth=("mladmin", PASSWORD)) as es:
        assert es.info()["tagline"] == "You Know, for Search"
        assert _es_job_flow(es)["processed_record_count"] == 2
    with Elasticsearch(url, basic_auth=("mluser", PASSWORD)) as es:
        assert es.ml.get_job_stats(job_id="post-data-job")["count"] == 1
        with pytest.raises(AuthorizationException):
            es.ml.open_job(job_id="post-data-job")
    with Elasticsearch(url, basic_auth=("root", PASSWORD)) as es:
        key = es.security.create_api_key(name="client", role_descriptors={"ml": {"cluster": ["monitor_ml"]}})
    with Elasticsearch(url, api_key=key["encoded"]) as es:
        assert es.ml.get_jobs()["count"] == 1
        with pytest.raises(AuthorizationException):
            es.ml.delete_job(job_id="post-data-job")
    with Elasticsearch(url, api_key=(key["id"], key["api_key"])) as es:
        assert es.security.authenticate()["authentication_type"] == "api_key"
    with Elasticsearch(url) as es, pytest.raises(AuthenticationException):
        es.info()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    add_users(tmp_path / "data")
    srv = Server(tmp_path / "data", "--security", "--tls-cert", str(cert), "--tls-key", str(key)).start()
    try:
        url = f"https://127.0.0.1:{srv.port}"
        with Elasticsearch(url, ca_certs=str(cert), basic_auth=("mladmin", PASSWORD)) as es:
            assert es.info()["cluster_name"] == "anomalyd"
            assert _es_job_flow(es)["processed_record_count"] == 2
    finally:
        srv.stop()


def test_the_security_store_is_private(tmp_path: Path) -> None:
    """Password and API-key hashes are readable by the server's user only, also when the file
    was created before with looser permissions."""
    import stat

    from anomalyd.security import FILENAME, SecurityStore

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / FILENAME).touch(mode=0o644)
    for d in (tmp_path / "new", tmp_path / "old"):
        store = SecurityStore(d)
        store.add_user("u", "password123", ["superuser"])
        store.close()
        for f in d.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    if os.getuid() == 0:  # someone else's file is left as its owner set it, not a failure to start
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        (foreign / FILENAME).touch(mode=0o644)
        os.chown(foreign / FILENAME, 65534, 65534)
        SecurityStore(foreign).close()
        assert stat.S_IMODE((foreign / FILENAME).stat().st_mode) == 0o644


async def test_api_key_expiration_is_an_elasticsearch_time_value(secure) -> None:
    root = basic("root")
    r = await secure.post("/_security/api_key", headers=root, json={"name": "k", "expiration": "1d"})
    body = await r.json()
    assert r.status == 200 and body["expiration"] - int(time.time() * 1000) in range(86_300_000, 86_400_001)
    for at_once in ("-1", "999ms"):  # whole seconds, as Elasticsearch adds them: none
        r = await secure.post("/_security/api_key", headers=root, json={"name": "k", "expiration": at_once})
        assert (await r.json())["expiration"] - int(time.time() * 1000) <= 0
    r = await secure.post("/_security/api_key", headers=root, json={"name": "k", "expiration": "1 day"})
    error = (await r.json())["error"]
    assert r.status == 400 and error["type"] == "x_content_parse_exception"
    assert error["reason"] == "[api_key_request] failed to parse field [expiration]"


def test_cli_api_key_lifetimes(tmp_path: Path) -> None:
    """`anomalyd api-keys create --expiration`: a lifetime of 0 expires at once (never "never"),
    and a bad one is a usage error, not a traceback."""
    from click.testing import CliRunner

    from anomalyd.cli import main

    runner = CliRunner()
    args = ["api-keys", "create", "k", "--role", "machine_learning_user", "--data-dir", str(tmp_path)]
    out = runner.invoke(main, [*args, "--expiration", "0s"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["expiration"] <= int(time.time() * 1000)
    assert "expiration" not in json.loads(runner.invoke(main, args).output)  # not given: never expires
    bad = runner.invoke(main, [*args, "--expiration", "1x"])
    assert bad.exit_code == 2 and "'1x' is not a duration" in bad.output


def test_cli_changes_a_password_and_roles_in_place(tmp_path: Path) -> None:
    """`users passwd` and `users roles -a/-r` (as `elasticsearch-users`): the stored user changes,
    the other fields stay, unknown users and roles are clean errors."""
    from click.testing import CliRunner

    from anomalyd.cli import main

    runner = CliRunner()
    dd = ["--data-dir", str(tmp_path)]
    assert runner.invoke(main, ["users", "add", "ann", "--role", "machine_learning_user", "--password-stdin", *dd],
                         input="first-pw\n").exit_code == 0
    store = SecurityStore(tmp_path)
    old_hash = store.load().users["ann"].hash
    out = runner.invoke(main, ["users", "passwd", "ann", "--password-stdin", *dd], input="second-pw\n")
    assert out.exit_code == 0, out.output
    user = store.load().users["ann"]
    assert user.hash != old_hash and security.verify_password("second-pw", user.hash)
    assert user.roles == ["machine_learning_user"]
    out = runner.invoke(main, ["users", "roles", "ann", "-a", "machine_learning_admin", "-r", "machine_learning_user", *dd])
    assert out.exit_code == 0 and out.output == "ann\tmachine_learning_admin\n", out.output
    assert store.load().users["ann"].roles == ["machine_learning_admin"]
    out = runner.invoke(main, ["users", "roles", "ann", "-a", "superuser", "-r", "superuser", *dd])
    assert out.output == "ann\tmachine_learning_admin\n"  # given and taken: taken
    store.load()
    assert runner.invoke(main, ["users", "roles", "ann", *dd]).output == "ann\tmachine_learning_admin\n"
    assert not store.changed(), "nothing changed, so nothing may be written"
    for args, message in ((["users", "passwd", "bob", "--password-stdin"], "user [bob] does not exist"),
                          (["users", "roles", "bob", "-a", "superuser"], "user [bob] does not exist"),
                          (["users", "roles", "ann", "-a", "nope"], "unknown role(s) [nope]")):
        out = runner.invoke(main, [*args, *dd], input="third-pw-x\n")
        assert out.exit_code == 1 and message in out.output, out.output
    out = runner.invoke(main, ["users", "passwd", "ann", "--password-stdin", *dd], input="short\n")
    assert out.exit_code == 1 and "at least" in out.output
    store.close()


async def test_a_changed_password_and_roles_apply_to_the_running_server(secure, settings: Settings) -> None:
    """`users passwd` and `users roles` write the store another process reads: the server
    refuses the old password and takes the new one at the next request (its memory of
    verified passwords is dropped), and the new roles apply."""
    path = "/_ml/anomaly_detectors/_stats"
    assert (await secure.get(path, headers=basic("mluser"))).status == 200
    store = SecurityStore(settings.data_dir)
    store.set_password("mluser", "another-pw")
    assert (await secure.get(path, headers=basic("mluser"))).status == 401
    assert (await secure.get(path, headers=basic("mluser", "another-pw"))).status == 200
    assert (await secure.put("/_ml/anomaly_detectors/x", json={}, headers=basic("mluser", "another-pw"))).status == 403
    store.change_roles("mluser", ["machine_learning_admin"], [])
    assert (await secure.put("/_ml/anomaly_detectors/x", json={}, headers=basic("mluser", "another-pw"))).status == 400
    store.close()
