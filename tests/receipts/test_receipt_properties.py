"""Properties: no edit of a valid QR text verifies, hostile input never crashes a verifier."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain import receipts, trustlist
from kiosk.domain.receipts import Outcome, ReceiptError, ReceiptStatus
from tests.receipts.support import HOST, NOW, make_receipt

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# characters a scanner, a keyboard layout or a person could plausibly put into a code
EDIT_CHARS = st.one_of(
    st.sampled_from(BASE32 + BASE32.lower() + "0189=#/:.- \t\n"),
    st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهوي٠١٢٣٤٥٦٧٨٩ەۆێڵڕ"),
    st.characters(),
)


def edited(text: str, data) -> str:
    """`text` with one character replaced, inserted or deleted, chosen by Hypothesis."""
    index = data.draw(st.integers(0, len(text) - 1), label="index")
    operation = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="operation")
    if operation == "delete":
        return text[:index] + text[index + 1:]
    char = data.draw(EDIT_CHARS, label="char")
    if operation == "insert":
        return text[:index] + char + text[index:]
    return text[:index] + char + text[index + 1:]


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_no_single_character_change_verifies_as_valid(valid_text, trust_list, data):
    """Replace, insert or delete any one character anywhere: never valid."""
    changed = edited(valid_text, data)
    if changed == valid_text:
        return  # replacing a character by itself is no change
    assert receipts.verify(changed, trust_list, NOW).outcome is not Outcome.VALID


def test_every_base32_substitution_is_refused(valid_text, trust_list):
    """Exhaustively: each position of the code replaced by each other Base32 letter."""
    start = valid_text.index("#") + 1
    for index in range(start, len(valid_text)):
        for char in BASE32:
            if char != valid_text[index]:
                changed = valid_text[:index] + char + valid_text[index + 1:]
                assert receipts.verify(changed, trust_list, NOW).outcome is not Outcome.VALID, (index, char)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=700))
def test_arbitrary_text_never_crashes(trust_list, text):
    """Any string gives a verdict, and never a valid one."""
    assert receipts.verify(text, trust_list, NOW).outcome is Outcome.INVALID


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=360))
def test_arbitrary_bytes_behind_the_prefix_never_crash(trust_list, data):
    """Any bytes, correctly Base32-encoded behind the right prefix, give an invalid verdict."""
    text = receipts.qr_text(data, HOST)
    assert receipts.verify(text, trust_list, NOW).outcome is Outcome.INVALID


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_trust_list_parser_raises_only_its_own_error(root_key, data):
    """Any bytes offered as a trust list are refused with TrustListError, nothing else."""
    with pytest.raises(trustlist.TrustListError):
        trustlist.open_trust_list(data, [root_key.public_key()])


cbor_leaves = st.one_of(st.integers(-(2**65), 2**65), st.binary(max_size=20), st.text(max_size=10),
                        st.booleans(), st.none(), st.floats(allow_nan=False))
cbor_values = st.recursive(
    cbor_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.integers(-30, 30), st.text(max_size=4)), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None)
@given(cbor_values)
def test_envelope_parser_raises_only_receipt_errors(value):
    """Any CBOR structure, tagged or not, is either a well-formed envelope or a ReceiptError."""
    import cbor2
    for candidate in (value, cbor2.CBORTag(18, value)):
        try:
            receipts.cose_parse(cbor2.dumps(candidate, canonical=True))
        except ReceiptError as exc:
            assert exc.reason in receipts.REASONS


receipts_strategy = st.builds(
    lambda fee, status, seconds, ref, ticket: make_receipt(
        fee_iqd=fee, status=status, citizen_ref=ref, ticket=ticket,
        issued_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds),
        due_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds, hours=72),
        expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds, days=365),
    ),
    st.integers(0, receipts.MAX_FEE_IQD),
    st.sampled_from(list(ReceiptStatus)),
    st.integers(0, 364 * 86400),
    st.binary(min_size=8, max_size=32),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(receipts_strategy)
def test_any_valid_receipt_signs_and_verifies(centre_key, trust_list, receipt):
    """Every receipt the dataclass accepts round-trips through sign, QR text and verify."""
    text = receipts.issue(receipt, centre_key, HOST)
    assert len(text) <= receipts.MAX_QR_TEXT_LENGTH
    verdict = receipts.verify(text, trust_list, receipt.issued_at)
    assert verdict.is_valid and verdict.receipt == receipt


def test_base32_alphabet_matches_the_encoder():
    """The edit alphabet above is exactly the one the encoder uses."""
    assert set(base64.b32encode(bytes(range(256))).decode().rstrip("=")) == set(BASE32)
