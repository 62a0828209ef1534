"""``dunwell concierge parse`` run as a user runs it: JSON lines in, JSON lines out."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dunwell.concierge.understanding import request_from_json, understand, understanding_to_json
from tests.e2e.conftest import DUNWELL
from tests.integration.fake_llm import FakeLlmServer, Reply

# The shared folder sits beside the repository: tests/e2e/<here>.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UNSURE = {"text": "do you ship to alaska?", "today": "2026-11-22", "items": ["Ceramic Mug"]}


def env(**settings: str) -> dict[str, str]:
    """No database, no LLM unless asked: the command must need neither."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")}
    clean["DUNWELL_DATABASE_URL"] = "postgresql://nowhere.invalid/none"
    return clean | {f"DUNWELL_{k.upper()}": v for k, v in settings.items()}


def parse(stdin: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DUNWELL, "concierge", "parse", *args],
        input=stdin,
        env=env(**settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def answers(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def sample_requests() -> list[dict[str, Any]]:
    path = SHARED / "data" / "concierge_sample.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"the shared concierge sample is missing: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["request"] for line in lines if line.strip()]


def test_every_line_is_answered_in_order_as_the_library_answers_it() -> None:
    requests = sample_requests()

    result = parse("".join(json.dumps(request) + "\n" for request in requests))

    assert result.returncode == 0, result.stderr
    expected = [understanding_to_json(understand(request_from_json(r))) for r in requests]
    assert answers(result) == expected


def test_a_bad_line_gets_an_error_in_place_and_the_rest_are_answered() -> None:
    lines = [
        json.dumps({"text": "skip my next order", "today": "2026-11-22"}),
        "not json",
        json.dumps({"text": "push it back a week", "today": "2026-13-01"}),
        "",
        json.dumps({"text": "STOP", "today": "2026-11-22", "awaiting": "maybe"}),
        json.dumps({"text": "STOP", "today": "2026-11-22", "awaiting": "confirmation"}),
    ]

    result = parse("\n".join(lines) + "\n")

    assert result.returncode == 0, result.stderr
    got = answers(result)
    assert len(got) == len(lines)
    assert got[0] == {"intent": "skip_order", "slots": {}}
    assert got[1]["error"].startswith("line 2: not valid JSON")
    assert got[2] == {"error": "line 3: today: must be a date YYYY-MM-DD"}
    assert got[3]["error"].startswith("line 4: empty line")
    assert got[4]["error"].startswith("line 5: awaiting: must be null or one of")
    assert got[5] == {"intent": "opt_out", "slots": {}}


def test_a_line_that_is_not_utf8_is_answered_with_an_error() -> None:
    result = subprocess.run(
        [DUNWELL, "concierge", "parse"],
        input=b'{"text": "\xff", "today": "2026-11-22"}\n',
        env=env(),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"error": "line 1: not valid UTF-8 at byte 11"}


@pytest.fixture
def streaming() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [DUNWELL, "concierge", "parse"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env(),
        text=True,
    )
    yield process
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def test_each_answer_is_written_before_the_next_line_arrives(
    streaming: subprocess.Popen[str],
) -> None:
    assert streaming.stdin is not None and streaming.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(streaming.stdout, selectors.EVENT_READ)
        for text, intent in [
            ("skip my next order", "skip_order"),
            ("where is my box?", "order_status"),
        ]:
            streaming.stdin.write(json.dumps({"text": text, "today": "2026-11-22"}) + "\n")
            streaming.stdin.flush()
            assert selector.select(timeout=30), "no answer while stdin stays open"
            assert json.loads(streaming.stdout.readline())["intent"] == intent


def test_a_configured_llm_answers_what_the_rules_cannot_unless_switched_off() -> None:
    with FakeLlmServer() as server:
        settings = {"llm_base_url": server.base_url, "llm_model": "tiny", "llm_api_key": "k"}
        server.script(Reply('{"intent": "change_address", "slots": {}}'))
        asked = parse(json.dumps(UNSURE) + "\n", **settings)
        not_asked = parse(json.dumps(UNSURE) + "\n", "--no-llm", **settings)

        assert answers(asked) == [{"intent": "change_address", "slots": {}}]
        assert answers(not_asked) == [{"intent": "unknown", "slots": {}}]
        assert len(server.requests) == 1


def test_asking_for_the_llm_without_configuring_one_is_a_usage_error() -> None:
    result = parse("", "--llm")
    assert result.returncode == 2
    assert "--llm needs --llm-base-url and --llm-model" in result.stderr
