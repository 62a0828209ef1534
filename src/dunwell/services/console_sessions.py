"""Dashboard sign-in sessions: a random cookie token, kept only as a hash.

A session lives IDLE after its last use and never more than MAX_AGE after
sign-in. Sessions are rows, not signed cookies, so that signing out, a
disabled user or a changed password ends them at once on every server.
All times here are the real clock's, never a sandbox test clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from dunwell.domain.roles import Role
from dunwell.store.sql import insert_one
from dunwell.store.tables import console_sessions, console_users, sites

IDLE = timedelta(hours=12)
MAX_AGE = timedelta(days=7)
#: last_seen_at is written at most this often, not on every page view.
TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Staff:
    """The signed-in person, as every dashboard page sees them."""

    session_id: int
    user_id: int
    site_id: int
    site_slug: str
    site_name: str
    site_mode: str
    site_zone: str
    site_locale: str
    site_currency: str
    email: str
    name: str
    role: Role
    session_started_at: datetime
    session_seen_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, site_id: int, user_id: int, now: datetime) -> str:
    """Start a session and return its token; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    insert_one(
        conn,
        console_sessions,
        site_id=site_id,
        user_id=user_id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + IDLE,
    )
    return token


def find_session(conn: Connection, token: str, now: datetime) -> Staff | None:
    row = conn.execute(
        select(
            console_sessions.c.id,
            console_sessions.c.created_at,
            console_sessions.c.last_seen_at,
            console_users.c.id.label("user_id"),
            console_users.c.site_id,
            console_users.c.email,
            console_users.c.name,
            console_users.c.role,
            sites.c.slug,
            sites.c.name.label("site_name"),
            sites.c.mode,
            sites.c.time_zone,
            sites.c.locale,
            sites.c.currency,
        )
        .join(console_users, console_users.c.id == console_sessions.c.user_id)
        .join(sites, sites.c.id == console_users.c.site_id)
        .where(
            console_sessions.c.token_hash == token_hash(token),
            console_sessions.c.ended_at.is_(None),
            console_sessions.c.expires_at > now,
            console_users.c.disabled_at.is_(None),
        )
    ).first()
    if row is None or row.created_at + MAX_AGE <= now:
        return None
    return Staff(
        session_id=row.id,
        user_id=row.user_id,
        site_id=row.site_id,
        site_slug=row.slug,
        site_name=row.site_name,
        site_mode=row.mode,
        site_zone=row.time_zone,
        site_locale=row.locale,
        site_currency=row.currency,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        session_started_at=row.created_at,
        session_seen_at=row.last_seen_at,
    )


def touch_due(staff: Staff, now: datetime) -> bool:
    """Whether this request should push the session's expiry on (every TOUCH_EVERY)."""
    return now - staff.session_seen_at >= TOUCH_EVERY


def touch_session(conn: Connection, staff: Staff, now: datetime) -> None:
    conn.execute(
        update(console_sessions)
        .where(console_sessions.c.id == staff.session_id)
        .values(last_seen_at=now, expires_at=min(now + IDLE, staff.session_started_at + MAX_AGE))
    )


def end_session(conn: Connection, token: str, now: datetime) -> None:
    conn.execute(
        update(console_sessions)
        .where(console_sessions.c.token_hash == token_hash(token))
        .values(ended_at=now)
    )


def end_user_sessions(conn: Connection, site_id: int, user_id: int, now: datetime) -> None:
    """Sign a user out everywhere (disabled, role or password changed)."""
    conn.execute(
        update(console_sessions)
        .where(
            console_sessions.c.site_id == site_id,
            console_sessions.c.user_id == user_id,
            console_sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
