"""Reads by customer and by number on a large site, with and without planner figures.

    python bench/reads_by_key.py [--rows 200000] [--json]

Loads one SQLite site with ``--rows`` invoices, events and outbox texts
spread over 20,000 customers (plain batched inserts), then times the real
reads that look up one customer or one number: the dashboard's invoices,
timeline and latest messages for a customer, the hosted billing page's card
on file, the API's first page of failed messages, the Messages page's
latest sending and pending messages, the SMS frequency cap's
recent texts to a batch of numbers, and the delivery worker's claim of due
messages (none are due or failed: the outbox holds sent texts). Each is
timed with the ``sqlite_stat1`` figures written at migration, and again with
them removed (the planner's defaults, as before they were written). Prints
one JSON object: the median milliseconds per read in each case and the plan
used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, select

from dunwell.clock import FixedClock
from dunwell.services.customer_records import customer_events, customer_invoices
from dunwell.services.message_claims import claim_due_messages
from dunwell.services.messages import list_messages
from dunwell.services.sites import create_site
from dunwell.services.sms_gate import SmsGate
from dunwell.store import tables
from dunwell.store.db import make_engine, writer
from dunwell.store.migrate import upgrade

CUSTOMERS = 20_000
CHUNK = 20_000
REPEATS = 15
START = datetime(2026, 11, 2, 12, 0)


def _phone(n: int) -> str:
    return f"+1415{n:07d}"


def load(engine: Engine, rows: int) -> tuple[int, int, datetime]:
    """One site: customers, cards, and ``rows`` invoices, events and sent texts."""
    clock = FixedClock(START)
    with writer(engine).begin() as conn:
        site_id = create_site(conn, clock, slug="big", name="Big")
        now: datetime = conn.execute(select(tables.sites.c.clock_now)).scalar_one()
        conn.execute(
            insert(tables.customers),
            [
                {
                    "site_id": site_id,
                    "first_name": f"c{n}",
                    "last_name": "",
                    "phone": _phone(n),
                    "created_at": now,
                }
                for n in range(CUSTOMERS)
            ],
        )
        first = conn.execute(select(tables.customers.c.id).limit(1)).scalar_one()
        conn.execute(
            insert(tables.payment_methods),
            [
                {
                    "site_id": site_id,
                    "customer_id": first + n,
                    "gateway": "sandbox",
                    "token": f"tok_{n}",
                    "brand": "visa",
                    "last4": "4242",
                    "exp_month": 12,
                    "exp_year": 2031,
                    "is_default": True,
                    "created_at": now,
                }
                for n in range(CUSTOMERS)
            ],
        )
    for start in range(0, rows, CHUNK):
        numbers = range(start, min(start + CHUNK, rows))
        with writer(engine).begin() as conn:
            _load_chunk(conn, site_id, first, now, numbers)
    return site_id, first, now


def _load_chunk(conn: Connection, site_id: int, first: int, now: datetime, numbers: range) -> None:
    conn.execute(
        insert(tables.invoices),
        [
            {
                "site_id": site_id,
                "customer_id": first + n % CUSTOMERS,
                "number": f"INV-{n}",
                "collection": "automatic",
                "net_terms_days": 0,
                "status": "paid",
                "currency": "USD",
                "amount_due_minor": 1000,
                "amount_paid_minor": 1000,
                "issued_at": now,
                "due_at": now,
            }
            for n in numbers
        ],
    )
    conn.execute(
        insert(tables.events),
        [
            {
                "site_id": site_id,
                "type": "invoice.paid",
                "customer_id": first + n % CUSTOMERS,
                "data": {"n": n},
                "occurred_at": now,
            }
            for n in numbers
        ],
    )
    conn.execute(
        insert(tables.outbox),
        [
            {
                "site_id": site_id,
                "channel": "sms",
                "dedupe_key": f"bench-{n}",
                "customer_id": first + n % CUSTOMERS,
                "recipient": _phone(n % CUSTOMERS),
                "payload": {},
                "status": "sent",
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now,
                "sent_at": now - timedelta(hours=1),
            }
            for n in numbers
        ],
    )


def reads(site_id: int, first: int, now: datetime) -> dict[str, Callable[[Connection], Any]]:
    customer = first + CUSTOMERS // 2
    numbers = {(site_id, _phone(n)) for n in range(100, 150)}
    pm = tables.payment_methods
    return {
        "customer_invoices": lambda conn: customer_invoices(conn, site_id, customer),
        "customer_timeline": lambda conn: customer_events(conn, site_id, customer),
        "customer_messages": lambda conn: list_messages(
            conn, site_id, customer_id=customer, limit=20, newest_first=True
        ),
        "card_on_file": lambda conn: conn.execute(
            select(pm.c.brand, pm.c.last4).where(
                pm.c.site_id == site_id, pm.c.customer_id == customer, pm.c.is_default.is_(True)
            )
        ).all(),
        # No message failed, the worst case: a walk of the site finds nothing to stop at.
        "failed_messages_page": lambda conn: list_messages(
            conn, site_id, status="failed", limit=100
        ),
        # Newest first, as the dashboard's Messages page asks; nothing is in
        # flight, so again a walk of the site finds nothing to stop at.
        "sending_messages_page": lambda conn: list_messages(
            conn, site_id, status="sending", limit=50, newest_first=True
        ),
        "pending_messages_page": lambda conn: list_messages(
            conn, site_id, status="pending", limit=50, newest_first=True
        ),
        "frequency_cap_50_numbers": lambda conn: SmsGate(conn, now)._recent_sends(numbers, now),
        # Nothing is pending, so the claim takes nothing: what is timed is finding that out.
        "delivery_claim": lambda conn: claim_due_messages(
            conn, "bench", now, now + timedelta(minutes=1), 50
        ),
    }


def _first_plan(engine: Engine, conn: Connection, read: Callable[[Connection], Any]) -> str:
    """The plan SQLite chose for the read's first query (each read has one)."""
    plans: list[str] = []

    def keep(raw: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not plans and statement.lstrip().startswith(("SELECT", "UPDATE")):
            rows = raw.connection.dbapi_connection.execute(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            )
            plans.append(" | ".join(str(row[-1]) for row in rows))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        read(conn)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return plans[0]


def time_reads(engine: Engine, site_id: int, first: int, now: datetime) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, read in reads(site_id, first, now).items():
        with engine.connect() as conn:
            plan = _first_plan(engine, conn, read)
            took = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                read(conn)
                took.append((time.perf_counter() - started) * 1000)
        results[name] = {"median_ms": round(statistics.median(took), 3), "plan": plan}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'reads.db'}"
        engine = make_engine(url)
        upgrade(engine)
        site_id, first, now = load(engine, args.rows)
        with_figures = time_reads(engine, site_id, first, now)
        with writer(engine).begin() as conn:
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
            conn.exec_driver_sql("ANALYZE sqlite_schema")
        engine.dispose()  # every connection reads the (now empty) figures afresh
        defaults = time_reads(engine, site_id, first, now)
        engine.dispose()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "customers": CUSTOMERS,
                "with_figures": with_figures,
                "sqlite_defaults": defaults,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
