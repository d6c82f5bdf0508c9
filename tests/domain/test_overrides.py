"""The centre's own service switches against central's later documents (kiosk.domain.overrides)."""
from __future__ import annotations

from kiosk.domain import overrides

CENTRAL = {"id": "A", "code": "A", "names": {"en": "Civil"}, "active": True, "daily_cap": None}


def test_a_local_switch_is_noted_with_centrals_value_and_dropped_when_switched_back():
    off = {**CENTRAL, "active": False}
    note = overrides.note(None, CENTRAL, off)
    assert note == {"id": "A", "fields": {"active": {"central": True, "local": False}}}
    assert overrides.note(note, off, CENTRAL) is None


def test_central_changing_another_field_keeps_the_switch():
    note = overrides.note(None, CENTRAL, {**CENTRAL, "active": False, "daily_cap": 9})
    doc, left = overrides.merge(note, {**CENTRAL, "names": {"en": "Civil records"}})
    assert doc["active"] is False and doc["daily_cap"] == 9 and doc["names"] == {"en": "Civil records"}
    assert left == note


def test_central_changing_the_same_field_wins_and_takes_the_linked_field_along():
    local = {**CENTRAL, "closed_until": "2026-11-24"}
    note = overrides.note(None, CENTRAL, local)
    note = overrides.note(note, local, {**local, "active": False, "closed_until": None})
    assert set(note["fields"]) == {"active"}
    note = {"id": "A", "fields": {"active": {"central": True, "local": False},
                                  "closed_until": {"central": None, "local": "2026-11-24"},
                                  "daily_cap": {"central": None, "local": 5}}}
    doc, left = overrides.merge(note, {**CENTRAL, "active": False})
    assert doc["active"] is False and "closed_until" not in doc and doc["daily_cap"] == 5
    assert left == {"id": "A", "fields": {"daily_cap": {"central": None, "local": 5}}}
    doc, left = overrides.merge(left, {**CENTRAL, "daily_cap": 30})
    assert doc["daily_cap"] == 30 and left is None


def test_nothing_noted_when_nothing_changed():
    assert overrides.note(None, CENTRAL, dict(CENTRAL)) is None
    assert overrides.merge(None, CENTRAL) == (CENTRAL, None)
