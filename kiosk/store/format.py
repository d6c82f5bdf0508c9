"""The data directory's format version, and the upgrades that bring an older one up to date.

`DATA/FORMAT.json` (replaced atomically) says which format the directory is in:

    {"format": 2, "store_id": ULID, "device_id": ..., "created_at": ..., "upgrades": [{"from", "to", "at"}]}

A directory without it was written by a release before format 2 (format 1) when it holds a store,
and is new otherwise. `check_supported()` refuses a directory of a newer format than this code
knows (and one a restore left half-done) before anything opens it; `upgrade()` runs, under the
store's writer lock and before the store is handed to anyone, each migration from the directory's
format to `CURRENT` in turn. Each migration is idempotent and can be cut off at any point: it writes
its new form beside the old one and switches to it with one atomic rename, and the version is
recorded last, so a kill leaves a directory that the next start upgrades again from where it is.

Format 2 (this release): FORMAT.json itself, with the store's id (a ULID naming this store's
history: backups carry it, and a restore refuses a backup of another store); snapshots name that
id (`"format": 2, "store_id"`), so a snapshot copied in from another data directory is refused; and
the journal may hold a restore's commit that moves the numbering on (kiosk.store.backup). Format 1
releases refuse a format 2 snapshot, so a downgrade cannot misread the directory.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from kiosk.clock import iso
from kiosk.ids import new_ulid
from kiosk.store.journal import JOURNAL, SNAPSHOT, StoreError, list_segments
from sync.files import write_atomic

log = logging.getLogger(__name__)

CURRENT = 2
FORMAT_FILE = "FORMAT.json"
RESTORING = ".restoring"     # a restore's staging folder inside DATA (kiosk.store.backup)
RESTORE_READY = "READY"      # in it: the staged copy is complete and being switched in


class FormatError(StoreError):
    """The data directory cannot be opened by this release as it is; the message says what to do."""


def read_format(data_dir: str | os.PathLike) -> dict | None:
    """FORMAT.json's content, or None when there is none."""
    path = Path(data_dir) / FORMAT_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise FormatError(f"{path} is unreadable ({exc}); restore the data directory from a backup") from None
    if not isinstance(info, dict) or not isinstance(info.get("format"), int) or info["format"] < 1:
        raise FormatError(f"{path} does not name a format version; restore the data directory from a backup")
    return info


def write_format(data_dir: Path, info: dict) -> None:
    """Replace FORMAT.json atomically."""
    write_atomic(Path(data_dir) / FORMAT_FILE,
                 (json.dumps(info, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def holds_store(data_dir: str | os.PathLike) -> bool:
    """Whether the directory already holds a store (a snapshot or a journal segment)."""
    store_dir = Path(data_dir) / "store"
    return (store_dir / SNAPSHOT).exists() or bool(list_segments(store_dir / JOURNAL))


def data_format(data_dir: str | os.PathLike) -> int | None:
    """The directory's format: FORMAT.json's, else 1 when it holds a store, else None (new)."""
    info = read_format(data_dir)
    if info is not None:
        return info["format"]
    return 1 if holds_store(data_dir) else None


def check_supported(data_dir: str | os.PathLike) -> None:
    """Refuse a directory this release must not open: a newer format, or a restore cut off midway."""
    data_dir = Path(data_dir)
    if (data_dir / RESTORING / RESTORE_READY).exists():
        raise FormatError(
            f"a restore into {data_dir} was interrupted while switching the data in; run the same "
            "`flask --app kiosk restore SRC` again to finish it (nothing has been lost: the data being "
            f"replaced is in {data_dir}/replaced-*)")
    check_version(data_dir)


def check_version(data_dir: str | os.PathLike) -> None:
    """Refuse a directory of a newer format than this release knows."""
    data_dir = Path(data_dir)
    found = data_format(data_dir)
    if found is not None and found > CURRENT:
        raise FormatError(
            f"the data directory {data_dir} is in store format {found}, written by a newer release of the "
            f"kiosk; this release reads formats up to {CURRENT}. Install the release that wrote it (or a newer "
            "one) instead of this one; never start an older release on newer data")


# -- migrations ------------------------------------------------------------------------------------

def migrate_1_to_2(store, info: dict) -> None:
    """Give the store an id and rewrite its snapshot in format 2 (naming that id).

    The new snapshot is written beside the old one and renamed over it (compaction); a kill before
    the rename leaves the format 1 snapshot, after it a format 2 one whose id the next attempt reuses.
    """
    storage = store.storage
    storage.store_id = storage.store_id or info.get("store_id") or new_ulid(int(store.clock.now().timestamp() * 1000))
    info["store_id"] = storage.store_id
    if storage.snapshot_format != 2:
        store.compact()


#: format N -> the migration to N + 1, applied in order
MIGRATIONS: dict[int, Callable] = {1: migrate_1_to_2}


def upgrade(store, found: int | None, *, on_step: Callable[[int], None] | None = None) -> list[int]:
    """Bring the opened store's data directory from format `found` (None: new) to CURRENT; return
    the formats it was upgraded from. Runs under the store's writer lock, before anyone uses it."""
    data_dir = store.data_dir
    info = read_format(data_dir) or {}
    now = iso(store.clock.now())
    if found is None:
        store.storage.store_id = store.storage.store_id or new_ulid(int(store.clock.now().timestamp() * 1000))
        write_format(data_dir, {"format": CURRENT, "store_id": store.storage.store_id,
                                "device_id": store.device_id, "created_at": now, "upgrades": []})
        return []
    done = []
    version = found
    while version < CURRENT:
        migration = MIGRATIONS.get(version)
        if migration is None:
            raise FormatError(f"no upgrade from store format {version} to {version + 1} in this release")
        log.warning("upgrading the data directory %s from store format %d to %d", data_dir, version, version + 1)
        migration(store, info)
        if on_step is not None:
            on_step(version)
        info.update({"format": version + 1, "store_id": store.storage.store_id, "device_id": store.device_id})
        info.setdefault("created_at", now)
        info["upgrades"] = [*info.get("upgrades", []), {"from": version, "to": version + 1, "at": now}]
        write_format(data_dir, info)  # the version last: a kill before this runs the migration again
        done.append(version)
        version += 1
    return done
