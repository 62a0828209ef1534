"""A number's live conversation is found by its number, however long the site's history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, insert

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


def test_the_newest_unclosed_conversation_is_the_live_one(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        _history(conn, shop, 50)
        older = current_conversation(conn, shop.site_id, NUMBER, None, shop.now)
        save_state(conn, older, {"awaiting": "old"}, shop.now)
        # A second unclosed one for the number (two processes racing can leave one).
        newer_id = conn.execute(
            insert(tables.conversations).returning(tables.conversations.c.id),
            {
                "site_id": shop.site_id,
                "phone": NUMBER,
                "status": "open",
                "state": {"awaiting": "new"},
                "started_at": shop.now,
                "last_message_at": shop.now,
            },
        ).scalar_one()
        assert newer_id > older.id
        assert current_conversation(conn, shop.site_id, NUMBER, None, shop.now).id == newer_id
        states = live_states(
            conn, {(shop.site_id, NUMBER), (shop.site_id, OTHER)}, {shop.site_id: shop.now}
        )
    assert states == {(shop.site_id, NUMBER): {"awaiting": "new"}}


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
