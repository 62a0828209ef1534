"""A site's concierge settings: which actions it may take, what it sends, who it escalates to.

One JSON document per site plus the help desk's API key, sealed with the
site secret box like every provider secret and never returned. A site that
saved nothing gets the defaults below: the concierge answers texts and may
take every action, and sends nothing on its own initiative except the one
nudge in a conversation the customer started. Each outbound message is a
merchant's choice (see ``docs/concierge.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from dunwell.security.secrets import SecretBox
from dunwell.services.errors import InvalidInput
from dunwell.store.sql import insert_one
from dunwell.store.tables import concierge_settings

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Actions the concierge can carry out itself; each can be turned off.
ACTIONS = (
    "skip",
    "delay",
    "change_date",
    "ship_now",
    "add_product",
    "swap_product",
    "change_quantity",
    "retry_payment",
    "promise_to_pay",
)


@dataclass(frozen=True)
class ConciergeSettings:
    # Answer customers' texts at all (keywords are always answered).
    enabled: bool = True
    # Where escalations go; empty falls back to the site's support address.
    escalation_email: str = ""
    allow_skip: bool = True
    allow_delay: bool = True
    allow_change_date: bool = True
    allow_ship_now: bool = True
    allow_add_product: bool = True
    allow_swap_product: bool = True
    allow_change_quantity: bool = True
    allow_retry_payment: bool = True
    allow_promise_to_pay: bool = True
    # Messages the concierge starts; all off until the merchant chooses them.
    send_welcome: bool = False
    send_upcoming_reminder: bool = False
    upcoming_reminder_days: int = 3
    send_order_processed: bool = False
    send_failed_payment: bool = False
    send_cancellation_prevention: bool = False
    send_sentiment_survey: bool = False
    send_adjustment_survey: bool = False
    # One reminder when a confirmation question goes unanswered.
    send_nudge: bool = True
    nudge_after_minutes: int = 120
    # A Gorgias-compatible help desk: base URL (https://shop.gorgias.com/api)
    # and username; the API key is stored apart, encrypted.
    helpdesk_url: str = ""
    helpdesk_username: str = ""

    def allows(self, action: str) -> bool:
        return bool(getattr(self, f"allow_{action}", False))

    @property
    def helpdesk_configured(self) -> bool:
        return bool(self.helpdesk_url and self.helpdesk_username)


@dataclass(frozen=True)
class StoredConciergeSettings:
    settings: ConciergeSettings
    #: The help desk API key, decrypted; None when none is saved.
    helpdesk_api_key: str | None


def load_concierge_settings(
    conn: Connection, site_ids: Iterable[int]
) -> dict[int, ConciergeSettings]:
    ids = set(site_ids)
    t = concierge_settings
    found = {
        row.site_id: _from_dict(row.settings)
        for row in conn.execute(select(t.c.site_id, t.c.settings).where(t.c.site_id.in_(ids)))
    }
    return {site_id: found.get(site_id, ConciergeSettings()) for site_id in ids}


def load_helpdesk_key(conn: Connection, site_id: int, box: SecretBox) -> str | None:
    t = concierge_settings
    sealed = conn.execute(select(t.c.helpdesk_secret).where(t.c.site_id == site_id)).scalar()
    return box.open(sealed) if sealed else None


def update_concierge_settings(
    conn: Connection,
    site_id: int,
    changes: Mapping[str, Any],
    now: datetime,
    *,
    box: SecretBox | None = None,
    helpdesk_api_key: str | None = None,
) -> ConciergeSettings:
    """Validate ``changes`` field by field and save; a new API key replaces the stored one."""
    current = load_concierge_settings(conn, [site_id])[site_id]
    known = {f.name for f in fields(ConciergeSettings)}
    for name in changes:
        if name not in known:
            raise InvalidInput(name, "is not a concierge setting")
    merged = replace(current, **{k: _coerce(k, v) for k, v in changes.items()})
    validate_concierge_settings(merged)
    values: dict[str, Any] = {"settings": asdict(merged), "updated_at": now}
    if helpdesk_api_key:
        if box is None:
            raise InvalidInput("helpdesk_api_key", "cannot be stored without a secret key")
        values["helpdesk_secret"] = box.seal(helpdesk_api_key)
    t = concierge_settings
    if not conn.execute(update(t).where(t.c.site_id == site_id).values(values)).rowcount:
        insert_one(conn, t, site_id=site_id, **values)
    return merged


def validate_concierge_settings(s: ConciergeSettings) -> None:
    if s.escalation_email and not EMAIL.match(s.escalation_email):
        raise InvalidInput("escalation_email", f"{s.escalation_email!r} is not an email address")
    if not 3 <= s.upcoming_reminder_days <= 14:
        raise InvalidInput("upcoming_reminder_days", "must be between 3 and 14 days")
    if not 15 <= s.nudge_after_minutes <= 24 * 60:
        raise InvalidInput("nudge_after_minutes", "must be between 15 and 1440 minutes")
    if s.helpdesk_url:
        parts = urlsplit(s.helpdesk_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                "helpdesk_url", "must be an http(s) URL such as https://x.gorgias.com/api"
            )
    if bool(s.helpdesk_url) != bool(s.helpdesk_username):
        field = "helpdesk_username" if s.helpdesk_url else "helpdesk_url"
        raise InvalidInput(field, "the help desk needs both its URL and a username")


def _coerce(name: str, value: Any) -> Any:
    expected = type(getattr(ConciergeSettings(), name))
    if expected is bool and not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(name, "must be a whole number")
    if expected is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidInput(name, "must be text")
        return value.strip()
    return value


def _from_dict(data: Mapping[str, Any]) -> ConciergeSettings:
    """Read leniently: unknown keys are ignored, a malformed value keeps its default."""
    values: dict[str, Any] = {}
    for f in fields(ConciergeSettings):
        if f.name in data:
            try:
                values[f.name] = _coerce(f.name, data[f.name])
            except InvalidInput:
                continue
    return ConciergeSettings(**values)
