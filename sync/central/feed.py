"""Central's configuration for each centre and the change feed kiosks pull it from.

Loading a configuration file compares it with what central holds: new and changed documents
become `put` entries of the feed, documents no longer in the file become `del` tombstones, and
unchanged ones cost nothing. One load is one transaction. Feed writers are serialised on
PostgreSQL with an advisory lock, because sequence values can commit out of order and a reader
asking "since N" would otherwise skip a slower writer's rows for ever.
"""
from __future__ import annotations

import datetime as dt
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError
from sqlalchemy import Connection, select, text, update

from kiosk.domain import appointments, cases
from sync import protocol
from sync.central.errors import CentralError
from sync.central.models import Centre, ConfigAudit, ConfigChange, ConfigDoc, Device, DeviceCursor
from sync.central.sql import insert_for

log = logging.getLogger(__name__)

_FEED_LOCK = 0x6B696F736C  # pg_advisory_xact_lock key of the configuration feed
CONFIG = "config"
PAGE = "page"


def validate_config(data: object) -> dict[str, list[dict]]:
    """Check a configuration file's content; return {table: [documents]} or raise CentralError."""
    docs, problems = check_config(data)
    if problems:
        raise CentralError("the configuration is not valid:\n  " + "\n  ".join(
            f"{table}[{index}]{'.' + field if field else ''}: {message}"
            for table, index, field, message in problems[:50]))
    return docs


def check_config(data: object) -> tuple[dict[str, list[dict]], list[tuple[str, int, str, str]]]:
    """The rules every configuration document passes, whether it comes from a file or a page:
    the valid documents per table, and each problem as (table, index, field, message); field is
    "" when the problem is the document's as a whole. Raises CentralError for a wrong shape."""
    if not isinstance(data, dict):
        raise CentralError("the configuration file must hold a JSON object of tables")
    unknown = set(data) - set(protocol.CONFIG_MODELS)
    if unknown:
        raise CentralError(f"unknown tables {sorted(unknown)}; expected some of {sorted(protocol.CONFIG_MODELS)}")
    out: dict[str, list[dict]] = {}
    problems: list[tuple[str, int, str, str]] = []
    for table, docs in data.items():
        if not isinstance(docs, list):
            raise CentralError(f"{table} must be a list of documents")
        model = protocol.CONFIG_MODELS[table]
        seen: set[str] = set()
        out[table] = []
        for index, doc in enumerate(docs):
            if isinstance(doc, dict) and table == "services" and "id" not in doc and "code" in doc:
                doc = {"id": doc["code"], **doc}
            try:
                model.model_validate(doc)
            except ValidationError as exc:
                for field, message in protocol.describe(exc).items():
                    problems.append((table, index, field, message))
                continue
            if table == "services" and doc["id"] != doc["code"]:
                problems.append((table, index, "code", f"a service's id is its code ({doc['code']!r})"))
            if table == "settings" and doc["id"] in protocol.LOCAL_SETTINGS:
                problems.append((table, index, "id", f"{doc['id']!r} belongs to the kiosk and cannot be set centrally"))
            if table == "settings" and doc["id"] == appointments.SETTING:
                try:
                    appointments.Settings.from_doc(doc)
                except ValueError as exc:
                    problems.append((table, index, "", str(exc)))
            if table == "settings" and doc["id"] == cases.CALENDAR_SETTING:
                try:
                    cases.Calendar.from_settings(doc)
                except ValueError as exc:
                    problems.append((table, index, "", str(exc)))
            if doc["id"] in seen:
                problems.append((table, index, "id", f"id {doc['id']!r} appears twice"))
            seen.add(doc["id"])
            out[table].append(doc)
    return out, problems


def hash_pins(conn: Connection, centre: str, staff: object) -> None:
    """Replace each staff `pin` (given in clear) by its argon2 `pin_hash`, in place.

    When the PIN is the one central already holds, the stored hash is kept, so loading the same
    file twice changes nothing and sends nothing to the kiosks.
    """
    if not isinstance(staff, list):
        return  # validate_config reports the shape
    hasher = PasswordHasher()
    for doc in staff:
        if not isinstance(doc, dict) or "pin" not in doc:
            continue
        pin = doc.pop("pin")
        if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit() or not 4 <= len(pin) <= 12:
            raise CentralError(f"staff {doc.get('id')!r}: a PIN has 4 to 12 digits")
        current = conn.execute(select(ConfigDoc.doc).where(
            ConfigDoc.centre == centre, ConfigDoc.tbl == "staff", ConfigDoc.key == str(doc.get("id")),
            ConfigDoc.deleted.is_(False))).scalar()
        old_hash = (current or {}).get("pin_hash")
        try:
            if old_hash and hasher.verify(old_hash, pin):
                doc["pin_hash"] = old_hash
                continue
        except (VerificationError, InvalidHashError):
            pass
        doc["pin_hash"] = hasher.hash(pin)


def load_config(conn: Connection, centre: str, data: object, *, now: dt.datetime,
                actor: str = "config-load") -> dict[str, dict[str, int]]:
    """Make central's configuration of `centre` equal to `data`; return counts per table.

    A table missing from `data` is left as it is; a table given as an empty list is emptied of
    what files put there. A document the file names replaces central's, also one last edited on a
    configuration page (the file is then its keeper again); a document edited or created on a
    page and missing from the file is kept (docs/sync.md). Every put and removal is audited.
    """
    if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
        raise CentralError(f"no centre {centre!r}; add it first with add-centre")
    if isinstance(data, dict):
        hash_pins(conn, centre, data.get("staff"))
    docs = validate_config(data)
    lock_feed(conn)
    summary: dict[str, dict[str, int]] = {}
    for table, wanted in docs.items():
        counts = {"put": 0, "del": 0, "unchanged": 0}
        current = {row.key: row for row in conn.execute(select(ConfigDoc).where(
            ConfigDoc.centre == centre, ConfigDoc.tbl == table))}
        wanted_keys = set()
        for doc in wanted:
            wanted_keys.add(doc["id"])
            row = current.get(doc["id"])
            if row is not None and not row.deleted and row.source not in (CONFIG, PAGE):
                raise CentralError(f"{table}/{doc['id']} is kept by central itself ({row.source}); "
                                   "leave it out of the configuration file")
            live = row is not None and not row.deleted
            if live and row.doc == doc:
                if row.source == PAGE:  # the file now says the same: it keeps the document again
                    conn.execute(update(ConfigDoc).where(ConfigDoc.centre == centre, ConfigDoc.tbl == table,
                                                         ConfigDoc.key == doc["id"]).values(source=CONFIG))
                counts["unchanged"] += 1
                continue
            seq = _record(conn, centre, table, doc["id"], "put", doc, now, source=CONFIG)
            write_audit(conn, centre, table, doc["id"], row.doc if live else None, doc, actor=actor,
                        via="config-load", seq=seq, now=now)
            counts["put"] += 1
        for key, row in current.items():
            # only what configuration files put there: central's own documents and page edits stay
            if key not in wanted_keys and not row.deleted and row.source == CONFIG:
                seq = _record(conn, centre, table, key, "del", None, now, source=CONFIG)
                write_audit(conn, centre, table, key, row.doc, None, actor=actor, via="config-load",
                            seq=seq, now=now)
                counts["del"] += 1
        summary[table] = counts
    log.info("configuration of centre %s loaded: %s", centre, summary)
    return summary


def save_doc(conn: Connection, centre: str, table: str, doc: dict, *, actor: str,
             now: dt.datetime) -> int | None:
    """Put one document edited on a configuration page into the feed, audited; return the feed
    sequence, or None when it is what central already holds. The caller validated it with
    `check_config` and hashed any PIN; a document central keeps itself cannot be edited here."""
    lock_feed(conn)
    row = conn.execute(select(ConfigDoc).where(ConfigDoc.centre == centre, ConfigDoc.tbl == table,
                                               ConfigDoc.key == doc["id"])).first()
    live = row is not None and not row.deleted
    if live and row.source not in (CONFIG, PAGE):
        raise CentralError(f"{table}/{doc['id']} is kept by central itself ({row.source})")
    if live and row.doc == doc:
        return None
    seq = _record(conn, centre, table, doc["id"], "put", doc, now, source=PAGE)
    write_audit(conn, centre, table, doc["id"], row.doc if live else None, doc, actor=actor, via="page",
                seq=seq, now=now)
    return seq


def current_docs(conn: Connection, centre: str, table: str) -> dict[str, dict]:
    """Central's live documents of one configuration table of a centre, by id."""
    return {row.key: row.doc for row in conn.execute(select(ConfigDoc.key, ConfigDoc.doc).where(
        ConfigDoc.centre == centre, ConfigDoc.tbl == table, ConfigDoc.deleted.is_(False)))}


def _diff(before: dict | None, after: dict | None) -> dict[str, list]:
    """{field: [before, after]} of what differs; a PIN hash is never copied, only "reset"."""
    before, after = before or {}, after or {}
    out = {}
    for field in sorted(set(before) | set(after)):
        if field == "id" or before.get(field) == after.get(field):
            continue
        if field == "pin_hash":
            out["pin"] = [None, "reset" if after.get(field) else None]
        else:
            out[field] = [before.get(field), after.get(field)]
    return out


def write_audit(conn: Connection, centre: str, table: str, key: str, before: dict | None,
                after: dict | None, *, actor: str, via: str, seq: int, now: dt.datetime) -> None:
    """One row of central's configuration audit (who, when, what)."""
    action = "create" if before is None else "delete" if after is None else "update"
    conn.execute(ConfigAudit.__table__.insert().values(
        centre=centre, tbl=table, key=key, action=action, actor=actor[:64], via=via, at=now, seq=seq,
        changes=_diff(before, after)))


def lock_feed(conn: Connection) -> None:
    """Serialise feed writers so that sequence order is commit order (SQLite already serialises)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FEED_LOCK})


def _record(conn: Connection, centre: str, table: str, key: str, op: str, doc: dict | None,
            now: dt.datetime, *, source: str = "system") -> int:
    """Append one change to the feed and make the current document match it.

    `source` says who maintains the document: configuration files (`config`), the configuration
    pages (`page`) or central's own features (`system`, the default); config-load removes only its
    own documents. Returns the change's feed sequence.
    """
    seq = conn.execute(ConfigChange.__table__.insert().values(
        centre=centre, tbl=table, key=key, op=op, doc=doc, changed_at=now)
        .returning(ConfigChange.seq)).scalar_one()
    ins = insert_for(conn, ConfigDoc).values(centre=centre, tbl=table, key=key, doc=doc,
                                             deleted=op == "del", seq=seq, updated_at=now, source=source)
    conn.execute(ins.on_conflict_do_update(
        index_elements=[ConfigDoc.centre, ConfigDoc.tbl, ConfigDoc.key],
        set_={"doc": ins.excluded.doc, "deleted": ins.excluded.deleted, "seq": ins.excluded.seq,
              "updated_at": ins.excluded.updated_at, "source": ins.excluded.source}))
    return seq


def pull(conn: Connection, device, *, since: int, limit: int, head_seq: int | None, now: dt.datetime,
         clock_offset_s: float | None) -> protocol.PullResponse:
    """A page of the device's centre's configuration changes after `since`."""
    rows = conn.execute(select(ConfigChange).where(ConfigChange.centre == device.centre,
                                                   ConfigChange.seq > since)
                        .order_by(ConfigChange.seq).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    changes = [protocol.PulledChange(seq=r.seq, t=r.tbl, o=r.op, k=r.key, d=r.doc) for r in rows]
    acked = conn.execute(select(DeviceCursor.last_seq).where(
        DeviceCursor.device_id == device.device_id)).scalar_one()
    values = {"last_seen_at": now, "last_pull_at": now}
    if clock_offset_s is not None:
        values["clock_offset_s"] = clock_offset_s
    if head_seq is not None:
        values["head_seq"] = max(head_seq, acked)
    conn.execute(update(Device).where(Device.device_id == device.device_id).values(**values))
    return protocol.PullResponse(v=protocol.VERSION, centre=device.centre, changes=changes,
                                 next_since=rows[-1].seq if rows else since, has_more=has_more,
                                 acked_seq=acked, server_time=protocol.utc_iso(now))
