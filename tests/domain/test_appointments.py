"""Appointments in plain Python: settings and slots, booking codes, the signed booking QR verified
offline against a trust list (and refused when altered, forged or signed by a centre key), the
check-in window and a booking's state at the centre."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain import appointments as ap
from kiosk.domain import receipts
from kiosk.domain.cases import Calendar
from kiosk.domain.trustlist import TrustedKey, TrustList

UTC = dt.timezone.utc
HOST = "V.EXAMPLE.IQ"
NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # a Sunday, 09:00 in Baghdad
DOC = {"id": "appointments", "days_ahead": 7, "close_before_min": 60, "early_min": 30, "grace_min": 15,
       "services": {"A": {"slot_min": 20, "capacity": 3, "hours": {"sun": ["08:00-09:00", "13:00-13:50"],
                                                                   "thu": ["10:00-11:00"]}}}}
BOOKING_KEY = ec.generate_private_key(ec.SECP256R1())
CENTRE_KEY = ec.generate_private_key(ec.SECP256R1())


def trust(*, revoked=(), **keys) -> TrustList:
    """A trust list naming central's booking key and a centre's receipt key."""
    listed = keys or {"booking": (ap.BOOKING_SIGNER, BOOKING_KEY), "centre": ("ERB-01", CENTRE_KEY)}
    return TrustList(sequence=3, issued_at=NOW, verify_host=HOST, revoked_kids=frozenset(revoked), keys=tuple(
        TrustedKey.from_public_key(centre, key.public_key(), NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=400))
        for centre, key in listed.values()))


def booking(**overrides) -> ap.Booking:
    """A booking of service A at ERB-01 tomorrow at 09:00 UTC."""
    fields = {"code": "K7M2Q9XD", "centre": "ERB-01", "service": "A", "start": NOW + dt.timedelta(days=1, hours=3),
              "end": NOW + dt.timedelta(days=1, hours=3, minutes=20), "issued_at": NOW}
    return ap.Booking(**{**fields, **overrides})


# -- settings and slots ----------------------------------------------------------------------------

def test_slots_follow_the_hours_of_the_weekday_in_local_time():
    rules = ap.Settings.from_doc(DOC)
    sunday = dt.date(2026, 11, 22)
    slots = rules.slots("A", sunday, Calendar())
    # Baghdad is UTC+3: 08:00, 08:20, 08:40 local, then 13:00 and 13:20 (13:40 would end after 13:50)
    assert [s.start.strftime("%H:%M") for s in slots] == ["05:00", "05:20", "05:40", "10:00", "10:20"]
    assert all(s.end - s.start == dt.timedelta(minutes=20) and s.capacity == 3 for s in slots)
    assert rules.slots("A", sunday + dt.timedelta(days=1), Calendar()) == []  # no hours on Monday
    assert rules.slots("B", sunday, Calendar()) == []                          # not bookable
    assert rules.slot_at("A", slots[3].start, Calendar()) == slots[3]
    assert rules.slot_at("A", slots[3].start + dt.timedelta(minutes=5), Calendar()) is None


def test_rest_days_and_holidays_of_the_centre_calendar_have_no_slots():
    rules = ap.Settings.from_doc(DOC)
    thursday = dt.date(2026, 11, 26)
    assert len(rules.slots("A", thursday, Calendar())) == 3
    assert rules.slots("A", thursday, Calendar.from_settings({"holidays": ["2026-11-26"]})) == []
    assert rules.slots("A", thursday, Calendar.from_settings({"weekend": ["thu", "fri"]})) == []


def test_booking_closes_before_the_slot_and_beyond_the_bookable_days():
    rules = ap.Settings.from_doc(DOC)
    today = rules.slots("A", dt.date(2026, 11, 22), Calendar())
    # 09:00 local now: the 13:00 slot closes at 12:00 local, the morning ones have closed
    assert [rules.is_open(s, NOW) for s in today] == [False, False, False, True, True]
    assert not rules.is_open(today[3], NOW.replace(hour=9))  # 12:00 local: closed
    assert rules.bookable_days(NOW)[0] == dt.date(2026, 11, 22) and len(rules.bookable_days(NOW)) == 8
    far = rules.slots("A", dt.date(2026, 12, 6), Calendar())[0]  # the Sunday two weeks on
    assert not rules.is_open(far, NOW)


@pytest.mark.parametrize("change, message", [
    ({"days_ahead": -1}, "days_ahead"),
    ({"grace_min": "15"}, "grace_min"),
    ({"timezone": "Mars/Olympus"}, "time zone"),
    ({"services": {"A": {"slot_min": 1, "hours": {}}}}, "slot_min"),
    ({"services": {"A": {"capacity": 0, "hours": {}}}}, "capacity"),
    ({"services": {"A": {"hours": {"sunday": []}}}}, "mon..sun"),
    ({"services": {"A": {"hours": {"sun": ["8-12"]}}}}, "is not a range"),
    ({"services": {"A": {"hours": {"sun": ["12:00-08:00"]}}}}, "ends before it starts"),
    ({"services": {"A": {"hours": {"sun": ["08:00-12:00", "11:00-13:00"]}}}}, "overlap"),
    ({"services": {"a b": {"hours": {}}}}, "not a service code"),
])
def test_malformed_settings_are_refused_with_the_field_named(change, message):
    with pytest.raises(ValueError, match=message):
        ap.Settings.from_doc({**DOC, **change})


def test_no_settings_means_nothing_is_bookable():
    assert ap.Settings.from_doc(None).slots("A", dt.date(2026, 11, 22), Calendar()) == []


# -- codes -----------------------------------------------------------------------------------------

def test_new_codes_are_canonical_and_differ():
    codes = {ap.new_code() for _ in range(200)}
    assert len(codes) == 200 and all(ap.normalise_code(c) == c for c in codes)


@pytest.mark.parametrize("typed", ["K7M2Q9XD", "k7m2-q9xd", " K7M2 Q9XD\n", "K٧M٢-Q٩XD", "K۷M۲Q۹XD",
                                   "\u2066K7M2-Q9XD\u2069"])
def test_typed_codes_are_read_as_the_canonical_code(typed):
    assert ap.normalise_code(typed) == "K7M2Q9XD"


def test_lookalike_letters_read_as_digits():
    assert ap.normalise_code("ILO2-3456") == "11023456"


@pytest.mark.parametrize("typed", ["", "K7M2Q9X", "K7M2Q9XDZ", "K7M2Q9XU", "K7M2Q9X!", None, 12345678, "x" * 100])
def test_anything_else_is_no_code(typed):
    assert ap.normalise_code(typed) is None


def test_codes_are_shown_in_two_groups():
    assert ap.format_code("K7M2Q9XD") == "K7M2-Q9XD"


# -- the signed booking ----------------------------------------------------------------------------

def test_a_signed_booking_verifies_offline_and_says_what_was_booked():
    text = ap.sign(booking(), BOOKING_KEY, HOST)
    assert text.startswith("HTTPS://V.EXAMPLE.IQ/A#") and len(text) < ap.MAX_QR_TEXT_LENGTH
    assert ap.looks_like_qr(text) and ap.looks_like_qr(text.lower()) and not ap.looks_like_qr("K7M2Q9XD")
    assert ap.verify(text, trust()) == booking()
    assert ap.verify(text.lower() + "\n", trust()) == booking()  # caps lock on the scanner, its Enter


def test_signing_is_deterministic():
    assert ap.sign(booking(), BOOKING_KEY, HOST) == ap.sign(booking(), BOOKING_KEY, HOST)


def reason(text: str, trust_list: TrustList | None = None) -> str:
    """Why a text is refused."""
    with pytest.raises(ap.BookingError) as caught:
        ap.verify(text, trust_list or trust())
    return caught.value.reason


def test_a_centre_receipt_key_cannot_sign_bookings():
    """Only the key the trust list names as central's booking key vouches for bookings."""
    assert reason(ap.sign(booking(), CENTRE_KEY, HOST)) == "unknown_key"


def test_a_receipt_is_no_booking_and_a_booking_no_receipt():
    """Separate external AAD: the same key's signature on one never verifies as the other."""
    forged = receipts.qr_text(receipts.cose_sign(ap.encode_payload(booking()), BOOKING_KEY, receipts.RECEIPT_AAD), HOST)
    assert reason(forged.replace("/R#", "/A#")) == "bad_signature"
    as_receipt = ap.sign(booking(), BOOKING_KEY, HOST).replace("/A#", "/R#")
    listing = trust(booking=("ERB-01", BOOKING_KEY))
    assert receipts.verify(as_receipt, listing, NOW).reason == "bad_signature"


def test_unlisted_revoked_and_out_of_window_keys_are_refused():
    text = ap.sign(booking(), BOOKING_KEY, HOST)
    assert reason(text, trust(centre=("ERB-01", CENTRE_KEY))) == "unknown_key"
    kid = receipts.key_id(BOOKING_KEY.public_key())
    assert reason(text, trust(revoked={kid})) == "key_revoked"
    late = ap.sign(booking(issued_at=NOW + dt.timedelta(days=500)), BOOKING_KEY, HOST)
    assert reason(late) == "key_not_valid"


def test_another_host_and_other_text_are_refused():
    text = ap.sign(booking(), BOOKING_KEY, HOST)
    assert reason(text.replace("V.EXAMPLE.IQ", "EVIL.EXAMPLE")) == "wrong_host"
    assert reason("K7M2Q9XD") == "malformed"
    assert reason(text[:-4]) == "malformed"
    assert reason(text + "A" * 400) == "malformed"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_no_single_character_change_verifies(data):
    text = ap.sign(booking(), BOOKING_KEY, HOST)
    start = len(ap.qr_prefix(HOST))
    index = data.draw(st.integers(start, len(text) - 1))
    replacement = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567").filter(lambda ch: ch != text[index]))
    with pytest.raises(ap.BookingError):
        ap.verify(text[:index] + replacement + text[index + 1:], trust())


def test_a_malformed_payload_signed_by_the_booking_key_is_refused():
    signed = receipts.cose_sign(b"\xa0", BOOKING_KEY, ap.BOOKING_AAD)
    text = ap.qr_prefix(HOST) + base64.b32encode(signed).decode().rstrip("=")
    assert reason(text) == "bad_payload"


def test_bookings_refuse_nonsense():
    with pytest.raises(ValueError):
        booking(code="K7M2-Q9XD")
    with pytest.raises(ValueError):
        booking(end=NOW)
    with pytest.raises(ValueError):
        booking(service="A B")


# -- check-in --------------------------------------------------------------------------------------

def test_check_in_window_runs_from_early_to_the_end_of_grace():
    rules = ap.Settings.from_doc(DOC)
    start = NOW + dt.timedelta(hours=2)
    window = ap.Window.of(start, rules)
    assert window.verdict(start - dt.timedelta(minutes=31)) == "too_early"
    assert window.verdict(start - dt.timedelta(minutes=30)) == "open"
    assert window.verdict(start + dt.timedelta(minutes=15)) == "open"
    assert window.verdict(start + dt.timedelta(minutes=15, seconds=1)) == "too_late"
    assert window.opens_at == start - dt.timedelta(minutes=30)


def test_state_at_the_centre():
    rules = ap.Settings.from_doc(DOC)
    doc = {"id": "K7M2Q9XD", "state": "booked", "start_at": "2026-11-22T08:00:00.000Z"}
    before, after = dt.datetime(2026, 11, 22, 8, 10, tzinfo=UTC), dt.datetime(2026, 11, 22, 8, 16, tzinfo=UTC)
    assert ap.state_at(doc, checked_in=False, now=before, settings=rules) == "booked"
    assert ap.state_at(doc, checked_in=False, now=after, settings=rules) == "no_show"
    assert ap.state_at(doc, checked_in=True, now=after, settings=rules) == "checked_in"
    assert ap.state_at({**doc, "state": "cancelled"}, checked_in=False, now=before, settings=rules) == "cancelled"
