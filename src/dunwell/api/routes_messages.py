"""``/v1`` routes for messages, templates and the sandbox mailbox and phone."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from dunwell.api.deps import AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import (
    After,
    Limit,
    PhoneText,
    StorableText,
    Text,
    id_path,
    page,
)
from dunwell.services import message_preview, messages, templates
from dunwell.services.ids import MAX_ID
from dunwell.services.message_render import MessageRenderer
from dunwell.services.sandbox_phone import text_as_customer
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1")

Channel = Literal["email", "sms"]
MessageId = Annotated[int, id_path("message")]
Status = Literal[
    "pending", "sending", "sent", "delivered", "failed", "skipped", "blocked", "canceled"
]


#: The longest template part: Gmail clips an email past about 100 KB, and
#: each save parses and checks the whole text.
MAX_TEMPLATE = 100_000
#: Template names (``NAME`` in services/templates.py) and locales, as stored.
TemplateName = Annotated[Text, Path(max_length=100, description="The template's name.")]
Locale = Annotated[Text, Path(max_length=16, description="A language code: en, fr, pt_BR.")]


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Text | None = Field(
        None, max_length=1000, description="Email only: the subject line (Liquid)."
    )
    body_text: Text = Field(
        max_length=MAX_TEMPLATE, description="Plain-text email body or the SMS body (Liquid)."
    )
    body_html: Text | None = Field(
        None, max_length=MAX_TEMPLATE, description="Email only: optional HTML part (Liquid)."
    )


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    locale: Text | None = Field(None, max_length=16, description="A language code: en, fr.")
    customer_id: StrictInt | None = Field(
        None, ge=1, le=MAX_ID, description="Render for this customer, else sample data."
    )


class TestSendBody(PreviewBody):
    to: PhoneText = Field(max_length=320, description="An email address or a phone number.")


class PhoneReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: PhoneText = Field(
        alias="from",
        max_length=64,
        description="The customer's phone number, read with the site's SMS default region.",
    )
    # Stands for the customer's own text, so it is not refused for holding a
    # card number: like a real text's, it is removed before the text is stored.
    body: StorableText = Field(max_length=1600, description="What the customer texts.")


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
def list_templates(
    who: Reader,
    conn: ReadConn,
    name: Annotated[Text | None, Query(max_length=100, description="Only this template.")] = None,
) -> dict[str, Any]:
    return {"data": [t.as_dict() for t in templates.list_templates(conn, who.site_id, name)]}


@router.put("/templates/{name}/{channel}/{locale}")
def save_template(
    name: TemplateName,
    channel: Channel,
    locale: Locale,
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
    name: TemplateName,
    who: Writer,
    conn: WriteConn,
    channel: Channel | None = None,
    locale: Annotated[Text | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    removed = templates.delete_template(conn, who.site_id, name, channel, locale)
    return {"name": name, "deleted": removed}


@router.post("/templates/{name}/preview")
def preview_template(
    name: TemplateName, body: PreviewBody, who: Reader, conn: ReadConn, app: AppDep
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
    name: TemplateName, body: TestSendBody, who: Writer, conn: WriteConn, app: AppDep
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
    to: Annotated[Text | None, Query(max_length=320, description="An email address.")] = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = messages.sandbox_inbox(conn, who.site_id, "email", to=to, after_id=after, limit=limit)
    return page(rows, limit)


@router.get("/sandbox/phone")
def sandbox_phone(
    who: Reader,
    conn: ReadConn,
    number: Annotated[PhoneText | None, Query(max_length=32, description="E.164.")] = None,
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
