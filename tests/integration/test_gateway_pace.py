"""A gateway's pace shared through the database by every worker.

Each test runs on SQLite and PostgreSQL. Two workers are two engines on
the same database, as two processes would have; the real processes are
in ``tests/e2e/test_stripe_pace_processes.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from threading import Thread

import pytest
from sqlalchemy import Engine, select

from dunwell.gateways.pace import LocalPace, SharedPace
from dunwell.store.db import make_engine
from dunwell.store.tables import gateway_paces


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    pair = (make_engine(db_url), make_engine(db_url))
    yield pair
    for engine in pair:
        engine.dispose()


def _turns(pace: SharedPace | LocalPace, count: int, until: float | None = None) -> list[float]:
    """The moments ``pace`` let a caller start, up to ``count`` or the deadline."""
    starts = []
    for _ in range(count):
        if not pace.wait_turn(until):
            break
        starts.append(time.monotonic())
    return starts


def _side_by_side(paces: list[SharedPace], each: int) -> list[float]:
    starts: list[list[float]] = [[] for _ in paces]
    threads = [
        Thread(target=lambda n=n: starts[n].extend(_turns(paces[n], each)))
        for n in range(len(paces))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(t for mine in starts for t in mine)


def test_two_workers_together_start_no_more_than_the_pace(
    engines: tuple[Engine, Engine],
) -> None:
    paces = [SharedPace(engine, "stripe", per_second=20) for engine in engines]

    starts = _side_by_side(paces, each=10)

    assert len(starts) == 20
    # Twenty turns 1/20 s apart span 0.95 s; each worker on a pace of its
    # own would start its ten in 0.45 s, side by side with the other's.
    assert starts[-1] - starts[0] > 0.85
    # No ten in a row closer together than ten gaps allow (0.5 s, less the
    # jitter of a late first turn); paces of their own would interleave
    # two lines at 20 a second each, ten turns in 0.25 s.
    assert min(b - a for a, b in zip(starts, starts[10:], strict=False)) > 0.35


def test_a_worker_reserves_no_turn_past_its_deadline(engines: tuple[Engine, Engine]) -> None:
    first, second = (SharedPace(engine, "stripe", per_second=10) for engine in engines)
    wall = time.time()

    # Turns at 0, 0.1 and 0.2 s come before a deadline at 0.28 s; 0.3 s does not.
    starts = _turns(first, 10, until=time.monotonic() + 0.28)

    assert len(starts) == 3
    with engines[0].connect() as conn:
        line = conn.execute(select(gateway_paces.c.next_start_at)).scalar_one()
    # The line ran no further than the turns it gave (0.3 s, plus the first
    # reservation's own time); one turn more would put it at 0.4 s.
    assert line.timestamp() - wall < 0.38
    # The other worker's next turn is after those three, a gap later.
    (after,) = _turns(second, 1)
    assert after - starts[-1] > 0.05


def test_turns_left_unused_are_not_spent_in_a_burst_later(engines: tuple[Engine, Engine]) -> None:
    pace = SharedPace(engines[0], "stripe", per_second=20)
    _turns(pace, 1)  # reserves a quarter of a second: five turns, four unused
    time.sleep(0.5)  # the batch ended; the next comes later

    starts = _turns(pace, 5)

    # Spent at once, the four old turns would start four requests together;
    # taken afresh, five turns span 0.2 s (less a late first turn).
    assert starts[-1] - starts[0] > 0.1


def test_each_gateway_has_its_own_line(engines: tuple[Engine, Engine]) -> None:
    stripe = SharedPace(engines[0], "stripe", per_second=20)
    other = SharedPace(engines[1], "other", per_second=20)
    _turns(stripe, 5)

    started = time.monotonic()
    _turns(other, 1)

    assert time.monotonic() - started < 0.15  # not 0.25 s behind Stripe's five turns
    with engines[0].connect() as conn:
        lines = conn.execute(select(gateway_paces.c.gateway).order_by("gateway")).scalars()
        assert list(lines) == ["other", "stripe"]


def test_a_clock_far_ahead_does_not_stop_the_other_workers(
    engines: tuple[Engine, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    ahead = SharedPace(
        engines[0], "stripe", per_second=20, wall=lambda: time.time() + 3600, horizon_seconds=60
    )
    _turns(ahead, 1)  # the line is now an hour ahead of the real time
    behind = SharedPace(engines[1], "stripe", per_second=20, horizon_seconds=60)

    # A deadline a second away: left an hour behind, this worker would send nothing.
    starts = _turns(behind, 3, until=time.monotonic() + 1.0)

    assert len(starts) == 3
    assert "3600 s ahead of this machine's clock" in caplog.text
    with engines[1].connect() as conn:
        line = conn.execute(select(gateway_paces.c.next_start_at)).scalar_one()
    assert line.timestamp() - time.time() < 1  # started again from the real time


def test_a_line_ahead_by_less_than_a_lease_is_waited_for(
    engines: tuple[Engine, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    ahead = SharedPace(engines[0], "stripe", per_second=20, wall=lambda: time.time() + 0.5)
    _turns(ahead, 1)  # the line is half a second ahead: within the horizon
    behind = SharedPace(engines[1], "stripe", per_second=20, horizon_seconds=60)

    started = time.monotonic()
    (first,) = _turns(behind, 1)

    assert first - started > 0.4  # its turn comes after the line, not before
    assert "ahead of this machine's clock" not in caplog.text


@pytest.mark.parametrize("horizon", [0, -5.0])
def test_a_horizon_that_cannot_work_is_refused(
    engines: tuple[Engine, Engine], horizon: float
) -> None:
    with pytest.raises(ValueError, match=f"horizon_seconds must be above 0, not {horizon}"):
        SharedPace(engines[0], "stripe", per_second=20, horizon_seconds=horizon)


@pytest.mark.parametrize("per_second", [0, -1.0])
def test_a_pace_that_cannot_work_is_refused(
    engines: tuple[Engine, Engine], per_second: float
) -> None:
    with pytest.raises(ValueError, match=f"max_per_second must be above 0, not {per_second}"):
        SharedPace(engines[0], "stripe", per_second=per_second)
