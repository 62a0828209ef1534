"""Everything the analytics page and its CSV export show, gathered in one read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from dunwell.domain.states import Collection
from dunwell.services.concierge_figures import concierge_figures
from dunwell.services.errors import NotFound
from dunwell.services.policy_figures import VersionFigures, version_figures
from dunwell.services.recovery_causes import recovery_by_cause
from dunwell.services.recovery_figures import (
    Cohort,
    Tally,
    Window,
    cohorts,
    period_cohort,
    recovered_by_bucket,
    recovered_invoices,
    recovered_total,
)
from dunwell.services.sms_figures import SmsFigures, sms_figures


@dataclass(frozen=True)
class Report:
    window: Window
    #: Invoices recovered in the period, by day (or week) of payment.
    recovered: Tally
    recovered_buckets: list[tuple[date, Tally]]
    #: Invoices that entered dunning in the period, by day (or week) of entry.
    cohort: Cohort
    cohorts: list[Cohort]
    causes: dict[str, Tally]
    versions: dict[Collection, list[VersionFigures]]
    concierge: dict[str, Any]
    sms: SmsFigures


def gather(
    conn: Connection, site_id: int, now: datetime, days: int, zone: ZoneInfo, currency: str
) -> Report:
    """``currency`` is the site's: the policy versions' figures always show it, even at zero."""
    window = Window.last_days(now, days, zone)
    rows = recovered_invoices(conn, site_id, window)
    entered = cohorts(conn, site_id, window)
    return Report(
        window=window,
        recovered=recovered_total(rows),
        recovered_buckets=recovered_by_bucket(rows, window),
        cohort=period_cohort(entered, window),
        cohorts=entered,
        causes=recovery_by_cause(conn, site_id, rows),
        versions={kind: _versions(conn, site_id, kind, currency) for kind in Collection},
        concierge=concierge_figures(conn, site_id, window.since, window.until),
        sms=sms_figures(conn, site_id, window),
    )


def _versions(
    conn: Connection, site_id: int, kind: Collection, currency: str
) -> list[VersionFigures]:
    try:
        return version_figures(conn, site_id, kind, currency=currency)
    except NotFound:
        return []  # a site without a policy of this kind has no versions to show
