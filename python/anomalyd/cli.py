"""The `anomalyd` command line. Every `serve` flag can also be set as `ANOMALYD_<FLAG>`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import click
from aiohttp import web

from .settings import Settings, parse_duration, parse_size
from .store import DataDirInUse


class _Parsed(click.ParamType):
    """A flag value read by one of the settings parsers: a bad one is click's usage error
    ("Invalid value for '--read-timeout'"), not a traceback."""

    def __init__(self, name: str, parse: Callable[[str], Any], example: str) -> None:
        self.name, self._parse, self._example = name, parse, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self._parse(value)
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is not a {self.name} (e.g. {self._example})", param, ctx)


SIZE = _Parsed("size", parse_size, "100mb, 16kb, 1gb")
DURATION = _Parsed("duration", parse_duration, "500ms, 30s, 5m, 1h")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """anomalyd: Elasticsearch-compatible anomaly detection jobs, standalone."""


@main.command()
@click.option("--host", envvar="ANOMALYD_HOST", show_envvar=True, default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", envvar="ANOMALYD_PORT", show_envvar=True, default=9200, show_default=True, type=int)
@click.option("--data-dir", envvar="ANOMALYD_DATA_DIR", show_envvar=True, default="./data", show_default=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--log-format", envvar="ANOMALYD_LOG_FORMAT", show_envvar=True, default="console", show_default=True, type=click.Choice(["json", "console"]))
@click.option("--log-level", envvar="ANOMALYD_LOG_LEVEL", show_envvar=True, default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@click.option("--access-log/--no-access-log", envvar="ANOMALYD_ACCESS_LOG", show_envvar=True, default=False,
              help="Log every request (remote, request line, status, size, time); off by default, for speed.")
@click.option("--max-content-length", envvar="ANOMALYD_MAX_CONTENT_LENGTH", show_envvar=True, default="100mb", show_default=True, type=SIZE, help="Largest Content-Length accepted.")
@click.option("--shutdown-timeout", envvar="ANOMALYD_SHUTDOWN_TIMEOUT", show_envvar=True, default="30s", show_default=True, type=DURATION, help="Grace period for in-flight requests.")
@click.option("--read-timeout", envvar="ANOMALYD_READ_TIMEOUT", show_envvar=True, default="60s", show_default=True, type=DURATION, help="Drop clients that send nothing this long.")
@click.option("--max-document-length", envvar="ANOMALYD_MAX_DOCUMENT_LENGTH", show_envvar=True, default="16mb", show_default=True, type=SIZE, help="Largest single JSON document of a chunked or compressed body.")
@click.option("--snapshot-interval", envvar="ANOMALYD_SNAPSHOT_INTERVAL", show_envvar=True, default="5m", show_default=True, type=DURATION,
              help="How often an open job's model state is snapshotted (also on close and shutdown).")
@click.option("--deprecation-warning/--no-deprecation-warning", envvar="ANOMALYD_DEPRECATION_WARNING", show_envvar=True, default=False,
              help="Send Elasticsearch's deprecation Warning header on _data.")
@click.option("--security/--no-security", envvar="ANOMALYD_SECURITY", show_envvar=True, default=False,
              help="Require credentials (see `anomalyd users`) and check privileges.")
@click.option("--allow-insecure", envvar="ANOMALYD_ALLOW_INSECURE", show_envvar=True, is_flag=True, default=False,
              help="Serve a non-loopback address without --security.")
@click.option("--tls-cert", envvar="ANOMALYD_TLS_CERT", show_envvar=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate chain; with --tls-key, serve HTTPS.")
@click.option("--tls-key", envvar="ANOMALYD_TLS_KEY", show_envvar=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key for --tls-cert.")
def serve(host: str, port: int, data_dir: Path, log_format: str, log_level: str, access_log: bool, max_content_length: int,
          shutdown_timeout: float, read_timeout: float, max_document_length: int, snapshot_interval: float, deprecation_warning: bool,
          security: bool, allow_insecure: bool, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the API (embedded store under --data-dir)."""
    import structlog

    from . import logs, malloc, shutdown
    from .app import create_app

    settings = Settings(
        host=host, port=port, data_dir=data_dir, log_format=log_format, log_level=log_level,
        max_content_length=max_content_length, shutdown_timeout=shutdown_timeout,
        read_timeout=read_timeout, max_document_bytes=max_document_length,
        snapshot_interval=snapshot_interval,
        deprecation_warning=deprecation_warning, security=security, allow_insecure=allow_insecure,
        tls_cert=tls_cert, tls_key=tls_key,
    )
    if not security and not allow_insecure and not is_loopback(host):
        raise click.UsageError(
            f"refusing to serve [{host}] without security: anyone who can reach it could read, change and "
            "delete every job. Use --security (with users from `anomalyd users add`), or --allow-insecure "
            "if the network itself is trusted."
        )
    if security and tls_cert is None and not is_loopback(host):
        click.echo(f"warning: serving [{host}] with security but without TLS: credentials cross the network "
                   "in clear text (use --tls-cert and --tls-key)", err=True)
    ssl_context = tls_context(tls_cert, tls_key)
    logs.configure(log_format, log_level, access_log)
    structlog.get_logger("anomalyd").debug("malloc_settings", applied=malloc.tune())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        uvloop = None
    loop = uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()
    # The port first: a server that cannot listen must not restore (and at its end save) the
    # jobs of a store another server may be using, nor say it is ready.
    try:
        sockets = listen_sockets(host, port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    settings.port = sockets[0].getsockname()[1]  # the one chosen for --port 0
    # A header may take 16 KB, Elasticsearch's http.max_header_size (aiohttp's default is 8 KB;
    # aiohttp limits each header, Elasticsearch all of them together).
    try:
        app = create_app(settings)
        shutdown.take_signals(app)
        web.run_app(app, sock=sockets, shutdown_timeout=shutdown.aiohttp_shutdown_timeout(settings.shutdown_timeout),
                    access_log=logs.ACCESS if access_log else None, access_log_format=logs.ACCESS_FORMAT,
                    print=None, loop=loop, handle_signals=True, ssl_context=ssl_context,
                    max_field_size=16 << 10)
    except DataDirInUse as e:
        raise click.ClickException(str(e)) from None


def listen_sockets(host: str, port: int, backlog: int = 128) -> list[socket.socket]:
    """Listening sockets for `host:port`, one per address it names ("" and 0.0.0.0: every
    interface), made as asyncio's own server makes them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            s = socket.socket(family, kind, proto)
            sockets.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one port for every address: the first one's
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            s.bind(address)
            s.listen(backlog)
            s.setblocking(False)
    except OSError:
        for s in sockets:
            s.close()
        raise
    return sockets


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one ("" and 0.0.0.0 mean all interfaces)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server context for HTTPS, loaded now so a bad certificate stops start-up with a clear message."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise click.UsageError(f"cannot load the TLS certificate [{cert}] and key [{key}]: {e}") from None
    return context


# -- security administration (works while the server runs: it notices changes on the next request) --

data_dir_option = click.option("--data-dir", envvar="ANOMALYD_DATA_DIR", default="./data", show_default=True,
                               type=click.Path(path_type=Path, file_okay=False))


def _store(data_dir: Path):  # noqa: ANN202 - imported lazily to keep `anomalyd --help` fast
    from .security import SecurityStore

    return SecurityStore(data_dir)


@contextlib.contextmanager
def _security_errors() -> Iterator[None]:
    """A refused user, role or key change is a clean CLI error, not a traceback."""
    from .security import SecurityError

    try:
        yield
    except SecurityError as e:
        raise click.ClickException(str(e)) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def users() -> None:
    """Manage users (HTTP Basic authentication)."""


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              help="superuser, machine_learning_admin, machine_learning_user, or a custom role; repeatable.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@data_dir_option
def users_add(name: str, roles: tuple[str, ...], password_stdin: bool, data_dir: Path) -> None:
    """Add a user with a password and roles."""
    with _security_errors():
        _store(data_dir).add_user(name, _read_password(password_stdin), list(roles))
    # where: a mistyped --data-dir makes a store the server never reads
    click.echo(f"user [{name}] added to {data_dir / 'security.sqlite3'}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@data_dir_option
def users_passwd(name: str, password_stdin: bool, data_dir: Path) -> None:
    """Change a user's password (API keys the user made stay valid)."""
    with _security_errors():
        _store(data_dir).set_password(name, _read_password(password_stdin))
    click.echo(f"password of user [{name}] changed in {data_dir / 'security.sqlite3'}")


@users.command("roles")
@click.argument("name")
@click.option("--add", "-a", "add", multiple=True, help="A role to give the user; repeatable.")
@click.option("--remove", "-r", "remove", multiple=True, help="A role to take from the user; repeatable.")
@data_dir_option
def users_roles(name: str, add: tuple[str, ...], remove: tuple[str, ...], data_dir: Path) -> None:
    """Give roles to a user and take roles from them (a role given and taken is taken); prints
    the roles the user has then (all it does without --add or --remove)."""
    with _security_errors():
        now = _store(data_dir).change_roles(name, list(add), list(remove))
    click.echo(f"{name}\t{','.join(now)}")


@users.command("list")
@data_dir_option
def users_list(data_dir: Path) -> None:
    """List users and their roles."""
    for user in _store(data_dir).list_users():
        click.echo(f"{user.name}\t{','.join(user.roles)}")


@users.command("delete")
@click.argument("name")
@data_dir_option
def users_delete(name: str, data_dir: Path) -> None:
    """Delete a user (their API keys stay valid until invalidated, as in Elasticsearch)."""
    if not _store(data_dir).delete_user(name):
        raise click.ClickException(f"user [{name}] does not exist")
    click.echo(f"user [{name}] deleted")


@main.group()
def roles() -> None:
    """Manage custom roles: named lists of cluster privileges."""


@roles.command("add")
@click.argument("name")
@click.argument("privileges", nargs=-1, required=True)
@data_dir_option
def roles_add(name: str, privileges: tuple[str, ...], data_dir: Path) -> None:
    """Create or replace a role granting PRIVILEGES (all, manage, manage_ml, monitor, monitor_ml)."""
    with _security_errors():
        _store(data_dir).put_role(name, list(privileges))
    click.echo(f"role [{name}] saved to {data_dir / 'security.sqlite3'}")


@roles.command("list")
@data_dir_option
def roles_list(data_dir: Path) -> None:
    """List built-in and custom roles with their privileges."""
    from .privileges import BUILTIN_ROLES

    for name, privileges in {**BUILTIN_ROLES, **_store(data_dir).load().roles}.items():
        click.echo(f"{name}\t{','.join(privileges)}")


@roles.command("delete")
@click.argument("name")
@data_dir_option
def roles_delete(name: str, data_dir: Path) -> None:
    """Delete a custom role (users keeping it get nothing from it)."""
    from .privileges import BUILTIN_ROLES

    if name in BUILTIN_ROLES:
        raise click.ClickException(f"role [{name}] is reserved and cannot be deleted")
    if not _store(data_dir).delete_role(name):
        raise click.ClickException(f"role [{name}] does not exist")
    click.echo(f"role [{name}] deleted")


@main.group("api-keys")
def api_keys() -> None:
    """Manage API keys (`Authorization: ApiKey <encoded>`)."""


@api_keys.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="Role whose privileges the key gets; repeatable.")
@click.option("--expiration", type=DURATION, help="Lifetime, e.g. 30d (default: never expires).")
@data_dir_option
def api_keys_create(name: str, roles: tuple[str, ...], expiration: float | None, data_dir: Path) -> None:
    """Create a key and print it, as JSON like `POST _security/api_key` answers (shown only once)."""
    import json

    from .clock import now_ms
    from .security import CLI_OWNER, encoded_key

    store = _store(data_dir)
    snapshot = store.load()
    unknown = [r for r in roles if not snapshot.privileges([r])]
    if unknown:
        raise click.ClickException(f"unknown role(s) [{','.join(unknown)}]")
    expires = now_ms() + int(expiration * 1000) if expiration is not None else None  # 0: expired at once
    key, secret = store.create_api_key(name, CLI_OWNER, sorted(snapshot.privileges(list(roles))), {}, expires)
    out = {"id": key.id, "name": key.name, **({"expiration": expires} if expires else {}),
           "api_key": secret, "encoded": encoded_key(key.id, secret)}
    click.echo(json.dumps(out))


@api_keys.command("list")
@data_dir_option
def api_keys_list(data_dir: Path) -> None:
    """List keys (never their secrets)."""
    import json

    for key in sorted(_store(data_dir).load().api_keys.values(), key=lambda k: k.creation):
        click.echo(json.dumps(key.info()))


@api_keys.command("invalidate")
@click.argument("ids", nargs=-1, required=True)
@data_dir_option
def api_keys_invalidate(ids: tuple[str, ...], data_dir: Path) -> None:
    """Invalidate keys by id."""
    store = _store(data_dir)
    known = store.load().api_keys
    missing = [i for i in ids if i not in known]
    if missing:
        raise click.ClickException(f"no API key with id [{','.join(missing)}]")
    store.invalidate_api_keys(list(ids))
    click.echo(f"invalidated [{','.join(ids)}]")


if __name__ == "__main__":
    main()
