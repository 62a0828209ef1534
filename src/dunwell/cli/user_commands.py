"""``dunwell users``: dashboard accounts, for the first owner and for recovery."""

from __future__ import annotations

import click

from dunwell.cli import get_app
from dunwell.cli.output import emit_json
from dunwell.services.console_users import create_user, list_users, set_password
from dunwell.services.errors import ServiceError
from dunwell.services.sites import site_id_for


@click.group()
def users() -> None:
    """Dashboard users: add, list, reset a password."""


def _password(value: str | None) -> str:
    if value:
        return value
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.option("--site", "slug", required=True, help="The site's slug.")
@click.option("--email", required=True)
@click.option("--name", default="", help="Shown in the dashboard; the email by default.")
@click.option(
    "--role",
    type=click.Choice(["owner", "configuration", "analytics", "support"]),
    default="owner",
    show_default=True,
)
@click.option(
    "--password",
    envvar="DUNWELL_USER_PASSWORD",
    help="Prompted for when absent (env DUNWELL_USER_PASSWORD).",
)
@click.pass_context
def add(
    ctx: click.Context, slug: str, email: str, name: str, role: str, password: str | None
) -> None:
    """Add a user to a site."""
    app = get_app(ctx)
    secret = _password(password)
    try:
        with app.begin() as conn:
            site_id = site_id_for(conn, slug)
            user_id = create_user(conn, site_id, email, name, role, secret, app.clock.now())
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {user_id} ({email.strip().lower()}, {role}) added to {slug}")


@users.command("list")
@click.option("--site", "slug", required=True)
@click.pass_context
def list_(ctx: click.Context, slug: str) -> None:
    """The site's users as JSON lines."""
    app = get_app(ctx)
    try:
        with app.connect() as conn:
            found = list_users(conn, site_id_for(conn, slug))
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    for user in found:
        emit_json(
            {
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "role": user.role.value,
                "disabled": user.disabled,
            }
        )


@users.command("set-password")
@click.option("--site", "slug", required=True)
@click.option("--email", required=True)
@click.option("--password", envvar="DUNWELL_USER_PASSWORD")
@click.pass_context
def set_password_command(ctx: click.Context, slug: str, email: str, password: str | None) -> None:
    """Set a user's password and sign them out everywhere."""
    app = get_app(ctx)
    secret = _password(password)
    try:
        with app.begin() as conn:
            site_id = site_id_for(conn, slug)
            match = [u for u in list_users(conn, site_id) if u.email == email.strip().lower()]
            if not match:
                raise click.ClickException(f"no user {email} on {slug}")
            set_password(conn, site_id, match[0].id, secret, app.clock.now())
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"password set for {email}")


COMMANDS = (users,)
