"""The receipt payload, its CBOR encoding, the citizen reference hash and the QR text."""
from __future__ import annotations

import datetime as dt
import re

import cbor2
import pytest
import qrcode
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain import receipts
from kiosk.domain.receipts import Key, Receipt, ReceiptStatus
from tests.receipts.support import HOST, ISSUED_AT, NOW, PEPPER, RECEIPT_ID, make_receipt

QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def test_payload_round_trips_and_uses_small_integer_keys():
    """Encoding then decoding gives the same receipt; the map has exactly keys 0..10."""
    receipt = make_receipt()
    data = receipts.encode_payload(receipt)
    assert receipts.decode_payload(data) == receipt
    fields = cbor2.loads(data)
    assert sorted(fields) == list(range(11))
    assert fields[Key.VERSION] == receipts.SCHEMA_VERSION
    assert fields[Key.RECEIPT_ID] == receipts.ulid_to_bytes(RECEIPT_ID)
    assert fields[Key.ISSUED_AT] == int(ISSUED_AT.timestamp())
    assert fields[Key.FEE_IQD] == 25000
    assert data == cbor2.dumps(fields, canonical=True)
    assert len(data) < 100


def test_times_are_whole_utc_seconds():
    """Sub-second parts are dropped and any zone becomes UTC, so decode(encode(r)) == r."""
    baghdad = dt.timezone(dt.timedelta(hours=3))
    receipt = make_receipt(issued_at=dt.datetime(2026, 11, 22, 12, 15, 0, 999_999, tzinfo=baghdad))
    assert receipt.issued_at == ISSUED_AT
    assert receipt.issued_at.tzinfo == dt.timezone.utc
    assert receipts.decode_payload(receipts.encode_payload(receipt)).issued_at == ISSUED_AT


@pytest.mark.parametrize("overrides, message", [
    ({"receipt_id": "01kar7x3m9q4zp2b6v8n5c1dhw"}, "ULID"),
    ({"receipt_id": "81KAR7X3M9Q4ZP2B6V8N5C1DHW"}, "ULID"),
    ({"centre": ""}, "centre"),
    ({"service": "PS BIRTH"}, "service"),
    ({"ticket": "B-042\u202e"}, "ticket"),
    ({"ticket": "X" * 33}, "ticket"),
    ({"issued_at": dt.datetime(2026, 11, 22, 9, 15)}, "timezone-aware"),
    ({"due_at": ISSUED_AT - dt.timedelta(seconds=1)}, "due_at"),
    ({"expires_at": ISSUED_AT}, "expires_at"),
    ({"fee_iqd": -1}, "fee_iqd"),
    ({"fee_iqd": 2500.0}, "fee_iqd"),
    ({"fee_iqd": True}, "fee_iqd"),
    ({"citizen_ref": b"1234567"}, "citizen_ref"),
    ({"citizen_ref": "19901234567"}, "citizen_ref"),
    ({"status": 9}, "ReceiptStatus"),
])
def test_bad_fields_are_refused_with_the_field_named(overrides, message):
    """Every field is checked when the receipt is built, before anything is signed."""
    with pytest.raises(ValueError, match=message):
        make_receipt(**overrides)


def test_json_form_names_every_field():
    """The JSON form is what screens and the browser verifier show."""
    assert make_receipt().to_json() == {
        "receipt_id": RECEIPT_ID,
        "centre": "NIN-MSL-03",
        "service": "PS-BIRTH",
        "ticket": "B-042",
        "issued_at": "2026-11-22T09:15:00.000Z",
        "due_at": "2026-11-25T09:15:00.000Z",
        "fee_iqd": 25000,
        "status": "open",
        "citizen_ref": receipts.citizen_ref_hash(PEPPER, "19901234567", RECEIPT_ID).hex(),
        "expires_at": "2027-11-22T09:15:00.000Z",
    }


@given(st.binary(min_size=16, max_size=16))
def test_ulid_bytes_round_trip(data):
    """Any 16 bytes are one ULID and back."""
    text = receipts.ulid_from_bytes(data)
    assert re.fullmatch(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", text)
    assert receipts.ulid_to_bytes(text) == data


def test_citizen_ref_hash_is_keyed_and_bound_to_the_receipt():
    """Same inputs, same hash; another receipt or another pepper, another hash; never the reference."""
    first = receipts.citizen_ref_hash(PEPPER, "19901234567", RECEIPT_ID)
    assert first == receipts.citizen_ref_hash(PEPPER, "19901234567", RECEIPT_ID)
    assert len(first) == 8 and b"19901234567" not in first
    assert first != receipts.citizen_ref_hash(PEPPER, "19901234567", "01KAR7X3M9Q4ZP2B6V8N5C1DHX")
    assert first != receipts.citizen_ref_hash(b"another pepper of 32 bytes......", "19901234567", RECEIPT_ID)
    with pytest.raises(ValueError, match="pepper"):
        receipts.citizen_ref_hash(b"short", "19901234567", RECEIPT_ID)


def test_qr_text_is_upper_case_alphanumeric_but_for_the_hash(valid_text):
    """`HTTPS://HOST/R#BASE32`: every character but '#' is in the QR alphanumeric set."""
    assert valid_text.startswith(f"HTTPS://{HOST}/R#")
    assert valid_text.count("#") == 1 and "=" not in valid_text
    assert set(valid_text) - {"#"} <= QR_ALPHANUMERIC
    assert receipts.qr_prefix("v.example.iq") == "HTTPS://V.EXAMPLE.IQ/R#"
    with pytest.raises(ValueError, match="host"):
        receipts.qr_prefix("v.example.iq/evil")


def test_qr_code_is_version_10_or_lower_and_decodes_back_to_a_valid_receipt(valid_text, trust_list):
    """Level M, 4 dots per module: the printed code scans back to the exact text, which verifies."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=4)
    code.add_data(valid_text)
    code.make(fit=True)
    assert code.version <= 10
    modes = {chunk.mode for chunk in code.data_list}
    assert qrcode.util.MODE_ALPHA_NUM in modes
    image = code.make_image().get_image().convert("L")
    found = zxingcpp.read_barcodes(image)
    assert [result.text for result in found] == [valid_text]
    assert receipts.verify(found[0].text, trust_list, NOW).is_valid


def test_status_labels():
    """Status values are small integers on the wire and lower-case words in JSON."""
    assert [s.label for s in ReceiptStatus] == ["open", "completed", "rejected", "referred"]
    assert receipts.decode_payload(receipts.encode_payload(
        make_receipt(status=ReceiptStatus.REFERRED))).status is ReceiptStatus.REFERRED


def test_a_receipt_is_immutable():
    """A signed receipt's contents cannot be changed in place."""
    receipt = make_receipt()
    with pytest.raises(AttributeError):
        receipt.fee_iqd = 1  # type: ignore[misc]
    assert isinstance(receipt, Receipt)
