"""Kill the worker with SIGKILL at random points and compare with an undisturbed run.

Two identical shops of 1,000 subscribers (a mix of good, soft-declining,
recovering, hard-declining and timing-out cards) go through 16 days of
dunning. One worker runs undisturbed; the other is killed again and again
mid-batch, restarted once its leases have expired, and must end in exactly
the same state, with every charge made once.

Then twenty short runs of a smaller shop (with emails and texts), each
worked by the long-running worker and killed twice at random points of a
day's work; each must end as the undisturbed run of the same shop did.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from dunwell.store.db import make_engine
from tests.e2e.conftest import Cli
from tests.e2e.dunning_runs import (
    Run,
    advance,
    assert_each_charge_made_once,
    assert_each_message_delivered_once,
    assert_same_end_state,
    build_shop,
    polling_run,
    progress,
    snapshot,
)

SUBSCRIBERS = 1000
DAYS = 16
LEASE_SECONDS = 1


def run_days(url: str, site_id: int, kill: random.Random | None, log: Path) -> int:
    """Run the days; with ``kill``, SIGKILL workers at random moments. Returns kills made.

    A worker is killed only once it has been seen making charges or sends,
    however long its start-up took, and a kill counts only if the worker
    had got somewhere: a worker killed while starting up tests nothing.
    """
    cli = Cli(url, batch_size="5", lease_seconds=str(LEASE_SECONDS))
    engine = make_engine(url)
    kills = 0
    try:
        for _ in range(DAYS):
            while True:
                before = _progress(engine)
                worker = cli.popen("worker", "--until-idle", log=log)
                if kill is not None and kill.random() < 0.8:
                    _wait_for_progress_or_exit(engine, before, worker, log)
                    time.sleep(kill.uniform(0, 0.3))  # somewhere later in its work
                    if worker.poll() is None:
                        worker.kill()
                        worker.wait()
                        if _progress(engine) > before:
                            kills += 1
                        time.sleep(LEASE_SECONDS + 0.2)  # let its leases expire
                        continue
                assert worker.wait(timeout=300) == 0, log.read_text()
                break
            advance(url, site_id, timedelta(days=1))
    finally:
        engine.dispose()
    return kills


def _progress(engine: Engine) -> int:
    with engine.connect() as conn:
        return progress(conn)


def _wait_for_progress_or_exit(
    engine: Engine, before: int, worker: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    """Wait until the worker has made a charge or a send, or has finished the day."""
    deadline = time.monotonic() + timeout
    while _progress(engine) <= before and worker.poll() is None:
        assert time.monotonic() < deadline, f"the worker made no progress:\n{log.read_text()}"
        time.sleep(0.005)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'calm.db'}", f"sqlite:///{tmp_path / 'crashed.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return make(), make()


@pytest.mark.slow
def test_a_worker_killed_at_random_points_ends_as_an_undisturbed_run(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    calm, crashed = two_databases
    site_id = build_shop(calm, SUBSCRIBERS)
    assert build_shop(crashed, SUBSCRIBERS) == site_id

    run_days(calm, site_id, None, tmp_path / "calm.log")
    kills = run_days(crashed, site_id, random.Random(20261122), tmp_path / "crashed.log")

    expected, got = snapshot(calm), snapshot(crashed)
    assert_same_end_state(expected, got, f"{kills} kills")
    assert kills >= 5, "the test must actually interrupt the worker"
    assert_each_charge_made_once(got)
    # The run did real dunning work: failures, retries, recoveries and final actions.
    statuses = Counter(row[1] for row in got["invoices"])
    assert statuses["paid"] > 0 and statuses["failed"] > 0
    assert any(a[1] >= 3 for a in got["attempts"])


# Twenty short runs, each killed twice at random: many more kill points
# than the long run above, each landing at a different moment of the work
# (a charge made but not recorded, a message sent but not marked...).
SHORT_SUBSCRIBERS = 45
SHORT_DAYS = 4
RUNS = 20
KILLS_PER_RUN = 2


@dataclass(frozen=True)
class Undisturbed:
    template: Path  # the shop before any work, copied for every run
    site_id: int
    end_state: dict[str, Any]
    work_per_day: list[int]


def copy_database(source: Path, target: Path) -> str:
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def work_days(run: Run, kills: dict[int, int], rng: random.Random) -> tuple[list[int], list[int]]:
    """Work through the days with one long-running worker.

    On a day in ``kills`` the worker is SIGKILLed once it has made that many
    charges and sends that day (and a few random milliseconds more), and a
    new one is started at once; it takes the work over as the leases expire.
    Returns each day's work (charges and sends) and, for the kill days, the
    work done by the time the worker died.
    """
    run.start_worker()
    work, at_kill = [], []
    for day in range(SHORT_DAYS):
        if day:
            run.advance(timedelta(days=1))
        before = run.progress()
        if day in kills:
            run.wait_for_progress(before + kills[day])
            time.sleep(rng.uniform(0, 0.02))
            run.kill_worker()
            at_kill.append(run.progress() - before)
            run.start_worker()
        run.finish()
        work.append(run.progress() - before)
    return work, at_kill


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> Undisturbed:
    folder = tmp_path_factory.mktemp("short-runs")
    template = folder / "template.db"
    site_id = build_shop(f"sqlite:///{template}", SHORT_SUBSCRIBERS, contacts=True)
    url = copy_database(template, folder / "calm.db")
    run = polling_run(url, site_id, folder / "calm.log", LEASE_SECONDS)
    try:
        work, _ = work_days(run, {}, random.Random(0))
    finally:
        run.close()
    return Undisturbed(template, site_id, snapshot(url), work)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(RUNS))
def test_a_short_run_whose_worker_is_killed_twice_ends_as_an_undisturbed_run(
    seed: int, undisturbed: Undisturbed, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    busy = [day for day, work in enumerate(undisturbed.work_per_day) if work >= 2]
    days = rng.sample(busy, KILLS_PER_RUN)
    kills = {day: rng.randint(1, undisturbed.work_per_day[day] - 1) for day in days}
    url = copy_database(undisturbed.template, tmp_path / "crashed.db")
    run = polling_run(url, undisturbed.site_id, tmp_path / "crashed.log", LEASE_SECONDS)
    try:
        work, at_kill = work_days(run, kills, rng)
    finally:
        run.close()

    got = snapshot(url)
    assert_same_end_state(undisturbed.end_state, got, f"kills on (day: after work) {kills}")
    assert_each_charge_made_once(got)
    assert assert_each_message_delivered_once(url) > 0
    # The kills landed in the middle of a day's work, not after it.
    assert work == undisturbed.work_per_day
    assert any(done < work[day] for day, done in zip(sorted(kills), at_kill, strict=True))
