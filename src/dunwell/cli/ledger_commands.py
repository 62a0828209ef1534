"""``dunwell sites | clock | invoices | policies``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection

from dunwell.cli import get_app
from dunwell.cli.output import emit_json, emit_table
from dunwell.cli.params import ID
from dunwell.domain.policy import policy_to_dict
from dunwell.domain.states import Collection, SiteMode
from dunwell.services import invoice_actions, policies, queries
from dunwell.services.api_keys import Scope, create_key
from dunwell.services.errors import ServiceError
from dunwell.services.sites import advance_clock, create_site, parse_duration, site_id_for, site_now

site_option = click.option("--site", "site_slug", required=True, help="Site slug.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _run(ctx: click.Context, work: Callable[[Connection], Any], *, write: bool = False) -> Any:
    app = get_app(ctx)
    try:
        if write:
            with app.begin() as conn:
                return work(conn)
        with app.connect() as conn:
            return work(conn)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def sites() -> None:
    """Sites (tenants)."""


@sites.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--mode", type=click.Choice([m.value for m in SiteMode]), default="sandbox")
@click.option("--currency", default="USD")
@click.option("--time-zone", default="UTC")
@click.option("--locale", default="en", help="Default language of messages, e.g. en, fr.")
@click.option("--support-email", default=None, help="Where customers and alerts go.")
@click.pass_context
def sites_create(
    ctx: click.Context,
    slug: str,
    name: str,
    mode: str,
    currency: str,
    time_zone: str,
    locale: str,
    support_email: str | None,
) -> None:
    clock = get_app(ctx).clock
    site_id = _run(
        ctx,
        lambda c: create_site(
            c,
            clock,
            slug=slug,
            name=name,
            mode=SiteMode(mode),
            currency=currency,
            time_zone=time_zone,
            locale=locale,
            support_email=support_email,
        ),
        write=True,
    )
    click.echo(f"created site {slug} (id {site_id})")


@sites.command("list")
@json_option
@click.pass_context
def sites_list(ctx: click.Context, as_json: bool) -> None:
    rows = _run(ctx, queries.list_sites)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        "Sites",
        ["slug", "name", "mode", "currency", "test clock"],
        [[r["slug"], r["name"], r["mode"], r["currency"], r["clock_now"]] for r in rows],
    )


@click.group()
def clock() -> None:
    """A sandbox site's test clock."""


@clock.command("advance")
@site_option
@click.argument("duration")
@click.pass_context
def clock_advance(ctx: click.Context, site_slug: str, duration: str) -> None:
    """Move the test clock forward by DURATION (3d, 12h, 1d12h); the worker does what is due."""

    def work(conn: Connection) -> datetime:
        return advance_clock(conn, site_id_for(conn, site_slug), parse_duration(duration))

    click.echo(f"{site_slug} test clock now {_run(ctx, work, write=True).isoformat()}")


@clock.command("show")
@site_option
@click.pass_context
def clock_show(ctx: click.Context, site_slug: str) -> None:
    clock_ = get_app(ctx).clock
    now = _run(ctx, lambda c: site_now(c, site_id_for(c, site_slug), clock_))
    click.echo(now.isoformat())


@click.group()
def invoices() -> None:
    """List, inspect and act on invoices."""


@invoices.command("list")
@site_option
@click.option("--status", default=None, help="open, past_due, paid, failed or voided.")
@click.option("--after", "after_id", default=0, help="Cursor: list ids after this one.")
@click.option("--limit", default=100)
@json_option
@click.pass_context
def invoices_list(
    ctx: click.Context, site_slug: str, status: str | None, after_id: int, limit: int, as_json: bool
) -> None:
    rows = _run(
        ctx,
        lambda c: queries.list_invoices(
            c, site_id_for(c, site_slug), status=status, after_id=after_id, limit=limit
        ),
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"Invoices of {site_slug}",
        ["id", "number", "status", "amount", "attempts", "dunning", "next run"],
        [
            [
                r["id"],
                r["number"],
                r["status"],
                f"{r['amount_due_minor']} {r['currency']}",
                r["attempts"],
                r["phase"],
                r["next_run_at"],
            ]
            for r in rows
        ],
    )


@invoices.command("show")
@site_option
@click.argument("invoice_id", type=ID)
@click.pass_context
def invoices_show(ctx: click.Context, site_slug: str, invoice_id: int) -> None:
    emit_json(_run(ctx, lambda c: queries.invoice_detail(c, site_id_for(c, site_slug), invoice_id)))


def _action(name: str, verb: str, action: Callable[[Connection, int, int, datetime], None]) -> None:
    @invoices.command(name, help=f"{verb} the invoice.")
    @site_option
    @click.argument("invoice_id", type=ID)
    @click.pass_context
    def command(ctx: click.Context, site_slug: str, invoice_id: int) -> None:
        clock_ = get_app(ctx).clock

        def work(conn: Connection) -> None:
            site_id = site_id_for(conn, site_slug)
            action(conn, site_id, invoice_id, site_now(conn, site_id, clock_))

        _run(ctx, work, write=True)
        click.echo(f"invoice {invoice_id}: {name} done")


_action("stop", "Stop collecting (write off)", invoice_actions.stop_collecting)
_action("mark-paid", "Mark paid outside Dunwell", invoice_actions.mark_paid)
_action("stop-dunning", "Stop dunning without cancelling", invoice_actions.stop_dunning)
_action("reopen", "Reopen a failed manual", invoice_actions.reopen)
_action("collect", "Charge now", invoice_actions.collect_now)


@click.group("policies")
def policies_group() -> None:
    """Dunning policies and their version history."""


kind_option = click.option(
    "--kind",
    type=click.Choice([k.value for k in Collection]),
    default="automatic",
    help="Which cycle: automatic or manual invoices.",
)


@policies_group.command("versions")
@site_option
@kind_option
@click.pass_context
def policies_versions(ctx: click.Context, site_slug: str, kind: str) -> None:
    """Every version of a site's policy, oldest first, as JSON."""
    versions = _run(
        ctx, lambda c: policies.list_versions(c, site_id_for(c, site_slug), Collection(kind))
    )
    emit_json(
        [
            {
                "id": v.id,
                "version": v.version,
                "created_at": v.created_at,
                "first_used_at": v.first_used_at,
                "note": v.note,
                "policy": policy_to_dict(v.policy),
            }
            for v in versions
        ]
    )


@policies_group.command("save")
@site_option
@kind_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default=None)
@click.pass_context
def policies_save(
    ctx: click.Context, site_slug: str, kind: str, file: Path, note: str | None
) -> None:
    """Save FILE (JSON) as the next version of the policy."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{file}: not UTF-8 JSON ({error})") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{file}: a policy is a JSON object, not {type(data).__name__}")
    clock_ = get_app(ctx).clock

    def work(conn: Connection) -> policies.PolicyVersion:
        site_id = site_id_for(conn, site_slug)
        now = site_now(conn, site_id, clock_)
        return policies.save_policy(conn, site_id, Collection(kind), data, now, note)

    saved = _run(ctx, work, write=True)
    click.echo(f"saved version {saved.version} of the {kind} policy")


@click.group("api-keys")
def api_keys_group() -> None:
    """Per-site API keys."""


@api_keys_group.command("create")
@site_option
@click.option("--name", default="cli")
@click.option("--scope", type=click.Choice([s.value for s in Scope]), default="admin")
@click.pass_context
def api_keys_create(ctx: click.Context, site_slug: str, name: str, scope: str) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    clock_ = get_app(ctx).clock

    def work(conn: Connection) -> str:
        site_id = site_id_for(conn, site_slug)
        return create_key(conn, site_id, name, scope, site_now(conn, site_id, clock_))

    click.echo(_run(ctx, work, write=True))


COMMANDS = (sites, clock, invoices, policies_group, api_keys_group)
