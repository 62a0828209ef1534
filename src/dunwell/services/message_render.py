"""Rendering outbox messages when they are written.

A dunning step's email and SMS are rendered in the same transaction that
records the step, so the outbox row holds exactly what will be sent and the
delivery worker only delivers. A message that cannot be rendered (a
template error, no such template) or has nobody to go to (no email address,
no phone number) is still written, as ``failed`` or ``skipped`` with the
reason, so nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from dunwell.messaging.templates import TemplateError
from dunwell.security.links import LinkSigner
from dunwell.services.message_context import ContextLoader, MessageSubject, Recipient
from dunwell.services.sms_text import SmsFinisher
from dunwell.services.template_book import TemplateBook, UnknownTemplate

#: Every outbox row carries these columns, so one executemany writes them all.
RENDER_DEFAULTS: dict[str, Any] = {
    "recipient": None,
    "locale": None,
    "subject": None,
    "body_text": None,
    "body_html": None,
    "segments": None,
    "encoding": None,
    "last_error": None,
}


class MessageRenderer:
    """Fills in recipient, language and rendered text of new outbox rows."""

    def __init__(self, links: Callable[[], LinkSigner]) -> None:
        # Resolved on first use: the secret key is only needed once a
        # message with a billing link is actually rendered.
        self._links = links

    def render_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Render every email and SMS row in place; other channels pass through."""
        for row in rows:
            for key, value in RENDER_DEFAULTS.items():
                row.setdefault(key, value)
        messages = [r for r in rows if r["channel"] in ("email", "sms") and r.get("template")]
        if not messages:
            return
        subjects = [_subject(r) for r in messages]
        loader = ContextLoader(conn, subjects)
        book = TemplateBook(conn, {s.site_id for s in subjects}, {r["template"] for r in messages})
        finisher = SmsFinisher(
            conn,
            {s.site_id for r, s in zip(messages, subjects, strict=True) if r["channel"] == "sms"},
        )
        links = self._links()
        contexts = _SharedContexts()
        for row, subject in zip(messages, subjects, strict=True):
            recipient = loader.recipient(subject)
            row["recipient"] = recipient.email if row["channel"] == "email" else recipient.phone
            if not row["recipient"]:
                what = "email address" if row["channel"] == "email" else "phone number"
                _give_up(row, "skipped", f"the customer has no {what}")
                continue
            context = contexts.get(subject, row)
            if context is None:
                link = links.billing_url(
                    subject.site_id, subject.customer_id or 0, subject.invoice_id
                )
                context = loader.context(subject, row["payload"], link)
                contexts.add(subject, row, context)
            try:
                _render_one(row, book, recipient, context, finisher)
            except (TemplateError, UnknownTemplate) as error:
                _give_up(row, "failed", f"template {row['template']!r}: {error}")


def _render_one(
    row: dict[str, Any],
    book: TemplateBook,
    recipient: Recipient,
    context: dict[str, Any],
    finisher: SmsFinisher,
) -> None:
    name = row["template"]
    if row["channel"] == "email":
        email, locale = book.email(recipient.site_id, name, recipient.locale, recipient.site_locale)
        rendered = email.render(context, locale)
        row.update(subject=rendered.subject, body_text=rendered.text, body_html=rendered.html)
    else:
        sms, locale = book.sms(recipient.site_id, name, recipient.locale, recipient.site_locale)
        text = finisher.finish(recipient.site_id, sms.render(context, locale).body)
        row.update(body_text=text.body, segments=text.segments, encoding=text.encoding)
    row["locale"] = locale


class _SharedContexts:
    """Template contexts already built in this batch, to reuse for equal rows.

    A context (billing link included) is made from the row's subject,
    creation time and payload only, so rows equal in all three, such as a
    dunning step's email and SMS, can share one. Payloads are compared by
    value: an invoice that reaches two steps in one batch has two payloads.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[MessageSubject, Any], list[tuple[Any, dict[str, Any]]]] = {}

    def get(self, subject: MessageSubject, row: dict[str, Any]) -> dict[str, Any] | None:
        for payload, context in self._made.get((subject, row["created_at"]), ()):
            if _same_payload(payload, row["payload"]):
                return context
        return None

    def add(self, subject: MessageSubject, row: dict[str, Any], context: dict[str, Any]) -> None:
        self._made.setdefault((subject, row["created_at"]), []).append((row["payload"], context))


def _same_payload(one: Any, other: Any) -> bool:
    # Not ==: it equates 1 with True and 1.0, which a template prints apart.
    return one is other or repr(one) == repr(other)


def _give_up(row: dict[str, Any], status: str, reason: str) -> None:
    row["status"] = status
    row["last_error"] = reason


def _subject(row: dict[str, Any]) -> MessageSubject:
    return MessageSubject(row["site_id"], row.get("customer_id"), row.get("invoice_id"))
