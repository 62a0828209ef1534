"""Conversions between ``dunning_cycles`` rows and the domain's CycleState."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dunwell.domain.dunning import CycleState
from dunwell.domain.payday import parse_payday
from dunwell.domain.states import Collection, CyclePhase


def state_from_row(row: Any) -> CycleState:
    return CycleState(
        collection=Collection(row.collection),
        due_at=row.due_at,
        phase=CyclePhase(row.phase),
        started_at=row.started_at,
        attempts=row.attempts,
        last_attempt_at=row.last_attempt_at,
        hard_declined=row.hard_declined,
        steps_done_through=row.steps_done_through,
        retry_at=row.retry_at,
        payday=parse_payday(row.payday) if row.payday else None,
        transient_errors=row.transient_errors,
        finalized=row.finalized,
    )


def state_values(state: CycleState, next_run_at: datetime | None) -> dict[str, Any]:
    """The columns a state change writes back (the lease is cleared by the caller)."""
    return {
        "phase": state.phase.value,
        "started_at": state.started_at,
        "attempts": state.attempts,
        "last_attempt_at": state.last_attempt_at,
        "hard_declined": state.hard_declined,
        "steps_done_through": state.steps_done_through,
        "retry_at": state.retry_at,
        "transient_errors": state.transient_errors,
        "finalized": state.finalized,
        "next_run_at": next_run_at,
    }
