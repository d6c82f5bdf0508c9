"""`flask --app kiosk install-service` / `uninstall-service`: the centre machine's systemd units.

- centre-kiosk.service: the kiosk server (`serve`, hypercorn), as a dedicated system user that
  alone owns the data directory (0700);
- centre-kiosk-sync.service + .timer: the sync job every minute with a random delay (so a
  ministry's hundreds of kiosks do not knock at the same second), never two at once;
- centre-kiosk-browser.service: Chromium in kiosk mode on the touchscreen under the cage
  compositor, as its own unprivileged user that cannot read the data directory;
- with `--backup-dir DIR`, centre-kiosk-backup.service + .timer: `backup DIR --keep N` every night
  (a missed night runs at the next start), while the kiosk serves (docs/backup.md).

`--root DIR` writes everything below DIR (tests, image building) and enables the units there with
`systemctl --root`. `uninstall-service` disables and removes exactly the files install wrote
(listed in the manifest beside the units); the data directory and the users are kept.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
from flask import current_app

from kiosk.launch import command_line

SERVER, SYNC, TIMER, BROWSER = ("centre-kiosk.service", "centre-kiosk-sync.service", "centre-kiosk-sync.timer",
                                "centre-kiosk-browser.service")
BACKUP, BACKUP_TIMER = "centre-kiosk-backup.service", "centre-kiosk-backup.timer"
UNIT_DIR = Path("etc/systemd/system")
MANIFEST = UNIT_DIR / "centre-kiosk.manifest.json"
SOURCE_ROOT = Path(__file__).resolve().parents[2]

HARDENING = """NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=read-only
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
UMask=0077
ReadWritePaths={data_dir}"""


def _program(name: str) -> list[str]:
    """How to run `centre-kiosk`/`centre-sync` of this installation (the console script beside this
    Python, else the module through this Python)."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "flask", "--app", "kiosk"] + (["sync"] if name == "centre-sync" else [])


def _environment(data_dir: Path, instance: Path) -> str:
    """The Environment= lines every unit running the kiosk's code has."""
    env = (f"Environment=KIOSK_DATA_DIR={data_dir}\nEnvironment=KIOSK_INSTANCE_PATH={instance}\n"
           "Environment=PYTHONUNBUFFERED=1")
    if (SOURCE_ROOT / "pyproject.toml").exists():  # run from a source checkout, not an installed wheel
        env += f"\nEnvironment=PYTHONPATH={SOURCE_ROOT}"
    return env


def units(*, user: str, data_dir: Path, instance: Path, host: str, port: int, sync_every_s: int,
          sync_jitter_s: int, browser_user: str, compositor: str, browser: str, screen_size: str | None) -> dict:
    """Unit file name -> text."""
    env = _environment(data_dir, instance)
    hardening = HARDENING.format(data_dir=data_dir)
    serve = shlex.join(_program("centre-kiosk") + ["serve", "--host", host, "--port", str(port)])
    sync = shlex.join(_program("centre-sync") + ["--quiet"])
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    chromium = shlex.join([compositor, "--"] + command_line("kiosk", f"http://{local}:{port}/kiosk", browser=browser,
                                                             window_size=screen_size))
    return {
        SERVER: f"""[Unit]
Description=Public service centre kiosk (server)
After=network.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=exec
User={user}
Group={user}
WorkingDirectory={data_dir}
{env}
ExecStart={serve}
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=30
LogsDirectory=centre-kiosk
{hardening}

[Install]
WantedBy=multi-user.target
""",
        SYNC: f"""[Unit]
Description=Public service centre kiosk: sync with the ministry's central server
After=network-online.target {SERVER}
Wants=network-online.target

[Service]
Type=oneshot
User={user}
Group={user}
WorkingDirectory={data_dir}
{env}
ExecStart={sync}
TimeoutStartSec=15min
LogsDirectory=centre-kiosk
{hardening}
""",
        TIMER: f"""[Unit]
Description=Public service centre kiosk: sync every {sync_every_s} s (random delay up to {sync_jitter_s} s)

[Timer]
OnBootSec={sync_every_s}s
OnUnitInactiveSec={sync_every_s}s
RandomizedDelaySec={sync_jitter_s}s
AccuracySec=1s
Unit={SYNC}

[Install]
WantedBy=timers.target
""",
        BROWSER: f"""[Unit]
Description=Public service centre kiosk: Chromium on the touchscreen (cage compositor)
After={SERVER} systemd-user-sessions.service
Wants={SERVER}
Conflicts=getty@tty1.service

[Service]
User={browser_user}
PAMName=login
TTYPath=/dev/tty1
StandardInput=tty-fail
StandardOutput=journal
UtmpIdentifier=tty1
UtmpMode=user
ExecStart={chromium}
Restart=always
RestartSec=2
NoNewPrivileges=yes
PrivateTmp=yes
InaccessiblePaths=-{data_dir}

[Install]
WantedBy=graphical.target
""",
    }


def backup_units(*, user: str, data_dir: Path, instance: Path, backup_dir: Path, keep: int, at: str) -> dict:
    """The nightly backup's unit and timer (file name -> text)."""
    env = _environment(data_dir, instance)
    # the backup reads the data directory and writes only DEST
    hardening = HARDENING.format(data_dir=data_dir) + f"\nReadWritePaths={backup_dir}"
    command = shlex.join(_program("centre-kiosk") + ["backup", str(backup_dir), "--keep", str(keep)])
    return {
        BACKUP: f"""[Unit]
Description=Public service centre kiosk: nightly backup to {backup_dir}
After={SERVER}
RequiresMountsFor={backup_dir}

[Service]
Type=oneshot
User={user}
Group={user}
WorkingDirectory={data_dir}
{env}
ExecStart={command}
Nice=10
IOSchedulingClass=idle
TimeoutStartSec=2h
LogsDirectory=centre-kiosk
{hardening}
""",
        BACKUP_TIMER: f"""[Unit]
Description=Public service centre kiosk: backup every night at {at}

[Timer]
OnCalendar=*-*-* {at}:00
Persistent=true
RandomizedDelaySec=10min
Unit={BACKUP}

[Install]
WantedBy=timers.target
""",
    }


def _ensure_user(name: str, home: Path, *, dry: bool) -> bool:
    """Create a system user (no login shell) unless it exists; False when not done (dry/--root)."""
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        pass
    if dry:
        return False
    subprocess.run(["useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name], check=True)
    return True


def _systemctl(root: Path, *args: str) -> None:
    """systemctl, below `root` when it is not / (works without a running systemd)."""
    argv = ["systemctl"] + ([f"--root={root}"] if str(root) != "/" else []) + list(args)
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise click.ClickException(f"{shlex.join(argv)} failed: {result.stderr.strip()}")


@click.command("install-service")
@click.option("--user", default="kiosk", show_default=True, help="system user that runs the kiosk and owns the data")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="data directory (default: the DATA_DIR setting)")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), show_default=True,
              help="write below this directory instead of / (image building, tests)")
@click.option("--instance", type=click.Path(path_type=Path), default=Path("/etc/centre-kiosk"), show_default=True,
              help="folder of kiosk.toml for the service")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--sync-every", default=60, show_default=True, type=click.IntRange(10, 86400), help="seconds")
@click.option("--sync-jitter", default=30, show_default=True, type=click.IntRange(0, 3600),
              help="random delay in seconds added to each sync (RandomizedDelaySec)")
@click.option("--browser-user", default="kiosk-screen", show_default=True,
              help="user of the touchscreen's browser session (no access to the data)")
@click.option("--screen-size", default=None, help="touchscreen W,H (default 1080,1920)")
@click.option("--no-browser", is_flag=True, help="no touchscreen on this machine: leave out the browser unit")
@click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="back up to this folder every night (a USB stick's or a network share's mount point)")
@click.option("--backup-keep", default=7, show_default=True, type=click.IntRange(1, 365),
              help="backup generations kept")
@click.option("--backup-at", default="21:30", show_default=True, help="local time of the nightly backup (HH:MM)")
@click.option("--no-enable", is_flag=True, help="write the units without enabling them")
def install_service_command(user, data_dir, root, instance, host, port, sync_every, sync_jitter, browser_user,
                            screen_size, no_browser, backup_dir, backup_keep, backup_at, no_enable):
    """Write and enable the systemd units of this centre machine (server, sync timer, browser)."""
    root = root.resolve()
    data_dir = (data_dir or Path(current_app.config["DATA_DIR"])).absolute()
    below_root = str(root) != "/"
    texts = units(user=user, data_dir=data_dir, instance=instance, host=host, port=port, sync_every_s=sync_every,
                  sync_jitter_s=sync_jitter, browser_user=browser_user,
                  compositor=shutil.which("cage") or "/usr/bin/cage",
                  browser=shutil.which("chromium") or "/usr/bin/chromium", screen_size=screen_size)
    if no_browser:
        texts.pop(BROWSER)
    if backup_dir is not None:
        hour, _, minute = backup_at.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
            raise click.BadParameter(f"{backup_at!r} is not a time of day like 21:30", param_hint="--backup-at")
        if not backup_dir.is_absolute():
            raise click.BadParameter("give the backup folder as an absolute path", param_hint="--backup-dir")
        texts.update(backup_units(user=user, data_dir=data_dir, instance=instance, backup_dir=backup_dir,
                                  keep=backup_keep, at=f"{int(hour):02d}:{minute}"))
    unit_dir = root / UNIT_DIR
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        path = unit_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        written.append(str(UNIT_DIR / name))
    manifest = {"units": [n for n in texts], "files": written}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # the data directory: owned by the service user alone (PIN hashes, keys, citizens' records)
    target = root / data_dir.relative_to("/")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    have_user = _ensure_user(user, data_dir, dry=below_root)
    if not no_browser:
        _ensure_user(browser_user, Path("/nonexistent"), dry=below_root)
    if have_user and os.geteuid() == 0:
        os.chown(target, pwd.getpwnam(user).pw_uid, grp.getgrnam(user).gr_gid)
    for name in texts:
        click.echo(f"wrote {unit_dir / name}")
    if not below_root:
        _systemctl(root, "daemon-reload")
    if not no_enable:
        enable = [SERVER, TIMER] + ([] if no_browser else [BROWSER]) + ([BACKUP_TIMER] if backup_dir else [])
        _systemctl(root, "enable", *enable)
        click.echo("enabled " + ", ".join(enable) + ("" if below_root else
                   "; start them with: systemctl start " + " ".join(n for n in enable if n != BROWSER)))


@click.command("uninstall-service")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), show_default=True)
def uninstall_service_command(root):
    """Stop, disable and remove the units install-service wrote (the data directory and users stay)."""
    root = root.resolve()
    manifest_path = root / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException(f"nothing to remove: {manifest_path} not found") from None
    below_root = str(root) != "/"
    if not below_root:
        subprocess.run(["systemctl", "stop", *manifest["units"]], capture_output=True)
    _systemctl(root, "disable", *manifest["units"])
    for rel in manifest["files"]:
        (root / rel).unlink(missing_ok=True)
        click.echo(f"removed {root / rel}")
    manifest_path.unlink()
    if not below_root:
        _systemctl(root, "daemon-reload")
