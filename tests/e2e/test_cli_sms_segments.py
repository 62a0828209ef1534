"""``dunwell sms segments`` run as a user runs it: JSON lines in, JSON lines out."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DUNWELL, Cli

# The shared folder sits beside the repository: tests/e2e/<here>.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def segments(tmp_path: Path) -> Run:
    """Runs ``dunwell sms segments ARGS`` with ``stdin``; no database is touched."""
    env = Cli(f"sqlite:///{tmp_path / 'unused.db'}").env

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DUNWELL, "sms", "segments", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def answers(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_reference_case_is_answered_as_the_reference_does(segments: Run) -> None:
    path = SHARED / "data" / "twilio_segment_cases.json"
    if not path.is_file():
        raise FileNotFoundError(f"the reference segment table is missing: {path}")
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    requests = [{"text": case["text"], "smart_encoding": case["smart_encoding"]} for case in cases]

    result = segments(stdin="".join(json.dumps(request) + "\n" for request in requests))

    assert result.returncode == 0, result.stderr
    expected = [
        {key: case[key] for key in ("encoding", "segments", "characters")} for case in cases
    ]
    assert answers(result) == expected


def test_bad_lines_get_an_error_answer_in_place_and_the_command_exits_1(segments: Run) -> None:
    lines = [
        '{"text": "Your card was declined"}',
        "not json",
        '{"text": "\u201cHi\u201d", "smart_encoding": true}',
        '{"txet": "typo"}',
        '{"text": 42}',
        '{"text": "\u00e7a", "smart_encoding": "yes"}',
        "",
        '{"text": "Ok \U0001f44d"}',
    ]

    result = segments(stdin="\n".join(lines) + "\n")

    assert result.returncode == 1
    got = answers(result)
    assert len(got) == len(lines)
    assert got[0] == {"encoding": "GSM-7", "segments": 1, "characters": 22}
    assert got[1]["error"].startswith("line 2: not valid JSON")
    assert got[2] == {"encoding": "GSM-7", "segments": 1, "characters": 4}
    assert got[3] == {
        "error": 'line 4: unknown field "txet"; the fields are "text" and "smart_encoding"'
    }
    assert got[4] == {"error": 'line 5: "text" must be a string, got a number'}
    assert got[5] == {"error": 'line 6: "smart_encoding" must be true or false, got a string'}
    assert got[6]["error"].startswith("line 7: empty line")
    assert got[7] == {"encoding": "UCS-2", "segments": 1, "characters": 4}
    assert "5 of 8 lines failed" in result.stderr


def test_a_single_text_can_be_given_on_the_command_line(segments: Run) -> None:
    plain = segments("--text", "It\u2019s declined \u2014 retry")
    smart = segments("--text", "It\u2019s declined \u2014 retry", "--smart-encoding")

    assert plain.returncode == smart.returncode == 0
    assert answers(plain) == [{"encoding": "UCS-2", "segments": 1, "characters": 21}]
    assert answers(smart) == [{"encoding": "GSM-7", "segments": 1, "characters": 21}]
