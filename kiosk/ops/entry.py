"""Console scripts of the installed package (pyproject.toml):

    centre-kiosk ARGS     = flask --app kiosk ARGS        (serve, check, demo-data, install-service ...)
    centre-central ARGS   = flask --app sync.central ARGS (the ministry's server)
    centre-sync ARGS      = flask --app kiosk sync ARGS   (the sync job the systemd timer runs)
"""
from __future__ import annotations

import sys


def _group(factory_path: str, name: str):
    """A Flask command group whose app comes from `module:factory`."""
    from flask.cli import FlaskGroup

    def create():
        """Build the app (imported here, so `--help` and `--version` stay light)."""
        module, _, attr = factory_path.partition(":")
        return getattr(__import__(module, fromlist=[attr]), attr)()

    return FlaskGroup(name=name, create_app=create, add_version_option=False, set_debug_flag=False)


def kiosk_main(argv: list[str] | None = None) -> None:
    """`centre-kiosk`: the centre app's command line."""
    _group("kiosk.app:create_app", "centre-kiosk").main(args=argv, prog_name="centre-kiosk")


def central_main(argv: list[str] | None = None) -> None:
    """`centre-central`: the central server's command line."""
    _group("sync.central.app:create_app", "centre-central").main(args=argv, prog_name="centre-central")


def sync_main(argv: list[str] | None = None) -> None:
    """`centre-sync`: one sync round (or `--loop`) with the centre's central server."""
    args = sys.argv[1:] if argv is None else argv
    _group("kiosk.app:create_app", "centre-sync").main(args=["sync", *args], prog_name="centre-sync")


def version() -> str:
    """The installed release."""
    from kiosk import __version__
    return __version__
