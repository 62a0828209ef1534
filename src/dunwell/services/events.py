"""Writing to the append-only event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from dunwell.store.tables import events


@dataclass
class EventBatch:
    """Events collected during a unit of work and written in one statement."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        site_id: int,
        type_: str,
        at: datetime,
        *,
        customer_id: int | None = None,
        subscription_id: int | None = None,
        invoice_id: int | None = None,
        **data: Any,
    ) -> None:
        self.rows.append(
            {
                "site_id": site_id,
                "type": type_,
                "customer_id": customer_id,
                "subscription_id": subscription_id,
                "invoice_id": invoice_id,
                "data": data,
                "occurred_at": at,
            }
        )

    def write(self, conn: Connection) -> None:
        if self.rows:
            conn.execute(insert(events), self.rows)
            self.rows.clear()
