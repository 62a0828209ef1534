"""``dunwell messages | templates | sandbox | channels``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from dunwell.channels.config import ChannelConfig
from dunwell.cli import get_app
from dunwell.cli.ledger_commands import _run, json_option, site_option
from dunwell.cli.output import emit_json, emit_table
from dunwell.cli.params import ID
from dunwell.services import message_preview, messages, templates
from dunwell.services.channel_config import (
    load_site_channels,
    save_channel_config,
    unreadable_secret_error,
)
from dunwell.services.errors import ServiceError
from dunwell.services.message_render import MessageRenderer
from dunwell.services.sandbox_phone import text_as_customer
from dunwell.services.sites import site_id_for, site_now


@click.group("messages")
def messages_group() -> None:
    """Email and SMS in the outbox: status, attempts, resend."""


@messages_group.command("list")
@site_option
@click.option("--status", type=click.Choice(messages.STATUSES), default=None)
@click.option("--channel", type=click.Choice(["email", "sms"]), default=None)
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def messages_list(
    ctx: click.Context,
    site_slug: str,
    status: str | None,
    channel: str | None,
    limit: int,
    as_json: bool,
) -> None:
    rows = _run(
        ctx,
        lambda c: messages.list_messages(
            c, site_id_for(c, site_slug), status=status, channel=channel, limit=limit
        ),
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"messages of {site_slug}",
        ["id", "channel", "status", "template", "to", "attempts", "held", "error", "created"],
        [
            [
                r["id"],
                r["channel"],
                r["status"],
                r["template"],
                r["recipient"],
                r["attempts"],
                r["held_reason"],
                r["last_error"],
                r["created_at"],
            ]
            for r in rows
        ],
    )


@messages_group.command("show")
@site_option
@click.argument("message_id", type=ID)
@click.pass_context
def messages_show(ctx: click.Context, site_slug: str, message_id: int) -> None:
    emit_json(_run(ctx, lambda c: messages.get_message(c, site_id_for(c, site_slug), message_id)))


@messages_group.command("resend")
@site_option
@click.argument("message_id", type=ID)
@click.pass_context
def messages_resend(ctx: click.Context, site_slug: str, message_id: int) -> None:
    app = get_app(ctx)

    def work(c: Any) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        now = site_now(c, site_id, app.clock)
        return messages.resend_message(c, site_id, message_id, MessageRenderer(app.links), now)

    found = _run(ctx, work, write=True)
    click.echo(f"message {found['id']} queued again")


@click.group("templates")
def templates_group() -> None:
    """Email and SMS templates (Liquid), per locale."""


@templates_group.command("list")
@site_option
@json_option
@click.pass_context
def templates_list(ctx: click.Context, site_slug: str, as_json: bool) -> None:
    rows = _run(ctx, lambda c: templates.list_templates(c, site_id_for(c, site_slug)))
    if as_json:
        emit_json([r.as_dict() for r in rows])
        return
    emit_table(
        f"templates of {site_slug}",
        ["name", "channel", "locale", "base", "overridden"],
        [[r.name, r.channel, r.locale, r.base, r.overridden] for r in rows],
    )


@templates_group.command("save")
@site_option
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms"]), required=True)
@click.option("--locale", default="en", show_default=True)
@click.option("--subject", default=None, help="Email subject (Liquid).")
@click.option(
    "--text",
    "text_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File with the plain-text or SMS body.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File with the HTML body (email).",
)
@click.pass_context
def templates_save(
    ctx: click.Context,
    site_slug: str,
    name: str,
    channel: str,
    locale: str,
    subject: str | None,
    text_file: Path,
    html_file: Path | None,
) -> None:
    app = get_app(ctx)

    def work(c: Any) -> templates.TemplateVariant:
        site_id = site_id_for(c, site_slug)
        return templates.save_template(
            c,
            site_id,
            name,
            channel,
            locale,
            body_text=text_file.read_text(),
            subject=subject,
            body_html=html_file.read_text() if html_file else None,
            now=site_now(c, site_id, app.clock),
        )

    saved = _run(ctx, work, write=True)
    click.echo(f"saved {saved.channel} template {saved.name} ({saved.locale})")


@templates_group.command("delete")
@site_option
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms"]), default=None)
@click.option("--locale", default=None, help="Delete only this locale (resets a base template).")
@click.pass_context
def templates_delete(
    ctx: click.Context, site_slug: str, name: str, channel: str | None, locale: str | None
) -> None:
    removed = _run(
        ctx,
        lambda c: templates.delete_template(c, site_id_for(c, site_slug), name, channel, locale),
        write=True,
    )
    click.echo(f"deleted {removed} variant(s) of {name}")


@templates_group.command("preview")
@site_option
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms"]), required=True)
@click.option("--locale", default=None)
@click.option(
    "--customer",
    "customer_id",
    type=ID,
    default=None,
    help="Render for this customer instead of sample data.",
)
@click.pass_context
def templates_preview(
    ctx: click.Context,
    site_slug: str,
    name: str,
    channel: str,
    locale: str | None,
    customer_id: int | None,
) -> None:
    app = get_app(ctx)

    def work(c: Any) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        return message_preview.preview(
            c,
            app.links(),
            site_id,
            name,
            channel,
            locale=locale,
            customer_id=customer_id,
            now=site_now(c, site_id, app.clock),
        )

    emit_json(_run(ctx, work))


@templates_group.command("send-test")
@site_option
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms"]), required=True)
@click.option("--to", required=True, help="Email address or phone number.")
@click.option("--locale", default=None)
@click.option("--customer", "customer_id", type=ID, default=None)
@click.pass_context
def templates_send_test(
    ctx: click.Context,
    site_slug: str,
    name: str,
    channel: str,
    to: str,
    locale: str | None,
    customer_id: int | None,
) -> None:
    app = get_app(ctx)

    def work(c: Any) -> int:
        site_id = site_id_for(c, site_slug)
        return message_preview.send_test(
            c,
            app.links(),
            site_id,
            name,
            channel,
            to=to,
            customer_id=customer_id,
            locale=locale,
            now=site_now(c, site_id, app.clock),
        )

    click.echo(f"test message {_run(ctx, work, write=True)} queued; the worker delivers it")


@click.group("sandbox")
def sandbox_group() -> None:
    """The sandbox mailbox and phone of a sandbox site."""


@sandbox_group.command("mailbox")
@site_option
@click.option("--to", default=None, help="Only mail to this address.")
@json_option
@click.pass_context
def sandbox_mailbox(ctx: click.Context, site_slug: str, to: str | None, as_json: bool) -> None:
    rows = _run(ctx, lambda c: messages.sandbox_inbox(c, site_id_for(c, site_slug), "email", to=to))
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"sandbox mailbox of {site_slug}",
        ["id", "to", "subject", "at"],
        [[r["id"], r["to_addr"], r["subject"], r["created_at"]] for r in rows],
    )


@sandbox_group.command("phone")
@site_option
@click.option("--number", default=None, help="Only texts to or from this number.")
@json_option
@click.pass_context
def sandbox_phone(ctx: click.Context, site_slug: str, number: str | None, as_json: bool) -> None:
    rows = _run(
        ctx, lambda c: messages.sandbox_inbox(c, site_id_for(c, site_slug), "sms", to=number)
    )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        f"sandbox phone of {site_slug}",
        ["id", "direction", "from", "to", "text", "at"],
        [
            [r["id"], r["direction"], r["from_addr"], r["to_addr"], r["body_text"], r["created_at"]]
            for r in rows
        ],
    )


@sandbox_group.command("reply")
@site_option
@click.option("--from", "from_phone", required=True, help="The customer's number.")
@click.argument("body")
@click.pass_context
def sandbox_reply(ctx: click.Context, site_slug: str, from_phone: str, body: str) -> None:
    """Text the site as the customer would."""
    app = get_app(ctx)
    site_id = _run(ctx, lambda c: site_id_for(c, site_slug))
    try:
        texted = text_as_customer(app, site_id, from_phone, body, "cli")
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    result, answers = texted.result, texted.answers
    for line in ([result.reply] if result.reply else []) + answers:
        click.echo(line)
    if not result.reply and not answers:
        click.echo("(no automatic answer)")


@click.group("channels")
def channels_group() -> None:
    """Email and SMS providers of a site (SMTP, Twilio, sandbox)."""


@channels_group.command("show")
@site_option
@click.pass_context
def channels_show(ctx: click.Context, site_slug: str) -> None:
    app = get_app(ctx)

    def work(c: Any) -> list[dict[str, Any]]:
        site_id = site_id_for(c, site_slug)
        found = load_site_channels(c, site_id, app.secret_box_or_none())
        return [_shown(cfg, unreadable, site_slug) for cfg, unreadable in found.values()]

    emit_json(_run(ctx, work))


def _shown(config: ChannelConfig, unreadable: bool, site_slug: str) -> dict[str, Any]:
    """A provider as ``channels show`` prints it; a secret sealed under another key is set."""
    if not unreadable:
        return config.public()
    return {
        **config.public(),
        "secret_set": True,
        "secret_unreadable": unreadable_secret_error(site_slug, config.channel),
    }


@channels_group.command("set")
@site_option
@click.argument("channel", type=click.Choice(["email", "sms"]))
@click.argument("provider", type=click.Choice(["sandbox", "smtp", "twilio"]))
@click.option("--config", "config_json", default="{}", help="Provider settings as JSON.")
@click.option(
    "--secret-env",
    default=None,
    help="Name of an environment variable holding the password or auth token "
    "(kept out of the shell history).",
)
@click.pass_context
def channels_set(
    ctx: click.Context,
    site_slug: str,
    channel: str,
    provider: str,
    config_json: str,
    secret_env: str | None,
) -> None:
    try:
        config = json.loads(config_json)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--config") from None
    if not isinstance(config, dict):
        raise click.BadParameter("must be a JSON object of settings", param_hint="--config")
    secret = os.environ.get(secret_env) if secret_env else None
    if secret_env and secret is None:
        raise click.BadParameter(f"${secret_env} is not set", param_hint="--secret-env")
    app = get_app(ctx)

    def work(c: Any) -> dict[str, Any]:
        site_id = site_id_for(c, site_slug)
        saved = save_channel_config(
            c,
            site_id,
            channel,
            provider,
            config,
            secret,
            app.secret_box(),
            site_now(c, site_id, app.clock),
        )
        return saved.public()

    emit_json(_run(ctx, work, write=True))


COMMANDS = [messages_group, templates_group, sandbox_group, channels_group]
