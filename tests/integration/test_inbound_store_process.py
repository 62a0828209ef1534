"""The inbound writer's child process: it commits, outlives Ctrl+C, and is replaced if it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dunwell.bootstrap import App, bootstrap
from dunwell.services.inbound_sms import InboundResult, InboundSms
from dunwell.services.inbound_store import (
    InboundStore,
    ProcessStore,
    StoreFailed,
    ThreadStore,
    store_for,
)
from dunwell.services.inbound_writer import InboundWriter
from dunwell.settings import Settings
from dunwell.store import tables
from tests.integration.factories import Shop

PHONE = "+14155550123"


@pytest.fixture
def real_time_app(sqlite_url: str) -> Iterator[App]:
    """An app on the system clock, which the child process can share."""
    app = bootstrap(Settings(database_url=sqlite_url, secret_key="test-secret-key"))
    yield app
    app.close()


@pytest.fixture
def store(real_time_app: App) -> Iterator[ProcessStore]:
    made = ProcessStore(real_time_app.settings)
    yield made
    made.close()


def _texts(site_id: int, first: int, count: int = 3) -> list[InboundSms]:
    return [
        InboundSms(site_id, "twilio", f"SM{n:032d}", PHONE, "+14155550000", "where is my order")
        for n in range(first, first + count)
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that died but was not yet reaped still answers; ask for its state.
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


def _wait_until(condition: object, seconds: float = 15.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_batch_is_committed_by_the_child_process_on_either_database(db_url: str) -> None:
    app = bootstrap(Settings(database_url=db_url, secret_key="test-secret-key"))
    store = store_for(app)  # the default setting
    try:
        _stored_by_the_child(app, store)
    finally:
        store.close()
        app.close()


def _stored_by_the_child(real_time_app: App, store: InboundStore) -> None:
    assert isinstance(store, ProcessStore)
    shop = Shop.create(real_time_app)
    outcomes = store.store(_texts(shop.site_id, 1))
    assert store.pid is not None and store.pid != os.getpid()
    assert all(isinstance(o, InboundResult) and o.waiting_id for o in outcomes)
    stored = shop.all(tables.inbound_messages, site_id=shop.site_id)
    waiting = [o.waiting_id for o in outcomes if isinstance(o, InboundResult) and o.waiting_id]
    assert sorted(r.id for r in stored) == sorted(waiting)
    # The same texts again are recognised by their MessageSid, across processes.
    again = store.store(_texts(shop.site_id, 1))
    assert all(isinstance(o, InboundResult) and o.duplicate for o in again)


def test_a_child_that_dies_with_a_batch_in_hand_fails_that_batch_and_the_next_starts_another(
    real_time_app: App, store: ProcessStore
) -> None:
    shop = Shop.create(real_time_app)
    first_child = store.pid
    assert first_child is not None
    os.kill(first_child, signal.SIGSTOP)  # it cannot read the batch sent next
    outcomes: list[object] = []
    sender = threading.Thread(target=lambda: outcomes.extend(store.store(_texts(shop.site_id, 1))))
    sender.start()
    time.sleep(0.2)
    os.kill(first_child, signal.SIGKILL)
    sender.join(15)
    assert len(outcomes) == 3 and all(isinstance(o, StoreFailed) for o in outcomes)
    assert shop.all(tables.inbound_messages, site_id=shop.site_id) == []
    # Twilio sends those texts again, and a new child stores them.
    retried = store.store(_texts(shop.site_id, 1))
    assert all(isinstance(o, InboundResult) and not o.duplicate for o in retried)
    assert store.pid not in (None, first_child)
    assert len(shop.all(tables.inbound_messages, site_id=shop.site_id)) == 3


def test_ctrl_c_does_not_stop_the_child_and_closing_does(
    real_time_app: App, store: ProcessStore
) -> None:
    shop = Shop.create(real_time_app)
    store.store(_texts(shop.site_id, 1, 1))
    child = store.pid
    assert child is not None
    os.kill(child, signal.SIGINT)
    outcomes = store.store(_texts(shop.site_id, 2, 1))
    assert isinstance(outcomes[0], InboundResult) and store.pid == child
    store.close()
    _wait_until(lambda: not _alive(child))


def test_the_writer_closes_its_child_when_the_server_stops(real_time_app: App) -> None:
    shop = Shop.create(real_time_app)
    store = ProcessStore(real_time_app.settings)
    writer = InboundWriter(real_time_app, store=store)
    result = writer.submit(_texts(shop.site_id, 1, 1)[0]).result(timeout=30)
    assert result.waiting_id is not None
    child = store.pid
    assert child is not None
    writer.close(10)
    _wait_until(lambda: not _alive(child))


def test_the_child_exits_when_the_server_is_killed(sqlite_url: str, tmp_path: Path) -> None:
    """No orphan: the pipe closes with the server, whatever killed it."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import time
        from dunwell.services.inbound_store import ProcessStore
        from dunwell.settings import Settings

        if __name__ == "__main__":
            store = ProcessStore(Settings(database_url={sqlite_url!r}, secret_key="k"))
            open({str(pid_file)!r}, "w").write(str(store.pid))
            time.sleep(60)
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        child = int(pid_file.read_text())
        assert _alive(child)
        server.kill()
        server.wait(10)
        _wait_until(lambda: not _alive(child))
    finally:
        server.kill()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_store_follows_the_setting_and_the_clock(
    real_time_app: App, sqlite_url: str, app: App
) -> None:
    process = store_for(real_time_app)
    try:
        assert isinstance(process, ProcessStore)
    finally:
        process.close()
    threaded = bootstrap(Settings(database_url=sqlite_url, secret_key="k", inbound_writer="thread"))
    assert isinstance(store_for(threaded), ThreadStore)
    threaded.close()
    assert isinstance(store_for(app), ThreadStore)  # a fixed clock stays in this process
    wrong = bootstrap(Settings(database_url=sqlite_url, secret_key="k", inbound_writer="fork"))
    with pytest.raises(ValueError, match="inbound_writer must be one of process, thread"):
        store_for(wrong)
    wrong.close()
