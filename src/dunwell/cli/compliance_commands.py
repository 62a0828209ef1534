"""``dunwell phones | sms-settings | credits``: numbers, SMS rules and credits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from dunwell.cli import get_app
from dunwell.cli.ledger_commands import _run, json_option, site_option
from dunwell.cli.output import emit_json
from dunwell.services import sms_credits
from dunwell.services.phone_import import ImportReport, import_phones
from dunwell.services.sites import site_id_for, site_now
from dunwell.services.sms_settings import (
    load_sms_settings,
    settings_to_dict,
    update_sms_settings,
)


@click.group("phones")
def phones_group() -> None:
    """Customers' phone numbers."""


@phones_group.command("import")
@site_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the row-by-row report here as JSON.",
)
@json_option
@click.pass_context
def phones_import(
    ctx: click.Context, site_slug: str, csv_file: Path, report_file: Path | None, as_json: bool
) -> None:
    """Set phone numbers from a CSV (columns: phone and customer_id or email)."""
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as undecodable:
        raise click.ClickException(
            f"{csv_file}: not UTF-8 text ({undecodable.reason} at byte {undecodable.start});"
            " save the CSV as UTF-8 and import it again"
        ) from None
    total = max(text.count("\n") - 1, 0)
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("importing", total=total)

        def work(c: Any) -> ImportReport:
            return import_phones(c, site_id_for(c, site_slug), text, lambda n: bar.advance(task, n))

        report = _run(ctx, work, write=True)
    data = report.as_dict()
    if report_file:
        report_file.write_text(json.dumps(data, indent=2))
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"{data['rows']} rows: {data['applied']} applied, {data['unchanged']} unchanged, "
        f"{data['rejected']} rejected"
    )
    for error in data["errors"][:20]:
        click.echo(f"  line {error['line']}: {error['reason']}: {error['detail']}")
    if data["rejected"] > 20:
        click.echo(f"  ... {data['rejected'] - 20} more (use --report or --json)")


@click.group("sms-settings")
def sms_settings_group() -> None:
    """A site's SMS rules: send window, caps, consent, encoding, replies, prices."""


@sms_settings_group.command("show")
@site_option
@click.pass_context
def sms_settings_show(ctx: click.Context, site_slug: str) -> None:
    emit_json(
        _run(
            ctx,
            lambda c: settings_to_dict(
                load_sms_settings(c, [site_id_for(c, site_slug)])[site_id_for(c, site_slug)]
            ),
        )
    )


@sms_settings_group.command("set")
@site_option
@click.argument("changes_json")
@click.pass_context
def sms_settings_set(ctx: click.Context, site_slug: str, changes_json: str) -> None:
    """Change settings, e.g. '{"window_end": "20:00", "frequency_cap": 2}'."""
    try:
        changes = json.loads(changes_json)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="CHANGES_JSON") from None
    if not isinstance(changes, dict):
        raise click.BadParameter("give a JSON object", param_hint="CHANGES_JSON")
    app = get_app(ctx)

    def work(c: Any) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        now = site_now(c, site_id, app.clock)
        return settings_to_dict(update_sms_settings(c, site_id, changes, now))

    emit_json(_run(ctx, work, write=True))


@click.group("credits")
def credits_group() -> None:
    """SMS credits of a site."""


@credits_group.command("show")
@site_option
@click.pass_context
def credits_show(ctx: click.Context, site_slug: str) -> None:
    app = get_app(ctx)

    def work(c: Any) -> int:
        site_id = site_id_for(c, site_slug)
        return sms_credits.balances(c, [site_id], site_now(c, site_id, app.clock))[site_id]

    click.echo(f"balance: {_run(ctx, work, write=True)} credits")


@credits_group.command("top-up")
@site_option
@click.argument("credits", type=click.IntRange(min=1))
@click.option("--note", default=None)
@click.pass_context
def credits_top_up(ctx: click.Context, site_slug: str, credits: int, note: str | None) -> None:
    app = get_app(ctx)

    def work(c: Any) -> int:
        site_id = site_id_for(c, site_slug)
        return sms_credits.top_up(c, site_id, credits, site_now(c, site_id, app.clock), note)

    click.echo(f"balance: {_run(ctx, work, write=True)} credits")


COMMANDS = [phones_group, sms_settings_group, credits_group]
