"""Encryption at rest for what a case must keep but nobody may read in the data files: contact
details, notes, rejection reasons and everything about a referral.

AES-256-GCM under a data key kept in DATA/keys/data.key (32 random bytes, file 0600, directory
0700), made on first use and never replaced. Each value is sealed with the record and field it
belongs to as associated data, so a ciphertext copied into another record or field does not open.
The citizen reference is never stored at all: only a keyed hash of it (HMAC-SHA256 under a pepper
derived from the data key), bound to the receipt id as receipts carry it.

A stolen disk is protected only if the data key is not on it in clear: run the data directory on
an encrypted volume (LUKS) or keep the key on a TPM-sealed or supervisor-unlocked device.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.domain import receipts
from kiosk.keys import private_directory, read_owner_only, write_private_file

log = logging.getLogger(__name__)

DATA_KEY_PATH = Path("keys") / "data.key"
KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "v1"
MAX_PLAINTEXT_BYTES = 16 * 1024
_PEPPER_INFO = b"kiosk citizen-reference pepper v1"


class VaultError(Exception):
    """The data key cannot be used, or a sealed value does not open."""


def data_key_path(data_dir: str | os.PathLike) -> Path:
    """Where the data key lives under the data directory."""
    return Path(data_dir) / DATA_KEY_PATH


def _create_key_file(path: Path) -> bool:
    """Put a fresh data key in place; False if another process's key appeared first (then use that)."""
    private_directory(path.parent)
    return write_private_file(path, secrets.token_bytes(KEY_BYTES), 0o600, replace=False)


def _read_key_file(path: Path) -> bytes:
    """The key bytes of a regular file only its owner can read; VaultError saying what to do otherwise."""
    key = read_owner_only(path, KEY_BYTES, VaultError, what="data key")
    if len(key) != KEY_BYTES:
        # never replaced: every sealed value in the store would be lost with it
        raise VaultError(f"{path} is not a {KEY_BYTES}-byte data key; restore it from the backup")
    return key


class Vault:
    """Seals and opens confidential fields; computes citizen-reference hashes."""

    def __init__(self, key: bytes):
        """Use `key` (32 bytes) as the data key; `open_vault` loads it from the data directory."""
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise VaultError(f"a data key has {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"kiosk data key id" + key).hexdigest()[:8]
        self._pepper = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PEPPER_INFO).derive(key)

    @staticmethod
    def _aad(record_id: str, name: str) -> bytes:
        """The associated data binding a sealed value to its record and field."""
        return f"{VERSION}\x00{record_id}\x00{name}".encode("utf-8")

    def seal(self, value: object, *, record_id: str, name: str) -> str:
        """Encrypt a JSON-able value for one field of one record: 'v1.<key id>.<base64url(nonce|ct)>'."""
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise ValueError(f"a sealed value is at most {MAX_PLAINTEXT_BYTES} bytes")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, self._aad(record_id, name))
        return f"{VERSION}.{self.key_id}." + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, token: str, *, record_id: str, name: str) -> object:
        """The value sealed for this record and field; VaultError if it was altered, moved or sealed
        under another key."""
        try:
            version, key_id, body = token.split(".")
            if version != VERSION:
                raise ValueError("unknown version")
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (AttributeError, ValueError) as exc:
            raise VaultError(f"not a sealed value ({exc})") from None
        if key_id != self.key_id:
            raise VaultError(f"sealed under another data key ({key_id})")
        try:
            plaintext = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(record_id, name))
        except (InvalidTag, ValueError):
            raise VaultError("the sealed value does not open: altered, or copied from another record") from None
        return json.loads(plaintext.decode("utf-8"))

    def citizen_ref(self, reference: str, receipt_id: str) -> bytes:
        """The 8-byte keyed hash a receipt carries for a citizen reference (see receipts.citizen_ref_hash)."""
        return receipts.citizen_ref_hash(self._pepper, reference, receipt_id)


def open_vault(data_dir: str | os.PathLike) -> Vault:
    """The vault of a data directory, creating its data key on first use (never replacing one)."""
    path = data_key_path(data_dir)
    if not path.exists() and _create_key_file(path):
        log.warning("created the data key %s: include it in the backups, or sealed fields are lost", path)
    return Vault(_read_key_file(path))
