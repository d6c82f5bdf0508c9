"""Helpers for the requests-and-receipts tests: staff on the test client, form tokens, the provider
directory, every file of a data directory, and a whole system (central, one kiosk, the agent)."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from kiosk import cases, services
from sync import agent as agent_mod
from tests.sync.support import HttpServer
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


OPERATOR = ("alice", "correct horse battery staple")
# ERB-01's names at central (`system` fixture); in English it is "Erbil public service centre"
CENTRE_NAMES = {"ar": "مركز أربيل للخدمات العامة", "ckb": "ناوەندی خزمەتگوزارییە گشتییەکانی هەولێر",
                "en": "Erbil public service centre"}


@dataclass
class System:
    """Central served over loopback, one enrolled kiosk app, and the operator's command line."""

    central_app: object
    server: HttpServer
    ops: object
    kiosk_app: object
    centre: services.Centre
    kiosk_dir: Path
    clock: object

    def sync(self) -> None:
        """One cron round of the agent, then the kiosk applies what was pulled."""
        agent_mod.Agent(self.kiosk_dir, centre="ERB-01", clock=self.clock, retry_delay_s=0.01,
                        timeout=(2, 10)).run()
        self.kiosk_app.extensions["kiosk"].apply_inbox()

    def serve_and_register(self, service: str = "A", **extra) -> tuple[dict, dict]:
        """Serve a ticket of `service` at counter 1, register a request and sign its receipt."""
        with self.kiosk_app.app_context():
            ticket = services.issue_ticket(self.centre, service=service, lang="en")
            services.set_counter_status(self.centre, "1", "open", by="demo")
            services.call_ticket(self.centre, ticket["id"], counter="1", by="demo")
            doc = cases.register_case(self.centre, ticket_id=ticket["id"], kind=extra.pop("kind", "request"),
                                      reference="19901234567", by="demo", **extra)
            record = cases.issue_receipt(self.centre, doc["id"], by="demo")
        return doc, record

    def operator(self):
        """A test client of central with the operator's basic credentials."""
        client = self.central_app.test_client()
        token = base64.b64encode(":".join(OPERATOR).encode()).decode()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Basic {token}"
        return client
