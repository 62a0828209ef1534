"""Stripe charges by one real worker against a local Stripe; prints one JSON object.

    python bench/stripe_charges.py [--invoices 2000] [--concurrency 8]
                                   [--max-per-second 20] [--latency-ms 300]
                                   [--db sqlite|postgres] [--json]

Loads N invoices due now, each for a customer whose card on file is a Stripe
payment method that declines, then times one ``dunwell worker --until-idle``
process until every invoice has been charged once. The worker reaches Stripe
through the real ``stripe`` SDK, at a local server that speaks Stripe's API
and waits ``--latency-ms`` before each answer, as Stripe takes a few hundred
milliseconds to confirm a charge. ``--concurrency`` is the worker's
``stripe_concurrency`` (charges side by side) and ``--max-per-second`` its
``stripe_max_per_second`` (requests started a second by all lanes
together). Delivery is off for the run.

The script fails unless every invoice has exactly one payment attempt, and
Stripe executed each attempt's idempotency key exactly once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the local Stripe lives under tests/

from dunning_tick import SECRET, Card, database, drop_database, load, run_workers  # noqa: E402
from tests.integration.fake_stripe import API_KEY, FakeStripeServer  # noqa: E402

from dunwell.bootstrap import bootstrap  # noqa: E402
from dunwell.settings import Settings  # noqa: E402
from dunwell.store import tables  # noqa: E402

STRIPE_DECLINES = Card("stripe", "pm_card_chargeDeclinedInsufficientFunds", "cus_bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-per-second", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    stripe = FakeStripeServer().start()
    stripe.fake.latency = args.latency_ms / 1000
    try:
        with tempfile.TemporaryDirectory() as folder:
            url = database(args.db, folder, "stripe")
            try:
                load(url, args.invoices, STRIPE_DECLINES)
                settings = {
                    "DUNWELL_STRIPE_API_KEY": API_KEY,
                    "DUNWELL_STRIPE_API_BASE": stripe.url,
                    "DUNWELL_STRIPE_CONCURRENCY": str(args.concurrency),
                    "DUNWELL_STRIPE_MAX_PER_SECOND": str(args.max_per_second),
                }
                seconds, _ = run_workers(url, 1, args.batch, settings)
                attempts = _attempts_per_invoice(url)
            finally:
                drop_database(url)
    finally:
        stripe.stop()
    executed = Counter(stripe.fake.executed)
    if len(attempts) != args.invoices or set(attempts.values()) != {1}:
        raise SystemExit(f"attempts per invoice: {sorted(Counter(attempts.values()).items())}")
    if len(executed) != args.invoices or max(executed.values()) != 1:
        raise SystemExit(f"{len(executed)} keys charged, at most {max(executed.values())} times")
    print(
        json.dumps(
            {
                "invoices": args.invoices,
                "db": args.db,
                "concurrency": args.concurrency,
                "max_per_second": args.max_per_second,
                "latency_ms": args.latency_ms,
                "seconds": round(seconds, 3),
                "charges_per_s": round(args.invoices / seconds, 1),
                "most_in_flight": stripe.fake.most_in_flight,
                "requests": len(stripe.fake.requests),
            }
        )
    )


def _attempts_per_invoice(url: str) -> dict[int, int]:
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    attempts = tables.payment_attempts
    with app.connect() as conn:
        rows = conn.execute(
            select(attempts.c.invoice_id, func.count())
            .where(attempts.c.status == "declined")
            .group_by(attempts.c.invoice_id)
        ).all()
    app.close()
    return {invoice: count for invoice, count in rows}


if __name__ == "__main__":
    main()
