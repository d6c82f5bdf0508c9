"""The print worker: a process of its own that renders, encodes and sends the spooled jobs.

Rendering a ticket (Pillow + raqm, and PNG + PDF for the preview) costs tens of milliseconds of CPU.
In the kiosk's server process it competed with the request threads for the interpreter lock; here
it cannot. The kiosk starts it (hardware.spooler.Spooler) as

    python -m hardware.worker

and writes its settings (a pickled WorkerConfig, length first) to its standard input, which then
stays open as a lifeline: each line says a job was spooled ("<seq> <job id>") or asks the worker to
finish ("close <seconds>"). End of input means the kiosk is gone (the kernel closes the pipe even after
kill -9), so the worker stops instead of printing on as an orphan; what is left in the spool prints
when the next worker starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
from collections import deque

from hardware.job import PrintJob
from hardware.queue import FAILED, PrintQueue
from hardware.spool import DONE_SYNC_S, Record, Spool
from hardware.urls import parse_printer_url

log = logging.getLogger(__name__)

# Safety net for a wake-up line that never came (a full pipe): look at the spool this often anyway.
RESCAN_S = 5.0
# Rendering is background work: when the kiosk's request threads and the worker both want a CPU,
# the requests win (a ticket shows on screen at once; paper may follow a moment later). Measured
# with 5,000 tickets waiting and a client posting tickets back to back: at nice 0 the worker made
# ticket requests 2.3x slower, at nice 10 1.04x, at nice 19 or SCHED_IDLE 1.00x. Nice 10 keeps
# about a tenth of a busy CPU for printing, where the lower settings can starve it for as long as
# something else keeps the CPUs busy.
NICENESS = 10
# In a backlog the status file is rewritten at most this often (each rewrite is a rename the
# kiosk's own fsyncs would have to carry); a change of printer state or an empty queue at once.
STATUS_EVERY_S = 0.25
# Ids of failed jobs reported to the server, so job_state() can tell failed from printed.
FAILED_IDS_KEPT = 500
_HEADER = struct.Struct("!I")


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """What the kiosk tells its print worker at start."""

    url: str
    data_dir: str
    spool_dir: str
    run_id: str
    clock: object | None = None
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    poll_interval_s: float = 30.0
    log_level: int = logging.WARNING


def encode_config(config: WorkerConfig) -> bytes:
    """The bytes the kiosk writes to a new worker's standard input."""
    blob = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(blob)) + blob


def _read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes from a file descriptor, or EOFError."""
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("standard input ended before the print worker's settings")
        data += chunk
    return data


def read_config(fd: int) -> WorkerConfig:
    """The settings the kiosk wrote (read unbuffered: the same descriptor carries the job lines)."""
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    # Pickle from our own parent over a private pipe, never from a file.
    config = pickle.loads(_read_exactly(fd, size))
    if not isinstance(config, WorkerConfig):
        raise TypeError(f"expected a WorkerConfig, got {type(config).__name__}")
    return config


class UnreadableJob(PrintJob):
    """A spooled job that cannot be read back: it fails in its turn, never blocking the others."""

    def __init__(self, job_id: str, error: str, profile):
        """Remember why the job could not be read."""
        super().__init__(None, profile, job_id=job_id)
        self.error = error

    @property
    def title(self) -> str:
        """There is no document to take a title from."""
        return "unreadable spooled job"

    @property
    def rendered(self):
        """Nothing to render: the job fails here, like a document that cannot be laid out."""
        raise ValueError(f"spooled job cannot be read: {self.error}")


def _iso(moment: dt.datetime | None) -> str | None:
    """A time for the status file."""
    return moment.isoformat() if moment else None


class Worker:
    """Feeds the print queue from the spool, records finished jobs, reports status for the kiosk."""

    def __init__(self, config: WorkerConfig, fd: int):
        """Set up from the kiosk's settings; `fd` is the lifeline the job lines arrive on."""
        self.config = config
        self.fd = fd
        self.spool = Spool(config.spool_dir)
        self.printer = parse_printer_url(config.url)
        clock = config.clock
        self.now = clock.now if clock is not None else (lambda: dt.datetime.now(dt.timezone.utc))
        self._lock = threading.Lock()
        self._seqs: dict[str, int] = {}
        previous = self.spool.read_status() or {}
        # The same kiosk run restarting its worker continues the counts; a new run starts afresh.
        resume = previous.get("run") == config.run_id
        self._base = {key: previous.get(key) if resume else None
                      for key in ("printed", "failed", "last_error", "last_printed_at")}
        self._failed_ids: deque[str] = deque(previous.get("failed_jobs", []) if resume else [],
                                             maxlen=FAILED_IDS_KEPT)
        self._finished_through = 0
        self._synced_at = 0.0
        self._reported_state, self._reported_at = None, 0.0
        self.reader = None
        self.queue: PrintQueue | None = None

    def start(self) -> None:
        """Take the spool, open the transport and queue every job already waiting, in order."""
        self.spool.lock_worker()
        transport = self.printer.open(self.config.data_dir, now=self.now)
        self.queue = PrintQueue(transport, self.printer.profile, now=self.now,
                                retry_initial_s=self.config.retry_initial_s, retry_max_s=self.config.retry_max_s,
                                poll_interval_s=self.config.poll_interval_s, name=self.printer.display_url,
                                on_change=self._changed)
        self._finished_through = self.spool.finished_through()
        self.reader = self.spool.reader(after=self._finished_through)
        waiting = self._read()
        log.info("print worker for %s started with %d job(s) waiting", self.printer.display_url, waiting)
        self._report()

    def serve(self) -> int:
        """Follow the lifeline until the kiosk says close or goes away; the exit status."""
        pending = b""
        while True:
            ready, _, _ = select.select([self.fd], [], [], RESCAN_S)
            if not ready:
                self._read()
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                log.warning("the kiosk process is gone; the print worker stops (waiting jobs stay in the spool)")
                self._finish(0)
                return 0
            *lines, pending = (pending + chunk).split(b"\n")
            close = next((line.split() for line in lines if line.startswith(b"close")), None)
            self._read()
            if close is not None:
                self._finish(float(close[1]) if len(close) > 1 else 0.0)
                return 0

    def _read(self) -> int:
        """Queue the jobs spooled since the last look; how many."""
        records = self.reader.read()
        for record in records:
            self._enqueue(record)
        return len(records)

    def _enqueue(self, record: Record) -> None:
        """Hand one job to the print queue (an unreadable one fails in its turn)."""
        if record.error is None:
            job = PrintJob(record.document, self.printer.profile, job_id=record.job_id,
                           submitted_at=record.submitted_at)
        else:
            log.error("spooled job %s (number %d) cannot be read: %s", record.job_id, record.seq, record.error)
            job = UnreadableJob(record.job_id, record.error, self.printer.profile)
        with self._lock:
            self._seqs[record.job_id] = record.seq
        self.queue.enqueue(job)

    def _changed(self, job: PrintJob | None) -> None:
        """On the queue's thread: record a finished job, drop finished segments, then report."""
        snap = self.queue.snapshot()
        if job is not None:
            with self._lock:
                seq = self._seqs.pop(job.job_id, None)
            if seq is not None:
                try:
                    # Durable when the queue runs empty and once a second in a backlog, not per job.
                    sync = snap.pending == 0 or time.monotonic() - self._synced_at >= DONE_SYNC_S
                    self.spool.mark_done(seq, sync=sync)
                    if sync:
                        self._synced_at = time.monotonic()
                    self.spool.prune(seq)
                except OSError:
                    log.exception("could not record job %s as printed; it may print again after a restart",
                                  job.job_id)
                with self._lock:
                    self._finished_through = max(self._finished_through, seq)
            if self.queue.job_state(job.job_id) == FAILED:
                with self._lock:
                    self._failed_ids.append(job.job_id)
        if (job is None or snap.pending == 0 or snap.printer.state.value != self._reported_state
                or time.monotonic() - self._reported_at >= STATUS_EVERY_S):
            self._report(snap)

    def _report(self, snap=None) -> None:
        """Write the status the kiosk's screens read (state, counts, how far the spool is done)."""
        snap = snap or self.queue.snapshot()
        base = self._base
        with self._lock:
            status = {
                "run": self.config.run_id,
                "pid": os.getpid(),
                "state": snap.printer.state.value,
                "detail": snap.printer.detail,
                "checked_at": _iso(snap.printer.checked_at),
                "finished_through": self._finished_through,
                "printed": (base["printed"] or 0) + snap.printed,
                "failed": (base["failed"] or 0) + snap.failed,
                "spooled": snap.spooled,
                "last_error": snap.last_error or base["last_error"],
                "last_printed_at": _iso(snap.last_printed_at) or base["last_printed_at"],
                "failed_jobs": list(self._failed_ids),
            }
            try:
                self.spool.write_status(status)
            except OSError:
                log.exception("could not write the print status for the kiosk")
            self._reported_state, self._reported_at = status["state"], time.monotonic()

    def _finish(self, timeout: float) -> None:
        """Keep printing for up to `timeout` s, then stop the queue, report and let go of the spool."""
        left = self.queue.close(timeout)
        if left:
            log.info("print worker stopped with %d job(s) left in the spool", len(left))
        self._report()
        self.reader.close()
        try:
            self.spool.sync_done()
        finally:
            self.spool.close_worker()


def main() -> int:
    """Run one print worker for the kiosk that started it."""
    # Ctrl-C in a terminal reaches the whole process group: the kiosk decides when its worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    fd = sys.stdin.fileno()
    try:
        config = read_config(fd)
    except (EOFError, TypeError, pickle.UnpicklingError) as exc:
        print(f"the print worker is started by the kiosk and reads its settings from standard input: {exc}",
              file=sys.stderr)
        return 2
    # the kiosk's log settings (KIOSK_LOG_* it exported): journald-friendly, same format, own file
    from kiosk.ops.logs import setup_from_environ
    setup_from_environ(process="print-worker", level=config.log_level)
    worker = Worker(config, fd)
    worker.start()
    return worker.serve()


if __name__ == "__main__":
    # Through the importable module, so the settings unpickle to the very class isinstance checks.
    from hardware import worker

    sys.exit(worker.main())
