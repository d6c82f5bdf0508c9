"""The centre app: `flask --app kiosk ...` finds create_app here."""
from kiosk.app import create_app

__all__ = ["create_app"]
