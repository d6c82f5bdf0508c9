"""The landing page: what this machine is and where each screen lives."""
from flask import Blueprint, render_template

from kiosk.app import kiosk

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Links to the screens and the API, with the centre's name."""
    centre = kiosk().centre
    return render_template("home.html", services=centre.store.all("services"))
