"""The hall display: who is called to which counter (newest first and highlighted), the other
current calls, and how many people wait for each service. Read-only, no login, no personal data:
ticket numbers, counters and counts only.

The page re-fetches its `board` block when the event stream says the queue changed (and polls
when the stream is down); the spoken call is played by static/js/display.js from the clip list
the stream sends with each `ticket-called` event.
"""
from __future__ import annotations

from flask import Blueprint, current_app

from kiosk import services
from kiosk.app import kiosk
from kiosk.i18n import voice
from kiosk.web import htmx
from kiosk.web.screens import locale_info

bp = Blueprint("display", __name__, url_prefix="/display")

RECENT = 8


def clip_urls(number: str, counter: str, lang: str) -> list[str]:
    """Static URLs (with content hashes) of the clips that announce a call; usable outside a request."""
    app = current_app._get_current_object()
    files = app.extensions["kiosk_static"]
    return [f"{app.static_url_path}/{path}?v={files.version(path)}"
            for path in voice.announcement(number, counter, lang)]


def board_context() -> dict:
    """The board's data: newest call, other current calls, waiting counts per service."""
    centre = kiosk().centre
    state = services.display_state(centre, recent=RECENT)
    calls = state["now_serving"]
    names = {s["code"]: s.get("names", {}) for s in services.services_list(centre)}
    waiting = [{"code": code, "names": names.get(code, {}), "count": count}
               for code, count in sorted(state["waiting"].items())
               if code in names and (count or _active(centre, code))]
    native = next((lang for lang in current_app.config["LANGUAGES"] if locale_info(lang)["native_digits"]), None)
    return {"newest": calls[0] if calls else None, "others": calls[1:], "waiting": waiting, "native_lang": native,
            "moved": state["moved"]}


def _active(centre, code: str) -> bool:
    """Whether a service is taking tickets (inactive services with nobody waiting are not listed)."""
    try:
        return services.get_service(centre, code).get("active", True)
    except Exception:
        return False


@bp.get("")
def board():
    """The board (full page, or the `board` block for the live refresh)."""
    return htmx.render("display/board.html", "board", **board_context())
