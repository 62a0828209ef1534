"""Bulk writes store exactly what SQLAlchemy's own INSERT and UPDATE store.

The worker's hot paths write through ``dunwell.store.bulk``; everything
else (and every read) goes through SQLAlchemy. Both must agree on every
type the bulk path converts (UTC timestamps, JSON, booleans, NULLs), or a
row written by one would compare or read differently from the other's.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from dunwell.clock import FixedClock
from dunwell.services.sites import create_site
from dunwell.store.bulk import bulk_insert, bulk_insert_returning, bulk_update
from dunwell.store.db import make_engine
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    events,
    inbound_messages,
    invoices,
    outbox,
)

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    built = make_engine(db_url)
    yield built
    built.dispose()


def _site(conn: Connection) -> int:
    return create_site(conn, FixedClock(NOON), slug="bulk", name="Bulk")


def _event(site_id: int, n: int, data: Any, at: datetime) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "type": f"test.{n}",
        "customer_id": None if n % 2 else n,
        "subscription_id": None,
        "invoice_id": n,
        "data": data,
        "occurred_at": at,
    }


def _stored(conn: Connection, type_prefix: str) -> list[tuple[Any, ...]]:
    # As the database holds them: text for SQLite timestamps and JSON, so a
    # format difference shows even where reading back would hide it.
    rows = conn.execute(
        select(
            events.c.type,
            events.c.customer_id,
            func.cast(events.c.data, events.c.type.type),
            func.cast(events.c.occurred_at, events.c.type.type),
        )
        .where(events.c.type.like(f"{type_prefix}%"))
        .order_by(events.c.invoice_id)
    )
    return [tuple(row) for row in rows]


VALUES: list[tuple[Any, datetime]] = [
    ({"attempt": 1, "decline_code": "insufficient_funds"}, NOON),
    ({"nested": {"a": [1, 2.5, None, True]}, "text": "café ✓"}, NOON.astimezone(PARIS)),
    ({}, NOON + timedelta(microseconds=7)),
    ({"none": None, "flag": False}, datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
]


def test_bulk_insert_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    with engine.begin() as conn:
        site_id = _site(conn)
        shared = {"same": "object"}  # one object in several rows: the converters' memo
        plain = [_event(site_id, n, data, at) for n, (data, at) in enumerate(VALUES)]
        plain += [_event(site_id, 10 + n, shared, NOON) for n in range(3)]
        conn.execute(insert(events), [{**r, "type": "a" + r["type"]} for r in plain])
        bulk_insert(conn, events, [{**r, "type": "b" + r["type"]} for r in plain])
        by_sqlalchemy = _stored(conn, "a")
        by_bulk = _stored(conn, "b")
    assert len(by_bulk) == len(plain)
    assert [row[1:] for row in by_bulk] == [row[1:] for row in by_sqlalchemy]
    with engine.connect() as conn:
        read = conn.execute(
            select(events.c.data, events.c.occurred_at)
            .where(events.c.type.like("b%"))
            .order_by(events.c.invoice_id)
        ).all()
    assert [tuple(r) for r in read[: len(VALUES)]] == [
        (data, at.astimezone(UTC)) for data, at in VALUES
    ]


def test_bulk_insert_skips_conflicting_rows_only(engine: Engine) -> None:
    row = {
        "channel": "email",
        "customer_id": None,
        "invoice_id": None,
        "template": "t",
        "payload": {"n": 1},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOON,
        "created_at": NOON,
    }
    with engine.begin() as conn:
        site_id = _site(conn)
        rows = [{**row, "site_id": site_id, "dedupe_key": f"k{n}"} for n in range(3)]
        bulk_insert(conn, outbox, rows[:2], ignore_conflicts_on=["dedupe_key"])
        changed = {**rows[0], "payload": {"n": 2}}
        bulk_insert(conn, outbox, [changed, rows[2]], ignore_conflicts_on=["dedupe_key"])
        stored = conn.execute(select(outbox.c.dedupe_key, outbox.c.payload).order_by("id")).all()
        # kind has a server default, which the bulk path leaves to the database
        kinds = conn.execute(select(outbox.c.kind).distinct()).scalars().all()
    assert [tuple(r) for r in stored] == [("k0", {"n": 1}), ("k1", {"n": 1}), ("k2", {"n": 1})]
    assert kinds == ["transactional"]


def _text(site_id: int, sid: str, body: str) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "provider": "twilio",
        "provider_sid": sid,
        "from_phone": "+14155550100",
        "to_phone": None,
        "customer_id": None,
        "body": body,
        "keyword": None,
        "received_at": NOON.astimezone(PARIS),
        "answered_at": None,
    }


def test_bulk_insert_returning_reads_back_each_inserted_row_in_order(engine: Engine) -> None:
    with engine.begin() as conn:
        site_id = _site(conn)
        first = bulk_insert_returning(
            conn,
            inbound_messages,
            [_text(site_id, f"SM{n}", f"text {n}") for n in range(3)],
            ("provider_sid", "id"),
            ignore_conflicts_on=("provider_sid",),
        )
        # SM1 is stored already and SM9 comes twice: each is skipped, not failed.
        again = [_text(site_id, sid, "again") for sid in ("SM9", "SM1", "SM9", "SM10")]
        second = bulk_insert_returning(
            conn,
            inbound_messages,
            again,
            ("provider_sid", "id"),
            ignore_conflicts_on=("provider_sid",),
        )
        stored = conn.execute(
            select(
                inbound_messages.c.provider_sid, inbound_messages.c.id, inbound_messages.c.body
            ).order_by(inbound_messages.c.id)
        ).all()
        received = conn.execute(select(inbound_messages.c.received_at)).scalars().all()
    ids = {sid: id_ for sid, id_, _ in stored}
    assert first == [(f"SM{n}", ids[f"SM{n}"]) for n in range(3)]
    assert second == [("SM9", ids["SM9"]), ("SM10", ids["SM10"])]
    assert [body for *_, body in stored] == ["text 0", "text 1", "text 2", "again", "again"]
    assert set(received) == {NOON}  # converted as SQLAlchemy would: UTC, read back aware
    with engine.begin() as conn:
        assert bulk_insert_returning(conn, inbound_messages, [], ("id",)) == []
        with pytest.raises(ValueError, match="inbound_messages has no column 'colour'"):
            bulk_insert_returning(
                conn, inbound_messages, [_text(site_id, "SM11", "x")], ("colour",)
            )


def test_bulk_insert_returning_raises_what_sqlalchemy_raises(engine: Engine) -> None:
    """Its driver errors reach callers as SQLAlchemy's, which they catch, with no values in them."""
    with engine.begin() as conn:
        site_id = _site(conn)
        bulk_insert_returning(conn, inbound_messages, [_text(site_id, "SM1", "x")], ("id",))
    with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
        # No ignore_conflicts_on: the second SM1 breaks the unique MessageSid.
        rows = [_text(site_id, "SM2", "secret words"), _text(site_id, "SM1", "secret words")]
        bulk_insert_returning(conn, inbound_messages, rows, ("id",))
    assert "secret words" not in str(raised.value)
    with engine.connect() as conn:  # the transaction was rolled back: SM2 is not there
        stored = conn.execute(select(inbound_messages.c.provider_sid)).scalars().all()
    assert stored == ["SM1"]


@pytest.mark.postgres
def test_a_connection_lost_during_bulk_insert_returning_is_dropped_from_the_pool(
    postgres_url: str,
) -> None:
    built = make_engine(postgres_url)
    try:
        with built.begin() as conn:
            site_id = _site(conn)
        conn = built.connect()
        conn.begin()
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with built.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        # Raised by the call itself, not by the rollback after it: what the
        # worker waits out when the database restarts.
        with pytest.raises(OperationalError) as raised:
            bulk_insert_returning(conn, inbound_messages, [_text(site_id, "SM1", "x")], ("id",))
        assert raised.value.connection_invalidated
        assert conn.invalidated
        conn.close()
        # The next transaction gets a live connection.
        with built.begin() as conn:
            assert bulk_insert_returning(
                conn, inbound_messages, [_text(site_id, "SM1", "x")], ("provider_sid",)
            ) == [("SM1",)]
    finally:
        built.dispose()


def test_bulk_update_with_values_and_expressions(engine: Engine) -> None:
    with engine.begin() as conn:
        site_id = _site(conn)
        invoice_ids = [
            conn.execute(
                insert(invoices)
                .values(
                    site_id=site_id,
                    customer_id=_customer(conn, site_id, n),
                    number=f"B-{n}",
                    collection="automatic",
                    net_terms_days=0,
                    status="open",
                    currency="EUR",
                    amount_due_minor=1000 + n,
                    amount_paid_minor=0,
                    issued_at=NOON,
                    due_at=NOON,
                )
                .returning(invoices.c.id)
            ).scalar_one()
            for n in range(3)
        ]
        paid_at = NOON.astimezone(PARIS)
        bulk_update(
            conn,
            invoices,
            [
                {"b_id": invoice_ids[0], "status": "paid", "paid_at": paid_at},
                {"b_id": invoice_ids[1], "status": "paid", "paid_at": NOON},
            ],
            where=("id", "b_id"),
            set_sql={"amount_paid_minor": "amount_due_minor"},
        )
        rows = conn.execute(
            select(invoices.c.status, invoices.c.amount_paid_minor, invoices.c.paid_at).order_by(
                invoices.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("paid", 1000, NOON),
        ("paid", 1001, NOON),
        ("open", 0, None),
    ]


def test_bulk_update_coalesce_keeps_the_stored_value_for_none(engine: Engine) -> None:
    with engine.begin() as conn:
        site_id = _site(conn)
        invoice_id = _invoice(conn, site_id)
        cycle_id = conn.execute(
            insert(dunning_cycles)
            .values(
                site_id=site_id,
                invoice_id=invoice_id,
                collection="automatic",
                phase="dunning",
                due_at=NOON,
                attempts=1,
                hard_declined=False,
                steps_done_through=0,
                transient_errors=0,
                finalized=False,
                outcome="kept",
                lease_owner="w1",
                lease_until=NOON,
                updated_at=NOON,
            )
            .returning(dunning_cycles.c.id)
        ).scalar_one()
        bulk_update(
            conn,
            dunning_cycles,
            [{"b_id": cycle_id, "outcome": None, "finalized": True, "attempts": 2}],
            where=("id", "b_id"),
            set_sql={"outcome": "COALESCE({value}, outcome)", "lease_owner": "NULL"},
        )
        row = conn.execute(select(dunning_cycles)).one()
    assert (row.outcome, row.finalized, row.attempts, row.lease_owner) == ("kept", True, 2, None)
    assert row.lease_until == NOON  # not named, not touched


def test_bulk_writes_name_what_is_wrong(engine: Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="events has no column 'colour'"):
            bulk_insert(conn, events, [{"site_id": 1, "colour": "red"}])
        with pytest.raises(ValueError, match="rows have no 'b_id'"):
            bulk_update(conn, invoices, [{"status": "paid"}], where=("id", "b_id"))
        with pytest.raises(ValueError, match="'closed_at' uses a value the rows do not carry"):
            bulk_update(
                conn,
                invoices,
                [{"b_id": 1, "status": "paid"}],
                where=("id", "b_id"),
                set_sql={"closed_at": "COALESCE({value}, closed_at)"},
            )
        # Nothing was written by the refused calls.
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


def test_bulk_writes_with_no_rows_run_nothing(engine: Engine) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with engine.begin() as conn:
        event.listen(conn, "before_cursor_execute", count)
        bulk_insert(conn, events, [])
        bulk_update(conn, invoices, [], where=("id", "b_id"))
        event.remove(conn, "before_cursor_execute", count)
    assert statements == []


def _customer(conn: Connection, site_id: int, n: int) -> int:
    return int(
        conn.execute(
            insert(customers)
            .values(site_id=site_id, first_name=f"C{n}", last_name="", created_at=NOON)
            .returning(customers.c.id)
        ).scalar_one()
    )


def _invoice(conn: Connection, site_id: int) -> int:
    return int(
        conn.execute(
            insert(invoices)
            .values(
                site_id=site_id,
                customer_id=_customer(conn, site_id, 0),
                number="C-1",
                collection="automatic",
                net_terms_days=0,
                status="past_due",
                currency="EUR",
                amount_due_minor=500,
                amount_paid_minor=0,
                issued_at=NOON,
                due_at=NOON,
            )
            .returning(invoices.c.id)
        ).scalar_one()
    )
