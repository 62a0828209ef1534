"""The ``dunwell`` command.

Every setting is a ``--flag`` of the top-level command and a ``DUNWELL_*``
environment variable (the flag wins): ``dunwell --database-url ... worker``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import click

from dunwell.settings import ENV_PREFIX, Settings, setting_names

if TYPE_CHECKING:
    from dunwell.bootstrap import App


def _setting_options(func: Any) -> Any:
    for name, kind in reversed(setting_names()):
        func = click.option(
            f"--{name.replace('_', '-')}",
            name,
            type=kind,
            default=None,
            help=f"Overrides {ENV_PREFIX}{name.upper()}.",
        )(func)
    return func


class _LazyGroup(click.Group):
    """Imports the command modules only when a command needs them.

    ``dunwell concierge parse`` is meant to be started by other programs for
    each batch of texts; it loads the understanding only, not the database
    layer, the web stack and every other command.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _register(only_concierge=cmd_name == "concierge")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup)
@_setting_options
@click.pass_context
def main(ctx: click.Context, /, **overrides: Any) -> None:
    """Dunwell: failed-payment recovery (retries, dunning messages, final actions)."""
    try:
        settings = Settings.from_env().with_overrides(**overrides)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Alembic announces every plugin it loads at INFO; only its warnings matter.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = settings


def require_secret_key(app: App) -> None:
    """Refuse to start a long-running process that could not sign or decrypt."""
    from dunwell.security.keys import MissingSecretKey

    try:
        app.secret_key  # noqa: B018 - resolving it is the check
    except MissingSecretKey as error:
        raise click.ClickException(str(error)) from None


def get_app(ctx: click.Context) -> App:
    """The app for this command, built once and closed when the command ends."""
    root = ctx.find_root()
    app: App | None = root.meta.get("dunwell.app")
    if app is None:
        from dunwell.bootstrap import bootstrap

        app = bootstrap(root.obj)
        root.meta["dunwell.app"] = app
        root.call_on_close(app.close)
    return app


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the database schema."""
    from dunwell.store.migrate import upgrade

    app = get_app(ctx)
    upgrade(app.engine)
    click.echo(f"database at head: {app.engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.option("--with-worker", is_flag=True, help="Also run the worker in this process.")
@click.pass_context
def serve(ctx: click.Context, with_worker: bool) -> None:
    """Serve the API (and, with --with-worker, process due work) on --host/--port."""
    import uvicorn

    from dunwell.api.app import create_app
    from dunwell.worker import Worker

    app = get_app(ctx)
    require_secret_key(app)
    worker: Worker | None = None
    thread: threading.Thread | None = None
    if with_worker:
        worker = Worker(app)
        thread = threading.Thread(target=worker.run_forever, name="dunwell-worker", daemon=True)
        thread.start()
    try:
        uvicorn.run(
            create_app(app),
            host=app.settings.host,
            port=app.settings.port,
            log_level=app.settings.log_level.lower(),
        )
    finally:
        if worker is not None and thread is not None:
            worker.stopping.set()
            thread.join(timeout=30)


@main.command()
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due instead of polling.")
@click.option("--name", default=None, help="Worker name recorded on its leases.")
@click.pass_context
def worker(ctx: click.Context, until_idle: bool, name: str | None) -> None:
    """Bill renewals and collect due invoices (any number may run on PostgreSQL)."""
    from dunwell.worker import Worker

    app = get_app(ctx)
    require_secret_key(app)
    runner = Worker(app, name=name)
    if until_idle:
        click.echo(f"processed {runner.run_until_idle()} items")
        return
    runner.install_signal_handlers()
    runner.run_forever()


_registered: set[str] = set()


def _register(*, only_concierge: bool = False) -> None:
    if "concierge" not in _registered:
        from dunwell.cli import concierge_commands

        main.add_command(concierge_commands.concierge)
        _registered.add("concierge")
    if only_concierge or "all" in _registered:
        return
    from dunwell.cli import (
        compliance_commands,
        demo_commands,
        ledger_commands,
        messaging_commands,
        sms_commands,
        webhook_commands,
    )

    for command in (
        *ledger_commands.COMMANDS,
        *demo_commands.COMMANDS,
        *messaging_commands.COMMANDS,
        *compliance_commands.COMMANDS,
        sms_commands.sms,
        *webhook_commands.COMMANDS,
    ):
        main.add_command(command)
    _registered.add("all")
