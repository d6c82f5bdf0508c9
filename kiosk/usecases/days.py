"""Closing service days: what is left of a day's queue is ended, and the day's finished records
move from the live store into the archive (`kiosk.store.archive`), so the live store, and with it
start-up, memory and compaction, follows today's work rather than the centre's history.

A service day is the local date in the centre's time zone (`TIMEZONE`); it ends at local midnight.
The serving kiosk closes every earlier day on its own (its housekeeping thread, `kiosk.app`),
at start-up and after midnight; `flask --app kiosk close-day` does the same while it is stopped.

What stays live: today, open tickets (only one being served when its day ended can be), open
cases (until they are completed, rejected or referred, by the centre or by a back office) with
their receipts, configuration and counters. Central keeps receiving everything: it reads the
journal, and the commits that remove archived records from the live store travel as empty stubs.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from kiosk import cases, services
from kiosk.clock import iso
from kiosk.domain import audit
from kiosk.domain.errors import InvalidTransition, NotFound
from kiosk.domain.tickets import State
from kiosk.ids import new_ulid
from kiosk.store import read_acked_seq
from kiosk.store.archive import TABLES, Part
from sync.protocol import ORIGIN_ARCHIVE

log = logging.getLogger(__name__)

SYSTEM = "system"            # the actor of what day close does on its own
DAY_CLOSED = "day_closed"    # the reason recorded on a ticket ended by day close
ENDED = frozenset({State.WAITING.value, State.CALLED.value, State.HELD.value, State.NO_SHOW.value})
FINAL = frozenset({State.DONE.value, State.TRANSFERRED.value, State.CANCELLED.value})
REMOVE_CHUNK = 500           # live copies removed per commit: short holds of the store's lock


def close_days(c: services.Centre, *, progress: Callable[[Part], None] | None = None) -> dict:
    """Close every service day before today; safe to run at any time and again after a kill.

    In order: finish a move a crash cut short; cancel the earlier days' tickets still waiting,
    called, held or not present (their numbers start again each day, and the oldest would
    otherwise go ahead of everyone by the maximum-wait rule); write each earlier day's finished
    records as a new archive part and remove their live copies; prune parts older than the
    retention that central has acknowledged. Returns what was done."""
    archive = c.history.archive
    archive.clean()
    pending = archive.pending()
    for part in pending:
        _remove_live(c, part, None)
        log.warning("finished moving %s to the archive (the last day close was interrupted)", part.file)
    resumed = archive.mark_done(pending)
    now = c.clock.now()
    today = c.today(now)
    ended = _end_queue(c, today)
    selected = _finished(c, today)
    seq = c.store.seq  # read after the records: every change they carry is at or below it
    written = archive.write_parts(selected, seq=seq, closed_at=iso(now))
    for part in written:
        _remove_live(c, part, selected[part.day])
    closed = archive.mark_done(written)
    for part in closed:
        log.info("archived %s: %s", part.file, part.counts)
        if progress is not None:
            progress(part)
    c.tickets.forget_days_before(today)
    cutoff = (dt.date.fromisoformat(today) - dt.timedelta(days=c.config["ARCHIVE_RETENTION_DAYS"])).isoformat()
    pruned = archive.prune(before_day=cutoff, acked_seq=read_acked_seq(c.store.data_dir))
    for part in pruned:
        log.info("pruned %s (older than the retention and acknowledged by central)", part.file)
    checkpoint = _checkpoint(c, now) if closed or resumed or ended else None
    return {"today": today, "ended": ended, "closed": closed, "resumed": resumed, "pruned": pruned,
            "checkpoint": checkpoint}


def _checkpoint(c: services.Centre, now: dt.datetime) -> dict | None:
    """Sign the audit chain's head with the device key and keep it in the `checkpoints` table, which
    the next sync pushes (docs/sync.md, "Audit checkpoints"). A kiosk not enrolled has no key: None."""
    from sync.agent import NotEnrolled, load_credential  # the credential file's one reader
    try:
        credential = load_credential(c.store.data_dir)
    except NotEnrolled:
        return None
    with c.store.lock, c.store.transaction():
        head = c.store.get("settings", "audit_head") or {"n": 0, "hash": audit.GENESIS}
        doc = audit.make_checkpoint(credential.private_key, checkpoint_id=new_ulid(int(now.timestamp() * 1000)),
                                    kind="day_close", device_id=credential.device_id, centre=credential.centre,
                                    n=head["n"], head_hash=head["hash"], at=iso(now))
        c.store.put("checkpoints", doc)
    log.info("signed the audit chain's head at entry %d", head["n"])
    return doc


def _end_queue(c: services.Centre, today: str) -> int:
    """Cancel the earlier days' tickets that can no longer be served; how many."""
    ended = 0
    for ticket in c.tickets.open_tickets():
        if ticket["day"] < today and ticket["state"] in ENDED:
            try:
                services.end_ticket(c, ticket["id"], by=SYSTEM, reason=DAY_CLOSED)
                ended += 1
            except (InvalidTransition, NotFound):
                continue  # someone acted on it meanwhile
    return ended


def _finished(c: services.Centre, today: str) -> dict[str, dict[str, list[dict]]]:
    """Day -> table -> the finished records of days before `today`, read one at a time (no long
    hold of the store's lock)."""
    out: dict[str, dict[str, list[dict]]] = {}
    closed_cases: set[str] = set()
    for table in TABLES:
        for key in c.store.keys(table):
            doc = c.store.get(table, key)
            if doc is None:
                continue
            day = c.history.day_of(table, doc)
            if day >= today or not _is_finished(c, table, doc, closed_cases):
                continue
            if table == "requests":
                closed_cases.add(doc["id"])
            out.setdefault(day, {}).setdefault(table, []).append(doc)
    return out


def _is_finished(c: services.Centre, table: str, doc: dict, closed_cases: set[str]) -> bool:
    """Whether a record of an earlier day can leave the live store: a ticket in a final state, a
    case that is closed (central's decision included), a receipt whose case is closed or already
    archived; number counters and audit entries always."""
    if table == "tickets":
        return doc["state"] in FINAL
    if table == "requests":
        return cases.current_status(c, doc).status.closed
    if table == "receipts":
        return doc["case"] in closed_cases or c.store.get(cases.CASES, doc["case"]) is None
    return True


def _remove_live(c: services.Centre, part: Part, records: dict[str, list[dict]] | None) -> None:
    """Remove the live copies of a part's records, in commits the sync agent does not push.

    A live copy that differs from the archived one (changed after it was read; finished records
    do not change) stays, and readers take it over the archived one."""
    if records is None:
        items = list(c.history.archive.read(part))
    else:
        items = [(table, doc) for table in TABLES for doc in records.get(table, ())]
    for start in range(0, len(items), REMOVE_CHUNK):
        with c.store.transaction(origin=ORIGIN_ARCHIVE):
            for table, doc in items[start:start + REMOVE_CHUNK]:
                if c.store.delete_if_unchanged(table, doc) is False:
                    log.error("%s %s changed after it was archived in %s; the live copy is kept",
                              table, doc["id"], part.file)
