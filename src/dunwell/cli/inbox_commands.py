"""``dunwell concierge conversations | show | history | reply | close | figures | settings``.

The merchant's side of the concierge from a terminal: the same services as
the ``/v1/conversations`` and ``/v1/settings/concierge`` routes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import Connection

from dunwell.cli import get_app
from dunwell.cli.ledger_commands import _run, json_option, site_option
from dunwell.cli.output import emit_json, emit_table
from dunwell.cli.params import ID
from dunwell.services import inbox
from dunwell.services.concierge_figures import concierge_figures
from dunwell.services.concierge_settings import load_concierge_settings, update_concierge_settings
from dunwell.services.sites import site_id_for, site_now


@click.command("conversations")
@site_option
@click.option("--search", "query", default=None, help="Customer name, email or phone.")
@click.option("--status", type=click.Choice(["open", "escalated", "closed"]), default=None)
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def conversations_list(
    ctx: click.Context,
    site_slug: str,
    query: str | None,
    status: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The inbox: conversations with their latest turn."""
    rows = _run(
        ctx,
        lambda c: inbox.list_conversations(
            c, site_id_for(c, site_slug), query=query, status=status, limit=limit
        ),
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"conversations of {site_slug}",
        ["id", "customer", "phone", "status", "outcome", "last", "at"],
        [
            [
                r["id"],
                " ".join(p for p in (r["first_name"], r["last_name"]) if p) or None,
                r["phone"],
                r["status"],
                r["outcome"],
                (r["last_turn"] or {}).get("body"),
                r["last_message_at"],
            ]
            for r in rows
        ],
    )


@click.command("show")
@site_option
@click.argument("conversation_id", type=ID)
@click.pass_context
def conversation_show(ctx: click.Context, site_slug: str, conversation_id: int) -> None:
    """One conversation with every turn, as JSON."""
    emit_json(
        _run(ctx, lambda c: inbox.get_conversation(c, site_id_for(c, site_slug), conversation_id))
    )


@click.command("history")
@site_option
@click.argument("customer_id", type=ID)
@click.pass_context
def customer_history(ctx: click.Context, site_slug: str, customer_id: int) -> None:
    """Every conversation a customer had, as JSON."""
    emit_json(
        _run(ctx, lambda c: inbox.customer_history(c, site_id_for(c, site_slug), customer_id))
    )


@click.command("reply")
@site_option
@click.argument("conversation_id", type=ID)
@click.argument("body")
@click.pass_context
def conversation_reply(ctx: click.Context, site_slug: str, conversation_id: int, body: str) -> None:
    """Reply by hand; a person then has the conversation."""

    def work(c: Connection) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        now = site_now(c, site_id, get_app(ctx).clock)
        return inbox.reply_by_hand(c, site_id, conversation_id, body, now)

    emit_json(_run(ctx, work, write=True))


@click.command("close")
@site_option
@click.argument("conversation_id", type=ID)
@click.pass_context
def conversation_close(ctx: click.Context, site_slug: str, conversation_id: int) -> None:
    """Close a conversation; the number's next text goes to the concierge again."""

    def work(c: Connection) -> None:
        site_id = site_id_for(c, site_slug)
        now = site_now(c, site_id, get_app(ctx).clock)
        inbox.close_by_hand(c, site_id, conversation_id, now)

    _run(ctx, work, write=True)
    click.echo(f"conversation {conversation_id} closed")


@click.command("figures")
@site_option
@click.option("--since", type=click.DateTime(), default=None, help="UTC, inclusive.")
@click.option("--until", type=click.DateTime(), default=None, help="UTC, exclusive.")
@click.pass_context
def figures(
    ctx: click.Context, site_slug: str, since: datetime | None, until: datetime | None
) -> None:
    """Actions completed, escalations, self-service rate, sentiment, recovered invoices."""
    since_utc = since.replace(tzinfo=UTC) if since else None
    until_utc = until.replace(tzinfo=UTC) if until else None
    emit_json(
        _run(
            ctx,
            lambda c: concierge_figures(c, site_id_for(c, site_slug), since_utc, until_utc),
        )
    )


@click.command("settings")
@site_option
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="NAME=JSON",
    help="Change a setting, e.g. --set send_nudge=false --set escalation_email='\"a@b.c\"'.",
)
@click.pass_context
def settings(ctx: click.Context, site_slug: str, changes: tuple[str, ...]) -> None:
    """Show the concierge settings, or change them with --set."""
    parsed = dict(_setting(change) for change in changes)

    def work(c: Connection) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        if parsed:
            now = site_now(c, site_id, get_app(ctx).clock)
            return asdict(update_concierge_settings(c, site_id, parsed, now))
        return asdict(load_concierge_settings(c, [site_id])[site_id])

    emit_json(_run(ctx, work, write=bool(parsed)))


def _setting(change: str) -> tuple[str, object]:
    name, sep, raw = change.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{change!r}: use NAME=VALUE", param_hint="--set")
    try:
        return name.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return name.strip(), raw  # plain text, e.g. an email address


COMMANDS = (
    conversations_list,
    conversation_show,
    customer_history,
    conversation_reply,
    conversation_close,
    figures,
    settings,
)
