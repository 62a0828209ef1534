"""A text from a customer: stored once, carrier keywords first, then the rest.

Twilio's webhook and the sandbox phone both land here. The order matters
and is fixed: a retried delivery (same MessageSid) changes nothing; card
numbers are redacted before the body is stored; STOP / START / HELP (and
Twilio's Advanced Opt-Out ``OptOutType``) are handled before anything
conversational, and an opt-out is recorded per site and number in the same
transaction, so no text can follow it.

:func:`receive_many` stores a batch of texts in one transaction with a
fixed number of statements, whatever the batch's size (the webhook's group
commit, see :mod:`dunwell.services.inbound_writer`); :func:`receive_sms` is
the same for one text. A batch is taken in arrival order, so it ends as if
each text had had its own transaction: from one number, a STOP and then a
question leave the number opted out and the question waiting for the
concierge; a STOP then a START leave it opted in; a MessageSid seen twice
is stored once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, bindparam, func, select, update

from dunwell.clock import Clock
from dunwell.messaging.keywords import Keyword, match_keyword, twilio_opt_out_type
from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.conversations import close_live_conversations, live_states
from dunwell.services.errors import NotFound
from dunwell.services.events import EventBatch
from dunwell.services.late_answers import LateAnswer, answered_late, queue_late_answers
from dunwell.services.sms_settings import SmsSettings, load_sms_settings
from dunwell.store.bulk import bulk_insert_returning
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import customers, inbound_messages, sites, sms_opt_outs

#: A site and a normalized phone number: whose opt-out, customer and conversation.
Sender = tuple[int, str]


@dataclass(frozen=True)
class InboundSms:
    site_id: int
    provider: str  # twilio | sandbox
    sid: str
    from_phone: str
    to_phone: str | None
    body: str
    #: Twilio Advanced Opt-Out's ``OptOutType`` (STOP, START, HELP) when set.
    opt_out_type: str | None = None
    #: When the provider received it, for a text read back from its log
    #: after its webhook was lost (services/twilio_catch_up.py). None: now.
    received_at: datetime | None = None


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    keyword: Keyword | None
    #: What to answer, or None for no answer. A keyword found late in the
    #: provider's log has none: its answer, if any, is queued as a text
    #: (:mod:`dunwell.services.late_answers`).
    reply: str | None
    customer_id: int | None
    phone: str
    #: The stored text, when it waits for the concierge (not a keyword, not a repeat).
    waiting_id: int | None = None


@dataclass(frozen=True)
class _Read:
    """One text as read before anything is written: who sent it and what it is."""

    sms: InboundSms
    sender: Sender
    customer_id: int | None
    keyword: Keyword | None
    #: The keyword came from Twilio's Advanced Opt-Out (which answers it itself).
    advanced: bool
    now: datetime

    @property
    def late(self) -> bool:
        """Read back from the provider's log after its webhook was lost."""
        return self.sms.received_at is not None


@dataclass(frozen=True)
class _Consent:
    """A number's consent as a text (or a request in words) sets it."""

    out: bool
    source: str
    at: datetime
    late: bool = False


@dataclass(frozen=True)
class _Site:
    """What a batch needs of each site, read once."""

    now: datetime
    name: str
    support_email: str | None
    settings: SmsSettings


def receive_sms(conn: Connection, sms: InboundSms, now: datetime) -> InboundResult:
    """Store one text, at ``now`` (see :func:`receive_many`)."""
    return _receive(conn, [sms], lambda _test_clock: now)[0]


def receive_many(
    conn: Connection, texts: Sequence[InboundSms], clock: Clock
) -> list[InboundResult]:
    """Store ``texts`` in arrival order; one result per text.

    Each site's now is its test clock when it has one, else ``clock``'s, as
    :func:`~dunwell.services.sites.site_now` says. A text for a site that
    does not exist fails the batch (NotFound).
    """
    real_now = clock.now()
    return _receive(conn, texts, lambda test_clock: test_clock or real_now)


def _receive(
    conn: Connection,
    texts: Sequence[InboundSms],
    now_of: Callable[[datetime | None], datetime],
) -> list[InboundResult]:
    if not texts:
        return []
    sites_by_id = _sites(conn, {sms.site_id for sms in texts}, now_of)
    senders = [
        (sms.site_id, _normalized(sms.from_phone, sites_by_id[sms.site_id].settings.default_region))
        for sms in texts
    ]
    customer_ids = _customers_by_phone(conn, senders)
    # While the concierge waits for a yes, a bare YES answers it (not START).
    awaiting = _awaiting_confirmation(conn, senders, sites_by_id)
    read = []
    for sms, sender in zip(texts, senders, strict=True):
        text = _read(sms, sender, customer_ids.get(sender), sender in awaiting, sites_by_id)
        if text.keyword is Keyword.OPT_OUT:
            # STOP ends the question (see _apply): a YES after it opts back in.
            awaiting.discard(sender)
        read.append(text)
    # A sid seen earlier in the batch is a retried delivery; so is one stored
    # before, by this process or another: the insert skips it (ON CONFLICT DO
    # NOTHING / OR IGNORE) and returns no id for it.
    first: list[bool] = []
    seen: set[str] = set()
    for sms in texts:
        first.append(sms.sid not in seen)
        seen.add(sms.sid)
    stored = _insert_texts(conn, [text for text, new in zip(read, first, strict=True) if new])
    ids = [stored.get(text.sms.sid) if new else None for text, new in zip(read, first, strict=True)]
    return _apply(conn, read, ids, sites_by_id)


def record_opt_out(
    conn: Connection,
    site_id: int,
    phone: str,
    customer_id: int | None,
    source: str,
    now: datetime,
) -> None:
    """Opt a number out of the site's texts (a request in words, not the keyword)."""
    _set_opt_outs(conn, {(site_id, phone): _Consent(True, source, now)})
    events = EventBatch()
    events.add(site_id, "sms.opted_out", now, customer_id=customer_id, phone=phone)
    events.write(conn)


def is_opted_out(conn: Connection, site_id: int, phone: str) -> bool:
    t = sms_opt_outs
    return bool(
        conn.execute(
            select(t.c.opted_out).where(t.c.site_id == site_id, t.c.phone == phone)
        ).scalar()
    )


def _read(
    sms: InboundSms,
    sender: Sender,
    customer_id: int | None,
    awaiting: bool,
    sites_by_id: Mapping[int, _Site],
) -> _Read:
    now = sites_by_id[sms.site_id].now
    if sms.received_at is not None:
        # A late text keeps the time the provider received it; never later
        # than the site's now (a test clock behind real time), so the site
        # never holds a text from its future.
        now = min(now, sms.received_at)
    keyword = match_keyword(sms.body, awaiting_confirmation=awaiting)
    advanced = twilio_opt_out_type(sms.opt_out_type)
    if advanced is not None and not (advanced is Keyword.OPT_IN and awaiting and keyword is None):
        return _Read(sms, sender, customer_id, advanced, True, now)
    return _Read(sms, sender, customer_id, keyword, False, now)


def _sites(
    conn: Connection, site_ids: set[int], now_of: Callable[[datetime | None], datetime]
) -> dict[int, _Site]:
    settings = load_sms_settings(conn, site_ids)
    rows = conn.execute(_SITES, {"ids": list(site_ids)})
    found = {
        row.id: _Site(now_of(row.clock_now), row.name, row.support_email, settings[row.id])
        for row in rows
    }
    missing = site_ids - found.keys()
    if missing:
        raise NotFound(f"no site with id {min(missing)}")
    return found


def _apply(
    conn: Connection,
    read: Sequence[_Read],
    ids: Sequence[int | None],
    sites_by_id: Mapping[int, _Site],
) -> list[InboundResult]:
    """The opt-outs, events and answers of the texts just stored (``ids``; None: a repeat)."""
    events = EventBatch()
    # Per number, the last keyword of the batch wins, as it would one text at a time.
    opt_outs: dict[Sender, _Consent] = {}
    # STOP voids whatever the concierge was asking: a later YES must opt the
    # number back in, as carriers read it, not confirm a change.
    ended: dict[Sender, datetime] = {}
    late_answers: list[LateAnswer] = []
    results = []
    for text, inbound_id in zip(read, ids, strict=True):
        site_id, phone = text.sender
        at, customer_id, keyword = text.now, text.customer_id, text.keyword
        if inbound_id is None:
            results.append(InboundResult(True, keyword, None, customer_id, phone))
            continue
        site = sites_by_id[site_id]
        template = None
        source = "twilio" if text.advanced else "keyword"
        if keyword is Keyword.OPT_OUT:
            opt_outs[text.sender] = _Consent(True, source, at, text.late)
            ended[text.sender] = at
            events.add(site_id, "sms.opted_out", at, customer_id=customer_id, phone=phone)
            template = site.settings.stop_reply
        elif keyword is Keyword.OPT_IN:
            opt_outs[text.sender] = _Consent(False, source, at, text.late)
            events.add(site_id, "sms.opted_in", at, customer_id=customer_id, phone=phone)
            template = site.settings.start_reply
        elif keyword is Keyword.HELP:
            template = site.settings.help_reply
        else:
            events.add(site_id, "sms.received", at, customer_id=customer_id, phone=phone)
        reply = None
        # With Advanced Opt-Out, Twilio sends its own configured answer.
        if template is not None and not text.advanced:
            help_contact = site.settings.help_contact or site.support_email or site.name
            reply = site.settings.reply(template, site.name, help_contact)
            if text.late:
                # No webhook to answer in: the answer goes out as a text, or not at all.
                if keyword is not None and answered_late(keyword):
                    answer = LateAnswer(
                        site_id, customer_id, phone, inbound_id, keyword, reply, site.now
                    )
                    late_answers.append(answer)
                reply = None
        waiting_id = inbound_id if keyword is None else None
        results.append(InboundResult(False, keyword, reply, customer_id, phone, waiting_id))
    _set_opt_outs(conn, opt_outs)
    close_live_conversations(conn, ended, "answered")
    events.write(conn)
    if late_answers:  # only texts read back from the provider's log have any
        settings = {site_id: site.settings for site_id, site in sites_by_id.items()}
        queue_late_answers(conn, late_answers, settings)
    return results


def _customers_by_phone(conn: Connection, senders: Iterable[Sender]) -> dict[Sender, int]:
    """Each sender's customer: the site's oldest with that phone number."""
    wanted = set(senders)
    rows = conn.execute(
        _CUSTOMERS_BY_PHONE,
        {
            "sites": list({site_id for site_id, _ in wanted}),
            "phones": list({phone for _, phone in wanted}),
        },
    )
    return {(row.site_id, row.phone): row.id for row in rows if (row.site_id, row.phone) in wanted}


def _awaiting_confirmation(
    conn: Connection, senders: Iterable[Sender], sites_by_id: Mapping[int, _Site]
) -> set[Sender]:
    """The senders whose live conversation waits for a yes."""
    now_by_site = {site_id: site.now for site_id, site in sites_by_id.items()}
    states = live_states(conn, senders, now_by_site)
    return {sender for sender, state in states.items() if state.get("awaiting") == "confirmation"}


def _insert_texts(conn: Connection, texts: Sequence[_Read]) -> dict[str, int]:
    """Insert the texts in arrival order; MessageSid -> id of those really inserted."""
    if not texts:
        return {}
    rows = [
        {
            "site_id": text.sms.site_id,
            "provider": text.sms.provider,
            "provider_sid": text.sms.sid,
            "from_phone": text.sender[1],
            "to_phone": text.sms.to_phone,
            "customer_id": text.customer_id,
            "body": redact_card_numbers(text.sms.body),
            "keyword": text.keyword.value if text.keyword else None,
            "received_at": text.now,
            # A keyword is answered here; anything else waits for the concierge.
            "answered_at": text.now if text.keyword else None,
        }
        for text in texts
    ]
    returned = bulk_insert_returning(
        conn,
        inbound_messages,
        rows,
        ("provider_sid", "id"),
        ignore_conflicts_on=("provider_sid",),
    )
    return dict(returned)


@lru_cache(maxsize=4096)
def _normalized(raw: str, region: str) -> str:
    # Cached: a conversation is many texts from one number, and parsing one
    # is the costliest step of storing a text.
    try:
        return normalize_phone(raw, region)
    except PhoneError:
        return raw.strip()  # kept as given: an opt-out must be honoured whatever the number


def _set_opt_outs(conn: Connection, changes: Mapping[Sender, _Consent]) -> None:
    """Record each number's consent (opted out or not, why, when).

    A row is created where none exists, then every row is set: in that
    order, when two server processes (PostgreSQL) record a number's first
    STOP and START at once, the one committed last wins and none is lost.
    A late keyword (read back from Twilio's log) changes a row only if no
    newer choice was recorded since: a STOP lost at 10:00 and found at
    10:20 must not undo a START the webhook stored at 10:15.
    """
    if not changes:
        return
    t = sms_opt_outs
    rows = [
        {
            "site_id": site_id,
            "phone": phone,
            "opted_out": c.out,
            "source": c.source,
            "updated_at": c.at,
        }
        for (site_id, phone), c in changes.items()
    ]
    insert_ignore(conn, t, rows, ["site_id", "phone"])
    for late in (False, True):
        params = [
            {"site": site_id, "number": phone, "out": c.out, "why": c.source, "at": c.at}
            for (site_id, phone), c in changes.items()
            if c.late is late
        ]
        if params:
            conn.execute(_SET_LATE_OPT_OUT if late else _SET_OPT_OUT, params)


# The batch's statements, built once: building a statement (its expressions
# and cache key) cost several times what running it does, and the webhook's
# writer runs each of these once per batch.

_SITES = select(sites.c.id, sites.c.clock_now, sites.c.name, sites.c.support_email).where(
    sites.c.id.in_(bindparam("ids", expanding=True))
)

_CUSTOMERS_BY_PHONE = (
    select(customers.c.site_id, customers.c.phone, func.min(customers.c.id).label("id"))
    .where(
        customers.c.site_id.in_(bindparam("sites", expanding=True)),
        customers.c.phone.in_(bindparam("phones", expanding=True)),
    )
    .group_by(customers.c.site_id, customers.c.phone)
)

_SET_OPT_OUT = (
    update(sms_opt_outs)
    .where(sms_opt_outs.c.site_id == bindparam("site"), sms_opt_outs.c.phone == bindparam("number"))
    .values(opted_out=bindparam("out"), source=bindparam("why"), updated_at=bindparam("at"))
)
# Not for live texts: servers' clocks differ by a little, and a START a
# second after a STOP on another server must still win.
_SET_LATE_OPT_OUT = _SET_OPT_OUT.where(sms_opt_outs.c.updated_at <= bindparam("at"))
