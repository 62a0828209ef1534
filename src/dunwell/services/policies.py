"""Dunning policies and their versions.

Every save writes a new version; nothing ever edits a version in place, so a
version id names one exact schedule forever. An invoice entering dunning is
pinned to the newest version of its site's policy for its collection kind
(automatic or manual), and ``first_used_at`` marks the versions that have
governed at least one invoice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dunwell.domain.policy import (
    Policy,
    PolicyError,
    SubscriptionAction,
    policy_from_dict,
    policy_to_dict,
)
from dunwell.domain.states import Collection
from dunwell.messaging.templates import BASE_TEMPLATE_NAMES
from dunwell.services.errors import InvalidInput, NotFound
from dunwell.services.notes import check_note
from dunwell.store.sql import insert_one
from dunwell.store.tables import (
    dunning_policies,
    dunning_policy_versions,
    message_templates,
    products,
)


@dataclass(frozen=True)
class PolicyVersion:
    id: int
    version: int
    kind: Collection
    policy: Policy
    created_at: datetime
    first_used_at: datetime | None
    note: str | None


#: Parsed policies by their stored config (canonical JSON). Keyed by content,
#: not by version id: ids repeat across databases (one process may serve
#: several, as the tests do), and the same id must never yield another
#: database's policy.
_cache: dict[str, Policy] = {}


def policy_for_version(version_id: int, config: dict[str, Any]) -> Policy:
    """Parse a stored version's config once; a version's config never changes."""
    key = json.dumps(config, sort_keys=True)
    policy = _cache.get(key)
    if policy is None:
        policy = _cache[key] = policy_from_dict(config)
    return policy


def create_policy(
    conn: Connection, site_id: int, kind: Collection, policy: Policy, now: datetime
) -> int:
    policy_id = insert_one(
        conn,
        dunning_policies,
        site_id=site_id,
        kind=kind.value,
        name=f"{kind.value} invoices",
        created_at=now,
    )
    return _insert_version(conn, site_id, policy_id, 1, policy, now, "initial defaults")


def save_policy(
    conn: Connection,
    site_id: int,
    kind: Collection,
    data: dict[str, Any],
    now: datetime,
    note: str | None = None,
) -> PolicyVersion:
    """Validate ``data`` and ``note`` and store them as the next version of the site's policy."""
    check_note(note)
    try:
        policy = policy_from_dict({**data, "kind": kind.value})
    except PolicyError as error:
        raise InvalidInput(error.field, error.message) from None
    _check_downgrade_plan(conn, site_id, policy)
    _check_templates(conn, site_id, policy, data)
    # Locked until commit: two saves at once (a double-clicked Save) would
    # otherwise both read the same latest number, and the second would fail
    # on the unique (policy, version) constraint instead of becoming the next.
    policy_id = _policy_id(conn, site_id, kind, lock=True)
    latest = conn.execute(
        select(func.max(dunning_policy_versions.c.version)).where(
            dunning_policy_versions.c.policy_id == policy_id
        )
    ).scalar_one()
    version_id = _insert_version(conn, site_id, policy_id, int(latest) + 1, policy, now, note)
    return get_version(conn, site_id, version_id)


def current_version(conn: Connection, site_id: int, kind: Collection) -> PolicyVersion:
    policy_id = _policy_id(conn, site_id, kind)
    row = conn.execute(
        select(dunning_policy_versions)
        .where(dunning_policy_versions.c.policy_id == policy_id)
        .order_by(dunning_policy_versions.c.version.desc())
        .limit(1)
    ).one()
    return _to_version(row, kind)


def get_version(conn: Connection, site_id: int, version_id: int) -> PolicyVersion:
    row = conn.execute(
        select(dunning_policy_versions, dunning_policies.c.kind)
        .join(dunning_policies)
        .where(dunning_policy_versions.c.id == version_id)
        .where(dunning_policy_versions.c.site_id == site_id)
    ).first()
    if row is None:
        raise NotFound(f"no policy version {version_id}")
    return _to_version(row, Collection(row.kind))


def list_versions(conn: Connection, site_id: int, kind: Collection) -> list[PolicyVersion]:
    policy_id = _policy_id(conn, site_id, kind)
    rows = conn.execute(
        select(dunning_policy_versions)
        .where(dunning_policy_versions.c.policy_id == policy_id)
        .order_by(dunning_policy_versions.c.version)
    )
    return [_to_version(row, kind) for row in rows]


def current_version_ids(conn: Connection, site_ids: set[int]) -> dict[tuple[int, str], int]:
    """(site id, kind) -> id of the newest version, for many sites at once."""
    newest = (
        select(
            dunning_policy_versions.c.policy_id,
            func.max(dunning_policy_versions.c.version).label("version"),
        )
        .where(dunning_policy_versions.c.site_id.in_(site_ids))
        .group_by(dunning_policy_versions.c.policy_id)
        .subquery()
    )
    rows = conn.execute(
        select(dunning_policies.c.site_id, dunning_policies.c.kind, dunning_policy_versions.c.id)
        .join(dunning_policy_versions)
        .join(
            newest,
            (newest.c.policy_id == dunning_policy_versions.c.policy_id)
            & (newest.c.version == dunning_policy_versions.c.version),
        )
    )
    return {(row.site_id, row.kind): row.id for row in rows}


def load_policies(conn: Connection, version_ids: set[int]) -> dict[int, Policy]:
    if not version_ids:
        return {}
    rows = conn.execute(
        select(dunning_policy_versions.c.id, dunning_policy_versions.c.config).where(
            dunning_policy_versions.c.id.in_(version_ids)
        )
    )
    return {row.id: policy_for_version(row.id, row.config) for row in rows}


def _insert_version(
    conn: Connection,
    site_id: int,
    policy_id: int,
    version: int,
    policy: Policy,
    now: datetime,
    note: str | None,
) -> int:
    return insert_one(
        conn,
        dunning_policy_versions,
        site_id=site_id,
        policy_id=policy_id,
        version=version,
        config=policy_to_dict(policy),
        note=note,
        created_at=now,
    )


def _policy_id(conn: Connection, site_id: int, kind: Collection, *, lock: bool = False) -> int:
    query = select(dunning_policies.c.id).where(
        dunning_policies.c.site_id == site_id, dunning_policies.c.kind == kind.value
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()  # SQLite: writers already queue (BEGIN IMMEDIATE)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"site {site_id} has no {kind.value} dunning policy")
    return int(row.id)


def _check_downgrade_plan(conn: Connection, site_id: int, policy: Policy) -> None:
    final = policy.final
    if final.subscription_action is not SubscriptionAction.DOWNGRADE:
        return
    found = conn.execute(
        select(products.c.id).where(
            products.c.site_id == site_id, products.c.code == final.downgrade_plan
        )
    ).first()
    if found is None:
        raise InvalidInput("final.downgrade_plan", f"no product with code {final.downgrade_plan!r}")


def _check_templates(conn: Connection, site_id: int, policy: Policy, data: dict[str, Any]) -> None:
    """Every template the policy names must exist for its channel, or it could never send.

    The error names the field that uses it (``steps[2].sms_template``,
    ``final.email_template``), the first in the order given.
    """
    needed = [use for use in _template_uses(policy, data) if use[1] not in BASE_TEMPLATE_NAMES]
    if not needed:
        return
    t = message_templates
    found = set(
        conn.execute(
            select(t.c.name, t.c.channel)
            .where(t.c.site_id == site_id, t.c.name.in_({name for _, name, _ in needed}))
            .distinct()
        ).tuples()
    )
    for path, name, channel in needed:
        if (name, channel) not in found:
            raise InvalidInput(path, f"there is no {channel} template {name!r}")


def _template_uses(policy: Policy, data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field path, template name, channel) of each template named, in the order given.

    The policy keeps its steps sorted by day; the path must name a step by
    its place in ``data`` as sent. Days are unique once the policy is valid.
    """
    given = {raw["day"]: index for index, raw in enumerate(data.get("steps") or [])}
    uses: list[tuple[str, str, str]] = []
    for step in sorted(policy.steps, key=lambda s: given[s.day]):
        where = f"steps[{given[step.day]}]"
        for channel, name in (("email", step.email_template), ("sms", step.sms_template)):
            if name:
                uses.append((f"{where}.{channel}_template", name, channel))
    if policy.final.email_template:
        uses.append(("final.email_template", policy.final.email_template, "email"))
    return uses


def _to_version(row: Any, kind: Collection) -> PolicyVersion:
    return PolicyVersion(
        id=row.id,
        version=row.version,
        kind=kind,
        policy=policy_for_version(row.id, row.config),
        created_at=row.created_at,
        first_used_at=row.first_used_at,
        note=row.note,
    )
