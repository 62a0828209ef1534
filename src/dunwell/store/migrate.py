"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from dunwell.store.db import writer
from dunwell.store.planner_stats import seed_sqlite_statistics

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the newest schema."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        # After every upgrade, so indexes a migration adds get figures too.
        seed_sqlite_statistics(conn)


def schema_problem(engine: Engine) -> str | None:
    """Why the database's schema does not match this code, or None when it does.

    Checked when a server or worker starts: with a migration forgotten, each
    query would fail on a missing column and look like an outage, retried
    forever.
    """
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads = set(scripts.get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return None
    if not current:
        return "the database has no Dunwell schema yet: run `dunwell migrate`"
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current - known:
        return (
            f"the database schema ({', '.join(sorted(current))}) is newer than this Dunwell"
            f" ({', '.join(sorted(heads))}): upgrade Dunwell"
        )
    return (
        f"the database schema ({', '.join(sorted(current))}) is behind this Dunwell"
        f" ({', '.join(sorted(heads))}): run `dunwell migrate`"
    )
