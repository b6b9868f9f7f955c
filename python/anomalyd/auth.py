"""Authentication (HTTP Basic, ApiKey) and authorization.

:func:`authorize` runs inside every route's envelope (`api/routes.py`), so its 401 and 403 leave
in Elasticsearch's form, and before the handler, so a request is authorized before anything else
is looked at, the job's existence included. It runs only when security is on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from multidict import CIMultiDict

from .errors import EsError
from .privileges import Action
from .clock import now_ms
from .security import ApiKey, SecurityStore, Snapshot, dummy_hash, verify_key, verify_password

log = structlog.get_logger("anomalyd.security")

#: Elasticsearch 8's challenges (without `Bearer`: anomalyd issues no tokens).
CHALLENGES = ('Basic realm="security", charset="UTF-8"', "ApiKey")


class AuthError(EsError):
    """Elasticsearch's `security_exception`; a 401 carries the challenges in body and headers."""

    def __init__(self, status: int, reason: str) -> None:
        headers: Any = None
        if status == 401:
            headers = CIMultiDict(("WWW-Authenticate", c) for c in CHALLENGES)
        super().__init__(status, "security_exception", reason, headers=headers)

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.status == 401:
            header = {"WWW-Authenticate": list(CHALLENGES)}
            out["error"]["root_cause"][0]["header"] = header
            out["error"]["header"] = header
        return out


@dataclass
class Principal:
    """Who made the request, and what they may do."""

    username: str
    roles: list[str]
    privileges: set[str]
    api_key: ApiKey | None = None
    #: For an API key with role descriptors: their union, applied within `privileges`.
    key_privileges: set[str] | None = field(default=None)

    def may(self, action: Action) -> bool:
        if not action.granted_by:
            return True
        granted = set(action.granted_by)
        if not self.privileges & granted:
            return False
        return self.key_privileges is None or bool(self.key_privileges & granted)

    def refusal(self, action: Action) -> AuthError:
        # The 8.x wording; API keys are named by id and owner, without roles, as Elasticsearch does.
        who = (f"API key id [{self.api_key.id}] of user [{self.username}]" if self.api_key
               else f"user [{self.username}] with effective roles [{','.join(self.roles)}]")
        return AuthError(403, f"action [{action.name}] is unauthorized for {who}, "
                              f"this action is granted by the cluster privileges [{','.join(action.granted_by)}]")


class Authenticator:
    """Checks credentials against a snapshot of the security store, reloaded when it changes.

    A password that passed scrypt is remembered as an HMAC under a per-process secret, so a
    client sending Basic auth on every request pays the slow hash once, not per request. The
    memory is dropped whenever the store changes (a deleted user or changed password is
    noticed on the next request).
    """

    def __init__(self, store: SecurityStore) -> None:
        self.store = store
        self.snapshot = Snapshot()
        self._secret = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}

    def refresh(self) -> Snapshot:
        if self.store.changed():
            self.snapshot = self.store.load()
            self._verified.clear()
        return self.snapshot

    def _tag(self, name: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{name}\0{password}".encode(), hashlib.sha256).digest()

    async def authenticate(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return await self._basic(request, value.strip())
        if scheme == "apikey":
            return self._api_key(request, value.strip())
        # Unknown schemes count as no credentials, as in Elasticsearch.
        raise AuthError(401, f"missing authentication credentials for REST request [{request.path_qs}]")

    async def _basic(self, request: web.Request, value: str) -> Principal:
        try:
            name, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name, sep, password = "", "", ""
        if not sep:
            _failed(request, "basic", None)
            raise AuthError(401, "invalid basic authentication header encoding")
        snapshot = self.refresh()
        user = snapshot.users.get(name)
        tag = self._tag(name, password)
        known = self._verified.get(name)
        if user is not None and known is not None and hmac.compare_digest(known, tag):
            return Principal(user.name, user.roles, snapshot.privileges(user.roles))
        # scrypt takes tens of milliseconds of CPU: off the event loop. An unknown user is checked
        # against a dummy hash so that a wrong name takes as long as a wrong password.
        ok = await asyncio.to_thread(verify_password, password, user.hash if user else dummy_hash())
        if user is None or not ok:
            _failed(request, "basic", name)
            raise AuthError(401, f"unable to authenticate user [{name}] for REST request [{request.path_qs}]")
        if self.snapshot is snapshot:  # not if the store changed meanwhile: the memory was just dropped
            self._verified[name] = tag
        return Principal(user.name, user.roles, snapshot.privileges(user.roles))

    def _api_key(self, request: web.Request, value: str) -> Principal:
        try:
            key_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            key_id, sep, secret = "", "", ""
        key = self.refresh().api_keys.get(key_id) if sep else None
        # The hash is checked even for an invalidated or expired key: failures all take as long.
        ok = verify_key(secret, key.hash if key else "sha256$$") if sep else False
        if key is None or not ok or key.invalidated or key.expired(now_ms()):
            _failed(request, "api_key", key_id or None)
            raise AuthError(401, "unable to authenticate with provided credentials and anonymous access "
                                 "is not allowed for this request")
        scoped = None
        if key.role_descriptors:
            scoped = {p for privileges in key.role_descriptors.values() for p in privileges}
        return Principal(key.owner, [], set(key.limited_by), api_key=key, key_privileges=scoped)


def _failed(request: web.Request, scheme: str, principal: str | None) -> None:
    # The user name or key id helps tell a typo from an attack; the secret is never logged.
    log.warning("authentication failed", remote=request.remote, scheme=scheme, principal=principal,
                path=request.path, method=request.method)


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
PRINCIPAL = web.RequestKey("principal", Principal)


def permit(request: web.Request, principal: Principal, action: Action) -> None:
    """Check that an authenticated request may perform `action` (its route's); 403 if not.
    Apart from authentication (401), as in Elasticsearch: its REST layer's checks (a body the
    API does not take) come between the two."""
    if not principal.may(action):
        log.info("access denied", remote=request.remote, user=principal.username, action=action.name)
        raise principal.refusal(action)
    request[PRINCIPAL] = principal
