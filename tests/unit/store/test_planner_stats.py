"""The figures written to ``sqlite_stat1`` for indexes that start with a few-valued column."""

from __future__ import annotations

from dunwell.store.planner_stats import ASSUMED_ROWS, ROWS_PER_VALUE, index_statistics

N, SHARE = ASSUMED_ROWS, ROWS_PER_VALUE["site_id"]


def test_an_index_that_starts_with_a_selective_column_keeps_sqlites_defaults() -> None:
    assert index_statistics(["customer_id"], unique=False) is None
    assert index_statistics(["recipient", "channel"], unique=False) is None
    assert index_statistics([None, "site_id"], unique=False) is None  # an expression first
    assert index_statistics([], unique=False) is None


def test_one_site_or_channel_matches_a_large_share_of_the_table() -> None:
    assert SHARE * 4 == N
    assert index_statistics(["site_id"], unique=False) == f"{N} {SHARE} noskipscan"


def test_a_status_matches_fewer_rows_than_a_channel_or_a_site() -> None:
    """Claims look up rare states by status, and must not read a whole channel instead."""
    status = ROWS_PER_VALUE["status"]
    assert status < ROWS_PER_VALUE["channel"] and status < ROWS_PER_VALUE["site_id"]
    assert (
        index_statistics(["status", "next_attempt_at"], unique=False)
        == f"{N} {status} 10 noskipscan"
    )
    assert index_statistics(["channel", "created_at"], unique=False) == f"{N} {SHARE} 10 noskipscan"


def test_columns_after_the_first_keep_sqlites_default_guesses() -> None:
    assert (
        index_statistics(["site_id", "phone", "status"], unique=False)
        == f"{N} {SHARE} 10 9 noskipscan"
    )
    many = ["site_id", "a", "b", "c", "d", "e", "f", "g"]
    assert index_statistics(many, unique=False) == f"{N} {SHARE} 10 9 8 7 6 5 5 noskipscan"


def test_a_unique_key_under_the_site_matches_one_row() -> None:
    assert index_statistics(["site_id", "number"], unique=True) == f"{N} {SHARE} 1 noskipscan"
    assert (
        index_statistics(["site_id", "kind", "day"], unique=True) == f"{N} {SHARE} 10 1 noskipscan"
    )


def test_one_row_per_site_is_left_to_sqlite() -> None:
    # A settings table keyed by the site: the site is its most selective column.
    assert index_statistics(["site_id"], unique=True) is None
