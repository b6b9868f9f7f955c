"""`_security/api_key` (create, invalidate) and `_security/_authenticate`.

Authorization has already happened in the route envelope; these handlers only do the work.
With security off they answer as Elasticsearch does when security is disabled.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..auth import AUTHENTICATOR, PRINCIPAL, Principal
from ..clock import now_ms
from ..errors import EsError, bad_request, json_response
from ..jobconfig import request_time_value
from ..privileges import unknown_privilege_message, unknown_privileges
from ..security import encoded_key
from .params import json_body, reject_unknown_query
from .routes import Routes

CREATE_FIELDS = frozenset({"name", "expiration", "role_descriptors", "metadata"})
INVALIDATE_FIELDS = frozenset({"id", "ids", "name", "owner", "username", "realm_name"})


def _principal(request: web.Request) -> Principal:
    if AUTHENTICATOR not in request.app:
        raise EsError(500, "exception", "Security must be explicitly enabled when using anomalyd. "
                                        "Enable security by starting the server with [--security].")
    return request[PRINCIPAL]


def parse_role_descriptors(raw: Any) -> dict[str, list[str]]:
    """`{"role": {"cluster": [...]}}`; anomalyd has only cluster privileges, so nothing else is allowed."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise EsError(400, "x_content_parse_exception", "[role_descriptors] must be an object")
    out: dict[str, list[str]] = {}
    for name, descriptor in raw.items():
        if not isinstance(descriptor, dict):
            raise EsError(400, "x_content_parse_exception", f"failed to parse role [{name}]: expected an object")
        for field_name, value in descriptor.items():
            if field_name != "cluster" and value:  # empty index/application lists are harmless
                raise bad_request(f"role descriptor [{name}]: anomalyd supports only cluster privileges, not [{field_name}]")
        cluster = descriptor.get("cluster") or []
        if not isinstance(cluster, list) or not all(isinstance(p, str) for p in cluster):
            raise EsError(400, "x_content_parse_exception", f"failed to parse role [{name}]: [cluster] must be a list of strings")
        unknown = unknown_privileges(cluster)
        if unknown:
            raise EsError(400, "action_request_validation_exception",
                          f"Validation Failed: 1: {unknown_privilege_message(unknown[0])};")
        out[name] = cluster
    return out


async def create_api_key(request: web.Request) -> web.Response:
    principal = _principal(request)
    reject_unknown_query(request, frozenset({"refresh"}))
    body = await json_body(request, required=True) or {}
    for k in body:
        if k not in CREATE_FIELDS:
            raise EsError(400, "x_content_parse_exception", f"[api_key_request] unknown field [{k}]")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: api key name is required;")
    if principal.api_key is not None:
        # A key derived from a key would need chained limits; anomalyd keeps keys one level deep.
        raise bad_request("an API key cannot create API keys in anomalyd; authenticate as a user")
    expiration = None
    if body.get("expiration") is not None:  # Elasticsearch's time value, with its messages
        seconds, _ = request_time_value(body["expiration"], "expiration", "api_key_request")
        # Elasticsearch adds the value's whole seconds (TimeValue.getSeconds): `-1` and anything
        # under a second expire at once.
        expiration = now_ms() + int(seconds or 0) * 1000
    descriptors = parse_role_descriptors(body.get("role_descriptors"))
    store = request.app[AUTHENTICATOR].store
    key, secret = await asyncio.to_thread(store.create_api_key, name, principal.username,
                                          sorted(principal.privileges), descriptors, expiration)
    out: dict[str, Any] = {"id": key.id, "name": key.name}
    if expiration is not None:
        out["expiration"] = expiration
    out |= {"api_key": secret, "encoded": encoded_key(key.id, secret)}
    return json_response(out)


async def invalidate_api_key(request: web.Request) -> web.Response:
    principal = _principal(request)
    reject_unknown_query(request, frozenset())
    body = await json_body(request, required=True) or {}
    for k in body:
        if k not in INVALIDATE_FIELDS:
            raise EsError(400, "x_content_parse_exception", f"[invalidate_api_key_request] unknown field [{k}]")
    ids = list(body.get("ids") or []) + ([body["id"]] if body.get("id") else [])
    name, username, owner = body.get("name"), body.get("username"), bool(body.get("owner"))
    if owner:
        username = principal.username
    if not (ids or name or username):
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: One of [api key id, api key name, "
                      "username, realm name] must be specified if [owner] flag is false;")
    authenticator = request.app[AUTHENTICATOR]
    matches = [
        k for k in authenticator.refresh().api_keys.values()
        if (not ids or k.id in ids) and (not name or k.name == name) and (not username or k.owner == username)
    ]
    fresh = sorted(k.id for k in matches if not k.invalidated)
    await asyncio.to_thread(authenticator.store.invalidate_api_keys, fresh)
    return json_response({
        "invalidated_api_keys": fresh,
        "previously_invalidated_api_keys": sorted(k.id for k in matches if k.invalidated),
        "error_count": 0,
    })


async def authenticate(request: web.Request) -> web.Response:
    principal = _principal(request)
    key = principal.api_key
    realm = {"name": "_es_api_key", "type": "_es_api_key"} if key else {"name": "native", "type": "native"}
    out: dict[str, Any] = {
        "username": principal.username, "roles": principal.roles, "full_name": None, "email": None,
        "metadata": {}, "enabled": True, "authentication_realm": realm, "lookup_realm": realm,
        "authentication_type": "api_key" if key else "realm",
    }
    if key:
        out["api_key"] = {"id": key.id, "name": key.name}
    return json_response(out)


def setup(routes: Routes) -> None:
    routes.add_route("POST", "/_security/api_key", create_api_key)
    routes.add_route("PUT", "/_security/api_key", create_api_key)
    routes.add_route("DELETE", "/_security/api_key", invalidate_api_key)
    routes.add_route("GET", "/_security/_authenticate", authenticate, body=False)
