"""``/v1`` concierge: the inbox, a customer's text history, replies by hand, settings, figures."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import (
    After,
    Limit,
    Moment,
    PhoneText,
    Text,
    check_texts,
    id_path,
    page,
)
from dunwell.bootstrap import App
from dunwell.services import inbox
from dunwell.services.concierge_figures import concierge_figures
from dunwell.services.concierge_settings import (
    load_concierge_settings,
    load_helpdesk_key,
    update_concierge_settings,
)
from dunwell.services.errors import InvalidInput
from dunwell.services.ids import MAX_ID
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1", tags=["concierge"])
ConversationId = Annotated[int, id_path("conversation")]
CustomerId = Annotated[int, id_path("customer")]


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Text = Field(min_length=1, max_length=1600, description="The text to send.")


@router.get("/conversations")
def list_conversations(
    who: Reader,
    conn: ReadConn,
    q: Annotated[
        PhoneText | None, Query(max_length=200, description="Customer name, email or phone.")
    ] = None,
    status: Literal["open", "escalated", "closed"] | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = inbox.list_conversations(
        conn,
        who.site_id,
        query=q,
        status=status,
        customer_id=customer_id,
        after_id=after,
        limit=limit,
    )
    return page(rows, limit)


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: ConversationId, who: Reader, conn: ReadConn
) -> dict[str, Any]:
    return inbox.get_conversation(conn, who.site_id, conversation_id)


@router.post("/conversations/{conversation_id}/reply", status_code=201)
def reply(
    conversation_id: ConversationId, body: ReplyBody, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    return inbox.reply_by_hand(conn, who.site_id, conversation_id, body.body, now)


@router.post("/conversations/{conversation_id}/close", status_code=204)
def close(conversation_id: ConversationId, who: Writer, conn: WriteConn, app: AppDep) -> None:
    inbox.close_by_hand(conn, who.site_id, conversation_id, site_now(conn, who.site_id, app.clock))


@router.get("/customers/{customer_id}/conversations")
def customer_history(customer_id: CustomerId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return inbox.customer_history(conn, who.site_id, customer_id)


@router.get("/concierge/figures")
def figures(
    who: Reader, conn: ReadConn, since: Moment | None = None, until: Moment | None = None
) -> dict[str, Any]:
    return concierge_figures(conn, who.site_id, since, until)


@router.get("/settings/concierge")
def get_settings(who: Reader, conn: ReadConn, app: AppDep) -> dict[str, Any]:
    return _public(conn, who.site_id, app)


@router.patch("/settings/concierge")
def patch_settings(
    changes: dict[str, Any], who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    """Change any setting; ``helpdesk_api_key`` is stored encrypted and never shown again."""
    fields = dict(changes)
    key = fields.pop("helpdesk_api_key", None)
    if key is not None and not isinstance(key, str):
        raise InvalidInput("helpdesk_api_key", "must be text")
    check_texts(fields)
    # A key is a random token, stored encrypted: only held to what can be stored.
    check_texts(key, "helpdesk_api_key", cards=False)
    now = site_now(conn, who.site_id, app.clock)
    update_concierge_settings(
        conn, who.site_id, fields, now, box=app.secret_box() if key else None, helpdesk_api_key=key
    )
    return _public(conn, who.site_id, app)


def _public(conn: Connection, site_id: int, app: App) -> dict[str, Any]:
    settings = load_concierge_settings(conn, [site_id])[site_id]
    box = app.secret_box_or_none()
    has_key = box is not None and load_helpdesk_key(conn, site_id, box) is not None
    return {**asdict(settings), "helpdesk_api_key_set": has_key}
