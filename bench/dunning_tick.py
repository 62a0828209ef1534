"""One dunning tick over N failed invoices, by K real worker processes; prints JSON.

    python bench/dunning_tick.py --invoices 20000 --db sqlite|postgres --workers 1 --json

Loads N invoices due now, each for a customer with a declining sandbox card,
an email address and a mobile number, then starts K ``dunwell worker
--until-idle`` processes and times them until every invoice has been
handled: decision, sandbox charge, attempt row, the day-1 email and SMS
rendered into the outbox, events. Delivery is switched off for the run
(``DUNWELL_DELIVERY_BATCH_SIZE=0``) so the figure is the tick alone.

The bound is measured in the same run: the same number of rows written
with plain batched inserts to the same database (a scratch table as wide
as the event log), the physical limit for this much writing.
``rows_per_invoice`` counts the rows inserted per invoice (attempts,
events, outbox); the two updates per invoice (cycle, invoice) are not
counted, so ``ratio_to_raw`` flatters the bound slightly.
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
from datetime import UTC, datetime
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
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import create_site
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.migrate import upgrade

# Midday UTC: the French customers' texts are inside the send window.
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DECLINES = "4000000000009995"  # insufficient funds, every time
SECRET = "bench-secret-key"
DUNWELL = str(Path(sys.executable).parent / "dunwell")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def load(url: str, count: int) -> int:
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    upgrade(app.engine)
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="tick", name="Tick", clock_start=NOON)
        token = tokenize(DECLINES, 12, 2031).token
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
                for n in range(count)
            ],
        )
        conn.execute(
            insert(tables.payment_methods),
            [
                {
                    "site_id": site,
                    "customer_id": c,
                    "gateway": "sandbox",
                    "token": token,
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
                for n, c in enumerate(customers)
            ],
        )
        conn.execute(
            insert(tables.dunning_cycles),
            [
                ledger.new_cycle_row(site, i, ledger.Collection.AUTOMATIC, NOON, NOON)
                for i in invoices
            ],
        )
    app.close()
    return site


def _ids(conn: Any, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [row.id for row in result]


def run_workers(url: str, workers: int, batch: int) -> float:
    env = {
        **os.environ,
        "DUNWELL_DATABASE_URL": url,
        "DUNWELL_SECRET_KEY": SECRET,
        "DUNWELL_DELIVERY_BATCH_SIZE": "0",
        "DUNWELL_BATCH_SIZE": str(batch),
        "DUNWELL_LOG_LEVEL": "WARNING",
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
    return time.perf_counter() - started


def inserted_rows(url: str, site: int) -> dict[str, int]:
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    counts = {}
    with app.connect() as conn:
        for table in (tables.payment_attempts, tables.events, tables.outbox):
            counts[table.name] = conn.execute(
                select(func.count()).where(table.c.site_id == site)
            ).scalar_one()
        handled = conn.execute(
            select(func.count()).where(
                tables.dunning_cycles.c.site_id == site, tables.dunning_cycles.c.attempts > 0
            )
        ).scalar_one()
    app.close()
    counts["handled"] = handled
    return counts


def raw_rows_per_s(url: str, rows: int) -> float:
    """Plain batched inserts of event-sized rows: the bound."""
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


def database(kind: str, folder: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{Path(folder) / 'tick.db'}"
    name = f"dunwell_tick_{os.getpid()}"
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
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = database(args.db, folder)
        try:
            site = load(url, args.invoices)
            seconds = run_workers(url, args.workers, args.batch)
            counts = inserted_rows(url, site)
            if counts["handled"] != args.invoices:
                raise SystemExit(f"only {counts['handled']} of {args.invoices} invoices handled")
            rows = counts["payment_attempts"] + counts["events"] + counts["outbox"]
            raw = raw_rows_per_s(url, rows)
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
                "peak_rss_mb": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
