"""Where the inbound writer's batches are stored: in its own thread, or in a process of its own.

:class:`~dunwell.services.inbound_writer.InboundWriter` gathers texts into
batches; a *store* commits each batch and returns one outcome per text.

* :class:`ThreadStore` commits in the writer's thread. Python runs one
  thread at a time, so every statement of every batch takes the
  interpreter from the event loop that answers Twilio. Measured on a busy
  server, storing was the larger part of a text's cost, and the batches
  waiting for the interpreter made the slow tail.
* :class:`ProcessStore` sends each batch down a pipe to a child process
  that commits it with the same code and sends the outcomes back. The
  writer's thread waits on the pipe without the interpreter, so the
  database work runs on another core and the event loop keeps its own.

The child is one per server process, started with the store (``spawn``:
a fresh interpreter, nothing inherited from the server's threads). It
ignores Ctrl+C, which reaches the whole process group, so a batch is never
cut in half by it; it stops when the store is closed or when the pipe
closes because the server died. If the child dies, the batch in hand gets
an error (its requests get a 500; Twilio does not post them again, and the
worker reads them back from Twilio's API later, see
:mod:`dunwell.services.twilio_catch_up`; a text already committed is
recognised by its MessageSid) and the next batch starts a new child.

The child makes its own ``App`` from the server's settings with the
system clock, so only a server on the system clock uses it (tests that set
a fixed clock store in the thread).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from dunwell.bootstrap import App, bootstrap
from dunwell.clock import SystemClock
from dunwell.services.inbound_sms import InboundResult, InboundSms, receive_many
from dunwell.settings import Settings

log = logging.getLogger(__name__)

Outcomes = list[InboundResult | Exception]
#: ``inbound_writer`` settings: where batches are committed.
MODES = ("process", "thread")
#: How long closing waits for the child to finish its batch and exit.
STOP_SECONDS = 10.0


class StoreFailed(RuntimeError):
    """A text the child could not store, or a child that died with the batch in hand."""


class InboundStore(Protocol):
    #: Seconds a busy writer waits to gather more texts into its next batch.
    linger: float

    def store(self, texts: Sequence[InboundSms]) -> Outcomes:
        """Commit ``texts``; one outcome per text (its result, or the error that stopped it)."""
        ...

    def close(self, timeout: float | None = None) -> None: ...


def store_for(app: App) -> InboundStore:
    """The store the server's settings ask for (``inbound_writer``)."""
    mode = app.settings.inbound_writer
    if mode not in MODES:
        raise ValueError(f"inbound_writer must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "process" and isinstance(app.clock, SystemClock):
        return ProcessStore(app.settings)
    return ThreadStore(app)


class ThreadStore:
    """Commits in the calling thread, with this process's ``App``."""

    #: A commit here holds the interpreter, so fewer, larger ones are worth a wait.
    linger = 0.005

    def __init__(self, app: App) -> None:
        self._app = app

    def store(self, texts: Sequence[InboundSms]) -> Outcomes:
        return store_texts(self._app, texts)

    def close(self, timeout: float | None = None) -> None:
        pass


class ProcessStore:
    """Commits in a child process; :meth:`store` is called by one thread at a time."""

    #: Waiting costs the server little here, and texts gather anyway while the
    #: child commits. Against 5 ms, 1 ms halved the median wait at 400 to 800
    #: texts a second (3 to 6 ms instead of 8 to 9); the rate held was the same
    #: within the runs' spread.
    linger = 0.001

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._child: BaseProcess | None = None
        self._pipe: Connection | None = None
        self._start()  # now, so it is ready by the time the first text comes

    @property
    def pid(self) -> int | None:
        """The child's process id (for tests and logs)."""
        return None if self._child is None else self._child.pid

    def store(self, texts: Sequence[InboundSms]) -> Outcomes:
        with self._lock:
            if self._pipe is None or self._child is None or not self._child.is_alive():
                self._stop(0)
                self._start()
            assert self._pipe is not None
            try:
                self._pipe.send(list(texts))
                outcomes: Outcomes = self._pipe.recv()
            except (EOFError, OSError) as error:
                log.error(
                    "the inbound store process ended with %d texts in hand (%s); starting another",
                    len(texts),
                    type(error).__name__,
                )
                self._stop(0)
                failed = StoreFailed("the inbound store process ended before committing")
                return [failed] * len(texts)
            return outcomes

    def close(self, timeout: float | None = STOP_SECONDS) -> None:
        with self._lock:
            if self._pipe is not None:
                with contextlib.suppress(OSError):  # a child already gone
                    self._pipe.send(None)  # finish and exit
            self._stop(timeout)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=serve_batches,
            args=(child, self._settings),
            name="dunwell-inbound-store",
            daemon=True,
        )
        process.start()
        child.close()  # the child's end lives in the child; EOF here when it dies
        self._child, self._pipe = process, parent

    def _stop(self, timeout: float | None) -> None:
        child, pipe = self._child, self._pipe
        self._child = self._pipe = None
        if child is not None:
            child.join(timeout)
            if child.is_alive():
                log.warning("the inbound store process did not stop; terminating it")
                child.terminate()
                child.join(STOP_SECONDS)
        if pipe is not None:
            pipe.close()


def serve_batches(pipe: Connection, settings: Settings) -> None:
    """The child: commit each batch that comes down ``pipe``, until None or the pipe closes."""
    from dunwell.logs import configure_logging

    # Ctrl+C in a terminal reaches every process of the group; the server
    # decides when this one stops (a batch in hand is finished first).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings)
    app = bootstrap(settings)
    try:
        while True:
            try:
                texts = pipe.recv()
            except EOFError:
                return  # the server is gone
            if texts is None:
                return
            pipe.send([_picklable(outcome) for outcome in store_texts(app, texts)])
    finally:
        app.close()


def _picklable(outcome: InboundResult | Exception) -> InboundResult | Exception:
    """Errors cross the pipe as their message: a driver's exception may not unpickle."""
    if isinstance(outcome, Exception):
        return StoreFailed(f"{type(outcome).__name__}: {outcome}")
    return outcome


def store_texts(app: App, texts: Sequence[InboundSms]) -> Outcomes:
    """Store ``texts`` in one transaction; if that fails, each alone, so only a bad one fails."""
    try:
        return list(_store_together(app, texts))
    except Exception as error:
        if len(texts) == 1:
            log.exception("inbound text %s could not be stored", texts[0].sid)
            return [error]
        log.warning(
            "a batch of %d inbound texts failed; storing them one by one",
            len(texts),
            exc_info=True,
        )
    return [_store_alone(app, sms) for sms in texts]


def _store_together(app: App, texts: Sequence[InboundSms]) -> list[InboundResult]:
    with app.begin() as conn:
        return receive_many(conn, texts, app.clock)


def _store_alone(app: App, sms: InboundSms) -> InboundResult | Exception:
    try:
        return _store_together(app, [sms])[0]
    except Exception as error:
        log.exception("inbound text %s could not be stored", sms.sid)
        return error
