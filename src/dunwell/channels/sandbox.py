"""The sandbox mailbox and phone: transports that keep messages in the database.

They are the default for sandbox sites and the demo, so the whole loop
(dunning email, text, the customer's reply) works with no provider account.
What they keep is read through ``GET /v1/sandbox/mailbox`` and
``/v1/sandbox/phone`` or ``dunwell sandbox mailbox`` / ``phone``.

Both are idempotent like the real providers should be: an email is stored
once per Message-ID (a unique column), and a text is looked up with
:meth:`SandboxPhone.find_sent` before a re-send, as for Twilio.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, select

from dunwell.channels.base import EmailMessage, SendResult, SmsMessage
from dunwell.store.db import writer
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import sandbox_messages

#: The number sandbox texts come from (Twilio's own magic test number).
SANDBOX_FROM_NUMBER = "+15005550006"


class SandboxMailbox:
    """An :class:`~dunwell.channels.base.EmailTransport` that stores mail."""

    def __init__(self, engine: Engine, site_id: int, now: Callable[[], datetime]) -> None:
        self._writes = writer(engine)  # made once: see App.begin
        self._site_id = site_id
        self._now = now

    @contextmanager
    def session(self) -> Iterator[SandboxMailbox]:
        yield self

    def send(self, message: EmailMessage) -> SendResult:
        row = {
            "site_id": self._site_id,
            "channel": "email",
            "direction": "outbound",
            "outbox_id": None,
            "to_addr": message.to,
            "from_addr": message.from_addr,
            "subject": message.subject,
            "body_text": message.text,
            "body_html": message.html,
            "message_id": message.message_id,
            "created_at": self._now(),
        }
        with self._writes.begin() as conn:
            insert_ignore(conn, sandbox_messages, [row], ["message_id"])
        return SendResult(provider_id=message.message_id, status="delivered")


class SandboxPhone:
    """An :class:`~dunwell.channels.base.SmsTransport` that stores texts."""

    def __init__(self, engine: Engine, site_id: int, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._writes = writer(engine)  # made once: see App.begin
        self._site_id = site_id
        self._now = now

    def send(self, message: SmsMessage) -> SendResult:
        at = self._now()
        sid = "SB" + hashlib.sha256(f"{message.to}|{message.body}|{at}".encode()).hexdigest()[:32]
        row = {
            "site_id": self._site_id,
            "channel": "sms",
            "direction": "outbound",
            "outbox_id": None,
            "to_addr": message.to,
            "from_addr": SANDBOX_FROM_NUMBER,
            "subject": None,
            "body_text": message.body,
            "body_html": None,
            "message_id": sid,
            "created_at": at,
        }
        with self._writes.begin() as conn:
            insert_ignore(conn, sandbox_messages, [row], ["message_id"])
        return SendResult(provider_id=sid, status="delivered")

    def find_sent(self, message: SmsMessage, since: datetime) -> SendResult | None:
        t = sandbox_messages
        with self._engine.connect() as conn:
            sid = conn.execute(
                select(t.c.message_id)
                .where(t.c.site_id == self._site_id, t.c.channel == "sms")
                .where(t.c.direction == "outbound", t.c.to_addr == message.to)
                .where(t.c.body_text == message.body, t.c.created_at >= since)
                .limit(1)
            ).scalar()
        return None if sid is None else SendResult(provider_id=sid, status="delivered")
