"""``dunwell sms``: what an SMS costs before it is sent.

    dunwell sms segments < messages.jsonl > counts.jsonl
    dunwell sms segments --text "Your card was declined"

Each input line is a request ``{"text": "...", "smart_encoding": false}``
(``smart_encoding`` optional, default false) and gets exactly one answer
line, in order, so answers line up with requests:
``{"encoding": "GSM-7", "segments": 1, "characters": 22}``. A line that is
not such a request (blank lines included) is answered with
``{"error": "line 3: ..."}`` and the command goes on; it exits with status 1
when any line failed.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import click

from dunwell.messaging.segments import SegmentCount, count_segments

_FIELDS = ("text", "smart_encoding")


class _BadRequest(ValueError):
    """One input line is not a segment-count request; the message says why."""


@click.group()
def sms() -> None:
    """SMS tools: encoding and segment counts, as carriers bill them."""


@sms.command()
@click.option("--text", default=None, help="Count this text instead of reading JSON lines.")
@click.option(
    "--smart-encoding",
    is_flag=True,
    help="With --text: first replace look-alike characters (curly quotes, dashes) as Twilio does.",
)
@click.pass_context
def segments(ctx: click.Context, text: str | None, smart_encoding: bool) -> None:
    """Count encoding, segments and characters: JSON lines on stdin, or --text."""
    if text is not None:
        _emit(_answer(count_segments(text, smart_encoding=smart_encoding)))
        return
    if smart_encoding:
        raise click.UsageError(
            '--smart-encoding goes with --text; in JSON lines set "smart_encoding" per line.'
        )
    stdin = sys.stdin.buffer  # bytes: a line that is not UTF-8 is answered, not fatal
    if stdin.isatty():
        click.echo("reading JSON lines from standard input (end with Ctrl-D)", err=True)
    lines, failed = _answer_lines(stdin)
    if failed:
        click.echo(f"{failed} of {lines} lines failed", err=True)
        ctx.exit(1)


def _answer_lines(stream: BinaryIO) -> tuple[int, int]:
    """Answer every line of ``stream``; return (lines read, lines that failed)."""
    lines = failed = 0
    for number, raw in enumerate(stream, start=1):
        lines = number
        try:
            text, smart = _parse(raw, first=number == 1)
        except _BadRequest as error:
            failed += 1
            _emit({"error": f"line {number}: {error}"})
        else:
            _emit(_answer(count_segments(text, smart_encoding=smart)))
    return lines, failed


def _parse(raw: bytes, *, first: bool) -> tuple[str, bool]:
    """The text and smart-encoding flag of one request line."""
    try:
        # A byte-order mark may start a file saved by a Windows editor.
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise _BadRequest(f"not valid UTF-8 at byte {error.start + 1}") from None
    if not line.strip():
        raise _BadRequest('empty line; expected a JSON object like {"text": "..."}')
    try:
        request: Any = json.loads(line)
    except json.JSONDecodeError as error:
        raise _BadRequest(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(request, dict):
        raise _BadRequest(f'expected a JSON object like {{"text": "..."}}, got {_kind(request)}')
    unknown = [key for key in request if key not in _FIELDS]
    if unknown:
        # A misspelt "smart_encoding" would otherwise silently change the count.
        name = json.dumps(unknown[0][:40])
        raise _BadRequest(f'unknown field {name}; the fields are "text" and "smart_encoding"')
    if "text" not in request:
        raise _BadRequest('missing "text"')
    text, smart = request["text"], request.get("smart_encoding", False)
    if not isinstance(text, str):
        raise _BadRequest(f'"text" must be a string, got {_kind(text)}')
    if not isinstance(smart, bool):
        raise _BadRequest(f'"smart_encoding" must be true or false, got {_kind(smart)}')
    return text, smart


def _kind(value: Any) -> str:
    """How JSON would name the type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _answer(count: SegmentCount) -> dict[str, Any]:
    return {"encoding": count.encoding, "segments": count.segments, "characters": count.characters}


def _emit(answer: dict[str, Any]) -> None:
    # One line per answer, flushed, so a program feeding requests one at a
    # time can read each answer as soon as it is written.
    click.echo(json.dumps(answer))
