"""``/v1`` routes for dunning status (banners, access gates) and the calling site."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn
from dunwell.api.pagination import Currency, Text, id_path
from dunwell.services import dunning_status, ledger_queries
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1")


class SiteUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field("", min_length=1, max_length=200, description="Shown in messages.")
    support_email: Text | None = Field(
        None, max_length=320, description="Where customers write; null removes it."
    )
    time_zone: Text = Field("UTC", min_length=1, max_length=64, description="IANA zone.")
    locale: Text = Field("en", min_length=1, max_length=16, description="Default language.")
    currency: Currency = Field(
        "USD", min_length=3, max_length=3, description="Default ISO 4217 currency code."
    )

    @field_validator("support_email")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


@router.get("/customers/{customer_id}/dunning_status")
def customer_dunning_status(
    customer_id: Annotated[int, id_path("customer")], who: Reader, conn: ReadConn, app: AppDep
) -> dict[str, Any]:
    """Whether the customer owes money, until when access lasts and what happens then."""
    now = site_now(conn, who.site_id, app.clock)
    return dunning_status.for_customer(conn, who.site_id, customer_id, now)


@router.get("/subscriptions/{subscription_id}/dunning_status")
def subscription_dunning_status(
    subscription_id: Annotated[int, id_path("subscription")],
    who: Reader,
    conn: ReadConn,
    app: AppDep,
) -> dict[str, Any]:
    """Whether the subscription is in dunning, until when access lasts and what happens then."""
    now = site_now(conn, who.site_id, app.clock)
    return dunning_status.for_subscription(conn, who.site_id, subscription_id, now)


@router.get("/site")
def get_site(who: Reader, conn: ReadConn) -> dict[str, Any]:
    """The site the API key belongs to."""
    return ledger_queries.get_site(conn, who.site_id)


@router.patch("/site")
def update_site(body: SiteUpdate, who: Admin, conn: WriteConn) -> dict[str, Any]:
    changes = body.model_dump(include=body.model_fields_set)
    return ledger_queries.update_site(conn, who.site_id, changes)
