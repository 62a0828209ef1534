"""``/v1`` routes of the dunning core: invoices and their actions, policies, the test clock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import After, Limit, Text, check_texts, id_path, page
from dunwell.domain.policy import policy_to_dict
from dunwell.domain.states import Collection, InvoiceStatus
from dunwell.services import invoice_actions, policies, queries
from dunwell.services.errors import InvalidInput
from dunwell.services.notes import MAX_NOTE
from dunwell.services.sites import advance_clock, parse_duration, site_now

router = APIRouter(prefix="/v1")

InvoiceId = Annotated[int, id_path("invoice")]

ACTIONS = {
    "stop": invoice_actions.stop_collecting,
    "mark_paid": invoice_actions.mark_paid,
    "stop_dunning": invoice_actions.stop_dunning,
    "reopen": invoice_actions.reopen,
    "collect": invoice_actions.collect_now,
}


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Text = Field(
        max_length=64, description="A duration like 3d, 12h or 1d12h.", examples=["3d"]
    )


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any] = Field(description="See docs/policies.md; an unknown field is 422.")
    # The service holds every way in to MAX_NOTE; declared here too for the OpenAPI document.
    note: Text | None = Field(None, max_length=MAX_NOTE, description="Why this version was saved.")


@router.get("/invoices")
def list_invoices(
    who: Reader,
    conn: ReadConn,
    status: InvoiceStatus | None = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = queries.list_invoices(
        conn, who.site_id, status=status.value if status else None, after_id=after, limit=limit
    )
    return page(rows, limit)


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: InvoiceId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return queries.invoice_detail(conn, who.site_id, invoice_id)


@router.post("/invoices/{invoice_id}/{action}")
def invoice_action(
    invoice_id: InvoiceId,
    action: Literal["stop", "mark_paid", "stop_dunning", "reopen", "collect"],
    who: Writer,
    conn: WriteConn,
    app: AppDep,
) -> dict[str, Any]:
    ACTIONS[action](conn, who.site_id, invoice_id, site_now(conn, who.site_id, app.clock))
    return {"id": invoice_id, "action": action, "done": True}


@router.get("/clock")
def get_clock(who: Reader, conn: ReadConn, app: AppDep) -> dict[str, datetime]:
    return {"now": site_now(conn, who.site_id, app.clock)}


@router.post("/clock/advance")
def post_clock_advance(body: ClockAdvance, who: Writer, conn: WriteConn) -> dict[str, datetime]:
    try:
        by = parse_duration(body.by)
    except InvalidInput as error:
        raise InvalidInput("by", error.message) from None  # name the request's field
    return {"now": advance_clock(conn, who.site_id, by)}


@router.get("/dunning_policies/{kind}/versions")
def policy_versions(kind: Collection, who: Reader, conn: ReadConn) -> dict[str, Any]:
    versions = policies.list_versions(conn, who.site_id, kind)
    return {"data": [_version(v) for v in versions]}


@router.post("/dunning_policies/{kind}")
def save_policy(
    kind: Collection, body: PolicyBody, who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    check_texts(body.policy)  # a card number as a template's name would be quoted back
    now = site_now(conn, who.site_id, app.clock)
    return _version(policies.save_policy(conn, who.site_id, kind, body.policy, now, body.note))


def _version(v: policies.PolicyVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "version": v.version,
        "kind": v.kind.value,
        "created_at": v.created_at,
        "first_used_at": v.first_used_at,
        "note": v.note,
        "policy": policy_to_dict(v.policy),
    }
