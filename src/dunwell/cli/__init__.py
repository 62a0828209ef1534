"""The ``dunwell`` command.

Every setting is a ``--flag`` of the top-level command and a ``DUNWELL_*``
environment variable (the flag wins): ``dunwell --database-url ... worker``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from dunwell.logs import configure_logging
from dunwell.settings import ENV_PREFIX, Settings, setting_names

if TYPE_CHECKING:
    from dunwell.bootstrap import App
    from dunwell.worker import Worker

#: How long ``serve`` waits, after the server stopped, for its worker's batch.
SERVE_STOP_SECONDS = 30


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
        # migrate, serve and worker live in this module: nothing to load.
        if cmd_name not in self.commands:
            _register(only_concierge=cmd_name == "concierge")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        # Any command may need the key (to seal a secret, sign a link in a
        # rendered message): a missing one is the operator's to fix, so it
        # gets the same one-line message as serve and worker, not a traceback.
        try:
            return super().invoke(ctx)
        except RuntimeError as error:
            if _is_missing_key(error):
                raise click.ClickException(str(error)) from None
            raise


def _is_missing_key(error: RuntimeError) -> bool:
    # Imported only on an error: the key module loads SQLAlchemy, which
    # ``concierge parse`` never needs.
    from dunwell.security.keys import MissingSecretKey

    return isinstance(error, MissingSecretKey)


@click.group(cls=_LazyGroup)
@_setting_options
@click.pass_context
def main(ctx: click.Context, /, **overrides: Any) -> None:
    """Dunwell: failed-payment recovery (retries, dunning messages, final actions)."""
    try:
        settings = Settings.from_env().with_overrides(**overrides)
        configure_logging(settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    ctx.obj = settings


def require_secret_key(app: App) -> None:
    """Refuse to start a long-running process that could not sign or decrypt."""
    from dunwell.security.keys import MissingSecretKey

    try:
        app.secret_key  # noqa: B018 - resolving it is the check
    except MissingSecretKey as error:
        raise click.ClickException(str(error)) from None


def require_current_schema(app: App) -> None:
    """Refuse to start on a database whose schema does not match this code.

    An unreachable database is let through: the worker and the server's
    health check already wait for it and say so.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from dunwell.store.migrate import schema_problem

    try:
        problem = schema_problem(app.engine)
    except (OperationalError, InterfaceError):
        return
    if problem is not None:
        raise click.ClickException(problem)


def get_app(ctx: click.Context) -> App:
    """The app for this command, built once and closed when the command ends."""
    root = ctx.find_root()
    app: App | None = root.meta.get("dunwell.app")
    if app is None:
        from dunwell.bootstrap import bootstrap

        try:
            app = bootstrap(root.obj)
        except ValueError as error:  # a setting only checked when used, e.g. the database URL
            raise click.UsageError(str(error)) from None
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
    require_current_schema(app)
    worker: Worker | None = None
    thread: threading.Thread | None = None
    if with_worker:
        worker = Worker(app)
        thread = threading.Thread(target=worker.run_forever, name="dunwell-worker", daemon=True)
        thread.start()
    _survive_uvicorns_signal(worker)
    try:
        uvicorn.run(
            create_app(app),
            host=app.settings.host,
            port=app.settings.port,
            log_level=app.settings.log_level.lower(),
            # Its records go through our handler: same format, link tokens cut.
            log_config=None,
        )
    finally:
        if worker is not None and thread is not None:
            worker.stopping.set()
            thread.join(timeout=SERVE_STOP_SECONDS)
            if thread.is_alive():
                logging.getLogger("dunwell.worker").warning(
                    "worker still busy after %s s; exiting, its leases will expire",
                    SERVE_STOP_SECONDS,
                )


def _survive_uvicorns_signal(worker: Worker | None) -> None:
    """Keep SIGTERM and SIGINT from killing the process once uvicorn has shut down.

    uvicorn handles the signal with a graceful shutdown, then puts back the
    handlers it found and raises the signal again. With Python's defaults
    that second delivery would end the process (SIGTERM: killed, exit 143)
    before the worker thread finishes its batch; with these handlers
    ``serve`` joins the thread and exits 0.
    """
    if worker is not None:
        worker.install_signal_handlers()
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: None)


@main.command()
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due instead of polling.")
@click.option("--name", default=None, help="Worker name recorded on its leases.")
@click.pass_context
def worker(ctx: click.Context, until_idle: bool, name: str | None) -> None:
    """Bill renewals and collect due invoices (any number may run on PostgreSQL)."""
    from dunwell.worker import Worker

    app = get_app(ctx)
    require_secret_key(app)
    require_current_schema(app)
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
        user_commands,
        webhook_commands,
    )

    for command in (
        *ledger_commands.COMMANDS,
        *demo_commands.COMMANDS,
        *messaging_commands.COMMANDS,
        *compliance_commands.COMMANDS,
        sms_commands.sms,
        *webhook_commands.COMMANDS,
        *user_commands.COMMANDS,
    ):
        main.add_command(command)
    _registered.add("all")
