"""Durable TinyDB: every change is appended to a journal and fsynced before the caller returns.

Layout of a store directory:

    LOCK                      flock held by the one process that may write
    snapshot.json             {"format": 1, "seq": S, "tables": {...}}, replaced atomically
    journal/<seq:012d>.jsonl  append-only segments, one line per commit:
                              <crc32 hex> {"s": seq, "at": ..., "h": hlc, "o": origin?, "c": [changes]}

A change is {"t": table, "o": "put"|"del"|"clear", "k": key, "d": document}. The in-memory TinyDB
is rebuilt at start-up from the snapshot plus the journal; a torn last line (power cut mid-write)
is cut off, anything else that does not parse is reported as corruption rather than skipped.
The journal doubles as the sync change log (kiosk.store.feed), so segments are deleted only once
compacted into the snapshot *and* acknowledged by the central server.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import zlib
from pathlib import Path
from typing import Callable, Iterator

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from kiosk.clock import SystemClock, iso
from kiosk.ids import new_ulid

log = logging.getLogger(__name__)

FORMAT = 1
SNAPSHOT = "snapshot.json"
JOURNAL = "journal"
LOCK = "LOCK"
_MISSING = object()
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

def encode_commit(commit: dict) -> bytes:
    """One journal line: CRC32 of the JSON bytes, a space, the JSON, a newline."""
    body = json.dumps(commit, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return b"%08x " % zlib.crc32(body) + body + b"\n"


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


def fsync_dir(path: Path) -> None:
    """Make a rename or file creation inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Create a directory and any missing parents as 0700 (owner only); an existing one is left as
    it is (`flask --app kiosk check` reports one that other users may enter)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file, never half
    (owner-only unless `mode` says otherwise: the data directory holds PIN hashes and keys)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


# -- storage -------------------------------------------------------------------------------------

class _Pending:
    """Changes and undo records of the commit being built."""

    def __init__(self, origin: str | None):
        """Start an empty commit."""
        self.origin = origin
        self.changes: list[dict] = []
        self.undo: list[tuple[str, str | None, object]] = []
        self.on_rollback: list[Callable[[], None]] = []


class JournalStorage(Storage):
    """A TinyDB storage that keeps tables in memory and makes each commit durable in a journal."""

    def __init__(self, directory: str | os.PathLike, *, clock=None, fsync: bool = True,
                 acked_seq: Callable[[], int] | None = None):
        """Open (creating if needed) the store in `directory`, taking the writer's lock."""
        self.directory = Path(directory)
        self.journal_dir = self.directory / JOURNAL
        self.clock = clock or SystemClock()
        self.fsync = fsync
        self.acked_seq = acked_seq or (lambda: 0)
        self.lock = threading.RLock()
        self.tables: dict[str, dict[str, dict]] = {}
        self.seq = 0
        self.snapshot_seq = 0
        self.failed: str | None = None
        self._hlc = (0, 0)
        self._pending: _Pending | None = None
        self._depth = 0
        self._fd: int | None = None
        self._segment_first = 0
        self._lock_fd: int | None = None
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
        """Close the journal and release the writer's lock."""
        with self.lock:
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
                if snap.get("format") != FORMAT:
                    raise StoreCorrupt(f"{snap_path} has format {snap.get('format')!r}, expected {FORMAT}")
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
                if seq != self.seq + 1:
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
            table = self.tables.setdefault(change["t"], {})
            op = change["o"]
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

    def record(self, changes: list[dict], undo: list[tuple[str, str | None, object]]) -> None:
        """Called by JournalTable after changing memory: commit now, or add to the open transaction."""
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

    def _commit(self, pending: _Pending) -> None:
        """Write one commit line and fsync it; on failure leave the file as it was."""
        if self.failed:
            raise StoreFailed(f"the store stopped accepting writes after an earlier failure: {self.failed}")
        now = self.clock.now()
        hlc = _next_hlc(self._hlc, int(now.timestamp() * 1000))
        commit = {"s": self.seq + 1, "at": iso(now), "h": _format_hlc(hlc), "c": pending.changes}
        if pending.origin:
            commit["o"] = pending.origin
        try:
            line = encode_commit(commit)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a document cannot be stored as JSON: {exc}") from exc
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
        for table_name, key, old in reversed(undo):
            table = self.tables.setdefault(table_name, {})
            if key is None:
                table.clear()
                table.update(old)
            elif old is _MISSING:
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
        """Write a new snapshot atomically, start a new segment, drop segments no one needs."""
        with self.lock:
            if self._pending is not None:
                raise StoreError("cannot compact inside a transaction")
            snapshot = {"format": FORMAT, "seq": self.seq, "hlc": list(self._hlc),
                        "written_at": iso(self.clock.now()), "tables": self.tables}
            data = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            write_atomic(self.directory / SNAPSHOT, data)
            self.snapshot_seq = self.seq
            if self._fd is not None:
                os.close(self._fd)
            self._segment_first = self.seq + 1
            path = self.journal_dir / segment_name(self._segment_first)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fsync_dir(self.journal_dir)
            keep_after = min(self.snapshot_seq, self.acked_seq())
            removed = 0
            segments = list_segments(self.journal_dir)
            for (first, seg_path), (next_first, _) in zip(segments, segments[1:]):
                if next_first - 1 <= keep_after:
                    seg_path.unlink()
                    removed += 1
            if removed:
                fsync_dir(self.journal_dir)
            return {"seq": self.seq, "snapshot_bytes": len(data), "segments_removed": removed}


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
    """The dict TinyDB's updaters see: it records which documents they set, change or delete."""

    def __init__(self, name: str, live: dict):
        """Wrap the live table `live` of table `name`."""
        self.name = name
        self.live = live
        self.originals: dict[str, object] = {}
        self.touched: set[str] = set()
        self.cleared: dict | None = None

    def _remember(self, key):
        """Keep the document as it was before this update, once."""
        if key not in self.originals:
            self.originals[key] = self.live.get(key, _MISSING)

    def __getitem__(self, key):
        """Hand out a private copy so in-place edits are seen and can be undone."""
        doc = self.live[key]
        if key not in self.originals:
            self.originals[key] = doc
            doc = _TrackedDoc(doc, lambda k=key: self.touched.add(k))
            self.live[key] = doc
        return doc

    def __setitem__(self, key, value):
        """Insert or replace a document."""
        self._remember(key)
        self.touched.add(key)
        self.live[key] = value

    def __delitem__(self, key):
        """Remove a document."""
        self._remember(key)
        self.touched.add(key)
        del self.live[key]

    def pop(self, key, *default):
        """Remove a document and return it."""
        if key in self.live:
            self._remember(key)
            self.touched.add(key)
        return self.live.pop(key, *default)

    def clear(self):
        """Remove every document."""
        if self.cleared is None:
            self.cleared = dict(self.live)
        self.originals.clear()
        self.touched.clear()
        self.live.clear()

    def __contains__(self, key):
        """Membership by document id."""
        return key in self.live

    def __iter__(self):
        """Document ids."""
        return iter(list(self.live))

    def __len__(self):
        """Number of documents."""
        return len(self.live)

    def keys(self):
        """Document ids (a list: updaters may change the table while iterating)."""
        return list(self.live.keys())

    def items(self):
        """(id, document) pairs."""
        return [(k, self[k]) for k in list(self.live)]

    def values(self):
        """Documents."""
        return [self[k] for k in list(self.live)]

    def get(self, key, default=None):
        """A document or `default`."""
        return self[key] if key in self.live else default

    def finish(self) -> tuple[list[dict], list[tuple[str, str | None, object]]]:
        """Turn what the updater did into journal changes plus undo records."""
        changes, undo = [], []
        if self.cleared is not None:
            changes.append({"t": self.name, "o": "clear", "k": None, "d": None})
            undo.append((self.name, None, self.cleared))
        for key, original in self.originals.items():
            if key not in self.touched:
                if key in self.live:
                    self.live[key] = original  # only read: put the untouched original back
                continue
            if key in self.live:
                doc = dict(self.live[key])
                self.live[key] = doc
                changes.append({"t": self.name, "o": "put", "k": key, "d": doc})
            else:
                changes.append({"t": self.name, "o": "del", "k": key, "d": None})
            undo.append((self.name, key, original))
        return changes, undo

    def undo_now(self) -> None:
        """Restore memory after an updater raised."""
        for key, original in self.originals.items():
            if original is _MISSING:
                self.live.pop(key, None)
            else:
                self.live[key] = original
        if self.cleared is not None:
            self.live.clear()
            self.live.update(self.cleared)


class _TrackedDoc(dict):
    """A copy of a document that reports in-place changes (TinyDB's update operations use these)."""

    def __init__(self, original: dict, on_change: Callable[[], None]):
        """Copy `original` one level deep so nested lists can be changed without touching it."""
        super().__init__((k, v.copy() if isinstance(v, (list, dict)) else v) for k, v in original.items())
        self._on_change = on_change

    def __setitem__(self, key, value):
        """Set a field."""
        self._on_change()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        """Delete a field."""
        self._on_change()
        super().__delitem__(key)

    def update(self, *args, **kwargs):
        """Update fields."""
        self._on_change()
        super().update(*args, **kwargs)

    def pop(self, *args):
        """Pop a field."""
        self._on_change()
        return super().pop(*args)

    def setdefault(self, *args):
        """Set a default field."""
        self._on_change()
        return super().setdefault(*args)

    def clear(self):
        """Remove all fields."""
        self._on_change()
        super().clear()


def _locked(method):
    """Run a Table method under the storage's lock (readers iterate the live dicts)."""
    def wrapper(self, *args, **kwargs):
        with self._storage.lock:
            return method(self, *args, **kwargs)
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class JournalTable(Table):
    """A TinyDB table whose document ids are ULID strings and whose every write is journaled."""

    document_id_class = str
    default_query_cache_capacity = 0  # results would go stale across transactions and rollbacks

    def _get_next_id(self):
        """A new ULID instead of TinyDB's max(id)+1, which reuses ids after a restart."""
        return new_ulid()

    def _update_table(self, updater):
        """Run TinyDB's updater on the live table, then journal exactly the documents it changed."""
        storage: JournalStorage = self._storage
        with storage.lock:
            live = storage.tables.setdefault(self.name, {})
            recorder = _Recorder(self.name, live)
            try:
                updater(recorder)
            except BaseException:
                recorder.undo_now()
                raise
            changes, undo = recorder.finish()
            if changes:
                storage.record(changes, undo)

    def __iter__(self):
        """Iterate over a copy, so writers in other threads cannot break the loop."""
        with self._storage.lock:
            docs = list(super().__iter__())
        return iter(docs)


for _name in ("all", "search", "get", "contains", "count", "__len__", "insert", "insert_multiple",
              "update", "update_multiple", "upsert", "remove", "truncate"):
    setattr(JournalTable, _name, _locked(getattr(Table, _name)))


class KioskDB(TinyDB):
    """TinyDB on a JournalStorage: same API, durable per call, rebuilt from disk at start-up."""

    table_class = JournalTable
    default_storage_class = JournalStorage

    def transaction(self, origin: str | None = None):
        """One atomic, durable commit for every change made inside the `with` block."""
        return self.storage.transaction(origin)

    def compact(self) -> dict:
        """Snapshot and trim the journal."""
        return self.storage.compact()
