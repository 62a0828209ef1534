"""Outbound message transports, one module per provider.

:mod:`dunwell.channels.base` holds the protocols, the message types and
:class:`TransportError`; :mod:`~dunwell.channels.smtp` and
:mod:`~dunwell.channels.twilio_sms` are imported where they are wired, so
that loading the package does not load every provider's SDK.
"""

from __future__ import annotations

from dunwell.channels.base import (
    EmailMessage,
    EmailSender,
    EmailTransport,
    SendResult,
    SmsMessage,
    SmsTransport,
    TransportError,
)

__all__ = [
    "EmailMessage",
    "EmailSender",
    "EmailTransport",
    "SendResult",
    "SmsMessage",
    "SmsTransport",
    "TransportError",
]
