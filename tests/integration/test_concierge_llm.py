"""The optional LLM, against a local server speaking the chat-completions wire format."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import date

import pytest

from dunwell.concierge.intents import Intent
from dunwell.concierge.llm import LlmConfig, LlmUnderstander, llm_from_settings, understand_text
from dunwell.concierge.understanding import ParseRequest
from dunwell.settings import Settings
from tests.integration.fake_llm import FakeLlmServer, Reply

KEY = "sk-test-7f3a"
MODEL = "tiny-json-model"
CATALOG = ("Dark Roast Coffee 12oz", "Decaf Coffee 12oz", "Ceramic Mug")
UNSURE = "do you ship to alaska?"


def request(text: str = UNSURE) -> ParseRequest:
    return ParseRequest(text, date(2026, 11, 22), date(2026, 11, 29), CATALOG, (CATALOG[0],))


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as running:
        yield running


@pytest.fixture
def llm(server: FakeLlmServer) -> Iterator[LlmUnderstander]:
    understander = LlmUnderstander(LlmConfig(server.base_url, MODEL, KEY, timeout_seconds=0.5))
    yield understander
    understander.close()


def test_the_llm_is_not_asked_when_the_rules_are_sure(
    server: FakeLlmServer, llm: LlmUnderstander
) -> None:
    for text in ("skip my next order", "STOP", "can you push my order to the 15th?"):
        assert understand_text(request(text), llm).source == "rules"
    assert server.requests == []


def test_a_valid_answer_is_used_when_the_rules_are_unsure(
    server: FakeLlmServer, llm: LlmUnderstander
) -> None:
    server.script(Reply(json.dumps({"intent": "add_product", "slots": {"product": "Ceramic Mug"}})))

    understanding = understand_text(request("a cup for my brew would be lovely"), llm)

    assert (understanding.intent, understanding.slots, understanding.source) == (
        Intent.ADD_PRODUCT,
        {"product": "Ceramic Mug", "quantity": 1},
        "llm",
    )
    assert len(server.requests) == 1


def test_the_request_carries_the_key_the_model_and_the_contract(
    server: FakeLlmServer, llm: LlmUnderstander
) -> None:
    understand_text(request("my card is 4111 1111 1111 1111, do you ship to alaska?"), llm)

    [sent] = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == MODEL
    assert sent.body["temperature"] == 0
    assert sent.body["response_format"] == {"type": "json_object"}
    system, user = sent.body["messages"]
    assert system["role"] == "system" and "change_quantity" in system["content"]
    asked = json.loads(user["content"])
    assert asked["today"] == "2026-11-22"
    assert asked["catalog"] == list(CATALOG)
    assert "4111" not in asked["text"] and "alaska" in asked["text"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply('{"intent": "ship_to_alaska", "slots": {}}'),
        Reply('{"intent": "add_product", "slots": {"product": "Espresso Machine"}}'),
        Reply('{"intent": "change_date", "slots": {"date": "2026-11-01"}}'),
        Reply('{"intent": "skip_order", "slots": {"when": "soon"}}'),
        Reply("Sure! The customer wants to know about shipping."),
        Reply(status=500),
        Reply(status=401),
    ],
    ids=["unknown intent", "product not sold", "past date", "bad slot", "not JSON", "500", "401"],
)
def test_an_invalid_answer_or_an_error_falls_back_to_the_rules(
    server: FakeLlmServer, llm: LlmUnderstander, reply: Reply
) -> None:
    server.script(reply)

    understanding = understand_text(request(), llm)

    assert (understanding.intent, understanding.source) == (Intent.UNKNOWN, "rules")
    assert len(server.requests) == 1


def test_a_slow_llm_times_out_and_the_rules_answer(
    server: FakeLlmServer, llm: LlmUnderstander
) -> None:
    server.script(Reply('{"intent": "change_address", "slots": {}}', delay=5.0))

    started = time.monotonic()
    understanding = understand_text(request(), llm)

    # The adapter's timeout is 0.5 s and the scripted answer comes after 5 s: under
    # 4 s proves it gave up rather than waited, with room for a loaded CI machine.
    assert time.monotonic() - started < 4.0
    assert (understanding.intent, understanding.source) == (Intent.UNKNOWN, "rules")


def test_a_rejected_answer_is_logged_without_the_customers_text(
    server: FakeLlmServer, llm: LlmUnderstander, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply('{"intent": "add_product", "slots": {"product": "do you ship"}}'))

    with caplog.at_level(logging.WARNING, logger="dunwell.concierge.llm"):
        understand_text(request(), llm)

    assert "rejected" in caplog.text
    assert "alaska" not in caplog.text and "do you ship" not in caplog.text


def test_an_unknown_from_the_llm_keeps_the_rules_reading(
    server: FakeLlmServer, llm: LlmUnderstander
) -> None:
    server.script(Reply('{"intent": "unknown", "slots": {}}'))
    unsure = request("skip my next order and add a mug")

    understanding = understand_text(unsure, llm)

    assert (understanding.intent, understanding.source) == (Intent.SKIP_ORDER, "rules")
    assert len(server.requests) == 1


def test_without_an_llm_the_rules_answer_alone() -> None:
    understanding = understand_text(request())
    assert (understanding.intent, understanding.confident) == (Intent.UNKNOWN, False)


def test_the_llm_is_configured_only_with_both_a_base_url_and_a_model(
    server: FakeLlmServer,
) -> None:
    assert llm_from_settings(Settings()) is None
    assert llm_from_settings(Settings(llm_base_url=server.base_url)) is None
    assert llm_from_settings(Settings(llm_model=MODEL)) is None
    configured = llm_from_settings(Settings(llm_base_url=server.base_url, llm_model=MODEL))
    assert configured is not None
    try:
        server.script(Reply('{"intent": "change_address", "slots": {}}'))
        assert configured.understand(request()) is not None
        assert "authorization" not in server.requests[0].headers
    finally:
        configured.close()
