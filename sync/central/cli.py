"""Operator commands: `flask --app sync.central db-upgrade | add-centre | centre-names | enroll |
revoke | config-load | export | add-operator | devices | check | locked | unlock`."""
from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import sys

import click
from argon2 import PasswordHasher
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.domain.appointments import BOOKING_SIGNER
from sync import protocol
from sync.central import auth, db, feed, logins
from sync.central.errors import CentralError
from sync.central.export import export_tickets
from sync.central.models import Centre, Device, DeviceCursor, Operator

log = logging.getLogger(__name__)


def _login_name() -> str:
    """Who runs the command, as the system knows them ("?" when it cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


def _central():
    """The app's Central."""
    return current_app.extensions["central"]


def _fail(exc: Exception):
    """A clean one-line failure for the operator."""
    raise click.ClickException(str(exc)) from None


@click.command("db-upgrade")
@with_appcontext
def db_upgrade_command():
    """Create or migrate central's database schema to the newest revision."""
    revision = db.upgrade(_central().engine)
    click.echo(f"database at revision {revision}")


def _name_options(command):
    """--ar/--ckb/--en: a centre's name in each language (shown to operators and on the /R page)."""
    for lang, language in reversed((("ar", "Arabic"), ("ckb", "Sorani"), ("en", "English"))):
        command = click.option(f"--{lang}", f"name_{lang}", default=None, metavar="TEXT",
                               help=f"the centre's name in {language}")(command)
    return command


def _names(name_ar: str | None, name_ckb: str | None, name_en: str | None) -> dict[str, str]:
    """The names given on the command line, checked (1 to 200 characters each)."""
    given = {lang: text.strip() for lang, text in (("ar", name_ar), ("ckb", name_ckb), ("en", name_en))
             if text is not None}
    for lang, text in given.items():
        if not 1 <= len(text) <= 200:
            _fail(CentralError(f"--{lang}: a name has 1 to 200 characters"))
    return given


@click.command("add-centre")
@click.argument("code")
@click.argument("name")
@_name_options
@with_appcontext
def add_centre_command(code, name, name_ar, name_ckb, name_en):
    """Register a centre (CODE as configured on its kiosk, e.g. ERB-01). NAME is shown in every
    language that --ar, --ckb or --en do not name."""
    if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
        _fail(CentralError("a centre code has 1 to 32 letters, digits, - or _"))
    if code == BOOKING_SIGNER:
        _fail(CentralError(f"{code} names central's booking key in trust lists; choose another code"))
    names = _names(name_ar, name_ckb, name_en)
    central = _central()
    try:
        with central.engine.begin() as conn:
            conn.execute(Centre.__table__.insert().values(code=code, name=name, names=names or None,
                                                          created_at=central.clock.now()))
    except IntegrityError:
        _fail(CentralError(f"centre {code} already exists"))
    click.echo(f"centre {code} added")


@click.command("centre-names")
@click.argument("code")
@click.option("--name", default=None, help="the name shown in languages without a name of their own")
@_name_options
@with_appcontext
def centre_names_command(code, name, name_ar, name_ckb, name_en):
    """Set a centre's names (those not given stay as they are); without options, print them."""
    given = _names(name_ar, name_ckb, name_en)
    if name is not None and not 1 <= len(name.strip()) <= 200:
        _fail(CentralError("--name: a name has 1 to 200 characters"))
    with _central().engine.begin() as conn:
        found = conn.execute(select(Centre.name, Centre.names).where(Centre.code == code)).first()
        if found is None:
            _fail(CentralError(f"no centre {code!r}"))
        names = {**(found.names if isinstance(found.names, dict) else {}), **given}
        if given or name is not None:
            conn.execute(Centre.__table__.update().where(Centre.code == code)
                         .values(name=name.strip() if name is not None else found.name, names=names or None))
    click.echo(f"{code}\t{name.strip() if name is not None else found.name}")
    for lang in ("ar", "ckb", "en"):
        click.echo(f"  {lang}\t{names.get(lang, '(the name above)')}")


@click.command("enroll")
@click.argument("centre")
@click.argument("device")
@click.option("--ttl-hours", type=click.IntRange(1, 24 * 14), default=None,
              help="how long the code stays valid (default CENTRAL_ENROL_TTL_HOURS, 24)")
@with_appcontext
def enroll_command(centre, device, ttl_hours):
    """Print a one-time code that enrols the kiosk DEVICE (a label such as kiosk-1) for CENTRE."""
    central = _central()
    ttl = dt.timedelta(hours=ttl_hours or current_app.config["CENTRAL_ENROL_TTL_HOURS"])
    now = central.clock.now()
    try:
        with central.engine.begin() as conn:
            code = auth.create_enrolment(conn, centre=centre, label=device, now=now, ttl=ttl)
    except CentralError as exc:
        _fail(exc)
    click.echo(code)
    click.echo(f"one-time code for {device} at {centre}, valid until {protocol.utc_iso(now + ttl)}; "
               f"on the kiosk run: flask --app kiosk enroll CENTRAL_URL {code}", err=True)


@click.command("revoke")
@click.argument("device")
@with_appcontext
def revoke_command(device):
    """Revoke a device (by device id or label); its requests are refused from now on."""
    central = _central()
    try:
        with central.engine.begin() as conn:
            ids = auth.revoke(conn, device, now=central.clock.now())
    except CentralError as exc:
        _fail(exc)
    click.echo("revoked " + ", ".join(ids))


@click.command("reset-cursor")
@click.argument("device")
@click.argument("seq", type=click.IntRange(0))
@with_appcontext
def reset_cursor_command(device, seq):
    """Set where central resumes a device's journal (after a kiosk was restored from a backup)."""
    central = _central()
    with central.engine.begin() as conn:
        ids = conn.execute(select(Device.device_id).where(
            (Device.device_id == device) | ((Device.label == device) & (Device.status == "active")))).scalars().all()
        if len(ids) != 1:
            _fail(CentralError(f"no single device with id or active label {device!r}"))
        old = conn.execute(select(DeviceCursor.last_seq).where(DeviceCursor.device_id == ids[0])).scalar_one()
        conn.execute(DeviceCursor.__table__.update().where(DeviceCursor.device_id == ids[0])
                     .values(last_seq=seq, last_hlc="", updated_at=central.clock.now()))
    log.warning("cursor of device %s reset from %d to %d by an operator", ids[0], old, seq)
    click.echo(f"device {ids[0]}: central now expects commit {seq + 1} next (was {old + 1}); records "
               "already received stay, and newer versions still win by their clocks")


@click.command("config-load")
@click.argument("centre")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default=None, help="who loads it, for central's configuration audit (default: the login name)")
@with_appcontext
def config_load_command(centre, path, by):
    """Make CENTRE's services, counters, staff, priority classes and settings equal to PATH (JSON).

    Documents last edited on a configuration page and missing from PATH are kept (docs/sync.md)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(CentralError(f"{path} is not valid UTF-8 JSON: {exc}"))
    central = _central()
    try:
        with central.engine.begin() as conn:
            summary = feed.load_config(conn, centre, data, now=central.clock.now(),
                                       actor="config-load:" + (by or _login_name()))
    except CentralError as exc:
        _fail(exc)
    for table, counts in summary.items():
        click.echo(f"{table}: {counts['put']} new or changed, {counts['del']} removed, "
                   f"{counts['unchanged']} unchanged")


def _no_constants(name: str):
    """NaN and Infinity are not JSON: refuse them rather than send them to every kiosk."""
    raise ValueError(f"{name} is not allowed")


@click.command("export")
@click.option("--centre", required=True, help="centre code")
@click.option("--since", default=None, help="only tickets recorded or changed at central on/after this UTC date")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="file to write (default: standard output)")
@with_appcontext
def export_command(centre, since, output):
    """Write JSON lines, one per ticket with its full event history, for analysts."""
    since_at = None
    if since:
        try:
            since_at = dt.datetime.fromisoformat(since)
        except ValueError:
            _fail(CentralError(f"--since must be a date like 2026-11-01 (got {since!r})"))
        since_at = since_at.replace(tzinfo=dt.timezone.utc) if since_at.tzinfo is None else since_at
    central = _central()
    with central.engine.connect() as conn:
        if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
            _fail(CentralError(f"no centre {centre!r}"))
    count = 0
    for line in export_tickets(central.engine, centre, since=since_at):
        output.write(line + "\n")
        count += 1
    output.flush()
    click.echo(f"{count} tickets exported", err=True)


@click.command("add-operator")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_appcontext
def add_operator_command(name, password_stdin):
    """Create or reset an operator account for the central pages."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        _fail(CentralError("use a password of at least 12 characters"))
    central = _central()
    hashed = PasswordHasher().hash(password)
    with central.engine.begin() as conn:
        if conn.execute(select(Operator.name).where(Operator.name == name)).first():
            conn.execute(Operator.__table__.update().where(Operator.name == name).values(password_hash=hashed))
        else:
            conn.execute(Operator.__table__.insert().values(name=name, password_hash=hashed,
                                                            created_at=central.clock.now()))
    click.echo(f"operator {name} can sign in")


@click.command("devices")
@click.option("--centre", default=None, help="only this centre")
@with_appcontext
def devices_command(centre):
    """List devices with their cursor, lag and clock offset."""
    query = (select(Device, DeviceCursor.last_seq).join(DeviceCursor, DeviceCursor.device_id == Device.device_id)
             .order_by(Device.centre, Device.label))
    if centre:
        query = query.where(Device.centre == centre)
    with Session(_central().engine) as session:
        for device, last_seq in session.execute(query).all():
            seen = protocol.utc_iso(device.last_seen_at) if device.last_seen_at else "never"
            offset = "?" if device.clock_offset_s is None else f"{device.clock_offset_s:+.1f} s"
            click.echo(f"{device.centre}\t{device.label}\t{device.device_id}\t{device.status}\t"
                       f"acked {last_seq}\tlag {max(device.head_seq - last_seq, 0)}\tseen {seen}\t"
                       f"offset {offset}")


# Files of the receipts directory that are public by design (pinned on kiosks, served at /R).
PUBLIC_FILES = ("root-public.pem", "trust-list.cbor")


@click.command("check")
@click.option("--fix", is_flag=True, help="take group and other permissions off what should be private")
@with_appcontext
def check_command(fix):
    """Report (and repair) a SQLite database, its folder or receipt keys other users could read."""
    from sync import files
    from sync.central.receipts import receipts_dir
    app = current_app
    found = []
    path = db.sqlite_path(app.config["CENTRAL_DATABASE_URL"] or "")
    if path is not None:
        found += files.loose_modes(path.parent, within=False)
        for suffix in ("", "-wal", "-shm", "-journal"):
            found += files.loose_modes(path.with_name(path.name + suffix))
    keys_dir = receipts_dir(app)
    found += [f for f in files.loose_modes(keys_dir) if f.path.name not in PUBLIC_FILES]
    if fix and found:
        left = files.tighten(found)
        click.echo(f"fixed {len(found) - len(left)} path(s): group and other permissions removed")
        found = left
    if not found:
        click.echo("ok    database file and receipt keys readable by their owner only")
        return
    for item in found:
        click.echo("FAIL  " + item.describe())
    sys.exit(1)


@click.command("locked")
@with_appcontext
def locked_command():
    """List operator names and addresses locked after wrong passwords."""
    central = _central()
    with central.engine.connect() as conn:
        rows = logins.locked(conn, central.clock.now())
    for row in rows:
        click.echo(f"{row['kind']:8} {row['key']}  {int(row['wait_s'] // 60) + 1} min")
    if not rows:
        click.echo("nothing is locked")


@click.command("unlock")
@click.argument("name")
@click.option("--address", is_flag=True, help="NAME is a client address, not an operator name")
@with_appcontext
def unlock_command(name, address):
    """Let a locked operator name (or address) sign in again at once."""
    with _central().engine.begin() as conn:
        found = logins.unlock(conn, "address" if address else "account", name)
    click.echo(f"{name} may sign in again" if found else f"{name} was not locked")


def register(app: Flask) -> None:
    """Add the operator commands to `flask --app sync.central`."""
    for command in (db_upgrade_command, add_centre_command, centre_names_command, enroll_command, revoke_command,
                    reset_cursor_command, config_load_command, export_command, add_operator_command,
                    devices_command, check_command, locked_command, unlock_command):
        app.cli.add_command(command)
