"""``dunwell webhooks add | list | deliveries | redeliver``."""

from __future__ import annotations

from typing import Any

import click

from dunwell.cli import get_app
from dunwell.cli.ledger_commands import _run, json_option, site_option
from dunwell.cli.output import emit_json, emit_table
from dunwell.cli.params import ID
from dunwell.services import webhook_endpoints, webhook_log
from dunwell.services.errors import ServiceError
from dunwell.services.events import WEBHOOK_EVENTS
from dunwell.services.sites import site_id_for, site_now


@click.group("webhooks")
def webhooks_group() -> None:
    """Outgoing webhooks: endpoints and their deliveries."""


@webhooks_group.command("add")
@site_option
@click.argument("url")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    type=click.Choice(WEBHOOK_EVENTS),
    help="An event type to receive (repeat the option); none means all.",
)
@click.option("--description", default=None)
@click.pass_context
def webhooks_add(
    ctx: click.Context,
    site_slug: str,
    url: str,
    event_types: tuple[str, ...],
    description: str | None,
) -> None:
    """Save an endpoint and print its signing secret (shown this once only)."""
    app = get_app(ctx)
    site_id = _run(ctx, lambda c: site_id_for(c, site_slug))
    try:
        saved = webhook_endpoints.create_endpoint(
            app, site_id, url=url, events=event_types, description=description
        )
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"endpoint {saved['id']} saved for {saved['url']}")
    click.echo(f"signing secret (store it now, it is not shown again): {saved['secret']}")


@webhooks_group.command("list")
@site_option
@json_option
@click.pass_context
def webhooks_list(ctx: click.Context, site_slug: str, as_json: bool) -> None:
    rows = _run(
        ctx, lambda c: webhook_endpoints.list_endpoints(c, site_id_for(c, site_slug), limit=500)
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"webhook endpoints of {site_slug}",
        ["id", "url", "events", "enabled", "disabled because", "description"],
        [
            [
                r["id"],
                r["url"],
                ", ".join(r["events"]) or "all",
                "yes" if r["enabled"] else "no",
                r["disabled_reason"],
                r["description"],
            ]
            for r in rows
        ],
    )


@webhooks_group.command("deliveries")
@site_option
@click.argument("endpoint_id", type=ID)
@click.option(
    "--status",
    type=click.Choice(["pending", "sending", "delivered", "failed", "canceled"]),
    default=None,
)
@click.option("--after", default=0, help="Show deliveries after this id.")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def webhooks_deliveries(
    ctx: click.Context,
    site_slug: str,
    endpoint_id: int,
    status: str | None,
    after: int,
    limit: int,
    as_json: bool,
) -> None:
    """An endpoint's deliveries, oldest first, with every attempt (--json)."""
    rows = _run(
        ctx,
        lambda c: webhook_log.list_deliveries(
            c, site_id_for(c, site_slug), endpoint_id, status=status, after_id=after, limit=limit
        ),
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"deliveries to endpoint {endpoint_id}",
        ["id", "event", "status", "attempts", "last status", "last error", "next attempt"],
        [
            [
                r["id"],
                r["event_type"],
                r["status"],
                r["attempts"],
                r["last_status_code"],
                r["last_error"],
                r["next_attempt_at"] if r["status"] == "pending" else None,
            ]
            for r in rows
        ],
    )


@webhooks_group.command("redeliver")
@site_option
@click.argument("delivery_id", type=ID)
@click.pass_context
def webhooks_redeliver(ctx: click.Context, site_slug: str, delivery_id: int) -> None:
    """Queue a delivery again now, whatever its status."""
    app = get_app(ctx)

    def work(c: Any) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        return webhook_log.redeliver(c, site_id, delivery_id, site_now(c, site_id, app.clock))

    found = _run(ctx, work, write=True)
    click.echo(f"delivery {found['id']} queued again; the worker sends it")


COMMANDS = [webhooks_group]
