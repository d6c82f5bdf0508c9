"""The centre app: `flask --app kiosk ...` finds create_app here.

The app module is imported on first use of `create_app`, so the small parts every process needs
(the version, the log set-up used by the print worker) load without Flask and the store."""

__version__ = "1.0.0"

__all__ = ["create_app", "__version__"]


def __getattr__(name):
    """`kiosk.create_app`, imported when first asked for."""
    if name == "create_app":
        from kiosk.app import create_app
        return create_app
    raise AttributeError(f"module 'kiosk' has no attribute {name!r}")
