"""Kill the delivery worker mid-batch: every text still reaches Twilio exactly once.

Texts go through the real ``twilio`` SDK to a local server that speaks
Twilio's API and answers slowly, so SIGKILL often lands after Twilio has
accepted a text but before the worker has recorded it. The restarted
worker must find those at Twilio (``find_sent``) instead of sending again.
Email goes to the sandbox mailbox, which is keyed by Message-ID.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from dunwell.bootstrap import bootstrap
from dunwell.clock import SystemClock
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import create_site
from dunwell.settings import Settings
from dunwell.store import tables
from tests.e2e.conftest import Cli
from tests.integration.factories import INSUFFICIENT
from tests.integration.fake_twilio import FakeTwilioServer, save_fake_twilio

# Midday UTC on the site's test clock: inside the send window.
EPOCH = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CUSTOMERS = 40
SECRET = "e2e-secret-key"


def seed(url: str) -> None:
    app = bootstrap(Settings(database_url=url, secret_key=SECRET), clock=SystemClock())
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug="texts", name="Texts", clock_start=EPOCH)
        save_fake_twilio(conn, site_id, app.secret_box(), EPOCH)
        for n in range(CUSTOMERS):
            customer = ledger.create_customer(
                conn,
                site_id,
                ledger.NewCustomer(
                    first_name=f"C{n}", email=f"c{n}@x.test", phone=f"+4479111{n:05d}"
                ),
                EPOCH,
            )
            ledger.attach_payment_method(
                conn, site_id, customer, "sandbox", tokenize(INSUFFICIENT, 12, 2031), EPOCH
            )
            ledger.create_invoice(conn, site_id, customer, 1000 + n, "USD", EPOCH)
    app.close()


@pytest.mark.slow
def test_a_killed_delivery_worker_never_sends_a_text_or_an_email_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'delivery.db'}"
    rng = random.Random(7)
    with FakeTwilioServer() as server:
        server.fake.delay = 0.05
        cli = Cli(
            url,
            twilio_api_base=server.url,
            lease_seconds="1",
            secret_key=SECRET,
            delivery_batch_size="10",
        )
        cli("migrate")
        seed(url)
        kills = 0
        while kills < 6:
            before = len(server.messages)
            worker = cli.popen("worker", log=tmp_path / "worker.log")
            target = before + rng.randint(1, 6)
            deadline = time.monotonic() + 30
            while len(server.messages) < target and time.monotonic() < deadline:
                if worker.poll() is not None:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            worker.kill()
            worker.wait()
            kills += 1
            time.sleep(1.1)  # let the dead worker's leases expire
            if len(server.messages) >= CUSTOMERS:
                break
        cli("worker", "--until-idle")
        sent = Counter((m.to, m.body) for m in server.messages)
    assert len(sent) == CUSTOMERS
    assert max(sent.values()) == 1, [k for k, v in sent.items() if v > 1]
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    with app.connect() as conn:
        rows = conn.execute(select(tables.outbox.c.channel, tables.outbox.c.status)).all()
        mailbox = conn.execute(select(tables.sandbox_messages.c.message_id)).scalars().all()
        doubts = (
            conn.execute(
                select(tables.message_attempts.c.outcome).where(
                    tables.message_attempts.c.outcome.in_(["unknown", "reconciled"])
                )
            )
            .scalars()
            .all()
        )
    app.close()
    assert Counter(status for channel, status in rows if channel == "sms") == {"sent": CUSTOMERS}
    assert Counter(status for channel, status in rows if channel == "email") == {
        "delivered": CUSTOMERS
    }
    assert len(mailbox) == len(set(mailbox)) == CUSTOMERS
    # The kills did land mid-send: some attempts were left without an answer.
    print("in doubt:", Counter(doubts))
    assert "unknown" in doubts
