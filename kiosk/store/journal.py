"""Durable TinyDB: every change is appended to a journal and fsynced before the caller returns.

Layout of a store directory:

    LOCK                      flock held by the one process that may write
    snapshot.json             {"format": 2, "store_id": ID, "seq": S, "tables": {...}}, replaced atomically
    journal/<seq:012d>.jsonl  append-only segments, one line per commit:
                              <crc32 hex> {"s": seq, "at": ..., "h": hlc, "o": origin?, "c": [changes]}

A change is {"t": table, "o": "put"|"del"|"clear"|"drop", "k": key, "d": document}: "clear"
empties a table (which goes on existing), "drop" removes it. Commits are numbered one after the
other, with one exception: a restore (kiosk.usecases.backup) may start the numbering again further
on with an empty commit {"o": "restore", "b": B}, B being the last commit before it. The in-memory
TinyDB is rebuilt at start-up from the snapshot plus the journal; a torn last line (power cut mid-write) is cut off,
anything else that does not parse is reported as corruption rather than skipped. The journal
doubles as the sync change log (kiosk.store.feed), so segments are deleted only once compacted
into the snapshot *and* acknowledged by the central server.

Documents in memory are exactly what the journal holds: each written document is encoded once for
its journal line and the stored object is decoded from that text, so no caller shares an object
with the store, and a stored document is never changed in place (a write replaces it). That is
what lets a snapshot be written without the lock: `compact()` freezes the tables as they are
(writes go to an overlay meanwhile), serialises the frozen ones without the lock, and
folds the overlay back in.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import MutableMapping
from pathlib import Path
from typing import Callable, Iterator

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from kiosk.clock import SystemClock, iso
from kiosk.ids import new_ulid
from sync.files import fsync_dir, private_dir

log = logging.getLogger(__name__)

FORMAT = 2                 # snapshot format written; kiosk.store.format has the data directory's
READABLE_FORMATS = (1, 2)  # format 1 snapshots are read once, by the upgrade that rewrites them
RESTORE = "restore"        # origin of the commit that moves the numbering on after a restore
SNAPSHOT = "snapshot.json"
JOURNAL = "journal"
LOCK = "LOCK"
_MISSING = object()   # "no document (or table) here": an undo record that removes it
_GONE = object()      # an overlay's tombstone for a document deleted while a snapshot is written
_SEQ_PREFIX = re.compile(rb'\{"s":(\d+),')


class StoreError(Exception):
    """Base of the store's errors: each says what is wrong and what to do."""


class StoreLocked(StoreError):
    """Another process already has this store open for writing."""


class StoreCorrupt(StoreError):
    """The files on disk cannot be read back into a consistent state."""


class StoreFailed(StoreError):
    """A write could not be made durable; memory may be ahead of disk, so the process must restart."""


# -- line format ---------------------------------------------------------------------------------

# Compact UTF-8 JSON; NaN and infinities are refused (they are not JSON, and central must read it).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_encode = _ENCODER.encode


def frame(body: bytes) -> bytes:
    """One journal line around JSON bytes: CRC32 in hex, a space, the JSON, a newline."""
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def encode_commit(commit: dict) -> bytes:
    """One journal line for a commit given as a dict."""
    return frame(_encode(commit).encode("utf-8"))


def decode_commit(line: bytes) -> dict | None:
    """The commit in one journal line, or None when the line is torn or fails its CRC."""
    if len(line) < 11 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        commit = json.loads(body)
    except ValueError:
        return None
    return commit if isinstance(commit, dict) and isinstance(commit.get("s"), int) else None


def segment_name(first_seq: int) -> str:
    """File name of the journal segment whose first commit is `first_seq`."""
    return f"{first_seq:012d}.jsonl"


def list_segments(journal_dir: Path) -> list[tuple[int, Path]]:
    """Journal segments as (first seq, path), oldest first."""
    try:
        names = os.listdir(journal_dir)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "jsonl" and stem.isdigit() and len(stem) == 12:
            out.append((int(stem), journal_dir / name))
    out.sort()
    return out


# -- documents -----------------------------------------------------------------------------------

def clone(value):
    """A deep copy of JSON data (dicts, lists and scalars): what readers get instead of stored objects."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    return value


def _same(a, b) -> bool:
    """Equal as JSON: like ==, but 1, 1.0 and True differ (an update that changes only a type is a change)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return len(a) == len(b) and all(key in b and _same(item, b[key]) for key, item in a.items())
    if kind is list:
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def doc_key(doc_id) -> str:
    """A document id as stored: ids are strings (ULIDs), and an integer id given by a caller is kept
    as its decimal string, the way TinyDB's own JSON file keeps it, so `get(doc_id=12)` finds it."""
    if type(doc_id) is str:
        return doc_id
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        return str(doc_id)
    raise TypeError(f"a document id is a string or an integer, not {type(doc_id).__name__}")


def _change(table: str, op: str, key: str | None = None, doc_json: str = "null") -> str:
    """One change of a commit, as JSON text (a document arrives already encoded)."""
    return '{"t":%s,"o":"%s","k":%s,"d":%s}' % (_encode(table), op, _encode(key), doc_json)


class _Overlay(MutableMapping):
    """A table while a snapshot of it is being written: `base` is frozen for the snapshot writer,
    changes land in `changes` (a document, or _GONE) until `fold()` moves them back in."""

    def __init__(self, base: dict):
        """Freeze `base`: from now on nobody changes it until `fold()`."""
        self.base = base
        self.changes: dict[str, object] = {}
        self.size = len(base)

    def __getitem__(self, key):
        """The document, wherever it lives now."""
        value = self.changes.get(key, _MISSING)
        if value is _MISSING:
            return self.base[key]
        if value is _GONE:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        """The document or `default` (the common read path, kept short)."""
        value = self.changes.get(key, _MISSING)
        if value is _MISSING:
            return self.base.get(key, default)
        return default if value is _GONE else value

    def __contains__(self, key):
        """Whether a document with this id exists now."""
        value = self.changes.get(key, _MISSING)
        return key in self.base if value is _MISSING else value is not _GONE

    def __setitem__(self, key, value):
        """Insert or replace a document."""
        if key not in self:
            self.size += 1
        self.changes[key] = value

    def __delitem__(self, key):
        """Remove a document."""
        if key not in self:
            raise KeyError(key)
        self.size -= 1
        self.changes[key] = _GONE

    def __iter__(self):
        """Ids in table order: the frozen ones first, then those added since."""
        changes, base = self.changes, self.base
        for key in base:
            if changes.get(key) is not _GONE:
                yield key
        for key, value in list(changes.items()):
            if value is not _GONE and key not in base:
                yield key

    def __len__(self):
        """Number of documents now."""
        return self.size

    def fold(self, limit: int) -> bool:
        """Move up to `limit` of the oldest changes into the base (the snapshot writer is done with
        it); True once none are left. The overlay reads the same before and after."""
        changes, base = self.changes, self.base
        for key in list(itertools.islice(changes, limit)):
            value = changes.pop(key)
            if value is _GONE:
                base.pop(key, None)
            else:
                base[key] = value
        return not changes


# -- storage -------------------------------------------------------------------------------------

class _Pending:
    """Changes (JSON text) and undo records of the commit being built."""

    def __init__(self, origin: str | None):
        """Start an empty commit."""
        self.origin = origin
        self.changes: list[str] = []
        self.undo: list[tuple[str, str | None, object]] = []
        self.on_rollback: list[Callable[[], None]] = []


class JournalStorage(Storage):
    """A TinyDB storage that keeps tables in memory and makes each commit durable in a journal."""

    #: documents per encoded chunk of a snapshot: each chunk holds the interpreter for well under a
    #: millisecond, so request threads get their turn while a large snapshot is written
    snapshot_chunk = 256
    #: bytes of snapshot written between flushes to disk: a journal fsync that comes meanwhile
    #: waits behind at most this much (one flush of a 115 MB snapshot at the end held them ~50 ms)
    snapshot_flush_bytes = 1 << 20
    #: changes made during a snapshot folded back per turn of the lock
    fold_batch = 1024

    def __init__(self, directory: str | os.PathLike, *, clock=None, fsync: bool = True,
                 acked_seq: Callable[[], int] | None = None, store_id: str | None = None):
        """Open (creating if needed) the store in `directory`, taking the writer's lock; `store_id`
        (from the data directory's FORMAT.json) is written into snapshots, and a snapshot naming
        another store is refused."""
        self.directory = Path(directory)
        self.store_id = store_id
        self.snapshot_format: int | None = None
        self.journal_dir = self.directory / JOURNAL
        self.clock = clock or SystemClock()
        self.fsync = fsync
        self.acked_seq = acked_seq or (lambda: 0)
        self.lock = threading.RLock()
        self.tables: dict[str, MutableMapping] = {}
        self.seq = 0
        self.snapshot_seq = 0
        self.version = 0          # bumped on every change of memory: query caches compare it
        self.failed: str | None = None
        self._hlc = (0, 0)
        self._pending: _Pending | None = None
        self._depth = 0
        self._fd: int | None = None
        self._segment_first = 0
        self._lock_fd: int | None = None
        self._compacting = threading.Lock()
        self._closing = False
        private_dir(self.journal_dir)
        self._take_lock()
        try:
            self.recovered_torn_bytes = self._recover()
            self._open_segment()
        except BaseException:
            self._release_lock()
            raise

    # TinyDB's Storage interface: tables are live in memory; writes go through JournalTable.
    def read(self):
        """The live tables (TinyDB reads through this)."""
        return self.tables

    def write(self, data):
        """Whole-database writes are what makes stock TinyDB slow and unsafe: refuse them."""
        raise TypeError("JournalStorage is written through JournalTable (use KioskDB), not whole-file writes")

    def close(self):
        """Close the journal and release the writer's lock (a snapshot being written is abandoned)."""
        with self._compaction_turn(stop_running=True), self.lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._release_lock()

    # -- locking and recovery --------------------------------------------------------------------

    def _take_lock(self) -> None:
        """Take the exclusive writer lock, or explain who holds it."""
        path = self.directory / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"the store in {self.directory} is already open for writing by process {holder}; "
                "only one kiosk process may own a data directory (stop the other one first)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        """Give the writer lock back."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _recover(self) -> int:
        """Load the snapshot and replay the journal; return how many torn bytes were cut off."""
        snap_path = self.directory / SNAPSHOT
        if snap_path.exists():
            try:
                snap = json.loads(snap_path.read_bytes())
                if snap.get("format") not in READABLE_FORMATS:
                    raise StoreCorrupt(f"{snap_path} has format {snap.get('format')!r}; this release reads "
                                       f"formats {', '.join(map(str, READABLE_FORMATS))}")
                found_id = snap.get("store_id")
                if self.store_id and found_id and found_id != self.store_id:
                    raise StoreCorrupt(f"{snap_path} belongs to store {found_id}, not to this data directory's "
                                       f"{self.store_id}; restore the data directory from a backup")
                self.snapshot_format = snap["format"]
                self.store_id = self.store_id or found_id
                self.tables = snap["tables"]
                self.snapshot_seq = self.seq = int(snap["seq"])
                self._hlc = tuple(snap.get("hlc", (0, 0)))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreCorrupt(f"cannot read the snapshot {snap_path}: {exc}; restore it from a backup") from exc
        torn = 0
        segments = list_segments(self.journal_dir)
        for index, (first, path) in enumerate(segments):
            last_segment = index == len(segments) - 1
            if not last_segment and segments[index + 1][0] - 1 <= self.snapshot_seq:
                continue  # wholly inside the snapshot: kept only for the sync agent
            torn += self._replay_segment(first, path, last_segment)
        return torn

    def _replay_segment(self, first: int, path: Path, last_segment: bool) -> int:
        """Apply one segment's commits newer than the snapshot; cut a torn tail of the last one."""
        data = path.read_bytes()
        pos = 0
        expected = None
        while pos < len(data):
            end = data.find(b"\n", pos)
            line = data[pos:] if end < 0 else data[pos:end + 1]
            covered = _SEQ_PREFIX.match(line, 9)
            if end >= 0 and covered and int(covered.group(1)) <= self.snapshot_seq:
                # already in the snapshot: skip the (costly) decode, keep the numbering check
                seq = int(covered.group(1))
                _check_order(path, first, expected, seq)
                expected = seq + 1
                pos += len(line)
                continue
            commit = decode_commit(line)
            if commit is None:
                rest = data[pos:]
                if last_segment and (end < 0 or data.find(b"\n", end + 1) < 0):
                    # a power cut mid-append leaves at most one partial line at the very end
                    log.warning("cutting %d torn bytes off the end of %s", len(rest), path.name)
                    with open(path, "r+b") as fh:
                        fh.truncate(pos)
                        os.fsync(fh.fileno())
                    return len(rest)
                raise StoreCorrupt(
                    f"{path} is damaged at byte {pos} (not a torn last line); "
                    "run `flask --app kiosk check` and restore the data directory from a backup")
            seq = commit["s"]
            _check_order(path, first, expected, seq)
            expected = seq + 1
            if seq > self.seq:
                if seq != self.seq + 1 and not (commit.get("o") == RESTORE and commit.get("b") == self.seq):
                    raise StoreCorrupt(
                        f"commits {self.seq + 1} to {seq - 1} are missing before {path.name}; "
                        "restore the data directory from a backup")
                self._apply(commit["c"])
                self.seq = seq
                self._hlc = _parse_hlc(commit.get("h"), self._hlc)
            pos += len(line)
        return 0

    def _apply(self, changes: list[dict]) -> None:
        """Apply replayed changes to the in-memory tables."""
        for change in changes:
            op = change["o"]
            if op == "drop":
                self.tables.pop(change["t"], None)
                continue
            table = self.tables.setdefault(change["t"], {})
            if op == "put":
                table[change["k"]] = change["d"]
            elif op == "del":
                table.pop(change["k"], None)
            elif op == "clear":
                table.clear()
            else:
                raise StoreCorrupt(f"unknown change {op!r} in commit")

    def _open_segment(self) -> None:
        """Open the segment new commits are appended to."""
        segments = list_segments(self.journal_dir)
        if segments and segments[-1][0] <= self.seq + 1:
            self._segment_first, path = segments[-1]
        else:
            self._segment_first = self.seq + 1
            path = self.journal_dir / segment_name(self._segment_first)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fsync_dir(self.journal_dir)

    # -- commits ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, origin: str | None = None) -> Iterator[None]:
        """Group every change made inside into one atomic, durable commit (nesting joins the outer one)."""
        with self.lock:
            if self._depth == 0:
                self._pending = _Pending(origin)
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    pending, self._pending = self._pending, None
                    self._rollback(pending.undo)
                    self._after_rollback(pending)
                raise
            self._depth -= 1
            if self._depth == 0:
                pending, self._pending = self._pending, None
                if pending.changes:
                    try:
                        self._commit(pending)
                    except BaseException:
                        self._rollback(pending.undo)
                        self._after_rollback(pending)
                        raise

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the open transaction is rolled back (in-memory indexes follow the store).

        Outside a transaction every write commits at once or raises before anyone indexes it, so
        there is nothing to register. Taking the lock means another thread's open transaction is
        never the one registered with.
        """
        with self.lock:
            if self._pending is not None:
                self._pending.on_rollback.append(callback)

    def record(self, changes: list[str], undo: list[tuple[str, str | None, object]]) -> None:
        """Called after memory has changed: commit now, or add to the open transaction.

        `changes` are JSON texts made by `_change`; `undo` entries are (table, id, old document)
        or, for a whole table, (table, None, old table), with _MISSING for "was not there".
        """
        self.version += 1
        if self._pending is not None:
            self._pending.changes.extend(changes)
            self._pending.undo.extend(undo)
            return
        pending = _Pending(None)
        pending.changes, pending.undo = changes, undo
        try:
            self._commit(pending)
        except BaseException:
            self._rollback(undo)
            raise

    def drop(self, names: list[str] | None = None) -> None:
        """Remove tables (every table when `names` is None), durably, like any other change."""
        with self.lock:
            names = list(self.tables) if names is None else [n for n in names if n in self.tables]
            if not names:
                return
            undo = [(name, None, self.tables.pop(name)) for name in names]
            self.record([_change(name, "drop") for name in names], undo)

    def _commit(self, pending: _Pending) -> None:
        """Write one commit line and fsync it; on failure leave the file as it was."""
        if self.failed:
            raise StoreFailed(f"the store stopped accepting writes after an earlier failure: {self.failed}")
        if self._fd is None:
            raise StoreError(f"the store in {self.directory} is closed")
        now = self.clock.now()
        hlc = _next_hlc(self._hlc, int(now.timestamp() * 1000))
        # the same bytes encode_commit() makes of {"s", "at", "h", "c", "o"}, from pre-encoded changes
        body = '{"s":%d,"at":%s,"h":"%s","c":[%s]%s}' % (
            self.seq + 1, _encode(iso(now)), _format_hlc(hlc), ",".join(pending.changes),
            ',"o":' + _encode(pending.origin) if pending.origin else "")
        line = frame(body.encode("utf-8"))
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, offset)
                os.fsync(self._fd)
            except OSError as exc2:
                self.failed = f"{exc}; then {exc2}"
            log.error("journal write failed: %s", exc)
            raise StoreFailed(f"could not write the journal in {self.directory}: {exc}") from exc
        self.seq += 1
        self._hlc = hlc

    def _rollback(self, undo: list[tuple[str, str | None, object]]) -> None:
        """Put memory back as it was before a commit that did not reach the disk."""
        self.version += 1
        for table_name, key, old in reversed(undo):
            if key is None:
                if old is _MISSING:
                    self.tables.pop(table_name, None)
                else:
                    self.tables[table_name] = old
                continue
            table = self.tables.setdefault(table_name, {})
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

    @staticmethod
    def _after_rollback(pending: _Pending) -> None:
        """Tell the transaction's listeners it was undone; a failing listener never hides the cause."""
        for callback in reversed(pending.on_rollback):
            try:
                callback()
            except Exception:
                log.exception("a rollback listener failed")

    # -- compaction ------------------------------------------------------------------------------

    def compact(self) -> dict:
        """Write a new snapshot atomically, start a new segment, drop segments no one needs.

        Writers wait only while the tables are frozen and a new segment is opened (constant time),
        and while the changes made during the snapshot are folded back (time proportional to them):
        the snapshot itself is serialised without the lock, from the frozen tables.
        """
        with self._compaction_turn():
            with self.lock:
                started = time.perf_counter()
                if self._pending is not None:
                    raise StoreError("cannot compact inside a transaction")
                if self._fd is None:
                    raise StoreError(f"the store in {self.directory} is closed")
                seq, hlc = self.seq, self._hlc
                frozen = []
                for name, table in self.tables.items():
                    if isinstance(table, _Overlay):  # left by a compaction interrupted while folding
                        table.fold(len(table.changes))
                        table = table.base
                    frozen.append((name, table))
                # commits after `seq` go to a segment of their own: the snapshot covers the others
                self._start_segment(seq + 1)
                overlays = []
                for name, table in frozen:
                    self.tables[name] = overlay = _Overlay(table)
                    overlays.append((name, overlay))
                paused = [time.perf_counter() - started]
            try:
                size = self._write_snapshot(frozen, seq, hlc)
            finally:
                self._fold(overlays, paused)
            self.snapshot_seq = seq
            removed = self._trim(min(seq, self.acked_seq()))
            return {"seq": seq, "snapshot_bytes": size, "segments_removed": removed, "paused_s": max(paused)}

    @contextlib.contextmanager
    def _compaction_turn(self, *, stop_running: bool = False) -> Iterator[None]:
        """Hold the compaction slot, waiting for a running compaction (asking it to stop first with
        `stop_running`). A compaction takes the store lock again and again while it holds the slot,
        so a thread that already holds the store lock is told instead of waiting for ever."""
        if not self._compacting.acquire(blocking=False):
            if self.lock._is_owned():
                raise StoreError("a compaction is running: wait for it outside the store lock")
            if stop_running:
                self._closing = True
            self._compacting.acquire()
        try:
            yield
        finally:
            self._compacting.release()

    def _fold(self, overlays: list[tuple[str, _Overlay]], paused: list[float]) -> None:
        """Fold the changes made during a snapshot back into the tables, a batch per lock turn, and
        put the plain tables back (a table replaced meanwhile, by a clear or a drop, stays replaced)."""
        for name, overlay in overlays:
            done = False
            while not done:
                with self.lock:
                    started = time.perf_counter()
                    done = overlay.fold(self.fold_batch)
                    if done and self.tables.get(name) is overlay:
                        self.tables[name] = overlay.base
                    paused.append(time.perf_counter() - started)

    def _start_segment(self, first: int) -> None:
        """Append from now on to the segment whose first commit will be `first`."""
        fd = os.open(self.journal_dir / segment_name(first), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fsync_dir(self.journal_dir)
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment_first = fd, first

    def _write_snapshot(self, frozen: list[tuple[str, dict]], seq: int, hlc: tuple[int, int]) -> int:
        """Serialise frozen tables into snapshot.json (temp file, fsync, rename, fsync dir); its size."""
        path = self.directory / SNAPSHOT
        tmp = path.with_name(SNAPSHOT + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        out = _SnapshotFile(fd, self.snapshot_flush_bytes)
        try:
            out.write('{"format":%d,%s"seq":%d,"hlc":[%d,%d],"written_at":%s,"tables":{'
                      % (FORMAT, '"store_id":%s,' % _encode(self.store_id) if self.store_id else "", seq,
                         hlc[0], hlc[1], _encode(iso(self.clock.now()))))
            for index, (name, table) in enumerate(frozen):
                out.write(("," if index else "") + _encode(name) + ":{")
                items = iter(table.items())
                separator = ""
                while True:
                    if self._closing:
                        raise StoreError("the store was closed while a snapshot was written; the previous one stays")
                    chunk = dict(itertools.islice(items, self.snapshot_chunk))
                    if not chunk:
                        break
                    out.write(separator + _encode(chunk)[1:-1])
                    separator = ","
                    os.sched_yield()  # hand the interpreter to a waiting request between chunks
                out.write("}")
            out.write("}}")
            out.finish()
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        fsync_dir(self.directory)
        self.snapshot_format = FORMAT
        return out.size

    def _trim(self, keep_after: int) -> int:
        """Delete segments whose every commit is in the snapshot and acknowledged by central."""
        removed = 0
        segments = list_segments(self.journal_dir)
        for (first, seg_path), (next_first, _) in zip(segments, segments[1:]):
            if next_first - 1 <= keep_after:
                seg_path.unlink()
                removed += 1
        if removed:
            fsync_dir(self.journal_dir)
        return removed


class _SnapshotFile:
    """Buffered writes of a snapshot, flushed to disk a megabyte at a time."""

    def __init__(self, fd: int, flush_bytes: int):
        """Write to `fd`, flushing to disk every `flush_bytes`."""
        self.fd = fd
        self.flush_bytes = flush_bytes
        self.parts: list[bytes] = []
        self.buffered = 0
        self.size = 0

    def write(self, text: str) -> None:
        """Append text (UTF-8)."""
        data = text.encode("utf-8")
        self.parts.append(data)
        self.buffered += len(data)
        if self.buffered >= self.flush_bytes:
            self._drain()

    def _drain(self) -> None:
        """Write the buffer out and flush it to disk."""
        view = memoryview(b"".join(self.parts))
        self.parts, self.buffered = [], 0
        self.size += len(view)
        while view:
            view = view[os.write(self.fd, view):]
        os.fdatasync(self.fd)

    def finish(self) -> None:
        """Write what is left and make the whole file durable."""
        self._drain()
        os.fsync(self.fd)


def _check_order(path: Path, first: int, expected: int | None, seq: int) -> None:
    """Commits in a segment start at the segment's name and rise by one."""
    if expected is None and seq != first:
        raise StoreCorrupt(f"{path} starts at commit {seq}, but its name says {first}")
    if expected is not None and seq != expected:
        raise StoreCorrupt(f"{path} jumps from commit {expected - 1} to {seq}")


def _next_hlc(last: tuple[int, int], wall_ms: int) -> tuple[int, int]:
    """Hybrid logical clock tick: never goes back even when the wall clock does."""
    if wall_ms > last[0]:
        return (wall_ms, 0)
    return (last[0], last[1] + 1)


def _format_hlc(hlc: tuple[int, int]) -> str:
    """HLC as a fixed-width string, so string order equals clock order."""
    return f"{hlc[0]:013d}.{hlc[1]:06d}"


def _parse_hlc(text: object, default: tuple[int, int]) -> tuple[int, int]:
    """Read back `_format_hlc`; keep `default` for anything else."""
    try:
        ms, counter = str(text).split(".")
        return (int(ms), int(counter))
    except ValueError:
        return default


# -- TinyDB table --------------------------------------------------------------------------------

class _Recorder:
    """The dict TinyDB's updaters see: it hands out private copies of documents and, when the
    updater is done, works out which documents it set, changed (in place or not) or deleted."""

    def __init__(self, tables: dict, name: str):
        """Prepare an update of table `name` of the live `tables`."""
        self.tables = tables
        self.name = name
        self.existed = name in tables
        self.live = tables[name] if self.existed else {}
        self.before: dict[str, object] = {}   # id -> stored document before the update, or _MISSING
        self.cleared: object = None           # the whole table before a clear(), or _MISSING

    def _remember(self, key: str) -> None:
        """Keep the stored document as it was before this update, once."""
        if key not in self.before:
            self.before[key] = self.live.get(key, _MISSING)

    def __getitem__(self, key):
        """A private copy the updater may change in place; the stored document stays untouched."""
        key = doc_key(key)
        if key not in self.before:
            stored = self.live[key]
            self.before[key] = stored
            self.live[key] = clone(stored)
        return self.live[key]

    def get(self, key, default=None):
        """A document (a private copy) or `default`."""
        return self[key] if key in self else default

    def __setitem__(self, key, value):
        """Insert or replace a document."""
        key = doc_key(key)
        self._remember(key)
        self.live[key] = value

    def __delitem__(self, key):
        """Remove a document."""
        key = doc_key(key)
        self._remember(key)
        del self.live[key]

    def pop(self, key, *default):
        """Remove a document and return (a copy of) it."""
        key = doc_key(key)
        if key not in self.live:
            if default:
                return default[0]
            raise KeyError(key)
        self._remember(key)
        return clone(self.live.pop(key))

    def clear(self):
        """Remove every document: the table is replaced by an empty one when the update is done."""
        if self.cleared is None:
            self._restore()
            self.cleared = self.live if self.existed else _MISSING
            self.live = {}
            self.before.clear()
        else:
            self.live.clear()

    def __contains__(self, key):
        """Membership by document id (an id of another type is simply absent)."""
        try:
            return doc_key(key) in self.live
        except TypeError:
            return False

    def __iter__(self):
        """Document ids (a copy: updaters may change the table while iterating)."""
        return iter(list(self.live))

    def __len__(self):
        """Number of documents."""
        return len(self.live)

    def keys(self):
        """Document ids (a list: updaters may change the table while iterating)."""
        return list(self.live)

    def items(self):
        """(id, private copy) pairs."""
        return [(key, self[key]) for key in list(self.live)]

    def values(self):
        """Private copies of the documents."""
        return [self[key] for key in list(self.live)]

    def _restore(self) -> None:
        """Put back what this update changed so far in the installed table."""
        for key, old in self.before.items():
            if old is _MISSING:
                self.live.pop(key, None)
            else:
                self.live[key] = old

    def undo_now(self) -> None:
        """Restore memory after the updater (or encoding its result) raised."""
        if self.cleared is None and self.existed:
            self._restore()

    def finish(self) -> tuple[list[str], list[tuple[str, str | None, object]]]:
        """Turn what the updater did into journal changes plus undo records, and store the results.

        Every written document is encoded here, before memory is final: a value JSON cannot hold
        raises TypeError (ValueError for NaN) like TinyDB's JSON storage, and nothing is stored.
        The stored object is decoded from that same text, so it shares nothing with the caller
        and is exactly what a restart will read back.
        """
        name, table = self.name, self.live
        if self.cleared is not None:
            written, deleted, kept = list(table.items()), [], []
        else:
            written, deleted, kept = [], [], []
            for key, old in self.before.items():
                now = table.get(key, _MISSING)
                if now is _MISSING:
                    if old is not _MISSING:
                        deleted.append(key)
                elif old is not _MISSING and _same(now, old):
                    kept.append((key, old))
                else:
                    written.append((key, now))
        encoded = [(key, _encode(doc)) for key, doc in written]
        changes, undo = [], []
        if self.cleared is not None:
            changes.append(_change(name, "clear"))
            undo.append((name, None, self.cleared))
        elif not self.existed:
            undo.append((name, None, _MISSING))
        for key, old in kept:
            table[key] = old
        for key, text in encoded:
            table[key] = json.loads(text)
            changes.append(_change(name, "put", key, text))
            if self.cleared is None:
                undo.append((name, key, self.before[key]))
        for key in deleted:
            changes.append(_change(name, "del", key))
            undo.append((name, key, self.before[key]))
        if self.cleared is not None or not self.existed:
            self.tables[name] = table
            if not changes:
                changes.append(_change(name, "clear"))  # a new, empty table: TinyDB keeps it too
        return changes, undo


def _private(doc: Document) -> Document:
    """A document the caller may change freely: nothing in it is shared with the store."""
    return Document({key: clone(value) for key, value in doc.items()}, doc.doc_id)


class JournalTable(Table):
    """A TinyDB table whose document ids are ULID strings and whose every write is journaled.

    Like TinyDB, it caches query results (clearing the cache on its own writes); the cache is also
    dropped whenever the store's memory changed another way (another table object, a rollback,
    a dropped table), so a search never answers from before a change. Documents handed out are
    deep copies: changing one changes nothing stored.
    """

    document_id_class = str

    def __init__(self, storage: JournalStorage, name: str, cache_size: int = Table.default_query_cache_capacity,
                 persist_empty: bool = False):
        """A table of `storage` named `name` (`persist_empty` creates it durably at once)."""
        self._cache_version = storage.version
        super().__init__(storage, name, cache_size=cache_size, persist_empty=persist_empty)

    def _get_next_id(self):
        """A new ULID instead of TinyDB's max(id)+1, which reuses ids after a restart."""
        return new_ulid()

    def _update_table(self, updater):
        """Run TinyDB's updater on the live table, then journal exactly the documents it changed."""
        storage: JournalStorage = self._storage
        with storage.lock:
            recorder = _Recorder(storage.tables, self.name)
            try:
                updater(recorder)
                changes, undo = recorder.finish()
            except BaseException:
                recorder.undo_now()
                raise
            finally:
                self.clear_cache()
            if changes:
                storage.record(changes, undo)
            self._cache_version = storage.version

    def _fresh_cache(self) -> None:
        """Forget cached results if the store changed since they were computed."""
        if self._cache_version != self._storage.version:
            self.clear_cache()
            self._cache_version = self._storage.version

    def search(self, cond):
        """Copies of the documents matching `cond` (cached like TinyDB, never stale)."""
        with self._storage.lock:
            self._fresh_cache()
            return [_private(doc) for doc in super().search(cond)]

    def count(self, cond) -> int:
        """Number of documents matching `cond`."""
        with self._storage.lock:
            self._fresh_cache()
            return len(super().search(cond))

    def get(self, cond=None, doc_id=None, doc_ids=None):
        """Like TinyDB's get, returning copies."""
        with self._storage.lock:
            found = super().get(cond, doc_id, doc_ids)
        if isinstance(found, list):
            return [_private(doc) for doc in found]
        return None if found is None else _private(found)

    def __iter__(self):
        """Copies of every document, taken under the lock so writers cannot break the loop."""
        with self._storage.lock:
            docs = [_private(doc) for doc in super().__iter__()]
        return iter(docs)


def _locked(method):
    """Run a Table method under the storage's lock (readers iterate the live dicts)."""
    def wrapper(self, *args, **kwargs):
        with self._storage.lock:
            return method(self, *args, **kwargs)
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


for _name in ("contains", "__len__", "insert", "insert_multiple", "update", "update_multiple", "upsert",
              "remove", "truncate"):
    setattr(JournalTable, _name, _locked(getattr(Table, _name)))


class KioskDB(TinyDB):
    """TinyDB on a JournalStorage: same API, durable per call, rebuilt from disk at start-up."""

    table_class = JournalTable
    default_storage_class = JournalStorage

    def drop_table(self, name: str) -> None:
        """Remove a table, durably."""
        self._tables.pop(name, None)
        self.storage.drop([name])

    def drop_tables(self) -> None:
        """Remove every table, durably."""
        self.storage.drop()
        self._tables.clear()

    def transaction(self, origin: str | None = None):
        """One atomic, durable commit for every change made inside the `with` block."""
        return self.storage.transaction(origin)

    def compact(self) -> dict:
        """Snapshot and trim the journal."""
        return self.storage.compact()
