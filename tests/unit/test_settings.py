"""Settings read from DUNWELL_* variables: a value that cannot work is named at start."""

from __future__ import annotations

import pytest

from dunwell.settings import Settings


def test_delivery_concurrency_is_read_from_the_environment() -> None:
    assert Settings.from_env({"DUNWELL_DELIVERY_CONCURRENCY": "3"}).delivery_concurrency == 3
    assert Settings.from_env({}).delivery_concurrency == 8


def test_stripe_concurrency_is_read_from_the_environment() -> None:
    assert Settings.from_env({"DUNWELL_STRIPE_CONCURRENCY": "4"}).stripe_concurrency == 4
    assert Settings.from_env({}).stripe_concurrency == 8


def test_webhook_concurrency_is_read_from_the_environment() -> None:
    assert Settings.from_env({"DUNWELL_WEBHOOK_CONCURRENCY": "32"}).webhook_concurrency == 32
    assert Settings.from_env({}).webhook_concurrency == 8


def test_stripe_max_per_second_is_read_and_must_be_above_zero() -> None:
    assert Settings.from_env({"DUNWELL_STRIPE_MAX_PER_SECOND": "80"}).stripe_max_per_second == 80
    assert Settings.from_env({}).stripe_max_per_second == 20
    with pytest.raises(
        ValueError, match=r"DUNWELL_STRIPE_MAX_PER_SECOND must be above 0, not 0\.0"
    ):
        Settings.from_env({"DUNWELL_STRIPE_MAX_PER_SECOND": "0"})


@pytest.mark.parametrize(
    "name",
    ["DUNWELL_DELIVERY_CONCURRENCY", "DUNWELL_STRIPE_CONCURRENCY", "DUNWELL_WEBHOOK_CONCURRENCY"],
)
@pytest.mark.parametrize("raw", ["0", "-2"])
def test_a_concurrency_below_one_is_refused_by_name(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1, not {raw}"):
        Settings.from_env({name: raw})


def test_a_setting_that_is_not_a_number_is_named() -> None:
    with pytest.raises(ValueError, match="DUNWELL_DELIVERY_CONCURRENCY='many' is not a valid int"):
        Settings.from_env({"DUNWELL_DELIVERY_CONCURRENCY": "many"})
