"""``/v1/settings``: a site's email and SMS providers, SMS rules and credits."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import select

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import MAX_INT, StorableText, Text, check_texts
from dunwell.channels.config import ChannelConfig, sandbox_config
from dunwell.services import sms_credits
from dunwell.services.channel_config import load_channel_configs, save_channel_config
from dunwell.services.errors import InvalidInput
from dunwell.services.notes import MAX_NOTE
from dunwell.services.phone_import import import_phones
from dunwell.services.sites import site_now
from dunwell.services.sms_settings import load_sms_settings, settings_to_dict, update_sms_settings
from dunwell.store.tables import sites

router = APIRouter(prefix="/v1")

LEDGER_ROWS = 100


class ChannelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["sandbox", "smtp", "twilio"]
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="SMTP: host, port, security, username, from_addr, reply_to, bcc. "
        "Twilio: account_sid and from_number or messaging_service_sid.",
    )
    secret: StorableText | None = Field(
        None,
        max_length=1000,
        description="SMTP password or Twilio auth token; omitted keeps the stored one.",
    )


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credits: StrictInt = Field(gt=0, le=MAX_INT, description="A whole number of credits.")
    # The service holds every way in to MAX_NOTE; declared here too for the OpenAPI document.
    note: Text | None = Field(None, max_length=MAX_NOTE, description="Shown in the ledger.")


@router.get("/settings/channels/{channel}")
def get_channel(
    channel: Literal["email", "sms"], who: Reader, conn: ReadConn, app: AppDep
) -> dict[str, Any]:
    found = load_channel_configs(conn, [who.site_id], app.secret_box_or_none())
    saved = found.get((who.site_id, channel))
    if saved is not None:
        return saved.public()
    mode = conn.execute(select(sites.c.mode).where(sites.c.id == who.site_id)).scalar_one()
    # A live site with nothing saved sends nothing (see docs/messaging.md).
    if mode == "sandbox":
        return sandbox_config(channel).public()
    return ChannelConfig(channel, "unconfigured", {}, None).public()


@router.put("/settings/channels/{channel}")
def put_channel(
    channel: Literal["email", "sms"], body: ChannelBody, who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    # Hosts, ids and numbers, not prose: a Twilio id's hex digits may pass the
    # Luhn check, so only what no database can store is refused here.
    check_texts(body.config, cards=False)
    saved = save_channel_config(
        conn,
        who.site_id,
        channel,
        body.provider,
        body.config,
        body.secret,
        app.secret_box(),
        site_now(conn, who.site_id, app.clock),
    )
    return saved.public()


@router.get("/settings/sms")
def get_sms_settings(who: Reader, conn: ReadConn) -> dict[str, Any]:
    return settings_to_dict(load_sms_settings(conn, [who.site_id])[who.site_id])


@router.patch("/settings/sms")
def patch_sms_settings(
    changes: dict[str, Any], who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    check_texts(changes)  # the replies and the opt-out line are sent as written
    now = site_now(conn, who.site_id, app.clock)
    return settings_to_dict(update_sms_settings(conn, who.site_id, changes, now))


@router.get("/sms/credits")
def get_credits(who: Reader, conn: WriteConn, app: AppDep) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    balance = sms_credits.balances(conn, [who.site_id], now)[who.site_id]
    rows = sms_credits.recent_entries(conn, who.site_id, LEDGER_ROWS)
    return {"balance": balance, "ledger": [dict(r._mapping) for r in rows]}


@router.post("/sms/credits/top-up")
def top_up(body: TopUp, who: Admin, conn: WriteConn, app: AppDep) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    return {"balance": sms_credits.top_up(conn, who.site_id, body.credits, now, body.note)}


@router.post(
    "/phones/import",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_phone_csv(request: Request, who: Writer, app: AppDep) -> dict[str, Any]:
    """Upload a CSV (``phone`` and ``customer_id`` or ``email``); returns the row report."""
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the CSV must be UTF-8 text") from None

    def work() -> dict[str, Any]:
        with app.begin() as conn:
            return import_phones(conn, who.site_id, text).as_dict()

    return await run_in_threadpool(work)
