"""Audit checkpoints at central: keep what arrives of each centre's audit chain, check every
signed checkpoint against the segment since the previous one, and flag gaps, altered entries and
forks (docs/sync.md, "Audit checkpoints").

Entries and checkpoints may arrive in any order and across many pushes. A checkpoint whose
segment still has missing entries stays `pending` while the device's journal has not reached the
sequence the checkpoint was taken at; once central holds the journal up to there, a missing entry
can no longer be late and is a GAP. A segment is read from the database in number order as a
stream, so checking the first checkpoint of a year-old centre never holds the year in memory.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Iterable

from sqlalchemy import Connection, func, select, update

from kiosk.domain import audit
from sync.central.models import AuditCheckpoint, AuditEntry, AuditFlag, DeviceCursor
from sync.central.sql import batched, insert_for

log = logging.getLogger(__name__)

PENDING, OK, FLAGGED = "pending", "ok", "flagged"
CHUNK = 1000       # numbers per IN (...) lookup
STREAM_ROWS = 2000  # rows fetched at a time while a segment is checked
SEGMENT_LIMIT = 100_000  # entries checked per request (~3 s); a longer segment goes on at the next


class CheckpointRefused(ValueError):
    """A checkpoint that is not this device's to give (bad signature, another device or centre)."""


def refusal(doc: object, device) -> str | None:
    """Why `doc` is not a valid checkpoint from `device`, or None."""
    if not isinstance(doc, dict):
        return "a checkpoint must be an object"
    if doc.get("device_id") != device.device_id or doc.get("centre") != device.centre:
        return "a checkpoint must name the device that sends it and its centre"
    if not isinstance(doc.get("id"), str) or not 1 <= len(doc["id"]) <= 128:
        return "a checkpoint needs an id of 1 to 128 characters"
    if not isinstance(doc.get("at"), str) or len(doc["at"]) > 40:
        return "a checkpoint needs its time (at)"
    if doc.get("seq") is not None and (not isinstance(doc["seq"], int) or doc["seq"] < 0):
        return "a checkpoint's seq must be a whole number"
    if not audit.verify_checkpoint(doc, device.public_key):
        return "the checkpoint's signature does not verify with the device's key"
    return None


def record_entries(conn: Connection, device, docs: Iterable[dict], removed: Iterable[str],
                   now: dt.datetime) -> None:
    """Keep the links of pushed audit entries (first arrival wins), flag an entry that comes back
    different, and flag entries the kiosk deleted from its store."""
    centre = device.centre
    links: dict[int, dict] = {}
    for doc in docs:
        if isinstance(doc.get("n"), int) and doc["n"] >= 1:
            links[doc["n"]] = audit.link(doc)
    if links:
        rows = [{"centre": centre, "n": n, "entry_id": str(item["id"])[:128], "prev": str(item["prev"])[:256],
                 "hash": str(item["hash"])[:256], "digest": item["digest"], "intact": item["intact"],
                 "device_id": device.device_id, "received_at": now} for n, item in links.items()]
        batched(conn, insert_for(conn, AuditEntry).on_conflict_do_nothing(), rows, AuditEntry.n)
        numbers = sorted(links)
        for start in range(0, len(numbers), CHUNK):
            chunk = numbers[start:start + CHUNK]
            for row in conn.execute(select(AuditEntry).where(AuditEntry.centre == centre, AuditEntry.n.in_(chunk))):
                stored = {"n": row.n, "id": row.entry_id, "prev": row.prev, "hash": row.hash, "digest": row.digest}
                finding = audit.compare_resent(stored, links[row.n])
                if finding is not None:
                    flag(conn, centre, finding, device.device_id, now)
                elif not links[row.n]["intact"]:
                    flag(conn, centre, audit.Finding(audit.ALTERED, row.n,
                                                     f"entry {row.n} does not match its own hash"),
                         device.device_id, now)
    removed = sorted(set(removed))
    for start in range(0, len(removed), CHUNK):
        for row in conn.execute(select(AuditEntry.n, AuditEntry.entry_id).where(
                AuditEntry.centre == centre, AuditEntry.entry_id.in_(removed[start:start + CHUNK]))):
            flag(conn, centre, audit.Finding(audit.GAP, row.n, f"entry {row.n} ({row.entry_id}) was deleted "
                                             "from the kiosk's store"), device.device_id, now)


def receive(conn: Connection, device, doc: dict, *, seq: int, now: dt.datetime) -> str:
    """Store a checkpoint from `device` (already checked with `refusal`) and check it; its status.
    `seq`: the device's journal sequence at which the head was read (or the commit carrying it)."""
    row = {"centre": device.centre, "checkpoint_id": doc["id"], "kind": doc["kind"], "device_id": device.device_id,
           "n": doc["n"], "hash": doc["hash"], "at": doc["at"], "seq": seq, "doc": doc, "status": PENDING,
           "received_at": now, "verified_at": None, "checked_n": None, "checked_hash": None}
    conn.execute(insert_for(conn, AuditCheckpoint).on_conflict_do_nothing(), [row])
    stored = conn.execute(select(AuditCheckpoint).where(AuditCheckpoint.centre == device.centre,
                                                        AuditCheckpoint.checkpoint_id == doc["id"])).one()
    if stored.status != PENDING:
        return stored.status
    return verify(conn, stored, now)


def verify_pending(conn: Connection, centre: str | None, now: dt.datetime) -> bool:
    """Check again the checkpoints still waiting (of one centre, or all), lowest first, stopping
    after one has checked its bounded part of a long segment; True when that happened (there is
    more of the same work to do)."""
    stmt = select(AuditCheckpoint).where(AuditCheckpoint.status == PENDING).order_by(AuditCheckpoint.centre,
                                                                                      AuditCheckpoint.n)
    if centre is not None:
        stmt = stmt.where(AuditCheckpoint.centre == centre)
    for row in conn.execute(stmt).all():
        if verify(conn, row, now) == PENDING:
            checked = conn.execute(select(AuditCheckpoint.checked_n).where(
                AuditCheckpoint.centre == row.centre, AuditCheckpoint.checkpoint_id == row.checkpoint_id)).scalar()
            if checked != row.checked_n:
                return True
    return False


def _base(conn: Connection, cp) -> tuple[int, str]:
    """Where the segment of `cp` starts: the highest checked point below it, a checkpoint already
    checked (a flagged one too: what it showed is flagged, and the kiosk's history goes on from
    there) or the checked part of a long segment, else the start of the chain."""
    best = (0, audit.GENESIS)
    row = conn.execute(select(AuditCheckpoint.n, AuditCheckpoint.hash).where(
        AuditCheckpoint.centre == cp.centre, AuditCheckpoint.n < cp.n, AuditCheckpoint.status != PENDING)
        .order_by(AuditCheckpoint.n.desc(), AuditCheckpoint.received_at.desc()).limit(1)).first()
    if row is not None:
        best = (row.n, row.hash)
    row = conn.execute(select(AuditCheckpoint.checked_n, AuditCheckpoint.checked_hash).where(
        AuditCheckpoint.centre == cp.centre, AuditCheckpoint.checked_n < cp.n,
        AuditCheckpoint.checked_n > best[0]).order_by(AuditCheckpoint.checked_n.desc()).limit(1)).first()
    if row is not None:
        best = (row.checked_n, row.checked_hash)
    return best


def verify(conn: Connection, cp, now: dt.datetime) -> str:
    """Check one checkpoint against the segment after the highest checked point below it (`_base`);
    store what is found and the checkpoint's new status. At most SEGMENT_LIMIT entries are read per
    call: a longer segment (the first checkpoint of a centre with a long history) is checked part by
    part, its progress kept on the checkpoint, over the next pushes (or `flask --app sync.central
    audit-verify`)."""
    centre = cp.centre
    findings: list[audit.Finding] = []
    for other in conn.execute(select(AuditCheckpoint.checkpoint_id, AuditCheckpoint.hash).where(
            AuditCheckpoint.centre == centre, AuditCheckpoint.n == cp.n, AuditCheckpoint.hash != cp.hash)):
        findings.append(audit.Finding(audit.FORK, cp.n, f"two checkpoints of entry {cp.n} disagree: "
                                      f"{cp.hash[:12]} and {other.hash[:12]}"))
    at_n = conn.execute(select(AuditEntry.hash).where(AuditEntry.centre == centre, AuditEntry.n == cp.n)).scalar()
    if cp.n > 0 and at_n is not None and at_n != cp.hash:
        findings.append(audit.Finding(audit.FORK, cp.n, f"the checkpoint says entry {cp.n} is {cp.hash[:12]}, "
                                      f"central received {at_n[:12]}"))
    start_n, start_hash = _base(conn, cp)
    end_n = min(cp.n, start_n + SEGMENT_LIMIT)
    partial = end_n < cp.n
    if cp.n == 0:
        segment = [] if cp.hash == audit.GENESIS else [audit.Finding(audit.FORK, 0, "an empty chain has another hash")]
    else:
        # yield_per on the statement (not the connection, which would keep it for later statements):
        # a server-side cursor on PostgreSQL, rows fetched a few thousand at a time
        rows = conn.execute(
            select(AuditEntry.n, AuditEntry.prev, AuditEntry.hash, AuditEntry.intact)
            .where(AuditEntry.centre == centre, AuditEntry.n > start_n, AuditEntry.n <= end_n)
            .order_by(AuditEntry.n).execution_options(yield_per=STREAM_ROWS))
        segment = audit.check_segment(start_n, start_hash, ({"n": r.n, "prev": r.prev, "hash": r.hash,
                                                             "intact": r.intact} for r in rows),
                                      end_n, None if partial else cp.hash)
        rows.close()
    findings.extend(segment)
    gaps = [f for f in findings if f.kind == audit.GAP]
    covered = conn.execute(select(func.coalesce(func.max(DeviceCursor.last_seq), 0))
                           .where(DeviceCursor.device_id == cp.device_id)).scalar()
    progress = {}
    if gaps and covered < cp.seq:
        # entries may still be on their way: keep waiting, but what is already wrong is wrong
        for finding in findings:
            if finding.kind != audit.GAP:
                flag(conn, centre, finding, cp.device_id, now)
        status = FLAGGED if len(gaps) < len(findings) else PENDING
    else:
        for finding in findings:
            flag(conn, centre, finding, cp.device_id, now)
        status = FLAGGED if findings else (PENDING if partial else OK)
        if partial and not findings:
            progress = {"checked_n": end_n, "checked_hash": conn.execute(select(AuditEntry.hash).where(
                AuditEntry.centre == centre, AuditEntry.n == end_n)).scalar()}
    conn.execute(update(AuditCheckpoint).where(AuditCheckpoint.centre == centre,
                                               AuditCheckpoint.checkpoint_id == cp.checkpoint_id)
                 .values(status=status, verified_at=now, **progress))
    return status


def flag(conn: Connection, centre: str, finding: audit.Finding, device_id: str | None, now: dt.datetime) -> None:
    """Store a finding once (a finding seen again is the same flag)."""
    fingerprint = hashlib.sha256(f"{finding.kind}|{finding.n}|{finding.detail}".encode("utf-8")).hexdigest()
    result = conn.execute(insert_for(conn, AuditFlag).on_conflict_do_nothing(),
                          [{"centre": centre, "kind": finding.kind, "n": finding.n, "device_id": device_id,
                            "detail": finding.detail[:1000], "fingerprint": fingerprint, "flagged_at": now}])
    if result.rowcount:
        log.warning("centre %s: audit %s at entry %d: %s", centre, finding.kind, finding.n, finding.detail)


def flags(conn: Connection, centre: str | None = None) -> list:
    """Every flag (of one centre), newest first."""
    stmt = select(AuditFlag).order_by(AuditFlag.flagged_at.desc(), AuditFlag.id.desc())
    if centre is not None:
        stmt = stmt.where(AuditFlag.centre == centre)
    return conn.execute(stmt).all()


def status_by_centre(conn: Connection) -> dict[str, dict]:
    """Per centre: flags stored, the last checkpoint verified ok (n, at), checkpoints pending.
    One grouped query per measure, whatever the number of centres."""
    out: dict[str, dict] = {}
    for row in conn.execute(select(AuditFlag.centre, func.count()).group_by(AuditFlag.centre)):
        out.setdefault(row[0], {})["flags"] = row[1]
    for row in conn.execute(select(AuditCheckpoint.centre, AuditCheckpoint.status, func.count(),
                                   func.max(AuditCheckpoint.n))
                            .group_by(AuditCheckpoint.centre, AuditCheckpoint.status)):
        out.setdefault(row[0], {})[row[1]] = row[2]
        if row[1] == OK:
            out[row[0]]["verified_n"] = row[3]
    return out


def latest(conn: Connection, centre: str, *, limit: int = 20) -> list:
    """The centre's most recent checkpoints."""
    return conn.execute(select(AuditCheckpoint).where(AuditCheckpoint.centre == centre)
                        .order_by(AuditCheckpoint.received_at.desc(), AuditCheckpoint.n.desc()).limit(limit)).all()
