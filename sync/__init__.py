"""Sync between a centre's kiosk and the ministry's central server (protocol, agent, inbox, central)."""
