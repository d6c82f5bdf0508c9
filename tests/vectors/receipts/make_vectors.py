"""Regenerate the published receipt test vectors from the committed TEST-ONLY keys.

Run from the repository root:

    .venv/bin/python tests/vectors/receipts/make_vectors.py            # rewrite the vectors
    .venv/bin/python tests/vectors/receipts/make_vectors.py --new-keys # also create missing keys

ES256 signatures are deterministic (RFC 6979), times are fixed, so a rerun gives identical files.
Each vector's expected result is written down here by hand; the script refuses to write a vector
the Python verifier disagrees with.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parents[2]))

import cbor2  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from kiosk.domain import receipts, trustlist  # noqa: E402
from kiosk.domain.receipts import Receipt, ReceiptStatus  # noqa: E402
from kiosk.domain.trustlist import TrustedKey, TrustList  # noqa: E402

KEYS_DIR = HERE / "keys"
KEY_NAMES = ("root", "centre-nin-msl-03-2026", "centre-nin-msl-03-2025", "centre-erb-ank-01", "attacker")
UTC = dt.timezone.utc
HOST = "VERIFY.EXAMPLE"
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ISSUED_AT = dt.datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
PEPPER = b"TEST-ONLY pepper: never used in production"
RID_VALID = "01KAR7X3M9Q4ZP2B6V8N5C1DHW"
RID_PREVIOUS_KEY = "01JTVQ5C2D3E4F5G6H7J8K9M0N"
RID_EXPIRED = "01K6F2A8B9C0D1E2F3G4H5J6K7"
RID_REVOKED = "01KAR7Y0000000000000000000"
RID_ERBIL = "01KAR7Z1111111111111111111"


def day(year: int, month: int, dom: int) -> dt.datetime:
    """Midnight UTC of a date."""
    return dt.datetime(year, month, dom, tzinfo=UTC)


def key_path(name: str) -> Path:
    """The committed PEM of a test-only key."""
    return KEYS_DIR / f"TEST-ONLY-{name}.pem"


def load_keys(create_missing: bool = False) -> dict[str, ec.EllipticCurvePrivateKey]:
    """The test-only private keys by name (git does not keep 0600, so they are read directly)."""
    found = {}
    for name in KEY_NAMES:
        path = key_path(name)
        if not path.exists():
            if not create_missing:
                raise SystemExit(f"missing {path.name}: run with --new-keys to create it")
            KEYS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        found[name] = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return found


def receipt(rid: str, *, centre: str = "NIN-MSL-03", issued_at: dt.datetime = ISSUED_AT,
            fee_iqd: int = 25000, days_valid: int = 365) -> Receipt:
    """A sample receipt: a birth-certificate request with the official fee and a 72-hour promise."""
    return Receipt(
        receipt_id=rid,
        centre=centre,
        service="PS-BIRTH",
        ticket="B-042",
        issued_at=issued_at,
        due_at=issued_at + dt.timedelta(hours=72),
        fee_iqd=fee_iqd,
        status=ReceiptStatus.OPEN,
        citizen_ref=receipts.citizen_ref_hash(PEPPER, "TEST-CITIZEN-0001", rid),
        expires_at=issued_at + dt.timedelta(days=days_valid),
    )


def trust_list(keys: dict, sequence: int = 7) -> TrustList:
    """The trust list the receipt vectors verify against."""
    return TrustList(
        sequence=sequence,
        issued_at=day(2026, 11, 20),
        verify_host=HOST,
        keys=(
            TrustedKey.from_public_key("NIN-MSL-03", keys["centre-nin-msl-03-2026"].public_key(),
                                       day(2026, 6, 1), day(2027, 8, 1)),
            TrustedKey.from_public_key("NIN-MSL-03", keys["centre-nin-msl-03-2025"].public_key(),
                                       day(2025, 6, 1), day(2026, 8, 1)),
            TrustedKey.from_public_key("ERB-ANK-01", keys["centre-erb-ank-01"].public_key(),
                                       day(2026, 1, 1), day(2027, 3, 1)),
        ),
        revoked_kids=frozenset({receipts.key_id(keys["centre-erb-ank-01"].public_key())}),
        revoked_receipt_ids=frozenset({RID_REVOKED}),
    )


def raw_sign1(payload: bytes, signer: ec.EllipticCurvePrivateKey, aad: bytes, *, alg: int = -7,
              kid: bytes | None = None, unprotected: dict | None = None) -> bytes:
    """A COSE_Sign1 built by hand, so vectors can carry headers the real signer never writes."""
    kid = receipts.key_id(signer.public_key()) if kid is None else kid
    protected = cbor2.dumps({1: alg, 4: kid}, canonical=True)
    tbs = cbor2.dumps(["Signature1", protected, aad, payload])
    r, s = decode_dss_signature(signer.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    s = min(s, receipts._P256_ORDER - s)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected or {}, payload, signature]), canonical=True)


def hmac_sign1(payload: bytes, public_key: ec.EllipticCurvePublicKey, kid: bytes) -> bytes:
    """The classic algorithm-confusion forgery: HMAC (alg 5) keyed with the victim's public key."""
    protected = cbor2.dumps({1: 5, 4: kid}, canonical=True)
    tbs = cbor2.dumps(["MAC0", protected, receipts.RECEIPT_AAD, payload])
    secret = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tag = hmac.new(secret, tbs, hashlib.sha256).digest()
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, tag]), canonical=True)


def root_entry(public_key: ec.EllipticCurvePublicKey) -> dict:
    """A pinned root key in the three forms verifiers take: kid, PEM and JWK."""
    return {
        "kid": receipts.key_id(public_key).hex(),
        "pem": public_key.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"),
        "jwk": trustlist.public_jwk(public_key),
    }


def expected_verdict(outcome: str, reason: str, contents: Receipt | None, kid: bytes | None) -> dict:
    """The verdict JSON every verifier must return, written from the vector's definition."""
    return {
        "outcome": outcome,
        "reason": reason,
        "message": receipts.REASONS[reason],
        "kid": kid.hex() if kid is not None else None,
        "receipt": contents.to_json() if contents is not None else None,
    }


def build_vectors(keys: dict) -> list[dict]:
    """Every vector, in publication order."""
    root = keys["root"]
    current, previous = keys["centre-nin-msl-03-2026"], keys["centre-nin-msl-03-2025"]
    erbil, attacker = keys["centre-erb-ank-01"], keys["attacker"]
    kid_current = receipts.key_id(current.public_key())
    listed = trust_list(keys)
    signed_list = trustlist.seal_trust_list(listed, root)
    common = {
        "now": receipts.iso(NOW),
        "trust_list": {
            "signed_base64": base64.b64encode(signed_list).decode("ascii"),
            "json": listed.to_json(),
        },
        "root_keys": [root_entry(root.public_key())],
    }

    def text(signed: bytes, host: str = HOST) -> str:
        """QR text of COSE bytes."""
        return receipts.qr_text(signed, host)

    def signed_by(key, contents: Receipt) -> bytes:
        """The genuine signer's output."""
        return receipts.sign_receipt(contents, key)

    good = receipt(RID_VALID)
    good_signed = signed_by(current, good)
    tampered = cbor2.loads(good_signed).value
    tampered_payload = receipts.encode_payload(receipt(RID_VALID, fee_iqd=2500))
    tampered_signed = cbor2.dumps(cbor2.CBORTag(18, [tampered[0], {}, tampered_payload, tampered[3]]),
                                  canonical=True)
    previous_receipt = receipt(RID_PREVIOUS_KEY, issued_at=dt.datetime(2026, 5, 10, 11, 30, tzinfo=UTC))
    expired = receipt(RID_EXPIRED, issued_at=dt.datetime(2025, 10, 1, 8, 0, tzinfo=UTC), days_valid=365)
    revoked_receipt = receipt(RID_REVOKED)
    erbil_receipt = receipt(RID_ERBIL, centre="ERB-ANK-01")
    out_of_window = receipt(RID_VALID)
    wrong_centre = receipt(RID_VALID, centre="ERB-ANK-01")
    payload = receipts.encode_payload(good)
    kid_previous = receipts.key_id(previous.public_key())
    kid_erbil = receipts.key_id(erbil.public_key())
    kid_attacker = receipts.key_id(attacker.public_key())

    cases = [
        ("valid", "A receipt signed by the centre's current key.",
         text(good_signed), expected_verdict("valid", "ok", good, kid_current)),
        ("valid-previous-key", "Signed by the centre's previous key inside its window, before rotation.",
         text(signed_by(previous, previous_receipt)),
         expected_verdict("valid", "ok", previous_receipt, kid_previous)),
        ("tampered-payload", "The valid receipt with its fee changed from 25000 to 2500 IQD, signature kept.",
         text(tampered_signed), expected_verdict("invalid", "bad_signature", None, kid_current)),
        ("wrong-key", "Signed by an unlisted key that claims the centre's key id.",
         text(raw_sign1(payload, attacker, receipts.RECEIPT_AAD, kid=kid_current)),
         expected_verdict("invalid", "bad_signature", None, kid_current)),
        ("unknown-kid", "Signed by an unlisted key under its own key id.",
         text(raw_sign1(payload, attacker, receipts.RECEIPT_AAD)),
         expected_verdict("invalid", "unknown_key", None, kid_attacker)),
        ("alg-swap-eddsa", "Protected header names EdDSA (-8) instead of ES256.",
         text(raw_sign1(payload, attacker, receipts.RECEIPT_AAD, alg=-8, kid=kid_current)),
         expected_verdict("invalid", "unsupported_alg", None, None)),
        ("alg-swap-hmac", "Protected header names HMAC 256/256 (5), keyed with the centre's public key.",
         text(hmac_sign1(payload, current.public_key(), kid_current)),
         expected_verdict("invalid", "unsupported_alg", None, None)),
        ("alg-in-unprotected", "A genuine signature with an attacker's alg (-8) added to the unprotected header.",
         text(raw_sign1(payload, current, receipts.RECEIPT_AAD, unprotected={1: -8})),
         expected_verdict("invalid", "unsupported_alg", None, None)),
        ("expired", "Genuine, but past its verification expiry.",
         text(signed_by(previous, expired)), expected_verdict("expired", "receipt_expired", expired, kid_previous)),
        ("revoked-key", "Genuine, signed by a key the trust list revokes.",
         text(signed_by(erbil, erbil_receipt)), expected_verdict("revoked", "key_revoked", erbil_receipt, kid_erbil)),
        ("revoked-receipt", "Genuine, but its receipt id is on the revoked list.",
         text(signed_by(current, revoked_receipt)),
         expected_verdict("revoked", "receipt_revoked", revoked_receipt, kid_current)),
        ("key-outside-window", "Signed by the previous key after its signing window closed.",
         text(signed_by(previous, out_of_window)),
         expected_verdict("invalid", "key_not_valid", out_of_window, kid_previous)),
        ("centre-mismatch", "Signed by one centre's key but naming another centre.",
         text(signed_by(current, wrong_centre)),
         expected_verdict("invalid", "centre_mismatch", wrong_centre, kid_current)),
        ("wrong-host", "The valid signature under another verification host.",
         text(good_signed, "VERIFY.EXAMPLE.NET"), expected_verdict("invalid", "wrong_host", None, None)),
        ("truncated", "The valid text with its last 8 characters cut off.",
         text(good_signed)[:-8], expected_verdict("invalid", "malformed", None, None)),
    ]
    vectors = [
        {"name": name, "description": description, "kind": "receipt", "qr_text": qr, **common, "expected": expected}
        for name, description, qr, expected in cases
    ]

    def list_vector(name: str, description: str, signed: bytes, expected: dict) -> dict:
        """A trust-list acceptance vector against the accepted sequence 7."""
        return {
            "name": name, "description": description, "kind": "trust_list",
            "signed_base64": base64.b64encode(signed).decode("ascii"),
            "accepted_sequence": 7,
            "root_keys": [root_entry(root.public_key())],
            "expected": expected,
        }

    newer, older = trust_list(keys, sequence=8), trust_list(keys, sequence=6)
    root_kid = receipts.key_id(root.public_key())
    vectors += [
        list_vector("trust-list-newer", "A root-signed list with a higher sequence: accepted.",
                    trustlist.seal_trust_list(newer, root),
                    {"accepted": True, "reason": None, "sequence": 8, "json": newer.to_json()}),
        list_vector("trust-list-rolled-back", "A genuine root-signed list older than the accepted one.",
                    trustlist.seal_trust_list(older, root),
                    {"accepted": False, "reason": "rollback", "sequence": None, "json": None}),
        list_vector("trust-list-forged", "A newer list signed by a key that is not a pinned root.",
                    trustlist.seal_trust_list(newer, attacker),
                    {"accepted": False, "reason": "unknown_root", "sequence": None, "json": None}),
        list_vector("trust-list-bad-signature", "A newer list signed by another key under the root's key id.",
                    raw_sign1(trustlist.encode_trust_list(newer), attacker, trustlist.TRUST_LIST_AAD, kid=root_kid),
                    {"accepted": False, "reason": "bad_signature", "sequence": None, "json": None}),
        list_vector("trust-list-alg-swap", "A newer list whose protected header names EdDSA (-8).",
                    raw_sign1(trustlist.encode_trust_list(newer), root, trustlist.TRUST_LIST_AAD, alg=-8),
                    {"accepted": False, "reason": "unsupported_alg", "sequence": None, "json": None}),
        list_vector("trust-list-is-a-receipt", "A genuine receipt offered as a trust list (other AAD, other key).",
                    good_signed,
                    {"accepted": False, "reason": "unknown_root", "sequence": None, "json": None}),
    ]
    for vector in vectors:
        _check(vector)
    return vectors


def python_result(vector: dict) -> dict:
    """What the Python verifier answers for a vector, in the vector's `expected` shape."""
    roots = [serialization.load_pem_public_key(r["pem"].encode("ascii")) for r in vector["root_keys"]]
    if vector["kind"] == "receipt":
        accepted = trustlist.open_trust_list(base64.b64decode(vector["trust_list"]["signed_base64"]), roots)
        now = dt.datetime.fromisoformat(vector["now"].replace("Z", "+00:00"))
        return receipts.verify(vector["qr_text"], accepted, now).to_json()
    try:
        opened = trustlist.open_trust_list(base64.b64decode(vector["signed_base64"]), roots,
                                           accepted_sequence=vector["accepted_sequence"])
    except trustlist.TrustListError as exc:
        return {"accepted": False, "reason": exc.reason, "sequence": None, "json": None}
    return {"accepted": True, "reason": None, "sequence": opened.sequence, "json": opened.to_json()}


def _check(vector: dict) -> None:
    """Refuse to publish a vector whose hand-written expectation the Python verifier contradicts."""
    got = python_result(vector)
    if got != vector["expected"]:
        raise SystemExit(f"vector {vector['name']}: expected {vector['expected']}, verifier says {got}")


def render(vectors: list[dict]) -> dict[str, str]:
    """File name -> file text for every vector plus the index."""
    files = {f"{v['name']}.json": json.dumps(v, indent=2, ensure_ascii=False) + "\n" for v in vectors}
    index = [{"file": f"{v['name']}.json", "kind": v["kind"],
              "expected": ({"outcome": v["expected"]["outcome"], "reason": v["expected"]["reason"]}
                           if v["kind"] == "receipt" else
                           {"accepted": v["expected"]["accepted"], "reason": v["expected"]["reason"]})}
             for v in vectors]
    files["index.json"] = json.dumps(index, indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write the vectors next to this script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-keys", action="store_true", help="create missing TEST-ONLY keys first")
    args = parser.parse_args(argv)
    files = render(build_vectors(load_keys(create_missing=args.new_keys)))
    for name, body in files.items():
        (HERE / name).write_text(body, encoding="utf-8")
    print(f"wrote {len(files)} files to {HERE.name}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
