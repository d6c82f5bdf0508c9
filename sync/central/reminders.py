"""SMS reminders of appointments, sent by central through a configurable gateway (off by default).

`flask --app sync.central appointments-remind` (cron, every few minutes) sends each booking that
gave a phone number one text message in the booking's language, `remind_before_h` hours before
its slot (settings/appointments), then erases the number. It also erases the numbers of bookings
that were cancelled or whose slot has passed, so a number is kept only as long as it is needed.
A message the gateway refuses is tried again by the next run; a number is never logged. The same
run does the bookings' housekeeping: old request counts go, and bookings whose slot ended a month
ago leave the centres' feeds (kiosks forget them; central keeps its rows).

The notifier is pluggable (CENTRAL_SMS_NOTIFIER):
- `off` (default): no reminders, and the booking endpoints do not keep phone numbers at all.
- `http`: `HttpGateway`, a POST of JSON or a form to CENTRAL_SMS_URL, the number and the text in
  the fields the gateway names (CENTRAL_SMS_TO_FIELD, CENTRAL_SMS_TEXT_FIELD), with
  CENTRAL_SMS_EXTRA's fields (a sender id, an account) and CENTRAL_SMS_AUTHORIZATION as the
  Authorization header. Any 2xx answer counts as accepted. Most commercial gateways take this.
- `package.module:factory`: a callable given the app's configuration that returns an object with
  `send(phone, text)` raising `NotifierError` on failure, for a gateway that needs something else.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from typing import Protocol

import click
import requests
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_babel import force_locale, gettext
from sqlalchemy import or_, select, update

from kiosk.domain import appointments as ap
from kiosk.i18n import locales
from kiosk.i18n.locales import LOCALES
from sync.central import names
from sync.central.models import Appointment

log = logging.getLogger(__name__)

HORIZON = dt.timedelta(days=15)  # reminders are at most 14 days ahead (remind_before_h <= 336)


class NotifierError(Exception):
    """A message the gateway did not accept (it is tried again by the next run)."""


class Notifier(Protocol):
    """Sends one text message."""

    def send(self, phone: str, text: str) -> None:
        """Hand the message to the gateway; NotifierError when it is not accepted."""


class HttpGateway:
    """An SMS gateway reached by one HTTP POST per message."""

    def __init__(self, url: str, *, authorization: str = "", body_format: str = "json", to_field: str = "to",
                 text_field: str = "text", extra: dict | None = None, timeout_s: float = 10):
        """Remember where and how to post."""
        if not url.startswith(("https://", "http://")):
            raise ValueError("CENTRAL_SMS_URL must be an http(s) URL")
        if body_format not in ("json", "form"):
            raise ValueError("CENTRAL_SMS_FORMAT must be json or form")
        self.url, self.authorization, self.body_format = url, authorization, body_format
        self.to_field, self.text_field, self.extra, self.timeout_s = to_field, text_field, dict(extra or {}), timeout_s

    def send(self, phone: str, text: str) -> None:
        """POST the message; NotifierError unless the gateway answers 2xx."""
        fields = {**self.extra, self.to_field: phone, self.text_field: text}
        headers = {"Authorization": self.authorization} if self.authorization else {}
        try:
            if self.body_format == "json":
                response = requests.post(self.url, json=fields, headers=headers, timeout=self.timeout_s)
            else:
                response = requests.post(self.url, data=fields, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise NotifierError(f"the gateway could not be reached ({exc.__class__.__name__})") from None
        with response:
            if not 200 <= response.status_code < 300:
                raise NotifierError(f"the gateway answered {response.status_code}")


def make_notifier(config) -> Notifier | None:
    """The configured notifier, None when reminders are off; ValueError for a wrong setting."""
    kind = config.get("CENTRAL_SMS_NOTIFIER", "off")
    if kind == "off":
        return None
    if kind == "http":
        try:
            extra = json.loads(config.get("CENTRAL_SMS_EXTRA") or "{}")
        except ValueError:
            raise ValueError("CENTRAL_SMS_EXTRA must be a JSON object") from None
        if not isinstance(extra, dict):
            raise ValueError("CENTRAL_SMS_EXTRA must be a JSON object")
        return HttpGateway(config.get("CENTRAL_SMS_URL", ""), authorization=config.get("CENTRAL_SMS_AUTHORIZATION", ""),
                           body_format=config.get("CENTRAL_SMS_FORMAT", "json"),
                           to_field=config.get("CENTRAL_SMS_TO_FIELD", "to"),
                           text_field=config.get("CENTRAL_SMS_TEXT_FIELD", "text"), extra=extra,
                           timeout_s=float(config.get("CENTRAL_SMS_TIMEOUT_S", 10)))
    module, _, name = kind.partition(":")
    if not module or not name:
        raise ValueError("CENTRAL_SMS_NOTIFIER must be off, http or package.module:factory")
    return getattr(importlib.import_module(module), name)(config)


def reminder_text(row, directory: names.Directory, settings: ap.Settings) -> str:
    """The reminder in the booking's language, with the centre's name and the slot's local date
    and time in that language (inside an app context)."""
    lang = row.lang if row.lang in LOCALES else "ar"
    start = row.start_at.astimezone(settings.timezone)
    with force_locale(LOCALES[lang]):
        return gettext("Reminder: your appointment at %(centre)s is on %(date)s at %(time)s. Code %(code)s. "
                       "Scan or type the code at the kiosk when you arrive.",
                       centre=directory.centre(row.centre, lang) or row.centre,
                       date=locales.format_date(start, lang, weekday=True),
                       time=locales.digits(start.strftime("%H:%M"), lang),
                       code=locales.isolate(ap.format_code(row.code)))


def send_reminders(engine, notifier: Notifier, now: dt.datetime) -> dict[str, int]:
    """Send every reminder that is due, erase the numbers no longer needed; counts of what happened."""
    from sync.central.appointments import rules
    counts = {"sent": 0, "failed": 0, "erased": 0}
    with engine.begin() as conn:
        counts["erased"] = conn.execute(update(Appointment).where(
            Appointment.phone.is_not(None),
            or_(Appointment.state != "booked", Appointment.start_at <= now)).values(phone=None)).rowcount
        rows = conn.execute(select(Appointment).where(
            Appointment.phone.is_not(None), Appointment.state == "booked", Appointment.reminded_at.is_(None),
            Appointment.start_at > now, Appointment.start_at <= now + HORIZON).order_by(Appointment.start_at)).all()
        directory = names.directory(conn)
        settings = {centre: rules(conn, centre)[0] for centre in {row.centre for row in rows}}
    for row in rows:
        if row.start_at - dt.timedelta(hours=settings[row.centre].remind_before_h) > now:
            continue
        try:
            notifier.send(row.phone, reminder_text(row, directory, settings[row.centre]))
        except NotifierError as exc:
            counts["failed"] += 1
            log.warning("reminder of an appointment at %s not sent: %s", row.centre, exc)
            continue
        with engine.begin() as conn:
            conn.execute(update(Appointment).where(Appointment.code == row.code).values(reminded_at=now, phone=None))
        counts["sent"] += 1
    return counts


@click.command("appointments-remind")
@with_appcontext
def remind_command():
    """Send the SMS reminders that are due and erase phone numbers no longer needed (run from cron)."""
    from sync.central.appointments import forget_old_counts, prune_feed
    central = current_app.extensions["central"]
    try:
        notifier = make_notifier(current_app.config)
    except (ValueError, ImportError, AttributeError) as exc:
        raise click.ClickException(f"the SMS notifier is misconfigured: {exc}") from None
    now = central.clock.now()
    with central.engine.begin() as conn:
        forget_old_counts(conn, now)
        pruned = prune_feed(conn, now)
    if pruned:
        click.echo(f"{pruned} past booking(s) removed from the centres' feeds")
    if notifier is None:
        with central.engine.begin() as conn:
            erased = conn.execute(update(Appointment).where(Appointment.phone.is_not(None)).values(phone=None)).rowcount
        click.echo(f"reminders are off (CENTRAL_SMS_NOTIFIER); {erased} phone number(s) erased")
        return
    counts = send_reminders(central.engine, notifier, now)
    click.echo(f"{counts['sent']} reminder(s) sent, {counts['failed']} failed (tried again next run), "
               f"{counts['erased']} phone number(s) no longer needed erased")
    if counts["failed"]:
        raise SystemExit(1)


def register(app: Flask) -> None:
    """Add the reminder command."""
    app.cli.add_command(remind_command)
