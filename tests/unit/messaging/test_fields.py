"""The field reference: documented, present in the sample, and the only names allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dunwell.messaging.fields import FIELDS, is_known_path, sample_context

DOCS = Path(__file__).resolve().parents[3] / "docs" / "templates.md"


def lookup(context: dict[str, Any], path: str) -> object:
    value: Any = context
    for name in path.split("."):
        value = value[name]
    return value


def test_every_field_is_documented_for_merchants() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    missing = [field.path for field in FIELDS if f"`{field.path}`" not in docs]
    assert missing == []


def test_the_sample_context_has_every_field() -> None:
    context = sample_context()
    for field in FIELDS:
        lookup(context, field.path)


def test_the_sparse_sample_leaves_out_what_may_be_missing() -> None:
    context = sample_context(sparse=True)
    assert context["card"] is None
    assert context["dunning"]["next_retry_date"] is None
    assert context["subscription"]["next_charge_date"] is None
    assert context["customer"]["first_name"] == ""


def test_each_call_returns_a_fresh_sample() -> None:
    first = sample_context()
    first["customer"]["first_name"] = "Changed"
    assert sample_context()["customer"]["first_name"] == "Ada"


def test_only_documented_paths_are_known() -> None:
    assert is_known_path(["customer", "first_name"])
    assert is_known_path(["invoice", "amount_due", "currency"])
    assert not is_known_path(["customer", "frist_name"])
    assert not is_known_path(["partial"])


def test_the_size_of_a_field_is_a_known_path() -> None:
    assert is_known_path(["customer", "first_name", "size"])
    assert not is_known_path(["size"])
