"""Per-site API keys: shown once, stored as a hash, scoped read < write < admin."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, select, update

from dunwell.services.errors import InvalidInput, NotFound
from dunwell.store.sql import insert_one
from dunwell.store.tables import api_keys

KEY_PREFIX = "dwk_"


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        order = [Scope.READ, Scope.WRITE, Scope.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Caller:
    site_id: int
    key_id: int
    scope: Scope


def create_key(conn: Connection, site_id: int, name: str, scope: str, now: datetime) -> str:
    """Create a key and return it; this is the only time the plain key exists."""
    try:
        parsed = Scope(scope)
    except ValueError:
        raise InvalidInput("scope", "must be read, write or admin") from None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    insert_one(
        conn,
        api_keys,
        site_id=site_id,
        name=name,
        key_hash=hash_key(key),
        prefix=key[:12],
        scope=parsed.value,
        created_at=now,
    )
    return key


def authenticate(conn: Connection, key: str) -> Caller | None:
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.site_id, api_keys.c.scope)
        .where(api_keys.c.key_hash == hash_key(key))
        .where(api_keys.c.revoked_at.is_(None))
    ).first()
    return None if row is None else Caller(row.site_id, row.id, Scope(row.scope))


def revoke_key(conn: Connection, site_id: int, key_id: int, now: datetime) -> None:
    done = conn.execute(
        update(api_keys)
        .where(api_keys.c.site_id == site_id, api_keys.c.id == key_id)
        .values(revoked_at=now)
    )
    if done.rowcount == 0:
        raise NotFound(f"no API key {key_id} in this site")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
