"""The sandbox gateway: test cards that behave like Stripe's and Recurly's.

Charges are recorded in the ``sandbox_charges`` table, keyed by idempotency
key, exactly as a real gateway would remember them: a repeated key returns
the stored answer. A card number is only ever seen by :func:`tokenize`,
which keeps the brand, the last four digits and the card's *behaviour*; the
token encodes that behaviour, so nothing sensitive is stored anywhere.

Test cards (any future expiry, any CVC):

==================  ==================================================
4111111111111111    succeeds (also 4242424242424242 and any other valid number)
4000000000000341    attaches, but every charge declines (generic_decline)
4000000000009995    declines: insufficient_funds (soft)
4000000000005126    insufficient_funds on its first two charges, then succeeds
4000000000000119    declines: processing_error (soft)
4000000000009987    declines: lost_card (hard)
4000000000009979    declines: stolen_card (hard)
4000000000000069    declines: expired_card (hard)
4000000000000408    the gateway times out (no answer; the charge is not made)
==================  ==================================================
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select

from dunwell.domain.card_numbers import holds_card_number, luhn_valid
from dunwell.domain.states import AttemptStatus
from dunwell.gateways.base import CardDetails, ChargeRequest, ChargeResponse
from dunwell.store.db import reproducible_commit, writer
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import sandbox_charges

SUCCEED = "ok"
TIMEOUT = "timeout"
RECOVERS_AFTER_TWO = "recovers"

#: Test card number -> behaviour: a decline code, SUCCEED, TIMEOUT or RECOVERS_AFTER_TWO.
TEST_CARDS: dict[str, str] = {
    "4111111111111111": SUCCEED,
    "4242424242424242": SUCCEED,
    "4000000000000341": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000005126": RECOVERS_AFTER_TWO,
    "4000000000000119": "processing_error",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000408": TIMEOUT,
}


class CardError(ValueError):
    """The card details cannot be saved; the message says which part is wrong."""


def tokenize(number: str, exp_month: int, exp_year: int) -> CardDetails:
    """Turn test card details into a sandbox token; the number is not kept."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise CardError("card number must be 12 to 19 digits")
    if not luhn_valid(digits):
        raise CardError("card number fails the Luhn check")
    if not 1 <= exp_month <= 12:
        raise CardError("exp_month must be between 1 and 12")
    if not 2000 <= exp_year <= 2100:
        raise CardError("exp_year must be a four-digit year")
    behaviour = TEST_CARDS.get(digits, SUCCEED)
    return CardDetails(
        token=f"sbx_{behaviour}_{token_suffix()}",
        brand=card_brand(digits),
        last4=digits[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
    )


def token_suffix() -> str:
    """A token's 16 random hex digits, never holding what looks like a card number.

    The API refuses any field holding one, so about one random suffix in
    2,000 would make a token the API turns away as a card. Such a draw is
    drawn again.
    """
    while True:
        suffix = secrets.token_hex(8)
        if not holds_card_number(suffix):
            return suffix


def card_brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"51", "52", "53", "54", "55"} or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if digits.startswith("6011") or digits.startswith("65"):
        return "discover"
    return "unknown"


def behaviour_of(token: str) -> str:
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != "sbx":
        return "invalid_account"
    return "_".join(parts[1:-1])


class SandboxGateway:
    """Records charges in the database it shares with Dunwell, one batch per call."""

    name = "sandbox"
    longest_charge_seconds = 0.0

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self._writes = writer(engine)  # made once: see App.begin
        self._now = now

    def charge_many(
        self, requests: Sequence[ChargeRequest], *, until: float | None = None
    ) -> list[ChargeResponse]:
        # One transaction answers the whole batch at once: there is no later
        # request for ``until`` to hold back.
        if not requests:
            return []
        keys = [r.idempotency_key for r in requests]
        with self._writes.begin() as conn:
            # The charges live in Dunwell's own database: a crash that loses
            # them loses the attempts that would record them too.
            reproducible_commit(conn)
            recovering = [r.token for r in requests if behaviour_of(r.token) == RECOVERS_AFTER_TWO]
            prior = _charge_counts(conn, recovering)
            rows = []
            for request in requests:
                behaviour = behaviour_of(request.token)
                if behaviour == TIMEOUT:
                    continue
                status, code = _outcome(behaviour, prior.get(request.token, 0))
                if behaviour == RECOVERS_AFTER_TWO:
                    prior[request.token] = prior.get(request.token, 0) + 1
                rows.append(
                    {
                        "idempotency_key": request.idempotency_key,
                        "token": request.token,
                        "amount_minor": request.amount_minor,
                        "currency": request.currency,
                        "status": status,
                        "decline_code": code,
                        "reference": f"sbx_ch_{secrets.token_hex(8)}",
                        "created_at": self._now(),
                    }
                )
            insert_ignore(conn, sandbox_charges, rows, ["idempotency_key"])
            stored = {
                row.idempotency_key: row
                for row in conn.execute(
                    select(sandbox_charges).where(sandbox_charges.c.idempotency_key.in_(keys))
                )
            }
        return [_response(stored.get(key)) for key in keys]


def _charge_counts(conn: Connection, tokens: list[str]) -> dict[str, int]:
    if not tokens:
        return {}
    query = (
        select(sandbox_charges.c.token, func.count())
        .where(sandbox_charges.c.token.in_(tokens))
        .group_by(sandbox_charges.c.token)
    )
    return {row[0]: row[1] for row in conn.execute(query)}


def _outcome(behaviour: str, prior_charges: int) -> tuple[str, str | None]:
    if behaviour == SUCCEED:
        return AttemptStatus.SUCCEEDED.value, None
    if behaviour == RECOVERS_AFTER_TWO:
        if prior_charges >= 2:
            return AttemptStatus.SUCCEEDED.value, None
        return AttemptStatus.DECLINED.value, "insufficient_funds"
    return AttemptStatus.DECLINED.value, behaviour


def _response(row: Row[Any] | None) -> ChargeResponse:
    if row is None:
        return ChargeResponse(AttemptStatus.ERROR, "gateway_timeout", None, "sandbox timeout")
    return ChargeResponse(AttemptStatus(row.status), row.decline_code, row.reference)
