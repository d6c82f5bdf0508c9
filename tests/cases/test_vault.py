"""The vault: AES-GCM sealing bound to record and field, the data key file, the citizen-reference hash."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from kiosk import vault as vault_mod
from kiosk.domain import receipts
from kiosk.vault import Vault, VaultError, open_vault


def test_round_trip_and_binding(data_dir):
    """A value opens only for the record and field it was sealed for."""
    box = open_vault(data_dir)
    token = box.seal({"provider": "nrc-shelter", "details": "كانت العائلة بلا مأوى"}, record_id="R1", name="referral")
    assert box.open(token, record_id="R1", name="referral")["details"] == "كانت العائلة بلا مأوى"
    for record_id, name in (("R2", "referral"), ("R1", "notes")):
        with pytest.raises(VaultError):
            box.open(token, record_id=record_id, name=name)


def test_every_seal_is_different_and_tampering_is_caught(data_dir):
    """A fresh nonce per seal; one flipped character does not open."""
    box = open_vault(data_dir)
    first, second = (box.seal("same", record_id="R", name="notes") for _ in range(2))
    assert first != second
    body = first.rsplit(".", 1)[1]
    flipped = first[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(VaultError):
        box.open(flipped, record_id="R", name="notes")
    for junk in ("", "v1.x", "v2.abc.def", None):
        with pytest.raises(VaultError):
            box.open(junk, record_id="R", name="notes")


def test_another_key_cannot_open(data_dir, tmp_path):
    """A copy of the store without its data key is useless."""
    token = open_vault(data_dir).seal("secret", record_id="R", name="notes")
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(VaultError, match="another data key"):
        open_vault(other).open(token, record_id="R", name="notes")


def test_key_file_is_private_and_kept(data_dir):
    """keys/ is 0700, data.key 0600 and 32 bytes; opening again reads the same key."""
    first = open_vault(data_dir)
    path = vault_mod.data_key_path(data_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert path.stat().st_size == 32
    token = first.seal(1, record_id="R", name="n")
    assert open_vault(data_dir).open(token, record_id="R", name="n") == 1


def test_refuses_a_readable_or_damaged_key(data_dir):
    """A key others can read, or one that is not 32 bytes, stops with what to do; it is never replaced."""
    open_vault(data_dir)
    path = vault_mod.data_key_path(data_dir)
    os.chmod(path, 0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        open_vault(data_dir)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(VaultError, match="restore it"):
        open_vault(data_dir)
    assert path.read_bytes() == b"short"


def test_two_processes_starting_together_share_one_key(data_dir):
    """Racing first starts end up with one key (link, never replace)."""
    results = []
    barrier = threading.Barrier(8)

    def start():
        """Open the vault as a fresh process would."""
        barrier.wait()
        results.append(open_vault(data_dir).key_id)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1


def test_citizen_reference_hash_is_keyed_and_bound_to_the_receipt():
    """Same reference, two receipts: unlinkable; the hash is the receipts module's HMAC."""
    box = Vault(b"k" * 32)
    rid_a, rid_b = "01KAR7X3M9Q4ZP2B6V8N5C1DHW", "01KAR7X3M9Q4ZP2B6V8N5C1DHX"
    assert box.citizen_ref("19901234567", rid_a) != box.citizen_ref("19901234567", rid_b)
    assert len(box.citizen_ref("19901234567", rid_a)) == 8
    assert Vault(b"j" * 32).citizen_ref("19901234567", rid_a) != box.citizen_ref("19901234567", rid_a)
    assert box.citizen_ref("19901234567", rid_a) == receipts.citizen_ref_hash(box._pepper, "19901234567", rid_a)


def test_bad_key_length_is_refused():
    """Only a 32-byte key is a data key."""
    with pytest.raises(VaultError):
        Vault(b"short")
