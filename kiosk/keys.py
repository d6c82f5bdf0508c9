"""Receipt keys on disk: the centre's signing key (made on first use, never leaves the machine),
the pinned root public key(s) kiosks check trust lists against, and central's root key."""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain import trustlist
from kiosk.domain.receipts import key_id
from kiosk.domain.trustlist import TrustList, seal_trust_list

log = logging.getLogger(__name__)

CENTRE_KEY_PATH = Path("keys") / "receipt-signing.pem"
PINNED_ROOTS_PATH = Path("keys") / "trust-root.pem"
DEMO_ROOT_PATH = Path("keys") / "demo-trust-root.pem"
TRUST_LIST_PATH = Path("sync") / "trust-list.cbor"
# Demo receipts name a host under .invalid (RFC 2606): no site will ever verify them, and the
# receipt itself says DEMO. A real centre pins the ministry's root instead (pin-root).
DEMO_VERIFY_HOST = "DEMO.INVALID"
DEMO_KEY_YEARS = 5
# A PEM key is a few hundred bytes; anything far larger is not a key file.
MAX_KEY_FILE_BYTES = 64 * 1024
_PEM_PUBLIC_RE = re.compile(rb"-----BEGIN PUBLIC KEY-----\r?\n.*?-----END PUBLIC KEY-----", re.DOTALL)


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, too open or not a P-256 key."""


@dataclass(frozen=True)
class SigningKey:
    """A P-256 private key with its key id."""

    private_key: ec.EllipticCurvePrivateKey
    kid: bytes

    @classmethod
    def from_private_key(cls, private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
        """Wrap a private key, deriving its kid from the public key."""
        return cls(private_key, key_id(private_key.public_key()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self.private_key.public_key()

    def public_pem(self) -> str:
        """The public key as PEM text, what a centre sends to central to be enrolled."""
        return public_key_pem(self.public_key)

    def enrolment(self, centre: str) -> dict:
        """The enrolment request for central: centre code, kid (hex) and public key PEM."""
        return {"centre": centre, "kid": self.kid.hex(), "public_key_pem": self.public_pem()}


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    """PEM (SubjectPublicKeyInfo) text of a public key."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_keys_pem(data: str | bytes) -> list[ec.EllipticCurvePublicKey]:
    """Every P-256 public key in PEM text (one or more blocks); KeyFileError if there is none or one is bad."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    blocks = _PEM_PUBLIC_RE.findall(raw)
    if not blocks:
        raise KeyFileError("no PEM public key found")
    keys = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"unreadable public key: {exc}") from None
        keys.append(_require_p256(key, "public key"))
    return keys


def _require_p256(key, what: str):
    """`key` when it is a P-256 key; KeyFileError otherwise."""
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) \
            or key.curve.name != "secp256r1":
        raise KeyFileError(f"{what} is not a P-256 (ES256) key")
    return key


def _private_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the file mode and the disk's encryption are what protect it."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_directory(directory: Path) -> None:
    """Create `directory` if needed and make it 0700 (owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def _fsync_directory(directory: Path) -> None:
    """Make a rename or link in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, mode: int, *, replace: bool) -> bool:
    """Write a complete file or nothing; without `replace`, never touch an existing file.

    Returns True when this call put the file in place."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
            created = True
        else:
            # link, not rename: two processes starting at once must not replace each other's key
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return created


def read_owner_only(path: Path, limit: int, error: type[Exception] | None = None, *, what: str = "key file",
                    exposed_hint: str = "") -> bytes:
    """Up to `limit` bytes of a regular file that only its owner can read (no symlinks).

    Raises `error` (KeyFileError by default) saying what is wrong and what to do."""
    error = error or KeyFileError
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise error(f"no {what} at {path}") from None
    except OSError as exc:
        raise error(f"cannot open {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise error(f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}): if nobody "
                        f"else could have read it, run `chmod 600 {path}`" + exposed_hint)
        data = source.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path} is too large to be a {what}")
    return data


def _read_private_key(path: Path) -> SigningKey:
    """Load a private key file that only its owner can read; KeyFileError with the fix otherwise."""
    data = read_owner_only(path, MAX_KEY_FILE_BYTES, what="key file",
                           exposed_hint="; otherwise have central revoke this key")
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    return SigningKey.from_private_key(_require_p256(private_key, str(path)))


def centre_key_path(data_dir: str | os.PathLike) -> Path:
    """Where the centre's receipt signing key lives under the data directory."""
    return Path(data_dir) / CENTRE_KEY_PATH


def load_centre_key(data_dir: str | os.PathLike) -> SigningKey:
    """The centre's existing signing key; KeyFileError when it is missing or unusable."""
    return _read_private_key(centre_key_path(data_dir))


def load_or_create_centre_key(data_dir: str | os.PathLike) -> SigningKey:
    """The centre's signing key, generated on first use (keys/ 0700, file 0600, written atomically).

    An existing but unreadable key file is an error, never a reason to make a new key: receipts
    already printed must stay verifiable."""
    path = centre_key_path(data_dir)
    if not path.exists():
        private_directory(path.parent)
        candidate = ec.generate_private_key(ec.SECP256R1())
        if write_private_file(path, _private_pem(candidate), 0o600, replace=False):
            key = SigningKey.from_private_key(candidate)
            log.warning("created receipt signing key %s: enrol its public key with central", key.kid.hex())
            return key
    return _read_private_key(path)


def pinned_roots_path(data_dir: str | os.PathLike) -> Path:
    """Where the pinned root public key(s) live under the data directory."""
    return Path(data_dir) / PINNED_ROOTS_PATH


def pin_root_keys(data_dir: str | os.PathLike, pem: str | bytes) -> list[ec.EllipticCurvePublicKey]:
    """Install the ministry's root public key(s) (an installation step; replaces earlier pins)."""
    keys = load_public_keys_pem(pem)
    path = pinned_roots_path(data_dir)
    private_directory(path.parent)
    write_private_file(path, "".join(public_key_pem(key) for key in keys).encode("ascii"), 0o600, replace=True)
    log.info("pinned %d trust-list root key(s): %s", len(keys), ", ".join(key_id(k).hex() for k in keys))
    return keys


def load_pinned_root_keys(data_dir: str | os.PathLike) -> list[ec.EllipticCurvePublicKey]:
    """The root public keys this kiosk accepts trust lists from; KeyFileError when none is pinned."""
    path = pinned_roots_path(data_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no trust-list root key pinned at {path}: install the ministry's root public key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    return load_public_keys_pem(data)


def create_key_file(path: str | os.PathLike, what: str = "key") -> SigningKey:
    """Generate a P-256 key at `path` (0600, directory 0700); refuses to replace one."""
    path = Path(path)
    private_directory(path.parent)
    candidate = ec.generate_private_key(ec.SECP256R1())
    if not write_private_file(path, _private_pem(candidate), 0o600, replace=False):
        raise KeyFileError(f"a {what} already exists at {path}; it is never replaced in place")
    return SigningKey.from_private_key(candidate)


def create_root_key(path: str | os.PathLike) -> SigningKey:
    """Generate central's root key at `path` (0600, directory 0700); refuses to replace one."""
    key = create_key_file(path, "root key")
    log.warning("created trust-list root key %s: pin its public key on every kiosk", key.kid.hex())
    return key


def load_root_key(path: str | os.PathLike) -> SigningKey:
    """Central's root key from `path`; KeyFileError when missing, too open or not P-256."""
    return _read_private_key(Path(path))


def sign_trust_list(root: SigningKey, trust_list: TrustList) -> bytes:
    """The trust list signed by the root key, ready to publish and for kiosks to pull."""
    return seal_trust_list(trust_list, root.private_key)


def install_demo_trust(data_dir: str | os.PathLike, centre: str, now: dt.datetime) -> dict:
    """Make receipts sign and verify offline on a demo centre: the centre's signing key, a demo root
    key pinned as the trust root, and a trust list signed by it that enrols the centre's key under
    the demo host (DEMO.INVALID). Running it again changes nothing that is already in place.

    Never touches a kiosk that pinned another root (the ministry's): {"skipped": reason} then."""
    data_dir = Path(data_dir)
    centre_key = load_or_create_centre_key(data_dir)
    root_path = data_dir / DEMO_ROOT_PATH
    if root_path.exists():
        root = load_root_key(root_path)
    else:
        try:
            load_pinned_root_keys(data_dir)
        except KeyFileError:
            pass
        else:
            return {"skipped": "a trust root other than the demo's is pinned"}
        root = create_root_key(root_path)
    pinned = []
    try:
        pinned = load_pinned_root_keys(data_dir)
    except KeyFileError:
        pass
    if [key_id(k) for k in pinned] != [root.kid]:
        if pinned:
            return {"skipped": "a trust root other than the demo's is pinned"}
        pin_root_keys(data_dir, root.public_pem())
    path = data_dir / TRUST_LIST_PATH
    current = None
    try:
        current = trustlist.open_trust_list(path.read_bytes(), [root.public_key])
    except (OSError, trustlist.TrustListError):
        pass
    if current is not None and current.keys_for(centre_key.kid) and current.verify_host == DEMO_VERIFY_HOST:
        return {"kid": centre_key.kid.hex(), "sequence": current.sequence, "verify_host": DEMO_VERIFY_HOST,
                "created": False}
    listed = trustlist.TrustedKey.from_public_key(centre, centre_key.public_key, now - dt.timedelta(days=1),
                                                  now + dt.timedelta(days=365 * DEMO_KEY_YEARS))
    others = tuple(k for k in current.keys if k.kid != centre_key.kid) if current is not None else ()
    sequence = current.sequence + 1 if current is not None else 1
    signed = sign_trust_list(root, TrustList(sequence=sequence, issued_at=now, verify_host=DEMO_VERIFY_HOST,
                                             keys=others + (listed,)))
    private_directory(path.parent)
    write_private_file(path, signed, 0o600, replace=True)
    log.warning("demo receipts: key %s enrolled in demo trust list %d (host %s)", centre_key.kid.hex(),
                sequence, DEMO_VERIFY_HOST)
    return {"kid": centre_key.kid.hex(), "sequence": sequence, "verify_host": DEMO_VERIFY_HOST, "created": True}


def is_demo_host(host: str) -> bool:
    """True for a verification host no real receipt names (the demo's, or any .invalid host)."""
    return host.upper().endswith(".INVALID")
