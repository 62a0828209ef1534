"""One dunning tick over N failed invoices, by K real worker processes; prints JSON.

    python bench/dunning_tick.py --invoices 20000 --db sqlite|postgres --workers 1 --json

Loads N invoices due now, each for a customer with a declining sandbox card,
an email address and a mobile number, then starts K ``dunwell worker
--until-idle`` processes and times them until every invoice has been
handled: decision, sandbox charge, attempt row, the day-1 email and SMS
rendered into the outbox, events. Delivery is switched off for the run
(``DUNWELL_DELIVERY_BATCH_SIZE=0``) so the figure is the tick alone.

``rows_per_invoice`` counts every row the tick writes per invoice: the
rows it inserts (payment attempt, the sandbox gateway's charge record,
events, outbox messages) and the rows it updates (the cycle when it is
claimed and when it is recorded, the attempt's outcome, the invoice).

Two limits are measured in the same run, on the same database:

- ``raw_rows_per_s``: the same number of rows written with plain batched
  INSERTs into a scratch table as wide as the event log. ``ratio_to_raw``
  is the tick's rows per second over it.
- ``floor_invoices_per_s`` (skipped with ``--no-floor``): the rows this
  run's tick wrote, read back and written again into a second database
  loaded the same way, with the tick's own statements and transactions
  (claim, pending attempts, charge records, outcomes, events, messages,
  cycles) and no decisions, rendering or gateway logic. It is the most
  any worker could do here with this schema.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)

from dunwell.bootstrap import bootstrap
from dunwell.domain.states import Collection
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.claims import claim_due_cycles
from dunwell.services.sites import create_site
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.bulk import bulk_insert, bulk_update
from dunwell.store.db import reproducible_commit
from dunwell.store.migrate import upgrade

# Midday UTC: the French customers' texts are inside the send window.
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DECLINES = "4000000000009995"  # insufficient funds, every time
SECRET = "bench-secret-key-of-at-least-32-characters"
DUNWELL = str(Path(sys.executable).parent / "dunwell")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


@dataclass(frozen=True)
class Card:
    """The card every loaded customer has on file."""

    gateway: str
    token: str
    gateway_customer: str | None = None


SANDBOX_DECLINES = Card("sandbox", tokenize(DECLINES, 12, 2031).token)


def load(url: str, count: int, card: Card = SANDBOX_DECLINES) -> int:
    """A site with ``count`` customers, each with ``card`` and an invoice due now."""
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    upgrade(app.engine)
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="tick", name="Tick", clock_start=NOON)
    # In slices, so a million invoices load in bounded memory.
    for first in range(0, count, LOAD_SLICE):
        with app.begin() as conn:
            _load_slice(conn, site, card, range(first, min(count, first + LOAD_SLICE)))
    app.close()
    return site


LOAD_SLICE = 50_000


def _load_slice(conn: Any, site: int, card: Card, numbers: range) -> None:
    customers = _ids(
        conn,
        tables.customers,
        [
            {
                "site_id": site,
                "first_name": f"C{n}",
                "last_name": "",
                "email": f"c{n}@x.test",
                "phone": f"+336{12000000 + n:08d}",
                "created_at": NOON,
            }
            for n in numbers
        ],
    )
    conn.execute(
        insert(tables.payment_methods),
        [
            {
                "site_id": site,
                "customer_id": c,
                "gateway": card.gateway,
                "token": card.token,
                "gateway_customer": card.gateway_customer,
                "brand": "visa",
                "last4": "9995",
                "exp_month": 12,
                "exp_year": 2031,
                "is_default": True,
                "created_at": NOON,
            }
            for c in customers
        ],
    )
    invoices = _ids(
        conn,
        tables.invoices,
        [
            {
                "site_id": site,
                "customer_id": c,
                "number": f"T-{n}",
                "collection": "automatic",
                "net_terms_days": 0,
                "status": "open",
                "currency": "USD",
                "amount_due_minor": 1000,
                "amount_paid_minor": 0,
                "issued_at": NOON,
                "due_at": NOON,
            }
            for n, c in zip(numbers, customers, strict=True)
        ],
    )
    conn.execute(
        insert(tables.dunning_cycles),
        [ledger.new_cycle_row(site, i, Collection.AUTOMATIC, NOON, NOON) for i in invoices],
    )


def _ids(conn: Any, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [row.id for row in result]


def run_workers(
    url: str, workers: int, batch: int, settings: dict[str, str] | None = None
) -> tuple[float, float]:
    """Seconds until every worker is idle, and the largest worker's peak RSS in MB.

    ``settings`` adds ``DUNWELL_*`` variables to the workers' environment.
    """
    env = {
        **os.environ,
        "DUNWELL_DATABASE_URL": url,
        "DUNWELL_SECRET_KEY": SECRET,
        "DUNWELL_DELIVERY_BATCH_SIZE": "0",
        "DUNWELL_BATCH_SIZE": str(batch),
        "DUNWELL_LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [DUNWELL, "worker", "--until-idle", "--name", f"tick-{k}"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for k in range(workers)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a worker failed")
    seconds = time.perf_counter() - started
    return seconds, round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def floor_invoices_per_s(done_url: str, fresh_url: str, site: int, batch: int) -> float:
    """The tick's own rows written again with its statements and no logic; invoices/s.

    ``fresh_url`` was loaded like ``done_url`` was before the tick, so ids
    match. Per batch, as the worker: one transaction claims the cycles,
    reads what the decision needs and inserts the pending attempts; one
    records the charges; one checks the leases and writes outcomes,
    invoices, events, messages and cycles.
    """
    done = bootstrap(Settings(database_url=done_url, secret_key=SECRET))
    with done.connect() as conn:
        by_invoice = _written_by_invoice(conn, site)
    done.close()
    fresh = bootstrap(Settings(database_url=fresh_url, secret_key=SECRET))
    cycles = tables.dunning_cycles
    started = time.perf_counter()
    handled = 0
    while True:
        lease = datetime.now(UTC) + timedelta(minutes=5)
        with fresh.begin() as conn:
            reproducible_commit(conn)
            ids = claim_due_cycles(conn, "floor", NOON, lease, batch)
            if not ids:
                break
            loaded = conn.execute(
                select(cycles, tables.invoices.c.customer_id, tables.invoices.c.amount_due_minor)
                .join(tables.invoices, tables.invoices.c.id == cycles.c.invoice_id)
                .where(cycles.c.id.in_(ids))
            ).all()
            rows = [by_invoice[row.invoice_id] for row in loaded]
            bulk_insert(
                conn,
                tables.payment_attempts,
                [{**r["attempt"], **PENDING} for r in rows],
                ignore_conflicts_on=["idempotency_key"],
            )
        with fresh.begin() as conn:
            reproducible_commit(conn)
            bulk_insert(
                conn,
                tables.sandbox_charges,
                [r["charge"] for r in rows],
                ignore_conflicts_on=["idempotency_key"],
            )
        with fresh.begin() as conn:
            conn.execute(
                select(cycles.c.id, cycles.c.revision).where(
                    cycles.c.id.in_(ids), cycles.c.lease_owner == "floor"
                )
            ).all()
            bulk_update(
                conn,
                tables.payment_attempts,
                [r["outcome"] for r in rows],
                where=("idempotency_key", "b_key"),
            )
            bulk_update(conn, tables.invoices, [r["invoice"] for r in rows], where=("id", "b_id"))
            bulk_insert(conn, tables.events, [e for r in rows for e in r["events"]])
            bulk_insert(
                conn,
                tables.outbox,
                [m for r in rows for m in r["outbox"]],
                ignore_conflicts_on=["dedupe_key"],
            )
            bulk_update(
                conn,
                cycles,
                [r["cycle"] for r in rows],
                where=("id", "b_id"),
                set_sql={"lease_owner": "NULL", "lease_until": "NULL"},
            )
        handled += len(ids)
    seconds = time.perf_counter() - started
    fresh.close()
    return handled / seconds


#: What an attempt's row holds before its charge is recorded.
PENDING = {
    "status": "pending",
    "decline_code": None,
    "decline_class": None,
    "gateway_reference": None,
    "completed_at": None,
}


def _written_by_invoice(conn: Any, site: int) -> dict[int, dict[str, Any]]:
    """Every row the tick wrote, as values to write again, by invoice id."""
    t = tables
    found: dict[int, dict[str, Any]] = {}
    for row in conn.execute(select(t.payment_attempts).where(t.payment_attempts.c.site_id == site)):
        values = _values(row, t.payment_attempts)
        outcome = {k: values[k] for k in PENDING}
        found[row.invoice_id] = {
            "attempt": {k: v for k, v in values.items() if k not in PENDING},
            "outcome": {**outcome, "b_key": row.idempotency_key},
            "events": [],
            "outbox": [],
        }
    invoice_of = {r["outcome"]["b_key"]: invoice_id for invoice_id, r in found.items()}
    for row in conn.execute(select(t.sandbox_charges)):
        found[invoice_of[row.idempotency_key]]["charge"] = _values(row, t.sandbox_charges)
    for row in conn.execute(select(t.events).where(t.events.c.site_id == site)):
        found[row.invoice_id]["events"].append(_values(row, t.events))
    for row in conn.execute(select(t.outbox).where(t.outbox.c.site_id == site)):
        found[row.invoice_id]["outbox"].append(_values(row, t.outbox))
    for row in conn.execute(
        select(t.invoices.c.id, t.invoices.c.status, t.invoices.c.closed_at).where(
            t.invoices.c.site_id == site
        )
    ):
        found[row.id]["invoice"] = {
            "b_id": row.id,
            "status": row.status,
            "closed_at": row.closed_at,
        }
    for row in conn.execute(select(t.dunning_cycles).where(t.dunning_cycles.c.site_id == site)):
        values = _values(row, t.dunning_cycles)
        for name in ("lease_owner", "lease_until", "site_id", "invoice_id", "collection", "due_at"):
            values.pop(name)
        found[row.invoice_id]["cycle"] = {**values, "b_id": row.id}
    return found


def _values(row: Any, table: Table) -> dict[str, Any]:
    """A row's columns by name, without its id (the database gives a new one)."""
    return {c.name: getattr(row, c.name) for c in table.columns if c.name != "id"}


def written_rows(url: str, site: int) -> dict[str, int]:
    """Rows the tick inserted and updated, and how many invoices it handled."""
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    counts = {}
    with app.connect() as conn:
        for table in (tables.payment_attempts, tables.events, tables.outbox):
            counts[table.name] = conn.execute(
                select(func.count()).where(table.c.site_id == site)
            ).scalar_one()
        # The bench's site is the only one: every charge record is the tick's.
        counts["sandbox_charges"] = conn.execute(
            select(func.count()).select_from(tables.sandbox_charges)
        ).scalar_one()
        counts["handled"] = conn.execute(
            select(func.count()).where(
                tables.dunning_cycles.c.site_id == site, tables.dunning_cycles.c.attempts > 0
            )
        ).scalar_one()
        counts["invoices_changed"] = conn.execute(
            select(func.count()).where(
                tables.invoices.c.site_id == site, tables.invoices.c.status != "open"
            )
        ).scalar_one()
    app.close()
    # Updates: each cycle twice (claim, record), each attempt once (its outcome).
    counts["rows"] = (
        2 * counts["payment_attempts"]
        + counts["sandbox_charges"]
        + counts["events"]
        + counts["outbox"]
        + 2 * counts["handled"]
        + counts["invoices_changed"]
    )
    return counts


def raw_rows_per_s(url: str, rows: int) -> float:
    """Plain batched inserts of event-sized rows: the bound.

    At most ``RAW_ROWS_MAX`` rows are timed: the rate is steady long before
    that, and a million invoices' twelve million rows would only take longer.
    """
    rows = min(rows, RAW_ROWS_MAX)
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    scratch = Table(
        "bench_raw_rows",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("site_id", Integer),
        Column("type", String(64)),
        Column("invoice_id", Integer),
        Column("data", JSON),
    )
    scratch.create(app.engine, checkfirst=True)
    payload = [
        {
            "site_id": 1,
            "type": "payment.failed",
            "invoice_id": n,
            "data": {"attempt": 1, "decline_code": "insufficient_funds"},
        }
        for n in range(rows)
    ]
    started = time.perf_counter()
    for start in range(0, rows, 5000):
        with app.begin() as conn:
            conn.execute(insert(scratch), payload[start : start + 5000])
    elapsed = time.perf_counter() - started
    with app.begin() as conn:
        conn.execute(text("DROP TABLE bench_raw_rows"))
    app.close()
    return rows / elapsed


RAW_ROWS_MAX = 1_000_000


def database(kind: str, folder: str, purpose: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{Path(folder) / purpose}.db"
    name = f"dunwell_{purpose}_{os.getpid()}"
    admin = bootstrap(Settings(database_url=POSTGRES + "postgres", secret_key=SECRET))
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.close()
    return POSTGRES + name


def drop_database(url: str) -> None:
    if not url.startswith(POSTGRES):
        return
    admin = bootstrap(Settings(database_url=POSTGRES + "postgres", secret_key=SECRET))
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {url.removeprefix(POSTGRES)}"))
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-floor", action="store_true", help="skip the replayed floor")
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    floor: float | None = None
    with tempfile.TemporaryDirectory() as folder:
        url = database(args.db, folder, "tick")
        try:
            site = load(url, args.invoices)
            seconds, peak_rss_mb = run_workers(url, args.workers, args.batch)
            counts = written_rows(url, site)
            if counts["handled"] != args.invoices:
                raise SystemExit(f"only {counts['handled']} of {args.invoices} invoices handled")
            if counts["payment_attempts"] != args.invoices:
                raise SystemExit(f"{counts['payment_attempts']} attempts for {args.invoices}")
            rows = counts["rows"]
            raw = raw_rows_per_s(url, rows)
            if not args.no_floor:
                replay = database(args.db, folder, "floor")
                try:
                    load(replay, args.invoices)
                    floor = floor_invoices_per_s(url, replay, site, args.batch)
                finally:
                    drop_database(replay)
        finally:
            drop_database(url)
    per_s = args.invoices / seconds
    rows_per_invoice = rows / args.invoices
    print(
        json.dumps(
            {
                "invoices": args.invoices,
                "db": args.db,
                "workers": args.workers,
                "seconds": round(seconds, 3),
                "invoices_per_s": round(per_s),
                "rows_per_invoice": round(rows_per_invoice, 2),
                "raw_rows_per_s": round(raw),
                "ratio_to_raw": round(per_s * rows_per_invoice / raw, 3),
                "floor_invoices_per_s": None if floor is None else round(floor),
                "ratio_to_floor": None if floor is None else round(per_s / floor, 3),
                "peak_rss_mb": peak_rss_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
