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

Recovered invoices are tallied per currency (paid amounts in minor units,
with their count), as the overview's figures are: amounts in different
currencies are never added together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select

from dunwell.domain.states import Collection, CyclePhase, InvoiceStatus
from dunwell.services.policies import PolicyVersion, list_versions
from dunwell.services.recovery_figures import Tally
from dunwell.store.tables import dunning_cycles, invoices, sites


@dataclass(frozen=True)
class VersionFigures:
    version_id: int
    version: int
    created_at: datetime
    entered: int
    #: The invoices recovered, and their paid amounts, per currency.
    recovered: Tally
    lost: int
    in_progress: int
    recovery_rate: float | None
    #: The site's currency: listed first, and shown even when nothing was recovered in it.
    currency: str

    @property
    def currencies(self) -> list[str]:
        """The site's currency first, then any other recovered in, alphabetically."""
        others = set(self.recovered.amounts) - {self.currency}
        return [self.currency, *sorted(others)]


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
    counts = _counts(conn, site_id, [version.id for version in versions])
    figures = []
    for version in versions:
        found = counts.get(version.id) or _Counts()
        recovered = found.recovered
        lost = found.entered - recovered.invoices - found.running
        finished = recovered.invoices + lost
        figures.append(
            VersionFigures(
                version_id=version.id,
                version=version.version,
                created_at=version.created_at,
                entered=found.entered,
                recovered=recovered,
                lost=lost,
                in_progress=found.running,
                recovery_rate=recovered.invoices / finished if finished else None,
                currency=currency,
            )
        )
    return figures


@dataclass
class _Counts:
    """One version's cycles: entered, recovered (per currency) and still running."""

    entered: int = 0
    recovered: Tally = field(default_factory=Tally)
    running: int = 0


def _counts(conn: Connection, site_id: int, version_ids: list[int]) -> dict[int, _Counts]:
    """Version id -> its entered, recovered (per currency) and in-progress counts, one query.

    Only the cycles pinned to these versions (one kind's) are aggregated, a
    row per version and currency, so each currency's amounts are summed apart.
    """
    if not version_ids:
        return {}
    paid = invoices.c.status == InvoiceStatus.PAID.value
    running = and_(dunning_cycles.c.phase == CyclePhase.DUNNING.value, ~paid)
    rows = conn.execute(
        select(
            dunning_cycles.c.policy_version_id,
            invoices.c.currency,
            func.count().label("entered"),
            func.count(case((paid, 1))).label("recovered"),
            func.coalesce(func.sum(case((paid, invoices.c.amount_paid_minor))), 0).label("amount"),
            func.count(case((running, 1))).label("running"),
        )
        .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
        .where(dunning_cycles.c.site_id == site_id, invoices.c.site_id == site_id)
        # A cycle is pinned once its invoice entered dunning; unpinned ones never did.
        .where(dunning_cycles.c.policy_version_id.in_(version_ids))
        .group_by(dunning_cycles.c.policy_version_id, invoices.c.currency)
    )
    counts: dict[int, _Counts] = {}
    for row in rows:
        found = counts.setdefault(row.policy_version_id, _Counts())
        found.entered += row.entered
        found.running += row.running
        if row.recovered:
            # A currency with nothing recovered gets no amount (no "€0.00" beside the rest).
            amounts = {row.currency: int(row.amount)}
            found.recovered.merge(Tally(row.recovered, amounts, {row.currency: row.recovered}))
    return counts
