"""Dashboard: analytics over the last 30, 90 or 365 days, and their CSV export.

``GET /dashboard/analytics?days=N`` shows recovery over time, by cause and
by policy version, the concierge's outcomes and sentiment, and texting
(volume, segments, credits, opt-outs). ``GET /dashboard/analytics/export.csv?days=N``
downloads the same figures (see :mod:`dunwell.web.console.analytics_csv`);
it needs the export permission, which the configuration role lacks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.roles import Permission
from dunwell.services.errors import InvalidInput
from dunwell.services.ids import parse_id
from dunwell.services.recovery_causes import LABELS as CAUSE_LABELS
from dunwell.services.recovery_figures import PERIODS
from dunwell.services.sites import site_now
from dunwell.web.console.analytics_csv import to_csv
from dunwell.web.console.analytics_report import Report, gather
from dunwell.web.console.charts import Point, bar_chart
from dunwell.web.console.desk import Desk, viewer
from dunwell.web.console.recovery_charts import currencies, rate_chart, recovered_chart
from dunwell.web.console.views import NONE, message_page, money

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_ANALYTICS))]
Exporter = Annotated[Desk, Depends(viewer(Permission.EXPORT))]

DEFAULT_DAYS = PERIODS[0]


def parse_days(value: str | None) -> int:
    """The period asked for; anything but one of PERIODS is refused, naming the field."""
    if value is None or value == "":
        return DEFAULT_DAYS
    days = parse_id(value)
    if days is None or days not in PERIODS:
        choices = ", ".join(str(p) for p in PERIODS)
        raise InvalidInput("days", f"choose one of {choices} (got {value[:20]!r})")
    return days


def _report(desk: Desk, days: int) -> Report:
    with desk.app.connect() as conn:
        now = site_now(conn, desk.site_id, desk.app.clock)
        return gather(conn, desk.site_id, now, days, desk.zone, desk.staff.site_currency)


@router.get("/dashboard/analytics")
def analytics(desk: Viewer, days: str | None = None) -> Response:
    errors: list[str] = []
    try:
        chosen = parse_days(days)
    except InvalidInput as error:
        errors.append(str(error))
        chosen = DEFAULT_DAYS
    report = _report(desk, chosen)
    shown = currencies(
        desk.staff.site_currency,
        [report.recovered, report.cohort.entered, *report.causes.values()],
    )
    sms_points = [
        Point(report.window.label(start), sent) for start, sent in report.sms.by_bucket.items()
    ]
    context = {
        "active": "/dashboard/analytics",
        "errors": errors,
        "periods": PERIODS,
        "days": chosen,
        "report": report,
        "currencies": shown,
        "cause_labels": CAUSE_LABELS,
        "none_shown": NONE,
        "concierge_amounts": ", ".join(
            money(minor, currency)
            for currency, minor in sorted(report.concierge["recovered"]["amounts"].items())
        ),
        "recovered_charts": [
            recovered_chart(report.recovered_buckets, report.window, c, f"an-recovered-{c}")
            for c in shown
        ],
        "rate_chart": rate_chart(report.cohorts, report.window, "an-rate"),
        "sms_chart": bar_chart(
            sms_points,
            f"Texts sent per {'week' if report.window.weekly else 'day'}",
            "an-sms",
        ),
    }
    return desk.page("analytics.html", context, 422 if errors else 200)


@router.get("/dashboard/analytics/export.csv")
def export_csv(desk: Exporter, days: str | None = None) -> Response:
    try:
        chosen = parse_days(days)
    except InvalidInput as error:
        return message_page("Cannot export", str(error), 422)
    report = _report(desk, chosen)
    body = to_csv(report, desk.staff.site_currency)
    name = (
        f"dunwell-analytics-{desk.staff.site_slug}-"
        f"{report.window.first_day.isoformat()}-{report.window.last_day.isoformat()}.csv"
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # The figures are the merchant's business: never kept by a cache on the way.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
