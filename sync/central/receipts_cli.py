"""Operator commands for receipts: `flask --app sync.central trust-root-create | trust-enrol | trust-revoke
| trust-publish | case-status`.

The root key signs trust lists only; keep the machine that holds it offline where possible. The
commands keep their files in CENTRAL_RECEIPTS_DIR (default: <instance>/receipts):

    root-key.pem        the root private key (0600; never leaves this machine)
    root-public.pem     its public half: pin it on every kiosk (`pin_root_keys`) and give it to
                        every central web server (the /R page checks the list against it)
    trust-draft.json    the next list: enrolled centre keys with their windows, revocations
    trust-list.cbor     the last list published

`trust-publish` signs the draft with the next sequence number and puts it in every centre's feed
as `settings/trust_list`, so kiosks pull it with their next sync.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from kiosk import keys
from kiosk.domain import receipts, trustlist
from kiosk.domain.appointments import BOOKING_SIGNER
from sync.files import write_atomic
from sync.central import feed
from sync.central.errors import CentralError
from sync.central.models import Centre, ConfigDoc
from sync.central.receipts import TRUST_LIST_SETTING, decide, published_trust_list, receipts_dir

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
ROOT_KEY = "root-key.pem"
ROOT_PUBLIC = "root-public.pem"
DRAFT = "trust-draft.json"
PUBLISHED = "trust-list.cbor"
# A centre key vouches for receipts issued inside its window: by default from 90 days before
# enrolment (a centre may sign offline before it is enrolled) to 14 months after (a year plus two
# months of overlap with its successor, as for visa signing keys).
DEFAULT_BACK_DAYS = 90
DEFAULT_FORWARD_DAYS = 425
_KID_RE = re.compile(r"^[0-9a-f]{16}$")


def _central():
    """The app's Central."""
    return current_app.extensions["central"]


def _fail(message: str):
    """A one-line failure for the operator (exit status 1)."""
    raise click.ClickException(message)


def _directory(path: Path | None) -> Path:
    """The receipts directory (option, else CENTRAL_RECEIPTS_DIR, else the instance folder's)."""
    return Path(path) if path else receipts_dir(current_app)


def _parse_time(ctx, param, value):
    """Click callback: an ISO 8601 time with a zone, or a date (midnight UTC)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-11-01 or 2026-11-01T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_draft(directory: Path) -> dict:
    """The draft of the next trust list (empty when none was started)."""
    path = directory / DRAFT
    try:
        draft = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"verify_host": None, "keys": [], "revoked_keys": [], "revoked_receipts": []}
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"{path} is not readable JSON ({exc}); restore it from the backup or the published list")
    for name in ("keys", "revoked_keys", "revoked_receipts"):
        if not isinstance(draft.get(name), list):
            _fail(f"{path}: {name} must be a list")
    return draft


def write_draft(directory: Path, draft: dict) -> None:
    """Save the draft atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / DRAFT, json.dumps(draft, indent=2, sort_keys=True).encode("utf-8"), mode=0o600)


def build_trust_list(draft: dict, sequence: int, issued_at: dt.datetime) -> trustlist.TrustList:
    """The TrustList a draft describes (ValueError naming the bad entry)."""
    listed = []
    for entry in draft["keys"]:
        public = keys.load_public_keys_pem(entry["pem"])[0]
        listed.append(trustlist.TrustedKey.from_public_key(
            entry["centre"], public, dt.datetime.fromisoformat(entry["not_before_at"]),
            dt.datetime.fromisoformat(entry["not_after_at"])))
    return trustlist.TrustList(
        sequence=sequence, issued_at=issued_at, verify_host=draft["verify_host"], keys=tuple(listed),
        revoked_kids=frozenset(bytes.fromhex(kid) for kid in draft["revoked_keys"]),
        revoked_receipt_ids=frozenset(draft["revoked_receipts"]))


@click.command("trust-root-create")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="where the receipt keys live [default: CENTRAL_RECEIPTS_DIR or <instance>/receipts]")
@with_appcontext
def trust_root_create_command(directory):
    """Create the root key that signs trust lists, and print its public key to pin on kiosks."""
    directory = _directory(directory)
    try:
        root = keys.create_root_key(directory / ROOT_KEY)
    except keys.KeyFileError as exc:
        _fail(str(exc))
    write_atomic(directory / ROOT_PUBLIC, root.public_pem().encode("ascii"), mode=0o644)
    click.echo(root.public_pem(), nl=False)
    click.echo(f"root key {root.kid.hex()} created in {directory}; pin {directory / ROOT_PUBLIC} on every kiosk "
               "and copy it to every central web server", err=True)


@click.command("trust-enrol")
@click.argument("centre")
@click.argument("pem", type=click.File("r", encoding="ascii", errors="replace"))
@click.option("--not-before", callback=_parse_time, help="start of the key's signing window [default: 90 days ago]")
@click.option("--not-after", callback=_parse_time, help="end of the window [default: 14 months from now]")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="receipts directory")
@with_appcontext
def trust_enrol_command(centre, pem, not_before, not_after, directory):
    """Add CENTRE's receipt signing key (PEM file, or the centre's JSON enrolment; '-' reads stdin)
    to the draft of the next trust list."""
    text = pem.read(64 * 1024)
    if text.lstrip().startswith("{"):
        try:
            enrolment = json.loads(text)
            text = enrolment["public_key_pem"]
            if enrolment.get("centre") not in (None, centre):
                _fail(f"the enrolment is for centre {enrolment.get('centre')!r}, not {centre!r}")
        except (ValueError, KeyError, TypeError):
            _fail("the enrolment is not the JSON a centre exports ({centre, kid, public_key_pem})")
    try:
        public = keys.load_public_keys_pem(text)
    except keys.KeyFileError as exc:
        _fail(str(exc))
    if len(public) != 1:
        _fail("give exactly one public key per enrolment")
    if not receipts.is_code(centre):
        _fail("a centre code has 1 to 32 letters, digits, '.', '_' or '-'")
    if centre == BOOKING_SIGNER:
        _fail(f"{centre} is central's booking key (booking-key-create enrols it); no centre key may take its name")
    with _central().engine.connect() as conn:
        if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
            _fail(f"no centre {centre!r}; add it first with add-centre")
    now = _central().clock.now()
    not_before = not_before or now - dt.timedelta(days=DEFAULT_BACK_DAYS)
    not_after = not_after or now + dt.timedelta(days=DEFAULT_FORWARD_DAYS)
    try:
        key = trustlist.TrustedKey.from_public_key(centre, public[0], not_before, not_after)
    except ValueError as exc:
        _fail(str(exc))
    directory = _directory(directory)
    draft = read_draft(directory)
    kid = key.kid.hex()
    draft["keys"] = [e for e in draft["keys"] if e.get("kid") != kid]
    draft["keys"].append({"centre": centre, "kid": kid, "pem": keys.public_key_pem(public[0]),
                          "not_before_at": receipts.iso(key.not_before_at),
                          "not_after_at": receipts.iso(key.not_after_at)})
    write_draft(directory, draft)
    click.echo(f"key {kid} of {centre} enrolled for {receipts.iso(key.not_before_at)} .. "
               f"{receipts.iso(key.not_after_at)}; run trust-publish to send it to the kiosks")


@click.command("trust-revoke")
@click.option("--key", "kid", help="revoke a centre key by its kid (16 hex digits)")
@click.option("--receipt", "receipt_id", help="revoke one receipt by its id (ULID)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="receipts directory")
@with_appcontext
def trust_revoke_command(kid, receipt_id, directory):
    """Revoke a centre key (every receipt it signed) or a single receipt in the next trust list."""
    if bool(kid) == bool(receipt_id):
        _fail("give either --key KID or --receipt RECEIPT_ID")
    directory = _directory(directory)
    draft = read_draft(directory)
    if kid:
        kid = kid.lower()
        if not _KID_RE.fullmatch(kid):
            _fail("a kid is 16 hex digits, as shown by trust-enrol")
        draft["revoked_keys"] = sorted(set(draft["revoked_keys"]) | {kid})
    else:
        try:
            receipts.ulid_to_bytes(receipt_id)
        except ValueError as exc:
            _fail(str(exc))
        draft["revoked_receipts"] = sorted(set(draft["revoked_receipts"]) | {receipt_id})
    write_draft(directory, draft)
    click.echo("revocation added; run trust-publish to send it to the kiosks")


@click.command("trust-publish")
@click.option("--verify-host", help="host printed in receipt QR codes, e.g. v.example.gov.iq (kept in the draft)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="receipts directory")
@with_appcontext
def trust_publish_command(verify_host, directory):
    """Sign the draft as the next trust list and put it in every centre's configuration feed."""
    directory = _directory(directory)
    draft = read_draft(directory)
    if verify_host:
        try:
            draft["verify_host"] = receipts.normalise_host(verify_host)
        except ValueError as exc:
            _fail(str(exc))
    if not draft.get("verify_host"):
        _fail("no verify host yet: pass --verify-host HOST the first time")
    try:
        root = keys.load_root_key(directory / ROOT_KEY)
    except keys.KeyFileError as exc:
        _fail(f"{exc} (create it with trust-root-create)")
    central = _central()
    now = central.clock.now()
    with central.engine.begin() as conn:
        feed.lock_feed(conn)
        previous = published_trust_list(conn)
        sequence = max(previous[0] if previous else 0, _file_sequence(directory, root)) + 1
        try:
            listed = build_trust_list(draft, sequence, now)
        except (ValueError, KeyError, TypeError, keys.KeyFileError) as exc:
            _fail(f"the draft is not a valid trust list: {exc}")
        signed = keys.sign_trust_list(root, listed)
        doc = {"id": TRUST_LIST_SETTING, "sequence": sequence, "signed_base64": base64.b64encode(signed).decode("ascii")}
        centres = [row.code for row in conn.execute(select(Centre.code).order_by(Centre.code))]
        for code in centres:
            current = conn.execute(select(ConfigDoc.doc).where(
                ConfigDoc.centre == code, ConfigDoc.tbl == "settings", ConfigDoc.key == TRUST_LIST_SETTING,
                ConfigDoc.deleted.is_(False))).scalar()
            if current != doc:
                feed._record(conn, code, "settings", TRUST_LIST_SETTING, "put", doc, now)
    write_draft(directory, draft)
    write_atomic(directory / PUBLISHED, signed, mode=0o644)
    click.echo(f"trust list {sequence} published to {len(centres)} centre(s): {len(listed.keys)} key(s), "
               f"{len(listed.revoked_kids)} revoked key(s), {len(listed.revoked_receipt_ids)} revoked receipt(s)")


def _file_sequence(directory: Path, root: keys.SigningKey) -> int:
    """The sequence of the last list this machine published (0 when none), so a database restored
    from an older backup can never make the next list roll back."""
    try:
        data = (directory / PUBLISHED).read_bytes()
    except FileNotFoundError:
        return 0
    try:
        return trustlist.open_trust_list(data, [root.public_key]).sequence
    except trustlist.TrustListError as exc:
        _fail(f"{directory / PUBLISHED} does not open under the root key ({exc.reason}); move it away to continue")


@click.command("case-status")
@click.argument("centre")
@click.argument("case_id", metavar="CASE")
@click.argument("status", type=click.Choice(["completed", "rejected", "referred"]))
@click.option("--reason", help="why the request was rejected (required to reject)")
@click.option("--provider", help="provider id from the centre's directory (required to refer)")
@click.option("--by", default=None, help="who decided [default: the operating system user]")
@with_appcontext
def case_status_command(centre, case_id, status, reason, provider, by):
    """Record a back office's decision on a request; the centre pulls it with its next sync."""
    central = _central()
    who = by or os.environ.get("USER") or "operator"
    try:
        with central.engine.begin() as conn:
            decide(conn, centre, case_id, status, by=who, now=central.clock.now(), reason=reason, provider=provider)
    except CentralError as exc:
        _fail(str(exc))
    click.echo(f"case {case_id} of {centre} is now {status}; the centre receives it with its next sync")


def register(app: Flask) -> None:
    """Add the receipt commands to `flask --app sync.central`."""
    for command in (trust_root_create_command, trust_enrol_command, trust_revoke_command, trust_publish_command,
                    case_status_command):
        app.cli.add_command(command)
