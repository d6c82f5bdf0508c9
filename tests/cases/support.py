"""Helpers for the requests-and-receipts tests: staff on the test client, form tokens, the provider
directory, and every file of a data directory."""
from __future__ import annotations

from pathlib import Path

from tests.web.conftest import csrf_from

HOST = "V.EXAMPLE.GOV.IQ"
PROVIDERS = {"id": "providers", "providers": [
    {"id": "nrc-shelter", "names": {"ar": "مأوى", "ckb": "پەناگە", "en": "Shelter programme"}, "sector": "housing",
     "contact": "0750 000 0000"},
    {"id": "vtc-mosul", "names": {"ar": "تدريب مهني", "ckb": "ڕاهێنانی پیشەیی", "en": "Vocational centre"},
     "sector": "vocational_training", "contact": "0770 000 0000"},
]}


class Staff:
    """A test client logged in through the real login form."""

    def __init__(self, client, staff: str = "demo", pin: str = "0000"):
        """Log in; remember the session's CSRF token."""
        self.client = client
        page = client.get("/staff/login")
        response = client.post("/staff/login", data={"staff": staff, "pin": pin,
                                                     "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert response.status_code == 303, response.get_data(as_text=True)
        with client.session_transaction() as session:
            self.token = session["csrf"]

    def post(self, path: str, data: dict | None = None, **kwargs):
        """A plain form post with this session's token."""
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def get(self, path: str, **kwargs):
        """A page."""
        return self.client.get(path, **kwargs)

    def language(self, lang: str) -> None:
        """Switch the screens' language for this session."""
        assert self.post("/lang", {"lang": lang, "next": "/"}).status_code == 303


def data_files(data_dir: Path) -> list[Path]:
    """Every regular file under a data directory, however deep."""
    return sorted(p for p in Path(data_dir).rglob("*") if p.is_file())
