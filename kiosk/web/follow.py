"""Follow your ticket on your phone: the page the ticket's QR code opens (`PUBLIC_URL/t/<id>`).

Public, for anybody holding the slip (the ticket id, a ULID, is the secret): the ticket's number,
service and priority class, how many calls come before it and about how long that takes, and
when it is called, the counter to go to. It shows nothing about anybody else.

It is in the ticket's language, with links to the other two (`?lang=`). It keeps itself current
over the ticket's event stream (kiosk/web/sse.py, `ticket:<id>`), polls when the stream is down
(static/js/follow.js), and without JavaScript refreshes itself every half minute. It sets no
cookie: a phone that only follows a ticket gets no session.

After the visit it asks the citizen how it went (kiosk/web/insight.py) until they have answered,
then thanks them for the answer.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, request, url_for

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain.errors import NotFound
from kiosk.usecases import insight
from kiosk.web import htmx

bp = Blueprint("follow", __name__)

REFRESH_S = 30  # the page without JavaScript reloads itself this often


def _page_lang(ticket_lang: str | None) -> str:
    """?lang= when it names a configured language, else the ticket's, else the phone's preference."""
    languages = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in languages:
        return asked
    if ticket_lang in languages:
        return ticket_lang
    return request.accept_languages.best_match(languages) or current_app.config["DEFAULT_LANGUAGE"]


def follow_context(ticket_id: str) -> dict:
    """What the page shows of one ticket (NotFound for an unknown id)."""
    centre = kiosk().centre
    ticket = services.get_ticket(centre, ticket_id)
    service = services.get_service(centre, ticket["service"])
    moved_to = None
    if ticket["state"] == "transferred" and ticket.get("transferred_to"):
        new = centre.tickets.get(ticket["transferred_to"])
        if new is not None:
            moved_to = {"id": new["id"], "number": new["number"],
                        "service": services.get_service(centre, new["service"])}
    classes = {p["id"]: p for p in services.priority_classes(centre)}
    rated = ticket["state"] == "done" and insight.rated(centre, ticket)
    feedback_url = None
    if ticket["state"] == "done" and not rated:
        feedback_url = url_for("feedback.ticket", ticket_id=ticket["id"])
    return {"ticket": ticket, "service": service, "moved_to": moved_to,
            "was": ticket["events"][0].get("from"), "priority_class": classes.get(ticket["priority"]),
            "calls": services.times_called(ticket), "feedback_url": feedback_url, "rated": rated, "refresh_s": REFRESH_S}


@bp.get("/t/<ticket_id>")
def ticket(ticket_id: str):
    """The page (or its `follow` block, which the page re-fetches when the stream says it changed)."""
    try:
        context = follow_context(ticket_id)
    except NotFound:
        g.lang = _page_lang(None)  # the error page in the phone's language
        abort(404)
    g.lang = _page_lang(context["ticket"].get("lang"))
    return htmx.render("follow/ticket.html", "follow", **context)
