"""Twilio's webhooks: inbound texts and delivery status callbacks.

Both verify ``X-Twilio-Signature`` with the SDK's own ``RequestValidator``
and the site's auth token *before* anything is stored; a forged or altered
request gets 403 and changes nothing. The URL Twilio signed is rebuilt from
``DUNWELL_PUBLIC_URL`` plus the request path, not from the Host header,
because behind a proxy or load balancer the server sees another scheme and
host than the one Twilio called. The site and its validator come from a
cache kept for a few seconds (:mod:`dunwell.api.twilio_sites`).

Nothing here blocks the event loop on the database. An inbound text goes to
the process's writer (:mod:`dunwell.services.inbound_writer`), which stores
it with the others waiting in one transaction; the route awaits that commit
and only then answers 200, so a text Twilio got a 200 for is stored. If it
could not be stored the answer is 500. Twilio does not post it again by
itself; the worker finds it in Twilio's message log later
(:mod:`dunwell.services.twilio_catch_up`), and a MessageSid already
stored changes nothing. A text for the concierge is then
offered to the process's answerer, or left to the worker when it is busy
(:mod:`dunwell.services.concierge_answerer`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from dunwell.api.twilio_inbound import TwilioInbound, twilio_inbound
from dunwell.bootstrap import App
from dunwell.services.delivery_status import apply_status
from dunwell.services.inbound_sms import InboundSms
from dunwell.services.inbound_writer import WriterClosed
from dunwell.services.sites import site_now

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio", include_in_schema=True, tags=["twilio"])
TWIML = "application/xml"
FORM = "application/x-www-form-urlencoded"
#: The answer to every text that gets no reply (most of them), built once.
NO_REPLY = str(MessagingResponse())
_URL_UNSAFE = str.maketrans("", "", "\t\r\n")


@router.post("/{slug}/sms")
async def inbound_sms(slug: str, request: Request) -> Response:
    inbound = twilio_inbound(request)
    params = await _form(request)
    site_id = await _verified_site(inbound, slug, request, params)
    sms = InboundSms(
        site_id=site_id,
        provider="twilio",
        sid=_required(params, "MessageSid"),
        from_phone=_required(params, "From"),
        to_phone=params.get("To"),
        body=params.get("Body", ""),
        opt_out_type=params.get("OptOutType"),
    )
    try:
        result = await inbound.writer.store(sms)
    except WriterClosed:
        raise HTTPException(503, "The server is shutting down; send the text again") from None
    except Exception:  # logged by the writer, with the text's sid
        raise HTTPException(500, "The text could not be stored; send it again") from None
    if result.waiting_id is not None:
        inbound.answerer.offer(result.waiting_id)  # never waits: a full queue says no
    return Response(_twiml(result.reply) if result.reply else NO_REPLY, media_type=TWIML)


@router.post("/{slug}/status", status_code=204)
async def status_callback(slug: str, request: Request) -> Response:
    inbound = twilio_inbound(request)
    params = await _form(request)
    site_id = await _verified_site(inbound, slug, request, params)
    sid, status = _required(params, "MessageSid"), _required(params, "MessageStatus")
    error_code = params.get("ErrorCode") or None
    await run_in_threadpool(_apply_status, inbound.app, site_id, sid, status, error_code)
    return Response(status_code=204)


def _apply_status(app: App, site_id: int, sid: str, status: str, error_code: str | None) -> None:
    with app.begin() as conn:
        now = site_now(conn, site_id, app.clock)
        apply_status(conn, site_id, sid, status, error_code, now)


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith(FORM):
        # Twilio always posts this form; the standard library's parser reads it
        # at a fraction of the cost of the general one, with the same result:
        # bytes as Latin-1, escapes as UTF-8, a repeated field's last value.
        body = (await request.body()).decode("latin-1")
        return dict(parse_qsl(body, keep_blank_values=True))
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


async def _verified_site(
    inbound: TwilioInbound, slug: str, request: Request, params: dict[str, str]
) -> int:
    site = await inbound.sites.find(slug)
    url = inbound.app.settings.public_url.rstrip("/") + _signed_path(request)
    signature = request.headers.get("x-twilio-signature", "")
    # The same answer whether the site or its Twilio setup is missing or the
    # signature is wrong: nothing for a prober to learn.
    if site is None or not site.signed(url, params, signature):
        raise HTTPException(403, "Request signature could not be verified")
    return site.site_id


def _signed_path(request: Request) -> str:
    """The path and query Twilio called, as ``request.url`` gives them.

    Read from the ASGI scope, escaped as Starlette escapes it, because
    building ``request.url`` (host header, netloc, a parse of the whole URL)
    cost a tenth of checking a text.
    """
    scope = request.scope
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = scope.get("query_string", b"").decode("utf-8", "replace").partition("#")[0]
    # What urlsplit drops from any URL (WHATWG): tabs and line breaks.
    path, query = path.translate(_URL_UNSAFE), query.translate(_URL_UNSAFE)
    return f"{path}?{query}" if query else path


@lru_cache(maxsize=1024)
def _twiml(reply: str) -> str:
    """The TwiML that sends ``reply``: a site has a few replies (HELP, STOP, START), built once."""
    answer = MessagingResponse()
    answer.message(reply)
    return str(answer)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise HTTPException(400, f"{name} is missing")
    return value
