"""Export for analysts: one JSON line per ticket with its full event history."""
from __future__ import annotations

import datetime as dt
import json
from typing import Iterator

from sqlalchemy import Engine, select

from sync import protocol
from sync.central.models import Device, Record, TicketEventRow

_CHUNK = 500


def export_tickets(engine: Engine, centre: str, *, since: dt.datetime | None = None) -> Iterator[str]:
    """JSON lines for the tickets of `centre` recorded or changed at central on or after `since`.

    Events come from the immutable projection (every event central ever received, in order);
    `clock_offset_s` is the device's last measured offset (server minus device clock), so times
    can be corrected for a kiosk whose clock was wrong while staying shown as recorded.
    """
    with engine.connect() as conn:
        offsets = {r.device_id: r.clock_offset_s for r in conn.execute(
            select(Device.device_id, Device.clock_offset_s).where(Device.centre == centre))}
        query = (select(Record.key, Record.device_id, Record.doc, Record.deleted, Record.received_at,
                        Record.updated_at)
                 .where(Record.centre == centre, Record.tbl == "tickets")
                 .order_by(Record.key))
        if since is not None:
            query = query.where(Record.updated_at >= since)
        last_key = None
        while True:
            # keyset pages: bounded memory and no long-open cursor, on both databases
            page_query = query.where(Record.key > last_key) if last_key is not None else query
            page = conn.execute(page_query.limit(_CHUNK)).all()
            if not page:
                return
            keys = [r.key for r in page]
            events: dict[str, list] = {k: [] for k in keys}
            for ev in conn.execute(select(TicketEventRow.ticket_id, TicketEventRow.event)
                                   .where(TicketEventRow.ticket_id.in_(keys))
                                   .order_by(TicketEventRow.ticket_id, TicketEventRow.idx)):
                events[ev.ticket_id].append(ev.event)
            for r in page:
                line = {"centre": centre, "ticket_id": r.key, "device_id": r.device_id,
                        "deleted": r.deleted, "ticket": r.doc, "events": events[r.key],
                        "clock_offset_s": offsets.get(r.device_id),
                        "received_at": protocol.utc_iso(r.received_at),
                        "updated_at": protocol.utc_iso(r.updated_at)}
                yield json.dumps(line, ensure_ascii=False, separators=(",", ":"))
            last_key = keys[-1]
