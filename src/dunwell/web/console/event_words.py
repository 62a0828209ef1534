"""One line of plain words for an event on a customer's dunning timeline.

Events carry their data as JSON for webhooks and scripts; a person reading
a timeline wants "attempt 2 declined (insufficient funds)", not the dict.
Event types without words of their own show their simple fields. Times in
an event's data are stored in UTC; they are shown in the page's zone (the
site's), as every other time on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dunwell.web.console.views import local_time, money

Data = Mapping[str, Any]
Describe = Callable[[Data, ZoneInfo], str]
UTC_ZONE = ZoneInfo("UTC")


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _moment(value: Any, zone: ZoneInfo) -> str:
    """An ISO time from an event's data, in ``zone``; anything else as it is."""
    if not isinstance(value, str):
        return str(value)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    # A naive value names no instant: shifting it would invent one.
    return local_time(at, zone) if at.tzinfo is not None else value


def _payment_failed(data: Data, _zone: ZoneInfo) -> str:
    code = data.get("decline_code")
    kind = data.get("decline_class")
    reason = f" ({_words(code)}, {kind} decline)" if code else ""
    return f"Attempt {data.get('attempt', '?')} declined{reason}"


def _step(data: Data, _zone: ZoneInfo) -> str:
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


def _message(data: Data, _zone: ZoneInfo) -> str:
    error = f": {data['error']}" if data.get("error") else ""
    return f"{data.get('channel', 'message')} {_words(data.get('template') or '')}{error}".strip()


def _state(data: Data, _zone: ZoneInfo) -> str:
    return f"Subscription {_words(data.get('previous'))} → {_words(data.get('current'))}"


def _promise(data: Data, zone: ZoneInfo) -> str:
    return f"Promised to pay; retry at {_moment(data.get('retry_at'), zone)}"


_DESCRIBE: dict[str, Describe] = {
    "payment.failed": _payment_failed,
    "payment.succeeded": lambda d, _: f"Attempt {d.get('attempt', '?')} paid",
    "dunning.step_reached": _step,
    "dunning.ended": lambda d, _: f"Dunning ended: {_words(d.get('outcome'))}",
    "message.sent": _message,
    "message.failed": _message,
    "message.blocked": _message,
    "subscription.state_changed": _state,
    "invoice.failed": lambda d, _: f"Written off ({_words(d.get('reason', 'dunning'))})",
    "invoice.paid": lambda d, _: f"Paid ({_words(d.get('reason', 'charged'))})",
    "invoice.collection_requested": lambda d, _: (
        f"Collection requested ({_words(d.get('reason'))})"
    ),
    "invoice.promise_to_pay": _promise,
}


def describe_event(event_type: str, data: Data | None, zone: ZoneInfo = UTC_ZONE) -> str:
    """The event in words; ``zone`` is the page's (the site's), for the times in ``data``."""
    data = data or {}
    describe = _DESCRIBE.get(event_type)
    if describe is not None:
        return describe(data, zone)
    parts = []
    if isinstance(data.get("amount_minor"), int) and isinstance(data.get("currency"), str):
        parts.append(money(data["amount_minor"], data["currency"]))
    # Ids are shown as links or columns elsewhere; nested values belong to scripts.
    parts += [
        f"{_words(key)}: {_moment(value, zone) if key.endswith('_at') else value}"
        for key, value in data.items()
        if not key.endswith("_id")
        and key not in ("amount_minor", "currency")
        and isinstance(value, str | int | float | bool)
    ]
    return ", ".join(parts)
