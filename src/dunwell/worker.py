"""The worker: bills renewals and collects due invoices until told to stop.

Any number of workers may run against PostgreSQL; on SQLite run one. Each
loop takes a batch of due subscriptions and a batch of due dunning cycles;
when neither had work it sleeps for ``poll_seconds``. SIGTERM and SIGINT
finish the batch in hand and then exit.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta
from types import FrameType

from dunwell.bootstrap import App
from dunwell.services.collection import process_due_cycles
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.concierge_outbound import send_concierge_messages
from dunwell.services.delivery import deliver_due_messages
from dunwell.services.escalation import deliver_due_escalations
from dunwell.services.housekeeping import delete_expired_idempotency_keys
from dunwell.services.renewals import bill_due_subscriptions
from dunwell.services.webhook_delivery import deliver_due_webhooks

log = logging.getLogger("dunwell.worker")

TIDY_EVERY = timedelta(hours=1)


class Worker:
    def __init__(self, app: App, name: str | None = None) -> None:
        self.app = app
        # Lease owners are stored in 64 characters; keep the pid, trim the host.
        pid = str(os.getpid())
        self.name = (name or f"{socket.gethostname()[: 63 - len(pid)]}:{pid}")[:64]
        self.stopping = threading.Event()
        self._tidied_at: datetime | None = None

    def run_once(self) -> int:
        """One pass: returns how many subscriptions and cycles were handled."""
        batch = self.app.settings.batch_size
        self._tidy()
        return (
            bill_due_subscriptions(self.app, batch)
            + process_due_cycles(self.app, self.name, batch)
            # Before delivery, so an answer goes out in the same pass.
            + answer_pending_texts(self.app, self.name, self.app.settings.delivery_batch_size)
            # After collection (this pass's dunning emails are seen) and before delivery.
            + send_concierge_messages(self.app)
            + deliver_due_messages(self.app, self.name, self.app.settings.delivery_batch_size)
            + deliver_due_webhooks(self.app, self.name, self.app.settings.delivery_batch_size)
            + deliver_due_escalations(self.app, self.name, self.app.settings.delivery_batch_size)
        )

    def _tidy(self) -> None:
        """Hourly clean-up (expired idempotency keys); any worker may do it."""
        now = self.app.clock.now()
        if self._tidied_at is not None and now - self._tidied_at < TIDY_EVERY:
            return
        self._tidied_at = now
        with self.app.begin() as conn:
            delete_expired_idempotency_keys(conn, now)

    def run_until_idle(self) -> int:
        """Work until nothing is due (used by the demo, the CLI and tests)."""
        total = 0
        while (done := self.run_once()) > 0:
            total += done
        return total

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        while not self.stopping.is_set():
            try:
                done = self.run_once()
            except Exception:
                # A lost database connection or a crash in one batch must not
                # kill the worker; leases make the batch safe to redo.
                log.exception("batch failed; retrying after a pause")
                done = 0
            if done == 0:
                self.stopping.wait(self.app.settings.poll_seconds)
        log.info("worker %s stopped", self.name)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: finishing the batch in hand", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
