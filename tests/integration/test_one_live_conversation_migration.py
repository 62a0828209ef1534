"""Migration 0008 closes the older of a number's duplicate live conversations, then forbids them."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, select

from dunwell.bootstrap import App
from dunwell.store import tables
from dunwell.store.db import writer
from dunwell.store.migrate import alembic_config, upgrade
from tests.integration.factories import Shop

NUMBER, OTHER = "+14155550101", "+14155550102"


def _downgrade_to(app: App, revision: str) -> None:
    config = alembic_config(app.engine.url.render_as_string(hide_password=False))
    with writer(app.engine).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_the_older_duplicates_are_closed_as_abandoned_and_the_newest_stays_live(app: App) -> None:
    shop = Shop.create(app)
    _downgrade_to(app, "0007")
    c = tables.conversations
    rows = [
        (NUMBER, "open"),  # older: closed by the migration
        (NUMBER, "escalated"),  # older still live: closed too
        (NUMBER, "open"),  # the newest: kept
        (OTHER, "escalated"),  # alone: kept
        (OTHER, "closed"),  # already closed: untouched
    ]
    with app.begin() as conn:
        ids = [
            conn.execute(
                insert(c).returning(c.c.id),
                {
                    "site_id": shop.site_id,
                    "phone": phone,
                    "status": status,
                    "state": {},
                    "started_at": shop.now,
                    "last_message_at": shop.now,
                },
            ).scalar_one()
            for phone, status in rows
        ]
    upgrade(app.engine)
    with app.connect() as conn:
        after = {r.id: r for r in conn.execute(select(c).where(c.c.id.in_(ids)))}
    assert [after[i].status for i in ids] == ["closed", "closed", "open", "escalated", "closed"]
    assert [after[i].outcome for i in ids[:2]] == ["abandoned", "abandoned"]
    assert after[ids[0]].closed_at == shop.now
    assert after[ids[4]].outcome is None and after[ids[4]].closed_at is None
