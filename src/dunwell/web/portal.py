"""Routes of the customer page: ``/portal/{token}`` and one form per change.

Each change posts to ``/portal/{token}/subscriptions/{id}/{action}`` with a
form token bound to that subscription and action. Cancelling has a
confirmation page (``GET .../cancel``) that first offers a skip or a delay,
and only that page issues the token the cancel form needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dunwell.services.customer_page import ACTIONS, PortalView, apply_portal_action, portal_view
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.hosted_links import LinkRefused
from dunwell.services.ids import parse_id
from dunwell.services.sites import site_now
from dunwell.services.subscription_changes import MANAGED_IN_STRIPE, MAX_AHEAD
from dunwell.web.render import page, sentence
from dunwell.web.visit import Visit, open_visit, read_form, refusal

router = APIRouter(include_in_schema=False)

DELAYS = (("1w", "1 week"), ("2w", "2 weeks"), ("1m", "1 month"))
NOT_YOURS = "That subscription is not on your account."


@router.get("/portal/{token}")
def portal_page(request: Request, token: str, done: str = "", sub: str = "") -> Response:
    try:
        visit = open_visit(request, token)
    except LinkRefused as error:
        return refusal(error)
    return _portal(visit, done=done, done_id=parse_id(sub))


@router.get("/portal/{token}/subscriptions/{subscription_id}/cancel")
def cancel_page(request: Request, token: str, subscription_id: str) -> Response:
    try:
        visit = open_visit(request, token)
    except LinkRefused as error:
        return refusal(error)
    with visit.app.connect() as conn:
        view = portal_view(conn, visit.who)
    sub = next((s for s in view.subscriptions if str(s.id) == subscription_id), None)
    if sub is None:
        return _portal(visit, status=404, page_error=NOT_YOURS)
    if sub.managed_in_stripe:
        return _portal(visit, status=409, page_error=sentence(MANAGED_IN_STRIPE))
    if not view.rules.allow_cancel or sub.status == "canceled":
        return _portal(visit, status=409, page_error="This subscription cannot be canceled here.")
    context = {**visit.context(), "view": view, "sub": sub, "delays": DELAYS}
    return page("cancel.html", context)


@router.post("/portal/{token}/subscriptions/{subscription_id}/{action}")
async def portal_post(request: Request, token: str, subscription_id: str, action: str) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_change, request, token, subscription_id, action, form)


def _change(
    request: Request, token: str, subscription_id: str, action: str, form: Mapping[str, str]
) -> Response:
    try:
        visit = open_visit(request, token)
    except LinkRefused as error:
        return refusal(error)
    sub_id = parse_id(subscription_id)
    if sub_id is None or action not in ACTIONS:
        return _portal(visit, status=404, page_error=NOT_YOURS)
    if not visit.form_ok(form, f"portal:{sub_id}:{action}"):
        return page("form_expired.html", {"back": f"/portal/{token}"}, 403)
    try:
        with visit.app.begin() as conn:
            now = site_now(conn, visit.who.site_id, visit.app.clock)
            apply_portal_action(conn, visit.who, action, sub_id, form, now)
    except InvalidInput as error:
        values = {f"s{sub_id}-{k}": v for k, v in form.items() if k != "csrf"}
        errors = {f"s{sub_id}-{error.field}": sentence(error.message)}
        return _portal(visit, status=422, errors=errors, values=values)
    except Conflict as error:
        return _portal(visit, status=409, page_error=sentence(str(error)))
    except NotFound:
        return _portal(visit, status=404, page_error=NOT_YOURS)
    return RedirectResponse(f"/portal/{token}?done={action}&sub={sub_id}", status_code=303)


def _portal(
    visit: Visit,
    *,
    status: int = 200,
    done: str = "",
    done_id: int | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    page_error: str | None = None,
) -> HTMLResponse:
    with visit.app.connect() as conn:
        view = portal_view(conn, visit.who)
        now = site_now(conn, visit.who.site_id, visit.app.clock)
    today = now.astimezone(visit.who.zone).date()
    context: dict[str, Any] = {
        **visit.context(),
        "view": view,
        "notice": _notice(visit, view, done, done_id),
        "errors": errors or {},
        "values": values or {},
        "page_error": page_error,
        "delays": DELAYS,
        "min_date": (today + timedelta(days=1)).isoformat(),
        "max_date": (now + MAX_AHEAD).astimezone(visit.who.zone).date().isoformat(),
    }
    return page("portal.html", context, status)


def _notice(visit: Visit, view: PortalView, done: str, done_id: int | None) -> str | None:
    """What the last change did, said from the subscription as it is now."""
    sub = next((s for s in view.subscriptions if s.id == done_id), None)
    if sub is None or done not in ACTIONS:
        return None
    if done == "cancel":
        return "Your subscription has been canceled. We're sorry to see you go."
    if done in ("skip", "delay", "date") and sub.next_charge_at is not None:
        return f"Done. Your next order is now on {visit.formats.day(sub.next_charge_at)}."
    return "Done. Your next order has been updated."
