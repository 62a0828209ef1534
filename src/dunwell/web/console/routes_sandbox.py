"""Dashboard: a sandbox site's test clock, phone and mailbox.

Advancing the clock is ``advance_clock``, as in the API and ``dunwell clock
advance``; then, because a person is watching the page, the page runs the
worker's passes until nothing is due (what ``dunwell worker --until-idle``
does), so renewals, retries, dunning steps and messages have happened when
the page comes back, even when no worker process is running. The passes are
limited to this site (``claims.only_sites``): a click never charges or
messages another merchant's customers. The worker is the ordinary one: it
claims work with leases, so a worker process running at the same moment
never does anything twice.

Texting as the customer is ``reply_as_customer`` with the concierge answering
at once, as ``POST /v1/sandbox/phone/reply`` does; the same worker passes
then deliver the answer into this phone.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.bootstrap import App
from dunwell.domain.roles import Permission
from dunwell.domain.states import SiteMode
from dunwell.services.claims import only_sites
from dunwell.services.errors import InvalidInput, NotFound, ServiceError
from dunwell.services.ledger_queries import list_customers
from dunwell.services.sandbox_phone import text_as_customer
from dunwell.services.sandbox_views import get_mail, latest_messages, texts_by_number
from dunwell.services.sites import advance_clock, parse_duration, site_now
from dunwell.web.console.desk import Desk, actor, viewer
from dunwell.worker import Worker

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.USE_SANDBOX))]
Actor = Annotated[Desk, Depends(actor(Permission.USE_SANDBOX))]

STEPS = ("1h", "1d", "3d", "7d")
#: A bound on the passes one click runs (each pass is a batch of every stage):
#: enough for weeks of a demo shop, and the page still answers if work keeps coming.
MAX_PASSES = 200


@router.get("/dashboard/sandbox")
def sandbox_page(desk: Viewer) -> Response:
    return _sandbox_page(desk)


@router.get("/dashboard/sandbox/mail/{mail_id}")
def mail_page(mail_id: int, desk: Viewer) -> Response:
    if not _is_sandbox(desk):
        return _live_site(desk)
    try:
        with desk.app.connect() as conn:
            mail = get_mail(conn, desk.site_id, mail_id)
    except NotFound as error:
        context = {"active": "/dashboard/sandbox", "title": "Not found", "message": str(error)}
        return desk.page("support_problem.html", context, 404)
    return desk.page("sandbox_mail.html", {"active": "/dashboard/sandbox", "mail": mail})


@router.post("/dashboard/sandbox/clock")
def advance(desk: Actor) -> Response:
    if not _is_sandbox(desk):
        return _live_site(desk)
    by_text = desk.form.get("by", "").strip()
    try:
        by = parse_duration(by_text)
        with desk.app.begin() as conn:
            now = advance_clock(conn, desk.site_id, by)
    except InvalidInput as error:
        # Name the form's field, as the API names its own.
        return _sandbox_page(desk, [f"Advance by: {error.message}"], 422)
    except ServiceError as error:
        return _sandbox_page(desk, [str(error)], 409)
    handled = run_due_work(desk.app, desk.site_id)
    local = now.astimezone(desk.zone).strftime("%Y-%m-%d %H:%M %Z")
    return desk.redirect(
        "/dashboard/sandbox",
        f"Test clock advanced by {by_text} to {local}; the worker handled {handled} items.",
    )


@router.post("/dashboard/sandbox/phone/reply")
def phone_reply(desk: Actor) -> Response:
    if not _is_sandbox(desk):
        return _live_site(desk)
    try:
        texted = text_as_customer(
            desk.app,
            desk.site_id,
            desk.form.get("from", ""),
            desk.form.get("body", ""),
            "sandbox-phone",
        )
    except ServiceError as error:
        return _sandbox_page(desk, [str(error)], 422)
    result, answers = texted.result, texted.answers
    run_due_work(desk.app, desk.site_id)
    said = result.reply or " / ".join(answers) or "nothing (yet)"
    return desk.redirect(
        f"/dashboard/sandbox#phone-{result.phone}", f"Texted as {result.phone}. Answer: {said}"
    )


def run_due_work(app: App, site_id: int) -> int:
    """Run worker passes for this site only until nothing is due (or ``MAX_PASSES``)."""
    with only_sites({site_id}):
        return Worker(app, name=f"dashboard-sandbox:{os.getpid()}").run_until_idle(MAX_PASSES)


def _is_sandbox(desk: Desk) -> bool:
    return desk.staff.site_mode == SiteMode.SANDBOX.value


def _live_site(desk: Desk) -> Response:
    context = {
        "active": "/dashboard",
        "title": "No sandbox on a live site",
        "message": f"{desk.staff.site_name} is a live site: it has no test clock, sandbox phone "
        "or mailbox. Its emails and texts really go out.",
    }
    return desk.page("support_problem.html", context, 409)


def _sandbox_page(desk: Desk, errors: list[str] | None = None, status: int = 200) -> Response:
    if not _is_sandbox(desk):
        return _live_site(desk)
    with desk.app.connect() as conn:
        now = site_now(conn, desk.site_id, desk.app.clock)
        texts = latest_messages(conn, desk.site_id, "sms")
        mails = latest_messages(conn, desk.site_id, "email")
        phones = [c["phone"] for c in list_customers(conn, desk.site_id, limit=200) if c["phone"]]
    context: dict[str, Any] = {
        "active": "/dashboard/sandbox",
        "now": now,
        "steps": STEPS,
        "threads": texts_by_number(texts),
        "mails": mails,
        "phones": phones,
        "errors": errors or [],
        "form": desk.form,
    }
    return desk.page("sandbox.html", context, status)
