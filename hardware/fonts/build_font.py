"""Build the bundled Kiosk Sans fonts from Debian's fonts-noto-core (run by hand, not at run time).

Pillow has no font fallback, and Noto Sans Arabic (which covers every Sorani letter) has no Latin
letters, so the two Noto families are merged into one font per weight. Hinting is dropped: the
two fonts carry different autohinter control values that cannot be merged, and at 203 dpi the
unhinted outlines print cleanly. Usage:

    .venv/bin/python hardware/fonts/build_font.py [--source-dir /usr/share/fonts/truetype/noto]
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

from fontTools import subset
from fontTools.merge import Merger
from fontTools.ttLib import TTFont

HERE = pathlib.Path(__file__).resolve().parent
DEBIAN_NOTO = pathlib.Path("/usr/share/fonts/truetype/noto")

# Arabic script blocks in full; Latin limited to what tickets and receipts use.
UNICODES = (
    "U+0000-024F,U+02B0-02FF,U+0300-036F,U+0600-06FF,U+0750-077F,U+0870-08FF,"
    "U+2000-206F,U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2212,U+25CC,"
    "U+FB50-FDFF,U+FE70-FEFF,U+FE00-FE0F"
)


def _rename(font: TTFont, weight: str) -> None:
    """Give the merged font its own name, as the OFL asks of modified versions."""
    name = font["name"]
    family = "Kiosk Sans"
    postscript = f"KioskSans-{weight}"
    for record in list(name.names):
        if record.nameID in (16, 17, 21, 22):
            name.removeNames(nameID=record.nameID)
    values = {
        1: family,
        2: weight,
        3: f"{postscript};merged-noto",
        4: f"{family} {weight}",
        6: postscript,
        10: (
            "Noto Sans Arabic and Noto Sans (Debian fonts-noto-core) merged with fontTools "
            "for Arabic, Sorani and Latin ticket printing."
        ),
    }
    for name_id, value in values.items():
        name.setName(value, name_id, 3, 1, 0x409)
        name.setName(value, name_id, 1, 0, 0)


def build(source_dir: pathlib.Path, out_dir: pathlib.Path, weight: str) -> pathlib.Path:
    """Merge the Arabic and Latin Noto fonts of one weight and subset the result."""
    # The Arabic font goes first so its taller vertical metrics win.
    sources = [source_dir / f"NotoSansArabic-{weight}.ttf", source_dir / f"NotoSans-{weight}.ttf"]
    for src in sources:
        if not src.is_file():
            raise SystemExit(f"missing {src}: install Debian's fonts-noto-core or pass --source-dir")
    merged = Merger().merge([str(s) for s in sources])
    with tempfile.TemporaryDirectory() as tmp:
        merged_path = pathlib.Path(tmp) / "merged.ttf"
        merged.save(str(merged_path))
        options = subset.Options()
        options.layout_features = ["*"]
        options.hinting = False
        options.name_IDs = ["*"]
        options.name_languages = ["*"]
        options.notdef_outline = True
        options.glyph_names = False
        font = subset.load_font(str(merged_path), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=subset.parse_unicodes(UNICODES))
        subsetter.subset(font)
    _rename(font, weight)
    out = out_dir / f"KioskSans-{weight}.ttf"
    font.save(str(out))
    return out


def main() -> None:
    """Build both weights into this folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=pathlib.Path, default=DEBIAN_NOTO)
    parser.add_argument("--out-dir", type=pathlib.Path, default=HERE)
    args = parser.parse_args()
    for weight in ("Regular", "Bold"):
        out = build(args.source_dir, args.out_dir, weight)
        print(f"{out.name}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
