"""Applying a device's pushed batch, in the request's one transaction.

Exactly-once in effect: the device cursor is locked and advanced in the same transaction as the
upserts, commits at or below the cursor are skipped, current-state documents are written
last-writer-wins by hybrid logical clock (so a replayed or older change never overwrites a newer
one), and ticket events are inserted once by (ticket, index) and never changed. Changes that
fail validation are quarantined and still acknowledged, so one bad row never blocks a kiosk.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import Connection, and_, or_, select, update

from sync import protocol
from sync.central import checkpoints
from sync.central.errors import ApiError
from sync.central.models import (Device, DeviceCursor, InboundBatch, Quarantined, Record,
                                 TicketEventRow)
from sync.central.sql import batched, insert_for

log = logging.getLogger(__name__)


def apply_push(conn: Connection, device, batch: protocol.PushRequest, checked: list[list[tuple]], *,
               body_sha256: str, now: dt.datetime, clock_offset_s: float | None) -> protocol.PushResponse:
    """Apply `batch` from the authenticated `device`; raise ApiError for a gap or a diverged history.

    `checked` holds each commit's changes as protocol.parse_push validated them.
    """
    if batch.device_id != device.device_id:
        raise ApiError(403, "forbidden", "a device may only push its own journal")
    try:
        batch.check_range()
    except protocol.ProtocolError as exc:
        # well-formed JSON of the right shape whose numbers disagree: a value error (422), like the
        # other protocol checks, not malformed input (400)
        raise ApiError(422, "validation_failed", str(exc), fields={"to_seq": str(exc)}) from None
    cursor = conn.execute(select(DeviceCursor).where(DeviceCursor.device_id == device.device_id)
                          .with_for_update()).one()
    last = cursor.last_seq
    if batch.from_seq > last + 1:
        raise ApiError(409, "sequence_gap",
                       f"central has this device's journal up to {last}; send from {last + 1}",
                       expected_from_seq=last + 1)
    for commit in batch.commits:
        if commit.s == last and cursor.last_hlc and commit.h != cursor.last_hlc:
            # the same sequence number with another clock: the kiosk's journal was rewound
            # (restored from a backup) and is reusing numbers central already holds
            raise ApiError(409, "history_diverged",
                           f"commit {last} differs from the one central acknowledged; the kiosk's data "
                           "was restored from an older backup: see docs/sync.md, 'Restored kiosk'",
                           acked_seq=last)
    fresh = [(c, changes) for c, changes in zip(batch.commits, checked) if c.s > last]
    chain = _AuditSeen()
    applied, quarantined = _apply_commits(conn, device, fresh, now, chain) if fresh else (0, 0)
    acked = max(last, batch.to_seq)
    if acked > last:
        conn.execute(update(DeviceCursor).where(DeviceCursor.device_id == device.device_id)
                     .values(last_seq=acked, last_hlc=fresh[-1][0].h if fresh else cursor.last_hlc,
                             updated_at=now))
    if fresh:
        # after the cursor moved: a checkpoint's missing entries are a gap only once central holds
        # the device's journal up to the checkpoint
        checkpoints.record_entries(conn, device, chain.entries.values(), chain.removed, now)
        for doc, seq in chain.checkpoints:
            checkpoints.receive(conn, device, doc, seq=seq, now=now)
        checkpoints.verify_pending(conn, device.centre, now)
    conn.execute(update(Device).where(Device.device_id == device.device_id)
                 .values(last_seen_at=now, last_push_at=now, head_seq=max(batch.head_seq, acked),
                         clock_offset_s=clock_offset_s if clock_offset_s is not None else device.clock_offset_s))
    if fresh:
        conn.execute(InboundBatch.__table__.insert().values(
            device_id=device.device_id, from_seq=fresh[0][0].s, to_seq=batch.to_seq, applied=applied,
            quarantined=quarantined, body_sha256=body_sha256, received_at=now))
    if quarantined:
        log.warning("device %s: %d changes quarantined in commits %d..%d", device.device_id,
                    quarantined, batch.from_seq, batch.to_seq)
    return protocol.PushResponse(v=protocol.VERSION, acked_seq=acked, applied=applied,
                                 quarantined=quarantined, server_time=protocol.utc_iso(now))


class _AuditSeen:
    """The audit entries, removals and checkpoints a batch carried (for sync/central/checkpoints.py)."""

    def __init__(self):
        """Nothing seen yet."""
        self.entries: dict[str, dict] = {}
        self.removed: list[str] = []
        self.checkpoints: list[tuple[dict, int]] = []


def _apply_commits(conn: Connection, device, commits: list[tuple[protocol.Commit, list[tuple]]],
                   now: dt.datetime, chain: _AuditSeen) -> tuple[int, int]:
    """Write the checked changes of `commits`, quarantining the invalid ones; (applied, quarantined)."""
    latest: dict[tuple[str, str], tuple[dict, int, str]] = {}
    events: dict[tuple[str, int], dict] = {}
    clears: list[tuple[str, int, str]] = []
    bad: list[dict] = []
    centre = device.centre
    for commit, checked in commits:
        for index, (change, reason) in enumerate(checked):
            if change is None:
                bad.append(_quarantine_row(device, commit.s, index, commit.c[index], reason, now))
            elif change["t"] == "checkpoints" and change["o"] == "put" and (
                    refused := checkpoints.refusal(change["d"], device)):
                bad.append(_quarantine_row(device, commit.s, index, commit.c[index], refused, now))
            elif change["o"] == "clear":
                clears.append((change["t"], commit.s, commit.h))
                if change["t"] == "audit":
                    chain.removed.extend(conn.execute(select(Record.key).where(
                        Record.centre == centre, Record.tbl == "audit", Record.device_id == device.device_id,
                        Record.deleted.is_(False))).scalars())
            else:
                if change["t"] == "audit":
                    if change["o"] == "put":
                        chain.entries[change["k"]] = change["d"]
                    else:  # an entry written and deleted within one batch is still kept, then flagged
                        chain.removed.append(change["k"])
                elif change["t"] == "checkpoints" and change["o"] == "put":
                    chain.checkpoints.append((change["d"], commit.s))
                # several changes to one row in a batch: PostgreSQL refuses to upsert a row twice
                # in one statement, and only the newest matters for the current state
                latest[(change["t"], change["k"])] = (change, commit.s, commit.h)
                if change["o"] == "put" and change["t"] == "tickets":
                    # but every version's events count: history survives even a later delete
                    for idx, event in enumerate(change["d"]["events"]):
                        events.setdefault((change["k"], idx),
                                          _event_row(centre, device.device_id, change["k"], idx, event, now))
    records = []
    for (table, key), (change, seq, hlc) in latest.items():
        put = change["o"] == "put"
        records.append({"centre": centre, "tbl": table, "key": key, "device_id": device.device_id,
                        "seq": seq, "hlc": hlc, "doc": change["d"] if put else None, "deleted": not put,
                        "received_at": now, "updated_at": now, "day": service_day(change["d"]) if put else None})
    write_records(conn, records)
    write_events(conn, list(events.values()))
    for table, seq, hlc in clears:
        _clear(conn, centre, device.device_id, table, seq, hlc, now)
    if bad:
        stmt = insert_for(conn, Quarantined).on_conflict_do_nothing()
        batched(conn, stmt, bad, Quarantined.seq)
    return len(records) + len(clears), len(bad)


def write_records(conn: Connection, rows: list[dict]) -> None:
    """Upsert current-state rows: a row is replaced only by a change with a later clock."""
    if not rows:
        return
    ins = insert_for(conn, Record)
    ex = ins.excluded
    stmt = ins.on_conflict_do_update(
        index_elements=[Record.centre, Record.tbl, Record.key],
        set_={"device_id": ex.device_id, "seq": ex.seq, "hlc": ex.hlc, "doc": ex.doc,
              "deleted": ex.deleted, "updated_at": ex.updated_at, "day": ex.day},
        # equal clocks from two devices are ordered by device id, so every replica picks one winner
        where=or_(Record.hlc < ex.hlc, and_(Record.hlc == ex.hlc, Record.device_id < ex.device_id)))
    batched(conn, stmt, rows, Record.key)


def service_day(doc: object) -> str | None:
    """The service day (YYYY-MM-DD) a document names, if any."""
    day = doc.get("day") if isinstance(doc, dict) else None
    return day if isinstance(day, str) and len(day) == 10 else None


def write_events(conn: Connection, rows: list[dict]) -> None:
    """Insert ticket events that are not there yet; a recorded event is never changed."""
    if not rows:
        return
    stmt = insert_for(conn, TicketEventRow).on_conflict_do_nothing(
        index_elements=[TicketEventRow.ticket_id, TicketEventRow.idx])
    batched(conn, stmt, rows, TicketEventRow.idx)


def _event_row(centre: str, device_id: str, ticket_id: str, idx: int, event: dict,
               now: dt.datetime) -> dict:
    """The projection row of one ticket event."""
    counter = event.get("counter")
    return {"ticket_id": ticket_id, "idx": idx, "centre": centre, "device_id": device_id,
            "state": event["state"], "at": event["at"], "counter": None if counter is None else str(counter),
            "by": event.get("by"), "event": event, "received_at": now}


def _clear(conn: Connection, centre: str, device_id: str, table: str, seq: int, hlc: str,
           now: dt.datetime) -> None:
    """A kiosk emptied a table: tombstone that device's older rows of it."""
    conn.execute(update(Record)
                 .where(Record.centre == centre, Record.tbl == table, Record.device_id == device_id,
                        Record.hlc < hlc)
                 .values(deleted=True, doc=None, hlc=hlc, seq=seq, updated_at=now))


def _quarantine_row(device, seq: int, index: int, raw, reason: str, now: dt.datetime) -> dict:
    """A quarantine row keeping the change exactly as received."""
    table = raw.get("t") if isinstance(raw, dict) else None
    key = raw.get("k") if isinstance(raw, dict) else None
    return {"device_id": device.device_id, "seq": seq, "idx": index, "centre": device.centre,
            "tbl": str(table)[:63] if table is not None else None,
            "key": str(key)[:128] if key is not None else None, "reason": reason[:400],
            "change": json.dumps(raw, ensure_ascii=False)[:1_000_000], "received_at": now}
