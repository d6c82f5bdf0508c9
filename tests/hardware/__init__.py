"""Tests of printing: rendering, encoding, transports, the print queue and the kiosk adapter."""
