"""``/v1`` routes for outgoing webhooks (endpoints, their delivery log) and the event log.

Changing an endpoint needs an admin key: its URL decides where the site's
data goes. Reading needs a read key; redelivering, a write key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dunwell.api.deps import Admin, AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import After, Limit, StorableText, Text, id_path, page
from dunwell.services import webhook_endpoints, webhook_log
from dunwell.services.events import list_events
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1")

DeliveryStatus = Literal["pending", "sending", "delivered", "failed", "canceled"]
EndpointId = Annotated[int, id_path("webhook endpoint")]
DeliveryId = Annotated[int, id_path("webhook delivery")]
EventType = Annotated[Text, Field(max_length=64)]


class EndpointBody(BaseModel):
    # A misspelt field is refused: "evnets" would subscribe to every event.
    model_config = ConfigDict(extra="forbid")

    url: StorableText = Field(max_length=2048, description="An http or https URL.")
    events: list[EventType] = Field(
        default_factory=list, max_length=50, description="Event types to receive; empty: all."
    )
    description: Text | None = Field(None, max_length=500)
    enabled: StrictBool = True


class EndpointChanges(BaseModel):
    # A misspelt field is refused: "enabeld": false would change nothing.
    model_config = ConfigDict(extra="forbid")

    url: StorableText | None = Field(None, max_length=2048)
    events: list[EventType] | None = Field(None, max_length=50)
    description: Text | None = Field(None, max_length=500)
    enabled: StrictBool | None = None


@router.post("/webhook_endpoints", status_code=201)
def create_endpoint(body: EndpointBody, who: Admin, app: AppDep) -> dict[str, Any]:
    """Save an endpoint. The answer's ``secret`` is shown this once only."""
    return webhook_endpoints.create_endpoint(
        app,
        who.site_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
    )


@router.get("/webhook_endpoints")
def list_endpoints(
    who: Reader,
    conn: ReadConn,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = webhook_endpoints.list_endpoints(conn, who.site_id, after_id=after, limit=limit)
    return page(rows, limit)


@router.get("/webhook_endpoints/{endpoint_id}")
def get_endpoint(endpoint_id: EndpointId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return webhook_endpoints.get_endpoint(conn, who.site_id, endpoint_id)


@router.patch("/webhook_endpoints/{endpoint_id}")
def update_endpoint(
    endpoint_id: EndpointId, body: EndpointChanges, who: Admin, app: AppDep
) -> dict[str, Any]:
    """Change the fields given; ``enabled: false`` cancels the pending deliveries."""
    changes = body.model_dump(exclude_unset=True)
    return webhook_endpoints.update_endpoint(app, who.site_id, endpoint_id, changes)


@router.delete("/webhook_endpoints/{endpoint_id}")
def delete_endpoint(
    endpoint_id: EndpointId, who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    canceled = webhook_endpoints.delete_endpoint(conn, who.site_id, endpoint_id, now)
    return {"id": endpoint_id, "deleted": True, "canceled_deliveries": canceled}


@router.post("/webhook_endpoints/{endpoint_id}/rotate_secret")
def rotate_secret(
    endpoint_id: EndpointId, who: Admin, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    """A new signing secret, shown this once; the old one stops signing at once."""
    now = site_now(conn, who.site_id, app.clock)
    return webhook_endpoints.rotate_secret(conn, who.site_id, endpoint_id, app.secret_box(), now)


@router.get("/webhook_endpoints/{endpoint_id}/deliveries")
def list_deliveries(
    endpoint_id: EndpointId,
    who: Reader,
    conn: ReadConn,
    status: DeliveryStatus | None = None,
    after: After = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    rows = webhook_log.list_deliveries(
        conn, who.site_id, endpoint_id, status=status, after_id=after, limit=limit
    )
    return page(rows, limit)


@router.post("/webhook_deliveries/{delivery_id}/redeliver")
def redeliver(delivery_id: DeliveryId, who: Writer, conn: WriteConn, app: AppDep) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    return webhook_log.redeliver(conn, who.site_id, delivery_id, now)


@router.get("/events")
def events(
    who: Reader,
    conn: ReadConn,
    type_: Annotated[
        Text | None, Query(alias="type", max_length=64, description="Only events of this type.")
    ] = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = list_events(conn, who.site_id, type_=type_, after_id=after, limit=limit)
    return page(rows, limit)
