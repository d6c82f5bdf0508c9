"""`flask --app kiosk launch-browser --screen kiosk|display`: start Chromium in kiosk mode on the
centre machine, pointing at the citizen screen or the hall display, and optionally write the
managed policy file that locks the browser to this app (docs/kiosk-mode.md).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import click

DEFAULT_BASE = "http://127.0.0.1:8080"
PATHS = {"kiosk": "/kiosk", "display": "/display"}
SIZES = {"kiosk": "1080,1920", "display": "1920,1080"}
POLICY_DIR = "/etc/chromium/policies/managed"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Flags checked against Chromium 156 (Debian 12). --kiosk without a window manager does not fill
# the screen: the window position and size must be given.
BASE_FLAGS = (
    "--kiosk", "--noerrdialogs", "--disable-pinch", "--overscroll-history-navigation=0",
    "--hide-crash-restore-bubble", "--no-first-run", "--incognito", "--disable-features=Translate",
    "--check-for-update-interval=31536000", "--autoplay-policy=no-user-gesture-required",
)


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL (what the policy allows)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    return f"{parts.scheme}://{parts.netloc}"


def command_line(screen: str, url: str, *, browser: str = "chromium", window_size: str | None = None,
                 user_data_dir: str | None = None) -> list[str]:
    """The Chromium command for a screen."""
    size = window_size or SIZES[screen]
    argv = [browser, *BASE_FLAGS, "--window-position=0,0", f"--window-size={size}"]
    if user_data_dir:
        argv.append(f"--user-data-dir={user_data_dir}")
    return argv + [url]


def policy(url: str) -> dict:
    """The managed policy: only this app's origin, no devtools, printing, downloads, translate,
    autofill or password manager; audio may play without a tap (hall display)."""
    return {
        "URLBlocklist": ["*"],
        "URLAllowlist": [origin_of(url)],
        "DeveloperToolsAvailability": 2,
        "TranslateEnabled": False,
        "PrintingEnabled": False,
        "DownloadRestrictions": 3,
        "AllowFileSelectionDialogs": False,
        "AutofillAddressEnabled": False,
        "AutofillCreditCardEnabled": False,
        "PasswordManagerEnabled": False,
        "BrowserSignin": 0,
        "SpellcheckEnabled": False,
        "AutoplayAllowed": True,
        "DefaultNotificationsSetting": 2,
        "DefaultGeolocationSetting": 2,
    }


def write_policy(directory: Path, url: str) -> Path:
    """Write kiosk.json into a managed-policy directory (atomically); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "kiosk.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(policy(url), indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def find_browser(explicit: str | None) -> str:
    """The Chromium executable to use."""
    if explicit:
        return explicit
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return "chromium"


@click.command("launch-browser")
@click.option("--screen", type=click.Choice(sorted(PATHS)), required=True,
              help="kiosk: the citizen touchscreen; display: the hall display")
@click.option("--url", default=None, help=f"full URL to open (default {DEFAULT_BASE}/kiosk or /display)")
@click.option("--browser", default=None, help="Chromium executable (default: found on PATH)")
@click.option("--window-size", default=None, help="W,H in pixels (default 1080,1920 kiosk; 1920,1080 display)")
@click.option("--user-data-dir", default=None, type=click.Path(file_okay=False),
              help="browser profile directory (default: Chromium's own; --incognito keeps nothing)")
@click.option("--write-policy", "policy_dir", default=None, type=click.Path(file_okay=False),
              help=f"also write the managed policy kiosk.json into this directory (production: {POLICY_DIR})")
@click.option("--dry-run", is_flag=True, help="print the command instead of starting Chromium")
def launch_command(screen, url, browser, window_size, user_data_dir, policy_dir, dry_run):
    """Start Chromium in kiosk mode on the citizen screen or the hall display."""
    url = url or DEFAULT_BASE + PATHS[screen]
    origin_of(url)
    if window_size is not None:
        parts = window_size.split(",")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise click.BadParameter("use W,H, e.g. 1080,1920", param_hint="--window-size")
    argv = command_line(screen, url, browser=find_browser(browser), window_size=window_size,
                        user_data_dir=user_data_dir)
    if policy_dir:
        try:
            written = write_policy(Path(policy_dir), url)
        except OSError as exc:
            raise click.ClickException(f"cannot write the policy into {policy_dir}: {exc} "
                                       "(run as root for /etc/chromium/policies/managed)") from None
        click.echo(f"policy written to {written}")
    click.echo(shlex.join(argv))
    if dry_run:
        return
    if shutil.which(argv[0]) is None and not os.path.isfile(argv[0]):
        raise click.ClickException(f"{argv[0]} not found; install Debian's chromium or pass --browser")
    # replace this process: a systemd unit with Restart=always then restarts the browser itself
    os.execvp(argv[0], argv)
