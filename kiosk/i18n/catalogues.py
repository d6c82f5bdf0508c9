"""Extract, update, compile and check the gettext catalogues (ar = ar_IQ, ckb, en).

    .venv/bin/python -m kiosk.i18n.catalogues update    # extract (babel.cfg: kiosk/, sync/central/, templates/), merge into the .po files
    .venv/bin/python -m kiosk.i18n.catalogues compile   # write the .mo files (the app also does this at start-up)
    .venv/bin/python -m kiosk.i18n.catalogues check     # list messages without a translation (exit 1 if any)

The Arabic `Plural-Forms` header written by Babel 2.18 swaps the "many" and "other" forms (Babel
issue #816); `fix_plural_header` writes the CLDR/GNU rule, and every update keeps it.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from kiosk.i18n.locales import LOCALES

log = logging.getLogger(__name__)

I18N_DIR = Path(__file__).resolve().parent
ROOT = I18N_DIR.parent.parent
DOMAIN = "messages"
LANGS = ("ar", "ckb", "en")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "lazy_ngettext": (1, 2), "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
            "N_": None, "tri": None}
AR_PLURAL = ("nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
             "n%100>=11 ? 4 : 5);")


def po_path(lang: str) -> Path:
    """The editable catalogue of a language."""
    return I18N_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str) -> Path:
    """The compiled catalogue the app loads."""
    return I18N_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


def extract() -> Catalog:
    """Every translatable message of the folders babel.cfg names (the kiosk's and central's Python,
    the templates), as a template catalogue."""
    with open(I18N_DIR / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    template = Catalog(project="kiosk", charset="utf-8")
    for top in dict.fromkeys(pattern.split("/", 1)[0] for pattern, _method in method_map):
        prefixed = [(pattern[len(top) + 1:], method) for pattern, method in method_map
                    if pattern.startswith(top + "/")]
        options = {pattern[len(top) + 1:]: opts for pattern, opts in options_map.items()
                   if pattern.startswith(top + "/")}
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT / top, prefixed, options, keywords=KEYWORDS):
            template.add(message, None, [(f"{top}/{filename}", lineno)], auto_comments=comments,
                         context=context)
    return template


def read(lang: str) -> Catalog:
    """A language's .po catalogue."""
    with open(po_path(lang), "rb") as fh:
        return read_po(fh, locale=LOCALES[lang], domain=DOMAIN)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace a file in one step (a crash never leaves half a catalogue)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fix_plural_header(lang: str, po_text: str) -> str:
    """Put the correct CLDR plural rule into an Arabic catalogue's header (Babel writes a wrong one)."""
    if lang != "ar":
        return po_text
    out = []
    for line in po_text.splitlines(keepends=True):
        if line.startswith('"Plural-Forms:'):
            line = f'"Plural-Forms: {AR_PLURAL}\\n"\n'
        out.append(line)
    return "".join(out)


def write(lang: str, catalog: Catalog) -> None:
    """Save a language's .po catalogue (sorted by message, no line wrapping, fixed plural header)."""
    catalog.fuzzy = False  # a fuzzy header would make tools skip the (corrected) plural rule
    catalog.project, catalog.version = "kiosk", "1"
    catalog.copyright_holder = "the kiosk project"
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "not yet reviewed by a native speaker (docs/translations.md)"
    catalog.language_team = f"{LOCALES[lang]} (docs/translations.md)"
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, sort_output=True, include_previous=False)
    _atomic_write(po_path(lang), fix_plural_header(lang, buffer.getvalue().decode("utf-8")).encode("utf-8"))


def update() -> dict[str, int]:
    """Extract, then merge new and changed messages into each catalogue; counts untranslated ones."""
    template = extract()
    buffer = io.BytesIO()
    write_po(buffer, template, width=0, sort_output=True, omit_header=False)
    _atomic_write(I18N_DIR / f"{DOMAIN}.pot", buffer.getvalue())
    result = {}
    for lang in LANGS:
        if po_path(lang).exists():
            catalog = read(lang)
            catalog.update(template, update_header_comment=False)
            catalog.obsolete.clear()  # translations of removed messages stay in git history
        else:
            catalog = Catalog(locale=LOCALES[lang], domain=DOMAIN, project="kiosk", charset="utf-8")
            catalog.update(template)
        write(lang, catalog)
        result[lang] = len(missing(lang, template))
    return result


def compile_bytes(lang: str) -> bytes:
    """The .mo bytes of a language's current .po (fuzzy entries are left out, as gettext does)."""
    buffer = io.BytesIO()
    write_mo(buffer, read(lang), use_fuzzy=False)
    return buffer.getvalue()


def ensure_compiled() -> list[str]:
    """Write any .mo that differs from its .po (the app calls this at start-up); returns those written."""
    written = []
    for lang in LANGS:
        if not po_path(lang).exists():
            log.warning("no catalogue for %s: its screens will show the English text", lang)
            continue
        data = compile_bytes(lang)
        target = mo_path(lang)
        try:
            if target.exists() and target.read_bytes() == data:
                continue
            _atomic_write(target, data)
            written.append(lang)
            log.info("compiled the %s catalogue", lang)
        except OSError as exc:
            log.error("cannot write %s (%s): %s screens use the last compiled catalogue", target, exc, lang)
    return written


def missing(lang: str, template: Catalog | None = None) -> list[str]:
    """Messages of the source (or `template`) with no usable translation in `lang` (empty or fuzzy)."""
    template = template if template is not None else extract()
    catalog = read(lang)
    out = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        if entry is None or entry.fuzzy:
            out.append(_label(message.id))
            continue
        strings = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
        expected = catalog.num_plurals if message.pluralizable else 1
        if len(strings) < expected or not all(s and s.strip() for s in strings):
            out.append(_label(message.id))
    return out


def _label(msgid) -> str:
    """A message id as one line (the singular of a plural)."""
    return msgid[0] if isinstance(msgid, (list, tuple)) else msgid


def main(argv: list[str]) -> int:
    """Command line: update | compile | check."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = argv[0] if argv else "check"
    if command == "update":
        for lang, count in update().items():
            if lang == "en":
                print("en: source language (the messages themselves are the English text)")
            else:
                print(f"{lang}: {count} message(s) still need a translation")
        ensure_compiled()
        return 0
    if command == "compile":
        written = ensure_compiled()
        print("compiled: " + (", ".join(written) if written else "nothing changed"))
        return 0
    if command == "check":
        template = extract()
        bad = 0
        for lang in ("ar", "ckb"):  # English is the source language: msgids are the English text
            gaps = missing(lang, template)
            bad += len(gaps)
            for msgid in gaps:
                print(f"{lang}: untranslated: {msgid}")
        print("all messages translated" if not bad else f"{bad} translation(s) missing")
        return 1 if bad else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
