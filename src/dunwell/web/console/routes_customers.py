"""Dashboard: customers, one customer's whole file, and the invoice actions.

The invoice actions are the services' own (``invoice_actions``), run at the
site's now (a sandbox site's test clock). "Collect now" asks for the charge
in one transaction and, once that is committed, runs the collection batch
for that invoice at once, as the billing page does, so the page shows the
outcome instead of "waiting for the worker".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import Connection

from dunwell.domain.roles import Permission
from dunwell.services import dunning_status, inbox, invoice_actions, ledger_queries, messages
from dunwell.services.card_retry import collect_invoices_now
from dunwell.services.customer_records import (
    customer_events,
    customer_invoices,
    invoice_label,
    outbox_statuses,
    search_customers,
)
from dunwell.services.errors import NotFound, ServiceError
from dunwell.services.ids import parse_id
from dunwell.services.sites import site_now
from dunwell.web.console.desk import Desk, actor, refusal_status, viewer
from dunwell.web.console.event_words import describe_event

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_CUSTOMERS))]
Actor = Annotated[Desk, Depends(actor(Permission.ACT_ON_INVOICES))]

PAGE_SIZE = 50
MESSAGES_SHOWN = 500

Action = Callable[[Connection, int, int, datetime], None]
#: URL word → (service, what the notice says was done).
ACTIONS: dict[str, tuple[Action, str]] = {
    "collect-now": (invoice_actions.collect_now, "Collection requested"),
    "stop-collecting": (invoice_actions.stop_collecting, "Collection stopped"),
    "mark-paid": (invoice_actions.mark_paid, "Marked paid"),
    "reopen": (invoice_actions.reopen, "Reopened"),
}


@router.get("/dashboard/customers")
def customers_page(desk: Viewer, q: str = "", after: str = "") -> Response:
    query = q.strip()[:200]
    # A cursor that is no id starts from the top, as a blank one does.
    start = parse_id(after) or 0
    with desk.app.connect() as conn:
        found = search_customers(conn, desk.site_id, query, after_id=start, limit=PAGE_SIZE)
    context = {
        "active": "/dashboard/customers",
        "q": query,
        "customers": found,
        "next_after": found[-1]["id"] if len(found) == PAGE_SIZE else None,
    }
    return desk.page("customers.html", context)


@router.get("/dashboard/customers/{customer_id}")
def customer_page(customer_id: int, desk: Viewer) -> Response:
    return _customer_page(desk, customer_id)


@router.post("/dashboard/invoices/{invoice_id}/{action}")
def invoice_action(invoice_id: int, action: str, desk: Actor) -> Response:
    if action not in ACTIONS:
        return _problem(desk, 404, "No such action", f"There is no invoice action {action!r}.")
    run, done = ACTIONS[action]
    try:
        with desk.app.connect() as conn:
            customer_id, number = invoice_label(conn, desk.site_id, invoice_id)
    except NotFound as error:
        return _problem(desk, 404, "Invoice not found", str(error))
    try:
        with desk.app.begin() as conn:
            run(conn, desk.site_id, invoice_id, site_now(conn, desk.site_id, desk.app.clock))
    except ServiceError as error:
        return _customer_page(desk, customer_id, [str(error)], refusal_status(error))
    if action == "collect-now":
        # After the commit: the batch claims the cycle the action made due.
        collect_invoices_now(desk.app, [invoice_id])
    return desk.redirect(
        f"/dashboard/customers/{customer_id}#invoice-{invoice_id}",
        f"{done} on invoice {number}.",
    )


def _customer_page(
    desk: Desk, customer_id: int, errors: list[str] | None = None, status: int = 200
) -> Response:
    try:
        with desk.app.connect() as conn:
            context = _customer_file(conn, desk, customer_id)
    except NotFound as error:
        return _problem(desk, 404, "Customer not found", str(error))
    context.update(active="/dashboard/customers", errors=errors or [])
    return desk.page("customer.html", context, status)


def _customer_file(conn: Connection, desk: Desk, customer_id: int) -> dict[str, Any]:
    """Everything the customer page shows; raises NotFound for another site's customer."""
    site_id = desk.site_id
    customer = ledger_queries.get_customer(conn, site_id, customer_id)
    now = site_now(conn, site_id, desk.app.clock)
    # The latest messages: a long-time customer may have more than the page shows.
    sent = messages.list_messages(
        conn, site_id, customer_id=customer_id, limit=MESSAGES_SHOWN, newest_first=True
    )
    subs = ledger_queries.list_subscriptions(conn, site_id, customer_id=customer_id)
    product_ids = {item["product_id"] for sub in subs for item in sub["items"]}
    products = ledger_queries.products_by_id(conn, site_id, product_ids)
    history = inbox.customer_history(conn, site_id, customer_id)["conversations"]
    outgoing = {t["outbox_id"] for c in history for t in c["turns"] if t["outbox_id"]}
    invoices = customer_invoices(conn, site_id, customer_id)
    timeline = [
        {**event, "words": describe_event(event["type"], event["data"], desk.zone)}
        for event in customer_events(conn, site_id, customer_id)
    ]
    return {
        "customer": customer,
        "now": now,
        "subscriptions": subs,
        "products": {p["id"]: p["name"] for p in products},
        "invoices": invoices,
        "numbers": {row["id"]: row["number"] or f"#{row['id']}" for row in invoices},
        "standing": dunning_status.for_customer(conn, site_id, customer_id, now),
        "timeline": timeline,
        "messages": sent,
        "history": history,
        "delivery": outbox_statuses(conn, site_id, outgoing),
    }


def _problem(desk: Desk, status: int, title: str, message: str) -> Response:
    context = {"active": "/dashboard/customers", "title": title, "message": message}
    return desk.page("support_problem.html", context, status)
