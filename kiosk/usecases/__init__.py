"""Use cases grouped by what they are about (the older ones still sit beside `kiosk/services.py`)."""
