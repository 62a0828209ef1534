"""``/v1`` routes for messages, templates and the sandbox mailbox and phone."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dunwell.api.deps import AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import MAX_ID, After, Limit, id_path, page
from dunwell.services import message_preview, messages, templates
from dunwell.services.message_render import MessageRenderer
from dunwell.services.sandbox_phone import text_as_customer
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1")

Channel = Literal["email", "sms"]
MessageId = Annotated[int, id_path("message")]
Status = Literal[
    "pending", "sending", "sent", "delivered", "failed", "skipped", "blocked", "canceled"
]


class TemplateBody(BaseModel):
    subject: str | None = Field(None, description="Email only: the subject line (Liquid).")
    body_text: str = Field(description="Plain-text email body or the SMS body (Liquid).")
    body_html: str | None = Field(None, description="Email only: optional HTML part (Liquid).")


class PreviewBody(BaseModel):
    channel: Channel
    locale: str | None = None
    customer_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Render for this customer, else sample data."
    )


class TestSendBody(PreviewBody):
    to: str = Field(description="An email address or a phone number.")


class PhoneReply(BaseModel):
    from_: str = Field(alias="from", description="The customer's phone number.")
    body: str


@router.get("/messages")
def list_messages(
    who: Reader,
    conn: ReadConn,
    status: Status | None = None,
    channel: Channel | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = messages.list_messages(
        conn,
        who.site_id,
        status=status,
        channel=channel,
        customer_id=customer_id,
        after_id=after,
        limit=limit,
    )
    return page(rows, limit)


@router.get("/messages/{message_id}")
def get_message(message_id: MessageId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return messages.get_message(conn, who.site_id, message_id)


@router.post("/messages/{message_id}/resend")
def resend_message(
    message_id: MessageId, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    return messages.resend_message(conn, who.site_id, message_id, MessageRenderer(app.links), now)


@router.get("/templates")
def list_templates(who: Reader, conn: ReadConn, name: str | None = None) -> dict[str, Any]:
    return {"data": [t.as_dict() for t in templates.list_templates(conn, who.site_id, name)]}


@router.put("/templates/{name}/{channel}/{locale}")
def save_template(
    name: str,
    channel: Channel,
    locale: str,
    body: TemplateBody,
    who: Writer,
    conn: WriteConn,
    app: AppDep,
) -> dict[str, Any]:
    saved = templates.save_template(
        conn,
        who.site_id,
        name,
        channel,
        locale,
        body_text=body.body_text,
        subject=body.subject,
        body_html=body.body_html,
        now=site_now(conn, who.site_id, app.clock),
    )
    return saved.as_dict()


@router.delete("/templates/{name}")
def delete_template(
    name: str,
    who: Writer,
    conn: WriteConn,
    channel: Channel | None = None,
    locale: str | None = None,
) -> dict[str, Any]:
    removed = templates.delete_template(conn, who.site_id, name, channel, locale)
    return {"name": name, "deleted": removed}


@router.post("/templates/{name}/preview")
def preview_template(
    name: str, body: PreviewBody, who: Reader, conn: ReadConn, app: AppDep
) -> dict[str, Any]:
    return message_preview.preview(
        conn,
        app.links(),
        who.site_id,
        name,
        body.channel,
        locale=body.locale,
        customer_id=body.customer_id,
        now=site_now(conn, who.site_id, app.clock),
    )


@router.post("/templates/{name}/test", status_code=202)
def send_test(
    name: str, body: TestSendBody, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    message_id = message_preview.send_test(
        conn,
        app.links(),
        who.site_id,
        name,
        body.channel,
        to=body.to,
        customer_id=body.customer_id,
        locale=body.locale,
        now=site_now(conn, who.site_id, app.clock),
    )
    return {"message_id": message_id, "status": "pending"}


@router.get("/sandbox/mailbox")
def sandbox_mailbox(
    who: Reader,
    conn: ReadConn,
    to: str | None = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = messages.sandbox_inbox(conn, who.site_id, "email", to=to, after_id=after, limit=limit)
    return page(rows, limit)


@router.get("/sandbox/phone")
def sandbox_phone(
    who: Reader,
    conn: ReadConn,
    number: str | None = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = messages.sandbox_inbox(conn, who.site_id, "sms", to=number, after_id=after, limit=limit)
    return page(rows, limit)


@router.post("/sandbox/phone/reply")
def sandbox_reply(body: PhoneReply, who: Writer, app: AppDep) -> dict[str, Any]:
    """Text as the customer; the concierge's answers are queued before this returns."""
    texted = text_as_customer(app, who.site_id, body.from_, body.body, "sandbox-phone")
    result, answers = texted.result, texted.answers
    return {
        "phone": result.phone,
        "customer_id": result.customer_id,
        "keyword": result.keyword.value if result.keyword else None,
        "reply": result.reply,
        "concierge": answers,
    }
