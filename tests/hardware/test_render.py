"""Rendering: golden tickets per language, HarfBuzz/raqm shaping and RTL order, QR round trip."""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageFilter, features

from hardware import (
    Document,
    LayoutError,
    Line,
    QrCode,
    Rule,
    Spacer,
    TicketSlip,
    check_shaping,
    render,
    ticket_document,
)
from hardware.rendering import QUIET_ZONE_MODULES, QrSegment, TextSegment, qr_matrix
from tests.hardware.conftest import GOLDEN_DIR, regenerate_golden
from tests.hardware.samples import SLIPS

SORANI_WORD = "بەڕێوەبەرایەتی"


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box of the black pixels of a 1-bit image."""
    box = ImageChops.invert(image.convert("L")).getbbox()
    assert box is not None, "nothing was drawn"
    return box


def black_pixels(image: Image.Image) -> int:
    """How many pixels are black."""
    return image.convert("L").histogram()[0]


def set_pixels(image: Image.Image) -> int:
    """How many pixels are set (white) in a 1-bit mask such as an XOR of two images."""
    return image.convert("L").histogram()[255]


def same_within_one_dot(a: Image.Image, b: Image.Image) -> bool:
    """Whether every black pixel of each image lies within one dot of a black pixel of the other."""

    def uncovered(x: Image.Image, y: Image.Image) -> int:
        """Black pixels of x with no black pixel of y in their 3x3 neighbourhood."""
        grown = y.convert("L").filter(ImageFilter.MinFilter(3))
        return black_pixels(ImageChops.lighter(x.convert("L"), ImageChops.invert(grown)))

    return uncovered(a, b) == 0 and uncovered(b, a) == 0


def line_image(text: str, lang: str, width: int = 576, **kwargs) -> Image.Image:
    """One line rendered alone."""
    return render(Document((Line(text, lang, **kwargs),)), width).image


def decode_qr(image: Image.Image) -> list[str]:
    """Texts of the QR codes zxing-cpp finds in an image."""
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L")) if r.format == zxingcpp.BarcodeFormat.QRCode]


def test_raqm_is_available_and_shaping_works():
    """The test machine has the layout engine the product needs (libfribidi0 + Pillow's raqm)."""
    assert features.check("raqm")
    check_shaping()


@pytest.mark.parametrize("name,lang,width", [
    ("ticket-ar-576", "ar", 576),
    ("ticket-ckb-576", "ckb", 576),
    ("ticket-en-576", "en", 576),
    ("ticket-ckb-384", "ckb", 384),
])
def test_ticket_matches_golden_image(name, lang, width, tmp_path):
    """A fixed ticket renders pixel for pixel as reviewed (KIOSK_REGEN_GOLDEN=1 rewrites them)."""
    image = render(ticket_document(SLIPS[lang]), width).image
    assert image.mode == "1" and image.width == width
    golden = GOLDEN_DIR / f"{name}.png"
    if regenerate_golden():
        image.save(golden, optimize=True)
        pytest.skip(f"regenerated {golden.name}; review it and commit")
    assert golden.exists(), f"missing golden image {golden.name}: run with KIOSK_REGEN_GOLDEN=1, review, commit"
    with Image.open(golden) as stored:
        expected = stored.convert("1")
    assert image.size == expected.size, f"size {image.size} != golden {expected.size}"
    diff = ImageChops.logical_xor(image, expected)
    changed = set_pixels(diff)
    if changed:
        out = tmp_path / f"{name}.actual.png"
        image.save(out)
        pytest.fail(f"{changed} pixels differ from {golden.name}; actual image saved as {out}")


def test_sorani_letters_join_so_the_word_is_narrower_than_its_isolated_letters():
    """HarfBuzz joins ڕ ێ ە with their neighbours: the word is narrower than its letters set apart."""
    box = ink_box(line_image(SORANI_WORD, "ckb"))
    joined = box[2] - box[0]
    isolated = 0
    for letter in SORANI_WORD:
        b = ink_box(line_image(letter, "ckb"))
        isolated += b[2] - b[0]
    assert joined < 0.8 * isolated, (joined, isolated)


def test_rtl_line_puts_the_first_logical_word_at_the_right():
    """In 'ژمارەی بلیت' the first word typed is drawn at the right edge, the second left of it."""
    full = line_image("ژمارەی بلیت", "ckb")
    first = line_image("ژمارەی", "ckb")
    full_box, first_box = ink_box(full), ink_box(first)
    # Right-aligned at the start edge, so the first word alone lands on the same pixels (up to
    # antialiasing of a sub-dot shift: the line's total advance is not a whole number of dots).
    assert abs(first_box[2] - full_box[2]) <= 1
    assert same_within_one_dot(full.crop(first_box), first.crop(first_box))
    # ... and the second word is further left.
    assert full_box[0] < first_box[0] - 20


def test_ltr_line_puts_the_first_word_at_the_left():
    """The English control: the first word starts at the left margin."""
    full_box = ink_box(line_image("Ticket number", "en"))
    first_box = ink_box(line_image("Ticket", "en"))
    assert first_box[0] == full_box[0]
    assert first_box[2] < full_box[2]


def test_alignment_follows_the_line_direction():
    """'start' is right for Arabic and left for English; 'center' centres both."""
    ar = ink_box(line_image("هذه الخدمة مجانية", "ar"))
    en = ink_box(line_image("This service is free", "en"))
    centred = ink_box(line_image("This service is free", "en", align="center"))
    assert ar[2] > 560 and ar[0] > 100
    assert en[0] < 16 and en[2] < 460
    assert abs((centred[0] + centred[2]) / 2 - 288) <= 2


def test_long_lines_wrap_within_the_paper():
    """A paragraph longer than the paper wraps onto more lines and never overflows the margins."""
    text = " ".join(["خزمەتگوزارییەکان"] * 8)
    one = render(Document((Line("خزمەتگوزارییەکان", "ckb"),)), 384).image
    many = render(Document((Line(text, "ckb"),)), 384).image
    assert many.height >= 3 * one.height
    box = ink_box(many)
    assert box[0] >= 8 and box[2] <= 384 - 8


def test_a_word_wider_than_the_paper_is_split_not_clipped():
    """An over-long token (a URL) breaks by characters instead of running off the paper."""
    image = render(Document((Line("https://" + "x" * 120, "en"),)), 384).image
    box = ink_box(image)
    assert box[2] <= 384 - 8
    assert image.height > 2 * line_image("x", "en", 384).height


def test_text_is_thresholded_not_dithered():
    """Only pure black and white, and a large glyph's inside is solid (no dither pattern)."""
    image = line_image("A-007", "en", size="huge", bold=True)
    assert {value for _, value in image.convert("L").getcolors()} <= {0, 255}
    box = ink_box(image)
    # The vertical stem of the '-'-free '7' top bar row is solid black across its run.
    row = [image.getpixel((x, box[1] + 4)) for x in range(box[0], box[2])]
    runs = "".join("1" if v == 0 else "0" for v in row).split("0")
    assert max(len(r) for r in runs) > 20


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_ticket_qr_decodes_back_to_its_payload(lang):
    """zxing-cpp reads the QR of each rendered ticket back to exactly the slip's payload."""
    rendered = render(ticket_document(SLIPS[lang]), 576)
    assert decode_qr(rendered.image) == [SLIPS[lang].qr]


def test_qr_has_a_four_module_quiet_zone_and_at_least_four_dots_per_module():
    """The QR segment's white border is 4 modules wide on every side."""
    payload = "HTTPS://VERIFY.EXAMPLE.INVALID/R#" + "A" * 230
    rendered = render(Document((QrCode(payload, level="M", module_dots=5),)), 384)
    (segment,) = rendered.segments
    assert isinstance(segment, QrSegment)
    assert segment.module_dots >= 4
    box = ink_box(segment.image)
    quiet = QUIET_ZONE_MODULES * segment.module_dots
    assert box[1] == quiet and segment.image.height - box[3] == quiet
    assert box[0] >= quiet and segment.image.width - box[2] >= quiet
    assert box[2] - box[0] == segment.modules * segment.module_dots
    assert decode_qr(segment.image) == [payload]


def test_qr_shrinks_to_fit_narrow_paper_but_not_below_four_dots():
    """A receipt-sized QR (version 10) fits 58 mm paper at 4 dots per module or more."""
    payload = "HTTPS://VERIFY.EXAMPLE.INVALID/R#" + "B" * 230
    modules = len(qr_matrix(payload, "M"))
    rendered = render(Document((QrCode(payload, level="M", module_dots=8),)), 384)
    segment = rendered.segments[0]
    assert 4 <= segment.module_dots < 8
    assert (modules + 8) * segment.module_dots <= 384


def test_qr_too_big_for_the_paper_is_a_clear_layout_error():
    """A payload whose QR cannot fit at 4 dots per module is refused with the numbers."""
    with pytest.raises(LayoutError, match="dots per module"):
        render(Document((QrCode("x" * 600, level="M"),)), 384)
    with pytest.raises(LayoutError, match="does not fit any QR code"):
        render(Document((QrCode("x" * 3000, level="H"),)), 576)


def test_document_segments_split_around_the_qr():
    """Text before and after a QR becomes separate segments, so the QR can be sent natively."""
    doc = Document((Line("top"), Rule(), Spacer(10), QrCode("payload"), Line("bottom", size="small")))
    rendered = render(doc, 512)
    assert [type(s) for s in rendered.segments] == [TextSegment, QrSegment, TextSegment]
    assert all(s.image.width == 512 for s in rendered.segments)
    assert rendered.image.height == rendered.height == sum(s.image.height for s in rendered.segments)


def test_ticket_layout_has_every_part_in_order():
    """Centre, big number, local number, service, time, place, wait, counter, fee, QR, footer."""
    slip = SLIPS["ar"]
    blocks = ticket_document(slip).blocks
    texts = [b.text for b in blocks if isinstance(b, Line)]
    assert texts == [slip.centre, slip.number, slip.number_local, slip.service, slip.issued_at_text,
                     slip.ahead_text, slip.wait_text, slip.counter_text, slip.fee_text, slip.footer]
    big = next(b for b in blocks if isinstance(b, Line) and b.text == slip.number)
    assert big.size == "huge" and big.lang == "en"
    assert [b.payload for b in blocks if isinstance(b, QrCode)] == [slip.qr]
    # Optional lines are left out when empty; the English number is not repeated.
    texts_en = [b.text for b in ticket_document(SLIPS["en"]).blocks if isinstance(b, Line)]
    assert "" not in texts_en and texts_en.count("C-103") == 1


@pytest.mark.parametrize("change,error", [
    ({"lang": "fr"}, "ticket language"),
    ({"number": " "}, "number is empty"),
    ({"qr": ""}, "qr is empty"),
    ({"centre": None}, "must be str"),
])
def test_invalid_slips_are_refused(change, error):
    """A slip that would print a broken ticket fails when built, with the field named."""
    fields = {**SLIPS["en"].__dict__, **change}
    with pytest.raises((ValueError, TypeError), match=error):
        TicketSlip(**fields)


def test_invalid_blocks_are_refused():
    """Bad sizes, alignments, QR levels and module sizes fail with clear messages."""
    with pytest.raises(ValueError, match="size"):
        Line("x", size="giant")
    with pytest.raises(ValueError, match="align"):
        Line("x", align="left")
    with pytest.raises(ValueError, match="QR level"):
        QrCode("x", level="X")
    with pytest.raises(ValueError, match="module size"):
        QrCode("x", module_dots=3)
    with pytest.raises(TypeError, match="not a document block"):
        Document(("text",))
    with pytest.raises(ValueError, match="at least one block"):
        Document(())
