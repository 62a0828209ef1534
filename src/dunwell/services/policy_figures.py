"""How each version of a site's dunning policy has done, version by version.

An invoice is counted under the version its cycle was pinned to when it
entered dunning (``dunning_cycles.policy_version_id``), so later saves never
move old invoices from one version's figures to another's.

* **entered**: invoices that entered dunning with the version;
* **recovered**: of those, invoices now paid (by a retry, a new card, the
  concierge or marked paid: the money came in after the cycle began);
* **in progress**: cycles still running and not paid;
* **lost**: the rest: written off, left past due, stopped;
* **recovery rate**: recovered / (recovered + lost), the share of finished
  cycles that ended paid; None until one has finished.

Amounts are the paid amounts of invoices in the site's currency, in minor
units; invoices in another currency count in the numbers but not in the
amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select

from dunwell.domain.states import Collection, CyclePhase, InvoiceStatus
from dunwell.services.policies import PolicyVersion, list_versions
from dunwell.store.tables import dunning_cycles, invoices, sites


@dataclass(frozen=True)
class VersionFigures:
    version_id: int
    version: int
    created_at: datetime
    entered: int
    recovered: int
    recovered_minor: int
    lost: int
    in_progress: int
    recovery_rate: float | None
    currency: str


def version_figures(
    conn: Connection,
    site_id: int,
    kind: Collection,
    *,
    versions: list[PolicyVersion] | None = None,
    currency: str | None = None,
) -> list[VersionFigures]:
    """One row per version of the site's ``kind`` policy, oldest first, with its outcomes.

    A caller that has already read the versions (``list_versions``) or the site's
    currency passes them, so they are not read twice.
    """
    if versions is None:
        versions = list_versions(conn, site_id, kind)
    if currency is None:
        currency = conn.execute(select(sites.c.currency).where(sites.c.id == site_id)).scalar_one()
    counts = _counts(conn, site_id, currency, [version.id for version in versions])
    figures = []
    for version in versions:
        entered, recovered, amount, running = counts.get(version.id, (0, 0, 0, 0))
        lost = entered - recovered - running
        finished = recovered + lost
        figures.append(
            VersionFigures(
                version_id=version.id,
                version=version.version,
                created_at=version.created_at,
                entered=entered,
                recovered=recovered,
                recovered_minor=amount,
                lost=lost,
                in_progress=running,
                recovery_rate=recovered / finished if finished else None,
                currency=currency,
            )
        )
    return figures


def _counts(
    conn: Connection, site_id: int, currency: str, version_ids: list[int]
) -> dict[int, tuple[int, int, int, int]]:
    """Version id -> (entered, recovered, recovered amount, in progress), one query.

    Only the cycles pinned to these versions (one kind's) are aggregated.
    """
    if not version_ids:
        return {}
    paid = invoices.c.status == InvoiceStatus.PAID.value
    running = and_(dunning_cycles.c.phase == CyclePhase.DUNNING.value, ~paid)
    amount = case((and_(paid, invoices.c.currency == currency), invoices.c.amount_paid_minor))
    rows = conn.execute(
        select(
            dunning_cycles.c.policy_version_id,
            func.count().label("entered"),
            func.count(case((paid, 1))).label("recovered"),
            func.coalesce(func.sum(amount), 0).label("amount"),
            func.count(case((running, 1))).label("running"),
        )
        .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
        .where(dunning_cycles.c.site_id == site_id, invoices.c.site_id == site_id)
        # A cycle is pinned once its invoice entered dunning; unpinned ones never did.
        .where(dunning_cycles.c.policy_version_id.in_(version_ids))
        .group_by(dunning_cycles.c.policy_version_id)
    )
    return {
        row.policy_version_id: (row.entered, row.recovered, int(row.amount), row.running)
        for row in rows
    }
