"""SMS credits: a per-site balance kept as a ledger that never goes negative.

Every change is a ``sms_credit_ledger`` row (top-up, auto-refill, debit for
a message, refund of a message that failed) next to the running balance in
``sms_credits``, updated in the same transaction; a database check keeps the
balance at zero or above. A message is debited once (a unique key on the
message and the reason), however often its delivery is retried.

Sandbox sites start with :data:`SANDBOX_STARTING_CREDITS` free credits so
the demo texts; live sites start at zero and hold texts until a top-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from dunwell.domain.states import SiteMode
from dunwell.services.errors import InvalidInput
from dunwell.services.notes import check_note
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import outbox, sites, sms_credit_ledger, sms_credits

SANDBOX_STARTING_CREDITS = 1000
#: The balance and the ledger's amounts are 32-bit integers in PostgreSQL
#: (SQLite would grow past it and hold a balance PostgreSQL cannot).
MAX_BALANCE = 2**31 - 1


def balances(conn: Connection, site_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """Current balances, creating a site's account on first use; locked on PostgreSQL."""
    ids = set(site_ids)
    _open_accounts(conn, ids, now)
    query = select(sms_credits.c.site_id, sms_credits.c.balance).where(
        sms_credits.c.site_id.in_(ids)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.site_id: row.balance for row in conn.execute(query)}


def stored_balance(conn: Connection, site_id: int) -> int | None:
    """The balance as stored, read without a lock; None before the account is opened."""
    found = conn.execute(
        select(sms_credits.c.balance).where(sms_credits.c.site_id == site_id)
    ).scalar()
    return None if found is None else int(found)


def balance(conn: Connection, site_id: int) -> int:
    """The balance for display: no lock and no write, so a page view never waits on a debit.

    An account not opened yet reads as what :func:`balances` would open it with.
    """
    found = stored_balance(conn, site_id)
    if found is not None:
        return found
    mode = conn.execute(select(sites.c.mode).where(sites.c.id == site_id)).scalar()
    return SANDBOX_STARTING_CREDITS if mode == SiteMode.SANDBOX.value else 0


def recent_entries(conn: Connection, site_id: int, limit: int) -> list[Row[Any]]:
    """The site's latest ledger rows, newest first."""
    t = sms_credit_ledger
    query = (
        select(
            t.c.id,
            t.c.delta,
            t.c.balance_after,
            t.c.reason,
            t.c.outbox_id,
            t.c.note,
            t.c.created_at,
        )
        .where(t.c.site_id == site_id)
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


def _open_accounts(conn: Connection, ids: set[int], now: datetime) -> None:
    have = set(
        conn.execute(select(sms_credits.c.site_id).where(sms_credits.c.site_id.in_(ids))).scalars()
    )
    missing = ids - have
    if not missing:
        return
    modes: dict[int, str] = {
        row.id: row.mode
        for row in conn.execute(select(sites.c.id, sites.c.mode).where(sites.c.id.in_(missing)))
    }
    rows = [
        {
            "site_id": site_id,
            "balance": 0,
            "updated_at": now,
        }
        for site_id in missing
    ]
    insert_ignore(conn, sms_credits, rows, ["site_id"])
    for site_id in missing:
        if modes.get(site_id) == SiteMode.SANDBOX.value:
            _change(conn, site_id, SANDBOX_STARTING_CREDITS, "top_up", None, now, "sandbox credits")


def top_up(
    conn: Connection,
    site_id: int,
    credits: int,
    now: datetime,
    note: str | None = None,
    reason: str = "top_up",
) -> int:
    """Add credits and release the texts held for lack of them.

    Refused (``credits``) past :func:`room`; an auto-refill is cut down to
    it instead, since it runs while texts are being sent and must not fail.
    A ``note`` is held to :func:`~dunwell.services.notes.check_note`.
    """
    if credits <= 0:
        raise InvalidInput("credits", "must be a positive whole number")
    check_note(note)
    balance = balances(conn, [site_id], now)[site_id]
    fits = room(conn, site_id, balance)
    if credits > fits:
        if reason != "auto_refill":
            raise InvalidInput(
                "credits",
                f"at most {max(fits, 0)} more credits fit: the balance, plus what texts "
                f"already paid for may still get back as refunds, cannot pass {MAX_BALANCE}",
            )
        if fits <= 0:
            return balance
        credits = fits
    balance = _change(conn, site_id, credits, reason, None, now, note)
    conn.execute(
        update(outbox)
        .where(outbox.c.site_id == site_id, outbox.c.held_reason == "no_credits")
        .where(outbox.c.status == "pending")
        .values(next_attempt_at=now)
    )
    conn.execute(
        update(sms_credits)
        .where(sms_credits.c.site_id == site_id)
        .values(low_balance_notified_at=None)
    )
    return balance


def room(conn: Connection, site_id: int, balance: int) -> int:
    """How many credits a top-up may add, so that no refund can overflow the balance.

    A refund gives back a message's last charge, whenever its failure is
    reported, even days after it was delivered. So room is kept for every
    charge not refunded: a debit moves credits from the balance to what may
    come back, a refund moves them back, and only a top-up grows the sum of
    the two, which stays within :data:`MAX_BALANCE`.
    """
    ledger = sms_credit_ledger
    spent = conn.execute(
        select(func.coalesce(func.sum(ledger.c.delta), 0)).where(
            ledger.c.site_id == site_id, ledger.c.reason.in_(("debit", "refund"))
        )
    ).scalar_one()
    may_come_back = max(-int(spent), 0)
    return MAX_BALANCE - balance - may_come_back


def debit_message(
    conn: Connection, site_id: int, outbox_id: int, credits: int, now: datetime
) -> int:
    """Charge a message; the caller has checked the balance covers it."""
    charges, _refunds = _charges(conn, [outbox_id]).get(outbox_id, (0, 0))
    return _change(conn, site_id, -credits, "debit", outbox_id, now, None, charges)


def debited(conn: Connection, outbox_ids: Iterable[int]) -> set[int]:
    """Of these messages, those paid for and not refunded (a retry is not charged again)."""
    return {i for i, (charges, refunds) in _charges(conn, outbox_ids).items() if charges > refunds}


def refund_message(conn: Connection, site_id: int, outbox_id: int, now: datetime) -> int | None:
    """Give back the last charge of a message that will not go out, once.

    That is one that finally failed, or one blocked or withdrawn while it
    still held a charge (a retry after a transient error keeps it). Returns
    the new balance, or None when there was no charge left to give back.
    """
    ledger = sms_credit_ledger
    charges, refunds = _charges(conn, [outbox_id]).get(outbox_id, (0, 0))
    if charges <= refunds:
        return None
    charged = conn.execute(
        select(ledger.c.delta).where(
            ledger.c.outbox_id == outbox_id,
            ledger.c.reason == "debit",
            ledger.c.charge_no == charges - 1,
        )
    ).scalar_one()
    balances(conn, [site_id], now)
    return _change(conn, site_id, -charged, "refund", outbox_id, now, None, refunds)


def _charges(conn: Connection, outbox_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Per message: how many times it was charged and how many refunded."""
    ledger = sms_credit_ledger
    rows = conn.execute(
        select(ledger.c.outbox_id, ledger.c.reason, func.count())
        .where(ledger.c.outbox_id.in_(set(outbox_ids)))
        .where(ledger.c.reason.in_(("debit", "refund")))
        .group_by(ledger.c.outbox_id, ledger.c.reason)
    )
    counts: dict[int, tuple[int, int]] = {}
    for outbox_id, reason, count in rows:
        charges, refunds = counts.get(outbox_id, (0, 0))
        counts[outbox_id] = (count, refunds) if reason == "debit" else (charges, count)
    return counts


def _change(
    conn: Connection,
    site_id: int,
    delta: int,
    reason: str,
    outbox_id: int | None,
    now: datetime,
    note: str | None,
    charge_no: int = 0,
) -> int:
    balance = conn.execute(
        update(sms_credits)
        .where(sms_credits.c.site_id == site_id)
        .values(balance=sms_credits.c.balance + delta, updated_at=now)
        .returning(sms_credits.c.balance)
    ).scalar_one()
    conn.execute(
        insert(sms_credit_ledger).values(
            site_id=site_id,
            delta=delta,
            balance_after=balance,
            reason=reason,
            outbox_id=outbox_id,
            charge_no=charge_no,
            note=note,
            created_at=now,
        )
    )
    return int(balance)
