"""Revenue at risk is the sum of the steps the overview already loaded."""

from __future__ import annotations

from dunwell.services.recovery_figures import StepCount, Tally, revenue_at_risk


def _tally(*rows: tuple[str, int]) -> Tally:
    tally = Tally()
    for currency, minor in rows:
        tally.add(currency, minor)
    return tally


def test_revenue_at_risk_adds_up_every_step_per_currency() -> None:
    steps = [
        StepCount(0, _tally(("USD", 1000), ("EUR", 500))),
        StepCount(3, _tally(("USD", 250))),
        StepCount(7, _tally(("JPY", 1200), ("EUR", 5))),
    ]
    total = revenue_at_risk(steps)
    assert total.invoices == 5
    assert total.amounts == {"USD": 1250, "EUR": 505, "JPY": 1200}
    assert total.counts == {"USD": 2, "EUR": 2, "JPY": 1}
    # The steps themselves are left as they were.
    assert steps[0].tally.amounts == {"USD": 1000, "EUR": 500}


def test_nothing_in_dunning_is_nothing_at_risk() -> None:
    assert revenue_at_risk([]) == Tally()
