"""The hall display: who is called to which counter (newest first and highlighted), the other
current calls, and how many people wait for each service. Read-only, no login, no personal data:
ticket numbers, counters and counts only.

The page re-fetches its `board` block when the event stream says the queue changed (and polls
when the stream is down); the spoken call is played by static/js/display.js from the clip list
the stream sends with each `ticket-called` event.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, request, send_from_directory

from kiosk import services
from kiosk.app import kiosk
from kiosk.i18n import voice
from kiosk.web import htmx
from kiosk.web.screens import locale_info

bp = Blueprint("display", __name__, url_prefix="/display")

RECENT = 60  # every counter's current call: a large centre has about 30 counters


def voices() -> voice.Voices:
    """The app's voices: installed packs in DATA_DIR/voices, else the shipped placeholders."""
    app = current_app._get_current_object()
    found = app.extensions.get("kiosk_voices")
    if found is None:
        found = app.extensions["kiosk_voices"] = voice.Voices(Path(app.config["DATA_DIR"]) / "voices")
    return found


def clip_urls(number: str, counter: str, lang: str) -> list[str]:
    """URLs of the clips that announce a call (chime, then the words); usable outside a request.

    The ticket's language speaks if it has a voice, else the centre's default language, else any
    language the centre offers: a call is never announced by the chime alone while a voice exists.
    """
    app = current_app._get_current_object()
    files = app.extensions["kiosk_static"]
    chime = f"sounds/{voice.CHIME}.wav"
    urls = [f"{app.static_url_path}/{chime}?v={files.version(chime)}"]
    fallbacks = [app.config["DEFAULT_LANGUAGE"], *app.config["LANGUAGES"]]
    speaker, names = voices().calls(number, counter, lang, fallbacks)
    if speaker:
        _, version = voices().source(speaker)
        urls += [f"{bp.url_prefix}/sounds/{speaker}/{name}.wav?v={version}" for name in names]
    return urls


@bp.get("/sounds/<lang>/<name>.wav")
def sound(lang: str, name: str):
    """One clip of the voice that speaks `lang` (an installed pack, or the shipped one)."""
    found = voices().source(lang)
    if found is None or name not in voice.clip_names():
        abort(404)
    folder, version = found
    response = send_from_directory(folder, f"{name}.wav", mimetype="audio/wav", max_age=None)
    if request.args.get("v") == version:
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


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
    return {"newest": calls[0] if calls else None, "others": calls[1:], "waiting": waiting, "native_lang": native}


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
