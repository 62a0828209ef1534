"""Inbound texts stored in batches: the same outcome as one by one, one writer, one answerer."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from dunwell.bootstrap import App
from dunwell.messaging.keywords import Keyword
from dunwell.services.concierge_answerer import ConciergeAnswerer
from dunwell.services.conversations import current_conversation, save_state
from dunwell.services.errors import NotFound
from dunwell.services.inbound_sms import InboundResult, InboundSms, receive_many, receive_sms
from dunwell.services.inbound_store import store_texts
from dunwell.services.inbound_writer import Backlog, InboundWriter, WriterClosed
from dunwell.services.sites import site_now
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.inbound_helpers import wait_for, writes_held

ANN, BEN, CAL, DEE, EVE = (f"+1415555010{n}" for n in range(5))

#: (sender, body, OptOutType); a later entry may repeat an earlier MessageSid (see SCRIPT_SIDS).
SCRIPT: list[tuple[str, str, str | None]] = [
    (ANN, "STOP", None),
    (ANN, "where is my order", None),  # after her STOP: stored, waits for the concierge
    (BEN, "START", None),
    (BEN, "stop", None),  # his last word: opted out
    (CAL, "HELP", None),
    (ANN, "START", None),  # and she is back
    (DEE, "yes", None),  # awaiting a confirmation: an answer, not an opt-in
    (EVE, "my card is 4111 1111 1111 1111", None),
    (EVE, "Stop it", "STOP"),  # Advanced Opt-Out: Twilio answers, we record
    (CAL, "HELP", None),  # a repeat of the first HELP's sid: changes nothing
]
SCRIPT_SIDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 4]


def _texts(site_id: int, prefix: str) -> list[InboundSms]:
    return [
        InboundSms(site_id, "twilio", f"SM{prefix}{sid:030d}", phone, "+14155550000", body, kind)
        for (phone, body, kind), sid in zip(SCRIPT, SCRIPT_SIDS, strict=True)
    ]


def _site(app: App, slug: str) -> Shop:
    shop = Shop.create(app, slug=slug)
    for phone in (ANN, BEN, CAL, EVE):
        shop.customer(None, phone=phone)
    with app.begin() as conn:
        now = site_now(conn, shop.site_id, app.clock)
        conversation = current_conversation(conn, shop.site_id, DEE, None, now)
        save_state(conn, conversation, {"awaiting": "confirmation"}, now)
    return shop


def _outcome(shop: Shop, results: list[InboundResult]) -> dict[str, Any]:
    """Everything the texts left behind, without the ids that differ between sites."""
    phone_of = {c.id: c.phone for c in shop.all(tables.customers, site_id=shop.site_id)}
    company = shop.one(tables.sites, id=shop.site_id).name
    return {
        "results": [
            (
                r.duplicate,
                r.keyword,
                r.reply and r.reply.replace(company, "<company>"),
                phone_of.get(r.customer_id or 0),
                r.phone,
            )
            for r in results
        ],
        "waiting": [r.waiting_id is not None for r in results],
        "texts": [
            (m.from_phone, m.body, m.keyword, m.answered_at is None, phone_of.get(m.customer_id))
            for m in shop.all(tables.inbound_messages, site_id=shop.site_id)
        ],
        "opt_outs": sorted(
            (o.phone, o.opted_out, o.source)
            for o in shop.all(tables.sms_opt_outs, site_id=shop.site_id)
        ),
        "events": [
            (e.type, e.data["phone"], phone_of.get(e.customer_id or 0))
            for e in shop.all(tables.events, site_id=shop.site_id)
            if e.type.startswith("sms.")
        ],
    }


def test_a_batch_ends_exactly_as_the_same_texts_one_by_one(app: App) -> None:
    alone, together = _site(app, "alone"), _site(app, "together")
    one_by_one = []
    for sms in _texts(alone.site_id, "A"):
        with app.begin() as conn:
            one_by_one.append(receive_sms(conn, sms, site_now(conn, alone.site_id, app.clock)))
    with app.begin() as conn:
        batched = receive_many(conn, _texts(together.site_id, "B"), app.clock)

    expected = _outcome(alone, one_by_one)
    assert _outcome(together, batched) == expected
    # And what that is, spelled out.
    assert expected["opt_outs"] == [
        (ANN, False, "keyword"),
        (BEN, True, "keyword"),
        (EVE, True, "twilio"),
    ]
    assert [r[1] for r in expected["results"]] == [
        Keyword.OPT_OUT,
        None,
        Keyword.OPT_IN,
        Keyword.OPT_OUT,
        Keyword.HELP,
        Keyword.OPT_IN,
        None,
        None,
        Keyword.OPT_OUT,
        Keyword.HELP,
    ]
    assert expected["waiting"] == [
        False,
        True,
        False,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert [r[0] for r in expected["results"]] == [False] * 9 + [True]
    replies = [r[2] for r in expected["results"]]
    assert replies[0] and "unsubscribed from <company> texts" in replies[0]
    assert replies[4] and "help" in replies[4].lower()
    assert replies[8] is None and replies[9] is None  # Twilio's own answer; a repeat
    assert len(expected["texts"]) == 9
    assert "4111" not in expected["texts"][7][1]
    assert [e[0] for e in expected["events"]] == [
        "sms.opted_out",
        "sms.received",
        "sms.opted_in",
        "sms.opted_out",
        "sms.opted_in",
        "sms.received",
        "sms.received",
        "sms.opted_out",
    ]


def test_stop_ends_the_question_so_a_yes_after_it_opts_back_in_batched_or_not(
    app: App,
) -> None:
    alone, together = _site(app, "alone"), _site(app, "together")
    texts = [(DEE, "STOP"), (DEE, "yes")]

    def batch(shop: Shop, prefix: str) -> list[InboundSms]:
        return [
            InboundSms(shop.site_id, "twilio", f"SM{prefix}{n:030d}", phone, "+14155550000", body)
            for n, (phone, body) in enumerate(texts)
        ]

    one_by_one = []
    for sms in batch(alone, "A"):
        with app.begin() as conn:
            one_by_one.append(receive_sms(conn, sms, site_now(conn, alone.site_id, app.clock)))
    with app.begin() as conn:
        batched = receive_many(conn, batch(together, "B"), app.clock)

    for shop, results in ((alone, one_by_one), (together, batched)):
        assert [r.keyword for r in results] == [Keyword.OPT_OUT, Keyword.OPT_IN]
        assert shop.one(tables.sms_opt_outs, site_id=shop.site_id, phone=DEE).opted_out is False
        (conversation,) = shop.all(tables.conversations, site_id=shop.site_id, phone=DEE)
        assert (conversation.status, conversation.awaiting) == ("closed", None)


def test_stops_from_several_numbers_in_one_batch_each_end_their_own_question(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        now = site_now(conn, shop.site_id, app.clock)
        for phone in (ANN, BEN, CAL):
            conversation = current_conversation(conn, shop.site_id, phone, None, now)
            save_state(conn, conversation, {"awaiting": "confirmation"}, now)
    stops = [
        InboundSms(shop.site_id, "twilio", f"SMS{n:031d}", phone, "+14155550000", "STOP")
        for n, phone in enumerate((ANN, BEN))
    ]
    with app.begin() as conn:
        receive_many(conn, stops, app.clock)

    status = {c.phone: (c.status, c.awaiting) for c in shop.all(tables.conversations)}
    assert status == {
        ANN: ("closed", None),
        BEN: ("closed", None),
        CAL: ("open", "confirmation"),  # no STOP from this number
    }


def test_a_sid_stored_earlier_is_a_repeat_in_a_batch(app: App) -> None:
    shop = _site(app, "shop")
    first, *_ = _texts(shop.site_id, "C")
    with app.begin() as conn:
        receive_sms(conn, first, site_now(conn, shop.site_id, app.clock))
    with app.begin() as conn:  # the customer opts back in meanwhile
        conn.execute(tables.sms_opt_outs.update().values(opted_out=False))
    again = replace(first, body="STOP")
    fresh = replace(first, sid="SMfresh", body="hello")
    with app.begin() as conn:
        results = receive_many(conn, [again, fresh], app.clock)
    assert [r.duplicate for r in results] == [True, False]
    assert results[0].reply is None and results[1].waiting_id is not None
    assert shop.one(tables.sms_opt_outs, phone=ANN).opted_out is False
    assert len(shop.all(tables.inbound_messages)) == 2


# -- the writer --------------------------------------------------------------------


def _text(shop: Shop, n: int, body: str = "where is my order") -> InboundSms:
    return InboundSms(shop.site_id, "twilio", f"SMw{n:032d}", ANN, "+14155550000", body)


def test_a_failing_text_fails_alone_and_the_rest_of_its_batch_is_stored(app: App) -> None:
    shop = _site(app, "shop")
    good = [_text(shop, n) for n in range(4)]
    lost = replace(_text(shop, 99), site_id=shop.site_id + 1000)  # no such site
    results = store_texts(app, [good[0], good[1], lost, good[2], good[3]])
    assert isinstance(results[2], NotFound)
    assert all(isinstance(r, InboundResult) and r.waiting_id for r in results[:2] + results[3:])
    stored = [m.provider_sid for m in shop.all(tables.inbound_messages)]
    assert stored == [sms.sid for sms in good]


def test_texts_waiting_for_a_commit_share_the_next_one(app: App) -> None:
    shop = _site(app, "shop")
    writer = InboundWriter(app)
    try:
        with writes_held(app):
            blocked = writer.submit(_text(shop, 0))
            wait_for(lambda: writer.backlog() == Backlog(queued=0, storing=1))
            lost = writer.submit(replace(_text(shop, 99), site_id=shop.site_id + 1000))
            queued = [writer.submit(_text(shop, n, body)) for n, body in enumerate("ab", 1)]
            queued.append(writer.submit(_text(shop, 3, "STOP")))
            assert writer.backlog() == Backlog(queued=4, storing=1)
        assert blocked.result(timeout=30).waiting_id is not None
        with pytest.raises(NotFound):
            lost.result(timeout=30)
        results = [future.result(timeout=30) for future in queued]
    finally:
        writer.close()
    assert [r.keyword for r in results] == [None, None, Keyword.OPT_OUT]
    assert results[2].reply and "unsubscribed" in results[2].reply
    assert len(shop.all(tables.inbound_messages)) == 4
    assert shop.one(tables.sms_opt_outs, phone=ANN).opted_out is True


def test_closing_the_writer_stores_every_queued_text_and_refuses_new_ones(app: App) -> None:
    shop = _site(app, "shop")
    writer = InboundWriter(app)
    with writes_held(app):
        futures = [writer.submit(_text(shop, n)) for n in range(5)]
        writer.close(timeout=0.1)  # cannot finish while the lock is held
        with pytest.raises(WriterClosed):
            writer.submit(_text(shop, 5))
        assert not any(future.done() for future in futures)
    writer.close()
    assert all(future.result(timeout=0).waiting_id for future in futures)
    assert len(shop.all(tables.inbound_messages)) == 5


def test_a_cancelled_request_s_text_is_not_stored(app: App) -> None:
    shop = _site(app, "shop")
    writer = InboundWriter(app)
    try:
        with writes_held(app):
            first = writer.submit(_text(shop, 0))
            wait_for(lambda: writer.backlog().storing == 1)
            abandoned = writer.submit(_text(shop, 1))
            kept = writer.submit(_text(shop, 2))
            assert abandoned.cancel()
        first.result(timeout=30), kept.result(timeout=30)
    finally:
        writer.close()
    assert [m.provider_sid for m in shop.all(tables.inbound_messages)] == [
        _text(shop, 0).sid,
        _text(shop, 2).sid,
    ]


def test_texts_awaited_on_an_event_loop_share_a_commit_and_each_get_their_outcome(
    app: App,
) -> None:
    """The webhook's way in: :meth:`InboundWriter.store` from the server's event loop."""
    shop = _site(app, "shop")
    writer = InboundWriter(app)
    queued, outcomes = threading.Event(), {}

    async def scenario() -> None:
        first = asyncio.ensure_future(writer.store(_text(shop, 0)))
        await asyncio.to_thread(wait_for, lambda: writer.backlog().storing == 1)
        lost = asyncio.ensure_future(writer.store(replace(_text(shop, 9), site_id=0)))
        abandoned = asyncio.ensure_future(writer.store(_text(shop, 1)))
        kept = [
            asyncio.ensure_future(writer.store(_text(shop, 2, "STOP"))),
            asyncio.ensure_future(writer.store(_text(shop, 3))),
        ]
        await asyncio.to_thread(wait_for, lambda: writer.backlog() == Backlog(4, 1))
        abandoned.cancel()  # the request went away before its text was stored
        queued.set()
        outcomes["first"] = await first
        outcomes["kept"] = await asyncio.gather(*kept)
        outcomes["lost"] = await asyncio.gather(lost, return_exceptions=True)
        outcomes["abandoned"] = abandoned.cancelled()

    try:
        with ThreadPoolExecutor(1) as pool:
            with writes_held(app):
                running = pool.submit(asyncio.run, scenario())
                assert queued.wait(30)
            running.result(timeout=30)
    finally:
        writer.close()
    assert outcomes["first"].waiting_id is not None
    stop, question = outcomes["kept"]
    assert stop.keyword is Keyword.OPT_OUT and stop.reply and "unsubscribed" in stop.reply
    assert question.keyword is None and question.waiting_id is not None
    assert isinstance(outcomes["lost"][0], NotFound)
    assert outcomes["abandoned"] is True
    stored = [m.provider_sid for m in shop.all(tables.inbound_messages)]
    assert stored == [_text(shop, n).sid for n in (0, 2, 3)]


# -- the server's own concierge --------------------------------------------------------


def _waiting_texts(app: App, shop: Shop, count: int) -> list[int]:
    with app.begin() as conn:
        results = receive_many(conn, [_text(shop, n) for n in range(count)], app.clock)
    return [r.waiting_id for r in results if r.waiting_id is not None]


def _unanswered(app: App) -> list[int]:
    t = tables.inbound_messages
    with app.connect() as conn:
        return list(conn.execute(select(t.c.id).where(t.c.answered_at.is_(None))).scalars())


def test_the_answerer_takes_what_fits_and_leaves_the_rest_to_the_worker(app: App) -> None:
    shop = _site(app, "shop")
    ids = _waiting_texts(app, shop, 4)
    answerer = ConciergeAnswerer(app, capacity=2, quiet_gap=0)
    try:
        with writes_held(app):  # its claim waits, so its queue fills up
            assert answerer.offer(ids[0])
            wait_for(lambda: answerer.waiting() == 0)
            assert answerer.offer(ids[1]) and answerer.offer(ids[2])
            assert not answerer.offer(ids[3])
        assert answerer.wait_idle(30)
    finally:
        answerer.close()
    assert _unanswered(app) == [ids[3]]
    shop.run()
    assert _unanswered(app) == []


def test_the_answerer_steps_aside_while_texts_come_fast(app: App) -> None:
    shop = _site(app, "shop")
    ids = _waiting_texts(app, shop, 4)
    answerer = ConciergeAnswerer(app, quiet_gap=60)
    try:
        assert answerer.offer(ids[0])
        assert not answerer.offer(ids[1])  # right after the first: left to the worker
        assert not answerer.offer(ids[2])
        assert answerer.wait_idle(30)
    finally:
        answerer.close()
    assert _unanswered(app) == ids[1:]
    shop.run()
    assert _unanswered(app) == []


def test_closing_the_answerer_leaves_its_queue_to_the_worker(app: App) -> None:
    shop = _site(app, "shop")
    ids = _waiting_texts(app, shop, 3)
    answerer = ConciergeAnswerer(app, capacity=8, quiet_gap=0)
    closer = threading.Thread(target=answerer.close)
    with writes_held(app):
        assert answerer.offer(ids[0])
        wait_for(lambda: answerer.waiting() == 0)
        assert answerer.offer(ids[1]) and answerer.offer(ids[2])
        closer.start()
        wait_for(lambda: not answerer.offer(ids[2]))  # closing: nothing more is taken
    closer.join(timeout=30)
    assert not closer.is_alive()
    assert _unanswered(app) == ids[1:]
    shop.run()
    assert _unanswered(app) == []
    with app.connect() as conn:
        t = tables.inbound_messages
        assert conn.execute(select(func.count()).where(t.c.lease_owner.is_not(None))).scalar() == 0
