"""Fixtures for the appointment tests: central on SQLite and PostgreSQL (the sync tests' fixtures,
imported, not copied), ready to book; the screens' browser context that fails a test on any CSP
violation, console or page error (the web tests' fixtures, imported)."""
from __future__ import annotations

import datetime as dt

import pytest

from kiosk import cases, keys
from kiosk.clock import iso
from kiosk.domain import appointments as ap
from kiosk.domain.trustlist import TrustedKey, TrustList
from tests.appointments.support import APPOINTMENTS, KIOSK_HOST, SLOT, make_bookable
from tests.cases.conftest import publish
from tests.sync.conftest import (backend, central_app, central_url_db, ops, pg_url,  # noqa: F401
                                 server_clock, sqlite_template)
from tests.web.conftest import context, page, watch  # noqa: F401


@pytest.fixture
def bookable(central_app, ops, tmp_path):
    """Central with ERB-01 configured for appointments and its booking key published."""
    make_bookable(ops, central_app, tmp_path)
    return central_app


class Bookings:
    """Bookings as central would send them: pulled documents and signed QR texts."""

    def __init__(self, centre, key: keys.SigningKey):
        """Book for `centre` with central's booking `key`."""
        self.centre, self.key = centre, key

    def pull(self, code: str, start: dt.datetime = SLOT, *, service: str = "A", state: str = "booked") -> dict:
        """Put a booking in the kiosk's store as the pull does."""
        doc = {"id": code, "code": code, "service": service, "start_at": iso(start),
               "end_at": iso(start + dt.timedelta(minutes=15)), "state": state, "lang": "ar",
               "booked_at": "2026-11-20T10:00:00.000Z"}
        self.centre.store.put(ap.TABLE, doc)
        return doc

    def qr(self, code: str, start: dt.datetime = SLOT, *, service: str = "A", centre: str = "DEMO",
           key: keys.SigningKey | None = None) -> str:
        """The QR text central would sign for a booking."""
        booking = ap.Booking(code=code, centre=centre, service=service, start=start,
                             end=start + dt.timedelta(minutes=15), issued_at=dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone.utc))
        return ap.sign(booking, (key or self.key).private_key, KIOSK_HOST)


@pytest.fixture
def booked(centre, tmp_path):
    """The demo centre with central's booking key on its accepted trust list and appointment settings."""
    root = keys.create_root_key(tmp_path / "central" / "root-key.pem")
    booking_key = keys.create_key_file(tmp_path / "central" / "booking-key.pem")
    keys.pin_root_keys(cases.data_dir(centre), root.public_pem())
    now = centre.clock.now()
    publish(centre.store, root, TrustList(sequence=1, issued_at=now, verify_host=KIOSK_HOST, keys=(
        TrustedKey.from_public_key(ap.BOOKING_SIGNER, booking_key.public_key, now - dt.timedelta(days=30),
                                   now + dt.timedelta(days=400)),)))
    centre.store.put("settings", APPOINTMENTS)
    return Bookings(centre, booking_key)
