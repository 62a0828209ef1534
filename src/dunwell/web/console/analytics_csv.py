"""The analytics figures as one tidy CSV: one row per figure, per day (or week) where it has one.

Columns: ``period_start, period_end`` (the period's first and last local
days), ``figure``, ``breakdown`` (a cause, an action, a policy version...),
``granularity`` (``day``, ``week`` or ``period`` for a total), ``date`` (the
day, or the Monday of the week; empty for totals), ``count``,
``amount_minor`` and ``currency`` (amounts in minor units, one currency per
row), and ``value`` for rates and averages (a fraction: 0.25 is 25%).
A spreadsheet can pivot it; a script can filter it by ``figure``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from dunwell.services.recovery_causes import CAUSES
from dunwell.services.recovery_figures import Tally
from dunwell.web.console.analytics_report import Report

COLUMNS = (
    "period_start",
    "period_end",
    "figure",
    "breakdown",
    "granularity",
    "date",
    "count",
    "amount_minor",
    "currency",
    "value",
)
#: A cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, Any]


def to_csv(report: Report, site_currency: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    period = {
        "period_start": report.window.first_day.isoformat(),
        "period_end": report.window.last_day.isoformat(),
    }
    for row in _rows(report, site_currency):
        writer.writerow({column: _cell(value) for column, value in {**period, **row}.items()})
    return out.getvalue()


def _rows(report: Report, site_currency: str) -> Iterator[Row]:
    yield from _series(report, site_currency)
    yield from _totals(report, site_currency)
    yield from _concierge(report.concierge)
    yield from _sms(report)
    yield from _versions(report, site_currency)


def _series(report: Report, site_currency: str) -> Iterator[Row]:
    grain = "week" if report.window.weekly else "day"
    for start, tally in report.recovered_buckets:
        yield from _money_rows("recovered", "", tally, site_currency, grain, start.isoformat())
    for cohort in report.cohorts:
        day = cohort.start.isoformat()
        yield from _money_rows("entered_dunning", "", cohort.entered, site_currency, grain, day)
        yield from _money_rows(
            "recovered_of_entered", "", cohort.recovered, site_currency, grain, day
        )
        yield _row("still_in_dunning", count=cohort.in_dunning, granularity=grain, date=day)
        yield _row("recovery_rate", value=cohort.rate, granularity=grain, date=day)
    for start, sent in report.sms.by_bucket.items():
        yield _row("sms_sent", count=sent, granularity=grain, date=start.isoformat())


def _totals(report: Report, site_currency: str) -> Iterator[Row]:
    cohort = report.cohort
    yield from _money_rows("recovered", "", report.recovered, site_currency)
    yield from _money_rows("entered_dunning", "", cohort.entered, site_currency)
    yield from _money_rows("recovered_of_entered", "", cohort.recovered, site_currency)
    yield _row("still_in_dunning", count=cohort.in_dunning)
    yield _row("lost", count=cohort.lost)
    yield _row("recovery_rate", value=cohort.rate)
    for cause in CAUSES:
        yield from _money_rows("recovered_by_cause", cause, report.causes[cause], site_currency)


def _concierge(figures: dict[str, Any]) -> Iterator[Row]:
    for action, count in figures["actions_completed"].items():
        yield _row("concierge_actions", action, count=count)
    yield _row("concierge_escalations", count=figures["escalations"])
    conversations = figures["conversations"]
    for key in ("started", "settled_without_person", "escalated"):
        yield _row("concierge_conversations", key, count=conversations[key])
    yield _row("concierge_self_service_rate", value=conversations["self_service_rate"])
    sentiment = figures["sentiment"]
    for rating, count in sentiment["distribution"].items():
        yield _row("concierge_sentiment", rating, count=count)
    yield _row(
        "concierge_sentiment_average", count=sentiment["responses"], value=sentiment["average"]
    )
    recovered = figures["recovered"]
    yield _row("concierge_recovered", count=recovered["invoices"])
    for currency, minor in sorted(recovered["amounts"].items()):
        yield _row("concierge_recovered_amount", amount_minor=minor, currency=currency)


def _sms(report: Report) -> Iterator[Row]:
    sms = report.sms
    for figure, count in (
        ("sms_sent", sms.sent),
        ("sms_delivered", sms.delivered),
        ("sms_failed", sms.failed),
        ("sms_segments", sms.segments),
        ("sms_credits_used", sms.credits_used),
        ("sms_received", sms.received),
        ("sms_opt_outs", sms.opt_outs),
        ("sms_numbers_texted", sms.numbers_texted),
    ):
        yield _row(figure, count=count)
    yield _row("sms_opt_out_rate", value=sms.opt_out_rate)


def _versions(report: Report, site_currency: str) -> Iterator[Row]:
    """All-time figures of each policy version (a version outlives any period)."""
    for kind, versions in report.versions.items():
        for v in versions:
            name = f"{kind.value} v{v.version}"
            yield _row("version_entered", name, count=v.entered, granularity="all_time")
            yield from _money_rows(
                "version_recovered", name, v.recovered, site_currency, "all_time"
            )
            yield _row("version_lost", name, count=v.lost, granularity="all_time")
            yield _row("version_in_progress", name, count=v.in_progress, granularity="all_time")
            yield _row("version_recovery_rate", name, value=v.recovery_rate, granularity="all_time")


def _money_rows(
    figure: str,
    breakdown: str,
    tally: Tally,
    site_currency: str,
    granularity: str = "period",
    date: str = "",
) -> Iterator[Row]:
    """One row per currency; the site's currency always, so an empty day still has its row."""
    for currency in sorted({site_currency, *tally.amounts}):
        yield _row(
            figure,
            breakdown,
            count=tally.count(currency),
            amount_minor=tally.amount(currency),
            currency=currency,
            granularity=granularity,
            date=date,
        )


def _row(figure: str, breakdown: str = "", **values: Any) -> Row:
    row: Row = {
        "figure": figure,
        "breakdown": breakdown,
        "granularity": "period",
        "date": "",
        "count": "",
        "amount_minor": "",
        "currency": "",
        "value": "",
    }
    row.update(values)
    if isinstance(row["value"], float):
        row["value"] = f"{row['value']:.4f}"
    elif row["value"] is None:
        row["value"] = ""
    return row


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
