"""How fast one worker bills and collects renewals; prints one JSON object.

    python bench/worker_throughput.py --subscriptions 20000 [--database-url URL] [--batch 500]

Loads N subscriptions due now (one in four on a card that declines for
insufficient funds) with plain batched inserts, then times the real worker:
first the renewal day (invoice, charge, attempt, events and outbox rows for
each), then the next day's retries of the declined quarter.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select

from dunwell.bootstrap import App, bootstrap
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import advance_clock, create_site
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.migrate import upgrade
from dunwell.worker import Worker

CARDS = ("4111111111111111", "4111111111111111", "4111111111111111", "4000000000009995")


def load(app: App, count: int) -> int:
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug="bench", name="Bench")
        now: datetime = conn.execute(select(tables.sites.c.clock_now)).scalar_one()
        product = ledger.create_product(conn, site_id, "plan", "Plan", 1000, "USD", now)
        customers = _insert(
            conn,
            tables.customers,
            [
                {"site_id": site_id, "first_name": f"c{n}", "last_name": "", "created_at": now}
                for n in range(count)
            ],
        )
        _insert(
            conn,
            tables.payment_methods,
            [
                {
                    "site_id": site_id,
                    "customer_id": c,
                    "gateway": "sandbox",
                    "token": tokenize(CARDS[n % len(CARDS)], 12, 2030).token,
                    "brand": "visa",
                    "last4": "0000",
                    "exp_month": 12,
                    "exp_year": 2030,
                    "is_default": True,
                    "created_at": now,
                }
                for n, c in enumerate(customers)
            ],
        )
        subscriptions = _insert(
            conn,
            tables.subscriptions,
            [
                {
                    "site_id": site_id,
                    "customer_id": c,
                    "status": "active",
                    "currency": "USD",
                    "interval_unit": "month",
                    "interval_count": 1,
                    "collection": "automatic",
                    "net_terms_days": 0,
                    "anchor_at": now,
                    "next_charge_at": now,
                    "periods_billed": 0,
                    "created_at": now,
                }
                for c in customers
            ],
        )
        _insert(
            conn,
            tables.subscription_items,
            [
                {
                    "site_id": site_id,
                    "subscription_id": s,
                    "product_id": product,
                    "quantity": 1,
                    "unit_price_minor": 1000,
                }
                for s in subscriptions
            ],
        )
    return site_id


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [row.id for row in result]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        app = bootstrap(Settings(database_url=url, batch_size=args.batch))
        upgrade(app.engine)
        site_id = load(app, args.subscriptions)
        worker = Worker(app, name="bench")
        started = time.perf_counter()
        worker.run_until_idle()
        renewal_s = time.perf_counter() - started
        with app.begin() as conn:
            advance_clock(conn, site_id, timedelta(days=1))
        started = time.perf_counter()
        worker.run_until_idle()
        retry_s = time.perf_counter() - started
        app.close()
    retries = args.subscriptions // len(CARDS)
    print(
        json.dumps(
            {
                "backend": url.split(":", 1)[0],
                "subscriptions": args.subscriptions,
                "batch": args.batch,
                "renewal_day_s": round(renewal_s, 3),
                "renewals_per_s": round(args.subscriptions / renewal_s),
                "retry_day_s": round(retry_s, 3),
                "retries_per_s": round(retries / retry_s),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
