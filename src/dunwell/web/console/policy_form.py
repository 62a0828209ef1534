"""The policy editor's form: filled from a version, read back from a post.

Steps are rows named ``step-<n>-day``, ``step-<n>-retry``... (checkboxes are
only sent when ticked, so the rows cannot be parallel lists). A row with no
day and nothing ticked or chosen is an unused blank row; a row with
``remove`` ticked is dropped. Errors name the field as the merchant sees it
("step 3 day", "final day") and the input to mark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dunwell.domain.policy import (
    MAX_DAYS_CAP,
    Policy,
    PolicyError,
    policy_from_dict,
)
from dunwell.domain.states import Collection
from dunwell.services.ids import parse_id

#: Blank rows offered after the steps, so steps can be added without JavaScript.
BLANK_ROWS = 3
#: More rows than a policy can have steps (one per day), plus the blanks.
MAX_ROWS = MAX_DAYS_CAP + BLANK_ROWS
_STEP_PATH = re.compile(r"^steps\[(\d+)\](?:\.(\w+))?$")
_NUMBERS = ("retry_interval_hours", "max_attempts", "final_day")


class FieldError(Exception):
    """``name`` is the form input at fault; ``str()`` reads "label: message"."""

    def __init__(self, name: str, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.name = name


@dataclass
class StepRow:
    day: str = ""
    retry: bool = False
    email: str = ""
    sms: str = ""
    webhook: bool = False
    remove: bool = False

    @property
    def blank(self) -> bool:
        return not (self.day.strip() or self.retry or self.email or self.sms or self.webhook)


@dataclass
class PolicyForm:
    retry_interval_hours: str = ""
    max_attempts: str = ""
    final_day: str = ""
    rows: list[StepRow] = field(default_factory=list)
    subscription_action: str = ""
    downgrade_plan: str = ""
    invoice_outcome: str = ""
    final_email: str = ""
    bcc_merchant: bool = False
    note: str = ""
    customer: str = ""
    replay_days: str = ""


def form_from_policy(policy: Policy) -> PolicyForm:
    rows = [
        StepRow(str(s.day), s.retry, s.email_template or "", s.sms_template or "", s.webhook)
        for s in policy.steps
    ]
    final = policy.final
    return PolicyForm(
        retry_interval_hours=str(policy.retry_interval_hours),
        max_attempts=str(policy.max_attempts),
        final_day=str(policy.final_day),
        rows=rows + [StepRow() for _ in range(BLANK_ROWS)],
        subscription_action=final.subscription_action.value,
        downgrade_plan=final.downgrade_plan or "",
        invoice_outcome=final.invoice_outcome.value,
        final_email=final.email_template or "",
        bcc_merchant=final.bcc_merchant,
    )


def form_from_post(form: Mapping[str, str]) -> PolicyForm:
    count = _row_count(form.get("rows", ""))
    rows = [
        StepRow(
            day=form.get(f"step-{n}-day", "").strip(),
            retry=f"step-{n}-retry" in form,
            email=form.get(f"step-{n}-email", ""),
            sms=form.get(f"step-{n}-sms", ""),
            webhook=f"step-{n}-webhook" in form,
            remove=f"step-{n}-remove" in form,
        )
        for n in range(count)
    ]
    return PolicyForm(
        retry_interval_hours=form.get("retry_interval_hours", "").strip(),
        max_attempts=form.get("max_attempts", "").strip(),
        final_day=form.get("final_day", "").strip(),
        rows=rows,
        subscription_action=form.get("subscription_action", ""),
        downgrade_plan=form.get("downgrade_plan", "").strip(),
        invoice_outcome=form.get("invoice_outcome", ""),
        final_email=form.get("final_email", ""),
        bcc_merchant="bcc_merchant" in form,
        note=form.get("note", "").strip(),
        customer=form.get("customer", "").strip(),
        replay_days=form.get("replay_days", "").strip(),
    )


def policy_data(form: PolicyForm) -> tuple[dict[str, Any], list[int]]:
    """The JSON-like policy the form describes, and the row of each step in it.

    Raises :class:`FieldError` for a number that is not one.
    """
    data: dict[str, Any] = {name: _number(name, getattr(form, name)) for name in _NUMBERS}
    steps: list[dict[str, Any]] = []
    rows: list[int] = []
    for n, row in enumerate(form.rows):
        if row.remove or row.blank:
            continue
        if not row.day:
            raise FieldError(f"step-{n}-day", f"step {n + 1} day", "is required")
        steps.append(
            {
                "day": _number(f"step-{n}-day", row.day, f"step {n + 1} day"),
                "retry": row.retry,
                "email_template": row.email or None,
                "sms_template": row.sms or None,
                "webhook": row.webhook,
            }
        )
        rows.append(n)
    data["steps"] = steps
    data["final"] = {
        "subscription_action": form.subscription_action,
        "downgrade_plan": form.downgrade_plan or None,
        "invoice_outcome": form.invoice_outcome,
        "email_template": form.final_email or None,
        "bcc_merchant": form.bcc_merchant,
    }
    return data, rows


def draft_policy(form: PolicyForm, kind: Collection) -> Policy:
    """The policy to simulate; raises :class:`FieldError` naming the field at fault."""
    data, rows = policy_data(form)
    try:
        return policy_from_dict({**data, "kind": kind.value})
    except PolicyError as error:
        raise field_error(error.field, error.message, rows) from None


def field_error(path: str, message: str, rows: list[int]) -> FieldError:
    """Turn a policy path (``steps[1].day``, ``final.downgrade_plan``) into the form's terms.

    ``rows`` are the form's row numbers of the steps sent, in the order sent.
    """
    found = _STEP_PATH.match(path)
    if found and int(found.group(1)) < len(rows):
        n = rows[int(found.group(1))]
        part = found.group(2)
        if part is None:
            return FieldError(f"step-{n}-day", f"step {n + 1}", message)
        name = {"email_template": "email", "sms_template": "sms"}.get(part, part)
        return FieldError(f"step-{n}-{name}", f"step {n + 1} {part.replace('_', ' ')}", message)
    name = path.removeprefix("final.")
    name = {"email_template": "final_email"}.get(name, name)
    return FieldError(name, path.replace(".", " ").replace("_", " "), message)


def _number(name: str, text: str, label: str | None = None) -> int:
    try:
        return int(text)
    except ValueError:
        raise FieldError(name, label or name.replace("_", " "), "must be a whole number") from None


def _row_count(text: str) -> int:
    count = parse_id(text.strip())
    return 0 if count is None else min(count, MAX_ROWS)
