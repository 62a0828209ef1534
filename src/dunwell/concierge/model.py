"""What the dialogue reads and returns: the customer's situation, its memory, its answer.

These are plain values, so the dialogue is a pure function of them: the
service layer loads a :class:`Context`, hands over the text's
understanding, and carries out the :class:`Action` it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Item:
    item_id: int
    name: str
    quantity: int


@dataclass(frozen=True)
class Order:
    """The customer's upcoming order: their subscription's next charge."""

    subscription_id: int
    next_date: date
    #: The order after the next one (what skipping would leave as next).
    following_date: date
    items: tuple[Item, ...]
    total: str  # formatted with its currency

    def item_named(self, name: str | None) -> Item | None:
        """The item called ``name``; with no name, the only item (None when several)."""
        if name is None:
            return self.items[0] if len(self.items) == 1 else None
        return next((i for i in self.items if i.name == name), None)


@dataclass(frozen=True)
class Debt:
    """The customer's oldest unpaid invoice that the concierge may help settle."""

    invoice_id: int
    number: str
    amount: str  # formatted with its currency


@dataclass(frozen=True)
class Context:
    today: date  # the customer's local date
    company: str
    first_name: str | None
    known_customer: bool
    order: Order | None
    debt: Debt | None
    #: Products the customer may add or swap to (the site's allowed collection).
    allowed_products: tuple[str, ...]
    #: Actions the site lets the concierge carry out itself (see concierge settings).
    allowed_actions: frozenset[str]
    #: Surveys the site sends after a completed action: "sentiment", "adjustment".
    surveys: frozenset[str] = frozenset()
    customer_page_url: str | None = None
    billing_url: str | None = None
    max_quantity: int = 10


@dataclass(frozen=True)
class Proposal:
    """A change the customer is asked to confirm."""

    action: str
    params: dict[str, Any]


@dataclass(frozen=True)
class State:
    """The conversation's memory between turns (stored as JSON)."""

    awaiting: str | None = None  # confirmation, survey_rating, promise_date, adjustment_reason
    proposal: Proposal | None = None
    #: The question waiting for an answer, repeated by the nudge.
    question: str | None = None
    misunderstood: int = 0
    #: What the last message we started was about (failed_payment...).
    topic: str | None = None

    def cleared(self) -> State:
        return replace(self, awaiting=None, proposal=None, question=None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "awaiting": self.awaiting,
            "question": self.question,
            "misunderstood": self.misunderstood,
            "topic": self.topic,
        }
        if self.proposal is not None:
            data["proposal"] = {"action": self.proposal.action, "params": self.proposal.params}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        raw = data.get("proposal")
        proposal = None
        if isinstance(raw, dict) and isinstance(raw.get("action"), str):
            proposal = Proposal(raw["action"], dict(raw.get("params") or {}))
        misunderstood = data.get("misunderstood")
        return cls(
            awaiting=data.get("awaiting") if isinstance(data.get("awaiting"), str) else None,
            proposal=proposal,
            question=data.get("question") if isinstance(data.get("question"), str) else None,
            misunderstood=misunderstood if isinstance(misunderstood, int) else 0,
            topic=data.get("topic") if isinstance(data.get("topic"), str) else None,
        )


@dataclass(frozen=True)
class Action:
    """Something the service must do: change the order, charge, escalate, record."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    #: What happened, for the reply: new dates, the charge outcome...
    facts: dict[str, Any] = field(default_factory=dict)
    #: A sentence the customer can read when ``ok`` is False.
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    replies: tuple[str, ...]
    state: State
    action: Action | None = None
    #: How the conversation went, when this turn decides it.
    outcome: str | None = None
    #: The conversation is over (nothing more is awaited).
    close: bool = False
