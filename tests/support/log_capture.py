"""The platform's own logging (clawfleet.logs) written into a string, and undone afterwards."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from clawfleet.logs import configure_logging
from web.errors import UNPARSED_REQUESTS_AS_INFO


@contextmanager
def platform_logs(level: str = "DEBUG", fmt: str = "console") -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(level, fmt, stream=stream)
    try:
        yield stream
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger("aiohttp.server").removeFilter(UNPARSED_REQUESTS_AS_INFO)
