"""The print spool: jobs waiting for the print worker, in append-only files on disk.

The kiosk's server process appends each job before `print_ticket` returns; the print worker
process (hardware.worker) reads the jobs in order, prints them, and records each one it finished.
What the directory holds:

    000000000001.jobs   a segment: one JSON line per job (sequence number, job id, submission time,
                        and the ticket slip or the document), named by the number of its first job
    done.log            the sequence numbers the worker finished, one per line (the last one counts)
    status.json         the worker's last report for the screens (printer state, counts), replaced
    writer.lock, worker.lock   flock(2) locks: one writing process and one worker per spool

Decisions:
- The request only appends one line (a write(2) to the page cache, which survives a kill -9 of the
  kiosk); the worker, woken by that job, fdatasyncs the segment (~0.3 ms) from its own process, so
  a power cut can lose only a job issued a moment before it (its ticket is in the store; the
  attendant reprints it). A file per job with fsync on the request path cost ~1 ms more per ticket
  (create, fsync, rename, fsync of the directory); the price here is a little bookkeeping:
  segments and torn tails.
- Sequence numbers are contiguous, assigned by the one writer, and jobs print strictly in order, so
  "jobs waiting" is the last number written minus the last one finished: no scan per request.
- A line without its newline is a job whose writer died before acknowledging it: the next writer
  truncates it. The writer starts a new segment after SEGMENT_BYTES; the worker deletes a segment
  once a newer one exists and every job in it is finished (it never touches the one being written).
- The worker records a job as done only after the transport took it: a crash in between prints that
  one job again after the restart. At least once, never lost. The done log is fdatasynced when the
  queue runs empty and at least every DONE_SYNC_S, not per job: after a power cut, at most the jobs
  of that last moment print twice.
- A ticket is stored as its slip (a dozen strings: the cheapest thing to write on the request's
  path) and laid out by the worker; other printouts as their document.
- Slips and documents are stored as JSON, never pickled: the data directory must not be a way to
  run code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import pathlib
import re
from typing import Iterator

from hardware.errors import PrintingError
from hardware.layout import Document, Line, QrCode, Rule, Spacer, TicketSlip, ticket_document

log = logging.getLogger(__name__)

FORMAT = 1
SEGMENT_BYTES = 1 << 20  # ~400 tickets
DONE_FILE, DONE_ROTATE_BYTES = "done.log", 64 * 1024
DONE_SYNC_S = 1.0
STATUS_FILE = "status.json"
_SEGMENT = re.compile(r"^(\d{12})\.jobs$")
_JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_BLOCK_TYPES = {"line": Line, "rule": Rule, "spacer": Spacer, "qr": QrCode}
_BLOCK_NAMES = {cls: name for name, cls in _BLOCK_TYPES.items()}


class SpoolBusy(PrintingError, RuntimeError):
    """Another process already writes to this spool."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One spooled job as read back; `error` says why it cannot be printed (then `document` is None)."""

    seq: int
    job_id: str
    document: Document | None
    submitted_at: dt.datetime | None
    error: str | None = None


def document_to_json(document: Document) -> dict:
    """A document as plain JSON data (block type plus the block's fields)."""
    blocks = []
    for block in document.blocks:
        fields = {f.name: getattr(block, f.name) for f in dataclasses.fields(block)}
        blocks.append({"type": _BLOCK_NAMES[type(block)], **fields})
    return {"title": document.title, "blocks": blocks}


def document_from_json(data: dict) -> Document:
    """The document back from document_to_json's data; the blocks validate themselves again."""
    blocks = []
    for raw in data["blocks"]:
        fields = dict(raw)
        kind = fields.pop("type")
        if kind not in _BLOCK_TYPES:
            raise ValueError(f"unknown document block type {kind!r}")
        blocks.append(_BLOCK_TYPES[kind](**fields))
    return Document(tuple(blocks), title=data["title"])


def encode_record(seq: int, job_id: str, item: Document | TicketSlip, submitted_at: dt.datetime) -> bytes:
    """One job (a ticket's slip or any document) as its spool line."""
    record = {"seq": seq, "job": job_id, "format": FORMAT, "submitted_at": submitted_at.isoformat()}
    if isinstance(item, TicketSlip):
        record["slip"] = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    else:
        record["document"] = document_to_json(item)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_record(line: bytes) -> Record:
    """A spool line back as a Record; ValueError when not even its number and id can be read."""
    data = json.loads(line)
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or not isinstance(data.get("job"), str):
        raise ValueError("not a spooled job")
    seq, job_id = data["seq"], data["job"]
    try:
        if data.get("format") != FORMAT:
            raise ValueError(f"spool format {data.get('format')!r}, expected {FORMAT}")
        if "slip" in data:
            document = ticket_document(TicketSlip(**data["slip"]))
        else:
            document = document_from_json(data["document"])
        submitted = data.get("submitted_at")
        return Record(seq, job_id, document, dt.datetime.fromisoformat(submitted) if submitted else None)
    except (KeyError, TypeError, ValueError) as exc:
        return Record(seq, job_id, None, None, f"{type(exc).__name__}: {exc}")


def _fsync_dir(directory: pathlib.Path) -> None:
    """Make a created, renamed or removed name in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line(data: bytes) -> bytes | None:
    """The last complete line of a segment's bytes."""
    end = data.rfind(b"\n")
    if end < 0:
        return None
    return data[data.rfind(b"\n", 0, end) + 1:end]


class Spool:
    """A spool directory: the server process appends jobs, the worker process reads and finishes them."""

    def __init__(self, directory: pathlib.Path | str, *, segment_bytes: int = SEGMENT_BYTES):
        """Name the directory; nothing is created until a writer or worker opens it."""
        self.directory = pathlib.Path(directory)
        self.segment_bytes = segment_bytes
        self._writer_lock: int | None = None
        self._worker_lock: int | None = None
        self._segment_fd: int | None = None
        self._segment_size = 0
        self._done_fd: int | None = None

    # -- both sides ----------------------------------------------------------------------

    def segments(self) -> list[tuple[int, pathlib.Path]]:
        """(first sequence number, path) of every segment, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), self.directory / name) for name in names if (m := _SEGMENT.match(name))]
        found.sort()
        return found

    def finished_through(self) -> int:
        """The last sequence number the worker finished, from its durable log (0 when none)."""
        try:
            data = (self.directory / DONE_FILE).read_bytes()
        except FileNotFoundError:
            data = b""
        line = _last_line(data)
        if line and line.isdigit():
            return int(line)
        segments = self.segments()
        return segments[0][0] - 1 if segments else 0

    def records(self, after: int) -> Iterator[Record]:
        """Every complete job with a sequence number above `after`, in order (unreadable lines skipped)."""
        for _, path in self.segments():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # finished and deleted by the worker meanwhile
            for line in data.split(b"\n")[:-1]:
                try:
                    record = decode_record(line)
                except ValueError:
                    continue
                if record.seq > after:
                    yield record

    def read_status(self) -> dict | None:
        """The worker's last report, or None when there is none (or it cannot be read)."""
        try:
            data = json.loads((self.directory / STATUS_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _lock(self, name: str, *, wait: bool) -> int | None:
        """Take an exclusive flock on a lock file: its descriptor, or None when busy and not waiting."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- the server's side ---------------------------------------------------------------

    def open_writer(self) -> int:
        """Become the spool's only writer, repair a torn tail; returns the last sequence number used."""
        fd = self._lock("writer.lock", wait=False)
        if fd is None:
            raise SpoolBusy(f"print spool {self.directory} is in use by another kiosk process")
        self._writer_lock = fd
        try:
            return self._open_newest()
        except BaseException:
            self.close_writer()
            raise

    def _open_newest(self) -> int:
        """Open the newest segment for appending; the last sequence number written so far."""
        last = self.finished_through()
        segments = self.segments()
        if not segments:
            return last
        first, path = segments[-1]
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        if complete < len(data):
            # Its writer died mid-line, before acknowledging the job: it never existed.
            log.warning("print spool %s: dropping %d bytes of a job that was never acknowledged",
                        path.name, len(data) - complete)
            os.ftruncate(fd, complete)
            os.fsync(fd)
        self._segment_fd, self._segment_size = fd, complete
        line = _last_line(data[:complete])
        if line is None:
            return max(last, first - 1)
        try:
            return max(last, decode_record(line).seq)
        except ValueError:
            # An unreadable last line: count by lines, as numbers are contiguous within a segment.
            return max(last, first + data[:complete].count(b"\n") - 1)

    def close_writer(self) -> None:
        """Let another process write to the spool."""
        for name in ("_segment_fd", "_writer_lock"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                os.close(fd)

    def append(self, seq: int, job_id: str, item: Document | TicketSlip, submitted_at: dt.datetime) -> None:
        """Write one job (a slip or a document) with a single write(2); the caller numbers jobs contiguously.

        The worker makes it durable (SpoolReader.read); `sync` does it here.
        """
        if self._writer_lock is None:
            raise RuntimeError("open_writer() first")
        if not _JOB_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} has characters a spool line does not allow")
        line = encode_record(seq, job_id, item, submitted_at)
        if self._segment_fd is None or self._segment_size >= self.segment_bytes:
            self._new_segment(seq)
        fd = self._segment_fd
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to the print spool ({written} of {len(line)} bytes)")
        except OSError:
            # Leave no partial line for the worker: the job was not spooled.
            os.ftruncate(fd, self._segment_size)
            raise
        self._segment_size += len(line)

    def sync(self) -> None:
        """Make every job written so far durable (the writer does this when it closes)."""
        if self._segment_fd is not None:
            os.fdatasync(self._segment_fd)

    def _new_segment(self, seq: int) -> None:
        """Start the segment whose first job is `seq` (durably named before anything goes in it)."""
        path = self.directory / f"{seq:012d}.jobs"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        if self._segment_fd is not None:
            os.fdatasync(self._segment_fd)  # the worker may have moved on before syncing its end
            os.close(self._segment_fd)
        self._segment_fd, self._segment_size = fd, 0

    # -- the worker's side ---------------------------------------------------------------

    def lock_worker(self) -> None:
        """Become the spool's only worker, waiting while an earlier worker still finishes a job."""
        self._worker_lock = self._lock("worker.lock", wait=True)

    def reader(self, after: int) -> "SpoolReader":
        """Follow the spool from just after sequence number `after`."""
        return SpoolReader(self, after)

    def mark_done(self, seq: int, *, sync: bool = True) -> None:
        """Record that every job up to `seq` is finished (printed or failed for good); durably with `sync`."""
        if self._done_fd is None:
            self._done_fd = os.open(self.directory / DONE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                    0o600)
        os.write(self._done_fd, b"%d\n" % seq)
        if sync:
            os.fdatasync(self._done_fd)
        if os.fstat(self._done_fd).st_size >= DONE_ROTATE_BYTES:
            self._rotate_done(seq)

    def sync_done(self) -> None:
        """Make the done records written without `sync` durable."""
        if self._done_fd is not None:
            os.fdatasync(self._done_fd)

    def _rotate_done(self, seq: int) -> None:
        """Replace the done log by its last line (temp file, fsync, rename, fsync of the directory)."""
        tmp = self.directory / f".{DONE_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"%d\n" % seq)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / DONE_FILE)
        _fsync_dir(self.directory)
        os.close(self._done_fd)
        self._done_fd = None

    def prune(self, finished_through: int) -> None:
        """Delete the segments whose jobs are all finished, never the newest (the writer appends to it)."""
        segments = self.segments()
        removed = False
        for (_, path), (next_first, _) in zip(segments, segments[1:]):
            if next_first - 1 > finished_through:
                break
            path.unlink(missing_ok=True)
            removed = True
        if removed:
            _fsync_dir(self.directory)

    def write_status(self, status: dict) -> None:
        """Replace the status report atomically; not fsynced: the next worker rewrites it anyway."""
        tmp = self.directory / f".{STATUS_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # owner-only, as all data
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(status, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        os.replace(tmp, self.directory / STATUS_FILE)

    def close_worker(self) -> None:
        """Release the done log and the worker's lock."""
        for name in ("_done_fd", "_worker_lock"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                os.close(fd)


class SpoolReader:
    """The worker's cursor: reads the jobs appended since the last call, across segments, in order."""

    def __init__(self, spool: Spool, after: int):
        """Start just after sequence number `after`."""
        self.spool = spool
        self.after = after
        self._first: int | None = None
        self._file = None
        self._partial = b""

    def read(self) -> list[Record]:
        """The complete jobs appended since the last call (a line still being written waits).

        What it returns is durable: the writer only wrote it, the reader fdatasyncs it.
        """
        found: list[Record] = []
        while True:
            if self._file is None and not self._open_next():
                return found
            before = len(found)
            self._take(self._file.read(), found)
            newer = [first for first, _ in self.spool.segments() if first > self._first]
            if not newer:
                if len(found) > before:
                    os.fdatasync(self._file.fileno())
                return found
            # The writer has moved on, so this segment is final: read what it appended meanwhile.
            self._take(self._file.read(), found)
            if len(found) > before:
                os.fdatasync(self._file.fileno())
            if self._partial:
                log.warning("print spool segment %012d ends in %d bytes of an unacknowledged job; skipped",
                            self._first, len(self._partial))
            self._file.close()
            self._file, self._partial = None, b""

    def _open_next(self) -> bool:
        """Open the segment holding the job after `after` at first, then each newer one in turn."""
        segments = self.spool.segments()
        if self._first is None:
            holding = [s for s in segments if s[0] <= self.after + 1]
            choice = holding[-1] if holding else (segments[0] if segments else None)
        else:
            choice = next((s for s in segments if s[0] > self._first), None)
        if choice is None:
            return False
        try:
            self._file = open(choice[1], "rb")
        except FileNotFoundError:
            return False
        self._first = choice[0]
        return True

    def _take(self, data: bytes, found: list[Record]) -> None:
        """Split new bytes into lines; keep an unfinished last line for the next read."""
        if not data:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                record = decode_record(line)
            except ValueError as exc:
                log.error("print spool segment %012d holds an unreadable line (%s); skipped", self._first, exc)
                continue
            if record.seq > self.after:
                found.append(record)
                self.after = record.seq

    def close(self) -> None:
        """Close the open segment."""
        if self._file is not None:
            self._file.close()
            self._file = None
