"""``dunwell concierge``: the SMS concierge from a terminal.

    dunwell concierge parse < requests.jsonl > answers.jsonl

``parse`` reads one request per line (see
``../shared/contracts/concierge-understanding.md``) and writes one answer
per line, in the same order, flushed line by line, so a program can feed
requests one at a time. It needs no database. A line that is not a valid
request (blank lines included) is answered in place with
``{"error": "line 3: today: must be a date YYYY-MM-DD"}`` and the command
goes on; it exits with status 0 once every line is answered, and 1 only
when standard input cannot be read.

With ``--llm`` (the default when ``--llm-base-url`` and ``--llm-model`` are
set) the configured model is asked about the lines the rules are unsure
of; ``--no-llm`` keeps to the rules.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import click

from dunwell.settings import Settings

if TYPE_CHECKING:
    from dunwell.concierge.llm import LlmUnderstander
    from dunwell.concierge.wire import ParseRequest, Understanding


class _BadLine(ValueError):
    """One input line is not a request; the message says why."""


class _ConciergeGroup(click.Group):
    """``parse`` is here; the inbox commands load only when asked for (see cli/__init__)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name != "parse":
            _add_inbox_commands(self)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _add_inbox_commands(self)
        return super().list_commands(ctx)


def _add_inbox_commands(group: click.Group) -> None:
    from dunwell.cli.inbox_commands import COMMANDS

    for command in COMMANDS:
        if command.name not in group.commands:
            group.add_command(command)


@click.group("concierge", cls=_ConciergeGroup)
def concierge() -> None:
    """The SMS concierge: what a customer's text means, and its conversations."""


@concierge.command("parse")
@click.option(
    "--llm/--no-llm",
    "use_llm",
    default=None,
    help="Ask the configured LLM when the rules are unsure (default: if one is configured).",
)
@click.pass_context
def parse(ctx: click.Context, use_llm: bool | None) -> None:
    """Understand texts: JSON request lines on stdin, one JSON answer line each on stdout."""
    # Imported here: every other dunwell command starts without them.
    from dunwell.concierge.llm import understand_text

    llm = _llm(ctx.find_root().obj, use_llm)
    try:
        _answer_lines(sys.stdin.buffer, sys.stdout, lambda request: understand_text(request, llm))
    except OSError as error:
        raise click.ClickException(f"cannot read standard input: {error}") from None
    finally:
        if llm is not None:
            llm.close()


def _llm(settings: Settings, use_llm: bool | None) -> LlmUnderstander | None:
    if use_llm is False:
        return None
    if not (settings.llm_base_url and settings.llm_model):
        if use_llm:
            raise click.UsageError("--llm needs --llm-base-url and --llm-model (or DUNWELL_LLM_*)")
        return None
    from dunwell.concierge.llm import llm_from_settings

    return llm_from_settings(settings)


def _answer_lines(
    stream: BinaryIO, out: IO[str], understand: Callable[[ParseRequest], Understanding]
) -> None:
    """Answer every line of ``stream`` on ``out``, one line each, flushed as written."""
    from dunwell.concierge.wire import RequestError, request_from_json, understanding_to_json

    for number, raw in enumerate(stream, start=1):
        answer: dict[str, Any]
        try:
            request = request_from_json(_decode(raw, first=number == 1))
        except (_BadLine, RequestError) as error:
            answer = {"error": f"line {number}: {error}"}
        else:
            answer = understanding_to_json(understand(request))
        out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        out.flush()


def _decode(raw: bytes, *, first: bool) -> object:
    """The JSON value on one line."""
    try:
        # A byte-order mark may start a file saved by a Windows editor.
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise _BadLine(f"not valid UTF-8 at byte {error.start + 1}") from None
    if not line.strip():
        raise _BadLine('empty line; expected a JSON object like {"text": ..., "today": ...}')
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise _BadLine(f"not valid JSON ({error.msg} at column {error.colno})") from None
