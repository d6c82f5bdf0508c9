"""GET /healthz (ok, degraded, failing) and the supervisor screen's warnings; logging set-up."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat

import pytest

from kiosk import __version__, create_app, services
from kiosk.ops import logs


def sync_state(clock, *, hours_ago: float | None, offset: float = 0.4) -> dict:
    """What sync.agent.status answers for an enrolled kiosk whose last success was `hours_ago`."""
    now = clock.now()
    last = None if hours_ago is None else (now - dt.timedelta(hours=hours_ago)).isoformat()
    return {"enrolled": True, "enrolled_at": (now - dt.timedelta(days=3)).isoformat(), "last_success_at": last,
            "last_attempt_at": now.isoformat(), "last_error": "central unreachable" if hours_ago else None,
            "pending": 12, "clock_offset_s": offset}


@pytest.fixture
def make_app(app_config, clock):
    """Build an app with given extra settings and a sync status function; closed after the test."""
    made = []

    def make(status=None, **settings):
        for earlier in made:  # one process owns a data directory at a time
            earlier.extensions["kiosk"].close()
        application = create_app({**app_config, **settings}, clock=clock,
                                 sync_status=(lambda data_dir: status) if status is not None else None)
        with application.app_context():
            services.load_demo_data(application.extensions["kiosk"].centre)
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["kiosk"].close()


def test_healthz_ok(make_app, clock):
    """A writable store, a roomy disk, no printer trouble and a fresh sync: ok, 200, no personal data."""
    app = make_app(sync_state(clock, hours_ago=0.1), DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok" and body["version"] == __version__
    checks = body["checks"]
    assert checks["store"] == {"status": "ok", "writable": True}
    assert checks["disk"]["free_bytes"] > 0 and 0 < checks["disk"]["free_percent"] <= 100
    assert checks["printer"]["state"] == "none"
    assert checks["sync"]["last_success_age_s"] == 360 and checks["sync"]["clock_offset_s"] == 0.4
    text = response.get_data(as_text=True)
    assert "demo" not in text and "super" not in text and "central unreachable" not in text
    assert not [p for p in os.listdir(app.config["DATA_DIR"]) if p.startswith(".healthz")]
    again = app.test_client().get("/api/v1/health")  # the API's name for the same document
    assert again.status_code == 200 and again.get_json()["checks"]["store"] == checks["store"]


def test_healthz_degraded_when_the_disk_is_nearly_full_or_sync_stale(make_app, clock):
    """Less free space than the warning threshold, or a day without a sync: degraded, still 200."""
    app = make_app(sync_state(clock, hours_ago=0.1), DISK_WARN_PERCENT=100, DISK_FAIL_MB=0)
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "degraded" and body["checks"]["disk"]["status"] == "degraded"
    app = make_app(sync_state(clock, hours_ago=30), DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    sync = response.get_json()["checks"]["sync"]
    assert response.get_json()["status"] == "degraded" and sync["failing_for_a_day"] and sync["last_success_age_s"] == 30 * 3600
    app = make_app(sync_state(clock, hours_ago=1, offset=-900), DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    sync = app.test_client().get("/healthz").get_json()["checks"]["sync"]
    assert sync["status"] == "degraded" and sync["clock_skewed"] and not sync["failing_for_a_day"]


def test_healthz_fails_when_the_disk_is_full(make_app, clock):
    """Less free space than DISK_FAIL_MB (a full disk, simulated by the threshold): 503."""
    app = make_app(sync_state(clock, hours_ago=0.1), DISK_FAIL_MB=10 ** 12)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "fail" and response.get_json()["checks"]["disk"]["status"] == "fail"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_healthz_fails_when_the_data_directory_is_read_only(make_app):
    """A data directory the kiosk cannot write to: store check fails, 503."""
    app = make_app(DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    client = app.test_client()
    data_dir = app.config["DATA_DIR"]
    os.chmod(data_dir, stat.S_IRUSR | stat.S_IXUSR)
    try:
        response = client.get("/healthz")
    finally:
        os.chmod(data_dir, 0o700)
    assert response.status_code == 503
    assert response.get_json()["checks"]["store"] == {"status": "fail", "writable": False, "error": "Permission denied"}


def test_healthz_fails_when_the_data_directory_is_unusable(make_app, tmp_path):
    """A data directory no file can be created in (here a path under a plain file, which fails for
    root too, as a disk remounted read-only does): the store check fails, 503."""
    app = make_app(DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    client = app.test_client()
    client.get("/healthz")  # the store is open
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    real, app.config["DATA_DIR"] = app.config["DATA_DIR"], blocker / "data"
    try:
        response = client.get("/healthz")
    finally:
        app.config["DATA_DIR"] = real
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "fail" and body["checks"]["store"]["writable"] is False
    assert body["checks"]["disk"]["status"] == "fail"


def test_supervisor_warnings(make_app, clock):
    """The supervisor screen warns about a nearly full disk and a day without sync; not otherwise."""
    from tests.web.conftest import Staff
    app = make_app(sync_state(clock, hours_ago=30), DISK_WARN_PERCENT=100)
    page = Staff(app.test_client(), "super", "9999").get("/admin").get_data(as_text=True)
    assert 'data-warning="disk_low"' in page and 'data-warning="sync_failing"' in page
    app = make_app(sync_state(clock, hours_ago=1), DISK_WARN_PERCENT=0, DISK_WARN_GB=0, DISK_FAIL_MB=0)
    page = Staff(app.test_client(), "super", "9999").get("/admin").get_data(as_text=True)
    assert 'id="health-warnings"' not in page


def _record(level=logging.WARNING, msg="printer %s offline", args=("P1",)):
    """A log record as a module logger makes it."""
    return logging.LogRecord("kiosk.printing", level, __file__, 1, msg, args, None)


def test_log_formats_and_journal_prefix():
    """plain/kv/json lines; under the journal no time and a <N> priority on each line."""
    plain = logs.Formatter("plain", process="kiosk").format(_record())
    assert plain.endswith("WARNING kiosk[%d] kiosk.printing: printer P1 offline" % os.getpid())
    assert plain[:4].isdigit()  # a timestamp first when not under the journal
    journal = logs.Formatter("plain", journal=True, process="sync").format(_record(logging.ERROR))
    assert journal.startswith("<3>ERROR sync[")
    kv = logs.Formatter("kv", journal=True).format(_record(logging.INFO))
    assert kv.startswith("<6>level=info logger=kiosk.printing process=kiosk ") and kv.endswith('msg="printer P1 offline"')
    data = json.loads(logs.Formatter("json").format(_record(msg="طابعة %s", args=("١",))))
    assert data["message"] == "طابعة ١" and data["level"] == "warning" and "time" in data


def test_under_journal_matches_the_stream(tmp_path, monkeypatch):
    """JOURNAL_STREAM counts only when it names the very stream we write to."""
    with open(tmp_path / "err", "w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logs.under_journal(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not logs.under_journal(stream)


def test_log_file_rotates(tmp_path, monkeypatch):
    """LOG_FILE with LOG_MAX_BYTES rotates and keeps LOG_BACKUPS files; the worker writes its own."""
    for name in ("LOG_LEVEL", "LOG_FORMAT", "LOG_FILE", "LOG_MAX_BYTES", "LOG_ROTATE_WHEN", "LOG_BACKUPS"):
        monkeypatch.delenv(f"KIOSK_{name}", raising=False)  # setup exports them; monkeypatch restores
    root = logging.getLogger()
    level = root.level
    settings = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "kv", "LOG_FILE": str(tmp_path / "logs" / "kiosk.log"),
                "LOG_MAX_BYTES": 400, "LOG_ROTATE_WHEN": "", "LOG_BACKUPS": 2}
    handler = logs.setup(settings, process="kiosk")
    try:
        for i in range(40):
            logging.getLogger("kiosk.test").info("line %d", i)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
    assert os.environ["KIOSK_LOG_FILE"] == settings["LOG_FILE"]
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    assert all(p.stat().st_size <= 400 for p in (tmp_path / "logs").iterdir())
    assert logs.file_for(settings["LOG_FILE"], "print-worker").name == "kiosk-print-worker.log"
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.check_settings({**settings, "LOG_FORMAT": "xml"})
