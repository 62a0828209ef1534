"""Dashboard: the SMS inbox, one conversation with how each text was understood, replies by hand.

A reply by hand is the inbox service's own (``inbox.reply_by_hand``): a
text queued in the outbox that passes every SMS check like any other, and
that takes the conversation from the concierge (``escalated``) so it does
not answer over the person. Closing gives the number back to the concierge.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.roles import Permission
from dunwell.services import inbox
from dunwell.services.customer_records import outbox_statuses
from dunwell.services.errors import NotFound, ServiceError
from dunwell.services.ids import parse_id
from dunwell.services.ledger_queries import get_customer
from dunwell.services.sites import site_now
from dunwell.web.console.desk import Desk, actor, refusal_status, viewer

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_INBOX))]
Actor = Annotated[Desk, Depends(actor(Permission.REPLY_INBOX))]

PAGE_SIZE = 50
STATUSES = ("open", "escalated", "closed")


@router.get("/dashboard/inbox")
def inbox_page(desk: Viewer, q: str = "", status: str = "", after: str = "") -> Response:
    query = q.strip()[:200]
    chosen = status if status in STATUSES else ""
    with desk.app.connect() as conn:
        found = inbox.list_conversations(
            conn,
            desk.site_id,
            query=query or None,
            status=chosen or None,
            # A cursor that is no id starts from the top, as an unknown status shows all.
            after_id=parse_id(after) or 0,
            limit=PAGE_SIZE,
        )
    context = {
        "active": "/dashboard/inbox",
        "q": query,
        "status": chosen,
        "statuses": STATUSES,
        "conversations": found,
        "next_after": found[-1]["id"] if len(found) == PAGE_SIZE else None,
    }
    return desk.page("inbox.html", context)


@router.get("/dashboard/inbox/{conversation_id}")
def conversation_page(conversation_id: int, desk: Viewer) -> Response:
    return _conversation_page(desk, conversation_id)


@router.post("/dashboard/inbox/{conversation_id}/reply")
def reply(conversation_id: int, desk: Actor) -> Response:
    try:
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            sent = inbox.reply_by_hand(
                conn, desk.site_id, conversation_id, desk.form.get("body", ""), now
            )
    except ServiceError as error:
        return _refused(desk, conversation_id, error)
    return desk.redirect(
        f"/dashboard/inbox/{conversation_id}",
        f"Reply queued as message #{sent['message_id']}; it goes out after the usual SMS checks. "
        "The concierge stays quiet in this conversation until you close it.",
    )


@router.post("/dashboard/inbox/{conversation_id}/close")
def close(conversation_id: int, desk: Actor) -> Response:
    try:
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            inbox.close_by_hand(conn, desk.site_id, conversation_id, now)
    except ServiceError as error:
        return _refused(desk, conversation_id, error)
    return desk.redirect(
        f"/dashboard/inbox/{conversation_id}",
        "Conversation closed; the customer's next text starts a new one with the concierge.",
    )


def _refused(desk: Desk, conversation_id: int, error: ServiceError) -> Response:
    """Show the conversation again with what went wrong, keeping the typed reply."""
    return _conversation_page(desk, conversation_id, [str(error)], refusal_status(error))


def _conversation_page(
    desk: Desk, conversation_id: int, errors: list[str] | None = None, status: int = 200
) -> Response:
    try:
        with desk.app.connect() as conn:
            conversation = inbox.get_conversation(conn, desk.site_id, conversation_id)
            customer = (
                get_customer(conn, desk.site_id, conversation["customer_id"])
                if conversation["customer_id"]
                else None
            )
            outgoing = {t["outbox_id"] for t in conversation["turns"] if t["outbox_id"]}
            delivery = outbox_statuses(conn, desk.site_id, outgoing)
    except NotFound as error:
        missing = {"active": "/dashboard/inbox", "title": "Not found", "message": str(error)}
        return desk.page("support_problem.html", missing, 404)
    context: dict[str, Any] = {
        "active": "/dashboard/inbox",
        "conversation": conversation,
        "customer": customer,
        "delivery": delivery,
        "errors": errors or [],
        "form": desk.form,
    }
    return desk.page("conversation.html", context, status)
