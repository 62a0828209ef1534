"""The server's own concierge: answers webhook texts at once while the webhook is quiet.

Twilio's webhook stores a text and answers Twilio; the concierge's answer
(understanding the text, the dialogue, the reply queued in the outbox:
about 11 ms of CPU a text) comes after. While texts trickle in, the server
answers each in a thread of its own straight away, so a sandbox or a small
shop sees the reply within a moment, with no worker pass to wait for.

It does so only opportunistically. Python runs one thread at a time, and on
SQLite one transaction writes at a time: a thread answering non-stop would
take turns from the event loop and the write lock from the inbound writer,
and slow every webhook. So the thread serves a short bounded queue
(:data:`CAPACITY`), and takes a text only when the one before it came at
least :data:`QUIET_GAP` earlier: while texts for the concierge come faster
than ten a second, from the first text of a burst on, it leaves them all
to the workers. (The gap is measured on the monotonic clock: it is about
scheduling, not business time.) A text not taken stays in
``inbound_messages`` with ``answered_at`` unset, where ``dunwell worker``
claims every waiting text with a lease on its next pass (see
:mod:`dunwell.services.concierge`). Under load the workers, which can run
anywhere and as many as needed, answer everything. Stopping the server
finishes the texts in hand and leaves the queued ones to the workers.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections import deque

from dunwell.bootstrap import App
from dunwell.services.concierge import answer_pending_texts

log = logging.getLogger(__name__)

#: Texts waiting for this process's concierge at most; the rest wait for a worker.
CAPACITY = 8
#: Seconds since the previous text below which a text is left to the workers.
QUIET_GAP = 0.1


def answerer_name() -> str:
    """The lease owner of this process's answers (64 characters at most, unique per process)."""
    pid = str(os.getpid())
    return f"webhook:{socket.gethostname()[: 55 - len(pid)]}:{pid}"[:64]


class ConciergeAnswerer:
    """One thread answering the texts offered to it; its thread starts with the first text."""

    def __init__(
        self,
        app: App,
        owner: str | None = None,
        capacity: int = CAPACITY,
        quiet_gap: float = QUIET_GAP,
    ) -> None:
        self._app = app
        self._owner = owner or answerer_name()
        self._capacity = capacity
        self._quiet_gap = quiet_gap
        self._queue: deque[int] = deque()
        self._last_arrival = -math.inf
        self._in_hand = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def offer(self, inbound_id: int) -> bool:
        """Queue a stored text for an answer; False when it is left to the worker."""
        with self._changed:
            now = time.monotonic()
            busy = now - self._last_arrival < self._quiet_gap
            self._last_arrival = now
            if self._closing or busy or len(self._queue) >= self._capacity:
                return False
            self._queue.append(inbound_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dunwell-concierge-answerer", daemon=True
                )
                self._thread.start()
            self._changed.notify()
            return True

    def waiting(self) -> int:
        """Texts offered and not yet taken up by the thread."""
        with self._changed:
            return len(self._queue)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every offered text is answered; False if that took longer than ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._in_hand, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the texts in hand, leave the queued ones to the worker, stop the thread."""
        with self._changed:
            self._closing = True
            self._queue.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if self._closing:
                    return
                ids = list(self._queue)
                self._queue.clear()
                self._in_hand = len(ids)
            try:
                # Claimed with a lease, as the worker does: a text the worker
                # took first is skipped here, and one this process does not
                # finish is the worker's once the lease expires.
                answer_pending_texts(self._app, self._owner, len(ids), ids)
            except Exception:  # the thread must outlive a failed claim (the worker retries)
                log.exception("concierge could not answer %d webhook texts", len(ids))
            finally:
                with self._changed:
                    self._in_hand = 0
                    self._changed.notify_all()
