"""Central's schema migrations, operator pages and commands (SQLite and PostgreSQL)."""
from __future__ import annotations

import base64
import json
import re

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from sync.central import db
from sync.central.models import Base
from tests.sync.support import commit, put, ticket_doc


def _auth(name: str = "ana", password: str = "correct horse battery") -> dict:
    """Basic authentication header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_migrations_create_exactly_the_models(central_app):
    engine = central_app.extensions["central"].engine
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    assert db.upgrade(engine) == db.head_revision()
    config = db.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert db.current_revision(engine) is None
    assert db.upgrade(engine) == db.head_revision()
    engine.dispose()


def test_db_upgrade_command_is_idempotent(ops):
    head = db.head_revision()
    assert f"database at revision {head}" in ops.cli("db-upgrade")
    assert f"database at revision {head}" in ops.cli("db-upgrade")


def test_pages_need_an_operator(central_app, ops):
    client = central_app.test_client()
    denied = client.get("/")
    assert denied.status_code == 401 and "Basic" in denied.headers["WWW-Authenticate"]
    ops.cli("add-operator", "ana", "--password-stdin", input="correct horse battery\n")
    assert client.get("/", headers=_auth(password="wrong password!!")).status_code == 401
    assert client.get("/", headers=_auth(name="bob")).status_code == 401
    assert client.get("/", headers=_auth()).status_code == 200
    short = central_app.test_cli_runner().invoke(args=["add-operator", "x", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "12 characters" in short.output


def test_pages_show_devices_lag_and_offset_under_a_strict_csp(central_app, device, ops):
    ops.cli("add-operator", "ana", "--password-stdin", input="correct horse battery\n")
    device.push([commit(1, put("tickets", ticket_doc())), commit(2)], head_seq=7)
    client = central_app.test_client()
    for path in ("/", "/centres/ERB-01"):
        response = client.get(path + "?lang=en", headers=_auth())
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src" not in csp and "'unsafe-inline'" not in csp and "default-src 'none'" in csp
        html = response.get_data(as_text=True)
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=", html), path
        assert "kiosk-1" in html and device.device_id in html
        assert re.search(r'<td class="num">5</td>', html)  # lag: 7 recorded, 2 acknowledged
        assert "+0.0 s" in html
    assert client.get("/centres/NOPE", headers=_auth()).status_code == 404
    css = client.get("/static/central.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    css.close()


def test_api_errors_are_json_and_pages_are_html(central_app):
    client = central_app.test_client()
    missing = client.get("/api/sync/v1/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/api/sync/v1/push")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"


def test_operator_commands_explain_mistakes(ops, central_app):
    runner = central_app.test_cli_runner()
    ops.add_centre()
    again = runner.invoke(args=["add-centre", "ERB-01", "Again"])
    assert again.exit_code != 0 and "already exists" in again.output
    assert "no centre" in runner.invoke(args=["enroll", "NOPE", "kiosk-1"]).output
    assert "no device" in runner.invoke(args=["revoke", "ghost"]).output
    bad = runner.invoke(args=["add-centre", "bad code!", "x"])
    assert bad.exit_code != 0


def test_revoking_by_label_and_listing_devices(ops, device):
    out = ops.cli("devices")
    assert "kiosk-1" in out and "active" in out and "acked 0" in out
    assert device.device_id in ops.cli("revoke", "kiosk-1")
    assert "revoked" in ops.cli("devices", "--centre", "ERB-01")


def test_export_writes_one_line_per_ticket_with_its_history(ops, device, server_clock, tmp_path):
    early = ticket_doc(states=("waiting", "called", "serving", "done"))
    device.push([commit(1, put("tickets", early), put("audit", {"id": "A1", "at": "2026-11-22T09:00:00Z",
                                                                 "action": "x", "hash": "h"}))])
    server_clock.advance(days=2)
    late = ticket_doc(states=("waiting",))
    device.push([commit(2, put("tickets", late))])
    out = tmp_path / "export.jsonl"
    ops.cli("export", "--centre", "ERB-01", "--output", str(out))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {line["ticket_id"] for line in lines} == {early["id"], late["id"]}
    by_id = {line["ticket_id"]: line for line in lines}
    assert [e["state"] for e in by_id[early["id"]]["events"]] == ["waiting", "called", "serving", "done"]
    assert by_id[early["id"]]["ticket"] == early and by_id[early["id"]]["device_id"] == device.device_id
    ops.cli("export", "--centre", "ERB-01", "--since", "2026-11-23", "--output", str(out))
    assert [json.loads(x)["ticket_id"] for x in out.read_text().splitlines()] == [late["id"]]
    result = ops.app.test_cli_runner().invoke(args=["export", "--centre", "ERB-01", "--since", "yesterday"])
    assert result.exit_code != 0 and "--since" in result.output


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    from sync.central import create_app
    monkeypatch.setenv("CENTRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("CENTRAL_MAX_SKEW_S", "120")
    app = create_app()
    assert app.extensions["central"].max_skew_s == 120
    app.extensions["central"].engine.dispose()
    monkeypatch.setenv("CENTRAL_MAX_SKEW_S", "soon")
    try:
        create_app()
    except ValueError as exc:
        assert "CENTRAL_MAX_SKEW_S" in str(exc)
    else:
        raise AssertionError("a bad setting was accepted")


def test_central_starts_without_the_kiosks_web_layer_or_store(tmp_path):
    """DESIGN.md's rule: central shares only the kiosk's pure code (domain, ids, i18n, protocol)."""
    import subprocess
    import sys
    script = ("import sys; from sync.central import create_app; "
              f"create_app({{'CENTRAL_DATABASE_URL': 'sqlite:///{tmp_path / 'c.sqlite3'}'}}); "
              "print(' '.join(sorted(m for m in sys.modules if m.startswith('kiosk'))))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.startswith(("kiosk.web", "kiosk.store", "kiosk.app", "kiosk.services",
                                                    "kiosk.usecases", "hardware"))], loaded
