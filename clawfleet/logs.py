"""Logging: structlog for our own structured events, the stdlib's records from libraries
rendered through the same pipeline, and every finished line passed through db.redaction.

structlog over a hand-made JSON formatter: key-value events in our code, a readable console
renderer on a laptop and JSON lines in production from one switch, and third-party records
(aiohttp, SQLAlchemy, python-telegram-bot) formatted alike through ProcessorFormatter.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from db.redaction import redact
from web.errors import UNPARSED_REQUESTS_AS_INFO

_SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Redacts the finished line, tracebacks included, whichever renderer made it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "console", stream: TextIO | None = None) -> None:
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    final: list[structlog.types.Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final.append(structlog.processors.dict_tracebacks)
    final.append(renderer)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(foreign_pre_chain=_SHARED_PROCESSORS, processors=final))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs request URLs, and Bot API URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # we log the migration outcome ourselves
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    logging.getLogger("aiohttp.server").addFilter(UNPARSED_REQUESTS_AS_INFO)  # anyone can send those
