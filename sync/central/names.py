"""Names of centres and services as operators and citizens read them, in their language.

A centre's name in a language is `centres.names[lang]` (set with `add-centre --ar/--ckb/--en` or
`centre-names`), else its one `centres.name`. A service's names are the `names` of that centre's
service document in central's configuration (config_docs, table `services`): central is the
authority for services, and kiosks never push them. A service no configuration names is shown by
its code, and so is an unknown centre.
"""
from __future__ import annotations

from markupsafe import Markup
from sqlalchemy import Connection, select

from sync.central.i18n import named, pick
from sync.central.models import Centre, ConfigDoc


class Directory:
    """Centre and service names central knows, read once for a page or an answer."""

    def __init__(self, centres: dict[str, tuple[str, dict]], services: dict[str, dict[str, dict]]):
        """`centres`: code -> (name, names by language); `services`: code -> centre -> names."""
        self._centres = centres
        self._services = services

    def centre(self, code: str, lang: str | None = None) -> str | None:
        """A centre's name in `lang` (the page's language by default), None for an unknown centre."""
        found = self._centres.get(code)
        return pick(found[1], lang, found[0]) if found else None

    def service(self, code: str, centre: str | None = None, lang: str | None = None) -> str | None:
        """A service's name at one centre; for all centres, the names they give it (joined when
        they differ); None when no configuration names it."""
        per_centre = self._services.get(code, {})
        if centre is not None:
            return pick(per_centre.get(centre), lang)
        found = sorted({n for n in (pick(names, lang) for names in per_centre.values()) if n})
        return " / ".join(found) or None

    def centre_label(self, code: str) -> Markup:
        """A centre's name with its code beside it (operators need both)."""
        return named(self.centre(code), code)

    def service_label(self, code: str, centre: str | None = None) -> Markup:
        """A service's name with its code beside it."""
        return named(self.service(code, centre), code)


def directory(conn: Connection, centre: str | None = None) -> Directory:
    """The names of every centre and of the services configured for `centre` (or for all)."""
    centres = {row.code: (row.name, row.names if isinstance(row.names, dict) else {})
               for row in conn.execute(select(Centre.code, Centre.name, Centre.names))}
    query = select(ConfigDoc.centre, ConfigDoc.key, ConfigDoc.doc).where(ConfigDoc.tbl == "services",
                                                                        ConfigDoc.deleted.is_(False))
    if centre is not None:
        query = query.where(ConfigDoc.centre == centre)
    services: dict[str, dict[str, dict]] = {}
    for row in conn.execute(query):
        names = row.doc.get("names") if isinstance(row.doc, dict) else None
        if isinstance(names, dict):
            services.setdefault(row.key, {})[row.centre] = names
    return Directory(centres, services)
