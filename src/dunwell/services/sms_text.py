"""The last touch on an SMS body before it is stored: encoding and opt-out line.

Smart encoding (on by default) swaps look-alike characters so the text
stays GSM-7 and costs fewer segments; the opt-out line is appended unless
the body already says how to opt out; the segment count is of the final
text, so what is billed is what was counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from dunwell.messaging.keywords import with_opt_out_line
from dunwell.messaging.segments import count_segments
from dunwell.messaging.smart_encoding import smart_encode
from dunwell.services.sms_settings import SmsSettings, load_sms_settings


@dataclass(frozen=True)
class FinishedSms:
    body: str
    segments: int
    encoding: str


def finish_sms(body: str, settings: SmsSettings, *, opt_out_line: bool = True) -> FinishedSms:
    """Encode and count ``body``; ``opt_out_line=False`` for replies later in a conversation.

    The opt-out line goes on every message a business starts and on the
    first reply of a conversation; repeating it on each turn of a chat the
    customer is holding adds a segment a time and tells them nothing new.
    """
    text = body.strip()
    if opt_out_line:
        text = with_opt_out_line(text, settings.opt_out_line)
    if settings.smart_encoding:
        text = smart_encode(text)
    count = count_segments(text)
    return FinishedSms(text, count.segments, count.encoding)


class SmsFinisher:
    """:func:`finish_sms` with each site's settings, loaded once per batch."""

    def __init__(self, conn: Connection, site_ids: Iterable[int]) -> None:
        ids = set(site_ids)
        self.settings = load_sms_settings(conn, ids) if ids else {}

    def finish(self, site_id: int, body: str) -> FinishedSms:
        return finish_sms(body, self.settings.get(site_id) or SmsSettings())
