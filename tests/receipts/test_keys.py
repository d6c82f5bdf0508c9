"""Key files: created once with owner-only modes, never replaced, refused when exposed or damaged."""
from __future__ import annotations

import datetime as dt
import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kiosk import keys
from kiosk.domain import receipts, trustlist
from kiosk.keys import KeyFileError
from tests.receipts.support import HOST, NOW, listing, make_receipt

UTC = dt.timezone.utc


def mode(path) -> int:
    """Permission bits of a path."""
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """Run with umask 000, the worst case for files created without an explicit mode."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_centre_key_is_created_on_first_use_with_owner_only_modes(data_dir, open_umask):
    """DATA/keys is 0700 and receipt-signing.pem 0600 even under umask 000; no temp file is left."""
    key = keys.load_or_create_centre_key(data_dir)
    path = data_dir / "keys" / "receipt-signing.pem"
    assert path.is_file()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["receipt-signing.pem"]
    assert key.kid == receipts.key_id(key.public_key) and len(key.kid) == 8


def test_second_use_loads_the_same_key(data_dir):
    """The key is made once; later starts load it."""
    first = keys.load_or_create_centre_key(data_dir)
    second = keys.load_or_create_centre_key(data_dir)
    assert second.kid == first.kid
    assert keys.load_centre_key(data_dir).kid == first.kid


def test_concurrent_first_use_agrees_on_one_key(data_dir):
    """Processes starting together never replace each other's key: everyone ends with the same kid."""
    kids, errors = [], []
    barrier = threading.Barrier(8)

    def start():
        """One process starting up: wait for the others, then load or create the key."""
        barrier.wait()
        try:
            kids.append(keys.load_or_create_centre_key(data_dir).kid)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(kids) == 8 and len(set(kids)) == 1
    assert keys.load_centre_key(data_dir).kid == kids[0]
    assert [p.name for p in (data_dir / "keys").iterdir()] == ["receipt-signing.pem"]


def test_existing_keys_directory_is_tightened(data_dir):
    """A keys directory left 0755 by an installer is made 0700 when the key is created."""
    (data_dir / "keys").mkdir(mode=0o755)
    os.chmod(data_dir / "keys", 0o755)
    keys.load_or_create_centre_key(data_dir)
    assert mode(data_dir / "keys") == 0o700


def test_a_key_readable_by_others_is_refused_not_replaced(data_dir):
    """Mode 0644 means the key may be exposed: a clear error naming the fix, and the file untouched."""
    keys.load_or_create_centre_key(data_dir)
    path = keys.centre_key_path(data_dir)
    before = path.read_bytes()
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match=r"readable by other users \(mode 0644\).*chmod 600"):
        keys.load_or_create_centre_key(data_dir)
    assert path.read_bytes() == before


def test_a_damaged_key_is_an_error_never_a_new_key(data_dir):
    """Printed receipts must stay verifiable: a corrupt key file stops signing, it is not regenerated."""
    path = keys.centre_key_path(data_dir)
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        keys.load_or_create_centre_key(data_dir)
    assert b"garbage" in path.read_bytes()


@pytest.mark.parametrize("other", [
    pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="P-384"),
    pytest.param(ed25519.Ed25519PrivateKey.generate, id="Ed25519"),
])
def test_a_key_of_another_type_is_refused(data_dir, other):
    """Only P-256 keys sign receipts."""
    path = keys.centre_key_path(data_dir)
    path.parent.mkdir(mode=0o700)
    path.write_bytes(other().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="P-256"):
        keys.load_centre_key(data_dir)


def test_a_symlinked_key_file_is_refused(data_dir, tmp_path):
    """The key is read without following a link someone planted in its place."""
    keys.load_or_create_centre_key(tmp_path / "elsewhere")
    path = keys.centre_key_path(data_dir)
    path.parent.mkdir(mode=0o700)
    path.symlink_to(keys.centre_key_path(tmp_path / "elsewhere"))
    with pytest.raises(KeyFileError, match="cannot open"):
        keys.load_centre_key(data_dir)


def test_missing_centre_key(data_dir):
    """Loading without creating says where the key was expected."""
    with pytest.raises(KeyFileError, match="no key file at .*receipt-signing.pem"):
        keys.load_centre_key(data_dir)


def test_enrolment_exports_only_the_public_key(data_dir):
    """The enrolment request carries the centre, the kid and a PEM public key that matches."""
    key = keys.load_or_create_centre_key(data_dir)
    request = key.enrolment("NIN-MSL-03")
    assert request["centre"] == "NIN-MSL-03" and request["kid"] == key.kid.hex()
    assert "PRIVATE" not in request["public_key_pem"]
    [public] = keys.load_public_keys_pem(request["public_key_pem"])
    assert receipts.key_id(public) == key.kid


def test_a_created_key_signs_receipts_that_verify(data_dir):
    """End to end: the file key signs, its exported public key enrolled in a trust list verifies."""
    key = keys.load_or_create_centre_key(data_dir)
    [public] = keys.load_public_keys_pem(key.public_pem())
    trust = listing(ec.generate_private_key(ec.SECP256R1()), keys=(trustlist.TrustedKey.from_public_key(
        "NIN-MSL-03", public, dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)),))
    text = receipts.issue(make_receipt(), key.private_key, HOST, kid=key.kid)
    assert receipts.verify(text, trust, NOW).is_valid


def test_root_key_lifecycle(tmp_path, centre_key):
    """Central creates the root once (0600), loads it, signs trust lists kiosks can open."""
    path = tmp_path / "central" / "root" / "trust-root-key.pem"
    root = keys.create_root_key(path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    with pytest.raises(KeyFileError, match="already exists"):
        keys.create_root_key(path)
    loaded = keys.load_root_key(path)
    assert loaded.kid == root.kid
    sealed = keys.sign_trust_list(loaded, listing(centre_key))
    assert trustlist.open_trust_list(sealed, [root.public_key]) == listing(centre_key)


def test_pinned_root_keys(data_dir):
    """Kiosks pin one or more root public keys; re-pinning replaces the set."""
    first = ec.generate_private_key(ec.SECP256R1()).public_key()
    second = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(KeyFileError, match="no trust-list root key pinned"):
        keys.load_pinned_root_keys(data_dir)
    keys.pin_root_keys(data_dir, keys.public_key_pem(first) + keys.public_key_pem(second))
    assert keys.load_pinned_root_keys(data_dir) == [first, second]
    keys.pin_root_keys(data_dir, keys.public_key_pem(second).encode("ascii"))
    assert keys.load_pinned_root_keys(data_dir) == [second]


@pytest.mark.parametrize("text, message", [
    ("", "no PEM public key"),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "unreadable public key"),
])
def test_bad_public_key_text(text, message, data_dir):
    """Pinning junk is refused before anything is written."""
    with pytest.raises(KeyFileError, match=message):
        keys.pin_root_keys(data_dir, text)
    assert not keys.pinned_roots_path(data_dir).exists()


def test_public_key_of_another_curve_is_refused():
    """Root and centre public keys are P-256 only."""
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(KeyFileError, match="P-256"):
        keys.load_public_keys_pem(keys.public_key_pem(other))
