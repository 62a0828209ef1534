"""The recovery figures of one site: what is at risk, what came back, and when.

Definitions, used the same way on every page and in the export:

* An invoice **entered dunning** when its cycle started
  (``dunning_cycles.started_at``): its first charge failed (automatic) or
  its net terms passed unpaid (manual).
* **At risk**: open or past-due invoices whose cycle is in the dunning phase
  now; the amount is what is still owed (due minus paid).
* **Recovered**: an invoice that entered dunning and was paid afterwards;
  it counts on the day it was paid, for the amount paid.
* **Recovery rate** of a period: of the invoices that *entered* dunning in
  it (by the date of failure, as Stripe reports it) and whose cycle has
  finished, the share that ended paid: recovered / (recovered + lost). The
  invoices still in dunning are left out until they finish, so a young
  period's rate is not pulled down by cycles still running; it is None
  until one has finished. The policy versions' figures count the same way.

Days and weeks are the site's local days (weeks start on Monday); stored
times are UTC. Amounts are integer minor units per currency: a site may
bill in several, and they are never added together. Every query is scoped
to the site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, select

from dunwell.domain.states import CyclePhase, InvoiceStatus
from dunwell.store.tables import dunning_cycles, invoices

#: The periods the dashboard offers, in days.
PERIODS = (30, 90, 365)
#: Up to this many days are shown day by day; longer periods week by week.
DAILY_UP_TO = 31
OPEN_STATUSES = (InvoiceStatus.OPEN.value, InvoiceStatus.PAST_DUE.value)


@dataclass
class Tally:
    """A number of invoices and their amounts, per currency."""

    invoices: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    #: Invoices per currency (``invoices`` is their sum).
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, currency: str, minor: int) -> None:
        self.invoices += 1
        self.amounts[currency] = self.amounts.get(currency, 0) + minor
        self.counts[currency] = self.counts.get(currency, 0) + 1

    def merge(self, other: Tally) -> None:
        self.invoices += other.invoices
        for currency, minor in other.amounts.items():
            self.amounts[currency] = self.amounts.get(currency, 0) + minor
        for currency, count in other.counts.items():
            self.counts[currency] = self.counts.get(currency, 0) + count

    def amount(self, currency: str) -> int:
        return self.amounts.get(currency, 0)

    def count(self, currency: str) -> int:
        return self.counts.get(currency, 0)


@dataclass(frozen=True)
class Window:
    """A period of whole local days, ``[since, until)`` in UTC, the last one being today."""

    since: datetime
    until: datetime
    zone: ZoneInfo
    weekly: bool

    @classmethod
    def last_days(cls, now: datetime, days: int, zone: ZoneInfo) -> Window:
        """The ``days`` whole local days up to and including today (the day of ``now``)."""
        today = now.astimezone(zone).date()
        since = datetime.combine(today - timedelta(days=days - 1), time(), zone)
        until = datetime.combine(today + timedelta(days=1), time(), zone)
        return cls(since.astimezone(UTC), until.astimezone(UTC), zone, weekly=days > DAILY_UP_TO)

    @property
    def first_day(self) -> date:
        return self.since.astimezone(self.zone).date()

    @property
    def last_day(self) -> date:
        return (self.until - timedelta(microseconds=1)).astimezone(self.zone).date()

    def bucket_of(self, at: datetime) -> date:
        """The local day, or the Monday of the local week, that ``at`` falls in."""
        day = at.astimezone(self.zone).date()
        return day - timedelta(days=day.weekday()) if self.weekly else day

    def buckets(self) -> list[date]:
        step = timedelta(days=7 if self.weekly else 1)
        start, end = self.bucket_of(self.since), self.bucket_of(self.until - timedelta(seconds=1))
        return [start + step * n for n in range((end - start) // step + 1)]

    def label(self, bucket: date) -> str:
        return f"week of {bucket.isoformat()}" if self.weekly else bucket.isoformat()


@dataclass
class Cohort:
    """The invoices that entered dunning in one bucket, and where they stand now."""

    start: date
    entered: Tally = field(default_factory=Tally)
    recovered: Tally = field(default_factory=Tally)
    in_dunning: int = 0

    @property
    def lost(self) -> int:
        return self.entered.invoices - self.recovered.invoices - self.in_dunning

    @property
    def finished(self) -> int:
        return self.entered.invoices - self.in_dunning

    @property
    def rate(self) -> float | None:
        """Recovered invoices over finished cycles; None when none has finished."""
        return self.recovered.invoices / self.finished if self.finished else None


@dataclass(frozen=True)
class StepCount:
    """Invoices in dunning whose last step reached is ``day`` (0: none yet)."""

    day: int
    tally: Tally


# -- now ---------------------------------------------------------------------------


def revenue_at_risk(steps: list[StepCount]) -> Tally:
    """Open and past-due invoices in dunning now, and what is still owed on them.

    The sum of :func:`in_dunning_by_step`'s steps, which hold every such invoice once.
    """
    tally = Tally()
    for step in steps:
        tally.merge(step.tally)
    return tally


def in_dunning_by_step(conn: Connection, site_id: int) -> list[StepCount]:
    """Invoices in dunning now, by the day of the last step they reached."""
    steps: dict[int, Tally] = {}
    i, c = invoices, dunning_cycles
    query = (
        select(
            i.c.currency,
            (i.c.amount_due_minor - i.c.amount_paid_minor).label("owed"),
            c.c.steps_done_through,
        )
        .join(c, c.c.invoice_id == i.c.id)
        .where(i.c.site_id == site_id, c.c.site_id == site_id)
        .where(i.c.status.in_(OPEN_STATUSES), c.c.phase == CyclePhase.DUNNING.value)
    )
    for row in conn.execute(query):
        steps.setdefault(int(row.steps_done_through), Tally()).add(row.currency, row.owed)
    return [StepCount(day, steps[day]) for day in sorted(steps)]


# -- over a period ----------------------------------------------------------------


def recovered_invoices(conn: Connection, site_id: int, window: Window) -> list[Row[Any]]:
    """Invoices recovered (paid after entering dunning) within the window, by payment time."""
    i, c = invoices, dunning_cycles
    query = (
        select(
            i.c.id,
            i.c.customer_id,
            i.c.currency,
            i.c.amount_paid_minor,
            i.c.paid_at,
            c.c.started_at,
            c.c.policy_version_id,
        )
        .join(c, c.c.invoice_id == i.c.id)
        .where(i.c.site_id == site_id, c.c.site_id == site_id)
        .where(i.c.status == InvoiceStatus.PAID.value, c.c.started_at.is_not(None))
        .where(i.c.paid_at >= c.c.started_at)
        .where(i.c.paid_at >= window.since, i.c.paid_at < window.until)
        .order_by(i.c.paid_at, i.c.id)
    )
    return list(conn.execute(query))


def recovered_total(rows: list[Row[Any]]) -> Tally:
    tally = Tally()
    for row in rows:
        tally.add(row.currency, row.amount_paid_minor)
    return tally


def recovered_by_bucket(rows: list[Row[Any]], window: Window) -> list[tuple[date, Tally]]:
    """Recovered invoices and amounts per day (or week) of payment, empty buckets included."""
    buckets = {start: Tally() for start in window.buckets()}
    for row in rows:
        buckets[window.bucket_of(row.paid_at)].add(row.currency, row.amount_paid_minor)
    return list(buckets.items())


def cohorts(conn: Connection, site_id: int, window: Window) -> list[Cohort]:
    """Per day (or week) of entry into dunning: entered, recovered since, still in dunning."""
    found = {start: Cohort(start) for start in window.buckets()}
    for row in conn.execute(_entered(site_id, window)):
        cohort = found[window.bucket_of(row.started_at)]
        cohort.entered.add(row.currency, row.amount_due_minor)
        if row.status == InvoiceStatus.PAID.value and row.paid_at >= row.started_at:
            cohort.recovered.add(row.currency, row.amount_paid_minor)
        elif row.phase == CyclePhase.DUNNING.value:
            cohort.in_dunning += 1
    return list(found.values())


def period_cohort(cohorts_: list[Cohort], window: Window) -> Cohort:
    """All the window's cohorts as one."""
    total = Cohort(window.first_day)
    for cohort in cohorts_:
        total.entered.merge(cohort.entered)
        total.recovered.merge(cohort.recovered)
        total.in_dunning += cohort.in_dunning
    return total


def _entered(site_id: int, window: Window) -> Any:
    i, c = invoices, dunning_cycles
    return (
        select(
            i.c.currency,
            i.c.amount_due_minor,
            i.c.amount_paid_minor,
            i.c.status,
            i.c.paid_at,
            c.c.started_at,
            c.c.phase,
        )
        .join(c, c.c.invoice_id == i.c.id)
        .where(i.c.site_id == site_id, c.c.site_id == site_id)
        .where(c.c.started_at >= window.since, c.c.started_at < window.until)
    )
