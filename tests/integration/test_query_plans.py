"""SQLite's planner never reads a whole site when a narrower index answers the query.

These check plans, not timings: without statistics SQLite once answered a
customer's invoices, the SMS frequency cap and other reads by key with the
``site_id`` index, reading every row the site has. The statistics written at
migration (``dunwell.store.planner_stats``) say a site is the whole table.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Connection, insert

from dunwell.bootstrap import App
from dunwell.channels.twilio_sms import TwilioConfig, TwilioSmsTransport
from dunwell.services.customer_records import customer_events, customer_invoices
from dunwell.services.message_claims import claim_due_messages
from dunwell.services.messages import count_failed, list_messages
from dunwell.services.metrics import gather
from dunwell.services.report_catch_up import catch_up_reports
from dunwell.services.sms_gate import SmsGate
from dunwell.store import tables
from dunwell.store.migrate import upgrade
from dunwell.store.planner_stats import FEW_VALUED_COLUMNS, seed_sqlite_statistics
from dunwell.worker import LEASED_TABLES, Worker
from tests.integration.factories import Shop
from tests.integration.query_plans import captured, plan_of

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# A search that narrows by the site and nothing else.
SITE_ONLY = re.compile(r"USING (?:COVERING )?INDEX \w+ \(site_id=\?\)")


def _indexes(conn: Connection) -> list[tuple[str, str, list[str]]]:
    """(table, index, columns) of every full index on a table that has a site column.

    Partial indexes are left out: only a statement that repeats their
    predicate can use them, so each is checked with its real statement.
    """
    found = []
    tables = [
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        )
    ]
    for table in tables:
        columns = {row[1] for row in conn.exec_driver_sql(f'PRAGMA table_info("{table}")')}
        if "site_id" not in columns:
            continue
        for row in conn.exec_driver_sql(f'PRAGMA index_list("{table}")'):
            index, partial = row[1], row[4]
            if partial:
                continue
            keys = [r[2] for r in conn.exec_driver_sql(f'PRAGMA index_info("{index}")')]
            found.append((table, index, keys))
    return found


def test_every_key_under_a_site_is_searched_by_that_key(app: App) -> None:
    """For each index, the site plus the index's columns up to its first narrow one.

    Columns with only a few values (a channel) are no narrower than the site,
    so the prefix runs on to the first column that is.
    """
    checked = []
    with app.engine.connect() as conn:
        for table, index, keys in _indexes(conn):
            prefix: list[str] = []
            for column in keys:
                if column is None:  # an expression: the planner cannot be asked plainly
                    prefix = []
                    break
                if column != "site_id":
                    prefix.append(column)
                if column not in FEW_VALUED_COLUMNS:
                    break
            if not prefix or prefix[-1] in FEW_VALUED_COLUMNS:
                continue
            where = " AND ".join(["site_id = ?", *(f'"{c}" = ?' for c in prefix)])
            plan = plan_of(conn, f'SELECT * FROM "{table}" WHERE {where}', (1,) * (len(prefix) + 1))
            checked.append((table, prefix[-1]))
            assert not SITE_ONLY.search(plan), f"{table} {prefix} ({index}): {plan}"
    # The schema has dozens of such keys; an empty loop would prove nothing.
    assert len(checked) > 30
    assert ("invoices", "customer_id") in checked
    assert ("outbox", "recipient") in checked
    assert ("outbox", "created_at") in checked


def test_without_the_statistics_the_site_index_was_taken(app: App) -> None:
    """The check above can fail: with the figures gone, the old plans return."""
    with app.engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM sqlite_stat1")
        conn.exec_driver_sql("ANALYZE sqlite_schema")
        plan = plan_of(conn, "SELECT * FROM invoices WHERE site_id = ? AND customer_id = ?", (1, 1))
        conn.rollback()
    assert SITE_ONLY.search(plan), plan


def test_measured_statistics_are_never_replaced(app: App) -> None:
    with app.engine.connect() as conn:
        conn.exec_driver_sql(
            "UPDATE sqlite_stat1 SET stat = '40 2' WHERE idx = 'ix_invoices_site_id'"
        )
        assert seed_sqlite_statistics(conn) == 0
        stat = conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_invoices_site_id'"
        ).scalar_one()
        conn.commit()
    assert stat == "40 2"
    upgrade(app.engine)  # a later migration run leaves them too
    with app.engine.connect() as conn:
        stat = conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_invoices_site_id'"
        ).scalar_one()
    assert stat == "40 2"


def test_the_customer_page_and_the_frequency_cap_read_by_key(app: App) -> None:
    """The real statements: a customer's invoices, timeline and messages, and texts to a number."""
    shop = Shop.create(app)
    customer = shop.customer(email="ada@example.com", phone="+14155550101")
    gate_now = shop.now - timedelta(minutes=5)

    def read() -> None:
        with app.engine.connect() as conn:
            customer_invoices(conn, shop.site_id, customer)
            customer_events(conn, shop.site_id, customer)
            list_messages(conn, shop.site_id, customer_id=customer, limit=20, newest_first=True)
            SmsGate(conn, gate_now)._recent_sends({(shop.site_id, "+14155550101")}, gate_now)

    statements = captured(app.engine, read)
    assert len(statements) == 4
    with app.engine.connect() as conn:
        plans = [plan_of(conn, sql, args) for sql, args in statements]
    assert not any(SITE_ONLY.search(plan) for plan in plans), plans
    assert "ix_invoices_customer_id" in plans[0] or "ix_invoices_site_customer" in plans[0]
    assert "ix_events_site_customer" in plans[1]
    assert "ix_outbox_site_customer" in plans[2]
    assert "ix_outbox_recipient" in plans[3]


def test_the_delivery_claim_looks_up_due_messages_by_status(app: App) -> None:
    """It once read every email and text ever queued, by channel, to find the pending few."""
    shop = Shop.create(app)

    def claim() -> None:
        with app.begin() as conn:
            claim_due_messages(conn, "plans", shop.now, shop.now + timedelta(minutes=1), 50)

    statements = [
        (sql, args) for sql, args in captured(app.engine, claim, kind="UPDATE") if "outbox" in sql
    ]
    assert statements
    with app.engine.connect() as conn:
        plans = [plan_of(conn, sql, args) for sql, args in statements]
    assert all("ix_outbox_pending (status=?" in plan for plan in plans), plans


def test_texts_with_no_delivery_report_are_found_through_their_partial_index(app: App) -> None:
    """The report catch-up reads only the few texts in ``ix_outbox_unreported``."""
    shop = Shop.create(app)
    never_asked = TwilioSmsTransport(
        TwilioConfig(account_sid="AC" + "0" * 32, auth_token="unused", from_number="+15005550006")
    )

    def read() -> None:
        assert catch_up_reports(app, shop.site_id, never_asked) == 0

    def plans() -> list[str]:
        statements = [(sql, args) for sql, args in captured(app.engine, read) if "outbox" in sql]
        assert len(statements) == 1
        with app.engine.connect() as conn:
            return [plan_of(conn, sql, args) for sql, args in statements]

    first = plans()
    # Going on after the last text asked about at the previous check.
    with app.begin() as conn:
        conn.execute(
            insert(tables.twilio_catch_up).values(
                site_id=shop.site_id,
                synced_until=shop.now,
                next_check_at=shop.now,
                reports_after=shop.now - timedelta(hours=1),
                reports_after_id=1,
                updated_at=shop.now,
            )
        )
    going_on = plans()
    for plan in first + going_on:
        assert "USING INDEX ix_outbox_unreported (site_id=? AND sent_at>? AND sent_at<?)" in plan, (
            plan
        )


#: Tables that grow with the merchant's history: a scrape must not read their
#: rows, except the few a partial index holds (the failed messages' events).
HISTORY_TABLES = ("outbox", "events", "payment_attempts", "invoices", "dunning_cycles")
ROW_SCAN = re.compile(
    rf"SCAN ({'|'.join(HISTORY_TABLES)})"
    r"(?! USING COVERING INDEX)(?! USING INDEX ix_events_message_failed)\b"
)


def test_a_metrics_scrape_counts_from_indexes_never_the_rows(app: App) -> None:
    """Counting messages by status once read every outbox row, rendered bodies and all."""
    shop = Shop.create(app)

    def scrape() -> None:
        with app.engine.connect() as conn:
            gather(conn, shop.now)

    statements = captured(app.engine, scrape)
    with app.engine.connect() as conn:
        plans = [plan_of(conn, sql, args) for sql, args in statements]
    assert len(plans) >= 12
    read = [plan for plan in plans if any(table in plan for table in HISTORY_TABLES)]
    assert len(read) >= 6, plans
    assert not [plan for plan in read if ROW_SCAN.search(plan)], read
    failed = next(plan for plan in plans if "events" in plan)
    assert "ix_events_message_failed" in failed, failed


def test_a_stopping_worker_finds_its_leases_through_the_leased_indexes(app: App) -> None:
    """Giving leases back once read every row of five tables, the outbox's bodies included."""
    worker = Worker(app, name="plans")
    statements = captured(app.engine, worker.release_leases, kind="UPDATE")
    assert len(statements) == len(LEASED_TABLES) == 5
    with app.engine.connect() as conn:
        plans = [plan_of(conn, sql, args) for sql, args in statements]
    for table, plan in zip(LEASED_TABLES, plans, strict=True):
        assert f"USING INDEX ix_{table.name}_leased (lease_owner=?)" in plan, plan


@pytest.mark.parametrize(
    ("status", "index"),
    [
        *((status, "ix_outbox_not_sent") for status in tables.NOT_SENT_STATUSES),
        *((status, "ix_outbox_in_flight") for status in tables.IN_FLIGHT_STATUSES),
    ],
)
def test_a_page_of_messages_in_a_rare_state_reads_only_those(
    app: App, status: str, index: str
) -> None:
    """A failed or sending page once walked every message of the site to find the few."""
    shop = Shop.create(app)

    def read() -> None:
        with app.engine.connect() as conn:
            list_messages(conn, shop.site_id, status=status, limit=100)
            list_messages(conn, shop.site_id, status=status, limit=100, newest_first=True)

    statements = captured(app.engine, read)
    assert len(statements) == 2
    with app.engine.connect() as conn:
        plans = [plan_of(conn, sql, args) for sql, args in statements]
    for plan in plans:
        assert f"USING INDEX {index} (site_id=? AND status=? AND id>?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index gives the order


def test_the_overviews_failed_count_reads_only_the_index_of_messages_not_sent(app: App) -> None:
    shop = Shop.create(app)

    def read() -> None:
        with app.engine.connect() as conn:
            count_failed(conn, shop.site_id)

    (statement,) = captured(app.engine, read)
    with app.engine.connect() as conn:
        plan = plan_of(conn, *statement)
    assert "USING COVERING INDEX ix_outbox_not_sent (site_id=? AND status=?)" in plan, plan
