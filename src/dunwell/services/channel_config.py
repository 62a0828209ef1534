"""Each site's email and SMS provider settings, with secrets encrypted at rest.

A site uses the sandbox mailbox and phone until it saves a provider. The
SMTP password and the Twilio auth token are sealed with the server's key
(:mod:`dunwell.security.secrets`) and never returned by the API; only
whether one is set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from dunwell.channels.config import ChannelConfig
from dunwell.security.secrets import SecretBox, SecretUnreadable
from dunwell.services.errors import InvalidInput
from dunwell.store.sql import insert_one
from dunwell.store.tables import outbox, site_channels, sites

log = logging.getLogger("dunwell.channels")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PROVIDERS = {"email": ("sandbox", "smtp"), "sms": ("sandbox", "twilio")}
SECURITY = ("starttls", "tls", "none")
#: ``outbox.held_reason`` of a message whose provider's secret cannot be opened.
SECRET_UNREADABLE = "secret_unreadable"
#: How long such a message waits before it is tried again: the key is fixed
#: by a person, and trying every pass would only fill the log.
UNREADABLE_RETRY = timedelta(minutes=5)


def load_channel_configs(
    conn: Connection, site_ids: Iterable[int], box: SecretBox | None
) -> dict[tuple[int, str], ChannelConfig]:
    """(site, channel) -> config for every saved provider of these sites.

    A secret sealed under another server key comes back as ``None`` rather
    than raising, so one site's unreadable secret cannot stop a batch that
    serves every site; senders use :func:`read_channel_configs` to hold
    those messages instead of sending without the secret.
    """
    return read_channel_configs(conn, site_ids, box)[0]


def read_channel_configs(
    conn: Connection, site_ids: Iterable[int], box: SecretBox | None
) -> tuple[dict[tuple[int, str], ChannelConfig], set[tuple[int, str]]]:
    """The saved providers of these sites, and the (site, channel) whose secret cannot be opened."""
    t = site_channels
    found: dict[tuple[int, str], ChannelConfig] = {}
    unreadable: set[tuple[int, str]] = set()
    for row in conn.execute(select(t).where(t.c.site_id.in_(set(site_ids)))):
        secret = None
        if row.secret and box is not None:
            try:
                secret = box.open(row.secret)
            except SecretUnreadable:
                unreadable.add((row.site_id, row.channel))
        found[(row.site_id, row.channel)] = ChannelConfig(
            row.channel, row.provider, row.config, secret
        )
    return found, unreadable


def unreadable_secret_error(site: str, channel: str) -> str:
    """What an operator reads when a site's provider secret cannot be opened."""
    return (
        f"site {site}: the {channel} provider's secret unreadable: was DUNWELL_SECRET_KEY "
        "changed? Restore the old key or save the provider again"
    )


def hold_unreadable(
    conn: Connection, rows: list[Any], unreadable: set[tuple[int, str]], now: datetime
) -> list[Any]:
    """Hold the claimed messages whose provider secret cannot be opened; return the others.

    Only that site's messages wait (for :data:`UNREADABLE_RETRY`, then they
    are tried again); sending them without the secret would fail at the
    provider, or worse, go out through a relay that needs no password.
    """
    held = [r for r in rows if (r.site_id, r.channel) in unreadable]
    if not held:
        return rows
    slugs = dict(
        conn.execute(
            select(sites.c.id, sites.c.slug).where(sites.c.id.in_({r.site_id for r in held}))
        )
        .tuples()
        .all()
    )
    for site_id, channel in sorted({(r.site_id, r.channel) for r in held}):
        error = unreadable_secret_error(slugs.get(site_id, str(site_id)), channel)
        ids = [r.id for r in held if (r.site_id, r.channel) == (site_id, channel)]
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(
                status="pending",
                next_attempt_at=now + UNREADABLE_RETRY,
                held_reason=SECRET_UNREADABLE,
                last_error=error,
                lease_owner=None,
                lease_until=None,
            )
        )
        log.error("%s; %d messages held", error, len(ids), extra={"site_id": site_id})
    return [r for r in rows if (r.site_id, r.channel) not in unreadable]


def load_site_channels(
    conn: Connection, site_id: int, box: SecretBox | None
) -> dict[str, tuple[ChannelConfig, bool]]:
    """channel -> (config, whether its secret cannot be opened) for one site's settings page.

    Unlike :func:`load_channel_configs`, which a sender needs whole, a secret
    sealed under another key does not hide the rest: the page shows the
    provider and asks for the secret again.
    """
    t = site_channels
    found: dict[str, tuple[ChannelConfig, bool]] = {}
    for row in conn.execute(select(t).where(t.c.site_id == site_id)):
        secret, unreadable = None, False
        if row.secret and box is not None:
            try:
                secret = box.open(row.secret)
            except SecretUnreadable:
                unreadable = True
        found[row.channel] = (
            ChannelConfig(row.channel, row.provider, row.config, secret),
            unreadable,
        )
    return found


def save_channel_config(
    conn: Connection,
    site_id: int,
    channel: str,
    provider: str,
    config: Mapping[str, Any],
    secret: str | None,
    box: SecretBox,
    now: datetime,
) -> ChannelConfig:
    """Validate and store a provider; ``secret=None`` keeps the stored one."""
    if channel not in PROVIDERS:
        raise InvalidInput("channel", "must be email or sms")
    if provider not in PROVIDERS[channel]:
        raise InvalidInput("provider", f"for {channel} use one of {', '.join(PROVIDERS[channel])}")
    clean = _validate(channel, provider, dict(config))
    t = site_channels
    existing = conn.execute(
        select(t.c.secret).where(t.c.site_id == site_id, t.c.channel == channel)
    ).first()
    sealed = box.seal(secret) if secret else (existing.secret if existing else None)
    if provider == "twilio" and not sealed:
        raise InvalidInput("secret", "the Twilio auth token is required")
    values = {"provider": provider, "config": clean, "secret": sealed, "updated_at": now}
    if existing:
        conn.execute(update(t).where(t.c.site_id == site_id, t.c.channel == channel).values(values))
    else:
        insert_one(conn, t, site_id=site_id, channel=channel, **values)
    return ChannelConfig(channel, provider, clean, box.open(sealed) if sealed else None)


def _validate(channel: str, provider: str, config: dict[str, Any]) -> dict[str, Any]:
    if provider == "smtp":
        return _smtp(config)
    if provider == "twilio":
        return _twilio(config)
    return {k: v for k, v in config.items() if k in ("from_addr", "reply_to")}


def _smtp(config: dict[str, Any]) -> dict[str, Any]:
    host = str(config.get("host") or "").strip()
    if not host:
        raise InvalidInput("host", "is required for SMTP")
    security = str(config.get("security") or "starttls")
    if security not in SECURITY:
        raise InvalidInput("security", "must be starttls, tls or none")
    port = config.get("port") or {"starttls": 587, "tls": 465, "none": 25}[security]
    if not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInput("port", "must be a port number")
    from_addr = str(config.get("from_addr") or "")
    if not EMAIL.match(from_addr):
        raise InvalidInput("from_addr", "must be an email address")
    for name in ("reply_to", "bcc"):
        value = config.get(name)
        if value and not EMAIL.match(str(value)):
            raise InvalidInput(name, "must be an email address")
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": config.get("username") or None,
        "from_addr": from_addr,
        "reply_to": config.get("reply_to") or None,
        "bcc": config.get("bcc") or None,
    }


def _twilio(config: dict[str, Any]) -> dict[str, Any]:
    sid = str(config.get("account_sid") or "")
    if not re.match(r"^AC[0-9a-fA-F]{32}$", sid):
        raise InvalidInput("account_sid", "must look like AC followed by 32 hex digits")
    from_number = config.get("from_number") or None
    service = config.get("messaging_service_sid") or None
    if bool(from_number) == bool(service):
        raise InvalidInput(
            "from_number", "give exactly one of from_number or messaging_service_sid"
        )
    if from_number and not E164.match(str(from_number)):
        raise InvalidInput("from_number", "must be an E.164 number like +14155550123")
    if service and not re.match(r"^MG[0-9a-fA-F]{32}$", str(service)):
        raise InvalidInput("messaging_service_sid", "must look like MG followed by 32 hex digits")
    return {"account_sid": sid, "from_number": from_number, "messaging_service_sid": service}
