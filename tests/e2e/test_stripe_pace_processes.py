"""Two worker processes charging through one Stripe account keep its pace together.

Stripe limits an account's requests a second, whichever process sends
them. Each real ``dunwell worker`` process here takes its turns from the
shared line in the database, so the local server that speaks Stripe's API
sees no more than ``stripe_max_per_second`` requests in any second.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path

import pytest

from dunwell.bootstrap import App
from dunwell.gateways.base import CardDetails
from dunwell.services import ledger
from dunwell.services.collection import attempt_key
from tests.e2e.conftest import Cli
from tests.integration.factories import Shop
from tests.integration.fake_stripe import API_KEY, FakeStripeServer

INVOICES = 40
PER_SECOND = 10


@pytest.fixture
def server() -> Iterator[FakeStripeServer]:
    server = FakeStripeServer().start()
    yield server
    server.stop()


def _stripe_invoices(shop: Shop, count: int) -> list[int]:
    invoices = []
    for n in range(count):
        customer = shop.customer(card=None, email=f"c{n}@x.test")
        card = CardDetails("pm_card_visa", "visa", "4242", 12, 2031, gateway_customer=f"cus_{n}")
        with shop.app.begin() as conn:
            ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
        invoices.append(shop.invoice(customer))
    return invoices


def test_two_workers_together_keep_one_accounts_pace(
    app: App, db_url: str, server: FakeStripeServer, tmp_path: Path
) -> None:
    shop = Shop.create(app)
    invoices = _stripe_invoices(shop, INVOICES)
    cli = Cli(
        db_url,
        stripe_api_key=API_KEY,
        stripe_api_base=server.url,
        stripe_max_per_second=str(PER_SECOND),
        batch_size="10",  # two batches each, so both workers have charges to make
        delivery_batch_size="0",
    )

    workers = [
        cli.popen("worker", "--until-idle", "--name", f"w{n}", log=tmp_path / f"w{n}.log")
        for n in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]

    logs = [(tmp_path / f"w{n}.log").read_text() for n in range(2)]
    assert all("Traceback" not in log for log in logs), logs
    processed = [sum(int(n) for n in re.findall(r"processed (\d+) items", log)) for log in logs]
    assert all(n > 0 for n in processed), processed  # both charged
    keys = [attempt_key(shop.site_id, i, 1) for i in invoices]
    assert sorted(server.fake.executed, key=str) == sorted(keys)  # each once
    arrivals = sorted(r.arrived_at for r in server.fake.requests)
    assert len(arrivals) == INVOICES
    # The most requests in any 0.85 s (a second, less the jitter of a sleep
    # and a loopback request on a busy machine): at most the pace. Two
    # workers each on a pace of its own send twice that while their batches
    # overlap (20 in a second when this was measured).
    busiest = max(bisect_left(arrivals, a + 0.85) - n for n, a in enumerate(arrivals))
    assert busiest <= PER_SECOND, [round(a - arrivals[0], 2) for a in arrivals]
    for invoice in invoices:
        assert [a.status for a in shop.attempts_of(invoice)] == ["succeeded"]
