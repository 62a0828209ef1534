"""The queue of chains that one site's delivery lanes share."""

from __future__ import annotations

import time
from types import SimpleNamespace

from dunwell.channels.config import sandbox_config
from dunwell.services.delivery import Chains, Outgoing


def message(n: int, to: str) -> Outgoing:
    row = SimpleNamespace(id=n, recipient=to)
    return Outgoing(row=row, attempt_no=1, in_doubt_since=None, config=sandbox_config("email"))


def ids(chain: list[Outgoing] | None) -> list[int] | None:
    return None if chain is None else [item.row.id for item in chain]


def queue(lanes: int, until: float | None = None) -> Chains:
    chains = [[message(1, "a"), message(2, "a")], [message(3, "b")], [message(4, "c")]]
    return Chains(chains, lanes=lanes, until=until)


def test_chains_are_taken_whole_and_in_order_until_none_are_left() -> None:
    chains = queue(lanes=1)

    assert [ids(chains.take()) for _ in range(4)] == [[1, 2], [3], [4], None]
    assert chains.left_behind() == []


def test_a_chain_handed_over_goes_first_to_the_lanes_still_open() -> None:
    chains = queue(lanes=2)
    first = chains.take()
    assert first is not None

    assert chains.hand_over(first[1:]) is True  # the lane turned away ends
    assert ids(chains.take()) == [2]  # the other lane sends it next


def test_the_last_lane_cannot_hand_over_and_goes_on() -> None:
    chains = queue(lanes=2)
    assert chains.take() is not None
    assert chains.hand_over([message(9, "z")]) is True  # one lane left now
    taken = chains.take()

    assert chains.hand_over(taken or []) is False
    assert [ids(chains.take()) for _ in range(3)] == [[3], [4], None]


def test_a_lane_that_leaves_no_longer_counts_as_one_that_would_take_a_chain() -> None:
    chains = queue(lanes=2)
    chains.leave()  # the other lane failed on the database
    chain = chains.take()

    assert chains.hand_over(chain or []) is False  # nobody would take it


def test_no_chain_is_taken_after_the_deadline_and_the_rest_is_left_behind() -> None:
    chains = queue(lanes=2, until=time.monotonic() - 1)

    assert chains.take() is None
    assert chains.take() is None
    assert [item.row.id for item in chains.left_behind()] == [1, 2, 3, 4]
