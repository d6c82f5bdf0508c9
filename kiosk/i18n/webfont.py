"""Build the screens' web font: WOFF2 subsets of Noto Sans Arabic (Arabic and Sorani letters,
Arabic-Indic digits) and Noto Sans (Latin), regular and bold, from Debian's fonts-noto-core.

    .venv/bin/python -m kiosk.i18n.webfont [--source /usr/share/fonts/truetype/noto]

Both subsets are declared under one family ("Kiosk Sans") with `unicode-range`, so a page only
downloads the files whose characters it shows. Chromium would otherwise fall back to DejaVu Sans
for Arabic script. Needs fontTools and brotli (requirements-dev.txt); OFL-1.1 (fonts/OFL.txt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

FONTS = Path(__file__).resolve().parent.parent / "static" / "fonts"
DEBIAN_NOTO = Path("/usr/share/fonts/truetype/noto")

ARABIC_RANGES = "U+0600-06FF,U+200C-200F,U+2066-2069,U+FD3E-FD3F"
LATIN_RANGES = "U+0020-007E,U+00A0,U+00D7,U+2013-2014,U+2018-201D,U+2022,U+2026,U+2212"

SUBSETS = {
    # output name: (source file, unicode ranges, keep every OpenType layout feature?)
    "KioskSans-Arabic-Regular.woff2": ("NotoSansArabic-Regular.ttf", ARABIC_RANGES, True),
    "KioskSans-Arabic-Bold.woff2": ("NotoSansArabic-Bold.ttf", ARABIC_RANGES, True),
    "KioskSans-Latin-Regular.woff2": ("NotoSans-Regular.ttf", LATIN_RANGES, False),
    "KioskSans-Latin-Bold.woff2": ("NotoSans-Bold.ttf", LATIN_RANGES, False),
}


def build(source: Path = DEBIAN_NOTO, out: Path = FONTS) -> dict[str, int]:
    """Write the four subsets; returns their sizes in bytes."""
    from fontTools import subset

    sizes = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, (source_file, ranges, all_features) in SUBSETS.items():
        path = source / source_file
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install Debian's fonts-noto-core")
        options = subset.Options()
        options.flavor = "woff2"
        options.hinting = False
        options.layout_features = ["*"] if all_features else ["kern", "liga", "calt", "ccmp", "locl", "mark", "mkmk"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = subset.load_font(str(path), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=subset.parse_unicodes(ranges))
        subsetter.subset(font)
        subset.save_font(font, str(out / name), options)
        sizes[name] = (out / name).stat().st_size
    return sizes


def main(argv: list[str]) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description="Build the WOFF2 web font subsets.")
    parser.add_argument("--source", type=Path, default=DEBIAN_NOTO, help="folder with the Noto TTF files")
    parser.add_argument("--out", type=Path, default=FONTS)
    args = parser.parse_args(argv)
    for name, size in build(args.source, args.out).items():
        print(f"{name}: {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
