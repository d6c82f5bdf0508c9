"""Day close from the command line and in the serving kiosk: `simulate` fills a data directory with
days of work, `close-day` archives them, `check` verifies every archive file (and fails on a
damaged one), `export` reads live and archived days alike, and the same monthly report comes out
of archived days as out of the live store."""
import json
import shutil
import subprocess
import sys
import time

import requests

from kiosk import cases, create_app
from kiosk.store.archive import Archive
from tests.processes import ROOT, child_env, free_port, start_kiosk


def flask(data_dir, *args, timeout=300):
    """`flask --app kiosk ARGS` on DATA_DIR in a child process."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=child_env(KIOSK_DATA_DIR=str(data_dir)))


def centre_of(data_dir):
    """The centre of a data directory, opened in this process (close its app afterwards)."""
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test", "PRINTER_URL": "off"})
    return app, app.extensions["kiosk"].centre


def test_reports_and_records_are_the_same_from_archived_days_as_from_the_live_store(tmp_path):
    live_dir, closed_dir = tmp_path / "live", tmp_path / "closed"
    live_dir.mkdir(mode=0o700)
    made = flask(live_dir, "simulate", "--days", "4", "--per-day", "60", "--seed", "7", "--no-close")
    assert made.returncode == 0, made.stderr
    assert "simulated 4 days" in made.stdout and "0 archive files" in made.stdout
    shutil.copytree(live_dir, closed_dir)
    closed = flask(closed_dir, "close-day")
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout.count("archived ") == 4 and "4 day(s) archived" in closed.stdout
    check = flask(closed_dir, "check")
    assert check.returncode == 0 and "FAIL" not in check.stdout, check.stdout
    assert "archive: 4 closed days" in check.stdout

    live_app, live_centre = centre_of(live_dir)
    closed_app, closed_centre = centre_of(closed_dir)
    try:
        assert closed_centre.store.count("tickets") == 0 and live_centre.store.count("tickets") > 200
        days = [day for day, _ in live_centre.history.each_day("tickets")]
        assert len(days) == 4 and [d for d, _ in closed_centre.history.each_day("tickets")] == days
        as_of = live_centre.clock.now()
        for month in sorted({day[:7] for day in days}):
            from_live = cases.report(live_centre, month, now=as_of)
            from_archive = cases.report(closed_centre, month, now=as_of)
            assert from_archive == from_live
        assert sum(cases.report(live_centre, m, now=as_of).total.received for m in {d[:7] for d in days}) > 0
        for table in ("tickets", "requests", "receipts", "audit"):
            ids = {d["id"] for _, docs in live_centre.history.each_day(table) for d in docs}
            assert {d["id"] for _, docs in closed_centre.history.each_day(table) for d in docs} >= ids, table
    finally:
        live_app.extensions["kiosk"].close()
        closed_app.extensions["kiosk"].close()

    exported = flask(closed_dir, "export", "--table", "tickets", "--table", "requests")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {line["table"] for line in lines} == {"tickets", "requests"}
    assert sum(1 for line in lines if line["table"] == "tickets") == int(check.stdout.split(" tickets,")[0].split()[-1])
    assert all(line["day"] == (line["doc"].get("day") or line["doc"].get("created_day")) for line in lines)
    assert f"{len(lines)} records exported" in exported.stderr


def test_check_fails_on_a_damaged_archive_file(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    assert flask(data_dir, "simulate", "--days", "2", "--per-day", "20", "--quiet").returncode == 0
    assert flask(data_dir, "check").returncode == 0
    part = Archive(data_dir).parts()[0]
    path = data_dir / "archive" / part.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    path.chmod(0o400)
    check = flask(data_dir, "check")
    assert check.returncode == 1
    assert f"FAIL  archive: {part.file} does not match its checksum in the manifest" in check.stdout


def test_simulate_refuses_a_used_or_enrolled_data_directory(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    assert flask(data_dir, "simulate", "--days", "1", "--per-day", "5", "--quiet").returncode == 0
    again = flask(data_dir, "simulate", "--days", "1", "--per-day", "5")
    assert again.returncode == 1 and "already holds tickets" in again.stderr
    enrolled = tmp_path / "enrolled"
    (enrolled / "sync").mkdir(mode=0o700, parents=True)
    (enrolled / "sync" / "credential.json").write_text("{}", encoding="utf-8")
    refused = flask(enrolled, "simulate", "--days", "1", "--per-day", "5")
    assert refused.returncode == 1 and "must never reach the ministry" in refused.stderr


def test_the_serving_kiosk_closes_earlier_days_by_itself(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    assert flask(data_dir, "simulate", "--days", "2", "--per-day", "15", "--no-close", "--quiet").returncode == 0
    app, centre = centre_of(data_dir)
    try:
        done = next(t for t in centre.store.all("tickets") if t["state"] == "done")
    finally:
        app.extensions["kiosk"].close()
    port = free_port()
    proc = start_kiosk(child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_PRINTER_URL="off"), port, tmp_path / "kiosk.log")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len({p.day for p in Archive(data_dir).parts()}) < 2:
            time.sleep(0.2)
        assert len({p.day for p in Archive(data_dir).parts()}) == 2, (tmp_path / "kiosk.log").read_text()
        answer = requests.get(f"http://127.0.0.1:{port}/api/v1/tickets/{done['id']}", timeout=10)
        assert answer.status_code == 200 and answer.json()["ticket"]["state"] == "done"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    app, centre = centre_of(data_dir)
    try:
        assert centre.store.count("tickets") == 0, "nothing of the earlier days is left live"
    finally:
        app.extensions["kiosk"].close()
