"""The kiosk's end of printing: jobs go to the durable spool, a worker process prints them.

`Spooler.submit` writes the job to the spool (hardware.spool) and wakes the worker; it never
renders, never waits for the printer and never blocks on the worker. The worker
(`python -m hardware.worker`) is started on first use, or at once when jobs from before a restart
are waiting, watched by a thread that restarts it with back-off when it dies, and stopped by
`close`. Its status report is a small file that `snapshot` re-reads only when it changed.

The spool is bounded: past `max_pending` waiting jobs a new job is refused at once, with a
warning in the log and in the status, so a printer that has been out of paper all afternoon does
not pile up tickets nobody will collect (the ticket itself is stored and shown on screen already).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import os
import pathlib
import pickle
import secrets
import subprocess
import sys
import threading
import time

from hardware.job import new_job_id
from hardware.layout import Document, TicketSlip
from hardware.queue import FAILED, PENDING, PRINTED, check_timing
from hardware.spool import Spool
from hardware.status import PrinterState, PrinterStatus, status
from hardware.urls import parse_printer_url

log = logging.getLogger(__name__)

REFUSED = "refused"
SPOOL_DIR = "print-spool"
# A day of a busy centre's tickets (the busy-day target is 5,000) fits; a job file is ~2 KB.
DEFAULT_MAX_PENDING = 5000
# Restart delays after the worker dies: doubling, reset once a worker has lived a minute.
RESTART_INITIAL_S, RESTART_MAX_S, RESTART_RESET_S = 0.2, 30.0, 60.0
# How long close() waits beyond its drain time for a send in progress (bounded by transport timeouts).
CLOSE_GRACE_S = 60.0
_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _utcnow() -> dt.datetime:
    """Wall time when no clock is injected."""
    return dt.datetime.now(dt.timezone.utc)


def _some(ids: list[str], shown: int = 20) -> str:
    """Job ids for a log line: all of a few, the first ones of many."""
    return ", ".join(ids) if len(ids) <= shown else ", ".join(ids[:shown]) + f" and {len(ids) - shown} more"


def _parse_time(text) -> dt.datetime | None:
    """A time from the worker's report."""
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class SpoolerStatus:
    """What the screens show: the printer's last known status, the spool, and the worker."""

    printer: PrinterStatus
    pending: int
    spooled: int
    printed: int
    failed: int
    refused: int
    limit: int
    last_error: str | None
    last_printed_at: dt.datetime | None
    worker: str  # idle (not needed yet), running, restarting, stopped
    worker_pid: int | None
    worker_restarts: int

    @property
    def full(self) -> bool:
        """Whether new jobs are being refused."""
        return self.pending >= self.limit


class Spooler:
    """Durable, bounded printing through a worker process, for one printer URL."""

    def __init__(self, url: str | None, data_dir: pathlib.Path | str, *, spool_dir: pathlib.Path | str | None = None,
                 clock=None, max_pending: int = DEFAULT_MAX_PENDING, retry_initial_s: float = 0.5,
                 retry_max_s: float = 30.0, poll_interval_s: float = 30.0, history: int = 10_000):
        """Check the settings and open the spool; the worker starts now only if jobs are waiting.

        `clock` (an object with now()) stamps jobs here and is handed to the worker, pickled, to
        stamp its status; one that cannot be pickled leaves the worker on the system clock.
        """
        self.config = parse_printer_url(url)
        check_timing(retry_initial_s, retry_max_s, poll_interval_s)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a whole number of jobs, at least 1 (got {max_pending!r})")
        self.url = (url or "").strip() or "preview://"
        self.name = self.config.display_url
        self.kind = self.config.kind
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.spool = Spool(pathlib.Path(spool_dir).resolve() if spool_dir else self.data_dir / SPOOL_DIR)
        self.max_pending = max_pending
        self._clock = clock
        self._now = clock.now if clock is not None else _utcnow
        self._timing = {"retry_initial_s": retry_initial_s, "retry_max_s": retry_max_s,
                        "poll_interval_s": poll_interval_s}
        self._run_id = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._jobs: collections.OrderedDict[str, int | str] = collections.OrderedDict()
        self._history = history
        self._refused = 0
        self._own_error: str | None = None
        self._proc: subprocess.Popen | None = None
        self._pipe: int | None = None
        self._worker_state = "idle"
        self._worker_error: str | None = None
        self._restarts = 0
        self._started_at = 0.0
        self._supervisor: threading.Thread | None = None
        self._closing = False
        self._closed: list[str] | None = None
        self._report: dict = {}
        self._report_key = None
        self._last_seq = self.spool.open_writer()
        try:
            self._floor = self.spool.finished_through()
            if self._last_seq > self._floor:
                log.info("%d print job(s) from before the restart are waiting in the spool",
                         self._last_seq - self._floor)
                with self._lock:
                    self._ensure_worker()
        except BaseException:
            self.spool.close_writer()
            raise

    # -- the request side: never waits ---------------------------------------------------

    def submit(self, item: Document | TicketSlip, *, job_id: str | None = None) -> str:
        """Spool a ticket's slip or a document and return its job id; refused (see job_state) when full.

        Once this returns the job survives a crash of this process; the worker puts it on disk
        (fdatasync) as soon as it wakes, off the request's path.
        """
        if not isinstance(item, (Document, TicketSlip)):
            raise TypeError(f"submit needs a hardware.Document or TicketSlip, not {type(item).__name__}")
        job_id = job_id or new_job_id()
        with self._lock:
            if self._closing:
                raise RuntimeError(f"print queue {self.name} is closed")
            pending = self._last_seq - self._finished_through(refresh=False)
            if pending >= self.max_pending:
                # The cached report may be old: look again before refusing.
                pending = self._last_seq - self._finished_through(refresh=True)
            if pending >= self.max_pending:
                return self._refuse(job_id, f"print queue full ({pending} jobs waiting, limit {self.max_pending})")
            seq = self._last_seq + 1
            try:
                self.spool.append(seq, job_id, item, self._now())
            except OSError as exc:
                return self._refuse(job_id, f"cannot write the print spool: {exc.strerror or exc}")
            self._last_seq = seq
            self._own_error = None
            self._remember(job_id, seq)
            self._ensure_worker()
            self._wake(f"{seq} {job_id}\n")
        log.debug("spooled print job %s as %d on %s", job_id, seq, self.name)
        return job_id

    def _refuse(self, job_id: str, reason: str) -> str:
        """Count and log a job that was not spooled (caller holds the lock); its id."""
        self._refused += 1
        self._own_error = f"job {job_id} not printed: {reason}"
        self._remember(job_id, REFUSED)
        log.warning("print job %s refused on %s: %s; the ticket is stored and shown on screen", job_id,
                    self.name, reason)
        return job_id

    def _remember(self, job_id: str, seq_or_state: int | str) -> None:
        """Keep a bounded map of recent job ids (caller holds the lock)."""
        self._jobs[job_id] = seq_or_state
        while len(self._jobs) > self._history:
            self._jobs.popitem(last=False)

    def _wake(self, line: str) -> None:
        """Tell the worker without ever blocking (caller holds the lock); it rescans if this is lost."""
        if self._pipe is None:
            return
        try:
            os.write(self._pipe, line.encode("ascii"))
        except BlockingIOError:
            log.debug("print worker's pipe is full; it finds the job on its next look at the spool")
        except OSError:
            log.debug("print worker's pipe is closed; its restart finds the job in the spool")

    # -- status --------------------------------------------------------------------------

    def _read_report(self) -> dict:
        """The worker's report, re-read only when the file changed (caller holds the lock)."""
        path = self.spool.directory / "status.json"
        try:
            st = os.stat(path)
        except OSError:
            return self._report
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._report_key:
            self._report = self.spool.read_status() or self._report
            self._report_key = key
        return self._report

    def _finished_through(self, *, refresh: bool = True) -> int:
        """The last sequence number the worker is done with (caller holds the lock)."""
        report = self._read_report() if refresh else self._report
        finished = report.get("finished_through")
        return max(self._floor, finished if isinstance(finished, int) else 0)

    def snapshot(self) -> SpoolerStatus:
        """The current status; starts the worker (which checks the printer) if it is not running."""
        with self._lock:
            if not self._closing:
                self._ensure_worker()
            report = self._read_report()
            finished = self._finished_through(refresh=False)
            ours = report.get("run") == self._run_id
            printer = status(PrinterState.UNKNOWN, "not checked yet")
            if self._worker_state == "restarting":
                printer = status(PrinterState.ERROR, self._worker_error or "print worker restarting")
            elif ours:
                try:
                    printer = PrinterStatus(PrinterState(report.get("state")), str(report.get("detail", "")),
                                            _parse_time(report.get("checked_at")))
                except ValueError:
                    log.warning("print worker reported an unknown printer state %r", report.get("state"))
            return SpoolerStatus(
                printer=printer,
                pending=max(0, self._last_seq - finished),
                spooled=int(report.get("spooled", 0)) if ours else 0,
                printed=int(report.get("printed", 0)) if ours else 0,
                failed=int(report.get("failed", 0)) if ours else 0,
                refused=self._refused,
                limit=self.max_pending,
                last_error=self._own_error or self._worker_error or (report.get("last_error") if ours else None),
                last_printed_at=_parse_time(report.get("last_printed_at")) if ours else None,
                worker=self._worker_state,
                worker_pid=self._proc.pid if self._proc is not None else None,
                worker_restarts=self._restarts,
            )

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one runs; never starts one."""
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def job_state(self, job_id: str) -> str | None:
        """'pending', 'printed', 'failed' or 'refused' for a recent job; None when unknown."""
        with self._lock:
            seq = self._jobs.get(job_id)
            if seq is None or seq == REFUSED:
                return seq
            if seq > self._finished_through():
                return PENDING
            return FAILED if job_id in self._report.get("failed_jobs", ()) else PRINTED

    def pending_ids(self) -> list[str]:
        """Ids of the jobs still waiting in the spool, oldest first."""
        with self._lock:
            finished = self._finished_through()
        return [record.job_id for record in self.spool.records(after=finished)]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is waiting; True if that happened within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._last_seq <= self._finished_through():
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    # -- the worker process --------------------------------------------------------------

    def _worker_config(self) -> bytes:
        """The new worker's settings, with the clock when it can travel."""
        # Imported here: `python -m hardware.worker` imports the hardware package first, which must
        # not have imported hardware.worker already (runpy warns and runs a second copy).
        from hardware.worker import WorkerConfig, encode_config

        config = WorkerConfig(url=self.url, data_dir=str(self.data_dir), spool_dir=str(self.spool.directory),
                              run_id=self._run_id, clock=self._clock,
                              log_level=logging.getLogger("hardware").getEffectiveLevel(), **self._timing)
        try:
            return encode_config(config)
        except (pickle.PicklingError, TypeError, AttributeError):
            log.warning("the clock %r cannot be handed to the print worker; it stamps its status with the "
                        "system clock", self._clock)
            return encode_config(dataclasses.replace(config, clock=None))

    def _ensure_worker(self) -> None:
        """Start the worker and its watcher unless running or due to restart (caller holds the lock)."""
        if self._proc is not None or self._closing or self._worker_state == "restarting":
            return
        self._spawn()
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name=f"print-supervisor-{self.name}",
                                                daemon=True)
            self._supervisor.start()

    def _spawn(self) -> None:
        """Start a worker process and hand it its settings (caller holds the lock)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        # close_fds (the default) keeps the store's and the spool writer's locks out of the worker.
        proc = subprocess.Popen([sys.executable, "-m", "hardware.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, env=env, cwd=str(_ROOT))
        pipe = proc.stdin.fileno()
        try:
            os.write(pipe, self._worker_config())
        except OSError:
            log.warning("print worker %d exited before it got its settings", proc.pid)
        # Wake-up lines must never block a request, even if the worker hangs.
        os.set_blocking(pipe, False)
        self._proc, self._pipe = proc, pipe
        self._worker_state = "running"
        self._worker_error = None
        self._started_at = time.monotonic()
        log.info("print worker %d started for %s", proc.pid, self.name)

    def _supervise(self) -> None:
        """Restart the worker, with back-off, whenever it dies while the kiosk is running."""
        delay = RESTART_INITIAL_S
        while True:
            with self._lock:
                proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            with self._lock:
                if self._closing:
                    return
                lived = time.monotonic() - self._started_at
                proc.stdin.close()
                self._proc = self._pipe = None
                self._restarts += 1
                self._worker_state = "restarting"
                self._worker_error = f"print worker stopped unexpectedly (exit status {code}); restarting"
            if lived >= RESTART_RESET_S:
                delay = RESTART_INITIAL_S
            log.error("print worker %d for %s stopped unexpectedly (exit status %s); restarting in %.1f s",
                      proc.pid, self.name, code, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)
            with self._lock:
                if self._closing:
                    return
                self._spawn()

    def close(self, timeout: float = 5.0) -> list[str]:
        """Let the worker print for up to `timeout` s, then stop it; the ids left (they stay spooled)."""
        with self._lock:
            if self._closed is not None:
                return list(self._closed)
            self._closing = True
            proc, pipe = self._proc, self._pipe
            if pipe is not None:
                self._wake(f"close {max(0.0, timeout)}\n")
        self._stop.set()
        if proc is not None:
            proc.stdin.close()  # end of input: a worker that missed "close" stops too
            try:
                proc.wait(timeout + CLOSE_GRACE_S)
            except subprocess.TimeoutExpired:
                log.error("print worker %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait()
        if self._supervisor is not None:
            self._supervisor.join()
        with self._lock:
            self._proc = self._pipe = None
            self._worker_state = "stopped"
        self._closed = self.pending_ids()
        try:
            self.spool.sync()
        finally:
            self.spool.close_writer()
        if self._closed:
            log.warning("print queue %s closed with %d unprinted job(s), kept in the spool to print when the "
                        "kiosk starts again: %s", self.name, len(self._closed), _some(self._closed))
        return list(self._closed)
