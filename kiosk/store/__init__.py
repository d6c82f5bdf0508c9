"""The centre's local storage: a durable, journaled TinyDB in the data directory.

`Store` is the small facade the use cases talk to: documents keyed by their `id`, atomic
transactions, compaction. Readers get copies, so no caller can change stored state by accident.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterable

from kiosk.clock import SystemClock, iso
from kiosk.ids import new_ulid
from kiosk.store.journal import (KioskDB, JournalStorage, StoreCorrupt, StoreError, StoreFailed,
                                 StoreLocked, clone)
from sync.files import private_dir, write_atomic

log = logging.getLogger(__name__)

__all__ = ["Store", "StoreError", "StoreLocked", "StoreCorrupt", "StoreFailed", "read_acked_seq"]


def read_acked_seq(data_dir: Path) -> int:
    """The last commit central has acknowledged (written by the sync agent), 0 when never synced."""
    try:
        state = json.loads((data_dir / "sync" / "state.json").read_text(encoding="utf-8"))
        return int(state.get("acked_seq", 0))
    except FileNotFoundError:
        return 0
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable sync state: %s", exc)
        return 0


def device_identity(data_dir: Path, clock) -> str:
    """This machine's device id, created once on first start and kept in DATA/device.json."""
    path = data_dir / "device.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["device_id"]
    except FileNotFoundError:
        device_id = new_ulid(int(clock.now().timestamp() * 1000))
        body = {"device_id": device_id, "created_at": iso(clock.now())}
        write_atomic(path, json.dumps(body).encode("utf-8"))
        return device_id
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreCorrupt(f"{path} is unreadable ({exc}); restore it from a backup") from exc


class Store:
    """Documents by table and id on a KioskDB; every write durable before it returns."""

    def __init__(self, data_dir: str | os.PathLike, *, clock=None, fsync: bool = True):
        """Open the store under `data_dir/store` (creating it), taking the single-writer lock."""
        self.data_dir = Path(data_dir)
        private_dir(self.data_dir)
        self.clock = clock or SystemClock()
        # the format gate comes first: a newer directory is refused before anything is written to it
        from kiosk.store import format as store_format
        store_format.check_supported(self.data_dir)
        held = store_format.holds_store(self.data_dir)
        info = store_format.read_format(self.data_dir) or {}
        self.device_id = device_identity(self.data_dir, self.clock)
        self.db = KioskDB(self.data_dir / "store", storage=JournalStorage, clock=self.clock,
                          fsync=fsync, acked_seq=lambda: read_acked_seq(self.data_dir),
                          store_id=info.get("store_id"))
        self.storage: JournalStorage = self.db.storage
        try:
            # under the writer's lock (read again now that it is held), before anyone gets the store
            store_format.check_supported(self.data_dir)
            info = store_format.read_format(self.data_dir)
            found = info["format"] if info else (1 if held else None)
            self.upgraded_from = [] if found == store_format.CURRENT else store_format.upgrade(self, found)
        except BaseException:
            self.db.close()
            raise

    @property
    def directory(self) -> Path:
        """The store's own folder (snapshot, journal, lock)."""
        return self.storage.directory

    @property
    def seq(self) -> int:
        """The last durable commit's sequence number."""
        return self.storage.seq

    @property
    def lock(self):
        """The re-entrant lock that serialises every read and write."""
        return self.storage.lock

    def transaction(self, origin: str | None = None):
        """Make every change inside the block one atomic, durable commit."""
        return self.storage.transaction(origin)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Call `callback` if the open transaction fails and is rolled back (nothing outside one)."""
        self.storage.on_rollback(callback)

    def get(self, table: str, key: str) -> dict | None:
        """A copy of one document, or None."""
        with self.storage.lock:
            doc = self.storage.tables.get(table, {}).get(key)
            return clone(doc) if doc is not None else None

    def all(self, table: str) -> list[dict]:
        """Copies of every document of a table."""
        with self.storage.lock:
            return [clone(d) for d in self.storage.tables.get(table, {}).values()]

    def find(self, table: str, predicate: Callable[[dict], bool]) -> list[dict]:
        """Copies of the documents for which `predicate` is true."""
        with self.storage.lock:
            return [clone(d) for d in self.storage.tables.get(table, {}).values() if predicate(d)]

    def keys(self, table: str, where: Callable[[dict], bool] | None = None) -> list[str]:
        """The ids of a table's documents (for which `where`, reading them in place, is true),
        without copying them: callers `get` what they need, a lock at a time, so a long walk
        never holds up writers."""
        with self.storage.lock:
            docs = self.storage.tables.get(table, {})
            return list(docs) if where is None else [k for k, d in docs.items() if where(d)]

    def count(self, table: str, where: Callable[[dict], bool] | None = None) -> int:
        """Number of documents in a table, or of those for which `where` is true (it reads them in
        place: nothing is copied, so it must not change them)."""
        with self.storage.lock:
            docs = self.storage.tables.get(table, {})
            return len(docs) if where is None else sum(1 for d in docs.values() if where(d))

    def put(self, table: str, doc: dict) -> None:
        """Insert or replace the document whose key is doc["id"] (the store keeps its own copy; a
        value JSON cannot hold raises TypeError and stores nothing)."""
        key = doc.get("id")
        if not isinstance(key, str) or not key:
            raise ValueError(f"a {table} document needs a non-empty string id")
        self.db.table(table)._update_table(lambda t: t.__setitem__(key, doc))

    def put_many(self, table: str, docs: Iterable[dict]) -> None:
        """Insert or replace several documents in one commit."""
        with self.transaction():
            for doc in docs:
                self.put(table, doc)

    def delete(self, table: str, key: str) -> bool:
        """Remove a document; False when there was none."""
        with self.storage.lock:
            if key not in self.storage.tables.get(table, {}):
                return False
            self.db.table(table)._update_table(lambda t: t.__delitem__(key))
            return True

    def delete_if_unchanged(self, table: str, doc: dict) -> bool | None:
        """Remove a document only if it is stored exactly as `doc` (compared in place, without a
        copy): True when removed, False when it is stored differently (it stays), None when there
        is none. Inside a transaction it joins the caller's commit."""
        key = doc.get("id")
        with self.storage.lock:
            stored = self.storage.tables.get(table, {}).get(key)
            if stored is None:
                return None
            if stored != doc:
                return False
            self.db.table(table)._update_table(lambda t: t.pop(key))
            return True

    def compact(self) -> dict:
        """Write a snapshot and trim the journal (safe while serving: writers do not wait for it)."""
        return self.storage.compact()

    def close(self) -> None:
        """Release the store (the lock goes with it)."""
        self.db.close()
