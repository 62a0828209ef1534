"""Dashboard users: one person on one site, with a role and a password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, select, update
from sqlalchemy.exc import IntegrityError

from dunwell.domain.roles import Role
from dunwell.security.passwords import (
    WeakPassword,
    check_strength,
    dummy_hash,
    hash_password,
    verify_password,
)
from dunwell.services.channel_config import EMAIL
from dunwell.services.console_sessions import end_user_sessions
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.store.sql import insert_one
from dunwell.store.tables import console_users, sites

#: After this many wrong passwords in a row the account waits LOCKOUT.
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class ConsoleUser:
    id: int
    site_id: int
    site_slug: str
    site_name: str
    email: str
    name: str
    role: Role
    disabled: bool


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not EMAIL.match(cleaned) or len(cleaned) > 320:
        raise InvalidInput("email", "must be an email address")
    return cleaned


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput("role", f"must be one of {names}") from None


def create_user(
    conn: Connection,
    site_id: int,
    email: str,
    name: str,
    role: str,
    password: str,
    now: datetime,
) -> int:
    address = normalize_email(email)
    parsed = parse_role(role)
    try:
        check_strength(password)
    except WeakPassword as error:
        raise InvalidInput("password", str(error)) from None
    display = name.strip() or address
    try:
        with conn.begin_nested():
            return insert_one(
                conn,
                console_users,
                site_id=site_id,
                email=address,
                name=display[:200],
                password_hash=hash_password(password),
                role=parsed.value,
                failed_sign_ins=0,
                created_at=now,
            )
    except IntegrityError:
        raise Conflict(f"{address} already has an account on this site") from None


def set_password(
    conn: Connection, site_id: int, user_id: int, password: str, now: datetime
) -> None:
    """A new password; it also lifts a lockout (an owner reset it on purpose)."""
    try:
        check_strength(password)
    except WeakPassword as error:
        raise InvalidInput("password", str(error)) from None
    _update(
        conn,
        site_id,
        user_id,
        now,
        password_hash=hash_password(password),
        failed_sign_ins=0,
        locked_until=None,
    )


def set_role(conn: Connection, site_id: int, user_id: int, role: str, now: datetime) -> None:
    parsed = parse_role(role)
    if parsed is not Role.OWNER:
        _keep_an_owner(conn, site_id, user_id)
    _update(conn, site_id, user_id, now, role=parsed.value)


def disable_user(conn: Connection, site_id: int, user_id: int, now: datetime) -> None:
    _keep_an_owner(conn, site_id, user_id)
    _update(conn, site_id, user_id, now, disabled_at=now)


def list_users(conn: Connection, site_id: int) -> list[ConsoleUser]:
    rows = conn.execute(
        _user_query().where(console_users.c.site_id == site_id).order_by(console_users.c.email)
    )
    return [_to_user(row) for row in rows]


@dataclass(frozen=True)
class SignIn:
    """The accounts opened, or why none was: ``wrong`` (also for an unknown
    address, so the page cannot tell them apart) or ``locked``.

    Returned rather than raised so that the caller's transaction commits the
    failure count along with the refusal.
    """

    accounts: list[ConsoleUser]
    refused: str | None = None


def check_sign_in(
    conn: Connection, email: str, password: str, now: datetime, site_slug: str | None = None
) -> SignIn:
    """The accounts this address and password open (usually one).

    A wrong password counts against each enabled account with that address;
    an account at the limit refuses even the right password until its lock
    expires, so guessing gets five tries per quarter hour.
    """
    try:
        address = normalize_email(email)
    except InvalidInput:
        verify_password(password, dummy_hash())
        return SignIn([], "wrong")
    query = select(
        console_users.c.id,
        console_users.c.password_hash,
        console_users.c.failed_sign_ins,
        console_users.c.locked_until,
    ).where(console_users.c.email == address, console_users.c.disabled_at.is_(None))
    if site_slug:
        query = query.join(sites, sites.c.id == console_users.c.site_id).where(
            sites.c.slug == site_slug
        )
    candidates = conn.execute(query).all()
    if not candidates:
        verify_password(password, dummy_hash())
        return SignIn([], "wrong")
    opened: list[int] = []
    locked = False
    for row in candidates:
        if row.locked_until is not None and row.locked_until > now:
            locked = True
            continue
        if verify_password(password, row.password_hash):
            opened.append(row.id)
            conn.execute(
                update(console_users)
                .where(console_users.c.id == row.id)
                .values(failed_sign_ins=0, locked_until=None)
            )
        else:
            failures = row.failed_sign_ins + 1
            lock = now + LOCKOUT if failures >= MAX_FAILED_SIGN_INS else None
            conn.execute(
                update(console_users)
                .where(console_users.c.id == row.id)
                .values(failed_sign_ins=0 if lock else failures, locked_until=lock)
            )
    if not opened:
        return SignIn([], "locked" if locked else "wrong")
    rows = conn.execute(_user_query().where(console_users.c.id.in_(opened)))
    return SignIn(sorted((_to_user(row) for row in rows), key=lambda u: u.site_slug))


def _keep_an_owner(conn: Connection, site_id: int, user_id: int) -> None:
    """Refuse a change that would leave the site with no enabled owner."""
    owners = conn.execute(
        select(console_users.c.id).where(
            console_users.c.site_id == site_id,
            console_users.c.role == Role.OWNER.value,
            console_users.c.disabled_at.is_(None),
        )
    ).scalars()
    if set(owners) == {user_id}:
        raise Conflict("a site needs at least one owner; make someone else owner first")


def _update(conn: Connection, site_id: int, user_id: int, now: datetime, **values: object) -> None:
    """Change a user, and end their sessions: a new role, password or a
    disabled account takes effect at once, on every device."""
    done = conn.execute(
        update(console_users)
        .where(console_users.c.site_id == site_id, console_users.c.id == user_id)
        .values(**values)
    )
    if done.rowcount == 0:
        raise NotFound(f"user {user_id} not found")
    end_user_sessions(conn, site_id, user_id, now)


def _user_query() -> Select[Any]:
    return select(
        console_users.c.id,
        console_users.c.site_id,
        sites.c.slug,
        sites.c.name.label("site_name"),
        console_users.c.email,
        console_users.c.name,
        console_users.c.role,
        console_users.c.disabled_at,
    ).join(sites, sites.c.id == console_users.c.site_id)


def _to_user(row: Row[Any]) -> ConsoleUser:
    return ConsoleUser(
        id=row.id,
        site_id=row.site_id,
        site_slug=row.slug,
        site_name=row.site_name,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        disabled=row.disabled_at is not None,
    )
