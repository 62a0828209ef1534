"""Routes of the hosted pages: the billing page here, the customer page in :mod:`.portal`.

This module's ``router`` carries both, and the static files under
``/static/hosted/``, so the application registers one router.

Every page opens the link first (:func:`~dunwell.services.hosted_links.open_link`,
against the real clock) and shows nothing about anyone when it is refused.
Every form carries a form token (:mod:`dunwell.web.csrf`); a successful post
redirects (303) to a page that shows the outcome, so a refresh never posts
again. Errors re-render the page with the message next to the field.

Forms are read with ``request.form()`` rather than typed parameters, so a
malformed post gets the page back with an error, not a JSON problem.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.billing_page import BillingView, billing_view, read_test_card, save_card
from dunwell.services.card_retry import retry_results
from dunwell.services.errors import InvalidInput
from dunwell.services.hosted_links import LinkRefused
from dunwell.services.ids import parse_id
from dunwell.services.portal_rules import PortalRules, load_portal_rules
from dunwell.services.sites import site_now
from dunwell.services.stripe_setup import CardSetup, CardSetupError, StripeCardSetup
from dunwell.web.portal import router as portal_router
from dunwell.web.render import STATIC, page, sentence
from dunwell.web.static_files import serve_static
from dunwell.web.visit import Visit, open_visit, read_form, refusal

log = logging.getLogger("dunwell.web")

router = APIRouter(include_in_schema=False)
router.include_router(portal_router)

STATIC_FILES = {"hosted.css": "text/css", "stripe-setup.js": "text/javascript"}
CARD_FIELDS = {
    "number": "card-number",
    "exp_month": "card-exp-month",
    "exp_year": "card-exp-year",
    "cvc": "card-cvc",
    "setup_intent": "card-element",
}
MAX_RESULTS = 50


@router.get("/static/hosted/{name}")
def static_file(name: str) -> Response:
    return serve_static(STATIC, name, STATIC_FILES.get(name), max_age=3600)


@router.get("/billing/{token}")
def billing_page(request: Request, token: str, saved: str = "", retried: str = "") -> Response:
    try:
        visit = open_visit(request, token)
    except LinkRefused as error:
        return refusal(error)
    return _billing(visit, saved=saved == "1", retried=_ids(retried))


@router.post("/billing/{token}")
async def billing_post(request: Request, token: str) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_billing_post, request, token, form)


def _billing_post(request: Request, token: str, form: Mapping[str, str]) -> Response:
    try:
        visit = open_visit(request, token)
    except LinkRefused as error:
        return refusal(error)
    if not visit.form_ok(form, "billing"):
        return page("form_expired.html", {"back": f"/billing/{token}"}, 403)
    try:
        return _save(visit, form)
    except Exception as error:
        # Tracebacks list code, not values; the message is redacted in case a
        # library ever quotes the form back. Nothing was saved.
        log.error(
            "saving a card failed: %s: %s\n%s",
            type(error).__name__,
            redact_card_numbers(str(error)),
            "".join(traceback.format_tb(error.__traceback__)),
        )
        return page("server_error.html", {}, 500)


def _save(visit: Visit, form: Mapping[str, str]) -> Response:
    with visit.app.connect() as conn:
        rules = load_portal_rules(conn, visit.who.site_id)
        view = billing_view(conn, visit.who, rules, _stripe_ready(visit, rules))
        today = _site_today(conn, visit)
    try:
        if view.gateway == "sandbox":
            card = read_test_card(form, today)
        elif view.gateway == "stripe":
            setup = _card_setup(visit)
            assert setup is not None  # stripe_ready said so
            try:
                card = setup.finish(
                    visit.who.site_id, visit.who.customer_id, form.get("setup_intent", "")
                )
            except CardSetupError as error:
                raise InvalidInput("setup_intent", str(error)) from None
        else:
            return _billing(visit, status=409)
    except InvalidInput as error:
        kept = {k: form.get(k, "") for k in ("exp_month", "exp_year")}  # never number or cvc
        errors = {CARD_FIELDS.get(error.field, "card-number"): sentence(error.message)}
        return _billing(visit, status=422, errors=errors, values=kept)
    retried = save_card(visit.app, visit.who, view.gateway, card)
    query = "saved=1" + (f"&retried={','.join(map(str, retried))}" if retried else "")
    return RedirectResponse(f"/billing/{visit.token}?{query}", status_code=303)


def _billing(
    visit: Visit,
    *,
    status: int = 200,
    saved: bool = False,
    retried: list[int] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    who = visit.who
    with visit.app.connect() as conn:
        rules = load_portal_rules(conn, who.site_id)
        view = billing_view(conn, who, rules, _stripe_ready(visit, rules))
        results = retry_results(conn, who.site_id, who.customer_id, retried or [])
        today = _site_today(conn, visit)
    stripe, setup_error = _stripe_form(visit, view, rules)
    context: dict[str, Any] = {
        **visit.context(),
        "view": view,
        "results": results,
        "saved": saved,
        "errors": errors or {},
        "values": values or {},
        "today": today,
        "stripe": stripe,
        "setup_error": setup_error,
    }
    return page("billing.html", context, status, stripe=stripe is not None)


def _stripe_form(
    visit: Visit, view: BillingView, rules: PortalRules
) -> tuple[dict[str, str] | None, str | None]:
    """The Stripe Elements settings for the page, or why the form cannot load."""
    setup = _card_setup(visit)
    if view.gateway != "stripe" or setup is None or not rules.stripe_publishable_key:
        return None, None
    known = view.card.gateway_customer if view.card and view.card.gateway == "stripe" else None
    try:
        started = setup.start(visit.who.site_id, visit.who.customer_id, known, view.email)
    except CardSetupError as error:
        log.warning("Stripe card setup could not start: %s", error)
        return None, "The card form cannot load right now. Please try again in a few minutes."
    return {"key": rules.stripe_publishable_key, "secret": started.client_secret}, None


def _card_setup(visit: Visit) -> CardSetup | None:
    """The Stripe SetupIntent helper: one a test put on the app, else one from settings."""
    state = visit.request.app.state
    setup: CardSetup | None = getattr(state, "hosted_card_setup", None)
    if setup is None and visit.app.settings.stripe_api_key:
        settings = visit.app.settings
        setup = StripeCardSetup(settings.stripe_api_key, settings.stripe_api_base or None)
        state.hosted_card_setup = setup
    return setup


def _stripe_ready(visit: Visit, rules: PortalRules) -> bool:
    return bool(rules.stripe_publishable_key) and _card_setup(visit) is not None


def _site_today(conn: Connection, visit: Visit) -> date:
    """The customer's today by the site's clock (a sandbox site's test clock)."""
    return site_now(conn, visit.who.site_id, visit.app.clock).astimezone(visit.who.zone).date()


def _ids(text: str) -> list[int]:
    found = (parse_id(part) for part in text.split(","))
    return [found_id for found_id in found if found_id is not None][:MAX_RESULTS]
