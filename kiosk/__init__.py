"""The centre app: `flask --app kiosk ...` finds create_app here.

The app is imported on first use, not with the package: central shares the pure parts of this
package (kiosk.domain, kiosk.ids, kiosk.i18n) and must start without the kiosk's web layer, and the
small parts every process needs (the version, the log set-up the print worker uses) load without
Flask and the store.
"""

__version__ = "1.0.0"

__all__ = ["create_app", "__version__"]


def __getattr__(name: str):
    """`kiosk.create_app`, imported when first asked for."""
    if name == "create_app":
        from kiosk.app import create_app
        return create_app
    raise AttributeError(f"module 'kiosk' has no attribute {name!r}")
