"""The recovery figures as charts, shared by the overview and analytics pages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from markupsafe import Markup

from dunwell.services.recovery_figures import Cohort, StepCount, Tally, Window
from dunwell.web.console.charts import Point, bar_chart, line_chart
from dunwell.web.console.views import money, percent


def currencies(site_currency: str, tallies: Iterable[Tally]) -> list[str]:
    """The site's currency first, then any other the figures hold, alphabetically."""
    others = {currency for tally in tallies for currency in tally.amounts}
    return [site_currency, *sorted(others - {site_currency})]


def recovered_chart(
    buckets: Sequence[tuple[date, Tally]], window: Window, currency: str, chart_id: str
) -> Markup:
    points = [Point(window.label(start), tally.amount(currency)) for start, tally in buckets]
    per = "week" if window.weekly else "day"
    return bar_chart(
        points,
        f"Recovered revenue per {per} ({currency})",
        chart_id,
        lambda minor: money(round(minor), currency),
    )


def rate_chart(cohorts: Sequence[Cohort], window: Window, chart_id: str) -> Markup:
    """Recovery rate per cohort; a day or week with no invoice entering has no rate and no point."""
    points = [Point(window.label(c.start), c.rate) for c in cohorts if c.rate is not None]
    per = "week" if window.weekly else "day"
    return line_chart(
        points, f"Recovery rate by {per} of entry into dunning", chart_id, lambda v: percent(v, 0)
    )


def steps_chart(steps: Sequence[StepCount], chart_id: str) -> Markup:
    points = [Point(step_label(s.day), s.tally.invoices) for s in steps]
    return bar_chart(points, "Invoices in dunning by last step reached", chart_id)


def step_label(day: int) -> str:
    return "Before the first step" if day == 0 else f"Day {day} step"
