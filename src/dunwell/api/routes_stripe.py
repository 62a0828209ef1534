"""Stripe: the webhook endpoint Stripe calls, and the setting that secures it.

``POST /stripe/{slug}/webhook`` has no API key: Stripe proves itself with the
``Stripe-Signature`` header, checked against the site's signing secret (see
:mod:`dunwell.services.stripe_ingest`). The raw body is read before anything
else, because the signature covers the exact bytes Stripe sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn
from dunwell.api.pagination import StorableText
from dunwell.api.problems import problem
from dunwell.bootstrap import App
from dunwell.services.sites import SLUG, site_now
from dunwell.services.stripe_ingest import (
    HANDLED_EVENTS,
    UNVERIFIED,
    WebhookRejected,
    receive,
    save_webhook_secret,
    webhook_secret_is_set,
)
from dunwell.store.tables import sites

router = APIRouter(tags=["stripe"])


class StripeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_secret: StorableText | None = Field(
        max_length=255,
        description="The endpoint's signing secret from Stripe (whsec_...); null removes it.",
    )


@router.post("/stripe/{slug}/webhook")
async def stripe_webhook(slug: str, request: Request, app: AppDep) -> JSONResponse:
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    if not SLUG.fullmatch(slug):
        # No site has it (and a NUL in it would fail the database's lookup):
        # answered like a slug no site has, which is like a bad signature.
        return problem(400, "Invalid signature", UNVERIFIED)
    try:
        receipt = await run_in_threadpool(receive, app, slug, payload, signature)
    except WebhookRejected as error:
        return problem(400, error.title, error.detail)
    body = {
        "received": True,
        "id": receipt.event_id,
        "type": receipt.type,
        "outcome": receipt.outcome.value,
        "detail": receipt.detail,
        "duplicate": receipt.duplicate,
    }
    return JSONResponse(body)


@router.get("/v1/settings/stripe")
def get_stripe_settings(who: Reader, conn: ReadConn, app: AppDep) -> dict[str, Any]:
    return _settings(conn, app, who.site_id)


@router.put("/v1/settings/stripe")
def put_stripe_settings(
    body: StripeSettings, who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    save_webhook_secret(conn, who.site_id, body.webhook_secret, app.secret_box(), now)
    return _settings(conn, app, who.site_id)


def _settings(conn: Connection, app: App, site_id: int) -> dict[str, Any]:
    """What to enter in Stripe's dashboard; the secret itself is never shown."""
    slug = conn.execute(select(sites.c.slug).where(sites.c.id == site_id)).scalar_one()
    return {
        "webhook_secret_set": webhook_secret_is_set(conn, site_id),
        "webhook_url": f"{app.settings.public_url.rstrip('/')}/stripe/{slug}/webhook",
        "events": list(HANDLED_EVENTS),
    }
