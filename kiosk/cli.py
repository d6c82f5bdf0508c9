"""Command line: `flask --app kiosk demo-data | serve | compact | check | close-day | simulate | export |
verify | export-key | voice ...` (same use cases as the screens)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import pathlib
import sys
import time
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from kiosk import services
from kiosk.store import StoreError
from kiosk.store import format as store_format

log = logging.getLogger(__name__)


def _centre():
    """The current app's centre, or a clean exit with the store's own explanation."""
    try:
        return current_app.extensions["kiosk"].centre
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("demo-data")
def demo_data_command():
    """Load the demo centre (services A, B, C; counters 1-3; staff demo/0000 and super/9999)."""
    from kiosk import keys
    centre = _centre()
    created = services.load_demo_data(centre)
    click.echo("demo centre loaded: " + ", ".join(f"{v} new {k}" for k, v in created.items()))
    click.echo("DEMO ONLY: attendant 'demo' PIN 0000, supervisor 'super' PIN 9999. "
               "Replace these before serving citizens.")
    trust = keys.install_demo_trust(current_app.config["DATA_DIR"], current_app.config["CENTRE"], centre.clock.now())
    if "skipped" in trust:
        click.echo(f"demo receipts not set up: {trust['skipped']}")
    else:
        click.echo(f"DEMO receipts: signing key {trust['kid']} enrolled in demo trust list {trust['sequence']} "
                   f"(host {trust['verify_host']}); such receipts verify here and are marked DEMO, never valid "
                   "elsewhere")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=None, type=click.IntRange(1, 256),
              help="worker threads for requests (default: the SERVER_THREADS setting; open live-update "
                   "streams hold none)")
def serve_command(host, port, threads):
    """Run the production server (hypercorn: requests in worker threads, live streams on its event loop)."""
    from kiosk.ops.logs import setup_unless_configured
    from kiosk.web.server import serve
    app: Flask = current_app._get_current_object()
    setup_unless_configured(app.config, process="kiosk")
    centre = _centre()
    click.echo(f"centre {app.config['CENTRE']}: {centre.store.count('tickets')} tickets stored, "
               f"data in {app.config['DATA_DIR']}; serving on http://{host}:{port}/")
    try:
        serve(app, host, port, workers=threads or app.config["SERVER_THREADS"])
    finally:
        app.extensions["kiosk"].close()


@click.command("compact")
def compact_command():
    """Write a snapshot and trim journal segments already acknowledged by central."""
    result = _centre().store.compact()
    click.echo(f"snapshot at commit {result['seq']} ({result['snapshot_bytes']} bytes); "
               f"{result['segments_removed']} journal segments removed")


@click.command("check")
@click.option("--fix", is_flag=True, help="take group and other permissions off the data directory's files")
def check_command(fix):
    """Check file permissions, the store, the audit chain and the configuration; exit 1 when
    something is wrong."""
    app = current_app
    click.echo(f"configuration: centre {app.config['CENTRE']}, time zone {app.config['TIMEZONE']}, "
               f"data directory {app.config['DATA_DIR']}")
    failed = not _check_modes(app, fix)
    centre = _centre()
    torn = centre.store.storage.recovered_torn_bytes
    click.echo(f"ok    store opened at commit {centre.store.seq}"
               + (f" (cut {torn} torn bytes left by a crash)" if torn else ""))
    upgraded = getattr(centre.store, "upgraded_from", [])
    click.echo(f"ok    store format {store_format.CURRENT}"
               + (f" (upgraded now from format {upgraded[0]})" if upgraded else ""))
    for ok, message in [*_check_archive(centre), *services.check(centre)]:
        click.echo(("ok    " if ok else "FAIL  ") + message)
        failed |= not ok
    if failed:
        sys.exit(1)


def _check_archive(centre) -> list[tuple[bool, str]]:
    """Every archive file against its checksum and its own structure; an interrupted day close."""
    from kiosk.usecases.backup import archive_checks
    return archive_checks(centre)


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=pathlib.Path))
@click.option("--keep", default=7, show_default=True, type=click.IntRange(1, 10_000),
              help="generations to keep in DEST (older ones are deleted)")
def backup_command(dest, keep):
    """Copy the data directory into a new dated generation under DEST while the kiosk runs, verify
    the copy like `check`, and keep the newest KEEP generations."""
    from kiosk.usecases.backup import backup
    app = current_app
    try:
        result = backup(app.config["DATA_DIR"], dest, centre=app.config["CENTRE"], clock=app.extensions["kiosk"].clock,
                        config=app.config, keep=keep)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    failed = [message for ok, message in result["checks"] if not ok]
    click.echo(f"backed up commit {result['seq']} to {result['path']}: {result['files']} files, "
               f"{result['bytes'] / 1e6:.1f} MB, checksums verified, {len(result['checks']) - len(failed)} of "
               f"{len(result['checks'])} checks passed")
    for message in failed:
        click.echo(f"FAIL  {message} (in the copy, as in the data directory: run `flask --app kiosk check`)")
    for name in result["pruned"]:
        click.echo(f"deleted old generation {name}")
    if failed:
        sys.exit(1)


@click.command("restore")
@click.argument("src", type=click.Path(path_type=pathlib.Path))
@click.option("--force", is_flag=True, help="restore even over a newer store, another store or another centre's")
@click.option("--after-seq", default=0, type=click.IntRange(0), show_default=True,
              help="the last commit central acknowledged for this kiosk, when the data being replaced is lost "
                   "(central's devices page shows it): new commits are numbered after it")
def restore_command(src, force, after_seq):
    """Replace the data directory with a backup (SRC: a generation, or a folder of them: the newest);
    the kiosk must be stopped. The replaced data is kept in DATA/replaced-<time>/."""
    from kiosk.usecases.backup import restore
    app = current_app
    try:
        result = restore(src, app.config["DATA_DIR"], centre=app.config["CENTRE"],
                         clock=app.extensions["kiosk"].clock, config=app.config, force=force, after_seq=after_seq)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if result["resumed"]:
        click.echo("finished a restore that had been interrupted")
    else:
        click.echo(f"restored {result['from']} (commit {result['seq']}); new commits are numbered from "
                   f"{result['next_seq']}")
    click.echo(f"the data it replaced is kept in {result['replaced']}")
    failed = False
    for ok, message in result["checks"]:
        click.echo(("ok    " if ok else "FAIL  ") + message)
        failed |= not ok
    if failed:
        sys.exit(1)


def _check_modes(app: Flask, fix: bool) -> bool:
    """Report (and with `fix` repair) data files other users could read; True when all is well.
    The data directory holds PIN hashes, keys and citizens' requests (docs/security.md)."""
    from sync import files
    found = files.loose_modes(app.config["DATA_DIR"])
    settings = pathlib.Path(app.instance_path) / "kiosk.toml"
    if settings.is_file() and "secret_key" in settings.read_text(encoding="utf-8", errors="replace").lower():
        found += files.loose_modes(settings)  # it holds the session signing key
    if fix and found:
        left = files.tighten(found)
        click.echo(f"fixed {len(found) - len(left)} path(s): group and other permissions removed")
        found = left
    if not found:
        click.echo("ok    data directory readable by its owner only")
        return True
    click.echo(f"FAIL  {len(found)} path(s) in the data directory other users may read or that need a look"
               + ("" if fix else " (run again with --fix)") + ":")
    for item in found[:20]:
        click.echo("        " + item.describe())
    if len(found) > 20:
        click.echo(f"        ... and {len(found) - 20} more")
    return False


@click.command("close-day")
def close_day_command():
    """Close every service day before today: end what is left of its queue, move its finished
    records to the archive, prune archived days older than the retention that central has."""
    from kiosk.usecases.days import close_days
    centre = _centre()

    def report(part):
        counts = ", ".join(f"{n} {table}" for table, n in part.counts.items())
        click.echo(f"archived {part.day} as {part.file}: {counts}")

    result = close_days(centre, progress=report)
    for part in result["resumed"]:
        click.echo(f"finished moving {part.file} (a day close had been interrupted)")
    if result["closed"]:
        centre.store.compact()
    click.echo(f"today is {result['today']}: {len(result['closed'])} day(s) archived, {result['ended']} left-over "
               f"ticket(s) cancelled, {len(result['pruned'])} archive file(s) pruned")


@click.command("simulate")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660),
              help="service days to simulate, ending yesterday")
@click.option("--per-day", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="tickets per day")
@click.option("--seed", default=1, show_default=True, type=int, help="the same seed makes the same days")
@click.option("--close/--no-close", default=True, show_default=True,
              help="close each day after its midnight (--no-close leaves every day in the live store)")
@click.option("--quiet", is_flag=True, help="no line per day")
def simulate_command(days, per_day, seed, close, quiet):
    """Fill an empty data directory with DAYS simulated days of a centre's work, ending yesterday,
    through the same use cases as the screens, on a simulated clock (demonstrations, benchmarks)."""
    from kiosk.clock import FrozenClock
    from kiosk.events import Broker
    from kiosk.store import Store
    from kiosk.usecases.simulation import SimulationRefused, simulate
    app = current_app
    real = app.extensions["kiosk"].clock
    tz = ZoneInfo(app.config["TIMEZONE"])
    first_day = real.now().astimezone(tz).date() - dt.timedelta(days=days)
    clock = FrozenClock(dt.datetime.combine(first_day, dt.time(0, 0), tz))
    try:
        # durability per simulated day (a snapshot and the day's journal fsynced at its end)
        store = Store(app.config["DATA_DIR"], clock=clock, fsync=False)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.monotonic()

    def report(figures):
        if not quiet:
            click.echo(f"{figures['day']}: {figures['tickets']} tickets, {figures['served']} served, "
                       f"{figures['requests']} requests, {figures.get('parts', 0)} archive file(s) "
                       f"({time.monotonic() - started:.0f} s)")

    try:
        centre = services.Centre(store=store, clock=clock, events=Broker(), config=app.config)
        totals = simulate(centre, clock, first_day=first_day, days=days, per_day=per_day, seed=seed, close=close,
                          on_day=report)
    except SimulationRefused as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"simulated {totals.days} days from {first_day}: {totals.tickets} tickets ({totals.served} served, "
               f"{totals.no_shows} not present, {totals.transfers} transferred), {totals.requests} requests, "
               f"{totals.receipts} receipts, {totals.parts} archive files in {time.monotonic() - started:.0f} s")


@click.command("export")
@click.option("--from", "first", default=None, help="first service day, YYYY-MM-DD (default: the oldest)")
@click.option("--to", "last", default=None, help="last service day, YYYY-MM-DD (default: today)")
@click.option("--table", "tables", multiple=True,
              type=click.Choice(["tickets", "requests", "receipts", "audit", "numbering"]),
              help="tables to export (default: all of these)")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="file to write (default: standard output)")
def export_command(first, last, tables, output):
    """Write the centre's records of a range of service days, closed or not, as JSON lines:
    {"table", "day", "doc"} (sealed fields stay sealed)."""
    from kiosk.store.archive import TABLES
    centre = _centre()
    for name, value in (("--from", first), ("--to", last)):
        if value is not None:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise click.BadParameter("a day like 2026-11-22", param_hint=name) from None
    last = last or centre.today()
    count = 0
    for table in tables or TABLES:
        for day, docs in centre.history.each_day(table):
            if (first is None or day >= first) and day <= last:
                for doc in docs:
                    output.write(json.dumps({"table": table, "day": day, "doc": doc}, ensure_ascii=False,
                                            separators=(",", ":")) + "\n")
                    count += 1
    click.echo(f"{count} records exported", err=True)


@click.command("pin-root")
@click.argument("pem_file", type=click.Path(exists=True, dir_okay=False))
def pin_root_command(pem_file):
    """Install the ministry's root public key, so this kiosk accepts trust lists signed with it."""
    from kiosk.domain.receipts import key_id
    from kiosk.keys import KeyFileError, pin_root_keys
    try:
        with open(pem_file, "rb") as fh:
            keys = pin_root_keys(current_app.config["DATA_DIR"], fh.read())
    except (KeyFileError, ValueError) as exc:
        raise click.ClickException(f"{pem_file}: {exc}") from None
    click.echo("pinned root key(s): " + ", ".join(key_id(k).hex() for k in keys))


@click.group("voice", cls=AppGroup)
def voice_command():
    """The hall display's voices: list them, install a recorded pack, remove one."""


@voice_command.command("list")
def voice_list_command():
    """Which voice speaks each language (installed pack, shipped placeholder, or the fallback)."""
    from kiosk.i18n import voice
    found = voice.Voices(pathlib.Path(current_app.config["DATA_DIR"]) / "voices")
    fallbacks = [current_app.config["DEFAULT_LANGUAGE"], *current_app.config["LANGUAGES"]]
    for lang in current_app.config["LANGUAGES"]:
        source = found.source(lang)
        if source is not None:
            folder, version = source
            kind = "recorded pack" if version.startswith("installed") else "shipped placeholder (espeak-ng)"
            click.echo(f"{lang}: {kind} in {folder}")
        else:
            click.echo(f"{lang}: no voice; calls are spoken in {found.speaker(lang, fallbacks) or 'no language'}")


@voice_command.command("install")
@click.argument("pack", type=click.Path(exists=True, path_type=pathlib.Path))
@click.option("--lang", required=True, help="the language the pack speaks (ar, ckb, en)")
def voice_install_command(pack, lang):
    """Check a voice pack (a folder or .zip of WAV clips, docs/voice-packs.md) and install it."""
    from kiosk.i18n import voice
    try:
        count = voice.install_pack(pack, lang, pathlib.Path(current_app.config["DATA_DIR"]) / "voices")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{lang}: {count} clips installed; the display uses them from its next call")


@voice_command.command("remove")
@click.option("--lang", required=True, help="the language whose installed pack to remove")
def voice_remove_command(lang):
    """Remove an installed pack: the shipped placeholder voice speaks that language again."""
    from kiosk.i18n import voice
    if not voice.remove_pack(lang, pathlib.Path(current_app.config["DATA_DIR"]) / "voices"):
        raise click.ClickException(f"no voice pack is installed for {lang!r}")
    click.echo(f"{lang}: installed pack removed")


def register(app: Flask) -> None:
    """Add the kiosk's commands, and those of the parts that provide one."""
    from kiosk.ops.units import install_service_command, uninstall_service_command
    from kiosk.printing import print_test_command
    from kiosk.receipts_cli import export_key_command, verify_command
    from sync.agent import enroll_command, sync_command
    for command in (demo_data_command, serve_command, compact_command, check_command, print_test_command,
                    enroll_command, sync_command, verify_command, pin_root_command, export_key_command,
                    voice_command, close_day_command, simulate_command, export_command, backup_command,
                    restore_command, install_service_command, uninstall_service_command):
        app.cli.add_command(command)
