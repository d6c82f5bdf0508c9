"""The centre's own service switches, kept apart from central's configuration.

A supervisor may switch a service off (or on), close it until the next working day or change its
daily cap while the link to central is down. Central's configuration feed sends whole service
documents, so without this layer the next pull would silently put back central's values. Each
local change is noted per field with the value central had when it was made ("central") and the
centre's value ("local"). When a service document arrives from central:

- a field central still has at the noted value keeps the centre's value (the switch wins);
- a field central changed itself (its value differs from the noted one) takes central's new value
  and the note is dropped: the later, deliberate decision wins, whichever side made it.

Switching back to central's value drops the note. The switch (`active`, `closed_until`) counts as
one decision: when central changes `active`, a local `closed_until` goes with it.
"""
from __future__ import annotations

from collections.abc import Mapping

TABLE = "service_overrides"
FIELDS = ("active", "closed_until", "daily_cap")
_DEFAULTS = {"active": True, "closed_until": None, "daily_cap": None}
_LINKED = {"active": ("closed_until",)}


def _value(doc: Mapping, field: str):
    """A field of a service document, with the kiosk's default when absent."""
    return doc.get(field, _DEFAULTS[field])


def note(current: Mapping | None, before: Mapping, after: Mapping) -> dict | None:
    """The override document after a local change from `before` to `after` (None: nothing to keep).

    `current` is the service's override document so far (None when it has none)."""
    fields = {k: dict(v) for k, v in ((current or {}).get("fields") or {}).items()}
    for field in FIELDS:
        old, new = _value(before, field), _value(after, field)
        if old == new:
            continue
        central = fields[field]["central"] if field in fields else old
        if new == central:
            fields.pop(field, None)
        else:
            fields[field] = {"central": central, "local": new}
    if not fields:
        return None
    return {"id": after["id"], "fields": fields}


def merge(current: Mapping | None, incoming: Mapping) -> tuple[dict, dict | None]:
    """The service document to store when central sends `incoming`, and the override left.

    Fields central did not change since the local switch keep the centre's value; fields central
    changed take central's value and lose their note (with the fields linked to them)."""
    fields = {k: dict(v) for k, v in ((current or {}).get("fields") or {}).items()}
    for field in [f for f in FIELDS if f in fields]:
        if field in fields and _value(incoming, field) != fields[field]["central"]:
            fields.pop(field)
            for linked in _LINKED.get(field, ()):
                fields.pop(linked, None)
    doc = dict(incoming)
    for field, kept in fields.items():
        doc[field] = kept["local"]
    return doc, ({"id": incoming["id"], "fields": fields} if fields else None)
