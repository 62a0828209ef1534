"""``dunwell demo`` (a measured simulation) and ``dunwell demo-site`` (data for ``make run``)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import click
from rich.progress import Progress
from sqlalchemy import func, select

from dunwell.bootstrap import App
from dunwell.cli import get_app
from dunwell.cli.output import emit_json
from dunwell.services import ledger
from dunwell.services.api_keys import create_key
from dunwell.services.demo import add_subscriber, run_demo
from dunwell.services.demo_dashboard import DEMO_START_DAYS_AGO, build_dashboard_demo
from dunwell.services.sites import create_site, site_now
from dunwell.store.tables import sites


@click.command()
@click.option("--customers", default=200, show_default=True, help="Subscribers on the new site.")
@click.option("--days", default=40, show_default=True, help="Simulated days to run.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same figures.")
@click.option("--json", "as_json", is_flag=True, help="Print only the figures, as one JSON object.")
@click.pass_context
def demo(ctx: click.Context, customers: int, days: int, seed: int, as_json: bool) -> None:
    """Build a fresh sandbox site and run DAYS of renewals through the real worker."""
    app = get_app(ctx)
    if as_json:
        result = run_demo(app, customers, days, seed)
        emit_json(result.figures)
        return
    with Progress(transient=True) as progress:
        task = progress.add_task("simulating days", total=days)
        result = run_demo(
            app, customers, days, seed, progress=lambda d: progress.update(task, completed=d)
        )
    click.echo(f"site {result.site_slug}")
    emit_json(result.figures)


@click.command("demo-site")
@click.option("--if-empty", is_flag=True, help="Do nothing when any site exists.")
@click.option(
    "--history",
    is_flag=True,
    help="Two months of renewals, dunning and texts behind the dashboard, with a user per role.",
)
@click.option(
    "--password",
    envvar="DUNWELL_DEMO_PASSWORD",
    help="With --history: the demo users' password (random and printed when absent).",
)
@click.pass_context
def demo_site(ctx: click.Context, if_empty: bool, history: bool, password: str | None) -> None:
    """Create the sandbox site `demo`: a few subscribers, one card of each behaviour,
    or with --history a shop with two months behind it."""
    app = get_app(ctx)
    with app.connect() as conn:
        if if_empty and conn.execute(select(func.count()).select_from(sites)).scalar_one():
            click.echo("sites exist; no demo site created")
            return
    if history:
        _demo_with_history(app, password or secrets.token_urlsafe(12))
        return
    with app.begin() as conn:
        site_id = create_site(
            conn, app.clock, slug="demo", name="Demo Coffee Co.", support_email="help@demo.example"
        )
        now = site_now(conn, site_id, app.clock)
        plan = ledger.create_product(
            conn, site_id, "coffee-monthly", "Coffee, monthly", 1800, "USD", now
        )
        cards = [
            "4111111111111111",
            "4000000000009995",
            "4000000000005126",
            "4000000000009987",
            "4000000000000341",
        ]
        for n, card in enumerate(cards):
            add_subscriber(
                conn,
                site_id,
                f"sample{n}",
                card,
                plan,
                now,
                starts_at=now + timedelta(hours=1),
                number=n,
            )
        key = create_key(conn, site_id, "demo", "admin", now)
    click.echo(
        "created sandbox site `demo`; advance it with `dunwell clock advance --site demo 1d`"
    )
    click.echo(f"admin API key for `demo` (shown once): {key}")


def _demo_with_history(app: App, password: str) -> None:
    with Progress(transient=True) as progress:
        task = progress.add_task("building two months of demo history", total=DEMO_START_DAYS_AGO)
        built = build_dashboard_demo(
            app, password, progress=lambda d: progress.update(task, completed=d)
        )
    with app.begin() as conn:
        key = create_key(conn, built.site_id, "demo", "admin", app.clock.now())
    base = app.settings.public_url.rstrip("/")
    click.echo(f"created sandbox site `{built.slug}` with two months of history")
    click.echo(f"dashboard: {base}/dashboard")
    for role, email in built.users.items():
        click.echo(f"  {role.value:<14} {email}")
    click.echo(f"password for these users (shown once): {password}")
    click.echo(f"admin API key for `{built.slug}` (shown once): {key}")


COMMANDS = (demo, demo_site)
