"""One line of plain words for an event on a customer's dunning timeline.

Events carry their data as JSON for webhooks and scripts; a person reading
a timeline wants "attempt 2 declined (insufficient funds)", not the dict.
Event types without words of their own show their simple fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dunwell.web.console.views import money

Data = Mapping[str, Any]


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _payment_failed(data: Data) -> str:
    code = data.get("decline_code")
    kind = data.get("decline_class")
    reason = f" ({_words(code)}, {kind} decline)" if code else ""
    return f"Attempt {data.get('attempt', '?')} declined{reason}"


def _step(data: Data) -> str:
    step = data.get("step") or {}
    sends = [
        f"{channel} {_words(step[key])}"
        for channel, key in (("email", "email_template"), ("text", "sms_template"))
        if step.get(key)
    ]
    retry = " with a retry" if step.get("retry") else ""
    return f"Day {data.get('day', step.get('day', '?'))} step{retry}" + (
        f": {', '.join(sends)}" if sends else ""
    )


def _message(data: Data) -> str:
    error = f": {data['error']}" if data.get("error") else ""
    return f"{data.get('channel', 'message')} {_words(data.get('template') or '')}{error}".strip()


def _state(data: Data) -> str:
    return f"Subscription {_words(data.get('previous'))} → {_words(data.get('current'))}"


_DESCRIBE: dict[str, Callable[[Data], str]] = {
    "payment.failed": _payment_failed,
    "payment.succeeded": lambda d: f"Attempt {d.get('attempt', '?')} paid",
    "dunning.step_reached": _step,
    "dunning.ended": lambda d: f"Dunning ended: {_words(d.get('outcome'))}",
    "message.sent": _message,
    "message.failed": _message,
    "message.blocked": _message,
    "subscription.state_changed": _state,
    "invoice.failed": lambda d: f"Written off ({_words(d.get('reason', 'dunning'))})",
    "invoice.paid": lambda d: f"Paid ({_words(d.get('reason', 'charged'))})",
    "invoice.collection_requested": lambda d: f"Collection requested ({_words(d.get('reason'))})",
    "invoice.promise_to_pay": lambda d: f"Promised to pay; retry at {d.get('retry_at')}",
}


def describe_event(event_type: str, data: Data | None) -> str:
    data = data or {}
    describe = _DESCRIBE.get(event_type)
    if describe is not None:
        return describe(data)
    parts = []
    if isinstance(data.get("amount_minor"), int) and isinstance(data.get("currency"), str):
        parts.append(money(data["amount_minor"], data["currency"]))
    # Ids are shown as links or columns elsewhere; nested values belong to scripts.
    parts += [
        f"{_words(key)}: {value}"
        for key, value in data.items()
        if not key.endswith("_id")
        and key not in ("amount_minor", "currency")
        and isinstance(value, str | int | float | bool)
    ]
    return ", ".join(parts)
