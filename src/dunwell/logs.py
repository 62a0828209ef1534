"""Logging: plain text for people, or one JSON object per line for collectors.

``configure_logging`` is called once by the ``dunwell`` command. With
``log_format = "json"`` every line is an object with ``time`` (UTC,
ISO-8601), ``level``, ``logger`` and ``message``, then the fields a caller
passed with ``extra=`` (the worker adds its name, counts per stage and the
pass's duration), then ``exception`` when there is a traceback.

Whatever the format, the signed tokens of billing and customer-page links
are cut out of the web server's access lines: a token opens a customer's
page, so it must not sit in log files. Callers never log card numbers,
secrets or message bodies; this module is not a filter for them.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from dunwell.settings import Settings

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    # uvicorn's copy of the message with terminal colours.
    "color_message",
}
_CORE = ("time", "level", "logger", "message")
_LINK_TOKEN = re.compile(r"(/(?:billing|portal)/)[^/?#\s]+")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            # An extra named like a core field must not hide the real one.
            if key not in _STANDARD and key not in _CORE:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a datetime or Decimal in ``extra`` must not lose the line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactLinkTokens(logging.Filter):
    """Replaces the token in ``/billing/<token>`` and ``/portal/<token>`` with ``[token]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) for a in record.args):
            record.args = tuple(
                _LINK_TOKEN.sub(r"\1[token]", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _LINK_TOKEN.sub(r"\1[token]", record.msg)
        return True


def make_handler(log_format: str) -> logging.Handler:
    """A stderr handler in ``log_format`` ("text" or "json"); ValueError for any other."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(RedactLinkTokens())
    return handler


def configure_logging(settings: Settings) -> None:
    """Send every logger's records to stderr in the chosen format and level.

    Raises ValueError for an unknown format or level. Like
    :func:`logging.basicConfig`, it leaves a root logger that already has
    handlers alone (a test runner's capture, an embedding program's setup).
    """
    handler = make_handler(settings.log_format)
    level = settings.log_level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"log_level {settings.log_level!r} is not a logging level")
    logging.basicConfig(level=level, handlers=[handler])
    # Alembic announces every plugin it loads at INFO; only its warnings matter.
    logging.getLogger("alembic").setLevel(logging.WARNING)
