"""The root-signed trust list: round trip, rollback, alg swap, forgery and damaged contents."""
from __future__ import annotations

import base64
import datetime as dt

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain import receipts, trustlist
from kiosk.domain.trustlist import TrustedKey, TrustList, TrustListError
from tests.receipts.support import HOST, NOW, listing, make_receipt

UTC = dt.timezone.utc


def reason_of(data: bytes, roots, **kwargs) -> str:
    """The reason a trust list is refused."""
    with pytest.raises(TrustListError) as caught:
        trustlist.open_trust_list(data, roots, **kwargs)
    assert caught.value.message == trustlist.REASONS[caught.value.reason]
    return caught.value.reason


def test_round_trip_under_the_root(trust_list, root_key):
    """Sealed by the root, opened with its public key: the same list."""
    sealed = trustlist.seal_trust_list(trust_list, root_key)
    assert trustlist.open_trust_list(sealed, [root_key.public_key()]) == trust_list


def test_sealing_is_deterministic_and_order_independent(centre_key, other_key, root_key):
    """Equal lists give equal bytes whatever order keys and revocations were given in."""
    window = (dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    a = TrustedKey.from_public_key("NIN-MSL-03", centre_key.public_key(), *window)
    b = TrustedKey.from_public_key("ERB-ANK-01", other_key.public_key(), *window)
    rids = ["01KAR7X3M9Q4ZP2B6V8N5C1DHW", "01KAR7X3M9Q4ZP2B6V8N5C1DHX"]
    first = listing(centre_key, keys=(a, b), revoked_receipt_ids=frozenset(rids))
    second = listing(centre_key, keys=(b, a), revoked_receipt_ids=frozenset(reversed(rids)))
    assert trustlist.seal_trust_list(first, root_key) == trustlist.seal_trust_list(second, root_key)


@pytest.mark.parametrize("sequence, accepted", [(4, False), (5, True), (6, True)])
def test_rollback_is_refused(centre_key, root_key, sequence, accepted):
    """With sequence 5 accepted: 4 is a rollback, 5 is the same list again, 6 is newer."""
    sealed = trustlist.seal_trust_list(listing(centre_key, sequence=sequence), root_key)
    if accepted:
        assert trustlist.open_trust_list(sealed, [root_key.public_key()], accepted_sequence=5).sequence == sequence
    else:
        assert reason_of(sealed, [root_key.public_key()], accepted_sequence=5) == "rollback"


def test_an_old_list_that_revoked_nothing_cannot_undo_a_revocation(centre_key, root_key, valid_text):
    """The attack rollback protection stops: replaying the list from before a key was revoked."""
    kid = receipts.key_id(centre_key.public_key())
    before = trustlist.seal_trust_list(listing(centre_key, sequence=5), root_key)
    after = trustlist.seal_trust_list(listing(centre_key, sequence=6, revoked_kids=frozenset({kid})), root_key)
    current = trustlist.open_trust_list(after, [root_key.public_key()], accepted_sequence=5)
    assert receipts.verify(valid_text, current, NOW).reason == "key_revoked"
    assert reason_of(before, [root_key.public_key()], accepted_sequence=current.sequence) == "rollback"


def _rewrap(sealed: bytes, *, header: dict | None = None, unprotected: dict | None = None,
            payload: bytes | None = None) -> bytes:
    """A sealed list with one envelope part replaced (its signature left as it was)."""
    items = list(cbor2.loads(sealed).value)
    if header is not None:
        items[0] = cbor2.dumps(header, canonical=True)
    if unprotected is not None:
        items[1] = unprotected
    if payload is not None:
        items[2] = payload
    return cbor2.dumps(cbor2.CBORTag(18, items), canonical=True)


@pytest.mark.parametrize("alg", [-8, -35, 5, 0])
def test_alg_swap_in_the_protected_header(trust_list, root_key, alg):
    """Only ES256 signs trust lists."""
    sealed = trustlist.seal_trust_list(trust_list, root_key)
    kid = receipts.key_id(root_key.public_key())
    assert reason_of(_rewrap(sealed, header={1: alg, 4: kid}), [root_key.public_key()]) == "unsupported_alg"


def test_alg_in_the_unprotected_header(trust_list, root_key):
    """An alg outside the signed header is refused even next to a genuine signature."""
    sealed = trustlist.seal_trust_list(trust_list, root_key)
    assert reason_of(_rewrap(sealed, unprotected={1: -8}), [root_key.public_key()]) == "unsupported_alg"


def test_signed_by_a_key_that_is_not_a_root(trust_list, root_key, centre_key):
    """A centre key (or anyone's) cannot publish a trust list."""
    assert reason_of(trustlist.seal_trust_list(trust_list, centre_key), [root_key.public_key()]) == "unknown_root"


def test_root_kid_with_another_keys_signature(trust_list, root_key, other_key):
    """Claiming the root's kid does not help a forger."""
    forged = receipts.cose_sign(trustlist.encode_trust_list(trust_list), other_key, trustlist.TRUST_LIST_AAD,
                                kid=receipts.key_id(root_key.public_key()))
    assert reason_of(forged, [root_key.public_key()]) == "bad_signature"


def test_tampered_contents(trust_list, root_key, other_key):
    """Adding a key to a genuine list after signing breaks the signature."""
    sealed = trustlist.seal_trust_list(trust_list, root_key)
    extra = listing(other_key, keys=trust_list.keys + (TrustedKey.from_public_key(
        "NIN-MSL-03", other_key.public_key(), dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2030, 1, 1, tzinfo=UTC)),))
    assert reason_of(_rewrap(sealed, payload=trustlist.encode_trust_list(extra)), [root_key.public_key()]) \
        == "bad_signature"


def test_a_receipt_is_not_a_trust_list(root_key):
    """A receipt, even one signed by a root key, never opens as a trust list (separate AAD)."""
    assert reason_of(receipts.sign_receipt(make_receipt(), root_key), [root_key.public_key()]) == "bad_signature"


def test_root_rotation_accepts_either_pinned_root(trust_list, root_key, other_key):
    """Two pinned roots during a root change: a list signed by either is accepted."""
    roots = [other_key.public_key(), root_key.public_key()]
    for signer in (root_key, other_key):
        assert trustlist.open_trust_list(trustlist.seal_trust_list(trust_list, signer), roots) == trust_list


def test_oversized_and_non_bytes_input(root_key):
    """Size is bounded before any parsing."""
    assert reason_of(b"\x00" * (trustlist.MAX_TRUST_LIST_BYTES + 1), [root_key.public_key()]) == "malformed"
    assert reason_of("not bytes", [root_key.public_key()]) == "malformed"  # type: ignore[arg-type]


def _signed_body(root_key, edit) -> bytes:
    """A root-signed list whose decoded body was changed by `edit` before signing."""
    body = cbor2.loads(trustlist.encode_trust_list(listing(ec.generate_private_key(ec.SECP256R1()))))
    edit(body)
    return receipts.cose_sign(cbor2.dumps(body, canonical=True), root_key, trustlist.TRUST_LIST_AAD)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda b: b.update(version=2), id="version-2"),
    pytest.param(lambda b: b.pop("revoked_keys"), id="field-missing"),
    pytest.param(lambda b: b.update(extra=1), id="unknown-field"),
    pytest.param(lambda b: b.update(sequence=-1), id="negative-sequence"),
    pytest.param(lambda b: b.update(sequence=2**60), id="sequence-beyond-2^53"),
    pytest.param(lambda b: b.update(verify_host="v.example.iq/evil"), id="bad-host"),
    pytest.param(lambda b: b["keys"][0].update(kid=b"\x00" * 8), id="kid-not-of-key"),
    pytest.param(lambda b: b["keys"][0].update(centre="no spaces"), id="bad-centre"),
    pytest.param(lambda b: b["keys"][0].update(not_after_at=0), id="window-ends-before-start"),
    pytest.param(lambda b: b.update(revoked_keys=[b"short"]), id="short-revoked-kid"),
    pytest.param(lambda b: b.update(revoked_receipts=[b"x" * 15]), id="short-revoked-rid"),
    pytest.param(lambda b: b.update(keys={}), id="keys-not-a-list"),
])
def test_signed_but_unreadable_contents(root_key, edit):
    """Root-signed contents that break the schema are refused as bad_payload."""
    assert reason_of(_signed_body(root_key, edit), [root_key.public_key()]) == "bad_payload"


def test_compressed_point_key_is_refused(root_key):
    """Keys must be in the canonical uncompressed SPKI form both verifiers compute kids over."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    compressed = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    spki_compressed = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200") + compressed
    assert serialization.load_der_public_key(spki_compressed) == key  # readable, just not canonical

    def edit(body):
        """Swap in the compressed form of a valid key."""
        body["keys"][0]["public_key"] = spki_compressed
    assert reason_of(_signed_body(root_key, edit), [root_key.public_key()]) == "bad_payload"


def test_host_is_normalised_and_validated(centre_key):
    """The list's host is stored upper case; a path or scheme in it is refused."""
    assert listing(centre_key, verify_host="v.example.iq").verify_host == HOST
    for bad in ("https://v.example.iq", "v.example.iq/R", "", "-v.example.iq"):
        with pytest.raises(ValueError):
            listing(centre_key, verify_host=bad)


def test_json_form_for_the_browser(trust_list, centre_key):
    """Keys as JWK with hex kids; times ISO UTC; revocations sorted."""
    body = listing(centre_key, revoked_kids=frozenset({b"\x02" * 8, b"\x01" * 8})).to_json()
    key = body["keys"][0]
    numbers = centre_key.public_key().public_numbers()
    assert key["kid"] == receipts.key_id(centre_key.public_key()).hex()
    assert key["jwk"]["kty"] == "EC" and key["jwk"]["crv"] == "P-256"
    assert trustlist.public_jwk(centre_key.public_key())["x"] == key["jwk"]["x"]
    assert numbers.x.to_bytes(32, "big") == base64.urlsafe_b64decode(key["jwk"]["x"] + "=")
    assert key["not_before_at"] == "2026-01-01T00:00:00.000Z"
    assert body["revoked_keys"] == ["01" * 8, "02" * 8]
    assert body["verify_host"] == HOST and body["sequence"] == 5


def test_trusted_key_validation(centre_key):
    """A key entry needs a P-256 key, a centre code and a window in order."""
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="P-256"):
        TrustedKey.from_public_key("NIN-MSL-03", ec.generate_private_key(ec.SECP384R1()).public_key(), start, end)
    with pytest.raises(ValueError, match="window"):
        TrustedKey.from_public_key("NIN-MSL-03", centre_key.public_key(), end, start)
    with pytest.raises(ValueError, match="centre"):
        TrustedKey.from_public_key("", centre_key.public_key(), start, end)
    with pytest.raises(ValueError, match="timezone"):
        TrustedKey.from_public_key("NIN-MSL-03", centre_key.public_key(), start.replace(tzinfo=None), end)
    with pytest.raises(ValueError, match="sequence"):
        TrustList(sequence=-1, issued_at=start, verify_host=HOST)
