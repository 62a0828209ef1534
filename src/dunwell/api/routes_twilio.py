"""Twilio's webhooks: inbound texts and delivery status callbacks.

Both verify ``X-Twilio-Signature`` with the SDK's own ``RequestValidator``
and the site's auth token *before* anything is stored; a forged or altered
request gets 403 and changes nothing. The URL Twilio signed is rebuilt from
``DUNWELL_PUBLIC_URL`` plus the request path, not from the Host header,
because behind a proxy or load balancer the server sees another scheme and
host than the one Twilio called.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response
from sqlalchemy import Connection, select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from dunwell.api.deps import AppDep
from dunwell.bootstrap import App
from dunwell.services.channel_config import load_channel_configs
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.delivery_status import apply_status
from dunwell.services.inbound_sms import InboundSms, receive_sms
from dunwell.services.sites import site_now
from dunwell.store.tables import sites

router = APIRouter(prefix="/twilio", include_in_schema=True, tags=["twilio"])
TWIML = "application/xml"
WEBHOOK_OWNER = "twilio-webhook"


@router.post("/{slug}/sms")
async def inbound_sms(
    slug: str, request: Request, app: AppDep, background: BackgroundTasks
) -> Response:
    params = await _form(request)
    with app.begin() as conn:
        site_id = _verified_site(app, conn, slug, request, params)
        sms = InboundSms(
            site_id=site_id,
            provider="twilio",
            sid=_required(params, "MessageSid"),
            from_phone=_required(params, "From"),
            to_phone=params.get("To"),
            body=params.get("Body", ""),
            opt_out_type=params.get("OptOutType"),
        )
        result = receive_sms(conn, sms, site_now(conn, site_id, app.clock))
    if result.waiting_id is not None:
        # Answered after Twilio has its 200: the concierge may take a moment,
        # and the worker picks the text up anyway if this process dies first.
        background.add_task(answer_pending_texts, app, WEBHOOK_OWNER, 1, [result.waiting_id])
    answer = MessagingResponse()
    if result.reply:
        answer.message(result.reply)
    return Response(str(answer), media_type=TWIML)


@router.post("/{slug}/status", status_code=204)
async def status_callback(slug: str, request: Request, app: AppDep) -> Response:
    params = await _form(request)
    with app.begin() as conn:
        site_id = _verified_site(app, conn, slug, request, params)
        apply_status(
            conn,
            site_id,
            _required(params, "MessageSid"),
            _required(params, "MessageStatus"),
            params.get("ErrorCode") or None,
            site_now(conn, site_id, app.clock),
        )
    return Response(status_code=204)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


def _verified_site(
    app: App, conn: Connection, slug: str, request: Request, params: dict[str, Any]
) -> int:
    site_id = conn.execute(select(sites.c.id).where(sites.c.slug == slug)).scalar()
    config = None
    if site_id is not None:
        config = load_channel_configs(conn, [site_id], app.secret_box_or_none()).get(
            (site_id, "sms")
        )
    # The same answer whether the site or its Twilio setup is missing or the
    # signature is wrong: nothing for a prober to learn.
    if site_id is None or config is None or config.provider != "twilio" or not config.secret:
        raise HTTPException(403, "Request signature could not be verified")
    url = app.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not RequestValidator(config.secret).validate(url, params, signature):
        raise HTTPException(403, "Request signature could not be verified")
    return int(site_id)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise HTTPException(400, f"{name} is missing")
    return value
