"""Dashboard: every message of the site, newest first, and resending a failed one.

The customer page shows one customer's messages; this page answers "what
did not go out, and why" for the whole site. Filters are the status and
the channel; pages go back by id. A failed message can be queued again
(``messages.resend_message``, the API's own): a message that went out is
never sent twice from here, and a blocked one stays blocked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.roles import Permission
from dunwell.services import messages
from dunwell.services.errors import InvalidInput, ServiceError
from dunwell.services.ids import parse_id
from dunwell.services.message_render import MessageRenderer
from dunwell.services.sites import site_now
from dunwell.store.tables import OUTBOX_CHANNELS
from dunwell.web.console.desk import Desk, actor, refusal_status, viewer

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_CUSTOMERS))]
# Resending sends to the customer again, as an invoice action charges them again.
Resender = Annotated[Desk, Depends(actor(Permission.ACT_ON_INVOICES))]

PAGE = "/dashboard/messages"
PAGE_SIZE = 50


@router.get(PAGE)
def messages_page(desk: Viewer, status: str = "", channel: str = "", before: str = "") -> Response:
    return _page(desk, status, channel, before)


@router.post(PAGE + "/{message_id}/resend")
def resend(message_id: int, desk: Resender) -> Response:
    back = desk.form.get("back", "")
    try:
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            renderer = MessageRenderer(desk.app.links)
            messages.resend_message(conn, desk.site_id, message_id, renderer, now)
    except ServiceError as error:
        return _page(desk, "failed", "", "", [str(error)], refusal_status(error))
    # Only a path of this page may be returned to: never an address from the form.
    target = back if back.startswith(PAGE + "?") or back == PAGE else PAGE
    return desk.redirect(target, f"Message {message_id} is queued again.")


def _page(
    desk: Desk,
    status: str,
    channel: str,
    before: str,
    errors: list[str] | None = None,
    code: int = 200,
) -> Response:
    errors = list(errors or [])
    try:
        filters = _filters(status, channel, before)
    except InvalidInput as error:
        errors.append(str(error))
        filters = {"status": None, "channel": None, "before_id": None}
        code = 422
    with desk.app.connect() as conn:
        shown = messages.list_messages(
            conn, desk.site_id, limit=PAGE_SIZE, newest_first=True, **filters
        )
    context: dict[str, Any] = {
        "active": PAGE,
        "messages": shown,
        "status": filters["status"] or "",
        "channel": filters["channel"] or "",
        "statuses": messages.STATUSES,
        "channels": OUTBOX_CHANNELS,
        "older": shown[-1]["id"] if len(shown) == PAGE_SIZE else None,
        "errors": errors,
        "can_resend": desk.can(Permission.ACT_ON_INVOICES),
        "here": str(desk.request.url.path)
        + (f"?{desk.request.url.query}" if desk.request.url.query else ""),
    }
    return desk.page("messages.html", context, code)


def _filters(status: str, channel: str, before: str) -> dict[str, Any]:
    """The list's filters from the query string; a value it does not know is named."""
    if status and status not in messages.STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(messages.STATUSES)}")
    if channel and channel not in OUTBOX_CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(OUTBOX_CHANNELS)}")
    before_id = parse_id(before) if before else None
    if before and before_id is None:
        raise InvalidInput("before", "must be a message number")
    return {"status": status or None, "channel": channel or None, "before_id": before_id}
