"""Fixtures shared by every tier: databases, clocks and a ready app.

Integration tests run on SQLite and on PostgreSQL. PostgreSQL tests use a
fresh database per test, copied from a migrated template. When the server
is unreachable they skip, unless ``DUNWELL_REQUIRE_POSTGRES=1`` (set by CI),
in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from dunwell.bootstrap import App, bootstrap
from dunwell.clock import FixedClock
from dunwell.settings import Settings
from dunwell.store.db import make_engine
from dunwell.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "DUNWELL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("DUNWELL_REQUIRE_POSTGRES") == "1"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _pg_dsn(database: str) -> str:
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def _pg_admin(sql: str) -> None:
    admin_db = make_url(PG_ADMIN_URL).database or "postgres"
    with psycopg.connect(_pg_dsn(admin_db), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, created once per test session."""
    name = f"dunwell_tpl_{uuid.uuid4().hex[:8]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    engine = make_engine(pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def postgres_databases(pg_template: str) -> Iterator[Callable[[], str]]:
    """Make fresh migrated PostgreSQL databases; all are dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"dunwell_t_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        made.append(name)
        return pg_url(name)

    yield make
    for name in made:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    return postgres_databases()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    built = bootstrap(
        Settings(database_url=db_url, lease_seconds=30, secret_key="test-secret-key"), clock=clock
    )
    yield built
    built.close()
