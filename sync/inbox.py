"""Applying configuration pulled from central, inside the running kiosk (the store's only writer).

The sync agent leaves one file per pull round in DATA/sync/inbox/<cursor>.json. The kiosk calls
`apply_inbox` at start-up and every few seconds: each file, oldest first, becomes one atomic
commit marked as coming from central (so the agent never pushes it back), and is deleted after
the commit is durable. Applying a file twice (a crash between commit and delete) gives the same
state, so no separate cursor is needed.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from pydantic import ValidationError

from kiosk.domain import overrides
from sync import protocol
from sync.agent import FAILED_DIR, INBOX_DIR, sync_dir
from sync.files import fsync_dir

log = logging.getLogger(__name__)

_NAME = re.compile(r"^\d{12}\.json$")


def apply_inbox(store, data_dir: str | os.PathLike) -> int:
    """Apply every pulled configuration file in order; return how many documents changed.

    A file that cannot be read is moved to inbox/failed/ with the reason in the log, and the
    supervisor screen shows it (`sync.agent.status`); `flask --app kiosk sync --repull` fetches
    central's whole configuration again.
    """
    inbox = sync_dir(Path(data_dir)) / INBOX_DIR
    try:
        names = sorted(name for name in os.listdir(inbox) if _NAME.match(name))
    except FileNotFoundError:
        return 0
    changed = 0
    for name in names:
        path = inbox / name
        try:
            pulled = protocol.InboxFile.model_validate_json(path.read_bytes())
            for change in pulled.changes:
                change.check()
        except FileNotFoundError:
            continue
        except (ValidationError, protocol.ProtocolError, OSError) as exc:
            _set_aside(inbox, path, exc)
            continue
        changed += _apply(store, pulled.changes)
        path.unlink()
        fsync_dir(inbox)
        log.info("applied configuration from central up to %d (%s)", pulled.next_since, name)
    return changed


def _apply(store, changes: list[protocol.PulledChange]) -> int:
    """Apply one file's changes as one commit; skip documents that are already as central has them."""
    changed = 0
    with store.transaction(origin=protocol.ORIGIN_CENTRAL):
        for change in changes:
            if change.t not in protocol.PULL_TABLES:
                log.warning("ignoring pulled change to %s (not a table central maintains)", change.t)
                continue
            if change.t == "settings" and change.k in protocol.LOCAL_SETTINGS:
                log.warning("ignoring pulled change to kiosk-owned setting %s", change.k)
                continue
            doc = change.d
            if change.t == "services":
                # the centre's own switches win until central changes that field (kiosk.domain.overrides)
                note = store.get(overrides.TABLE, change.k)
                if change.o == "put" and note is not None:
                    doc, left = overrides.merge(note, change.d)
                    if left != note:
                        if left is None:
                            store.delete(overrides.TABLE, change.k)
                        else:
                            store.put(overrides.TABLE, left)
                elif change.o != "put" and note is not None:
                    store.delete(overrides.TABLE, change.k)
            if change.o == "put":
                if store.get(change.t, change.k) != doc:
                    store.put(change.t, doc)
                    changed += 1
            elif store.delete(change.t, change.k):
                changed += 1
    return changed


def _set_aside(inbox: Path, path: Path, exc: Exception) -> None:
    """Move an unreadable inbox file out of the way, so later files still apply."""
    failed = inbox / FAILED_DIR
    failed.mkdir(mode=0o700, exist_ok=True)
    detail = protocol.describe(exc) if isinstance(exc, ValidationError) else str(exc)
    log.error("pulled configuration %s cannot be applied (%s); moved to %s", path.name, detail, failed)
    os.replace(path, failed / path.name)
    fsync_dir(inbox)
