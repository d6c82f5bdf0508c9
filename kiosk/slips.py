"""What goes on paper: turn a stored ticket into the localised slip the printer renders.

The use cases hand a ticket to `TicketPrinting.print_ticket` after it is stored; the text is
translated here (the citizen's language, local digits, the centre's time zone) and the printer
queue renders and sends it in the background.
"""
from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import force_locale, gettext, ngettext

from hardware import TicketSlip
from kiosk.clock import parse_iso
from kiosk.i18n.locales import LOCALES, digits, format_datetime, format_number, isolate

log = logging.getLogger(__name__)


def ticket_slip(ticket: dict, service: dict, *, centre_names: dict, tz, lang: str | None = None,
                priority_names: dict | None = None) -> TicketSlip:
    """The ticket as printed, in `lang` (default: the language the citizen chose); a priority
    ticket names its class (`priority_names`), an appointment's ticket its slot, a transferred one
    its old number."""
    lang = lang or ticket.get("lang") or "ar"
    with force_locale(LOCALES[lang]):
        issued = format_datetime(parse_iso(ticket["issued_at"]), lang, tz)
        ahead = ticket.get("ahead", 0)
        ahead_text = (gettext("You are next") if ahead == 0 else
                      ngettext("%(num)d person ahead of you", "%(num)d people ahead of you", ahead))
        wait_min = max(1, round(ticket.get("estimated_wait_s", 0) / 60)) if ahead else 0
        wait_text = ngettext("About %(num)d minute", "About %(num)d minutes", wait_min) if wait_min else ""
        fee = int(service.get("fee_iqd") or 0)
        fee_text = (gettext("This service is free. Pay nobody.") if fee == 0 else
                    gettext("Official fee: %(fee)s IQD. Pay only at the cashier.", fee=format_number(fee, lang)))
        counter_text = gettext("Counter %(counter)s", counter=ticket["counter"]) if ticket.get("counter") else ""
        footer = gettext("Keep this ticket. Watch the screen for your number, or scan the code to follow it on your phone.")
        priority_text = ""
        if priority_names is not None:
            priority_text = gettext("Priority ticket: %(class)s",
                                    **{"class": priority_names.get(lang) or priority_names.get("en", "")})
        if ticket.get("appointment"):
            # an appointment's check-in: its slot instead of a class; before the slot, when it is called
            slot = parse_iso(ticket["slot_start_at"])
            slot_time = digits(slot.astimezone(tz).strftime("%H:%M"), lang)
            priority_text = gettext("Appointment at %(time)s", time=slot_time)
            if slot > parse_iso(ticket["issued_at"]):
                ahead_text = gettext("You will be called from %(time)s, the time of your appointment.", time=slot_time)
                wait_text = ""
        was = ticket["events"][0].get("from") if ticket.get("events") else None
        # ticket numbers are isolates: inside Arabic or Sorani they keep their place and read left to right
        transfer_text = gettext("Your new number %(number)s (was %(old)s)", number=isolate(ticket["number"]),
                                old=isolate(was)) if was else ""
        return TicketSlip(
            lang=lang, centre=centre_names.get(lang) or centre_names.get("en", ""), number=ticket["number"],
            number_local=digits(ticket["number"], lang), service=service["names"].get(lang) or service["code"],
            issued_at_text=issued, ahead_text=digits(ahead_text, lang),
            wait_text=digits(wait_text, lang), fee_text=digits(fee_text, lang),
            counter_text=digits(counter_text, lang), qr=ticket["qr"], footer=footer, priority_text=priority_text,
            transfer_text=transfer_text)


class TicketPrinting:
    """The use cases' printer: builds slips inside the app's context and queues them."""

    def __init__(self, app: Flask, printer):
        """Wrap a hardware printer (kiosk.printing.KioskPrinter) for `app`."""
        self.app = app
        self.printer = printer
        self.jobs: dict[str, str] = {}  # ticket id -> last print job id, for reprints

    def print_ticket(self, ticket: dict, service: dict, priority_names: dict | None = None) -> str:
        """Queue a stored ticket for printing; returns the job id."""
        with self.app.app_context():
            slip = ticket_slip(ticket, service, centre_names=self.app.config["CENTRE_NAMES"],
                               tz=ZoneInfo(self.app.config["TIMEZONE"]), priority_names=priority_names)
        job = self.printer.print_ticket(slip)
        self.jobs[ticket["id"]] = job
        if len(self.jobs) > 2000:
            self.jobs.pop(next(iter(self.jobs)))
        return job

    def print_document(self, document) -> str:
        """Queue a laid-out hardware.Document (receipts); never waits on the printer."""
        return self.printer.print_document(document)

    def reprint(self, ticket: dict, service: dict, priority_names: dict | None = None) -> str:
        """Print a ticket again (a fresh slip: the place in the queue may have changed)."""
        return self.print_ticket(ticket, service, priority_names)

    def status(self) -> dict:
        """The printer's last known status and queue counts."""
        return self.printer.status()

    def close(self) -> None:
        """Stop the print worker (pending jobs are logged by it)."""
        self.printer.close()
