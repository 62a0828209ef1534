"""Answers to carrier keywords whose webhook was lost, sent through the outbox.

A keyword that reaches the webhook is answered in its TwiML reply. One that
Twilio logged while Dunwell was down is found later by the catch-up read
(:mod:`dunwell.services.twilio_catch_up`), when there is no HTTP answer to
put a reply in, so the answer is queued as a text instead, in the same
transaction that stores the keyword:

* **HELP** is answered (kind ``help_reply``). Carriers require an answer to
  HELP whatever the number's consent, so the gate lets it reach a number
  that opted out.
* **START** is answered (kind ``reply``) as long as the number is still
  opted in when the text goes out: a late START that a newer STOP
  overruled is blocked by the gate, and the customer is not told they are
  resubscribed.
* **STOP** is not answered. The FCC allows one confirmation of an opt-out
  only within five minutes of the request, and a keyword found late is
  already at least :data:`~dunwell.services.twilio_catch_up.GRACE` old
  before its answer is even queued. On US and Canadian long codes Twilio's
  own opt-out handling has confirmed it anyway.

Each answer's dedupe key names the stored text it answers, so a text read
back twice is answered once (the text itself is stored once, by MessageSid).
Answers go through every check the gate makes but the window and the cap
(they answer the customer), and are paid for in credits like any text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from dunwell.messaging.keywords import Keyword
from dunwell.services.sms_gate import HELP_REPLY, REPLY
from dunwell.services.sms_settings import SmsSettings
from dunwell.services.sms_text import finish_sms
from dunwell.store.tables import outbox

#: The outbox kind of each keyword's late answer; a keyword not here is not answered.
KINDS: dict[Keyword, str] = {Keyword.HELP: HELP_REPLY, Keyword.OPT_IN: REPLY}


@dataclass(frozen=True)
class LateAnswer:
    """The answer a keyword read back from the provider's log would have had."""

    site_id: int
    customer_id: int | None
    phone: str
    #: The stored keyword text this answers.
    inbound_id: int
    keyword: Keyword
    body: str
    #: The site's now when the keyword was found, when the answer is due.
    now: datetime


def answered_late(keyword: Keyword) -> bool:
    """Whether a keyword found late gets an answer by text."""
    return keyword in KINDS


def queue_late_answers(
    conn: Connection, answers: Sequence[LateAnswer], settings: dict[int, SmsSettings]
) -> None:
    """Write each answer to the outbox, due at once, in one statement."""
    rows = [_row(answer, settings[answer.site_id]) for answer in answers]
    if rows:
        conn.execute(insert(outbox), rows)


def _row(answer: LateAnswer, settings: SmsSettings) -> dict[str, Any]:
    # The answers already end with "Reply STOP to opt out" or the like.
    finished = finish_sms(answer.body, settings, opt_out_line=False)
    return {
        "site_id": answer.site_id,
        "channel": "sms",
        "dedupe_key": f"keyword-answer:{answer.inbound_id}",
        "customer_id": answer.customer_id,
        "invoice_id": None,
        "template": None,
        "payload": {
            "event": "sms.keyword_answer",
            "inbound_id": answer.inbound_id,
            "keyword": answer.keyword.value,
        },
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": answer.now,
        "created_at": answer.now,
        "kind": KINDS[answer.keyword],
        "recipient": answer.phone,
        "body_text": finished.body,
        "segments": finished.segments,
        "encoding": finished.encoding,
    }
