"""Group commit for inbound texts: one thread stores every waiting text in one transaction.

The webhook hands each verified text to this process's :class:`InboundWriter`
and waits for its future. The writer's thread takes every text waiting in
its queue (up to :data:`MAX_BATCH`) and hands them to its store
(:mod:`dunwell.services.inbound_store`), which commits them in one
transaction, in this thread or in a child process; only once they are
committed does it resolve each text's future, so the webhook
answers Twilio's request once its text is durable. Under load a commit
serves many texts, and the webhook never holds the event loop for the
database.

A batch costs about ten statements whatever its size, and storing a batch
of one would hand the writer the process's time (Python runs one thread at
a time) just when the event loop needs it. So once texts arrive faster
than one commit each, the writer lingers (its store's ``linger``) before
it starts the next batch, to gather the texts the event loop is handing
over. While texts trickle in it never waits.

One bad text must not cost the others their answer: when a batch fails it
is stored again text by text, each in its own transaction, and only the
text that fails again gets the error.

Each server process has its own writer. On PostgreSQL several processes
write at once, and the unique MessageSid keeps a text delivered to two of
them stored once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass

from dunwell.bootstrap import App
from dunwell.services.inbound_sms import InboundResult, InboundSms
from dunwell.services.inbound_store import InboundStore, ThreadStore

log = logging.getLogger(__name__)

#: The most texts one transaction stores. A batch only grows this large when
#: texts arrive faster than the database commits, and then larger batches
#: make each statement longer without saving many more commits.
MAX_BATCH = 500


class WriterClosed(RuntimeError):
    """The writer is stopping (the server shuts down) and takes no more texts."""


@dataclass(frozen=True)
class Backlog:
    """What the writer has in hand: texts queued, and texts in the batch being stored."""

    queued: int
    storing: int


#: What a waiting text's outcome goes to: a thread's future or an event loop's.
Waiter = Future[InboundResult] | asyncio.Future[InboundResult]
Outcome = InboundResult | BaseException


@dataclass(frozen=True)
class _Pending:
    sms: InboundSms
    future: Waiter

    def wanted(self) -> bool:
        """Whether the text is still to be stored: its request was not abandoned."""
        if isinstance(self.future, Future):
            return self.future.set_running_or_notify_cancel()
        # Read from the writer's thread: a cancelled asyncio future stays
        # cancelled, and one cancelled just after this is stored as if the
        # request had waited, which is harmless.
        return not self.future.cancelled()


class InboundWriter:
    """This process's single writer of inbound texts; its thread starts with the first text."""

    def __init__(
        self,
        app: App,
        max_batch: int = MAX_BATCH,
        linger: float | None = None,
        store: InboundStore | None = None,
    ) -> None:
        self._store_batch = store or ThreadStore(app)
        # Seconds a busy writer waits to gather more texts into its next batch.
        self._linger = self._store_batch.linger if linger is None else linger
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._changed = threading.Condition()
        # Whether the thread waits for a first text (not lingering, not storing):
        # only then, or when a batch fills, does a new text need to wake it.
        self._idle = False
        self._storing = 0
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, sms: InboundSms) -> Future[InboundResult]:
        """Queue a text; the future has its result once it is committed, or its error."""
        future: Future[InboundResult] = Future()
        self._enqueue(_Pending(sms, future))
        return future

    async def store(self, sms: InboundSms) -> InboundResult:
        """Queue a text from the event loop and wait for its commit (see :meth:`submit`).

        Unlike awaiting :meth:`submit`'s future, which costs a wake-up of the
        loop per text, the writer hands a whole batch's outcomes to the loop
        in one call; under load that is the difference between one wake-up
        per commit and one per text, each taking the interpreter from the
        thread still settling the batch.
        """
        future: asyncio.Future[InboundResult] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(sms, future))
        return await future

    def _enqueue(self, pending: _Pending) -> None:
        with self._changed:
            if self._closing:
                raise WriterClosed("the server is shutting down")
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dunwell-inbound-writer", daemon=True
                )
                self._thread.start()
            if self._idle or self._batch_full():
                self._changed.notify()

    def backlog(self) -> Backlog:
        with self._changed:
            return Backlog(len(self._queue), self._storing)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new texts, store every queued one, then stop the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("inbound writer still storing texts after %s s", timeout)
                return  # its store is still in use
        self._store_batch.close(timeout)

    def _run(self) -> None:
        busy = False
        while True:
            with self._changed:
                self._idle = True
                while not self._queue and not self._closing:
                    self._changed.wait()
                self._idle = False
                if busy:
                    # Texts came faster than one commit each: wait a moment
                    # for those the event loop is handing over, since a text
                    # more in a commit costs far less than a commit.
                    self._changed.wait_for(self._batch_full, self._linger)
                if not self._queue:
                    return  # closing, and everything queued is stored
                count = min(len(self._queue), self._max_batch)
                taken = [self._queue.popleft() for _ in range(count)]
                self._storing = count
            # A text whose request was abandoned (its future cancelled) is not
            # stored: no 200 went out for it, so Twilio delivers it again.
            batch = [p for p in taken if p.wanted()]
            if batch:
                self._store(batch)
            with self._changed:
                self._storing = 0
                busy = count > 1 or bool(self._queue)

    def _batch_full(self) -> bool:
        return self._closing or len(self._queue) >= self._max_batch

    def _store(self, batch: list[_Pending]) -> None:
        outcomes: list[Outcome]
        try:
            outcomes = list(self._store_batch.store([pending.sms for pending in batch]))
        except BaseException as error:  # the thread must outlive anything a batch raises
            log.exception("inbound writer failed on a batch of %d texts", len(batch))
            outcomes = [error] * len(batch)
        by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[Waiter, Outcome]]]
        by_loop = defaultdict(list)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if isinstance(pending.future, Future):
                _settle(pending.future, outcome)
            else:
                by_loop[pending.future.get_loop()].append((pending.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, settled)
            except RuntimeError:  # the loop has closed: nobody waits for these any more
                log.warning("%d stored texts had nobody waiting for them", len(settled))


def _settle_all(settled: list[tuple[Waiter, Outcome]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


def _settle(future: Waiter, outcome: Outcome) -> None:
    if future.done():  # an asyncio future whose request was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
