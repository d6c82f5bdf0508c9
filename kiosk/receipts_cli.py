"""Command-line receipts: `flask --app kiosk verify CODE`, offline, against the trust list the
kiosk accepts now (the sync's newest, checked under the pinned root key DATA/keys/trust-root.pem),
and `flask --app kiosk export-key`, the centre's public key for central to enrol."""
from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from kiosk import keys
from kiosk.domain import receipts, trustlist


EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_CANNOT_VERIFY = 2  # no usable trust list or root key: nothing was said about the receipt
EXIT_EXPIRED = 3
EXIT_REVOKED = 4
_EXIT_CODES = {
    receipts.Outcome.VALID: EXIT_VALID,
    receipts.Outcome.INVALID: EXIT_INVALID,
    receipts.Outcome.EXPIRED: EXIT_EXPIRED,
    receipts.Outcome.REVOKED: EXIT_REVOKED,
}


def load_trust_list(trust_list_path: str | os.PathLike,
                    root_keys_path: str | os.PathLike | None = None) -> trustlist.TrustList:
    """Read the stored trust list and check it again under the pinned root key(s).

    Without `root_keys_path` the root is the one pinned in the data directory that holds the
    trust list (DATA/keys/trust-root.pem beside DATA/sync/). Raises OSError, keys.KeyFileError or
    trustlist.TrustListError."""
    path = Path(trust_list_path)
    if root_keys_path is None:
        roots = keys.load_pinned_root_keys(path.parent.parent)
    else:
        try:
            roots = keys.load_public_keys_pem(Path(root_keys_path).read_bytes())
        except OSError as exc:
            raise keys.KeyFileError(f"cannot read root key file {root_keys_path}: {exc.strerror}") from None
    with path.open("rb") as source:
        data = source.read(trustlist.MAX_TRUST_LIST_BYTES + 1)
    return trustlist.open_trust_list(data, roots)


def format_verdict(verdict: receipts.Verdict, trust_list: trustlist.TrustList) -> str:
    """The verdict and, when the signature is good, the receipt's contents, one field a line."""
    lines = [f"{verdict.outcome.value.upper()} ({verdict.reason}): {verdict.message}"]
    receipt = verdict.receipt
    if receipt is not None:
        lines += [
            f"  receipt id    {receipt.receipt_id}",
            f"  centre        {receipt.centre}",
            f"  service       {receipt.service}",
            f"  ticket        {receipt.ticket}",
            f"  issued at     {receipts.iso(receipt.issued_at)}",
            f"  due at        {receipts.iso(receipt.due_at)}",
            f"  official fee  {receipt.fee_iqd} IQD",
            f"  status        {receipt.status.label} (when printed)",
            f"  citizen ref   {receipt.citizen_ref.hex()}",
            f"  expires at    {receipts.iso(receipt.expires_at)}",
        ]
    if verdict.kid is not None:
        lines.append(f"  signing key   {verdict.kid.hex()}")
    lines.append(f"  trust list    sequence {trust_list.sequence}, issued {receipts.iso(trust_list.issued_at)}")
    return "\n".join(lines)


def verify_cli_text(qr_text: str, trust_list_path: str | os.PathLike, *,
                    root_keys_path: str | os.PathLike | None = None,
                    now: dt.datetime | None = None) -> tuple[int, str]:
    """Verify a receipt's QR text; returns (exit code, message) and never raises for bad input.

    Exit codes: 0 valid, 1 invalid, 2 cannot verify (trust list or root key missing or bad),
    3 expired, 4 revoked. Surrounding whitespace (a scanner's Enter, a shell's newline) is dropped."""
    try:
        accepted = load_trust_list(trust_list_path, root_keys_path)
    except FileNotFoundError:
        return EXIT_CANNOT_VERIFY, f"cannot verify: no trust list at {trust_list_path} (run the sync first)"
    except OSError as exc:
        return EXIT_CANNOT_VERIFY, f"cannot verify: cannot read the trust list {trust_list_path}: {exc.strerror}"
    except keys.KeyFileError as exc:
        return EXIT_CANNOT_VERIFY, f"cannot verify: {exc}"
    except trustlist.TrustListError as exc:
        return EXIT_CANNOT_VERIFY, f"cannot verify: the stored trust list is refused: {exc.message}"
    return verify_with(qr_text, accepted, now)


def verify_with(qr_text: str, accepted: trustlist.TrustList, now: dt.datetime | None = None) -> tuple[int, str]:
    """Verify a receipt's QR text against an accepted trust list; (exit code, message)."""
    verdict = receipts.verify(qr_text.strip(), accepted, now or dt.datetime.now(receipts.UTC))
    return _EXIT_CODES[verdict.outcome], format_verdict(verdict, accepted)


def _kiosk_trust_list() -> trustlist.TrustList | None:
    """The trust list the kiosk itself would verify with now: the stored one, or a newer one the
    sync pulled (kiosk.cases.current_trust_list, which also brings the stored file up to date).
    None when the store is held by the running kiosk: that one keeps the file current itself."""
    from kiosk import cases
    from kiosk.store import StoreError
    try:
        centre = current_app.extensions["kiosk"].centre
    except StoreError:  # held by the running kiosk (or unreadable): the stored file it is then
        return None
    return cases.current_trust_list(centre)


def _parse_at(ctx, param, value):
    """Click callback: an ISO 8601 time with a zone, as an aware UTC datetime."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-11-22T09:00:00Z") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. a trailing Z for UTC")
    return moment.astimezone(receipts.UTC)


@click.command("verify")
@click.argument("code")
@click.option("--trust-list", "trust_list_path", type=click.Path(dir_okay=False, path_type=Path),
              help="signed trust list to check against [default: DATA/sync/trust-list.cbor]")
@click.option("--root-key", "root_keys_path", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file of the root public key(s) [default: DATA/keys/trust-root.pem]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="data directory [default: the app's DATA_DIR, e.g. from KIOSK_DATA_DIR]")
@click.option("--at", "at", callback=_parse_at, metavar="TIME",
              help="verify as of this time (ISO 8601), e.g. for a dispute about a past date")
@with_appcontext
def verify_command(code, trust_list_path, root_keys_path, data_dir, at):
    """Verify a receipt code (the QR text; '-' reads it from standard input) offline."""
    if code == "-":
        code = sys.stdin.readline()
    own_list = trust_list_path is None and root_keys_path is None and (
        data_dir is None or Path(data_dir).resolve() == current_app.config.get("DATA_DIR"))
    if data_dir is None:
        data_dir = current_app.config.get("DATA_DIR")
    if trust_list_path is None:
        if data_dir is None:
            raise click.UsageError("no data directory: set KIOSK_DATA_DIR, or pass --data-dir or --trust-list")
        trust_list_path = Path(data_dir) / keys.TRUST_LIST_PATH
    if root_keys_path is None and data_dir is not None:
        root_keys_path = keys.pinned_roots_path(data_dir)
    if at is None and "kiosk" in current_app.extensions:
        at = current_app.extensions["kiosk"].clock.now()  # the kiosk's own clock, as its screens use
    accepted = _kiosk_trust_list() if own_list and "kiosk" in current_app.extensions else None
    if accepted is not None:
        exit_code, message = verify_with(code, accepted, at)
    else:
        exit_code, message = verify_cli_text(code, trust_list_path, root_keys_path=root_keys_path, now=at)
    click.echo(message, err=exit_code == EXIT_CANNOT_VERIFY)
    sys.exit(exit_code)


@click.command("export-key")
@click.option("--pem", "as_pem", is_flag=True, help="only the public key as PEM, not central's enrolment JSON")
@with_appcontext
def export_key_command(as_pem):
    """Print the centre's receipt signing public key (made now if there is none yet), as the JSON
    enrolment central's `trust-enrol CENTRE -` reads, or as PEM."""
    import json
    try:
        key = keys.load_or_create_centre_key(current_app.config["DATA_DIR"])
    except (keys.KeyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_pem:
        click.echo(key.public_pem(), nl=False)
    else:
        click.echo(json.dumps(key.enrolment(current_app.config["CENTRE"]), indent=2))
    click.echo(f"key {key.kid.hex()} of centre {current_app.config['CENTRE']}: enrol it at central "
               "(trust-enrol), then sync", err=True)
