"""Helpers for the appointment tests: the centre's appointment configuration at central, and a
central ready to book (root key, booking key, published trust list)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

HOST = "127.0.0.1"
# Central's test clock is 2026-11-22T09:00Z: Sunday 12:00 in Baghdad. Slots run every working day
# (Sunday to Thursday), 08:00-12:00 and 13:00-14:00 local, 15 minutes each.
HOURS = {day: ["08:00-12:00", "13:00-14:00"] for day in ("sun", "mon", "tue", "wed", "thu")}
APPOINTMENTS = {"id": "appointments", "timezone": "Asia/Baghdad", "days_ahead": 7, "close_before_min": 60,
                "early_min": 30, "grace_min": 15, "ratio": 2, "remind_before_h": 24,
                "services": {"A": {"slot_min": 15, "capacity": 5, "hours": HOURS},
                             "B": {"slot_min": 30, "capacity": 1, "hours": {"mon": ["09:00-10:00"]}}}}
CALENDAR = {"id": "calendar", "weekend": ["fri", "sat"], "holidays": ["2026-11-25"]}
SERVICES = [
    {"id": "A", "code": "A", "prefix": "A", "names": {"ar": "وثائق الأحوال المدنية", "ckb": "بەڵگەنامەکانی باری شارستانی",
                                                      "en": "Civil status documents"}},
    {"id": "B", "code": "B", "prefix": "B", "names": {"ar": "طلبات التعويض", "ckb": "داواکاری قەرەبووکردنەوە",
                                                      "en": "Compensation claims"}},
]
# Monday 2026-11-23, 10:00 in Baghdad (07:00 UTC): a slot of A, bookable from the test clock's time
MONDAY_10 = "2026-11-23T07:00:00.000Z"


def configure(ops, tmp_path: Path, centre: str = "ERB-01", **changes) -> None:
    """Load the centre's services, calendar and appointment settings at central."""
    path = tmp_path / f"{centre}-appointments.json"
    path.write_text(json.dumps({"services": SERVICES, "settings": [{**APPOINTMENTS, **changes}, CALENDAR]}),
                    encoding="utf-8")
    ops.cli("config-load", centre, str(path))


def make_bookable(ops, central_app, tmp_path: Path, *, host: str = HOST) -> None:
    """Central with its root key, its booking key on a published trust list, and ERB-01 configured."""
    central_app.config["CENTRAL_RECEIPTS_DIR"] = str(tmp_path / "central-receipts")
    ops.add_centre("ERB-01")
    configure(ops, tmp_path)
    ops.cli("trust-root-create")
    ops.cli("booking-key-create")
    ops.cli("trust-publish", "--verify-host", host)


def book(client, start: str = MONDAY_10, **fields):
    """POST /api/v1/appointments with the test's defaults."""
    body = {"centre": "ERB-01", "service": "A", "start": start, "lang": "en", **fields}
    return client.post("/api/v1/appointments", json=body)

# The kiosk tests' clock is 2026-11-22T06:00Z: Sunday 09:00 in Baghdad; a slot at 09:15 local.
KIOSK_HOST = "V.EXAMPLE.IQ"
SLOT = dt.datetime(2026, 11, 22, 6, 15, tzinfo=dt.timezone.utc)
