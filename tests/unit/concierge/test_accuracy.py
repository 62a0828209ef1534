"""Accuracy over labelled texts: the shared sample, this project's larger set and a holdout.

Intent accuracy is the share of cases whose intent is right; slot accuracy
the share whose whole ``slots`` object equals the label.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.understanding import request_from_json, understand, understanding_to_json

# The shared folder sits beside the repository: tests/unit/concierge/<here>.
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
SAMPLE = SHARED / "data" / "concierge_sample.jsonl"
OWN = Path(__file__).resolve().parents[2] / "data" / "concierge_cases.jsonl"
# Written from the contract alone, without reading the rules, to catch overfitting.
HOLDOUT = Path(__file__).resolve().parents[2] / "data" / "concierge_holdout.jsonl"
MIN_INTENT, MIN_SLOTS = 0.95, 0.90


def cases(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"the labelled cases are missing: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def score(path: Path) -> tuple[float, float, list[str]]:
    """(intent accuracy, slot accuracy, a line for each case answered wrongly)."""
    labelled = cases(path)
    intents = slots = 0
    wrong: list[str] = []
    for case in labelled:
        got = understanding_to_json(understand(request_from_json(case["request"])))
        expected = case["expected"]
        intents += got["intent"] == expected["intent"]
        slots += got["slots"] == expected["slots"]
        if got != expected:
            wrong.append(f"{case['id']}: {case['request']['text']!r} -> {got}, want {expected}")
    return intents / len(labelled), slots / len(labelled), wrong


@pytest.mark.parametrize(
    "path", [SAMPLE, OWN, HOLDOUT], ids=["shared sample", "own set", "holdout set"]
)
def test_intent_and_slot_accuracy_meet_the_bar(path: Path) -> None:
    intent_accuracy, slot_accuracy, wrong = score(path)
    report = f"intent {intent_accuracy:.1%}, slots {slot_accuracy:.1%}; wrong:\n" + "\n".join(wrong)
    assert intent_accuracy >= MIN_INTENT, report
    assert slot_accuracy >= MIN_SLOTS, report


def test_the_own_set_is_large_and_covers_every_intent_and_awaiting() -> None:
    labelled = cases(OWN)
    assert len(labelled) >= 600
    assert len({case["id"] for case in labelled}) == len(labelled)
    assert {case["expected"]["intent"] for case in labelled} == {i.value for i in Intent}
    awaited = {case["request"]["awaiting"] for case in labelled}
    assert awaited == {None, *(a.value for a in Awaiting)}
