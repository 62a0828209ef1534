"""Several worker processes share one PostgreSQL database without doing anything twice."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dunwell.store import tables
from dunwell.store.db import make_engine
from tests.e2e.conftest import Cli
from tests.e2e.dunning_runs import build_shop

SUBSCRIBERS = 1000


@pytest.mark.postgres
def test_four_workers_on_postgres_charge_each_attempt_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    build_shop(postgres_url, SUBSCRIBERS)
    cli = Cli(postgres_url, batch_size="10")
    for _day in range(5):
        workers = [
            cli.popen("worker", "--until-idle", "--name", f"w{n}", log=tmp_path / f"w{n}.log")
            for n in range(4)
        ]
        assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]
        cli("clock", "advance", "--site", "crash", "1d")

    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        attempts = conn.execute(
            select(tables.payment_attempts.c.invoice_id, tables.payment_attempts.c.attempt_no)
        ).all()
        charges = conn.execute(select(func.count()).select_from(tables.sandbox_charges))
        charge_count = charges.scalar_one()
        owners = conn.execute(select(tables.events.c.type)).all()
        leased = conn.execute(
            select(func.count()).where(tables.dunning_cycles.c.lease_owner.is_not(None))
        ).scalar_one()
    engine.dispose()
    assert len(attempts) == len(set(attempts)), "an attempt number was used twice"
    per_invoice = Counter(invoice for invoice, _ in attempts)
    assert max(per_invoice.values()) <= 20
    assert charge_count > 1000  # every subscriber was charged at least once
    assert leased == 0
    assert Counter(t for (t,) in owners)["invoice.created"] == 1000
    # The work really was shared between the processes.
    logs = [(tmp_path / f"w{n}.log").read_text() for n in range(4)]
    assert all("Traceback" not in log for log in logs)
    processed = [sum(int(n) for n in re.findall(r"processed (\d+) items", log)) for log in logs]
    assert sum(1 for n in processed if n > 0) >= 2, processed
