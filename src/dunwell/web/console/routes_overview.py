"""Dashboard: the overview, the first page after signing in.

What is at risk now, what came back over the last 30 days, how the
recovery rate moved over the last 12 weeks, where the invoices in dunning
stand, how many SMS credits are left and how many messages failed. Figures are read at the site's
now: the test clock on a sandbox site.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.roles import Permission
from dunwell.services import messages, sms_credits
from dunwell.services.recovery_figures import (
    Window,
    cohorts,
    in_dunning_by_step,
    period_cohort,
    recovered_by_bucket,
    recovered_invoices,
    recovered_total,
    revenue_at_risk,
)
from dunwell.services.sites import site_now
from dunwell.web.console.desk import Desk, viewer
from dunwell.web.console.recovery_charts import (
    currencies,
    rate_chart,
    recovered_chart,
    step_label,
    steps_chart,
)

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_OVERVIEW))]

RECENT_DAYS = 30
RATE_DAYS = 12 * 7


@router.get("/dashboard")
def overview(desk: Viewer) -> Response:
    with desk.app.connect() as conn:
        now = site_now(conn, desk.site_id, desk.app.clock)
        recent = Window.last_days(now, RECENT_DAYS, desk.zone)
        weeks = Window.last_days(now, RATE_DAYS, desk.zone)
        steps = in_dunning_by_step(conn, desk.site_id)
        recovered_rows = recovered_invoices(conn, desk.site_id, recent)
        weekly = cohorts(conn, desk.site_id, weeks)
        recent_cohort = period_cohort(cohorts(conn, desk.site_id, recent), recent)
        # Read without the lock a message debit takes: the overview never waits on sending.
        credits = sms_credits.balance(conn, desk.site_id)
        failed_messages = messages.count_failed(conn, desk.site_id)
    at_risk = revenue_at_risk(steps)
    recovered = recovered_total(recovered_rows)
    by_day = recovered_by_bucket(recovered_rows, recent)
    shown = currencies(desk.staff.site_currency, [at_risk, recovered])
    context = {
        "active": "/dashboard",
        "now": now,
        "at_risk": at_risk,
        "recovered": recovered,
        "recent_cohort": recent_cohort,
        "currencies": shown,
        "steps": [(step_label(s.day), s.tally) for s in steps],
        "credits": credits,
        "failed_messages": failed_messages,
        "recovered_charts": [
            recovered_chart(by_day, recent, currency, f"recovered-{currency}") for currency in shown
        ],
        "rate_chart": rate_chart(weekly, weeks, "rate-weekly"),
        "steps_chart": steps_chart(steps, "steps"),
        "recent_days": RECENT_DAYS,
    }
    return desk.page("overview.html", context)
