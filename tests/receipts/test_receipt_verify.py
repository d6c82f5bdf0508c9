"""The offline verifier: every outcome, every reason, and the envelope attacks it must refuse."""
from __future__ import annotations

import base64
import datetime as dt

import cbor2
import pytest

from kiosk.domain import receipts, trustlist
from kiosk.domain.receipts import Outcome
from kiosk.domain.trustlist import TrustedKey
from tests.receipts.support import HOST, ISSUED_AT, NOW, listing, make_receipt

UTC = dt.timezone.utc


def envelope(text: str) -> list:
    """The four items of the COSE_Sign1 inside a QR text (decoded without any checks)."""
    data = receipts.parse_qr_text(text, HOST)
    return list(cbor2.loads(data).value)


def rewrap(items: list) -> str:
    """QR text of a COSE_Sign1 rebuilt from (possibly edited) items."""
    return receipts.qr_text(cbor2.dumps(cbor2.CBORTag(18, items), canonical=True), HOST)


def test_a_genuine_receipt_is_valid_with_its_contents(valid_text, trust_list, centre_key):
    """Valid: reason ok, the contents decoded, the kid of the signing key."""
    verdict = receipts.verify(valid_text, trust_list, NOW)
    assert verdict.outcome is Outcome.VALID and verdict.reason == "ok" and verdict.is_valid
    assert verdict.receipt == make_receipt()
    assert verdict.kid == receipts.key_id(centre_key.public_key())
    assert verdict.to_json()["receipt"]["fee_iqd"] == 25000
    assert verdict.message == receipts.REASONS["ok"]


def test_signing_is_deterministic(centre_key, valid_text):
    """RFC 6979: the same receipt and key give the same text (vectors can be regenerated)."""
    assert receipts.issue(make_receipt(), centre_key, HOST) == valid_text


def test_expiry_boundary(valid_text, trust_list):
    """Valid until the second before expires_at; expired from expires_at on, contents still shown."""
    expires_at = make_receipt().expires_at
    assert receipts.verify(valid_text, trust_list, expires_at - dt.timedelta(seconds=1)).is_valid
    verdict = receipts.verify(valid_text, trust_list, expires_at)
    assert (verdict.outcome, verdict.reason) == (Outcome.EXPIRED, "receipt_expired")
    assert verdict.receipt == make_receipt()


def test_revoked_receipt_id(valid_text, centre_key):
    """A receipt id on the revoked list is revoked even though the signature is good."""
    revoked = listing(centre_key, revoked_receipt_ids=frozenset({make_receipt().receipt_id}))
    verdict = receipts.verify(valid_text, revoked, NOW)
    assert (verdict.outcome, verdict.reason) == (Outcome.REVOKED, "receipt_revoked")
    assert verdict.receipt is not None


def test_revoked_key_still_listed_shows_contents(valid_text, centre_key):
    """A revoked key that is still listed: the signature is checked, then the receipt is revoked."""
    kid = receipts.key_id(centre_key.public_key())
    verdict = receipts.verify(valid_text, listing(centre_key, revoked_kids=frozenset({kid})), NOW)
    assert (verdict.outcome, verdict.reason) == (Outcome.REVOKED, "key_revoked")
    assert verdict.receipt == make_receipt()


def test_revoked_key_no_longer_listed(valid_text, centre_key):
    """A revoked key removed from the list: revoked, with nothing shown (signature uncheckable)."""
    kid = receipts.key_id(centre_key.public_key())
    verdict = receipts.verify(valid_text, listing(centre_key, keys=(), revoked_kids=frozenset({kid})), NOW)
    assert (verdict.outcome, verdict.reason, verdict.receipt) == (Outcome.REVOKED, "key_revoked", None)


def test_revocation_outranks_expiry(valid_text, centre_key):
    """A receipt both revoked and expired reads as revoked (the stronger warning)."""
    revoked = listing(centre_key, revoked_receipt_ids=frozenset({make_receipt().receipt_id}))
    assert receipts.verify(valid_text, revoked, make_receipt().expires_at).outcome is Outcome.REVOKED


def test_unknown_key(valid_text, other_key):
    """A trust list without the signer's key: invalid, unknown_key (a sync may be needed)."""
    verdict = receipts.verify(valid_text, listing(other_key), NOW)
    assert (verdict.outcome, verdict.reason, verdict.receipt) == (Outcome.INVALID, "unknown_key", None)


def test_forged_signature_under_a_listed_kid(centre_key, other_key, trust_list):
    """Another key signing under the centre's kid: bad_signature, contents withheld."""
    forged = receipts.issue(make_receipt(fee_iqd=1), other_key, HOST, kid=receipts.key_id(centre_key.public_key()))
    verdict = receipts.verify(forged, trust_list, NOW)
    assert (verdict.outcome, verdict.reason, verdict.receipt) == (Outcome.INVALID, "bad_signature", None)


@pytest.mark.parametrize("issued_at, reason", [
    (dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), "key_not_valid"),
    (dt.datetime(2026, 1, 1, tzinfo=UTC), "ok"),
    (dt.datetime(2027, 1, 1, tzinfo=UTC), "ok"),
    (dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), "key_not_valid"),
])
def test_key_window_is_inclusive(centre_key, trust_list, issued_at, reason):
    """A key vouches only for receipts issued inside its window, both ends included."""
    text = receipts.issue(make_receipt(issued_at=issued_at, due_at=issued_at,
                                       expires_at=issued_at + dt.timedelta(days=400)), centre_key, HOST)
    assert receipts.verify(text, trust_list, issued_at).reason == reason


def test_a_centre_key_cannot_vouch_for_another_centre(centre_key, trust_list):
    """The payload's centre must be the key's centre."""
    text = receipts.issue(make_receipt(centre="ERB-ANK-01"), centre_key, HOST)
    verdict = receipts.verify(text, trust_list, NOW)
    assert (verdict.outcome, verdict.reason) == (Outcome.INVALID, "centre_mismatch")


def test_the_host_must_be_the_trust_lists(centre_key, trust_list):
    """A code for another verification host is refused as wrong_host; junk is malformed."""
    other = receipts.issue(make_receipt(), centre_key, "V.EXAMPLE.NET")
    assert receipts.verify(other, trust_list, NOW).reason == "wrong_host"
    assert receipts.verify("hello", trust_list, NOW).reason == "malformed"
    assert receipts.verify("https://v.example.iq/r#AAAA", trust_list, NOW).reason == "malformed"


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: t.lower(), id="lower-case"),
    pytest.param(lambda t: t + "\n", id="trailing-newline"),
    pytest.param(lambda t: " " + t, id="leading-space"),
    pytest.param(lambda t: t + "=" * (-len(t.split("#")[1]) % 8), id="base32-padding"),
    pytest.param(lambda t: t[:-1], id="last-char-dropped"),
    pytest.param(lambda t: t + "A" * 700, id="too-long"),
    pytest.param(lambda t: t.replace("#", "#" + "AAAAAAAA"), id="junk-bytes-in-front"),
])
def test_only_the_exact_text_verifies(valid_text, trust_list, edit):
    """The verifier takes exactly one spelling; callers strip a scanner's whitespace first."""
    verdict = receipts.verify(edit(valid_text), trust_list, NOW)
    assert (verdict.outcome, verdict.reason) == (Outcome.INVALID, "malformed")


def test_non_canonical_base32_tail_is_refused(valid_text, trust_list):
    """Changing only the unused low bits of the last Base32 character is still refused."""
    fragment = valid_text.split("#")[1]
    unused_bits = (len(fragment) * 5) % 8
    assert unused_bits, "the sample's length leaves spare bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    last = alphabet.index(fragment[-1])
    sibling = valid_text[:-1] + alphabet[last ^ 1]
    assert base64.b32decode(sibling.split("#")[1] + "=" * (-len(fragment) % 8)) == \
        base64.b32decode(fragment + "=" * (-len(fragment) % 8))
    assert receipts.verify(sibling, trust_list, NOW).reason == "malformed"


@pytest.mark.parametrize("alg", [-8, -35, -37, 0, 5, "ES256", None])
def test_alg_other_than_es256_in_the_protected_header(valid_text, trust_list, alg):
    """Only alg -7 is accepted: no EdDSA, ES384, PS256, none, HMAC, text or missing alg."""
    items = envelope(valid_text)
    header = {4: cbor2.loads(items[0])[4]}
    if alg is not None:
        header[1] = alg
    items[0] = cbor2.dumps(header, canonical=True)
    verdict = receipts.verify(rewrap(items), trust_list, NOW)
    assert (verdict.outcome, verdict.reason) == (Outcome.INVALID, "unsupported_alg")


@pytest.mark.parametrize("unprotected, reason", [
    ({1: -7}, "unsupported_alg"),
    ({1: -8}, "unsupported_alg"),
    ({4: b"12345678"}, "malformed"),
    ({"x": 1}, "malformed"),
])
def test_unprotected_header_must_be_empty(valid_text, trust_list, unprotected, reason):
    """An alg in the unprotected header is an attack even when it says ES256; nothing else goes there."""
    items = envelope(valid_text)
    items[1] = unprotected
    assert receipts.verify(rewrap(items), trust_list, NOW).reason == reason


def test_extra_protected_header_is_refused(valid_text, trust_list):
    """The protected header is exactly {1: -7, 4: kid}."""
    items = envelope(valid_text)
    header = cbor2.loads(items[0])
    header[3] = "application/cbor"
    items[0] = cbor2.dumps(header, canonical=True)
    assert receipts.verify(rewrap(items), trust_list, NOW).reason == "malformed"


def test_high_s_twin_of_a_genuine_signature_is_refused(valid_text, trust_list):
    """(r, n - s) is mathematically valid too; only the low-S form is accepted, so one text per receipt."""
    items = envelope(valid_text)
    r, s = items[3][:32], int.from_bytes(items[3][32:], "big")
    items[3] = r + (receipts._P256_ORDER - s).to_bytes(32, "big")
    assert receipts.verify(rewrap(items), trust_list, NOW).reason == "bad_signature"


def test_der_signature_is_refused(valid_text, trust_list):
    """COSE signatures are raw r || s; a DER signature is malformed."""
    items = envelope(valid_text)
    items[3] = b"\x30" + items[3]
    assert receipts.verify(rewrap(items), trust_list, NOW).reason == "malformed"


def test_non_canonical_envelope_is_refused(valid_text, trust_list):
    """The same items with a longer-than-needed array head: refused, so no second valid spelling."""
    data = receipts.parse_qr_text(valid_text, HOST)
    assert data[:2] == b"\xd2\x84"
    longer = b"\xd2\x98\x04" + data[2:]
    assert cbor2.loads(longer).value == cbor2.loads(data).value
    assert receipts.verify(receipts.qr_text(longer, HOST), trust_list, NOW).reason == "malformed"
    assert receipts.verify(receipts.qr_text(data + b"\x00", HOST), trust_list, NOW).reason == "malformed"
    assert receipts.verify(receipts.qr_text(data[2:], HOST), trust_list, NOW).reason == "malformed"


def test_signed_garbage_is_bad_payload(centre_key, trust_list):
    """A listed key signing a payload of another schema version: invalid, bad_payload."""
    payload = cbor2.loads(receipts.encode_payload(make_receipt()))
    payload[0] = 2
    signed = receipts.cose_sign(cbor2.dumps(payload, canonical=True), centre_key, receipts.RECEIPT_AAD)
    verdict = receipts.verify(receipts.qr_text(signed, HOST), trust_list, NOW)
    assert (verdict.outcome, verdict.reason, verdict.receipt) == (Outcome.INVALID, "bad_payload", None)
    assert verdict.kid == receipts.key_id(centre_key.public_key())


def test_a_trust_list_signature_is_not_a_receipt_signature(centre_key, trust_list):
    """Domain separation: the same key over the same payload with the trust-list AAD does not verify."""
    signed = receipts.cose_sign(receipts.encode_payload(make_receipt()), centre_key, trustlist.TRUST_LIST_AAD)
    assert receipts.verify(receipts.qr_text(signed, HOST), trust_list, NOW).reason == "bad_signature"


def test_key_rotation_overlap(centre_key, other_key):
    """During the overlap both the old and the new key verify receipts of their own windows."""
    rotated = listing(centre_key, keys=(
        TrustedKey.from_public_key("NIN-MSL-03", centre_key.public_key(),
                                   dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 12, 31, tzinfo=UTC)),
        TrustedKey.from_public_key("NIN-MSL-03", other_key.public_key(),
                                   dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2027, 12, 31, tzinfo=UTC)),
    ))
    old = receipts.issue(make_receipt(), centre_key, HOST)
    new = receipts.issue(make_receipt(receipt_id="01KAR7X3M9Q4ZP2B6V8N5C1DHX"), other_key, HOST)
    assert receipts.verify(old, rotated, NOW).is_valid
    assert receipts.verify(new, rotated, NOW).is_valid


def test_verdict_json_shape(valid_text, trust_list):
    """The JSON form has exactly the fields the browser verifier returns."""
    body = receipts.verify(valid_text, trust_list, NOW).to_json()
    assert list(body) == ["outcome", "reason", "message", "kid", "receipt"]
    assert receipts.verify("x", trust_list, NOW).to_json() == {
        "outcome": "invalid", "reason": "malformed", "message": receipts.REASONS["malformed"],
        "kid": None, "receipt": None,
    }


def test_issue_refuses_a_non_p256_key():
    """Receipts are ES256 only; another curve is a programming error caught at signing."""
    from cryptography.hazmat.primitives.asymmetric import ec
    with pytest.raises(ValueError, match="P-256"):
        receipts.issue(make_receipt(), ec.generate_private_key(ec.SECP384R1()), HOST)


def test_issued_at_in_the_future_still_verifies(centre_key, trust_list):
    """Kiosks boot with stale clocks: a receipt dated after `now` is not refused for that."""
    text = receipts.issue(make_receipt(), centre_key, HOST)
    assert receipts.verify(text, trust_list, ISSUED_AT - dt.timedelta(days=3)).is_valid


def test_now_must_be_timezone_aware(valid_text, trust_list):
    """A naive `now` is a programming error, reported as such rather than as a bad receipt."""
    with pytest.raises(ValueError, match="timezone-aware"):
        receipts.verify(valid_text, trust_list, NOW.replace(tzinfo=None))
