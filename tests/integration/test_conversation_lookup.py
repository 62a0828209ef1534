"""A number's live conversation is found by its number, however long the site's history."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Connection, insert, text
from sqlalchemy.exc import IntegrityError

from dunwell.bootstrap import App
from dunwell.services.conversations import current_conversation, live_states, save_state
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.query_plans import captured, plan_of

NUMBER, OTHER = "+14155550101", "+14155550102"


def _history(conn: Connection, shop: Shop, count: int) -> None:
    """``count`` closed conversations of other numbers: a site that has been talking a while."""
    at = shop.now - timedelta(days=30)
    conn.execute(
        insert(tables.conversations),
        [
            {
                "site_id": shop.site_id,
                "phone": f"+1415556{n:04d}",
                "status": "closed",
                "state": {},
                "started_at": at,
                "last_message_at": at,
            }
            for n in range(count)
        ],
    )


def _open_another(conn: Connection, shop: Shop, phone: str) -> None:
    conn.execute(
        insert(tables.conversations),
        {
            "site_id": shop.site_id,
            "phone": phone,
            "status": "open",
            "state": {},
            "started_at": shop.now,
            "last_message_at": shop.now,
        },
    )


def test_a_number_has_one_live_conversation_and_its_state_is_the_one_read(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        _history(conn, shop, 50)
        live = current_conversation(conn, shop.site_id, NUMBER, None, shop.now)
        save_state(conn, live, {"awaiting": "confirmation"}, shop.now)
        assert current_conversation(conn, shop.site_id, NUMBER, None, shop.now).id == live.id
        states = live_states(
            conn, {(shop.site_id, NUMBER), (shop.site_id, OTHER)}, {shop.site_id: shop.now}
        )
    assert states == {(shop.site_id, NUMBER): {"awaiting": "confirmation"}}
    with pytest.raises(IntegrityError), app.begin() as conn:
        _open_another(conn, shop, NUMBER)
    with app.begin() as conn:
        _open_another(conn, shop, OTHER)  # another number, and closed ones, are no bar


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_answering_one_number_at_once_share_its_conversation(app: App) -> None:
    """The second insert waits for the first transaction, then reads its conversation."""
    shop = Shop.create(app)
    second: list[int] = []

    def answer_in_another_worker() -> None:
        with app.begin() as conn:
            second.append(current_conversation(conn, shop.site_id, NUMBER, None, shop.now).id)

    with app.begin() as conn:
        first = current_conversation(conn, shop.site_id, NUMBER, None, shop.now)
        racer = threading.Thread(target=answer_in_another_worker)
        racer.start()
        _wait_until_a_backend_waits_on_a_lock(app)
    racer.join(timeout=10)
    assert not racer.is_alive()
    assert second == [first.id]
    assert len(shop.all(tables.conversations, site_id=shop.site_id)) == 1


def _wait_until_a_backend_waits_on_a_lock(app: App) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    with app.engine.connect() as watcher:
        while watcher.execute(waiting).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second worker never waited for the first"
            watcher.rollback()  # a fresh snapshot of pg_stat_activity each time
            time.sleep(0.02)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_both_lookups_use_the_phone_index(app: App) -> None:
    """Their plans, not timings: an ORDER BY id once made SQLite walk every conversation."""
    shop = Shop.create(app)
    with app.begin() as conn:
        _history(conn, shop, 200)

        def look_up() -> None:
            current_conversation(conn, shop.site_id, NUMBER, None, shop.now)
            live_states(conn, {(shop.site_id, NUMBER)}, {shop.site_id: shop.now})

        lookups = [
            (sql, args)
            for sql, args in captured(app.engine, look_up)
            if "FROM conversations" in sql
        ]
        plans = [plan_of(conn, sql, args) for sql, args in lookups]
    assert len(plans) == 2
    assert all("USING INDEX ix_conversations_phone" in plan for plan in plans), plans
