"""Encoding: the job decodes back to the right structure, width, pixels, native QR and cut."""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import ImageChops

from hardware import Document, EncodeError, Line, QrCode, encode, get_profile, render, ticket_document
from hardware.rendering import QrSegment, TextSegment
from tests.hardware.doubles.escpos_decode import DecodeError, decode
from tests.hardware.samples import SLIPS


def same_pixels(a, b) -> bool:
    """Whether two 1-bit images are identical."""
    return a.size == b.size and ImageChops.logical_xor(a.convert("1"), b.convert("1")).getbbox() is None


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_native_qr_job_structure_width_pixels_payload_and_cut(lang):
    """TM-T20II: init, raster text, native QR with the ticket's payload, raster footer, feed, cut."""
    profile = get_profile("TM-T20II")
    rendered = render(ticket_document(SLIPS[lang]), profile.width)
    job = decode(encode(rendered, profile))
    assert job.kinds[0] == "init"
    assert job.kinds[-1] == "cut" and job.cuts[0].mode == "full"
    assert "status_query" not in job.kinds and "text" not in job.kinds
    # The big number is never sent as text (python-escpos would print Arabic unshaped).
    text_segments = [s for s in rendered.segments if isinstance(s, TextSegment)]
    assert len(job.images) == len(text_segments)
    for image, segment in zip(job.images, text_segments):
        assert image.width == profile.width
        assert same_pixels(image, segment.image)
    (qr,) = job.qr_codes
    qr_segment = next(s for s in rendered.segments if isinstance(s, QrSegment))
    assert qr.payload == SLIPS[lang].qr
    assert qr.model == 2 and qr.ec == "M" and qr.module_size == qr_segment.module_dots >= 4
    # The QR comes where the layout puts it (after the fee, before the footer), centred.
    order = [k for k in job.kinds if k in ("image", "qr")]
    assert order == ["image" if isinstance(s, TextSegment) else "qr" for s in rendered.segments]
    assert order[:2] == ["image", "qr"]
    align_before_qr = [e.n for e in job.events[: job.events.index(qr)] if e.kind == "align"]
    assert align_before_qr[-1] == 1


def test_image_qr_job_when_the_profile_has_no_native_qr():
    """ZJ-5870 (58 mm, no QR command, no cutter): one raster at 384 dots, QR inside it, no GS ( k."""
    profile = get_profile("ZJ-5870")
    assert (profile.width, profile.native_qr, profile.cut) == (384, False, False)
    rendered = render(ticket_document(SLIPS["ckb"]), profile.width)
    data = encode(rendered, profile)
    assert b"\x1d(k" not in data
    job = decode(data)
    assert job.kinds == ["init", "image"] + ["image"] * (len(job.images) - 1)
    assert all(im.width == 384 for im in job.images)
    assert same_pixels(job.raster(), rendered.image)
    found = [r.text for r in zxingcpp.read_barcodes(job.raster().convert("L"))]
    assert found == [SLIPS["ckb"].qr]


def test_native_qr_can_be_forced_off_for_a_printer_that_lacks_it():
    """qr=image on a TM-T20II still prints a scannable QR, from the raster."""
    profile = get_profile("TM-T20II", qr="image")
    rendered = render(ticket_document(SLIPS["ar"]), profile.width)
    job = decode(encode(rendered, profile))
    assert job.qr_codes == [] and job.kinds[-1] == "cut"
    assert [r.text for r in zxingcpp.read_barcodes(job.raster().convert("L"))] == [SLIPS["ar"].qr]


def test_tall_images_are_split_into_fragments_that_reassemble_exactly():
    """python-escpos splits rasters taller than 960 rows; the decoded pieces stack back exactly."""
    doc = Document(tuple(Line(f"line {i}", size="large") for i in range(40)))
    profile = get_profile("TM-T20II")
    rendered = render(doc, profile.width)
    assert rendered.height > 960
    job = decode(encode(rendered, profile))
    assert len(job.images) >= 2
    assert same_pixels(job.raster(), rendered.image)


@pytest.mark.parametrize("impl", ["graphics", "bitImageColumn"])
def test_other_image_commands_decode_to_the_same_pixels(impl):
    """GS ( L and ESC * (older printers) carry the same picture as GS v 0."""
    profile = get_profile("TM-T20II", impl=impl, qr="image")
    rendered = render(Document((Line("ژمارەی بلیت", "ckb"), QrCode("A-001"))), profile.width)
    job = decode(encode(rendered, profile))
    assert {e.impl for e in job.events if e.kind == "image"} == {impl}
    raster = job.raster()
    # ESC * prints in 24-dot stripes, so the last stripe is padded with white rows.
    assert same_pixels(raster.crop((0, 0) + rendered.image.size), rendered.image)
    padding = raster.crop((0, rendered.image.height, raster.width, raster.height))
    assert padding.height < 24 and ImageChops.invert(padding.convert("L")).getbbox() is None


def test_profile_width_is_validated_against_the_image():
    """A 576-dot ticket cannot go to a 512-dot TM-T88V: clear error, not a garbled print."""
    rendered = render(ticket_document(SLIPS["en"]), 576)
    with pytest.raises(EncodeError, match="576 dots.*512"):
        encode(rendered, get_profile("TM-T88V"))


def test_profile_flags_are_read_from_the_capability_database():
    """Widths per model class and the flags python-escpos itself does not enforce."""
    assert get_profile("TM-T88V").width == 512
    assert get_profile("TM-T20II").width == 576
    assert get_profile("POS-5890").width == 384
    assert get_profile("POS-5890").native_qr is False
    assert get_profile("TM-T20II").native_qr is True
    assert get_profile("TM-T20II", width=384).width == 384
    with pytest.raises(ValueError, match="no known paper width"):
        get_profile("default")
    assert get_profile("default", width=576).width == 576
    with pytest.raises(ValueError, match="wider than profile"):
        get_profile("ZJ-5870", width=576)
    with pytest.raises(ValueError, match="unknown printer profile"):
        get_profile("TM-T2OII")


def test_encoding_does_not_change_the_shared_profile_database():
    """A width override is applied to a copy: other printers keep the model's own width."""
    from escpos.capabilities import CAPABILITIES

    encode(render(Document((Line("x"),)), 384), get_profile("default", width=384))
    assert CAPABILITIES["profiles"]["default"]["media"]["width"]["pixels"] == "Unknown"


def test_decoder_refuses_unknown_commands():
    """The test decoder notices bytes it does not understand instead of skipping them."""
    with pytest.raises(DecodeError, match="offset 2"):
        decode(b"\x1b@\x1b\x99")
    with pytest.raises(DecodeError, match="ends inside"):
        decode(b"\x1b@\x1dv0\x00\x48\x00\x10\x00")
