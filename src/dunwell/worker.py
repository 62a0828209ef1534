"""The worker: bills renewals and collects due invoices until told to stop.

Any number of workers may run against PostgreSQL; on SQLite run one. Each
pass runs one batch of every stage (renewals, collection, the concierge,
deliveries); when none had work it sleeps for ``poll_seconds``. Each pass
that did work is logged at INFO with its counts per stage and duration (at
DEBUG when idle).

SIGTERM and SIGINT finish the stage in hand, skip the rest of the pass, give
back the leases this worker still holds and return, so the process exits 0
and another worker can take the rows at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType

from sqlalchemy import update
from sqlalchemy.exc import InterfaceError, OperationalError

from dunwell.bootstrap import App
from dunwell.services.collection import process_due_cycles
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.concierge_outbound import send_concierge_messages
from dunwell.services.delivery import deliver_due_messages
from dunwell.services.escalation import deliver_due_escalations
from dunwell.services.housekeeping import delete_expired_idempotency_keys
from dunwell.services.renewals import bill_due_subscriptions
from dunwell.services.twilio_catch_up import catch_up_with_twilio
from dunwell.services.webhook_delivery import deliver_due_webhooks
from dunwell.store.tables import metadata

log = logging.getLogger("dunwell.worker")

TIDY_EVERY = timedelta(hours=1)
#: The longest wait between tries while the database cannot be reached.
MAX_OUTAGE_PAUSE = 30.0
#: Every table whose rows a worker claims with a lease.
LEASED_TABLES = tuple(t for t in metadata.sorted_tables if "lease_owner" in t.c)


class Worker:
    def __init__(self, app: App, name: str | None = None) -> None:
        self.app = app
        # Lease owners are stored in 64 characters; keep the pid, trim the host.
        pid = str(os.getpid())
        self.name = (name or f"{socket.gethostname()[: 63 - len(pid)]}:{pid}")[:64]
        self.stopping = threading.Event()
        self._tidied_at: datetime | None = None
        self._failing: set[str] = set()  # stages whose last run raised

    def run_once(self, *, busy_level: int = logging.INFO) -> int:
        """One pass: returns how many items all stages handled (0 when idle).

        The pass is logged at ``busy_level`` when it did work, else at DEBUG.
        Once :attr:`stopping` is set the pass ends after the stage in hand;
        every stage releases its own leases, so what is skipped is simply
        still due for the next worker.
        """
        started = time.perf_counter()
        self._tidy()
        counts: dict[str, int] = {}
        for stage, run in self._stages():
            if self.stopping.is_set():
                break
            counts[stage] = self._run_stage(stage, run)
        self._log_pass(counts, time.perf_counter() - started, busy_level)
        return sum(counts.values())

    def _run_stage(self, stage: str, run: Callable[[], int]) -> int:
        """Run one stage; a failure of its own is logged and the pass goes on.

        One stage's bug or one site's bad data must not stop the others
        (emails, webhooks, escalations) for every site. A database that
        cannot be reached is raised on: :meth:`run_forever` backs off for it.
        The traceback is logged when a stage starts failing, then one line a
        pass, so a stage that fails every second does not flood the log.
        """
        try:
            done = run()
        except (OperationalError, InterfaceError):
            raise
        except Exception as error:
            if stage in self._failing:
                log.error("stage %s still failing: %s", stage, error, extra={"worker": self.name})
            else:
                log.exception(
                    "stage %s failed; the other stages go on", stage, extra={"worker": self.name}
                )
            self._failing.add(stage)
            return 0
        self._failing.discard(stage)
        return done

    def _stages(self) -> list[tuple[str, Callable[[], int]]]:
        """The stages of a pass, in order, each run as one batch."""
        app, name = self.app, self.name
        batch, deliveries = app.settings.batch_size, app.settings.delivery_batch_size
        return [
            ("renewals", lambda: bill_due_subscriptions(app, batch)),
            ("cycles", lambda: process_due_cycles(app, name, batch)),
            # Before the concierge, so a text found here is answered in this pass.
            ("twilio_caught_up", lambda: catch_up_with_twilio(app)),
            # Before delivery, so an answer goes out in the same pass.
            ("texts_answered", lambda: answer_pending_texts(app, name, deliveries)),
            # After collection (this pass's dunning emails are seen) and before delivery.
            ("concierge_queued", lambda: send_concierge_messages(app)),
            ("messages", lambda: deliver_due_messages(app, name, deliveries)),
            ("webhooks", lambda: deliver_due_webhooks(app, name, deliveries)),
            ("escalations", lambda: deliver_due_escalations(app, name, deliveries)),
        ]

    def _log_pass(self, counts: dict[str, int], seconds: float, busy_level: int) -> None:
        total = sum(counts.values())
        done = ", ".join(f"{stage}={n}" for stage, n in counts.items() if n)
        log.log(
            busy_level if total else logging.DEBUG,
            "pass: %d items in %.3f s%s",
            total,
            seconds,
            f" ({done})" if done else "",
            extra={
                "worker": self.name,
                "items": total,
                "counts": counts,
                "duration_s": round(seconds, 4),
            },
        )

    def _tidy(self) -> None:
        """Hourly clean-up (expired idempotency keys); any worker may do it."""
        now = self.app.clock.now()
        if self._tidied_at is not None and now - self._tidied_at < TIDY_EVERY:
            return
        self._tidied_at = now
        with self.app.begin() as conn:
            delete_expired_idempotency_keys(conn, now)

    def run_until_idle(self, max_passes: int | None = None) -> int:
        """Work until nothing is due, or for ``max_passes`` passes; returns items handled.

        Used by the demo, the CLI, the sandbox page and tests. Passes are
        logged at DEBUG: a simulated month would print hundreds of lines,
        and the CLI prints the total instead.
        """
        total, passes = 0, 0
        while max_passes is None or passes < max_passes:
            done = self.run_once(busy_level=logging.DEBUG)
            passes += 1
            if done == 0:
                break
            total += done
        return total

    def run_forever(self) -> None:
        """Poll until :attr:`stopping` is set, then release this worker's leases."""
        log.info("worker %s started", self.name, extra={"worker": self.name})
        outage = 0  # passes in a row the database could not be reached
        while not self.stopping.is_set():
            try:
                done = self.run_once()
                outage = 0
            except (OperationalError, InterfaceError) as error:
                # The database is away (restart, failover): wait longer each
                # time, and log the traceback once, not once a second.
                outage += 1
                # The exponent is capped: 2**outage overflows a float after ~1,000 passes.
                pause = min(self.app.settings.poll_seconds * 2 ** min(outage, 10), MAX_OUTAGE_PAUSE)
                if outage == 1:
                    log.exception(
                        "batch failed; retrying after a pause", extra={"worker": self.name}
                    )
                else:
                    log.warning(
                        "database still unreachable (%s); retrying in %.1f s",
                        type(error.orig).__name__,
                        pause,
                        extra={"worker": self.name, "outage_passes": outage},
                    )
                self.stopping.wait(pause)
                continue
            except Exception:
                # A crash in one batch must not kill the worker; leases make
                # the batch safe to redo.
                log.exception("batch failed; retrying after a pause", extra={"worker": self.name})
                done = 0
            if done == 0:
                self.stopping.wait(self.app.settings.poll_seconds)
        released = self.release_leases()
        log.info(
            "worker %s stopped; %d leases released",
            self.name,
            released,
            extra={"worker": self.name, "released": released},
        )

    def release_leases(self) -> int:
        """Give back every lease this worker still holds; returns how many.

        A finished batch has already released its own, so this finds only
        rows left by a batch that raised, or by a text the concierge could
        not answer (held until its lease ends as a pause before the retry).
        Released at once, another worker can take them without waiting for
        ``lease_seconds``. Only call it when no batch of this worker is
        running: a message in ``sending`` becomes claimable and is then
        reconciled as in doubt. Returns 0 (leases left to expire) when the
        database cannot be reached.
        """
        try:
            with self.app.begin() as conn:
                return sum(
                    conn.execute(
                        update(table)
                        .where(table.c.lease_owner == self.name)
                        .values(lease_owner=None, lease_until=None)
                    ).rowcount
                    for table in LEASED_TABLES
                )
        except Exception:
            log.warning("could not release leases; they will expire", exc_info=True)
            return 0

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: finishing the stage in hand", signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
