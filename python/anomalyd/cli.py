"""The `anomalyd` command line. Every `serve` flag can also be set as `ANOMALYD_<FLAG>`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from aiohttp import web

from .settings import Settings, parse_duration, parse_size


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """anomalyd: Elasticsearch-compatible anomaly detection jobs, standalone."""


@main.command()
@click.option("--host", envvar="ANOMALYD_HOST", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", envvar="ANOMALYD_PORT", default=9200, show_default=True, type=int)
@click.option("--data-dir", envvar="ANOMALYD_DATA_DIR", default="./data", show_default=True, type=click.Path(path_type=Path))
@click.option("--log-format", envvar="ANOMALYD_LOG_FORMAT", default="console", show_default=True, type=click.Choice(["json", "console"]))
@click.option("--log-level", envvar="ANOMALYD_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@click.option("--max-content-length", envvar="ANOMALYD_MAX_CONTENT_LENGTH", default="100mb", show_default=True, help="Largest Content-Length accepted.")
@click.option("--shutdown-timeout", envvar="ANOMALYD_SHUTDOWN_TIMEOUT", default="30s", show_default=True, help="Grace period for in-flight requests.")
@click.option("--read-timeout", envvar="ANOMALYD_READ_TIMEOUT", default="60s", show_default=True, help="Drop clients that send nothing this long.")
@click.option("--max-document-length", envvar="ANOMALYD_MAX_DOCUMENT_LENGTH", default="16mb", show_default=True, help="Largest single JSON document.")
@click.option("--deprecation-warning/--no-deprecation-warning", envvar="ANOMALYD_DEPRECATION_WARNING", default=False,
              help="Send Elasticsearch's deprecation Warning header on _data.")
def serve(host: str, port: int, data_dir: Path, log_format: str, log_level: str, max_content_length: str,
          shutdown_timeout: str, read_timeout: str, max_document_length: str, deprecation_warning: bool) -> None:
    """Serve the API (embedded store under --data-dir)."""
    from . import logs
    from .app import create_app

    settings = Settings(
        host=host, port=port, data_dir=data_dir, log_format=log_format, log_level=log_level,
        max_content_length=parse_size(max_content_length), shutdown_timeout=parse_duration(shutdown_timeout),
        read_timeout=parse_duration(read_timeout), max_document_bytes=parse_size(max_document_length),
        deprecation_warning=deprecation_warning,
    )
    logs.configure(log_format, log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        uvloop = None
    loop = uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()
    web.run_app(create_app(settings), host=host, port=port, shutdown_timeout=settings.shutdown_timeout,
                access_log=None, print=None, loop=loop, handle_signals=True)


if __name__ == "__main__":
    main()
