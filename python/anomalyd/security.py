"""Users, custom roles and API keys, stored in ``security.sqlite3`` under the data directory.

A file of its own, not tables in the job store: the `anomalyd users` commands write it while the
server runs, and the server notices (SQLite's ``data_version``) without sharing the job store's
connection or thread. Passwords are hashed with scrypt and a random salt, slow on purpose. API
keys are 128 random bits, so a salted SHA-256 is as strong as any slow hash against guessing
and keeps per-request verification cheap. Every secret comparison uses `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import now_ms
from .privileges import BUILTIN_ROLES, PRIVILEGES, unknown_privilege_message

FILENAME = "security.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name  TEXT PRIMARY KEY,
    hash  TEXT NOT NULL,
    roles TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    name       TEXT PRIMARY KEY,
    privileges TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    hash             TEXT NOT NULL,
    owner            TEXT NOT NULL,
    role_descriptors TEXT NOT NULL,
    limited_by       TEXT NOT NULL,
    creation         INTEGER NOT NULL,
    expiration       INTEGER,
    invalidated      INTEGER NOT NULL DEFAULT 0
);
"""

# scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and tens of milliseconds per hash. Slow enough to make
# offline guessing expensive, fast enough for the first Basic-auth request of a client (later ones
# hit the server's memory of verified passwords, see `auth.Authenticator`). The parameters are
# stored with each hash, so they can be raised without invalidating existing users.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_MAXMEM = 64 << 20
MIN_PASSWORD = 6  # Elasticsearch's minimum for native users
CLI_OWNER = "_anomalyd_cli"


class SecurityError(ValueError):
    """A refused change (unknown role, duplicate user...): message for the CLI or a 400."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check; the parameters come from the stored hash, so they can be raised later."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                            maxmem=_MAXMEM, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def hash_key(key: str) -> str:
    salt = secrets.token_bytes(16)
    return f"sha256${_b64(salt)}${_b64(hashlib.sha256(salt + key.encode()).digest())}"


def verify_key(key: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    actual = hashlib.sha256(base64.b64decode(salt) + key.encode()).digest()
    return scheme == "sha256" and hmac.compare_digest(actual, base64.b64decode(digest))


@dataclass
class User:
    name: str
    hash: str
    roles: list[str]


@dataclass
class ApiKey:
    id: str
    name: str
    hash: str
    owner: str
    #: Role name → cluster privileges; when present the key gets their union, within `limited_by`.
    role_descriptors: dict[str, list[str]]
    #: The owner's privileges when the key was created (Elasticsearch's limited-by roles).
    limited_by: list[str]
    creation: int
    expiration: int | None
    invalidated: bool

    def expired(self, now_ms: int) -> bool:
        return self.expiration is not None and now_ms >= self.expiration

    def info(self) -> dict[str, Any]:
        """The key as Elasticsearch's get/list API shows it (never the secret)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "creation": self.creation,
                               "invalidated": self.invalidated, "username": self.owner, "realm": "native"}
        if self.expiration is not None:
            out["expiration"] = self.expiration
        return out


@dataclass
class Snapshot:
    """Everything authentication needs, read in one go and swapped when the file changes."""

    users: dict[str, User] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)

    def privileges(self, role_names: list[str]) -> set[str]:
        """The union of the roles' privileges; unknown roles grant nothing, as in Elasticsearch."""
        out: set[str] = set()
        for name in role_names:
            out.update(BUILTIN_ROLES.get(name) or self.roles.get(name) or ())
        return out


class SecurityStore:
    """Synchronous access to ``security.sqlite3``, shared by the CLI and the server.

    The server keeps one reader connection to poll ``data_version`` (a memory read) and runs
    writes, which are rare, through short-lived connections off the event loop.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILENAME
        # Password and API-key hashes: readable by the server's user only. SQLite gives its WAL
        # and shared-memory files the database file's permissions. A file made before with
        # looser ones is tightened if it is ours (someone else's is left as its owner set it).
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            st = self.path.stat()
            if st.st_uid == os.getuid() and st.st_mode & 0o077:
                os.chmod(self.path, 0o600)
        self._reader: sqlite3.Connection | None = None
        self._version: int | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        return db

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        db = self._connect()
        try:
            return db.execute(sql, args).rowcount
        finally:
            db.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- reading ------------------------------------------------------------------------------

    def changed(self) -> bool:
        """True when another connection has committed since the last `load` (cheap, no disk read)."""
        if self._reader is None:
            return True
        version = self._reader.execute("PRAGMA data_version").fetchone()[0]
        return version != self._version

    def load(self) -> Snapshot:
        if self._reader is None:
            self._reader = self._connect()
        db = self._reader
        db.execute("BEGIN")
        try:
            self._version = db.execute("PRAGMA data_version").fetchone()[0]
            users = {r[0]: User(r[0], r[1], json.loads(r[2])) for r in db.execute("SELECT name, hash, roles FROM users")}
            roles = {r[0]: json.loads(r[1]) for r in db.execute("SELECT name, privileges FROM roles")}
            keys = {
                r[0]: ApiKey(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], r[7], bool(r[8]))
                for r in db.execute("SELECT id, name, hash, owner, role_descriptors, limited_by, creation,"
                                    " expiration, invalidated FROM api_keys")
            }
        finally:
            db.execute("COMMIT")
        return Snapshot(users, roles, keys)

    # -- users --------------------------------------------------------------------------------

    def _check_roles(self, roles: list[str]) -> None:
        known = set(BUILTIN_ROLES) | set(self.load().roles)
        missing = [r for r in roles if r not in known]
        if missing:
            raise SecurityError(f"unknown role(s) [{','.join(missing)}]; known: [{','.join(sorted(known))}]")

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise SecurityError(f"passwords must be at least [{MIN_PASSWORD}] characters long")

    def add_user(self, name: str, password: str, roles: list[str]) -> None:
        if not name or ":" in name:
            raise SecurityError("a user name must be non-empty and must not contain ':'")
        self._check_password(password)
        self._check_roles(roles)
        try:
            self._write("INSERT INTO users (name, hash, roles) VALUES (?, ?, ?)",
                        (name, hash_password(password), json.dumps(roles)))
        except sqlite3.IntegrityError:
            raise SecurityError(f"user [{name}] already exists") from None

    def set_password(self, name: str, password: str) -> None:
        self._check_password(password)
        if not self._write("UPDATE users SET hash = ? WHERE name = ?", (hash_password(password), name)):
            raise SecurityError(f"user [{name}] does not exist")

    def change_roles(self, name: str, add: list[str], remove: list[str]) -> list[str]:
        """Give user `name` the roles `add` and take `remove` from them (a role in both is
        taken, as `elasticsearch-users roles -a/-r` does); the roles the user has then. Nothing
        is written when nothing changes (a write makes the server check passwords afresh)."""
        self._check_roles(add)
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # read and write as one: two changes at once both count
            row = db.execute("SELECT roles FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise SecurityError(f"user [{name}] does not exist")
            had = json.loads(row[0])
            roles = [r for r in dict.fromkeys([*had, *add]) if r not in remove]
            if roles != had:
                db.execute("UPDATE users SET roles = ? WHERE name = ?", (json.dumps(roles), name))
            db.execute("COMMIT")
            return roles
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
            db.close()

    def delete_user(self, name: str) -> bool:
        return self._write("DELETE FROM users WHERE name = ?", (name,)) > 0

    def list_users(self) -> list[User]:
        return sorted(self.load().users.values(), key=lambda u: u.name)

    # -- custom roles -------------------------------------------------------------------------

    def put_role(self, name: str, privileges: list[str]) -> None:
        if name in BUILTIN_ROLES:
            raise SecurityError(f"role [{name}] is reserved and cannot be modified")
        for p in privileges:
            if p not in PRIVILEGES:
                raise SecurityError(unknown_privilege_message(p))
        self._write("INSERT OR REPLACE INTO roles (name, privileges) VALUES (?, ?)", (name, json.dumps(privileges)))

    def delete_role(self, name: str) -> bool:
        return self._write("DELETE FROM roles WHERE name = ?", (name,)) > 0

    # -- API keys -----------------------------------------------------------------------------

    def create_api_key(self, name: str, owner: str, limited_by: list[str],
                       role_descriptors: dict[str, list[str]], expiration: int | None) -> tuple[ApiKey, str]:
        """A new key and its secret (the only time the secret exists outside the caller)."""
        key_id = secrets.token_urlsafe(15)  # 20 characters, like Elasticsearch's ids
        secret = secrets.token_urlsafe(16)  # 22 characters, like Elasticsearch's keys
        key = ApiKey(key_id, name, hash_key(secret), owner, role_descriptors, sorted(set(limited_by)),
                     now_ms(), expiration, False)
        self._write(
            "INSERT INTO api_keys (id, name, hash, owner, role_descriptors, limited_by, creation, expiration)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key.id, key.name, key.hash, key.owner, json.dumps(role_descriptors), json.dumps(key.limited_by),
             key.creation, key.expiration),
        )
        return key, secret

    def invalidate_api_keys(self, ids: list[str]) -> None:
        db = self._connect()
        try:
            db.executemany("UPDATE api_keys SET invalidated = 1 WHERE id = ?", [(i,) for i in ids])
        finally:
            db.close()


def encoded_key(key_id: str, secret: str) -> str:
    """The value clients send after ``Authorization: ApiKey``."""
    return base64.b64encode(f"{key_id}:{secret}".encode()).decode()
