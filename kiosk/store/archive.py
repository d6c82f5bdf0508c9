"""Archived days: finished records moved out of the live store into immutable, compressed,
checksummed files, and `History`, the one read-only view over live and archived records.

Layout of DATA/archive:

    MANIFEST.json                  {"format": 1, "parts": [PART, ...]}, replaced atomically
    <day>.<part>.jsonl.gz          one file each time a day close found finished records of <day>

A part file is gzip'd JSON lines: a header {"archive": 1, "day", "part", "seq", "closed_at",
"counts"}, then one line per record, {"t": table, "k": id, "d": document}, table by table in
`TABLES` order (small tables first, so a lookup of a case stops early), each table sorted by id,
the audit chain by its number. A PART of the manifest is {"day", "part", "file", "sha256",
"bytes", "seq", "counts", "ids", "closed_at", "audit": [first n, last n] | null, "state"}: `ids`
gives each table's lowest and highest id, so a lookup by id opens only the parts whose range holds
it (ULIDs rise with time, so that is the id's own day, or a few days when a clock was wrong);
`seq` is the store's last commit when the records were read, so once central has acknowledged it,
central holds every record of the part.

A day close's parts are written so that a kill at any moment loses and duplicates nothing:
 1. each file is written as <file>.tmp, fsynced, renamed, the folder fsynced (`write_atomic`);
 2. the manifest names the parts, state "written" (one atomic replacement);
 3. the caller removes the live copies (commits marked "archive", which the sync agent does not
    send as deletions);
 4. the manifest marks the parts "done".
A file the manifest does not name is what is left of step 1 (or of pruning) and is deleted by
`clean()`; a part left "written" has its live copies removed again (`pending()`). Readers look at
the live store first and at the manifest after it, so a record moving from one to the other is
seen once, whenever the reader runs.
"""
from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import logging
import os
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from kiosk.clock import parse_iso
from kiosk.store.journal import StoreError
from sync.files import fsync_dir, private_dir, write_atomic

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "MANIFEST.json"
ARCHIVE_DIR = "archive"
# Tables whose finished records leave the live store, in the order a part file holds them.
TABLES = ("requests", "receipts", "numbering", "tickets", "feedback", "audit")
_PART_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(\d+)\.jsonl\.gz$")


class ArchiveError(StoreError):
    """The archive cannot be read as its manifest describes it; the message names the file."""


def local_day(moment: str, tz: ZoneInfo) -> str:
    """The service day (local date) of a stored UTC time."""
    return parse_iso(moment).astimezone(tz).date().isoformat()


def record_day(table: str, doc: dict, tz: ZoneInfo) -> str:
    """The service day a record belongs to: a ticket's, its feedback's or a number counter's day, the day a case
    was registered, the day a receipt was issued, the day an audit entry was written."""
    if table in ("tickets", "numbering", "feedback"):
        return doc["day"]
    if table == "requests":
        return doc["created_day"]
    if table == "receipts":
        return local_day(doc["issued_at"], tz)
    if table == "audit":
        return local_day(doc["at"], tz)
    raise ValueError(f"{table} is not an archived table")


def _sort_key(table: str) -> Callable[[dict], object]:
    """How a table's records are ordered inside a part."""
    return (lambda d: d["n"]) if table == "audit" else (lambda d: d["id"])


def _line(table: str, doc: dict) -> bytes:
    """One record line."""
    return json.dumps({"t": table, "k": doc["id"], "d": doc}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8") + b"\n"


@dataclass(frozen=True)
class Part:
    """One archive file as the manifest describes it."""

    day: str
    part: int
    file: str
    sha256: str
    bytes: int
    seq: int
    counts: dict
    ids: dict
    closed_at: str
    audit: tuple[int, int] | None
    state: str

    @classmethod
    def from_json(cls, raw: dict) -> "Part":
        """Read a manifest entry (KeyError/TypeError/ValueError when malformed)."""
        audit = raw.get("audit")
        return cls(day=str(raw["day"]), part=int(raw["part"]), file=str(raw["file"]), sha256=str(raw["sha256"]),
                   bytes=int(raw["bytes"]), seq=int(raw["seq"]), counts=dict(raw["counts"]),
                   ids={t: (str(low), str(high)) for t, (low, high) in raw["ids"].items()},
                   closed_at=str(raw["closed_at"]), audit=(int(audit[0]), int(audit[1])) if audit else None,
                   state=str(raw["state"]))

    def may_hold(self, table: str, key: str) -> bool:
        """Whether `key` is within the part's range of ids of `table`."""
        low, high = self.ids.get(table, ("", ""))
        return table in self.ids and low <= key <= high

    def to_json(self) -> dict:
        """The manifest entry."""
        return {"day": self.day, "part": self.part, "file": self.file, "sha256": self.sha256, "bytes": self.bytes,
                "seq": self.seq, "counts": self.counts, "ids": {t: list(r) for t, r in self.ids.items()},
                "closed_at": self.closed_at,
                "audit": list(self.audit) if self.audit else None, "state": self.state}


class Archive:
    """The archive folder of a data directory: its manifest, writing parts, reading them back."""

    def __init__(self, data_dir: str | os.PathLike):
        """Use DATA/archive (created when the first part is written; nothing is read until needed)."""
        self.directory = Path(data_dir) / ARCHIVE_DIR
        self._lock = threading.Lock()
        self._parts: list[Part] | None = None

    # -- the manifest ------------------------------------------------------------------------------

    def parts(self) -> list[Part]:
        """Every part the manifest names, by day then part number."""
        with self._lock:
            if self._parts is None:
                self._parts = self._load()
            return list(self._parts)

    def _load(self) -> list[Part]:
        """Read the manifest (an archive that was never written has none)."""
        path = self.directory / MANIFEST
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ArchiveError(f"the archive manifest {path} is unreadable ({exc}); restore it from a backup") from exc
        try:
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
            parts = [Part.from_json(p) for p in raw["parts"]]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"the archive manifest {path} is malformed ({exc}); restore it from a backup") from exc
        return sorted(parts, key=lambda p: (p.day, p.part))

    def _save(self, parts: list[Part]) -> None:
        """Replace the manifest atomically, then the copy in memory."""
        private_dir(self.directory)
        body = {"format": FORMAT, "parts": [p.to_json() for p in sorted(parts, key=lambda p: (p.day, p.part))]}
        write_atomic(self.directory / MANIFEST, json.dumps(body, indent=0, ensure_ascii=False).encode("utf-8"))
        self._parts = sorted(parts, key=lambda p: (p.day, p.part))

    def pending(self) -> list[Part]:
        """Parts whose move was cut off before the live copies were removed."""
        return [p for p in self.parts() if p.state != "done"]

    # -- writing -----------------------------------------------------------------------------------

    def clean(self) -> list[str]:
        """Delete what an interrupted write or prune left behind: temporary files and part files
        the manifest does not name (their records are still live). Returns the names removed."""
        named = {p.file for p in self.parts()}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        removed = [n for n in names if n.endswith(".tmp") or (_PART_NAME.match(n) and n not in named)]
        for name in removed:
            os.unlink(self.directory / name)
        if removed:
            fsync_dir(self.directory)
            log.info("removed %d archive file(s) left by an interrupted day close", len(removed))
        return removed

    def write_parts(self, batch: dict[str, dict[str, list[dict]]], *, seq: int, closed_at: str) -> list[Part]:
        """Write each day's records (day -> table -> documents) as that day's next part, then name
        them all in the manifest as "written", in one replacement (steps 1 and 2 above). One writer
        at a time (the store's owner), after `clean()`; readers wait only while the manifest is
        replaced, not while files are compressed and written."""
        parts = [self._write_file(day, records, seq=seq, closed_at=closed_at) for day, records in sorted(batch.items())]
        if parts:
            with self._lock:
                self._save([*self._parts, *parts])
        return parts

    def _write_file(self, day: str, records: dict[str, list[dict]], *, seq: int, closed_at: str) -> Part:
        """Step 1 for one day: its next part's file, durable, not yet in the manifest."""
        number = 1 + max((p.part for p in self.parts() if p.day == day), default=0)
        name = f"{day}.{number}.jsonl.gz"
        counts = {t: len(records.get(t, ())) for t in TABLES if records.get(t)}
        ids = {t: (min(d["id"] for d in records[t]), max(d["id"] for d in records[t])) for t in counts}
        audit = sorted(records.get("audit", ()), key=_sort_key("audit"))
        header = {"archive": FORMAT, "day": day, "part": number, "seq": seq, "closed_at": closed_at,
                  "counts": counts}
        chunks = [json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n"]
        for table in TABLES:
            docs = audit if table == "audit" else sorted(records.get(table, ()), key=_sort_key(table))
            chunks.extend(_line(table, doc) for doc in docs)
        data = gzip.compress(b"".join(chunks), compresslevel=6, mtime=0)
        private_dir(self.directory)
        write_atomic(self.directory / name, data, mode=0o400)
        return Part(day=day, part=number, file=name, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                    seq=seq, counts=counts, ids=ids, closed_at=closed_at,
                    audit=(audit[0]["n"], audit[-1]["n"]) if audit else None, state="written")

    def mark_done(self, parts: Iterable[Part]) -> list[Part]:
        """Record that these parts' live copies are gone (step 4), in one manifest replacement."""
        names = {p.file for p in parts}
        if not names:
            return []
        with self._lock:
            updated = [Part(**{**p.__dict__, "state": "done"}) if p.file in names else p for p in self._parts]
            self._save(updated)
            return [p for p in self._parts if p.file in names]

    def prune(self, *, before_day: str, acked_seq: int) -> list[Part]:
        """Delete parts of days before `before_day` whose records central has acknowledged: the
        manifest first, then the files (a crash in between leaves files `clean()` removes)."""
        with self._lock:
            if self._parts is None:
                self._parts = self._load()
            gone = [p for p in self._parts if p.day < before_day and p.seq <= acked_seq and p.state == "done"]
            if not gone:
                return []
            self._save([p for p in self._parts if p not in gone])
        for part in gone:
            try:
                os.unlink(self.directory / part.file)
            except FileNotFoundError:
                pass
        fsync_dir(self.directory)
        return gone

    # -- reading -----------------------------------------------------------------------------------

    def read(self, part: Part, tables: Iterable[str] | None = None) -> Iterator[tuple[str, dict]]:
        """(table, document) of a part, in file order, limited to `tables` (reading stops after
        the last of them). ArchiveError when the file is missing or damaged."""
        wanted = set(TABLES if tables is None else tables)
        last = max((TABLES.index(t) for t in wanted if t in TABLES), default=-1)
        if last < 0:
            return
        path = self.directory / part.file
        try:
            with gzip.open(path, "rb") as fh:
                header = json.loads(fh.readline())
                if header.get("day") != part.day or header.get("part") != part.part:
                    raise ArchiveError(f"{path} is not part {part.part} of {part.day}")
                for line in fh:
                    record = json.loads(line)
                    table = record["t"]
                    if table in wanted:
                        yield table, record["d"]
                    elif TABLES.index(table) > last:
                        return
        except FileNotFoundError:
            raise ArchiveError(f"the archive file {path} is missing; restore it from a backup") from None
        except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"the archive file {path} is damaged ({exc}); restore it from a backup") from None

    def verify(self, part: Part, tz: ZoneInfo) -> list[str]:
        """Everything wrong with one part: checksum, size, compression, lines, counts, order, days."""
        path = self.directory / part.file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [f"{part.file} is missing"]
        problems = []
        if len(data) != part.bytes or hashlib.sha256(data).hexdigest() != part.sha256:
            problems.append(f"{part.file} does not match its checksum in the manifest (damaged or changed)")
        try:
            lines = gzip.decompress(data).splitlines()
        except (OSError, EOFError, zlib.error) as exc:
            return [*problems, f"{part.file} cannot be decompressed ({exc})"]
        try:
            header = json.loads(lines[0])
            counts: dict[str, int] = {}
            ids: dict[str, tuple[str, str]] = {}
            previous: tuple[int, object] | None = None
            for number, raw in enumerate(lines[1:], start=2):
                record = json.loads(raw)
                table, doc = record["t"], record["d"]
                if table not in TABLES or doc.get("id") != record["k"]:
                    problems.append(f"{part.file} line {number} is not an archived record")
                    break
                key = (TABLES.index(table), _sort_key(table)(doc))
                if previous is not None and key <= previous:
                    problems.append(f"{part.file} line {number} is out of order or repeated")
                    break
                previous = key
                if record_day(table, doc, tz) != part.day:
                    problems.append(f"{part.file} line {number} belongs to another day")
                    break
                counts[table] = counts.get(table, 0) + 1
                low, high = ids.get(table, (doc["id"], doc["id"]))
                ids[table] = (min(low, doc["id"]), max(high, doc["id"]))
        except (IndexError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return [*problems, f"{part.file} holds a line that is not JSON of an archived record ({exc!r})"]
        if (header.get("day"), header.get("part"), header.get("seq")) != (part.day, part.part, part.seq):
            problems.append(f"{part.file} names another day, part or commit than the manifest")
        if counts != part.counts or header.get("counts") != part.counts:
            problems.append(f"{part.file} holds {counts}, the manifest says {part.counts}")
        elif ids != part.ids:
            problems.append(f"{part.file} holds other ids than the manifest's ranges say")
        return problems

    def leftovers(self) -> list[str]:
        """Files a later `clean()` will delete (a day close or prune was interrupted)."""
        named = {p.file for p in self.parts()}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.endswith(".tmp") or (_PART_NAME.match(n) and n not in named))


class History:
    """The one read-only view of the centre's records: the live store first, then archived days.

    Reports, receipt verification, `check` and export read through it, so they neither know nor
    care whether a day is closed. A record being moved while a reader runs is seen once (the live
    copy wins)."""

    def __init__(self, store, archive: Archive, tz: ZoneInfo):
        """Read `store` (the live documents) and `archive`; days are local dates in `tz`."""
        self.store = store
        self.archive = archive
        self.tz = tz

    def day_of(self, table: str, doc: dict) -> str:
        """The service day a record belongs to."""
        return record_day(table, doc, self.tz)

    def records(self, table: str, days: Iterable[str]) -> Iterator[dict]:
        """The records of `table` that belong to `days`: live ones, then archived ones."""
        wanted = set(days)
        live = self.store.find(table, lambda d: self.day_of(table, d) in wanted)
        seen = {d["id"] for d in live}
        yield from live
        for part in self.archive.parts():
            if part.day in wanted and table in part.counts:
                for _, doc in self.archive.read(part, (table,)):
                    if doc["id"] not in seen:
                        seen.add(doc["id"])
                        yield doc

    def each_day(self, table: str) -> Iterator[tuple[str, list[dict]]]:
        """(day, records of `table`) for every day that has some, oldest first, one archived day
        in memory at a time."""
        live: dict[str, list[dict]] = {}
        for doc in self.store.all(table):
            live.setdefault(self.day_of(table, doc), []).append(doc)
        archived: dict[str, list[Part]] = {}
        for part in self.archive.parts():
            if table in part.counts:
                archived.setdefault(part.day, []).append(part)
        for day in sorted(live.keys() | archived.keys()):
            docs = live.get(day, [])
            seen = {d["id"] for d in docs}
            for part in archived.get(day, ()):
                for _, doc in self.archive.read(part, (table,)):
                    if doc["id"] not in seen:
                        seen.add(doc["id"])
                        docs.append(doc)
            yield day, docs

    def get(self, table: str, key: str, *, days: Iterable[str] = ()) -> dict | None:
        """One record by id: live, else in the archived parts whose range of ids holds it (those
        of `days` first, then newest first)."""
        if not isinstance(key, str):
            return None
        doc = self.store.get(table, key)
        if doc is not None:
            return doc
        hinted = set(days)
        parts = sorted((p for p in self.archive.parts() if p.may_hold(table, key)), reverse=True,
                       key=lambda p: (p.day, p.part))
        for part in sorted(parts, key=lambda p: p.day not in hinted):  # stable: newest first otherwise
            found = self._find_in(part, table, key)
            if found is not None:
                return found
        return None

    def _find_in(self, part: Part, table: str, key: str) -> dict | None:
        """A record of one part (its table is sorted by id, so the search stops early)."""
        for _, doc in self.archive.read(part, (table,)):
            if doc["id"] == key:
                return doc
            if table != "audit" and doc["id"] > key:
                return None
        return None

    def audit_chain(self) -> Iterator[dict]:
        """Every audit entry, live and archived, by its number (a copy in both places once). Parts
        are opened as the numbers reach them, so only a few are open at any time."""
        live = sorted(self.store.all("audit"), key=lambda d: d["n"])
        waiting = sorted((p for p in self.archive.parts() if p.audit),
                         key=lambda p: (p.audit[0], p.day, p.part))
        heap: list = []
        pushed = 0

        def push(stream, rank: int) -> None:
            """Queue the next entry of a stream (live entries rank first among equal numbers)."""
            nonlocal pushed
            for doc in stream:
                heapq.heappush(heap, (doc["n"], rank, pushed, doc, stream))
                pushed += 1
                return

        push(iter(live), 0)
        last = None
        while heap or waiting:
            while waiting and (not heap or waiting[0].audit[0] <= heap[0][0]):
                push((doc for _, doc in self.archive.read(waiting.pop(0), ("audit",))), 1)
            if not heap:
                continue
            _, rank, _, doc, stream = heapq.heappop(heap)
            push(stream, rank)
            if doc["id"] != last:
                last = doc["id"]
                yield doc
