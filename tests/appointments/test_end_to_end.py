"""Appointments end to end through real sync, on SQLite and PostgreSQL: book at central over HTTP,
pull to an enrolled kiosk, cut the kiosk off from central, check in at the kiosk's touchscreen in
real Chromium (codes typed on the keypad and on a keyboard, QR texts typed by a keyboard-wedge
scanner; Arabic, Sorani and English), a cancelled booking refused, a booking made after the cut-off
checked in from its QR alone, every booking called first at its slot and served, and at the next
sync the tickets reach central and the later booking reaches the kiosk."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import requests
from sqlalchemy import select

from kiosk import create_app, keys, services
from kiosk.clock import FrozenClock
from kiosk.domain import appointments as ap
from kiosk.web.server import ServerThread
from sync import agent as agent_mod
from sync.central.models import Record
from tests.appointments.support import MONDAY_10, make_bookable
from tests.processes import free_port

UTC = dt.timezone.utc


class Link:
    """Central served on a fixed loopback port that the test can take down and bring back."""

    def __init__(self, app):
        """Serve at once."""
        self.app, self.port = app, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = self.thread = None
        self.up()

    def up(self) -> None:
        """Central answers again."""
        from waitress.server import create_server
        self.server = create_server(self.app, host="127.0.0.1", port=self.port, threads=8, ident="central-test")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        """Serve until closed."""
        try:
            self.server.run()
        except OSError:
            pass

    def down(self) -> None:
        """Nothing answers on central's address any more."""
        self.server.task_dispatcher.shutdown(timeout=5)
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def world(central_app, ops, tmp_path, server_clock):
    """Central ready to book, reachable over a link the test controls; a kiosk of ERB-01 enrolled
    and synced, on a clock of its own that starts at central's time."""
    link = Link(central_app)
    make_bookable(ops, central_app, tmp_path, host=f"127.0.0.1:{link.port}")
    kiosk_clock = FrozenClock(server_clock.now())
    kiosk_dir = tmp_path / "kiosk"
    app = create_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "test", "PRINTER_URL": "off", "CENTRE": "ERB-01",
                      "TICKET_RATE_PER_MIN": 0, "IDLE_RESET_S": 600}, clock=kiosk_clock)
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    receipts_dir = tmp_path / "central-receipts"
    keys.pin_root_keys(kiosk_dir, (receipts_dir / "root-public.pem").read_text(encoding="ascii"))
    agent_mod.enroll(kiosk_dir, link.url, ops.code("ERB-01"), centre="ERB-01", clock=kiosk_clock)

    def sync():
        """One cron round of the agent (its connections closed after it, as when cron's process
        ends), then the kiosk applies what was pulled."""
        with requests.Session() as session:
            agent_mod.Agent(kiosk_dir, centre="ERB-01", clock=kiosk_clock, retry_delay_s=0.01, timeout=(2, 5),
                            retries=0, session=session).run()
        app.extensions["kiosk"].apply_inbox()

    sync()
    server = ServerThread(app)
    yield {"link": link, "app": app, "centre": centre, "clock": kiosk_clock, "sync": sync, "server": server}
    server.stop()
    app.extensions["kiosk"].close()
    link.down()


def book(url: str, start: str = MONDAY_10) -> dict:
    """Book service A at ERB-01 through central's public API."""
    with requests.post(f"{url}/api/v1/appointments", timeout=10, headers={"Connection": "close"},
                       json={"centre": "ERB-01", "service": "A", "start": start, "lang": "ar"}) as answer:
        assert answer.status_code == 201, answer.text
        return answer.json()["appointment"]


def visit(page, base: str, lang: str) -> None:
    """A citizen at the touchscreen: their language, then "I have an appointment"."""
    page.goto(f"{base}/kiosk")
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.wait_for_selector("[data-step=services]")
    page.locator("#appointment-entry").tap()
    page.wait_for_selector("[data-step=appointment]")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'code'")


def checked_in(page) -> str:
    """The ticket number on the screen after a check-in."""
    page.wait_for_selector("[data-step=ticket][data-appointment]")
    return page.inner_text("#ticket-number")


def test_book_pull_cut_off_check_in_call_and_sync_again(world, context, central_app):
    link, centre, clock, base = world["link"], world["centre"], world["clock"], world["server"].url
    typed, scanned, cancelled, keyboard = (book(link.url) for _ in range(4))
    with requests.delete(f"{link.url}/api/v1/appointments/{cancelled['code']}", timeout=10,
                         headers={"Connection": "close"}) as answer:
        assert answer.status_code == 200
    world["sync"]()
    pulled = {doc["id"]: doc["state"] for doc in centre.store.all(ap.TABLE)}
    assert pulled == {typed["code"]: "booked", scanned["code"]: "booked", cancelled["code"]: "cancelled",
                      keyboard["code"]: "booked"}

    # the kiosk loses its link to central; a booking made now does not reach it
    link.down()
    late = central_app.test_client().post("/api/v1/appointments", json={
        "centre": "ERB-01", "service": "A", "start": MONDAY_10, "lang": "en"}).get_json()["appointment"]
    with pytest.raises(agent_mod.SyncFailed):
        world["sync"]()
    assert centre.store.get(ap.TABLE, late["code"]) is None

    # Monday 09:45 in Baghdad: a walk-in takes a ticket, then the booked citizens arrive
    clock.set("2026-11-23T06:45:00Z")
    walk_in = services.issue_ticket(centre, service="A", lang="ar")
    page = context.new_page()
    visit(page, base, "ar")
    for key in typed["code"]:
        page.locator(f'.keypad [data-key="{key}"]').tap()
    page.locator("#check-in").tap()
    numbers = [checked_in(page)]
    assert page.locator("#appointment-mark").is_visible()
    assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == ["ar-IQ", "rtl"]

    visit(page, base, "ckb")
    page.keyboard.type(scanned["qr"])  # a keyboard-wedge scanner types the QR text, then Enter
    page.keyboard.press("Enter")
    numbers.append(checked_in(page))

    visit(page, base, "en")
    page.keyboard.type(cancelled["code"])
    page.keyboard.press("Enter")
    page.wait_for_selector('#refusal[data-refusal="cancelled"]')
    assert "This appointment was cancelled." in page.inner_text("#refusal")
    page.locator("#code").fill("")
    page.keyboard.type(late["qr"].lower())  # the one central took after the cut-off: its QR proves it
    page.keyboard.press("Enter")
    numbers.append(checked_in(page))

    visit(page, base, "en")
    page.keyboard.type(ap.format_code(keyboard["code"]).lower())
    page.keyboard.press("Enter")
    numbers.append(checked_in(page))
    assert "You will be called from 10:00" in page.inner_text("#ticket-wait")
    page.close()

    # 10:00: every checked-in appointment goes before the walk-in who came earlier, two at a time
    clock.set("2026-11-23T07:00:05Z")
    services.set_counter_status(centre, "1", "open", by="demo")
    calls = []
    while (result := services.call_next(centre, counter="1", by="demo")) is not None:
        ticket, _reason, rule = result
        calls.append((ticket["number"], rule))
        assert services.display_state(centre)["now_serving"][0]["appointment"] == (rule == "appointment")
        services.act(centre, ticket["id"], "start", by="demo")
        clock.advance(minutes=3)
        services.act(centre, ticket["id"], "finish", by="demo")
    assert calls == [(numbers[0], "appointment"), (numbers[1], "appointment"), (walk_in["number"], "next"),
                     (numbers[2], "appointment"), (numbers[3], "appointment")]

    # the link is back: the tickets reach central, the later booking reaches the kiosk
    link.up()
    clock.set(central_app.extensions["central"].clock.now())
    world["sync"]()
    assert centre.store.get(ap.TABLE, late["code"])["state"] == "booked"
    with central_app.extensions["central"].engine.connect() as conn:
        docs = conn.execute(select(Record.doc).where(Record.centre == "ERB-01", Record.tbl == "tickets")).scalars().all()
    served = {doc.get("appointment"): doc["state"] for doc in docs if doc.get("appointment")}
    assert served == {typed["code"]: "done", scanned["code"]: "done", late["code"]: "done", keyboard["code"]: "done"}
