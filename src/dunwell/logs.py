"""Logging: plain text for people, or one JSON object per line for collectors.

``configure_logging`` is called once by the ``dunwell`` command. With
``log_format = "json"`` every line is an object with ``time`` (UTC,
ISO-8601), ``level``, ``logger`` and ``message``, then the fields a caller
passed with ``extra=`` (the worker adds its name, counts per stage and the
pass's duration), then ``exception`` when there is a traceback.

Whatever the format, two things are cut out of every line, tracebacks
included (:class:`Redact`):

* the signed tokens of billing and customer-page links, from the web
  server's access lines: a token opens a customer's page, so it must not
  sit in log files;
* anything that looks like a card number (:mod:`dunwell.domain.card_numbers`).
  Callers never log one, but an error can carry what a client sent: a
  database error names the row that broke a constraint (PostgreSQL's
  ``DETAIL``), and a client may put a card number in any field.

The database engines keep statements' values out of their errors
(:func:`dunwell.store.db.make_engine`). Callers never log secrets or
message bodies; this module is not a filter for them.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from dunwell.messaging.redact import redact_card_numbers
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
        if record.exc_text:  # already formatted (and redacted)
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a datetime or Decimal in ``extra`` must not lose the line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class Redact(logging.Filter):
    """Cuts link tokens and card numbers out of a record (see the module docstring).

    The traceback is formatted here, redacted, and kept as the record's
    ``exc_text``, which every formatter prints in its place.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) for a in record.args):
            record.args = tuple(_redacted(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _redacted(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            record.exc_text = redact_card_numbers(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_card_numbers(record.exc_text)
        return True


_TRACEBACKS = logging.Formatter()


def _redacted(text: str) -> str:
    return redact_card_numbers(_LINK_TOKEN.sub(r"\1[token]", text))


def make_handler(log_format: str) -> logging.Handler:
    """A stderr handler in ``log_format`` ("text" or "json"); ValueError for any other."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(Redact())
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
