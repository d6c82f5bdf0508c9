"""Test doubles for printing: a loopback ESC/POS printer and an ESC/POS decoder."""
