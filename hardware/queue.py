"""The print queue: one background thread per printer that renders, encodes, sends and retries.

It runs inside the print worker process (hardware.worker), fed from the durable spool; the kiosk's
server process never renders. Submitting never waits for the printer: the caller gets a job id at
once. The thread sends jobs
strictly in order; a job leaves the queue only once its transport delivered it, so after a
printer fault every queued job prints exactly once, in order, when the printer is back. A
printer that cannot take jobs is retried with exponential back-off; a job that cannot be printed
at all (a rendering or encoding error) is dropped and reported, so it never blocks the others.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from typing import Callable

from hardware.errors import PrinterUnavailable
from hardware.job import PrintJob
from hardware.layout import Document
from hardware.profiles import Profile
from hardware.status import PrinterState, PrinterStatus, status
from hardware.transports import Transport

log = logging.getLogger(__name__)

PENDING, PRINTED, FAILED = "pending", "printed", "failed"


def _utcnow() -> dt.datetime:
    """Wall time when no clock is injected."""
    return dt.datetime.now(dt.timezone.utc)


def check_timing(retry_initial_s: float, retry_max_s: float, poll_interval_s: float) -> None:
    """Refuse retry and poll delays the queue cannot honour (ValueError naming the rule)."""
    if not 0 < retry_initial_s <= retry_max_s:
        raise ValueError("retry delays must satisfy 0 < retry_initial_s <= retry_max_s")
    if poll_interval_s <= 0:
        raise ValueError("poll_interval_s must be positive")


@dataclasses.dataclass(frozen=True)
class QueueStatus:
    """A snapshot of the queue and of the printer's last known status."""

    printer: PrinterStatus
    pending: int
    spooled: int
    printed: int
    failed: int
    last_error: str | None
    last_printed_at: dt.datetime | None


class PrintQueue:
    """A FIFO of print jobs served by one worker thread (started on first use)."""

    def __init__(self, transport: Transport, profile: Profile, *, now: Callable[[], dt.datetime] | None = None,
                 retry_initial_s: float = 0.5, retry_max_s: float = 30.0, poll_interval_s: float = 30.0,
                 history: int = 500, name: str = "printer",
                 on_change: Callable[[PrintJob | None], None] | None = None):
        """Configure; no thread starts and no device is touched until the first submit or status.

        `on_change(job)` is called on the queue's thread after a job left the queue (printed or
        failed: see job_state) and `on_change(None)` after a printer status observation.
        """
        check_timing(retry_initial_s, retry_max_s, poll_interval_s)
        self.transport = transport
        self.profile = profile
        self.name = name
        # Wall time stamps statuses and files; back-off waits use the monotonic clock so a
        # frozen or corrected wall clock cannot stall or rush retries.
        self._now = now or _utcnow
        self._retry_initial_s, self._retry_max_s = retry_initial_s, retry_max_s
        self._poll_interval_s = poll_interval_s
        self._cond = threading.Condition()
        self._jobs: collections.deque[PrintJob] = collections.deque()
        self._states: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._history = history
        self._on_change = on_change
        self._status = status(PrinterState.UNKNOWN, "not checked yet")
        self._spooled = 0
        self._printed = 0
        self._failed = 0
        self._last_error: str | None = None
        self._last_printed_at: dt.datetime | None = None
        self._retry_at = 0.0
        self._delay = 0.0
        self._thread: threading.Thread | None = None
        self._closing = False
        self._drain_until = 0.0

    # -- caller side (any thread) -------------------------------------------------------

    def submit(self, document: Document, *, job_id: str | None = None,
               submitted_at: dt.datetime | None = None) -> str:
        """Queue a document and return its job id at once."""
        return self.enqueue(PrintJob(document, self.profile, job_id=job_id, submitted_at=submitted_at or self._now()))

    def enqueue(self, job: PrintJob) -> str:
        """Queue a prepared job (the print worker's jobs from the spool) and return its id."""
        with self._cond:
            if self._closing:
                raise RuntimeError(f"print queue {self.name} is closed")
            self._jobs.append(job)
            self._remember(job.job_id, PENDING)
            self._ensure_worker()
            self._cond.notify_all()
        log.debug("queued print job %s (%s) on %s", job.job_id, job.title, self.name)
        return job.job_id

    def job_state(self, job_id: str) -> str | None:
        """'pending', 'printed' or 'failed' for a recent job; None when unknown."""
        with self._cond:
            return self._states.get(job_id)

    def pending_ids(self) -> list[str]:
        """Ids of the jobs still waiting, oldest first."""
        with self._cond:
            return [j.job_id for j in self._jobs]

    def snapshot(self) -> QueueStatus:
        """The current queue and printer status; never touches the printer."""
        with self._cond:
            self._ensure_worker()
            return QueueStatus(self._status, len(self._jobs), self._spooled, self._printed, self._failed,
                               self._last_error, self._last_printed_at)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is pending; True if that happened within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> list[str]:
        """Keep printing for up to `timeout` s, then stop; return (and log) the ids left unprinted."""
        with self._cond:
            self._closing = True
            self._drain_until = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            # A send in progress is bounded by the transport timeout; allow for it.
            thread.join(timeout + 60)
            if thread.is_alive():
                log.error("print worker %s did not stop", self.name)
        self.transport.close()
        left = self.pending_ids()
        if left:
            shown = ", ".join(left[:20]) + (f" and {len(left) - 20} more" if len(left) > 20 else "")
            log.warning("print queue %s closed with %d unprinted job(s): %s", self.name, len(left), shown)
        return left

    # -- worker side ---------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        """Start the worker thread once (caller holds the lock)."""
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._run, name=f"print-{self.name}", daemon=True)
            self._thread.start()

    def _remember(self, job_id: str, state: str) -> None:
        """Record a job's state, keeping a bounded history (caller holds the lock)."""
        self._states[job_id] = state
        self._states.move_to_end(job_id)
        while len(self._states) > self._history:
            oldest, old_state = next(iter(self._states.items()))
            if old_state == PENDING:
                break
            del self._states[oldest]

    def _next(self, next_poll: float) -> PrintJob | None | bool:
        """Block until there is something to do: a job to send, None to poll status, False to stop."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._closing and (not self._jobs or now >= self._drain_until):
                    return False
                if self._jobs and now >= self._retry_at:
                    return self._jobs[0]
                if not self._jobs and now >= next_poll:
                    return None
                wake_at = self._retry_at if self._jobs else next_poll
                if self._closing:
                    wake_at = min(wake_at, self._drain_until)
                self._cond.wait(max(0.0, wake_at - now))

    def _run(self) -> None:
        """Serve jobs in order until closed."""
        next_poll = 0.0
        while True:
            job = self._next(next_poll)
            if job is False:
                return
            if job is None:
                self._poll()
                next_poll = time.monotonic() + self._poll_interval_s
                self._changed(None)
                continue
            finished = self._attempt(job)
            next_poll = time.monotonic() + self._poll_interval_s
            self._changed(job if finished else None)

    def _changed(self, job: PrintJob | None) -> None:
        """Tell the listener; its failure is logged, never allowed to stop the queue."""
        if self._on_change is None:
            return
        try:
            self._on_change(job)
        except Exception:
            log.exception("print queue %s: change listener failed", self.name)

    def _poll(self) -> None:
        """Refresh the printer status while idle."""
        try:
            seen = self.transport.status()
            spooled = self.transport.spooled()
        except Exception as exc:  # status() must not raise; if it does, show it rather than die
            log.exception("status check of %s failed", self.name)
            seen, spooled = status(PrinterState.ERROR, f"status check failed: {exc}"), self._spooled
        self._set_status(seen, spooled=spooled)

    def _attempt(self, job: PrintJob) -> bool:
        """Send one job; True when it left the queue (sent or dropped), False when it waits for a retry."""
        job.attempts += 1
        try:
            seen = self.transport.send(job)
        except PrinterUnavailable as exc:
            with self._cond:
                self._delay = min(max(self._delay * 2, self._retry_initial_s), self._retry_max_s)
                self._retry_at = time.monotonic() + self._delay
                self._last_error = exc.status.detail
            self._set_status(exc.status)
            log.warning("printer %s unavailable (%s); %d job(s) waiting, next try in %.1f s",
                        self.name, exc.status.detail, len(self._jobs), self._delay)
            return False
        except Exception as exc:
            # Not the printer's fault: this job cannot be rendered or encoded. Retrying would
            # block every ticket behind it.
            log.exception("print job %s (%s) cannot be printed; dropped", job.job_id, job.title)
            with self._cond:
                self._jobs.popleft()
                self._failed += 1
                self._last_error = f"job {job.job_id} dropped: {exc}"
                self._remember(job.job_id, FAILED)
                self._cond.notify_all()
            return True
        with self._cond:
            self._jobs.popleft()
            self._printed += 1
            self._delay = 0.0
            self._retry_at = 0.0
            self._last_printed_at = self._now()
            self._remember(job.job_id, PRINTED)
            self._cond.notify_all()
        log.debug("print job %s (%s) sent to %s after %d attempt(s)", job.job_id, job.title, self.name, job.attempts)
        self._set_status(seen)
        return True

    def _set_status(self, seen: PrinterStatus, *, spooled: int | None = None) -> None:
        """Store a status observation and log changes of state."""
        stamped = seen.at(self._now())
        with self._cond:
            previous = self._status
            self._status = stamped
            if spooled is not None:
                self._spooled = spooled
        if previous.state != stamped.state:
            level = logging.INFO if stamped.state in (PrinterState.ONLINE, PrinterState.UNKNOWN) else logging.WARNING
            log.log(level, "printer %s is %s: %s", self.name, stamped.state.value, stamped.detail)
