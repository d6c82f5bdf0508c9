"""The ministry's central server: receives every centre's records and serves their configuration.

`flask --app sync.central ...` finds `create_app` here; gunicorn runs `sync.central:create_app()`.
"""
from sync.central.app import create_app

__all__ = ["create_app"]
