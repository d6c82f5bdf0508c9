"""The kiosk's printer: what the app calls to print tickets, see printer status and reprint.

The app stores a ticket first, then calls `print_ticket`, which writes the job to the durable print
spool and returns its id at once; a print worker process (hardware.worker) renders, encodes and
sends it, retrying while the printer is offline or out of paper. Rendering never runs in the
server process, and nothing here waits on the printer or raises because of it.
"""

from __future__ import annotations

import collections
import logging
import pathlib
import tempfile
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from hardware import Document, ShapingUnavailable, TicketSlip, check_shaping
from hardware.samples import sample_slip
from hardware.spooler import DEFAULT_MAX_PENDING, Spooler
from kiosk.clock import SystemClock, iso

log = logging.getLogger(__name__)

# Slips kept for reprinting from the attendant console, most recent last.
REPRINT_HISTORY = 500
# print-test waits at most this long beyond --wait for the worker's first look at the printer.
FIRST_CHECK_S = 10.0


class KioskPrinter:
    """One configured printer with its spool and print worker."""

    def __init__(self, queue: Spooler, display_url: str):
        """Wrap a spooler; use make_printer() to build one from a printer URL."""
        self._queue = queue
        self.url = display_url
        self._slips: collections.OrderedDict[str, TicketSlip] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        """The transport kind: preview, tcp, usb, serial, file or cups."""
        return self._queue.kind

    def print_ticket(self, slip: TicketSlip) -> str:
        """Spool a ticket for printing and return its job id without waiting for the printer.

        When the spool is full the job is refused (job_state "refused", logged and counted in the
        status) and the id is still returned: the ticket is stored and on screen already.
        """
        if not isinstance(slip, TicketSlip):
            raise TypeError(f"print_ticket needs a hardware.TicketSlip, not {type(slip).__name__}")
        job_id = self._queue.submit(slip)
        with self._lock:
            self._slips[job_id] = slip
            while len(self._slips) > REPRINT_HISTORY:
                self._slips.popitem(last=False)
        return job_id

    def print_document(self, document: Document) -> str:
        """Queue any laid-out document (a receipt, a report slip) and return its job id at once."""
        if not isinstance(document, Document):
            raise TypeError(f"print_document needs a hardware.Document, not {type(document).__name__}")
        return self._queue.submit(document)

    def reprint(self, job_id_or_slip: str | TicketSlip) -> str:
        """Print a recent job's ticket again (by job id) or a given slip; returns the new job id."""
        if isinstance(job_id_or_slip, TicketSlip):
            return self.print_ticket(job_id_or_slip)
        with self._lock:
            slip = self._slips.get(job_id_or_slip)
        if slip is None:
            raise KeyError(
                f"no recent print job {job_id_or_slip!r} to reprint (only the last {REPRINT_HISTORY} are kept); "
                "reprint from the ticket instead"
            )
        return self.print_ticket(slip)

    def job_state(self, job_id: str) -> str | None:
        """'pending', 'printed', 'failed' or 'refused' for a recent job, None when unknown."""
        return self._queue.job_state(job_id)

    def status(self) -> dict:
        """Last known printer status, spool counts and the worker, for the attendant and supervisor screens."""
        snap = self._queue.snapshot()
        checked_at = snap.printer.checked_at
        return {
            "state": snap.printer.state.value,
            "detail": snap.printer.detail,
            "pending": snap.pending + snap.spooled,
            "printed": snap.printed,
            "failed": snap.failed,
            "refused": snap.refused,
            "limit": snap.limit,
            "full": snap.full,
            "last_error": snap.last_error,
            "checked_at": iso(checked_at) if checked_at else None,
            "last_printed_at": iso(snap.last_printed_at) if snap.last_printed_at else None,
            "worker": snap.worker,
            "worker_pid": snap.worker_pid,
            "worker_restarts": snap.worker_restarts,
            "url": self.url,
            "kind": self.kind,
        }

    @property
    def worker_pid(self) -> int | None:
        """The print worker's process id while it runs (logs, tests that kill it)."""
        return self._queue.worker_pid

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every spooled job has been handed to the printer (tests, print-test command)."""
        return self._queue.wait_idle(timeout)

    def close(self, timeout: float = 5.0) -> list[str]:
        """Stop the worker after letting it print for up to `timeout` s.

        Returns the ids of the jobs left unprinted; they are logged and stay in the spool, so they
        print when a printer is made on the same data directory again (the kiosk's next start).
        """
        return self._queue.close(timeout)


def make_printer(url: str | None, data_dir: pathlib.Path, *, clock=None, retry_initial_s: float = 0.5,
                 retry_max_s: float = 30.0, poll_interval_s: float = 30.0, max_pending: int = DEFAULT_MAX_PENDING,
                 spool_dir: pathlib.Path | None = None) -> KioskPrinter:
    """Build the printer named by a printer URL (None or "" means preview://).

    Jobs are spooled in DATA_DIR/print-spool (or `spool_dir`); at most `max_pending` wait at once.
    Raises ValueError naming the bad part of an invalid URL or setting. Touches no device, and
    starts the print worker only when jobs from before a restart are waiting in the spool; otherwise
    the first job or status check starts it.
    """
    queue = Spooler(url, pathlib.Path(data_dir), spool_dir=spool_dir, clock=clock or SystemClock(),
                    max_pending=max_pending, retry_initial_s=retry_initial_s, retry_max_s=retry_max_s,
                    poll_interval_s=poll_interval_s)
    return KioskPrinter(queue, queue.name)


@click.command("print-test")
@click.option("--printer", "printer_url", default=None,
              help="Printer URL to test instead of the configured PRINTER_URL.")
@click.option("--lang", type=click.Choice(["ar", "ckb", "en"]), default="ckb", show_default=True,
              help="Language of the sample ticket.")
@click.option("--wait", "wait_s", type=float, default=15.0, show_default=True,
              help="Seconds to wait for the ticket to reach the printer.")
@with_appcontext
def print_test_command(printer_url: str | None, lang: str, wait_s: float) -> None:
    """Print a sample ticket through the printer and report the printer's status."""
    url = printer_url if printer_url is not None else current_app.config.get("PRINTER_URL", "")
    if url == "off":
        raise click.ClickException("printing is switched off (PRINTER_URL=off); test a printer with --printer URL")
    data_dir = pathlib.Path(current_app.config["DATA_DIR"])
    try:
        check_shaping()
    except ShapingUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    # A spool of its own: the test ticket must neither wait behind nor print among the kiosk's
    # tickets, and must not be left behind to print at the kiosk's next start.
    spool = tempfile.TemporaryDirectory(prefix="kiosk-print-test-")
    try:
        printer = make_printer(url, data_dir, spool_dir=pathlib.Path(spool.name))
    except ValueError as exc:
        spool.cleanup()
        raise click.BadParameter(str(exc), param_hint="--printer / PRINTER_URL") from None
    try:
        _print_sample(printer, data_dir, lang, wait_s)
    finally:
        spool.cleanup()


def _print_sample(printer: KioskPrinter, data_dir: pathlib.Path, lang: str, wait_s: float) -> None:
    """Print the sample ticket, report, and exit 1 when it did not reach the printer."""
    job_id = printer.print_ticket(sample_slip(lang, number="T-001"))
    click.echo(f"printer {printer.url}: sample {lang} ticket queued as job {job_id}")
    done = printer.wait_idle(wait_s)
    info = printer.status()
    # The worker is a process of its own: a short --wait may end before it even looked at the
    # printer, and "unknown" would tell the technician nothing.
    deadline = time.monotonic() + FIRST_CHECK_S
    while not done and info["checked_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
        info = printer.status()
    left = printer.close(timeout=0)
    click.echo(f"status: {info['state']} ({info['detail']})")
    if done and printer.job_state(job_id) == "printed":
        where = f" to {data_dir / 'prints'}" if printer.kind == "preview" else ""
        click.echo(f"sample ticket sent{where}")
        return
    reason = info["last_error"] or "the printer did not take the job in time"
    click.echo(f"sample ticket NOT printed: {reason}", err=True)
    if left:
        click.echo(f"dropped {len(left)} queued test job(s)", err=True)
    raise SystemExit(1)
