"""Logging: structlog over the standard library, as JSON lines or for a console."""

from __future__ import annotations

import logging
import sys

import structlog


#: aiohttp's access log (`--access-log`): remote, request line, status, body bytes, seconds.
ACCESS = logging.getLogger("aiohttp.access")
ACCESS_FORMAT = '%a "%r" %s %b %Tf "%{User-Agent}i"'


def configure(fmt: str, level: str, access_log: bool = False) -> None:
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=processors, processor=renderer))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    ACCESS.setLevel(logging.INFO if access_log else logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_bad_http_is_one_line)


def _bad_http_is_one_line(record: logging.LogRecord) -> bool:
    """aiohttp logs every request it cannot parse (broken framing, an oversized header) as an
    error with a traceback: any client could flood the log. Those are the client's fault,
    answered 400 by aiohttp: one info line each instead (a level is only ever lowered)."""
    from aiohttp.http_exceptions import BadHttpMessage

    error = record.exc_info[1] if record.exc_info else None
    if not isinstance(error, BadHttpMessage) or record.levelno <= logging.INFO:
        return True
    remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
    record.msg, record.args = "bad_http_request remote=%s error=%r", (remote, error.message)
    record.exc_info, record.exc_text = None, None
    record.levelno, record.levelname = logging.INFO, "INFO"
    return logging.getLogger(record.name).isEnabledFor(logging.INFO)
