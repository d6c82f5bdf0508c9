"""Render a Document to 1-bit images at the printer's width with Pillow's raqm layout.

Arabic and Sorani must be shaped (joined letters) and laid out right to left by HarfBuzz and
FriBiDi through raqm, from plain logical-order strings. Without raqm, Pillow silently falls back
to unjoined left-to-right text, so rendering refuses to run instead (see check_shaping).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
from typing import Union

from PIL import Image, ImageDraw, ImageFont, features

from hardware.errors import LayoutError, ShapingUnavailable
from hardware.layout import MIN_QR_MODULE_DOTS, Document, Line, QrCode, Rule, Spacer

log = logging.getLogger(__name__)

FONT_DIR = pathlib.Path(__file__).resolve().parent / "fonts"
FONT_FILES = {False: FONT_DIR / "KioskSans-Regular.ttf", True: FONT_DIR / "KioskSans-Bold.ttf"}

# Type sizes in dots for 80 mm paper (576 dots at 203 dpi). Narrower paper scales them down, but
# never below 80 %: smaller Arabic script is hard to read on thermal paper.
BASE_WIDTH = 576
SIZE_DOTS = {"small": 22, "normal": 28, "large": 38, "huge": 112}
MIN_TEXT_SCALE = 0.8
MARGIN_DOTS = 8
QUIET_ZONE_MODULES = 4
# Line box as fractions of the type size, widened when the ink of a line reaches further
# (stacked Arabic marks); keeps lines even without the font's very tall line gap.
ASCENT_EM, DESCENT_EM, LEADING_EM = 0.80, 0.32, 0.22

# A Sorani word whose letters all join; used to prove shaping works.
_SHAPING_PROBE = "بەڕێوەبەرایەتی"


@dataclasses.dataclass(frozen=True)
class TextSegment:
    """A run of text blocks rendered as one 1-bit image, full printer width."""

    image: Image.Image


@dataclasses.dataclass(frozen=True)
class QrSegment:
    """A QR code: its parameters for a native printer command and, on demand, its 1-bit image."""

    payload: str
    level: str
    module_dots: int
    modules: int
    width: int

    @functools.cached_property
    def image(self) -> Image.Image:
        """The code with its quiet zone, centred on a full-width strip (built only when needed:
        choosing the mask pattern is most of the cost, and a native QR never needs it)."""
        matrix = qr_matrix(self.payload, self.level)
        span = len(matrix) + 2 * QUIET_ZONE_MODULES
        small = Image.new("1", (span, span), 1)
        pixels = small.load()
        for y, row in enumerate(matrix):
            for x, dark in enumerate(row):
                if dark:
                    pixels[x + QUIET_ZONE_MODULES, y + QUIET_ZONE_MODULES] = 0
        big = small.resize((span * self.module_dots, span * self.module_dots), Image.Resampling.NEAREST)
        image = Image.new("1", (self.width, big.height), 1)
        image.paste(big, ((self.width - big.width) // 2, 0))
        return image


Segment = Union[TextSegment, QrSegment]


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A document rendered at a given width, as segments from top to bottom."""

    width: int
    segments: tuple[Segment, ...]

    @functools.cached_property
    def image(self) -> Image.Image:
        """The whole document as one 1-bit image, QR codes included (previews, image-QR jobs)."""
        return stack([s.image for s in self.segments], self.width)

    @property
    def height(self) -> int:
        """Height of the whole document in dots."""
        return sum(s.image.height for s in self.segments)


def check_shaping() -> None:
    """Raise ShapingUnavailable unless Arabic and Sorani text will be joined and laid out RTL."""
    if not features.check("raqm"):
        raise ShapingUnavailable(
            "Pillow's raqm text layout is not available, so Arabic and Sorani would print "
            "with unjoined letters in left-to-right order. Install the system FriBiDi library "
            "(Debian/Ubuntu: apt-get install libfribidi0) and restart."
        )
    for path in FONT_FILES.values():
        if not path.is_file():
            raise ShapingUnavailable(f"the bundled ticket font {path.name} is missing from hardware/fonts")
    font = _font(False, 40)
    joined = font.getlength(_SHAPING_PROBE, direction="rtl", language="ckb")
    isolated = sum(font.getlength(ch, direction="rtl", language="ckb") for ch in _SHAPING_PROBE)
    if not joined < isolated:
        raise ShapingUnavailable(
            "text shaping is not joining Arabic-script letters (raqm present but HarfBuzz or "
            "FriBiDi not working); reinstall Pillow and libfribidi0"
        )


@functools.lru_cache(maxsize=1)
def _require_shaping() -> bool:
    """Run check_shaping once per process; rendering without shaping would print garbage."""
    check_shaping()
    return True


@functools.lru_cache(maxsize=64)
def _font(bold: bool, px: int) -> ImageFont.FreeTypeFont:
    """The bundled font at a size, loaded once and shared (FreeType faces are read-only here)."""
    return ImageFont.truetype(str(FONT_FILES[bold]), px, layout_engine=ImageFont.Layout.RAQM)


def type_size(size: str, width: int) -> int:
    """Type size in dots of a named size at a paper width."""
    return max(8, round(SIZE_DOTS[size] * max(width / BASE_WIDTH, MIN_TEXT_SCALE)))


def text_length(text: str, *, lang: str = "en", size: str = "normal", bold: bool = False,
                width: int = BASE_WIDTH, direction: str | None = None) -> float:
    """Advance width in dots of a shaped text, as the renderer lays it out."""
    _require_shaping()
    line = Line(text, lang, size, bold, direction=direction)
    return _font(bold, type_size(size, width)).getlength(
        text, direction=line.text_direction, language=lang
    )


def render(document: Document, width: int) -> Rendered:
    """Render a document at `width` dots: text shaped by raqm, thresholded, never dithered."""
    if not 128 <= width <= 2048:
        raise LayoutError(f"paper width {width} dots is outside 128..2048")
    _require_shaping()
    segments: list[Segment] = []
    run: list[Image.Image] = []
    for block in document.blocks:
        if isinstance(block, QrCode):
            if run:
                segments.append(TextSegment(_threshold(stack(run, width, mode="L"))))
                run = []
            segments.append(_render_qr(block, width))
        elif isinstance(block, Line):
            run.extend(_render_line(block, width))
        elif isinstance(block, Spacer):
            if block.dots:
                run.append(Image.new("L", (width, max(1, round(block.dots * width / BASE_WIDTH))), 255))
        elif isinstance(block, Rule):
            run.append(_render_rule(block, width))
    if run:
        segments.append(TextSegment(_threshold(stack(run, width, mode="L"))))
    return Rendered(width, tuple(segments))


def stack(images: list[Image.Image], width: int, mode: str = "1") -> Image.Image:
    """Stack images of the given width top to bottom on white paper."""
    height = sum(im.height for im in images)
    out = Image.new(mode, (width, max(height, 1)), 255)
    y = 0
    for im in images:
        out.paste(im if im.mode == mode else im.convert(mode), (0, y))
        y += im.height
    return out


def _threshold(image: Image.Image) -> Image.Image:
    """Grey to 1-bit at 50 % with no dithering: dithered text prints fuzzy on thermal paper."""
    return image.convert("1", dither=Image.Dither.NONE)


def _wrap(text: str, font: ImageFont.FreeTypeFont, direction: str, lang: str, max_width: int) -> list[str]:
    """Greedy word wrap on the logical string; a word wider than the paper is split by characters."""

    def fits(candidate: str) -> bool:
        """Whether a candidate line fits the printable width."""
        return font.getlength(candidate, direction=direction, language=lang) <= max_width

    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.split()
        if fits(" ".join(words)):
            lines.append(" ".join(words))
            continue
        current = ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if fits(candidate):
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            if fits(word):
                current = word
                continue
            for ch in word:
                if current and not fits(current + ch):
                    lines.append(current)
                    current = ""
                current += ch
        lines.append(current)
    return lines


def _render_line(line: Line, width: int) -> list[Image.Image]:
    """Render one paragraph (possibly wrapped) to grey strips of the paper width."""
    px = type_size(line.size, width)
    font = _font(line.bold, px)
    direction = line.text_direction
    usable = width - 2 * MARGIN_DOTS
    rows = _wrap(line.text, font, direction, line.lang, usable)
    boxes = [font.getbbox(r, direction=direction, language=line.lang, anchor="ls") if r else (0, 0, 0, 0)
             for r in rows]
    ascent = max([round(ASCENT_EM * px)] + [-b[1] for b in boxes])
    descent = max([round(DESCENT_EM * px)] + [b[3] for b in boxes])
    leading = round(LEADING_EM * px)
    row_height = ascent + descent + leading
    if line.align == "center":
        x, anchor = width // 2, "ms"
    elif (line.align == "start") == (direction == "ltr"):
        x, anchor = MARGIN_DOTS, "ls"
    else:
        x, anchor = width - MARGIN_DOTS, "rs"
    strips = []
    for row in rows:
        strip = Image.new("L", (width, row_height), 255)
        if row:
            ImageDraw.Draw(strip).text(
                (x, ascent + leading // 2), row, font=font, fill=0, anchor=anchor,
                direction=direction, language=line.lang,
            )
        strips.append(strip)
    return strips


def _render_rule(rule: Rule, width: int) -> Image.Image:
    """A horizontal rule with a little space above and below."""
    pad = max(4, round(8 * width / BASE_WIDTH))
    strip = Image.new("L", (width, 2 * pad + rule.thickness), 255)
    ImageDraw.Draw(strip).rectangle(
        (MARGIN_DOTS, pad, width - MARGIN_DOTS - 1, pad + rule.thickness - 1), fill=0
    )
    return strip


def _qr_code(payload: str, level: str):
    """A qrcode.QRCode holding the payload, its version fitted; LayoutError when nothing fits."""
    import qrcode
    import qrcode.constants
    import qrcode.exceptions

    levels = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    code = qrcode.QRCode(version=None, error_correction=levels[level], box_size=1, border=0)
    code.add_data(payload)
    try:
        code.best_fit()
    except (ValueError, qrcode.exceptions.DataOverflowError):
        raise LayoutError(
            f"a QR payload of {len(payload.encode())} bytes does not fit any QR code at level {level}"
        ) from None
    return code


def qr_modules(payload: str, level: str) -> int:
    """Modules per side of the smallest QR version holding the payload (cheap: no mask search)."""
    return 4 * _qr_code(payload, level).version + 17


def qr_matrix(payload: str, level: str) -> list[list[bool]]:
    """The QR modules (no quiet zone) for a payload at an error-correction level."""
    code = _qr_code(payload, level)
    code.make(fit=False)
    return code.get_matrix()


def _render_qr(block: QrCode, width: int) -> QrSegment:
    """Size a QR with its 4-module quiet zone, shrinking modules to fit but never below 4 dots."""
    modules = qr_modules(block.payload, block.level)
    span = modules + 2 * QUIET_ZONE_MODULES
    module_dots = block.module_dots
    while span * module_dots > width and module_dots > MIN_QR_MODULE_DOTS:
        module_dots -= 1
    if span * module_dots > width:
        raise LayoutError(
            f"a QR code of {modules} modules needs {span * MIN_QR_MODULE_DOTS} dots at "
            f"{MIN_QR_MODULE_DOTS} dots per module with its quiet zone; the paper is {width} dots "
            "wide (shorten the payload or use wider paper)"
        )
    return QrSegment(block.payload, block.level, module_dots, modules, width)
