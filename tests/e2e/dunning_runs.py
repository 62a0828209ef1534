"""Shared by the fault tests: a shop to dun, its test clock, and its end state.

A fault test builds two identical shops, runs one undisturbed and one under
a fault (a killed worker, a restarted database, a provider outage), and
compares their :func:`snapshot`. The snapshot names things by what they are
rather than by row ids, so two databases that did the same work compare
equal even when their sequences drew different numbers.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select
from sqlalchemy.exc import DBAPIError

from dunwell.bootstrap import bootstrap
from dunwell.clock import SystemClock
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.message_claims import DELIVERABLE
from dunwell.services.renewals import RENEWING
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
#: Good, soft-declining, recovering, hard-declining and timing-out cards.
CARDS = (GOOD, GOOD, GOOD, INSUFFICIENT, RECOVERS, LOST, EXPIRED, DECLINE_ALWAYS, TIMEOUT)


def build_shop(
    url: str,
    subscribers: int,
    *,
    slug: str = "crash",
    contacts: bool = False,
    secret_key: str = "",
) -> int:
    """A sandbox site whose subscriptions start over the first three days.

    With ``contacts`` every customer has an email address and a UK mobile
    number, so dunning writes emails and texts as well.
    """
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url, secret_key=secret_key)
    app = bootstrap(settings, engine=engine, clock=SystemClock())
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug=slug, name="Crash test", clock_start=EPOCH)
        now = conn.execute(
            select(tables.sites.c.clock_now).where(tables.sites.c.id == site_id)
        ).scalar_one()
        plan = ledger.create_product(conn, site_id, "plan", "Plan", 1200, "USD", now)
        for n in range(subscribers):
            who = ledger.NewCustomer(first_name=f"C{n}")
            if contacts:
                who = ledger.NewCustomer(
                    first_name=f"C{n}", email=f"c{n}@x.test", phone=f"+4479111{n:05d}"
                )
            customer = ledger.create_customer(conn, site_id, who, now)
            card = tokenize(CARDS[n % len(CARDS)], 12, 2031)
            ledger.attach_payment_method(conn, site_id, customer, "sandbox", card, now)
            starts = now + timedelta(hours=(n % 3) * 24 + n % 7)
            ledger.create_subscription(
                conn, site_id, customer, [ledger.Item(plan)], now, starts_at=starts
            )
    app.close()
    return site_id


def advance(url: str, site_id: int, by: timedelta = timedelta(days=1)) -> None:
    """Move the site's test clock forward, as ``dunwell clock advance`` would."""
    app = bootstrap(Settings(database_url=url), engine=make_engine(url))
    with app.begin() as conn:
        advance_clock(conn, site_id, by)
    app.close()


def due_work(conn: Connection) -> int:
    """Rows a worker still has to handle at the site's clock, leases ignored.

    Zero means a worker has finished everything due now. A row that a dead
    transaction or a killed worker left leased is still counted: it is
    still due. Work moves from subscriptions to cycles to the outbox, in
    the order counted here, so nothing in flight slips between the counts.
    """
    t = tables
    site_now = t.sites.c.clock_now
    queries = (
        select(func.count())
        .select_from(t.subscriptions.join(t.sites))
        .where(
            t.subscriptions.c.status.in_(RENEWING),
            t.subscriptions.c.external_id.is_(None),
            t.subscriptions.c.next_charge_at <= site_now,
        ),
        select(func.count())
        .select_from(t.dunning_cycles.join(t.sites))
        .where(t.dunning_cycles.c.next_run_at <= site_now),
        select(func.count())
        .select_from(t.outbox.join(t.sites))
        .where(
            t.outbox.c.channel.in_(DELIVERABLE),
            or_(
                t.outbox.c.status == "sending",
                and_(t.outbox.c.status == "pending", t.outbox.c.next_attempt_at <= site_now),
            ),
        ),
    )
    return sum(conn.execute(query).scalar_one() for query in queries)


def progress(conn: Connection) -> int:
    """Charges made and messages sent so far: how far the worker has got."""
    t = tables
    charges = conn.execute(select(func.count()).select_from(t.sandbox_charges)).scalar_one()
    sent = conn.execute(
        select(func.count())
        .select_from(t.outbox)
        .where(t.outbox.c.status.in_(("sent", "delivered")))
    ).scalar_one()
    return int(charges + sent)


@dataclass
class Run:
    """A shop worked by one long-running ``dunwell worker`` while the test moves its clock.

    The clock only moves once the worker has finished what is due
    (:meth:`finish`), so the work done at each moment of site time does not
    depend on how fast the worker is, and two runs of the same shop end in
    the same state whatever happened to their workers on the way.
    """

    url: str
    site_id: int
    cli: Cli
    log: Path
    worker: subprocess.Popen[bytes] | None = None
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)

    def start_worker(self) -> None:
        self.worker = self.cli.popen("worker", log=self.log)

    def kill_worker(self) -> None:
        """SIGKILL: no clean-up, leases and open attempts are left behind."""
        assert self.worker is not None
        self.worker.kill()
        self.worker.wait()
        self.worker = None

    def stop_worker(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit status."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGTERM)
        status = self.worker.wait(timeout=60)
        self.worker = None
        return status

    def assert_worker_alive(self) -> None:
        assert self.worker is not None and self.worker.poll() is None, (
            f"the worker exited with {self.worker and self.worker.returncode}:\n" + self.log_text()
        )

    def advance(self, by: timedelta) -> None:
        advance(self.url, self.site_id, by)

    def progress(self) -> int:
        with self.engine.connect() as conn:
            return progress(conn)

    def due_work(self) -> int:
        with self.engine.connect() as conn:
            return due_work(conn)

    def wait_for_progress(self, at_least: int, timeout: float = 60.0) -> None:
        """Wait until the worker has made ``at_least`` charges and sends in all."""
        deadline = time.monotonic() + timeout
        while self.progress() < at_least:
            self.assert_worker_alive()
            assert time.monotonic() < deadline, f"the worker made no progress:\n{self.log_text()}"
            time.sleep(0.002)

    def finish(self, timeout: float = 120.0) -> None:
        """Wait until nothing is due, seen twice a worker poll apart.

        A database that is down counts as work not done yet: the worker is
        expected to come back on its own, and so is this loop.
        """
        deadline, idle = time.monotonic() + timeout, 0
        while idle < 2:
            self.assert_worker_alive()
            assert time.monotonic() < deadline, f"work still due:\n{self.log_text()}"
            time.sleep(0.06)
            try:
                with self.engine.connect() as conn:
                    idle = idle + 1 if due_work(conn) == 0 else 0
            except DBAPIError:
                idle = 0

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.kill_worker()
        self.engine.dispose()


def polling_run(url: str, site_id: int, log: Path, lease_seconds: int, **settings: str) -> Run:
    """A :class:`Run` whose worker takes small batches, holds short leases and polls
    often, so a fault finds it in the middle of a day's work; ``settings`` adds to
    its environment (``DUNWELL_<NAME>``)."""
    cli = Cli(
        url,
        batch_size="5",
        delivery_batch_size="5",
        lease_seconds=str(lease_seconds),
        poll_seconds="0.05",
        **settings,
    )
    return Run(url, site_id, cli, log)


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
                (rename(r.dedupe_key, ":", 0), r.template, r.channel, r.status)
                for r in conn.execute(
                    select(
                        t.outbox.c.dedupe_key,
                        t.outbox.c.template,
                        t.outbox.c.channel,
                        t.outbox.c.status,
                    )
                )
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


def assert_same_end_state(
    expected: dict[str, Any], got: dict[str, Any], fault: str, parts: Sequence[str] = ()
) -> None:
    """Compare two snapshots part by part, naming the first part that differs."""
    for part in parts or expected:
        assert got[part] == expected[part], f"{part} differs after {fault}"


def assert_each_charge_made_once(state: dict[str, Any]) -> None:
    """Every charge the gateway saw was made once, under its attempt's key.

    A timed-out attempt never reached the sandbox gateway's ledger; every
    other attempt left exactly one charge there.
    """
    keys = [key for key, _ in state["charges"]]
    assert len(keys) == len(set(keys)), "an idempotency key was charged twice"
    charged = [a for a in state["attempts"] if a[3] != "gateway_timeout"]
    assert len(state["charges"]) == len(charged)


def assert_each_message_written_once(state: dict[str, Any]) -> None:
    keys = [row[0] for row in state["outbox"]]
    assert len(keys) == len(set(keys)), "an outbox message was written twice"


def assert_each_message_delivered_once(url: str) -> int:
    """Every email and text the outbox marks delivered reached the sandbox once.

    The mailbox keeps one row per Message-ID whatever happens, so for email
    the count is what matters; texts have no such key, so the phone's
    (number, body) pairs must match the outbox's exactly, repeats included.
    Returns how many messages were delivered.
    """
    t = tables
    engine = make_engine(url)
    with engine.connect() as conn:
        sent = conn.execute(
            select(t.outbox.c.channel, t.outbox.c.recipient, t.outbox.c.body_text).where(
                t.outbox.c.status == "delivered"
            )
        ).all()
        received = conn.execute(
            select(
                t.sandbox_messages.c.channel,
                t.sandbox_messages.c.to_addr,
                t.sandbox_messages.c.body_text,
            ).where(t.sandbox_messages.c.direction == "outbound")
        ).all()
    engine.dispose()
    emails = [row for row in sent if row.channel == "email"]
    assert len(emails) == sum(row.channel == "email" for row in received)
    texts = Counter((row.recipient, row.body_text) for row in sent if row.channel == "sms")
    assert Counter((r.to_addr, r.body_text) for r in received if r.channel == "sms") == texts
    return len(sent)
