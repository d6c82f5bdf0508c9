"""Transports: hand a job's bytes (or image) to a printer and report the printer's status.

Every transport has the same two operations. `send(job)` either delivers the whole job and returns
the status it saw, or raises PrinterUnavailable (the job stays queued and is retried); any other
exception means the job itself cannot be printed. `status()` never raises. Both are called only
from the print worker thread, and every wait on a device is bounded by a timeout.
"""

from __future__ import annotations

import abc
import datetime as dt
import errno
import fcntl
import logging
import os
import pathlib
import select
import socket
import struct
import time
from typing import Callable

from hardware.errors import PrinterUnavailable
from hardware.status import PrinterState, PrinterStatus, query_bytes, read_status, status

log = logging.getLogger(__name__)

# Slowest rate a working printer takes data at, to bound a send: 20 KB/s is a 9600-baud line
# with room to spare for network and USB printers that print while receiving.
MIN_BYTES_PER_S = 20_000
_NO_STATUS = status(PrinterState.UNKNOWN, "status queries are turned off for this printer")


def _utcnow() -> dt.datetime:
    """Wall time for file names when no clock is given."""
    return dt.datetime.now(dt.timezone.utc)


class Transport(abc.ABC):
    """One way of reaching a printer."""

    kind = "abstract"
    needs_bytes = True

    @abc.abstractmethod
    def send(self, job) -> PrinterStatus:
        """Deliver the whole job, or raise PrinterUnavailable."""

    @abc.abstractmethod
    def status(self) -> PrinterStatus:
        """Ask the printer how it is; never raises."""

    def spooled(self) -> int:
        """Jobs accepted by a spooler between us and the printer but not printed yet."""
        return 0

    def close(self) -> None:
        """Release the device, if one is held open."""


def _unavailable(state: PrinterState, detail: str) -> PrinterUnavailable:
    """An exception that keeps the job queued, with the status to show."""
    return PrinterUnavailable(status(state, detail))


class NetworkTransport(Transport):
    """A network printer on a raw TCP port (9100), status by DLE EOT on the same connection."""

    kind = "tcp"

    def __init__(self, host: str, port: int = 9100, *, timeout: float = 3.0, check_status: bool = True):
        """Where the printer is and how long to wait for it at most, per step."""
        self.host, self.port, self.timeout, self.check_status = host, port, timeout, check_status
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _connect(self) -> socket.socket:
        """Open a TCP connection within the timeout."""
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError:
            raise _unavailable(PrinterState.OFFLINE, f"connection refused by {self.where}: printer off or restarting") from None
        except (socket.timeout, TimeoutError):
            raise _unavailable(PrinterState.OFFLINE, f"no answer from {self.where} within {self.timeout:g} s") from None
        except OSError as exc:
            raise _unavailable(PrinterState.OFFLINE, f"cannot reach {self.where}: {exc.strerror or exc}") from None

    def _probe(self, sock: socket.socket) -> PrinterStatus:
        """Read the printer's state over an open connection."""

        def ask(n: int) -> bytes:
            """Send DLE EOT n and wait for its one-byte reply."""
            sock.sendall(query_bytes(n))
            reply = sock.recv(1)
            if not reply:
                raise ConnectionResetError("printer closed the connection")
            return reply

        try:
            return read_status(ask)
        except (socket.timeout, TimeoutError):
            raise _unavailable(
                PrinterState.OFFLINE,
                f"{self.where} accepted the connection but did not answer the status query within {self.timeout:g} s",
            ) from None
        except OSError as exc:
            raise _unavailable(PrinterState.OFFLINE, f"connection to {self.where} lost: {exc.strerror or exc}") from None

    def status(self) -> PrinterStatus:
        """Connect and ask."""
        if not self.check_status:
            return _NO_STATUS
        try:
            with self._connect() as sock:
                return self._probe(sock)
        except PrinterUnavailable as exc:
            return exc.status

    def send(self, job) -> PrinterStatus:
        """Check the printer can print, send the job, then wait for it to close the connection."""
        data = job.data
        with self._connect() as sock:
            seen = self._probe(sock) if self.check_status else _NO_STATUS
            if not seen.state.can_print:
                raise PrinterUnavailable(seen)
            sock.settimeout(self.timeout + len(data) / MIN_BYTES_PER_S)
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                # The printer may have printed part of the job; a retry sends all of it again.
                raise _unavailable(
                    PrinterState.OFFLINE, f"sending to {self.where} failed: {exc.strerror or 'timed out'}"
                ) from None
            # Like CUPS' socket backend, wait for the printer to close: closing first with
            # unread bytes would reset the connection and could drop the end of the job.
            deadline = time.monotonic() + self.timeout
            try:
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    if not sock.recv(64):
                        break
            except OSError:
                log.debug("printer %s kept the connection open after the job", self.where)
        return seen


class SerialTransport(Transport):
    """A serial printer through pyserial (RS-232 or a USB-serial adapter)."""

    kind = "serial"

    def __init__(self, device: str, *, baudrate: int = 9600, timeout: float = 3.0, check_status: bool = True,
                 rtscts: bool = False, xonxoff: bool = False):
        """The device and line settings."""
        self.device, self.baudrate, self.timeout = device, baudrate, timeout
        self.check_status, self.rtscts, self.xonxoff = check_status, rtscts, xonxoff

    def _open(self, write_timeout: float):
        """Open the port, or raise PrinterUnavailable."""
        import serial

        try:
            return serial.Serial(
                port=self.device, baudrate=self.baudrate, timeout=self.timeout, write_timeout=write_timeout,
                rtscts=self.rtscts, xonxoff=self.xonxoff,
            )
        except (serial.SerialException, OSError) as exc:
            raise _unavailable(PrinterState.OFFLINE, f"cannot open serial device {self.device}: {exc}") from None

    def _probe(self, port) -> PrinterStatus:
        """Ask over the open port."""

        def ask(n: int) -> bytes:
            """Send DLE EOT n and read the one-byte reply."""
            port.reset_input_buffer()
            port.write(query_bytes(n))
            reply = port.read(1)
            if not reply:
                raise TimeoutError
            return reply

        import serial

        try:
            return read_status(ask)
        except TimeoutError:
            raise _unavailable(
                PrinterState.OFFLINE, f"no status reply on {self.device} within {self.timeout:g} s (printer off?)"
            ) from None
        except (serial.SerialException, OSError) as exc:
            raise _unavailable(PrinterState.OFFLINE, f"serial device {self.device} failed: {exc}") from None

    def status(self) -> PrinterStatus:
        """Open the port and ask."""
        if not self.check_status:
            return _NO_STATUS
        try:
            with self._open(self.timeout) as port:
                return self._probe(port)
        except PrinterUnavailable as exc:
            return exc.status

    def send(self, job) -> PrinterStatus:
        """Check, then write the whole job within the time the line speed needs."""
        import serial

        data = job.data
        # 10 bits per byte on the wire, and half as much again for the printer to keep up.
        write_timeout = self.timeout + len(data) * 10 / self.baudrate * 1.5
        with self._open(write_timeout) as port:
            seen = self._probe(port) if self.check_status else _NO_STATUS
            if not seen.state.can_print:
                raise PrinterUnavailable(seen)
            try:
                port.write(data)
            except (serial.SerialException, OSError) as exc:
                raise _unavailable(PrinterState.OFFLINE, f"writing to {self.device} failed: {exc}") from None
        return seen


class UsbTransport(Transport):
    """A USB printer through python-escpos' Usb class (pyusb), ids and endpoints configurable."""

    kind = "usb"

    def __init__(self, vendor_id: int, product_id: int, *, in_ep: int = 0x82, out_ep: int = 0x01,
                 timeout: float = 3.0, check_status: bool = True):
        """The device ids, endpoints and per-transfer timeout."""
        self.vendor_id, self.product_id, self.in_ep, self.out_ep = vendor_id, product_id, in_ep, out_ep
        self.timeout, self.check_status = timeout, check_status
        self.where = f"{vendor_id:04x}:{product_id:04x}"
        self._printer = None

    def _device(self):
        """The open device; opening resets it, so it is kept open between jobs."""
        if self._printer is not None:
            return self._printer
        try:
            from escpos.printer import Usb

            printer = Usb(self.vendor_id, self.product_id, timeout=int(self.timeout * 1000),
                          in_ep=self.in_ep, out_ep=self.out_ep)
            printer.open()
        except Exception as exc:
            # DeviceNotFoundError, pyusb's NoBackendError/USBError, or no pyusb: all mean
            # "cannot print on this device now"; the message says which.
            detail = str(exc).replace("\n", " ").strip() or type(exc).__name__
            raise _unavailable(PrinterState.OFFLINE, f"USB printer {self.where} unavailable: {detail}") from None
        self._printer = printer
        return printer

    def _fail(self, exc: Exception) -> PrinterUnavailable:
        """Forget the device after a transfer error so the next try opens it afresh."""
        self.close()
        return _unavailable(PrinterState.OFFLINE, f"USB printer {self.where} failed: {exc}")

    def _probe(self, printer) -> PrinterStatus:
        """DLE EOT over the bulk endpoints."""
        try:
            return read_status(lambda n: bytes(printer.query_status(query_bytes(n))))
        except Exception as exc:
            raise self._fail(exc) from None

    def status(self) -> PrinterStatus:
        """Open (if needed) and ask."""
        if not self.check_status:
            return _NO_STATUS
        try:
            return self._probe(self._device())
        except PrinterUnavailable as exc:
            return exc.status

    def send(self, job) -> PrinterStatus:
        """Check, then write the job to the OUT endpoint."""
        data = job.data
        printer = self._device()
        seen = self._probe(printer) if self.check_status else _NO_STATUS
        if not seen.state.can_print:
            raise PrinterUnavailable(seen)
        try:
            # python-escpos has no public call for raw bytes; _raw is its documented extension point.
            printer._raw(data)
        except Exception as exc:
            raise self._fail(exc) from None
        return seen

    def close(self) -> None:
        """Release the USB interface."""
        printer, self._printer = self._printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception:
                log.debug("closing USB printer %s failed", self.where, exc_info=True)


# Linux printer-port ioctl (usblp and parport lp): read the IEEE 1284 status lines.
LPGETSTATUS = 0x060B
_LP_NOT_ERROR, _LP_SELECTED, _LP_PAPER_OUT = 0x08, 0x10, 0x20


def lp_status(value: int) -> PrinterStatus:
    """Interpret the status byte of LPGETSTATUS."""
    if value & _LP_PAPER_OUT:
        return status(PrinterState.PAPER_OUT, "paper out")
    if not value & _LP_SELECTED:
        return status(PrinterState.OFFLINE, "printer is offline")
    if not value & _LP_NOT_ERROR:
        return status(PrinterState.ERROR, "printer reports an error")
    return status(PrinterState.ONLINE, "ready")


class FileTransport(Transport):
    """A device file such as /dev/usb/lp0 (kernel usblp driver: no root, no driver detach)."""

    kind = "file"

    def __init__(self, path: str, *, timeout: float = 3.0):
        """The device path and how long a write may stall."""
        self.path, self.timeout = path, timeout

    def _open(self) -> int:
        """Open the device for writing without blocking, or raise PrinterUnavailable."""
        try:
            # O_APPEND: a plain file used as a capture accumulates jobs instead of overwriting them.
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _unavailable(PrinterState.OFFLINE, f"{self.path} is not present (printer unplugged or off)") from None
        except PermissionError:
            raise _unavailable(
                PrinterState.ERROR, f"no permission to write {self.path} (add the kiosk user to group lp)"
            ) from None
        except OSError as exc:
            raise _unavailable(PrinterState.OFFLINE, f"cannot open {self.path}: {exc.strerror}") from None

    def _read_lines(self, fd: int) -> PrinterStatus:
        """The printer-port status lines, or unknown where the file has none."""
        try:
            value = struct.unpack("i", fcntl.ioctl(fd, LPGETSTATUS, struct.pack("i", 0)))[0]
        except OSError:
            return status(PrinterState.UNKNOWN, f"{self.path} does not report printer status")
        return lp_status(value)

    def status(self) -> PrinterStatus:
        """Open the device and read its status lines."""
        try:
            fd = self._open()
        except PrinterUnavailable as exc:
            return exc.status
        try:
            return self._read_lines(fd)
        finally:
            os.close(fd)

    def send(self, job) -> PrinterStatus:
        """Write the whole job, waiting at most the timeout (plus transfer time) for the device."""
        data = memoryview(job.data)
        fd = self._open()
        try:
            seen = self._read_lines(fd)
            if not seen.state.can_print:
                raise PrinterUnavailable(seen)
            deadline = time.monotonic() + self.timeout + len(data) / MIN_BYTES_PER_S
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _unavailable(PrinterState.OFFLINE, f"{self.path} stopped taking data (printer busy or out of paper?)")
                select.select([], [fd], [], left)
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue
                except OSError as exc:
                    state = PrinterState.PAPER_OUT if exc.errno == errno.ENOSPC else PrinterState.OFFLINE
                    raise _unavailable(state, f"writing {self.path} failed: {exc.strerror}") from None
        finally:
            os.close(fd)
        return seen


# IPP printer-state-reasons keywords (RFC 8011 and CUPS), without their -report/-warning/-error suffix.
_PAPER_OUT_REASONS = ("media-empty", "media-needed")
_UNREACHABLE_HINTS = ("may not exist", "unavailable", "not responding", "unable to connect", "unable to open",
                      "is busy", "offline", "not connected")
_OFFLINE_REASONS = ("offline", "connecting-to-device", "shutdown", "timed-out", "door-open", "cover-open", "paused")


def ipp_status(attrs: dict) -> PrinterStatus:
    """Map IPP printer-state / printer-state-reasons / printer-state-message to a PrinterState."""
    state = attrs.get("printer-state")
    reasons = attrs.get("printer-state-reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    reasons = [r for r in reasons if r and r != "none"]
    message = (attrs.get("printer-state-message") or "").strip()

    def detail(text: str) -> str:
        """The CUPS message, when it adds something."""
        return f"{text}: {message}" if message else text

    bases = [r.rsplit("-", 1)[0] if r.endswith(("-report", "-warning", "-error")) else r for r in reasons]
    if any(b in _PAPER_OUT_REASONS for b in bases):
        return status(PrinterState.PAPER_OUT, detail("paper out"))
    if any(b in ("door-open", "cover-open") for b in bases):
        return status(PrinterState.OFFLINE, detail("cover open"))
    if any(b in _OFFLINE_REASONS for b in bases):
        return status(PrinterState.OFFLINE, detail(f"printer unreachable ({', '.join(reasons)})"))
    if state == 5:
        return status(PrinterState.OFFLINE, detail("queue stopped in CUPS (run cupsenable)"))
    if not attrs.get("printer-is-accepting-jobs", True):
        return status(PrinterState.ERROR, detail("queue rejects jobs in CUPS (run cupsaccept)"))
    errors = [r for r in reasons if r.endswith("-error")]
    if errors:
        return status(PrinterState.ERROR, detail(", ".join(errors)))
    if any(b == "media-low" for b in bases):
        return status(PrinterState.PAPER_LOW, detail("paper low"))
    if state == 4 and any(hint in message.lower() for hint in _UNREACHABLE_HINTS):
        # CUPS' socket and usb backends report an unreachable printer only in the message.
        return status(PrinterState.OFFLINE, detail("printer unreachable"))
    if state in (3, 4):
        return status(PrinterState.ONLINE, "ready" if state == 3 else "printing")
    return status(PrinterState.UNKNOWN, detail(f"unexpected printer-state {state!r}"))


class CupsTransport(Transport):
    """A raw CUPS queue through pycups: CUPS spools and retries; status comes from IPP."""

    kind = "cups"
    _ATTRS = ["printer-state", "printer-state-reasons", "printer-state-message", "printer-is-accepting-jobs"]

    def __init__(self, queue: str, *, host: str | None = None, port: int | None = None):
        """The queue name and, for a remote or private cupsd, its host and port."""
        self.queue, self.host, self.port = queue, host, port
        self.where = f"{host}:{port or 631}" if host else "the local CUPS server"

    def _connection(self):
        """A new connection (pycups connections are not shared between threads)."""
        import cups

        try:
            if self.host:
                # libcups looks queues up through the thread's default server whatever the
                # connection says, so point this (worker) thread's default at the server too.
                cups.setServer(self.host)
                cups.setPort(self.port or 631)
                return cups.Connection(host=self.host, port=self.port or 631)
            return cups.Connection()
        except RuntimeError as exc:
            raise _unavailable(PrinterState.OFFLINE, f"cannot reach {self.where}: {exc}") from None

    def _attributes(self, conn) -> dict:
        """The queue's state attributes."""
        import cups

        try:
            return conn.getPrinterAttributes(self.queue, requested_attributes=self._ATTRS)
        except cups.IPPError as exc:
            code, message = exc.args if len(exc.args) == 2 else (None, str(exc))
            if code == cups.IPP_NOT_FOUND:
                raise _unavailable(PrinterState.ERROR, f"{self.where} has no queue named {self.queue!r}") from None
            raise _unavailable(PrinterState.ERROR, f"{self.where} refused the status request: {message}") from None
        except RuntimeError as exc:
            raise _unavailable(PrinterState.OFFLINE, f"lost {self.where}: {exc}") from None

    def status(self) -> PrinterStatus:
        """Ask CUPS about the queue (never python-escpos' DLE EOT through CUPS: it is meaningless)."""
        try:
            return ipp_status(self._attributes(self._connection()))
        except PrinterUnavailable as exc:
            return exc.status

    def spooled(self) -> int:
        """Jobs of this queue that CUPS holds and has not finished."""
        try:
            conn = self._connection()
            jobs = conn.getJobs(which_jobs="not-completed", requested_attributes=["job-id", "job-printer-uri"])
        except Exception:
            # Only a count for the screens; status() already reports an unreachable server.
            log.debug("could not count CUPS jobs of %s", self.queue, exc_info=True)
            return 0
        suffix = f"/printers/{self.queue}"
        return sum(1 for j in jobs.values() if str(j.get("job-printer-uri", "")).endswith(suffix))

    def send(self, job) -> PrinterStatus:
        """Hand the bytes to CUPS as one raw job; from then on CUPS owns delivery and retries."""
        import cups

        data = job.data
        conn = self._connection()
        attrs = self._attributes(conn)
        if not attrs.get("printer-is-accepting-jobs", True):
            raise _unavailable(PrinterState.ERROR, f"queue {self.queue!r} rejects jobs (run cupsaccept {self.queue})")
        cups_job = None
        try:
            cups_job = conn.createJob(self.queue, job.title, {})
            conn.startDocument(self.queue, cups_job, job.title, "application/vnd.cups-raw", 1)
            conn.writeRequestData(data, len(data))
            conn.finishDocument(self.queue)
        except (cups.IPPError, cups.HTTPError, RuntimeError) as exc:
            if cups_job is not None:
                # A half-submitted job must not print later beside the retried one.
                try:
                    conn.cancelJob(cups_job, purge_job=True)
                except Exception:
                    log.warning("could not cancel incomplete CUPS job %s on %s", cups_job, self.queue)
            raise _unavailable(PrinterState.ERROR, f"{self.where} did not take the job: {exc}") from None
        return ipp_status(attrs)


class PreviewTransport(Transport):
    """No printer: each job is saved as a PNG and a PDF under the data directory."""

    kind = "preview"
    needs_bytes = False

    def __init__(self, directory: pathlib.Path, *, keep: int = 1000, now: Callable[[], dt.datetime] | None = None):
        """Where to write, how many jobs to keep, and the clock that names the files."""
        self.directory = pathlib.Path(directory)
        self.keep = keep
        self.now = now or _utcnow

    def paths(self, job, moment: dt.datetime) -> tuple[pathlib.Path, pathlib.Path]:
        """The PNG and PDF paths of a job."""
        stem = f"{moment.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{job.job_id}"
        return self.directory / f"{stem}.png", self.directory / f"{stem}.pdf"

    def status(self) -> PrinterStatus:
        """Online while the directory can be written."""
        probe = self.directory if self.directory.exists() else self.directory.parent
        if os.access(probe, os.W_OK | os.X_OK):
            return status(PrinterState.ONLINE, f"preview: tickets are saved as PNG and PDF in {self.directory.name}/")
        return status(PrinterState.ERROR, f"preview directory {self.directory} is not writable")

    def send(self, job) -> PrinterStatus:
        """Write both files atomically (temp file, then rename), then prune old ones."""
        image = job.image
        # Named by when the ticket was issued, not when the worker got to it: after a backlog or a
        # restart the files still sort, and are pruned, in the order the tickets were issued.
        png, pdf = self.paths(job, getattr(job, "submitted_at", None) or self.now())
        dpi = 180 if image.width == 512 else 203
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for path, fmt, options in ((png, "PNG", {"dpi": (dpi, dpi)}), (pdf, "PDF", {"resolution": dpi})):
                tmp = path.with_name(f".{path.name}.tmp")
                # owner-only like everything in the data directory: a receipt shows a citizen's request
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                    image.save(out, fmt, **options)
                os.replace(tmp, path)
        except OSError as exc:
            raise _unavailable(PrinterState.ERROR, f"cannot write preview files: {exc.strerror or exc}") from None
        self._prune()
        return status(PrinterState.ONLINE, "preview saved")

    def _prune(self) -> None:
        """Keep the newest `keep` jobs; names start with the UTC time, so they sort by age."""
        try:
            pngs = sorted(self.directory.glob("*.png"))
        except OSError:
            return
        for old in pngs[: max(0, len(pngs) - self.keep)]:
            for path in (old, old.with_suffix(".pdf")):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    log.warning("could not remove old preview %s", path.name)
