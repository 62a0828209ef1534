"""SIGTERM in the middle of the work: finish the stage in hand, give the leases back, exit 0.

A shop of subscribers due now (half the cards decline, each customer has
an email address, a few also owe a one-off invoice) is handed to a real
``dunwell worker`` process, or to ``dunwell serve --with-worker``. A few
passes in, the process gets SIGTERM. It must exit 0 before the work is
done, holding no lease; the next worker must then finish the work with
every subscription billed once, every invoice charged once and every email
sent once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from dunwell.bootstrap import bootstrap
from dunwell.clock import SystemClock
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import create_site, site_now
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.db import make_engine
from dunwell.store.migrate import upgrade
from dunwell.worker import LEASED_TABLES
from tests.e2e.conftest import Cli, free_port
from tests.integration.factories import GOOD, INSUFFICIENT

SUBSCRIBERS = 400
#: One-off invoices of declining customers, besides the renewals.
STRAYS = 4
INVOICES = SUBSCRIBERS + STRAYS
#: SIGTERM is sent once this many charges are in: a few passes into the work.
STOP_AFTER = 25


def build_shop(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    app = bootstrap(Settings(database_url=url), engine=engine, clock=SystemClock())
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug="shutdown", name="Shutdown test")
        now = site_now(conn, site_id, app.clock)
        plan = ledger.create_product(conn, site_id, "plan", "Plan", 1200, "USD", now)
        for n in range(SUBSCRIBERS):
            new = ledger.NewCustomer(first_name=f"C{n}", email=f"c{n}@x.test")
            customer = ledger.create_customer(conn, site_id, new, now)
            card = tokenize((GOOD, INSUFFICIENT)[n % 2], 12, 2031)
            ledger.attach_payment_method(conn, site_id, customer, "sandbox", card, now)
            ledger.create_subscription(conn, site_id, customer, [ledger.Item(plan)], now)
            if n % 2 and n < 2 * STRAYS:
                ledger.create_invoice(conn, site_id, customer, 900, "USD", now)
    app.close()


def lease_the_strays(url: str, owner: str) -> None:
    """Lease the one-off invoices' cycles to ``owner`` for an hour.

    This is what a batch of that worker that raised (say, the database went
    away mid-batch) leaves behind: rows no other worker may take until the
    lease expires.
    """
    t = tables
    engine = make_engine(url)
    with engine.begin() as conn:
        strays = select(t.invoices.c.id).where(t.invoices.c.subscription_id.is_(None))
        conn.execute(
            update(t.dunning_cycles)
            .where(t.dunning_cycles.c.invoice_id.in_(strays.scalar_subquery()))
            .values(lease_owner=owner, lease_until=SystemClock().now() + timedelta(hours=1))
        )
    engine.dispose()


def count(url: str, query: Any) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = int(conn.execute(query).scalar_one())
    engine.dispose()
    return found


def charges_made(url: str) -> int:
    return count(url, select(func.count()).select_from(tables.sandbox_charges))


def leases_held(url: str) -> int:
    return sum(
        count(url, select(func.count()).where(table.c.lease_owner.is_not(None)))
        for table in LEASED_TABLES
    )


def stop_mid_work(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Send SIGTERM a few passes into the work; the process must exit 0."""
    deadline = time.monotonic() + 120
    while charges_made(url) < STOP_AFTER:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the worker never started charging"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()


def assert_done_once(url: str) -> None:
    """Every subscription billed once, every invoice charged once, every email sent once."""
    t = tables
    engine = make_engine(url)
    with engine.connect() as conn:
        periods = conn.execute(select(t.subscriptions.c.periods_billed)).scalars().all()
        attempts = conn.execute(
            select(t.payment_attempts.c.invoice_id, t.payment_attempts.c.attempt_no)
        ).all()
        charges = conn.execute(select(func.count()).select_from(t.sandbox_charges)).scalar_one()
        emails = conn.execute(
            select(t.outbox.c.id, t.outbox.c.status).where(t.outbox.c.channel == "email")
        ).all()
        sends = conn.execute(
            select(t.message_attempts.c.outbox_id, t.message_attempts.c.outcome)
        ).all()
    engine.dispose()
    assert periods == [1] * SUBSCRIBERS
    assert sorted(n for _, n in attempts) == [1] * INVOICES
    assert charges == INVOICES
    assert len(emails) == SUBSCRIBERS // 2 + STRAYS  # one dunning email per decline
    assert {status for _, status in emails} == {"delivered"}
    assert Counter(outbox_id for outbox_id, _ in sends) == Counter(i for i, _ in emails)
    assert {outcome for _, outcome in sends} == {"sent"}


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line the process wrote, each of which must be one JSON object."""
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dunwell.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return make()


@pytest.fixture
def cli(database_url: str) -> Cli:
    build_shop(database_url)
    # Small batches, so SIGTERM lands with most of the work still to do.
    return Cli(
        database_url,
        batch_size="10",
        delivery_batch_size="10",
        poll_seconds="0.2",
        log_level="INFO",
        log_format="json",
    )


def test_a_worker_stopped_by_sigterm_exits_0_holding_no_lease_and_the_next_one_finishes(
    cli: Cli, database_url: str, tmp_path: Path
) -> None:
    lease_the_strays(database_url, "first")
    log = tmp_path / "worker.log"
    worker = cli.popen("worker", "--name", "first", log=log)
    stop_mid_work(worker, database_url, log)

    assert charges_made(database_url) < SUBSCRIBERS, "SIGTERM came after the work was done"
    assert leases_held(database_url) == 0  # its batches' own, and the strays
    lines = json_lines(log)
    passes = [line for line in lines if line["message"].startswith("pass:")]
    assert passes and all(p["worker"] == "first" and p["items"] > 0 for p in passes)
    assert list(passes[0]["counts"])[:2] == ["renewals", "cycles"]
    assert all(p["time"].endswith("+00:00") and p["duration_s"] > 0 for p in passes)
    assert any(line["message"] == "signal SIGTERM: finishing the stage in hand" for line in lines)
    assert lines[-1]["message"] == f"worker first stopped; {STRAYS} leases released"
    assert all("exception" not in line for line in lines)

    cli("worker", "--until-idle", "--name", "second")
    assert_done_once(database_url)
    assert leases_held(database_url) == 0


def test_serve_with_worker_stopped_by_sigterm_exits_0_and_its_work_completes_later(
    cli: Cli, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    server = cli.popen("--port", str(free_port()), "serve", "--with-worker", log=log)
    stop_mid_work(server, database_url, log)

    assert charges_made(database_url) < SUBSCRIBERS, "SIGTERM came after the work was done"
    assert leases_held(database_url) == 0
    messages = [line["message"] for line in json_lines(log)]
    assert any(m.startswith("worker ") and " stopped; " in m for m in messages)

    cli("worker", "--until-idle")
    assert_done_once(database_url)
