"""What every outbound message transport accepts, returns and raises.

A transport takes one rendered message and hands it to a provider: an SMTP
relay for email, Twilio for SMS, the sandbox mailbox and phone in tests.
It never decides *whether* to send (consent, quiet hours and caps are
checked before a message reaches it) and never retries by itself: the
delivery worker records every attempt and owns the retry schedule.

Errors
======

Every failure comes out as one exception type, with a flag that tells the
worker what to do next::

    TransportError(message, permanent=..., code=...)
    ├── permanent=False  transient: try again later with backoff
    │     connection refused, reset or timed out; the server hung up;
    │     SMTP 4xx replies ("451 try again later");
    │     HTTP 429 and 5xx; Twilio 20429 (rate limit), 21611 (sender queue
    │     full), 30001 (queue overflow), 30008 (unknown error)...
    └── permanent=True   stop: this message will never go out as it is
          SMTP 5xx replies, a refused recipient ("550 no such user");
          HTTP 4xx from Twilio: 21211 invalid To, 21610 recipient replied
          STOP, 21614 not a mobile number, 21408 region not enabled...;
          bad credentials (SMTP 535, HTTP 401/403) and other
          misconfiguration: retrying cannot help until someone fixes the
          settings, so the message fails and the site shows the error.

A transient error may also say that the provider turned the connection
or request away before reading any of the message (``turned_away``), or
that the request went out and no answer came (``in_doubt``); see
:class:`TransportError`.

``code`` names the cause in a form fit for a log line or a dashboard:
``"smtp-550"``, ``"smtp-timeout"``, ``"21211"``, ``"http-503"``. Programming
errors (a malformed ``EmailMessage``) are reported the same way, as
permanent, because the same message would fail again.

Idempotency
===========

Email carries a caller-chosen ``Message-ID`` that stays the same on every
attempt, so a duplicate caused by a retry is recognisable by receivers.
SMS has no such key at Twilio, so :meth:`SmsTransport.find_sent` asks the
provider whether an identical message was already accepted; the worker
calls it before re-sending a message whose earlier attempt has no answer
recorded (a crash between the API call and the commit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class EmailMessage:
    """One rendered email to one recipient."""

    to: str
    from_addr: str
    subject: str
    text: str
    html: str | None
    #: Stable across attempts, e.g. ``"<outbox-123.site-4@dunwell.example>"``.
    message_id: str
    reply_to: str | None = None
    #: Blind copies: envelope recipients only, never a header.
    bcc: tuple[str, ...] = ()
    #: Extra headers such as ``X-Dunwell-Message``; they cannot replace the
    #: headers built from the fields above.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmsMessage:
    """One text message to one E.164 number."""

    to: str
    body: str
    #: Where the provider reports delivery, e.g.
    #: ``https://<public host>/twilio/<site-slug>/status``.
    status_callback: str | None = None
    #: Seconds the provider may keep the text queued before a carrier takes
    #: it; one still queued after that is dropped, not sent late. None: the
    #: provider's own limit (Twilio's is ten hours).
    validity_seconds: int | None = None


@dataclass(frozen=True)
class SendResult:
    """The provider's answer to an accepted message."""

    #: Twilio's message SID, or the email's Message-ID for SMTP.
    provider_id: str | None
    #: ``"sent"`` for SMTP (the relay took it); Twilio's status otherwise
    #: (``"queued"``, ``"accepted"``, later ``"sent"``, ``"delivered"``...).
    status: str


class TransportError(Exception):
    """A message could not be handed over; see the module docstring.

    Two flags say what is known of a transient failure beyond "try later":

    * ``turned_away``: the provider could not be reached, or would not take
      another connection or request just now (an SMTP relay's "421 too many
      connections", Twilio's HTTP 429). Nothing of the message reached it,
      so another connection that is already open may send it at once.
    * ``in_doubt``: the request reached the provider and no answer came
      back (a read timeout, a connection cut after sending). The provider
      may have taken the message, so the next attempt must look first.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | None = None,
        turned_away: bool = False,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.turned_away = turned_away and not permanent
        self.in_doubt = in_doubt and not permanent

    def __repr__(self) -> str:
        flags = "".join(
            f", {name}=True" for name in ("turned_away", "in_doubt") if getattr(self, name)
        )
        return (
            f"TransportError({self.message!r}, permanent={self.permanent}, "
            f"code={self.code!r}{flags})"
        )


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> SendResult:
        """Hand one message to the relay; raises :class:`TransportError`."""
        ...


class EmailTransport(Protocol):
    def session(self) -> AbstractContextManager[EmailSender]:
        """A sender that reuses one connection for a batch of messages.

        Connecting happens on the first ``send``, so connection failures
        surface there, as a :class:`TransportError` for that message.
        """
        ...


class SmsTransport(Protocol):
    def send(self, message: SmsMessage) -> SendResult:
        """Hand one message to the provider; raises :class:`TransportError`."""
        ...

    def find_sent(self, message: SmsMessage, since: datetime) -> SendResult | None:
        """The provider's record of this exact message (same To and body)
        accepted at or after ``since``, or None if there is none.

        Used after a crash so that a message is never sent twice; raises
        :class:`TransportError` when the provider cannot be asked.
        """
        ...


@dataclass(frozen=True)
class ReceivedSms:
    """A text the provider received for the site, as its API lists it."""

    sid: str
    from_phone: str
    to_phone: str
    body: str
    received_at: datetime


@runtime_checkable
class SmsInbox(Protocol):
    """A provider that can list the texts it received (Twilio; not the sandbox).

    The webhook is how texts normally arrive; this is how the ones whose
    webhook never got through are found afterwards.
    """

    def received(self, since: datetime, until: datetime, limit: int) -> list[ReceivedSms]:
        """Texts received at or after ``since`` and before ``until``, oldest first.

        At most ``limit``, the oldest ones, so a reader that stops at the
        limit can go on from the last one. Raises :class:`TransportError`.
        """
        ...

    def statuses(self, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """The provider's current status and error code of each sent message it knows.

        For delivery reports that never arrived. Raises :class:`TransportError`.
        """
        ...

    def close(self) -> None:
        """Release the connections it holds."""
        ...
