"""Restart PostgreSQL under a running worker: it recovers by itself and loses nothing.

A private server (see ``private_postgres.py``) holds two identical shops of
200 subscribers with emails and texts. One goes through its days
undisturbed. Under the other's long-running ``dunwell worker`` the server
goes away in the middle of a day's work: restarted politely (``-m fast``
ends every session), crashed (``-m immediate``, then crash recovery), and
crashed and left down for a while. The test never restarts the worker: it
must reconnect on its own, finish the work and end in the same state as
the undisturbed shop, with every charge made and every message sent once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_POSTGRES
from tests.e2e.dunning_runs import (
    Run,
    assert_each_charge_made_once,
    assert_each_message_delivered_once,
    assert_each_message_written_once,
    assert_same_end_state,
    build_shop,
    polling_run,
    snapshot,
)
from tests.e2e.private_postgres import PrivatePostgres, Unavailable

SUBSCRIBERS = 200
DAYS = 6
LEASE_SECONDS = 1
DOWNTIME = 1.5  # seconds the server stays down after the last crash


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except Unavailable as why:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but cannot be started here: {why}")
        pytest.skip(f"cannot start a private PostgreSQL: {why}")
    try:
        server.start()
        yield server
    finally:
        server.close()


def faults(server: PrivatePostgres) -> dict[int, Callable[[], None]]:
    """Day -> how the server goes away in the middle of that day's work."""
    return {
        1: lambda: server.restart("fast"),
        2: lambda: server.restart("immediate"),
        3: lambda: server.crash(DOWNTIME),
    }


def work_days(
    run: Run, faults: dict[int, Callable[[], None]], targets: dict[int, int]
) -> tuple[list[int], list[int]]:
    """Work through the days; on a fault day, strike once the worker has made
    ``targets[day]`` charges and sends. Returns each day's work and, for the
    fault days, the work done when the fault struck."""
    work, at_fault = [], []
    for day in range(DAYS):
        if day:
            run.advance(timedelta(days=1))
        before = run.progress()
        if day in faults:
            run.wait_for_progress(before + targets[day])
            # Read just before the fault: the day's work must still be under way.
            done = run.progress() - before
            assert run.due_work() > 0, f"day {day}: all due work was done before the fault"
            at_fault.append(done)
            faults[day]()
        run.finish()
        work.append(run.progress() - before)
    return work, at_fault


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_rides_out_postgres_restarts_and_ends_as_an_undisturbed_run(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    calm_url = private_postgres.create_database("calm")
    restarted_url = private_postgres.create_database("restarted")
    site_id = build_shop(calm_url, SUBSCRIBERS, contacts=True)
    assert build_shop(restarted_url, SUBSCRIBERS, contacts=True) == site_id

    calm = polling_run(calm_url, site_id, tmp_path / "calm.log", LEASE_SECONDS)
    try:
        calm.start_worker()
        expected_work, _ = work_days(calm, {}, {})
        assert calm.stop_worker() == 0, calm.log_text()
    finally:
        calm.close()

    rng = random.Random(20261122)
    strikes = faults(private_postgres)
    # Somewhere in the first half of the day's work, so the fault finds it busy.
    targets = {day: rng.randint(1, max(1, expected_work[day] // 2)) for day in strikes}
    run = polling_run(restarted_url, site_id, tmp_path / "restarted.log", LEASE_SECONDS)
    try:
        run.start_worker()
        worker = run.worker
        work, at_fault = work_days(run, strikes, targets)
        assert run.worker is worker
        # The same process, still running: it recovered rather than died.
        run.assert_worker_alive()
        log = run.log_text()
        assert run.stop_worker() == 0, log
    finally:
        run.close()

    expected, got = snapshot(calm_url), snapshot(restarted_url)
    assert_same_end_state(expected, got, "PostgreSQL restarts")
    assert_each_charge_made_once(got)
    assert_each_message_written_once(got)
    assert assert_each_message_delivered_once(restarted_url) > 0
    assert work == expected_work
    # Each fault struck while the day's work was under way, and the worker
    # saw its database go away (and said so) rather than sleeping through it.
    assert all(done < work[day] for day, done in zip(sorted(strikes), at_fault, strict=True))
    assert "batch failed" in log and "OperationalError" in log, log
