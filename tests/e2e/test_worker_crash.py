"""Kill the worker with SIGKILL at random points and compare with an undisturbed run.

Two identical shops of 1,000 subscribers (a mix of good, soft-declining,
recovering, hard-declining and timing-out cards) go through 16 days of
dunning. One worker runs undisturbed; the other is killed again and again
mid-batch, restarted once its leases have expired, and must end in exactly
the same state, with every charge made once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dunwell.bootstrap import bootstrap
from dunwell.clock import SystemClock
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import advance_clock, create_site
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.db import make_engine
from dunwell.store.migrate import upgrade
from tests.e2e.conftest import Cli
from tests.integration.factories import (
    DECLINE_ALWAYS,
    EXPIRED,
    GOOD,
    INSUFFICIENT,
    LOST,
    RECOVERS,
    TIMEOUT,
)

EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBSCRIBERS = 1000
DAYS = 16
LEASE_SECONDS = 1
CARDS = (GOOD, GOOD, GOOD, INSUFFICIENT, RECOVERS, LOST, EXPIRED, DECLINE_ALWAYS, TIMEOUT)


def build_shop(url: str) -> int:
    engine = make_engine(url)
    upgrade(engine)
    app = bootstrap(Settings(database_url=url), engine=engine, clock=SystemClock())
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug="crash", name="Crash test", clock_start=EPOCH)
        now = conn.execute(select(tables.sites.c.clock_now)).scalar_one()
        plan = ledger.create_product(conn, site_id, "plan", "Plan", 1200, "USD", now)
        for n in range(SUBSCRIBERS):
            customer = ledger.create_customer(
                conn, site_id, ledger.NewCustomer(first_name=f"C{n}"), now
            )
            card = tokenize(CARDS[n % len(CARDS)], 12, 2031)
            ledger.attach_payment_method(conn, site_id, customer, "sandbox", card, now)
            starts = now + timedelta(hours=(n % 3) * 24 + n % 7)
            ledger.create_subscription(
                conn, site_id, customer, [ledger.Item(plan)], now, starts_at=starts
            )
    app.close()
    return site_id


def advance_one_day(url: str, site_id: int) -> None:
    engine = make_engine(url)
    app = bootstrap(Settings(database_url=url), engine=engine)
    with app.begin() as conn:
        advance_clock(conn, site_id, timedelta(days=1))
    app.close()


def run_days(url: str, site_id: int, kill: random.Random | None, log: Path) -> int:
    """Run the days; with ``kill``, SIGKILL workers at random moments. Returns kills made."""
    cli = Cli(url, batch_size="5", lease_seconds=str(LEASE_SECONDS))
    kills = 0
    for _ in range(DAYS):
        while True:
            worker = cli.popen("worker", "--until-idle", log=log)
            if kill is not None and kill.random() < 0.8:
                time.sleep(kill.uniform(0.4, 0.9))  # start-up takes about 0.4 s
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
                    kills += 1
                    time.sleep(LEASE_SECONDS + 0.2)  # let its leases expire
                    continue
            assert worker.wait(timeout=300) == 0, log.read_text()
            break
        advance_one_day(url, site_id)
    return kills


def snapshot(url: str) -> dict[str, Any]:
    """The end state, keyed by what things are rather than by row ids.

    Ids may legitimately differ: a PostgreSQL sequence is not rolled back
    with the killed transaction that drew from it. An invoice is named by
    (subscription, period), and every key that embeds an invoice id is
    rewritten with that name.
    """
    engine = make_engine(url)
    t = tables
    with engine.connect() as conn:
        name = {
            r.id: (r.subscription_id, r.period)
            for r in conn.execute(
                select(t.invoices.c.id, t.invoices.c.subscription_id, t.invoices.c.period)
            )
        }

        def rows(query: Any, invoice_column: int | None = 0) -> list[tuple[Any, ...]]:
            out = []
            for row in conn.execute(query):
                values = list(row)
                if invoice_column is not None:
                    values[invoice_column] = name[values[invoice_column]]
                out.append(tuple(values))
            return sorted(out, key=repr)

        def rename(key: str, sep: str, position: int) -> str:
            parts = key.split(sep)
            parts[position] = repr(name[int(parts[position])])
            return sep.join(parts)

        state = {
            "invoices": rows(
                select(
                    t.invoices.c.id,
                    t.invoices.c.status,
                    t.invoices.c.amount_paid_minor,
                    t.invoices.c.paid_at,
                    t.invoices.c.closed_at,
                )
            ),
            "cycles": rows(
                select(
                    t.dunning_cycles.c.invoice_id,
                    t.dunning_cycles.c.phase,
                    t.dunning_cycles.c.attempts,
                    t.dunning_cycles.c.outcome,
                    t.dunning_cycles.c.steps_done_through,
                    t.dunning_cycles.c.finalized,
                    t.dunning_cycles.c.next_run_at,
                    t.dunning_cycles.c.lease_owner,
                )
            ),
            "attempts": rows(
                select(
                    t.payment_attempts.c.invoice_id,
                    t.payment_attempts.c.attempt_no,
                    t.payment_attempts.c.status,
                    t.payment_attempts.c.decline_code,
                    t.payment_attempts.c.created_at,
                )
            ),
            "charges": sorted(
                (rename(r.idempotency_key, "-", 2), r.status)
                for r in conn.execute(
                    select(t.sandbox_charges.c.idempotency_key, t.sandbox_charges.c.status)
                )
            ),
            "subscriptions": rows(
                select(
                    t.subscriptions.c.id,
                    t.subscriptions.c.status,
                    t.subscriptions.c.periods_billed,
                ),
                invoice_column=None,
            ),
            "outbox": sorted(
                (rename(r.dedupe_key, ":", 0), r.template)
                for r in conn.execute(select(t.outbox.c.dedupe_key, t.outbox.c.template))
            ),
            "events": sorted(
                Counter(
                    (r.type, name.get(r.invoice_id), r.subscription_id)
                    for r in conn.execute(
                        select(t.events.c.type, t.events.c.invoice_id, t.events.c.subscription_id)
                    )
                ).items(),
                key=repr,
            ),
        }
    engine.dispose()
    return state


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'calm.db'}", f"sqlite:///{tmp_path / 'crashed.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return make(), make()


@pytest.mark.slow
def test_a_worker_killed_at_random_points_ends_as_an_undisturbed_run(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    calm, crashed = two_databases
    site_id = build_shop(calm)
    assert build_shop(crashed) == site_id

    run_days(calm, site_id, None, tmp_path / "calm.log")
    kills = run_days(crashed, site_id, random.Random(20261122), tmp_path / "crashed.log")

    expected, got = snapshot(calm), snapshot(crashed)
    for part in expected:
        assert got[part] == expected[part], f"{part} differs after {kills} kills"
    assert kills >= 5, "the test must actually interrupt the worker"
    # Every charge the gateway saw was made once, under its attempt's key.
    keys = [key for key, _ in got["charges"]]
    assert len(keys) == len(set(keys))
    charged = [a for a in got["attempts"] if a[3] != "gateway_timeout"]
    assert len(got["charges"]) == len(charged)
    # The run did real dunning work: failures, retries, recoveries and final actions.
    statuses = Counter(row[1] for row in got["invoices"])
    assert statuses["paid"] > 0 and statuses["failed"] > 0
    assert any(a[1] >= 3 for a in got["attempts"])
