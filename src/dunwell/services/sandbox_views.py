"""Reading a sandbox site's mailbox and phone for the dashboard, newest first.

The API lists them oldest first with a cursor (a feed to follow); a person
looking at the phone wants the latest texts on top, grouped by number.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dunwell.services.errors import NotFound
from dunwell.store.tables import sandbox_messages

LIST_COLUMNS = (
    "id",
    "direction",
    "to_addr",
    "from_addr",
    "subject",
    "body_text",
    "created_at",
)


def latest_messages(
    conn: Connection, site_id: int, channel: str, limit: int = 200
) -> list[dict[str, Any]]:
    """The newest ``limit`` emails or texts of the site's sandbox, newest first."""
    t = sandbox_messages
    rows = conn.execute(
        select(*(t.c[name] for name in LIST_COLUMNS))
        .where(t.c.site_id == site_id, t.c.channel == channel)
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def texts_by_number(texts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Texts grouped by the customer's number, in the order given (newest number first)."""
    threads: dict[str, list[dict[str, Any]]] = {}
    for text in texts:
        number = text["to_addr"] if text["direction"] == "outbound" else text["from_addr"]
        threads.setdefault(number, []).append(text)
    return threads


def get_mail(conn: Connection, site_id: int, mail_id: int) -> dict[str, Any]:
    t = sandbox_messages
    row = conn.execute(
        select(t).where(t.c.site_id == site_id, t.c.channel == "email", t.c.id == mail_id)
    ).first()
    if row is None:
        raise NotFound(f"no email {mail_id} in this sandbox mailbox")
    return dict(row._mapping)
