"""Use cases beside kiosk/services.py, one module per feature (they take a `services.Centre`)."""
